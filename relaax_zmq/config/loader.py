"""Read an app's YAML file into an ``AppConfig``; errors carry the file and line.

The YAML dialect is PyYAML's safe one with two fixes: ``1e-4`` is a float (YAML
1.2 reads it so; PyYAML 1.1 would give a string) and a key given twice in one
mapping is an error rather than silently the last one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from relaax_zmq.config.app import AppConfig
from relaax_zmq.config.convert import config_fields, from_mapping
from relaax_zmq.config.describe import describe_value, key_path
from relaax_zmq.errors import ConfigError

_FLOAT = re.compile(
    r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$|^[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?$"
)
_PARENT = re.compile(r"(\.[^.\[]*|\[\d+\])$")


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                key_node, yaml.ScalarNode
            ):
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def load_config(path: str | Path, overrides: Mapping[str, object] | None = None) -> AppConfig:
    """Load and check the app config in YAML file ``path``.

    ``overrides`` maps dotted keys to values that replace the file's
    (``{"workers.count": 4}``), as a command line's ``--set`` would.

    Raises:
        ConfigError: the file is missing or unreadable, not YAML, or not a valid
            config; the message names the key path and, where known, the line.
    """
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError("", f"cannot read config file {str(file)!r}: {reason}") from None
    data, lines = _parse_yaml(text, str(file))
    try:
        return parse_config(
            {} if data is None else data,
            str(file),
            app_dir=file.resolve().parent,
            overrides=overrides,
        )
    except ConfigError as exc:
        overridden = any(re.match(rf"{re.escape(k)}($|[.\[])", exc.path) for k in overrides or {})
        line = None if overridden else _line_of(exc.path, lines)
        if line is None:
            raise
        message = str(exc).removeprefix(f"{exc.path}: ")
        raise ConfigError(exc.path, f"{message} ({file}, line {line})") from None


def read_yaml(path: str | Path) -> Any:
    """The data of YAML file ``path`` in the app files' dialect (``1e-4`` a float, no key
    given twice), as ``load_config`` reads it; ConfigError when it is not YAML."""
    return _parse_yaml(Path(path).read_text(encoding="utf-8"), str(path))[0]


def parse_config(
    mapping: object,
    source: str = "<mapping>",
    *,
    app_dir: str | Path | None = None,
    overrides: Mapping[str, object] | None = None,
) -> AppConfig:
    """Check a parsed config (``mapping``) and build the ``AppConfig``.

    Relative paths resolve against ``app_dir`` (default: the current folder).
    """
    if not isinstance(mapping, Mapping):
        raise ConfigError(
            "", f"{source}: expected a mapping of sections, got {describe_value(mapping)}"
        )
    if overrides:
        mapping = apply_overrides(mapping, overrides)
    base = Path(app_dir).expanduser().resolve() if app_dir is not None else Path.cwd()
    return from_mapping(
        AppConfig, mapping, base_dir=base, fixed={"app_dir": base, "source": source}
    )


def apply_overrides(mapping: Mapping[str, Any], overrides: Mapping[str, object]) -> dict[str, Any]:
    """A copy of ``mapping`` with each dotted key of ``overrides`` set (sections created)."""
    result = dict(mapping)
    for dotted, value in overrides.items():
        node, parts = result, dotted.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is not None and not isinstance(child, Mapping):
                raise ConfigError(".".join(parts[: i + 1]), f"cannot set {dotted}: not a mapping")
            node[part] = node = dict(child or {})
        node[parts[-1]] = value
    return result


def to_mapping(obj: object) -> Any:
    """Plain data (dicts, lists, str, numbers) that ``parse_config`` turns back into ``obj``."""
    if hasattr(obj, "__dataclass_fields__") and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in config_fields(type(obj))}
    if isinstance(obj, (str, Path)):
        return str(obj)
    if isinstance(obj, (list, tuple)):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_mapping(v) for k, v in obj.items()}
    return obj


def dump_config(config: AppConfig) -> str:
    """The effective config (defaults filled in, paths resolved) as YAML text."""
    return yaml.safe_dump(to_mapping(config), sort_keys=False)


def _parse_yaml(text: str, source: str) -> tuple[object, dict[str, int]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark else source
        detail = "; ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError("", f"invalid YAML in {where}: {detail}") from None
    except yaml.YAMLError as exc:
        raise ConfigError("", f"invalid YAML in {source}: {exc}") from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    if node is not None:
        _record_lines(node, "", lines, set())
    return data, lines


def _record_lines(node: yaml.Node, path: str, lines: dict[str, int], seen: set[int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in seen:  # an alias: walk each node once, however often it is referenced
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                child = key_path(path, key_node.value)
                lines.setdefault(child, key_node.start_mark.line + 1)
                _record_lines(value_node, child, lines, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, f"{path}[{i}]", lines, seen)


def _line_of(path: str, lines: dict[str, int]) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = _PARENT.sub("", path) if _PARENT.search(path) else ""
    return None
