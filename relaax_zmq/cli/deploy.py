"""``relaax-zmq deploy k8s [-c APP.yaml] -o DIR``: the app for Kubernetes.

Writes into DIR a Dockerfile with its build context (``src/``: this package's source,
``app/``: the app folder) and ``k8s/``: one manifest per object, made from the app file so that
endpoints and ports agree with its config: the cluster's app file as a ConfigMap, the broker
and the metrics collector (Deployments and Services), the shards (a StatefulSet with a headless
Service and a volume each), the workers (a Deployment and a HorizontalPodAutoscaler on the
broker's load through prometheus-adapter), the gateway when enabled, CURVE keys as a Secret.
``kubectl apply -f DIR/k8s`` applies them; ``DIR/README.md`` (and docs/kubernetes.md) says what
else a cluster needs: prometheus-adapter with the rule of the workers' autoscaler.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml

from relaax_zmq.cli.common import CliError, add_app_option, load_app
from relaax_zmq.config.loader import read_yaml
from relaax_zmq.deploy.cluster import cluster_app
from relaax_zmq.deploy.image import DOCKERIGNORE, dockerfile, project_root, write_context
from relaax_zmq.deploy.kubernetes import manifests, read_keys
from relaax_zmq.deploy.readme import readme
from relaax_zmq.errors import ConfigError
from relaax_zmq.runtime.local import app_shards

HELP = "write a Dockerfile and Kubernetes manifests for the app"
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def namespace(text: str) -> str:
    """``text`` when it is a Kubernetes namespace name (a DNS label)."""
    if not _DNS_LABEL.match(text):
        raise argparse.ArgumentTypeError(
            f"expected a DNS label (a-z, 0-9, '-', at most 63), got {text!r}"
        )
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    k8s = targets.add_parser("k8s", help="a Dockerfile and Kubernetes manifests")
    add_app_option(k8s)
    k8s.add_argument("-o", "--output", type=Path, required=True, help="folder to write into")
    k8s.add_argument("--image", default="relaax-zmq-app:latest", help="image name of the pods")
    k8s.add_argument(
        "--namespace", type=namespace, default="default", help="namespace of every object"
    )
    k8s.add_argument("--workers", type=int, default=None, help="worker pods (workers.count)")
    k8s.add_argument("--max-workers", type=int, default=None, help="most worker pods (HPA)")
    k8s.add_argument(
        "--frontend-service",
        choices=SERVICE_TYPES,
        default="ClusterIP",
        help="also expose broker.frontend outside the cluster with a Service of this type",
    )


def run(args: argparse.Namespace) -> int:
    config = load_app(args.config)
    raw = read_yaml(args.config)  # as the loader reads it: 1e-4 stays a float
    workers = config.workers.count if args.workers is None else args.workers
    if workers < 1 or (args.max_workers is not None and args.max_workers < workers):
        raise CliError(
            f"expected 1 <= --workers <= --max-workers, got {workers} and {args.max_workers}"
        )
    try:
        app = cluster_app(raw, config)
    except ConfigError as exc:
        raise CliError(f"{args.config}: {exc}") from None
    keys = None
    if config.security.curve:
        assert config.security.keys_dir is not None  # validated with curve
        keys = read_keys(config.security.keys_dir)
    objects = manifests(
        config,
        app,
        image=args.image,
        namespace=args.namespace,
        workers=workers,
        max_workers=args.max_workers,
        keys=keys,
        frontend_service=args.frontend_service,
        shards=app_shards(config) > 0,
    )
    source = project_root()
    if source is None:
        raise CliError(
            "this relaax-zmq was installed from a wheel: its source for the image is not here"
        )
    out: Path = args.output
    (out / "k8s").mkdir(parents=True, exist_ok=True)
    for old in (out / "k8s").glob("*.yaml"):
        old.unlink()
    for i, item in enumerate(objects):
        name = f"{i:02d}-{item['kind'].lower()}-{item['metadata']['name']}.yaml"
        (out / "k8s" / name).write_text(yaml.safe_dump(item, sort_keys=False))
    write_context(out, config.app_dir, source)
    (out / "Dockerfile").write_text(dockerfile(config, config.app_dir.name))
    (out / ".dockerignore").write_text(DOCKERIGNORE)
    text = readme(
        app_name=config.app_dir.name, image=args.image, namespace=args.namespace, curve=bool(keys)
    )
    (out / "README.md").write_text(text)
    print(
        f"wrote {out}/Dockerfile (context {out}: src/, app/) and {len(objects)} objects in {out}/k8s"
    )
    print(f"  docker build -t {args.image} {out} && kubectl apply -f {out}/k8s")
    print(f"  the workers' autoscaler needs prometheus-adapter: {out}/README.md has its rule")
    if keys is not None:
        print(f"  {out}/k8s holds the CURVE key pairs as a Secret: keep it private")
    return 0
