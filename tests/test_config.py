"""The app config: presets, documented defaults, every kind of error, and properties."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from relaax_zmq.config import (
    AppConfig,
    config_fields,
    dump_config,
    from_mapping,
    key_path,
    load_config,
    option,
    parse_config,
    to_mapping,
)
from relaax_zmq.errors import ConfigError
from relaax_zmq.runtime.registry import algorithm_names

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
DOCS = ROOT / "docs" / "config.md"
MINIMAL = {"algorithm": {"name": "da3c"}, "environment": {"name": "CartPole-v1"}}


def with_keys(**overrides: object) -> dict[str, Any]:
    """MINIMAL with dotted keys set: ``with_keys(**{"workers.count": 2})``."""
    from relaax_zmq.config import apply_overrides

    return apply_overrides(MINIMAL, overrides)


def error_of(mapping: object, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(mapping, **kwargs)
    return info.value


def write(tmp_path: Path, text: str, name: str = "app.yaml") -> Path:
    file = tmp_path / name
    file.write_text(text)
    return file


def all_keys(cls: type = AppConfig, prefix: str = "") -> list[tuple[str, Any, dataclasses.Field]]:
    """(dotted key, type hint, field) of every key, nested sections included."""
    hints = typing.get_type_hints(cls)
    found = []
    for f in config_fields(cls):
        path = key_path(prefix, f.name)
        found.append((path, hints[f.name], f))
        for member in (hints[f.name], *typing.get_args(hints[f.name])):
            if dataclasses.is_dataclass(member):
                found += all_keys(member, path)
    return found


# --- presets and defaults -------------------------------------------------------------------


def test_default_app_is_the_bandit_with_a_policy_gradient() -> None:
    config = load_config(CONF / "app.yaml")
    assert config.environment.run == "bandit"
    assert config.environment.run.builtin
    assert config.algorithm.name == "reinforce"
    assert config.algorithm.config["optimizer"]["learning_rate"] == 0.05
    assert config.app_dir == CONF
    assert config.source.endswith("app.yaml")


def test_cartpole_preset_runs_da3c_on_gymnasium() -> None:
    config = load_config(CONF / "cartpole.yaml")
    assert (config.environment.run, config.environment.name) == ("gym", "CartPole-v1")
    assert config.environment.vectorized and config.environment.clients == 32
    assert config.environment.block_sessions() == [range(0, 16), range(16, 32)]
    assert config.algorithm.name == "da3c"
    assert config.parameter_servers.max_global_step == 1_000_000
    rate = config.algorithm.config["optimizer"]["learning_rate"]
    assert rate == {"kind": "linear", "initial": 3e-3, "final": 3e-4, "steps": 500_000}


def test_the_commented_keys_of_app_yaml_are_the_defaults(tmp_path: Path) -> None:
    text = (CONF / "app.yaml").read_text()
    uncommented = re.sub(r"(?m)^(\s*)# (\s*[a-z_]+:.*)$", r"\1\2", text)
    assert uncommented.count("\n  frontend:") == 1  # the commented sections really came back
    written = load_config(write(tmp_path, uncommented))
    as_shipped = load_config(write(tmp_path, text, "shipped.yaml"))
    assert dataclasses.replace(written, source="") == dataclasses.replace(as_shipped, source="")


def test_defaults_are_as_documented() -> None:
    config = parse_config(MINIMAL, app_dir="/srv/app")
    assert config.broker.frontend == "tcp://127.0.0.1:7000"
    assert config.broker.frontend.port == 7000
    assert config.broker.heartbeat_interval == 1.0
    assert config.broker.heartbeat_liveness == 3
    assert config.workers.count == 1
    assert config.parameter_servers.shards == 1
    assert config.parameter_servers.effective_combine == "fifo"
    assert config.parameter_servers.checkpoint.every_seconds == 900.0
    assert config.parameter_servers.checkpoint.dir == Path("/srv/app/logs/checkpoints")
    assert config.metrics.logdir == Path("/srv/app/logs/metrics")
    assert config.metrics.enabled is None and config.metrics.disabled == ()
    assert config.protocol.max_elements == 1 << 28
    assert (config.protocol.max_tensors, config.protocol.max_sessions) == (64, 4096)
    assert config.security.curve is False


def test_docs_list_every_key_with_its_real_default() -> None:
    rows = {}
    for line in DOCS.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[2]
    for path, _, f in all_keys():
        assert path in rows, f"docs/config.md lacks {path}"
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            continue
        if dataclasses.is_dataclass(default):
            continue
        documented = re.match(r"`([^`]*)`", rows[path])
        assert documented, f"docs/config.md: no default for {path}"
        assert yaml.safe_load(documented[1] or '""') == to_mapping(default), path


def test_config_is_frozen() -> None:
    config = parse_config(MINIMAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.workers.count = 2  # type: ignore[misc]


def test_round_trip_through_plain_data_and_yaml() -> None:
    config = load_config(CONF / "cartpole.yaml")
    again = parse_config(to_mapping(config), config.source, app_dir=config.app_dir)
    assert again == config
    from_yaml = parse_config(yaml.safe_load(dump_config(config)), config.source, app_dir=CONF)
    assert from_yaml == config


def test_overrides_replace_file_values() -> None:
    config = load_config(
        CONF / "app.yaml", overrides={"workers.count": 4, "broker.admin": "ipc://a"}
    )
    assert config.workers.count == 4
    assert config.broker.admin == f"ipc://{CONF / 'a'}"
    with pytest.raises(ConfigError, match=r"^workers\.count: expected int, got str 'x'"):
        load_config(CONF / "app.yaml", overrides={"workers.count": "x"})
    with pytest.raises(ConfigError) as info:  # no line: the file is not where the value came from
        load_config(CONF / "app.yaml", overrides={"environment.clients": 0})
    assert str(info.value) == "environment.clients: expected an int >= 1, got 0"
    with pytest.raises(ConfigError) as info:
        load_config(CONF / "app.yaml", overrides={"environment.max_episodes": 0})
    assert str(info.value) == "environment.max_episodes: expected an int >= 1, got 0"


# --- errors: each kind names the full key path -------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"brokr": {}},
            "brokr: unknown key (did you mean 'broker'?); known keys: algorithm, autoscale, bind_all_interfaces,",
        ),
        (
            {"broker.frontnd": "x"},
            "broker.frontnd: unknown key (did you mean 'frontend'?); known keys: admin, backend,",
        ),
        ({"parameter_servers.checkpoint.kep": 1}, "parameter_servers.checkpoint.kep: unknown key"),
        ({"workers.count": "two"}, "workers.count: expected int, got str 'two'"),
        ({"workers.count": True}, "workers.count: expected int, got bool True"),
        ({"workers.count": 2.0}, "workers.count: expected int, got float 2.0 (write 1_000_000"),
        ({"environment.vectorized": 1}, "environment.vectorized: expected bool, got int 1"),
        (
            {"broker.heartbeat_interval": -1},
            "broker.heartbeat_interval: expected a number > 0, got -1",
        ),
        (
            {"broker.heartbeat_interval": float("nan")},
            "broker.heartbeat_interval: expected a finite number",
        ),
        ({"workers.count": 0}, "workers.count: expected an int >= 1, got 0"),
        (
            {"parameter_servers.checkpoint.keep": 0},
            "parameter_servers.checkpoint.keep: expected an int >= 1, got 0",
        ),
        (
            {"protocol.max_tensors": 70000},
            "protocol.max_tensors: expected an int >= 1 and <= 65535, got 70000",
        ),
        ({"workers.count": None}, "workers.count: expected int, got null"),
        ({"environment.seed": "x"}, "environment.seed: expected int or null, got str 'x'"),
        (
            {"parameter_servers.update": "asyn"},
            "parameter_servers.update: expected one of 'async', 'sync', got str 'asyn'",
        ),
        (
            {"log_level": "info"},
            "log_level: expected one of 'DEBUG', 'INFO', 'WARNING', 'ERROR', got str 'info'",
        ),
        ({"metrics.disabled": ["a", "b", 3]}, "metrics.disabled[2]: expected str, got int 3"),
        ({"metrics.disabled": "a"}, "metrics.disabled: expected a list of str, got str 'a'"),
        (
            {"environment.env_kwargs": [1]},
            "environment.env_kwargs: expected a mapping of str to any value, got list [1]",
        ),
        ({"broker": 3}, "broker: expected a mapping, got int 3"),
        (
            {"parameter_servers.checkpoint.s3": "bucket"},
            "parameter_servers.checkpoint.s3: expected a mapping or null, got str 'bucket'",
        ),
        (
            {"parameter_servers.checkpoint.s3": {}},
            "parameter_servers.checkpoint.s3.bucket: missing required key",
        ),
        (
            {"parameter_servers.checkpoint.s3": {"bucket": "B!"}},
            "parameter_servers.checkpoint.s3.bucket: expected an S3 bucket name",
        ),
        ({"metrics.logdir": ""}, "metrics.logdir: expected path (non-empty str), got str ''"),
        ({"version": 2}, "version: expected one of 1, got int 2"),
    ],
)
def test_errors_name_the_key_and_what_was_expected(overrides: dict, message: str) -> None:
    error = error_of(with_keys(**overrides))
    assert str(error).startswith(message), str(error)
    assert error.path == message.partition(":")[0]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"broker.rebalance_timeout": 0.5},
            "broker.rebalance_timeout: expected a number > broker.heartbeat_interval (1.0), got 0.5",
        ),
        (
            {"broker.retry_backoff_max": 0.01},
            "broker.retry_backoff_max: expected a number >= broker.retry_backoff_initial",
        ),
        (
            {"broker.admin": "tcp://127.0.0.1:7000"},
            "broker.admin: 'tcp://127.0.0.1:7000' is also broker.frontend",
        ),
        (
            {"parameter_servers.endpoints.gradients_port": 6999, "parameter_servers.shards": 2},
            "parameter_servers.endpoints.gradients_port: uses ports 6999..7000, already taken by broker.frontend (port 7000)",
        ),
        (
            {"parameter_servers.shards": 200},
            "parameter_servers.endpoints.weights_port: uses ports 7200..7399, already taken by parameter_servers.endpoints.gradients_port",
        ),
        (
            {"parameter_servers.endpoints.weights_port": 65535, "parameter_servers.shards": 2},
            "parameter_servers.endpoints.weights_port: 2 shards need ports 65535..65536",
        ),
        (
            {"metrics.endpoint": "tcp://10.0.0.1:7001"},
            "metrics.endpoint: uses port 7001, already taken by broker.backend",
        ),
        (
            {"parameter_servers.update": "sync", "parameter_servers.combine": "fifo"},
            "parameter_servers.combine: update 'sync' averages each round",
        ),
        (
            {"metrics.enabled": ["a", "b"], "metrics.disabled": ["c", "b"]},
            "metrics.disabled[1]: 'b' is also in metrics.enabled",
        ),
        (
            {"environment.vectorized": True, "environment.clients": 5000},
            "environment.clients: a vectorized block sends its sessions in one message; expected at most protocol.max_sessions (4096) per block, got 5000 (5000 clients in 1 blocks)",
        ),
        (
            {"environment.vectorized": True, "environment.clients": 9000, "environment.blocks": 2},
            "environment.clients: a vectorized block sends its sessions in one message; expected at most protocol.max_sessions (4096) per block, got 4500 (9000 clients in 2 blocks)",
        ),
        (
            {"environment.blocks": 2},
            "environment.blocks: expected 1 unless vectorized is true, got 2",
        ),
        ({"environment.blocks": 0}, "environment.blocks: expected an int >= 1, got 0"),
        (
            {"broker.max_message_bytes": 1 << 31},
            "broker.max_message_bytes: expected an int <= protocol.max_message_bytes",
        ),
        ({"environment.name": None}, "environment.name: required when run is 'gym'"),
        ({"security.curve": True}, "security.keys_dir: required when security.curve is true"),
        (
            {"security.curve": True, "security.keys_dir": "no/such/dir"},
            "security.keys_dir: expected an existing folder",
        ),
        ({"algorithm.path": "algo"}, "algorithm: expected exactly one of name or path, got both"),
        ({"algorithm.name": None}, "algorithm: expected exactly one of name or path, got neither"),
        (
            {"algorithm.name": "da3cc"},
            f"algorithm.name: expected one of {', '.join(algorithm_names())}, got 'da3cc'",
        ),
        ({"workers.device": "gpu"}, "workers.device: expected cpu, cuda, cuda:N or mps, got 'gpu'"),
        (
            {"parameter_servers.endpoints.host": "*"},
            "parameter_servers.endpoints.host: workers connect to this host",
        ),
    ],
)
def test_rules_across_keys(overrides: dict, message: str) -> None:
    assert str(error_of(with_keys(**overrides))).startswith(message)


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        (
            "127.0.0.1:7000",
            "expected an endpoint (tcp://host:port, ipc://path or inproc://name), got '127.0.0.1:7000'",
        ),
        ("udp://127.0.0.1:7000", "expected an endpoint"),
        ("tcp://127.0.0.1", "expected tcp://host:port (numeric port)"),
        ("tcp://127.0.0.1:*", "expected tcp://host:port (numeric port)"),
        ("tcp://127.0.0.1:²", "expected tcp://host:port (numeric port)"),
        ("tcp://127.0.0.1:70000", "expected a port in 1..65535, got 70000"),
        ("tcp://127.0.0.1:0", "expected a port in 1..65535, got 0"),
        ("tcp://bad host:7000", "expected a host name, IPv4 address, * or [IPv6], got 'bad host'"),
        ("tcp://[zz::1]:7000", "expected a host name"),
        ("ipc://" + "x" * 200, "expected an ipc path of at most 107 bytes"),
        (7000, "expected an endpoint (tcp://host:port, ipc://path or inproc://name), got int 7000"),
    ],
)
def test_endpoints_are_checked(endpoint: object, message: str) -> None:
    error = error_of(with_keys(**{"broker.frontend": endpoint}))
    assert error.path == "broker.frontend"
    assert str(error).startswith(f"broker.frontend: {message}")


def test_good_endpoints_are_accepted() -> None:
    config = parse_config(
        with_keys(
            **{
                "broker.frontend": "tcp://[::1]:7000",
                "broker.backend": "tcp://*:7001",
                "broker.admin": "inproc://admin",
                "metrics.endpoint": "ipc://run/metrics.sock",
            }
        ),
        app_dir="/srv/app",
    )
    assert config.broker.frontend.host == "[::1]" and config.broker.frontend.port == 7000
    assert config.broker.admin.transport == "inproc" and config.broker.admin.port is None
    assert config.metrics.endpoint == "ipc:///srv/app/run/metrics.sock"
    assert config.endpoints["parameter_servers[0].weights"] == "tcp://127.0.0.1:7200"


def test_a_valid_s3_location_is_kept() -> None:
    s3 = {"bucket": "my-bucket", "prefix": "runs/1", "endpoint_url": "http://localhost:9000"}
    config = parse_config(with_keys(**{"parameter_servers.checkpoint.s3": s3}))
    assert config.parameter_servers.checkpoint.s3 is not None
    assert config.parameter_servers.checkpoint.s3.endpoint_url == "http://localhost:9000"


# --- files: YAML errors, lines, relative paths ---------------------------------------------


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    file = write(tmp_path, "environment:\n  name: CartPole-v1\n   clients: 3\n")
    with pytest.raises(ConfigError, match=r"invalid YAML in .*app\.yaml, line 3, column 11"):
        load_config(file)


def test_duplicate_key_is_an_error_with_its_line(tmp_path: Path) -> None:
    file = write(tmp_path, "algorithm:\n  name: da3c\nworkers:\n  count: 2\n  count: 3\n")
    with pytest.raises(ConfigError, match=r"line 5, column 3: .*duplicate key 'count'"):
        load_config(file)


def test_value_errors_carry_the_line_of_the_key(tmp_path: Path) -> None:
    text = "algorithm:\n  name: da3c\nenvironment:\n  name: X\nbroker:\n  heartbeat_interval: -1\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert info.value.path == "broker.heartbeat_interval"
    assert str(info.value) == (
        f"broker.heartbeat_interval: expected a number > 0, got -1 ({tmp_path / 'app.yaml'}, line 6)"
    )


def test_list_element_error_carries_its_own_line(tmp_path: Path) -> None:
    text = (
        "algorithm: {name: da3c}\nenvironment: {name: X}\nmetrics:\n  disabled:\n    - a\n    - 5\n"
    )
    with pytest.raises(
        ConfigError, match=r"^metrics\.disabled\[1\]: expected str, got int 5 \(.*line 6\)$"
    ):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file '.*nope\.yaml': No such file"):
        load_config(tmp_path / "nope.yaml")


def test_a_folder_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path)


@pytest.mark.parametrize(("text", "got"), [("- a\n- b\n", "list ['a', 'b']"), ("42\n", "int 42")])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, got: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert str(info.value).endswith(f"app.yaml: expected a mapping of sections, got {got}")
    assert "expected a mapping of sections, got str 'x'" in str(error_of("x"))


def test_empty_file_asks_for_the_algorithm(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^algorithm: missing required key"):
        load_config(write(tmp_path, ""))


def test_yaml_12_floats_and_underscored_ints(tmp_path: Path) -> None:
    text = "algorithm:\n  name: da3c\n  config: {lr: 1e-4, big: 2.5e3}\nenvironment: {name: X}\n"
    text += "parameter_servers: {max_global_step: 1_000_000}\n"
    config = load_config(write(tmp_path, text))
    assert config.algorithm.config == {"lr": 1e-4, "big": 2500.0}
    assert config.parameter_servers.max_global_step == 1_000_000


def test_relative_paths_resolve_against_the_yaml_folder(tmp_path: Path) -> None:
    app = tmp_path / "myapp"
    (app / "algo").mkdir(parents=True)
    (app / "keys").mkdir()
    (app / "env.py").write_text("class Env: ...\n")
    text = (
        "environment: {run: env.py:Env}\nalgorithm: {path: algo}\n"
        "security: {curve: true, keys_dir: keys}\nparameter_servers: {checkpoint: {dir: ck}}\n"
    )
    config = load_config(write(app, text))
    assert config.algorithm.path == app / "algo"
    assert config.environment.run == f"{app / 'env.py'}:Env"
    assert (config.environment.run.module, config.environment.run.attr) == (
        str(app / "env.py"),
        "Env",
    )
    assert config.security.keys_dir == app / "keys"
    assert config.parameter_servers.checkpoint.dir == app / "ck"


def test_custom_runner_file_must_exist(tmp_path: Path) -> None:
    error = error_of(with_keys(**{"environment.run": "missing.py:Env"}), app_dir=tmp_path)
    assert (
        str(error)
        == f"environment.run: expected an existing Python file, got '{tmp_path / 'missing.py'}'"
    )
    error = error_of(with_keys(**{"environment.run": "gymm"}))
    assert str(error).startswith(
        "environment.run: expected 'gym', 'bandit' or 'path/to/module.py:ClassName'"
    )
    dotted = parse_config(with_keys(**{"environment.run": "my_pkg.envs:Robot"}))
    assert dotted.environment.run.module == "my_pkg.envs"


def test_algorithm_folder_must_exist(tmp_path: Path) -> None:
    mapping = {"environment": {"name": "X"}, "algorithm": {"path": "nope"}}
    error = error_of(mapping, app_dir=tmp_path)
    assert str(error) == f"algorithm.path: expected an existing folder, got '{tmp_path / 'nope'}'"


# --- from_mapping for an algorithm's own dataclass -----------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Optimizer:
    kind: Literal["adam", "rmsprop"] = "adam"
    epsilon: float = option(1e-8, gt=0)


@dataclass(frozen=True, kw_only=True)
class _Hyper:
    learning_rate: float = option(1e-3, gt=0)
    hidden_sizes: tuple[int, ...] = (64, 64)
    schedule: dict[str, float] = option(factory=dict)
    pair: tuple[int, str] = (1, "a")
    optimizer: _Optimizer = option(factory=_Optimizer)
    clip: float | None = None


def test_from_mapping_serves_algorithm_configs() -> None:
    hyper = from_mapping(
        _Hyper,
        {
            "learning_rate": 1,
            "hidden_sizes": [8],
            "optimizer": {"kind": "rmsprop"},
            "pair": [2, "b"],
        },
        "algorithm.config",
    )
    assert hyper == _Hyper(
        learning_rate=1.0, hidden_sizes=(8,), optimizer=_Optimizer(kind="rmsprop"), pair=(2, "b")
    )
    assert isinstance(hyper.learning_rate, float)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"learning_rate": 0}, "algorithm.config.learning_rate: expected a number > 0, got 0"),
        ({"hidden_sizes": [8, "x"]}, "algorithm.config.hidden_sizes[1]: expected int, got str 'x'"),
        ({"schedule": {"a": "b"}}, "algorithm.config.schedule.a: expected float, got str 'b'"),
        ({"pair": [1]}, "algorithm.config.pair: expected a list of 2 (int, str), got list [1]"),
        (
            {"optimizer": {"kind": "sgd"}},
            "algorithm.config.optimizer.kind: expected one of 'adam', 'rmsprop', got str 'sgd'",
        ),
        (
            {"optimizer": {"epsilon": -1.0}},
            "algorithm.config.optimizer.epsilon: expected a number > 0, got -1.0",
        ),
        (
            {"optimizer": {"eps": 1}},
            "algorithm.config.optimizer.eps: unknown key (did you mean 'epsilon'?)",
        ),
        ({"clip": "no"}, "algorithm.config.clip: expected float or null, got str 'no'"),
        ({1: 2}, "algorithm.config: keys must be str, got int 1"),
    ],
)
def test_from_mapping_errors(mapping: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_mapping(_Hyper, mapping, "algorithm.config")
    assert str(info.value).startswith(message)


def test_protocol_section_builds_the_codec_limits() -> None:
    limits = parse_config(with_keys(**{"protocol.max_tensors": 8})).protocol.limits()
    assert (limits.max_tensors, limits.max_sessions) == (8, 4096)


# --- properties -----------------------------------------------------------------------------

BASE = {**MINIMAL, "parameter_servers": {"checkpoint": {"s3": {"bucket": "my-bucket"}}}}
KEYS = all_keys()


def _wrong(hint: Any, value: object) -> bool:
    """True where ``value`` is surely of the wrong type for ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return False
    if origin in (Union, types.UnionType):
        return all(_wrong(a, value) for a in args)
    if hint is type(None):
        return value is not None
    if origin is Literal:
        return not any(type(value) is type(a) and value == a for a in args)
    if hasattr(hint, "from_config_value"):
        return not isinstance(value, str)
    if dataclasses.is_dataclass(hint) or origin is dict:
        return not isinstance(value, dict)
    if origin in (list, tuple):
        return not isinstance(value, list)
    if hint is float:
        return type(value) not in (int, float)
    if hint is Path:
        return not (isinstance(value, str) and value)
    return type(value) is not hint


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=6)
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=4), SCALARS, max_size=2),
)
JUNK = st.recursive(
    SCALARS | st.floats(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(key=st.sampled_from(KEYS), value=VALUES)
def test_a_wrong_type_at_any_key_is_a_config_error_at_that_key(key: tuple, value: object) -> None:
    path, hint, _ = key
    assume(_wrong(hint, value))
    from relaax_zmq.config import apply_overrides

    with pytest.raises(ConfigError) as info:
        parse_config(apply_overrides(BASE, {path: value}))
    assert info.value.path == path
    assert " expected " in str(info.value)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(KEYS), value=JUNK)
def test_any_value_at_any_key_gives_a_config_or_a_config_error(key: tuple, value: object) -> None:
    from relaax_zmq.config import apply_overrides

    try:
        config = parse_config(apply_overrides(BASE, {key[0]: value}))
    except ConfigError as exc:  # named by a real key, whatever the value was
        assert re.split(r"[.\[]", exc.path)[0] in {f.name for f in config_fields(AppConfig)}
    else:
        assert isinstance(config, AppConfig)


@pytest.mark.parametrize(
    ("clients", "blocks", "expected"),
    [
        (16, 1, [range(0, 16)]),
        (32, 2, [range(0, 16), range(16, 32)]),
        (5, 2, [range(0, 3), range(3, 5)]),
        (7, 3, [range(0, 3), range(3, 5), range(5, 7)]),
        (2, 4, [range(0, 1), range(1, 2)]),  # at most one block per session
    ],
)
def test_block_sessions_split_the_clients_evenly(clients, blocks, expected) -> None:
    overrides = {"environment.vectorized": True, "environment.clients": clients}
    config = load_config(CONF / "app.yaml", overrides={**overrides, "environment.blocks": blocks})
    assert config.environment.block_sessions() == expected
    config = load_config(CONF / "app.yaml", overrides={**overrides, "environment.blocks": 40_000})
    assert [len(b) for b in config.environment.block_sessions()] == [1] * clients
