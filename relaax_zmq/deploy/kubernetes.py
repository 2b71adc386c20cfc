"""The Kubernetes objects of an app, as plain dicts (``yaml.safe_dump`` writes them).

- the cluster's app file as a ConfigMap, mounted into every pod at ``cluster.APP_FILE``;
- broker and metrics collector: a Deployment and a Service each;
- parameter-server shards: a StatefulSet (pod ``relaax-shard-i`` runs shard i, found by workers
  at ``relaax-shard-i.relaax-shard``) with a headless Service and a volume per shard for its
  checkpoints (none when they go to S3 only);
- workers: a Deployment (one worker per pod, named after its pod) and a
  HorizontalPodAutoscaler on the broker's load (an External metric that prometheus-adapter
  serves from the broker's /metrics: docs/kubernetes.md has the rule);
- the WebSocket gateway when enabled: a Deployment and a Service;
- CURVE key pairs as a Secret mounted at ``security.keys_dir`` when ``security.curve``.

Every container has liveness and readiness probes on ``GET /healthz`` of its /metrics port,
resource requests, and the ``prometheus.io`` annotations for scraping.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from relaax_zmq.config import AppConfig
from relaax_zmq.deploy.cluster import APP_DIR, APP_FILE, DATA_DIR, KEYS_DIR, NAMES, prometheus_port
from relaax_zmq.security.keys import SECRET_SUFFIX

Object = dict[str, Any]

#: Resource requests (and memory limits) per part.
RESOURCES = {
    "broker": ({"cpu": "500m", "memory": "512Mi"}, {"memory": "2Gi"}),
    "collector": ({"cpu": "250m", "memory": "512Mi"}, {"memory": "2Gi"}),
    "shard": ({"cpu": "500m", "memory": "1Gi"}, {"memory": "4Gi"}),
    "worker": ({"cpu": "1", "memory": "1Gi"}, {"memory": "4Gi"}),
    "gateway": ({"cpu": "250m", "memory": "256Mi"}, {"memory": "1Gi"}),
}
#: The key role of each part's daemon: pods get that role's secret keys only (and every
#: public key and the revocation list).
KEY_ROLES = {
    "broker": "broker", "collector": "metrics", "shard": "shard", "worker": "worker",
    "gateway": "client",
}  # fmt: skip
#: The External metric the workers' HorizontalPodAutoscaler follows, and its target.
LOAD_METRIC = "relaax_broker_load"
LOAD_TARGET = "800m"


def _meta(name: str, namespace: str, part: str) -> Object:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/name": "relaax", "app.kubernetes.io/component": part},
    }


def _selector(part: str) -> Object:
    return {"app.kubernetes.io/name": "relaax", "app.kubernetes.io/component": part}


def _container(
    part: str, image: str, command: list[str], ports: dict[str, int], metrics_port: int
) -> Object:
    requests, limits = RESOURCES[part]
    probe = {"httpGet": {"path": "/healthz", "port": metrics_port}, "periodSeconds": 10}
    return {
        "name": part,
        "image": image,
        "command": command,
        "workingDir": APP_DIR,
        "ports": [
            {"name": name, "containerPort": port} for name, port in ports.items()
        ] + [{"name": "metrics", "containerPort": metrics_port}],
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}, {"name": "OMP_NUM_THREADS", "value": "1"}],
        "livenessProbe": {**probe, "initialDelaySeconds": 30, "failureThreshold": 3},
        "readinessProbe": {**probe, "initialDelaySeconds": 5},
        "resources": {"requests": requests, "limits": limits},
        "volumeMounts": [{"name": "app", "mountPath": APP_FILE, "subPath": "app.cluster.yaml"}],
    }  # fmt: skip


def _pod(
    part: str, containers: list[Object], metrics_port: int, keys: dict[str, bytes] | None
) -> Object:
    """A pod template; with ``keys`` (CURVE) the Secret is mounted at ``KEYS_DIR`` in its
    folder layout (``role/name.key``: a Secret's keys are flat, ``items`` puts them back),
    secret keys of the part's own role only."""
    volumes: list[Object] = [{"name": "app", "configMap": {"name": NAMES["config"]}}]
    if keys is not None:
        own = f"{KEY_ROLES[part]}/"
        items = [
            {"key": f"key-{i}", "path": path}
            for i, path in enumerate(sorted(keys))
            if not path.endswith(SECRET_SUFFIX) or path.startswith(own)
        ]
        secret = {"secretName": NAMES["keys"], "defaultMode": 0o400, "items": items}
        volumes.append({"name": "keys", "secret": secret})
        for container in containers:
            container["volumeMounts"].append(
                {"name": "keys", "mountPath": KEYS_DIR, "readOnly": True}
            )
    return {
        "metadata": {
            "labels": _selector(part),
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(metrics_port),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": {"containers": containers, "volumes": volumes, "terminationGracePeriodSeconds": 60},
    }


def _daemon(module: str, *args: str) -> list[str]:
    return ["python", "-m", module, "--config", APP_FILE, *args]


#: Parts that must never run twice at once (one broker; the collector's volume is
#: ReadWriteOnce): an update stops the old pod before starting the new one.
SINGLE = ("broker", "collector")


def _deployment(name: str, namespace: str, part: str, replicas: int, pod: Object) -> Object:
    spec = {"replicas": replicas, "selector": {"matchLabels": _selector(part)}, "template": pod}
    if part in SINGLE:
        spec["strategy"] = {"type": "Recreate"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, part),
        "spec": spec,
    }


def _service(name: str, namespace: str, part: str, ports: dict[str, int], **spec: Any) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, namespace, part),
        "spec": {
            "selector": _selector(part),
            "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports.items()],
            **spec,
        },
    }


def _port_of(endpoint: str) -> int:
    return int(endpoint.rpartition(":")[2])


def manifests(
    config: AppConfig,
    app: dict[str, Any],
    *,
    image: str,
    namespace: str = "default",
    workers: int = 1,
    max_workers: int | None = None,
    keys: dict[str, bytes] | None = None,
    frontend_service: str = "ClusterIP",
    shards: bool = True,
) -> list[Object]:
    """Every object of the app (see the module docstring). ``app`` is ``cluster_app``'s
    mapping, ``keys`` the key files for the Secret (file name -> bytes) with CURVE;
    ``shards`` False for an algorithm without a parameter-server side."""
    if config.security.curve and keys is None:
        raise ValueError("security.curve is on: expected the key files for the Secret")
    curve = keys if config.security.curve else None
    found: list[Object] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(NAMES["config"], namespace, "config"),
            "data": {"app.cluster.yaml": yaml.safe_dump(app, sort_keys=False)},
        }
    ]
    if curve is not None:
        found.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": _meta(NAMES["keys"], namespace, "keys"),
                "type": "Opaque",
                "data": {
                    f"key-{i}": base64.b64encode(data).decode()
                    for i, (_, data) in enumerate(sorted(curve.items()))
                },
            }
        )
    # broker
    b = app["broker"]
    ports = {k: _port_of(b[k]) for k in ("frontend", "backend", "admin")}
    metrics = prometheus_port(app, "broker")
    pod = _pod(
        "broker",
        [_container("broker", image, _daemon("relaax_zmq.broker"), ports, metrics)],
        metrics,
        curve,
    )
    found.append(_deployment(NAMES["broker"], namespace, "broker", 1, pod))
    found.append(_service(NAMES["broker"], namespace, "broker", {**ports, "metrics": metrics}))
    if frontend_service != "ClusterIP":
        found.append(
            _service(f"{NAMES['broker']}-frontend", namespace, "broker",
                     {"frontend": ports["frontend"]}, type=frontend_service)
        )  # fmt: skip
    # collector, with a volume for its event files
    port = _port_of(app["metrics"]["endpoint"])
    metrics = prometheus_port(app, "collector")
    container = _container(
        "collector", image, _daemon("relaax_zmq.metrics"), {"metrics-in": port}, metrics
    )
    container["volumeMounts"].append({"name": "data", "mountPath": DATA_DIR})
    pod = _pod("collector", [container], metrics, curve)
    pod["spec"]["volumes"].append(
        {"name": "data", "persistentVolumeClaim": {"claimName": NAMES["collector"]}}
    )
    found.append(_claim(NAMES["collector"], namespace, "collector", "10Gi"))
    found.append(_deployment(NAMES["collector"], namespace, "collector", 1, pod))
    found.append(
        _service(
            NAMES["collector"], namespace, "collector", {"metrics-in": port, "metrics": metrics}
        )
    )
    if shards:
        found += _shards(config, app, image, namespace, curve)
    found += _workers(config, app, image, namespace, curve, workers, max_workers)
    if config.gateway.enabled:
        g = config.gateway
        metrics = prometheus_port(app, "gateway")
        pod = _pod(
            "gateway",
            [
                _container(
                    "gateway", image, _daemon("relaax_zmq.gateway"), {"websocket": g.port}, metrics
                )
            ],
            metrics,
            curve,
        )
        found.append(_deployment(NAMES["gateway"], namespace, "gateway", 1, pod))
        found.append(
            _service(
                NAMES["gateway"], namespace, "gateway", {"websocket": g.port}, type="LoadBalancer"
            )
        )
    return found  # fmt: skip


def _claim(name: str, namespace: str, part: str, size: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(name, namespace, part),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    }


def _shards(
    config: AppConfig,
    app: dict[str, Any],
    image: str,
    namespace: str,
    curve: dict[str, bytes] | None,
) -> list[Object]:
    """The StatefulSet: pod ``relaax-shard-i`` runs ``--shard i`` (its ordinal)."""
    ps = config.parameter_servers
    n = ps.shards
    e = app["parameter_servers"]["endpoints"]
    grads = e.get("gradients_port", ps.endpoints.gradients_port)
    weights = e.get("weights_port", ps.endpoints.weights_port)
    ports = {f"grads-{i}": grads + i for i in range(n)} | {
        f"weights-{i}": weights + i for i in range(n)
    }
    base = prometheus_port(app, "shards")
    # pod i serves /metrics on base + i; with one shard the probe and annotation name that port,
    # with more an exec probe computes each pod's own from its ordinal
    command = [
        "sh",
        "-c",
        f'exec python -m relaax_zmq.ps --config {APP_FILE} --shard "${{HOSTNAME##*-}}"',
    ]
    container = _container("shard", image, command, ports, base)
    container["ports"] = container["ports"][:-1] + [
        {"name": f"metrics-{i}", "containerPort": base + i} for i in range(n)
    ]
    checkpoints = ps.checkpoint.dir is not None
    if checkpoints:
        container["volumeMounts"].append({"name": "data", "mountPath": DATA_DIR})
    if n > 1:  # a probe cannot name a per-pod port: check that the process serves at all
        probe = {
            "exec": {"command": ["python", "-c", _SHARD_PROBE.format(base=base)]},
            "periodSeconds": 10,
        }
        container["livenessProbe"] = {**probe, "initialDelaySeconds": 30, "failureThreshold": 3}
        container["readinessProbe"] = {**probe, "initialDelaySeconds": 5}
    pod = _pod("shard", [container], base, curve)
    if n > 1:  # no one port for all pods: scrape the ports named metrics-* (docs/kubernetes.md)
        pod["metadata"]["annotations"].pop("prometheus.io/port")
    statefulset: Object = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(NAMES["shard"], namespace, "shard"),
        "spec": {
            "serviceName": NAMES["shard"],
            "replicas": n,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": _selector("shard")},
            "template": pod,
        },
    }
    if checkpoints:
        claim = _claim("data", namespace, "shard", "10Gi")
        del claim["metadata"]["namespace"]
        statefulset["spec"]["volumeClaimTemplates"] = [claim]
    service = _service(NAMES["shard"], namespace, "shard", ports, clusterIP="None")
    return [service, statefulset]  # fmt: skip


#: A shard pod's probe when shards differ in port: its own /healthz (shards + ordinal).
_SHARD_PROBE = (
    "import os, urllib.request; "
    "urllib.request.urlopen('http://127.0.0.1:%d/healthz' % ({base} + int(os.environ['HOSTNAME'].rsplit('-', 1)[1])), timeout=5)"
)


def _workers(
    config: AppConfig,
    app: dict[str, Any],
    image: str,
    namespace: str,
    curve: dict[str, bytes] | None,
    workers: int,
    max_workers: int | None,
) -> list[Object]:
    metrics = prometheus_port(app, "workers")
    command = _daemon("relaax_zmq.worker", "--name", "worker-0", "--index", "0")
    pod = _pod("worker", [_container("worker", image, command, {}, metrics)], metrics, curve)
    most = max(workers, max_workers if max_workers is not None else 4 * workers)
    hpa: Object = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(NAMES["worker"], namespace, "worker"),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": NAMES["worker"],
            },
            "minReplicas": workers,
            "maxReplicas": most,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {"name": LOAD_METRIC},
                        "target": {"type": "Value", "value": LOAD_TARGET},
                    },
                }
            ],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 10},
                # a removed pod's worker gets SIGTERM and sends BYE: its blocks restart elsewhere
                "scaleDown": {"stabilizationWindowSeconds": 120},
            },
        },
    }
    return [_deployment(NAMES["worker"], namespace, "worker", workers, pod), hpa]  # fmt: skip


def read_keys(folder: Path) -> dict[str, bytes]:
    """Every file of a keys folder (``relaax-zmq keys``' layout) by its relative path."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
