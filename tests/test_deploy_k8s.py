"""``relaax-zmq deploy k8s`` as a user runs it: the manifests validate offline against the
Kubernetes schemas (kubernetes-validate), every endpoint and port agrees with the app file,
the cluster's app file loads, the docker build context holds all the Dockerfile copies.
No cluster runs here (docs/kubernetes.md says what was and was not exercised)."""

from __future__ import annotations

import argparse
import base64
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
import zmq
from security_support import make_keys

from relaax_zmq.cli.deploy import namespace
from relaax_zmq.config import load_config, parse_config
from relaax_zmq.deploy.cluster import cluster_app
from relaax_zmq.deploy.image import dockerfile
from relaax_zmq.deploy.kubernetes import KEY_ROLES, LOAD_METRIC, manifests
from relaax_zmq.deploy.readme import ADAPTER_RULE
from relaax_zmq.errors import ConfigError
from relaax_zmq.runtime.ports import free_port
from relaax_zmq.runtime.sockets import any_interface, open_socket, socket_map

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = "1.30"

pytestmark = pytest.mark.timeout(120)


def deploy(app: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "relaax_zmq.cli",
        "deploy",
        "k8s",
        "-c",
        str(app),
        "-o",
        str(out),
    ]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=100)


def objects(out: Path) -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted((out / "k8s").glob("*.yaml"))]


def of_kind(found: list[dict], kind: str, name: str) -> dict:
    (item,) = [o for o in found if o["kind"] == kind and o["metadata"]["name"] == name]
    return item


def container_ports(item: dict) -> set[int]:
    return {
        p["containerPort"]
        for c in item["spec"]["template"]["spec"]["containers"]
        for p in c["ports"]
    }


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> tuple[Path, Path]:
    """The main job's app (conf/cartpole.yaml, in its own folder) deployed."""
    folder = tmp_path_factory.mktemp("plain")
    shutil.copy(ROOT / "conf" / "cartpole.yaml", folder / "app.yaml")
    done = deploy(folder / "app.yaml", folder / "out", "--workers", "2", "--max-workers", "8")
    assert done.returncode == 0, done.stderr
    assert "kubectl apply -f" in done.stdout
    return folder / "app.yaml", folder / "out"


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Two shards, CURVE, the gateway, a frontend exposed with a LoadBalancer."""
    folder = tmp_path_factory.mktemp("full")
    keys = make_keys(folder / "keys")
    app = yaml.safe_load((ROOT / "conf" / "cartpole.yaml").read_text())
    app["parameter_servers"] = {**app.get("parameter_servers", {}), "shards": 2}
    app["security"] = {"curve": True, "keys_dir": str(keys)}
    app["gateway"] = {"enabled": True, "port": 7800}
    app["prometheus"] = {"broker": 9100}
    app["parameter_servers"]["delay_compensation_lambda"] = "LAMBDA"
    text = yaml.safe_dump(app).replace("LAMBDA", "1e-4")  # YAML 1.2's float, as users write it
    (folder / "app.yaml").write_text(text)
    done = deploy(
        folder / "app.yaml",
        folder / "out",
        "--frontend-service",
        "LoadBalancer",
        "--namespace",
        "rl",
    )
    assert done.returncode == 0, done.stderr
    assert "keep it private" in done.stdout
    return folder / "app.yaml", folder / "out", keys


def test_every_manifest_validates_against_the_kubernetes_schemas(plain, full) -> None:
    for out in (plain[1], full[1]):
        found = objects(out)
        assert found
        for item in found:
            kubernetes_validate.validate(item, KUBERNETES, strict=True)
    kinds = sorted({o["kind"] for o in objects(full[1])})
    assert kinds == [
        "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PersistentVolumeClaim", "Secret",
        "Service", "StatefulSet",
    ]  # fmt: skip
    # negative control: the validator does refuse a wrong manifest
    bad = of_kind(objects(plain[1]), "Deployment", "relaax-broker")
    bad["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["periodSecond"] = 10
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES, strict=True)


def test_every_endpoint_and_port_agrees_with_the_app_file(full) -> None:
    app_path, out, _ = full
    config = load_config(app_path)
    found = objects(out)
    assert all(o["metadata"].get("namespace", "rl") == "rl" for o in found)
    cluster = yaml.safe_load(of_kind(found, "ConfigMap", "relaax-app")["data"]["app.cluster.yaml"])
    broker = of_kind(found, "Service", "relaax-broker")
    ports = {p["name"]: p["port"] for p in broker["spec"]["ports"]}
    for key in ("frontend", "backend", "admin"):
        port = getattr(config.broker, key).port
        assert ports[key] == port and cluster["broker"][key] == f"tcp://relaax-broker:{port}"
        assert port in container_ports(of_kind(found, "Deployment", "relaax-broker"))
    assert ports["metrics"] == 9100  # the app's own prometheus.broker
    exposed = of_kind(found, "Service", "relaax-broker-frontend")
    assert exposed["spec"]["type"] == "LoadBalancer"
    assert [p["port"] for p in exposed["spec"]["ports"]] == [config.broker.frontend.port]
    collector = of_kind(found, "Service", "relaax-collector")
    metrics_port = config.metrics.endpoint.port
    assert metrics_port in {p["port"] for p in collector["spec"]["ports"]}
    assert cluster["metrics"]["endpoint"] == f"tcp://relaax-collector:{metrics_port}"
    ps = config.parameter_servers
    shard_service = of_kind(found, "Service", "relaax-shard")
    assert shard_service["spec"]["clusterIP"] == "None"  # headless: a DNS name per pod
    shard_ports = {p["port"] for p in shard_service["spec"]["ports"]}
    statefulset = of_kind(found, "StatefulSet", "relaax-shard")
    assert (
        statefulset["spec"]["replicas"] == 2
        and statefulset["spec"]["serviceName"] == "relaax-shard"
    )
    assert cluster["parameter_servers"]["endpoints"]["hosts"] == [
        "relaax-shard-0.relaax-shard", "relaax-shard-1.relaax-shard"
    ]  # fmt: skip
    for i in range(2):
        for port in (ps.endpoints.gradients_port + i, ps.endpoints.weights_port + i):
            assert port in shard_ports and port in container_ports(statefulset)
    gateway = of_kind(found, "Service", "relaax-gateway")
    assert [p["port"] for p in gateway["spec"]["ports"]] == [config.gateway.port]
    assert cluster["gateway"]["host"] == "0.0.0.0" and cluster["bind_all_interfaces"] is True
    # each pod's probes and scrape annotation name the /metrics port its daemon binds
    for name, daemon in (("relaax-broker", "broker"), ("relaax-collector", "collector"),
                         ("relaax-worker", "workers"), ("relaax-gateway", "gateway")):  # fmt: skip
        pod = of_kind(found, "Deployment", name)["spec"]["template"]
        port = cluster["prometheus"][daemon]
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        probe = pod["spec"]["containers"][0]["livenessProbe"]["httpGet"]
        assert probe == {"path": "/healthz", "port": port}
    assert cluster["prometheus"]["host"] == "0.0.0.0"
    hpa = of_kind(found, "HorizontalPodAutoscaler", "relaax-worker")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "relaax-worker"
    for name in ("relaax-broker", "relaax-collector"):  # never two brokers at once
        assert of_kind(found, "Deployment", name)["spec"]["strategy"] == {"type": "Recreate"}
    assert hpa["spec"]["metrics"][0]["external"]["metric"]["name"] == LOAD_METRIC
    assert cluster["parameter_servers"]["delay_compensation_lambda"] == 1e-4  # still a float
    # the adapter rule the HPA needs, the same in the generated README and in the docs
    assert ADAPTER_RULE in (out / "README.md").read_text()
    assert ADAPTER_RULE in (ROOT / "docs" / "kubernetes.md").read_text()
    assert f'as: "{LOAD_METRIC}"' in ADAPTER_RULE


def test_the_keys_are_a_secret_mounted_where_the_config_looks(full) -> None:
    _, out, keys = full
    found = objects(out)
    secret = of_kind(found, "Secret", "relaax-keys")
    files = sorted(p for p in keys.rglob("*") if p.is_file())
    assert len(secret["data"]) == len(files)
    cluster = yaml.safe_load(of_kind(found, "ConfigMap", "relaax-app")["data"]["app.cluster.yaml"])
    for item in found:
        if item["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = item["spec"]["template"]["spec"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == "keys"]
        items = {i["key"]: i["path"] for i in volume["secret"]["items"]}
        for key, path in items.items():  # each file's bytes under its path in the keys folder
            assert base64.b64decode(secret["data"][key]) == (keys / path).read_bytes()
        # a pod holds its own role's secret key and every public key, no other secret key
        role = KEY_ROLES[item["metadata"]["labels"]["app.kubernetes.io/component"]]
        secrets = {p.split("/")[0] for p in items.values() if p.endswith(".key_secret")}
        assert secrets == {role}, item["metadata"]["name"]
        publics = {p for p in items.values() if p.endswith(".key")}
        assert publics == {str(p.relative_to(keys)) for p in files if p.suffix == ".key"}
        mounts = pod["containers"][0]["volumeMounts"]
        assert {
            "name": "keys",
            "mountPath": cluster["security"]["keys_dir"],
            "readOnly": True,
        } in mounts


def test_the_cluster_app_loads_and_binds_every_interface(plain, tmp_path) -> None:
    _, out = plain
    cluster = of_kind(objects(out), "ConfigMap", "relaax-app")["data"]["app.cluster.yaml"]
    path = out / "app" / "app.cluster.yaml"  # where the pods mount it: relative paths as there
    path.write_text(cluster)
    config = load_config(path)
    assert config.workers.count == 1 and not config.autoscale.enabled
    assert config.parameter_servers.gradients_endpoint(0).startswith(
        "tcp://relaax-shard-0.relaax-shard:"
    )
    specs = socket_map(config)
    assert specs["broker.frontend"].bind_endpoint == f"tcp://*:{config.broker.frontend.port}"
    assert specs["client.frontend"].bind_endpoint is None  # connecting sockets use the name
    # a bound socket with bind_all_interfaces listens everywhere: a peer reaches it on loopback
    app = yaml.safe_load((ROOT / "conf" / "cartpole.yaml").read_text())
    port = free_port()
    app.update(bind_all_interfaces=True, broker={"admin": f"tcp://relaax-broker.invalid:{port}"})
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(app))
    local = load_config(tmp_path / "a.yaml")
    context = zmq.Context()
    router = open_socket(context, socket_map(local)["broker.admin"])
    dealer = context.socket(zmq.DEALER)
    try:
        dealer.connect(f"tcp://127.0.0.1:{port}")
        dealer.send(b"ping")
        assert router.poll(5000) and router.recv_multipart()[1] == b"ping"
    finally:
        dealer.close(0)
        router.close(0)
        context.term()


def test_the_docker_build_context_is_complete(plain) -> None:
    app_path, out = plain
    text = (out / "Dockerfile").read_text()
    assert "torch==2.13.0" in text and "download.pytorch.org/whl/cpu" in text
    copies = [line.split()[1] for line in text.splitlines() if line.startswith("COPY ")]
    assert copies == ["src/", "app/"]
    # the builder gets only what is copied: not k8s/ (it may hold the keys)
    assert (out / ".dockerignore").read_text().split() == ["*", "!src", "!app"]
    for source in copies:
        assert (out / source).is_dir() and any((out / source).iterdir()), source
    src = out / "src"
    for needed in ("setup.py", "pyproject.toml", "README.md", "relaax_zmq/__init__.py",
                   "broker/broker.py", "ext", "envs/js/package.json", "relaax_zmq/presets"):  # fmt: skip
        assert (src / needed).exists(), needed
    assert list((ROOT / "ext").glob("*.pyx")) and list((src / "ext").glob("*.pyx"))
    assert not list(src.rglob("*.so")) and not list(src.rglob("__pycache__"))
    assert (out / "app" / app_path.name).is_file()


def test_bad_input_is_refused_naming_what_was_expected(tmp_path) -> None:
    missing = deploy(tmp_path / "nope.yaml", tmp_path / "out")
    assert missing.returncode == 1 and "no app config at" in missing.stderr
    app = yaml.safe_load((ROOT / "conf" / "cartpole.yaml").read_text())
    app["broker"] = {"frontend": "ipc:///tmp/relaax-frontend"}
    (tmp_path / "app.yaml").write_text(yaml.safe_dump(app))
    ipc = deploy(tmp_path / "app.yaml", tmp_path / "out")
    assert ipc.returncode == 1, ipc.stderr
    assert "broker.frontend: expected a tcp://HOST:PORT endpoint" in ipc.stderr
    assert "ipc:///tmp/relaax-frontend" in ipc.stderr
    few = deploy(
        ROOT / "conf" / "cartpole.yaml", tmp_path / "out", "--workers", "3", "--max-workers", "2"
    )
    assert few.returncode == 1 and "--workers <= --max-workers" in few.stderr
    assert namespace("rl-1") == "rl-1"
    with pytest.raises(argparse.ArgumentTypeError, match="expected a DNS label"):
        namespace("RL_1")


def _cluster(tmp_path: Path, **sections: Any) -> tuple[Any, dict[str, Any]]:
    """(config, cluster_app mapping) of conf/cartpole.yaml with ``sections`` merged in."""
    app = yaml.safe_load((ROOT / "conf" / "cartpole.yaml").read_text())
    for key, value in sections.items():
        app[key] = {**app.get(key, {}), **value}
    (tmp_path / "app.yaml").write_text(yaml.safe_dump(app))
    config = load_config(tmp_path / "app.yaml")
    return config, cluster_app(app, config)


def test_checkpoints_in_s3_only_need_no_volume(tmp_path) -> None:
    checkpoint = {"dir": None, "s3": {"bucket": "relaax-checkpoints"}}
    config, app = _cluster(tmp_path, parameter_servers={"checkpoint": checkpoint})
    found = manifests(config, app, image="relaax:1")
    statefulset = of_kind(found, "StatefulSet", "relaax-shard")
    kubernetes_validate.validate(statefulset, KUBERNETES, strict=True)
    assert "volumeClaimTemplates" not in statefulset["spec"]
    mounts = statefulset["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert [m["name"] for m in mounts] == ["app"]
    assert '/opt/relaax-zmq[s3]"' in dockerfile(config, "app")
    # an algorithm without a parameter-server side runs no shards
    kinds = {o["kind"] for o in manifests(config, app, image="relaax:1", shards=False)}
    assert "StatefulSet" not in kinds and "Deployment" in kinds


def test_files_the_daemons_read_must_lie_in_the_app_folder(tmp_path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "token").write_text("t" * 32)
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "secrets").mkdir()
    (app_dir / "secrets" / "token").write_text("t" * 32)
    inside = {"enabled": True, "token_file": str(app_dir / "secrets" / "token")}
    _, app = _cluster(app_dir, gateway=inside)
    assert app["gateway"]["token_file"] == "secrets/token"  # as the pods see it under /app
    with pytest.raises(ConfigError, match=r"gateway\.token_file: expected a path inside the app"):
        _cluster(app_dir, gateway={"enabled": True, "token_file": str(outside / "token")})


def test_shard_hosts_and_any_interface() -> None:
    app = yaml.safe_load((ROOT / "conf" / "cartpole.yaml").read_text())
    endpoints = {"hosts": ["a.ps", "b.ps"], "gradients_port": 7100, "weights_port": 7200}
    app["parameter_servers"] = {"shards": 2, "endpoints": endpoints}
    config = parse_config(app, "<test>")
    assert config.parameter_servers.gradients_endpoint(1) == "tcp://b.ps:7101"
    assert config.endpoints["parameter_servers[0].weights"] == "tcp://a.ps:7200"
    app["parameter_servers"]["shards"] = 3
    with pytest.raises(ConfigError, match=r"endpoints\.hosts: expected one host per shard \(3\)"):
        parse_config(app, "<test>")
    app["parameter_servers"] = {"shards": 1, "endpoints": {"hosts": ["*"]}}
    with pytest.raises(ConfigError, match=r"hosts\[0\]: workers connect to this host"):
        parse_config(app, "<test>")
    assert any_interface("tcp://relaax-broker:7000") == "tcp://*:7000"
    assert any_interface("ipc:///tmp/x") is None
