"""Plain data (parsed YAML) to typed, frozen dataclasses, by the dataclass's type hints.

``from_mapping`` is the one entry point; every section of the app config and every
algorithm's hyperparameter dataclass goes through it. Supported hints: ``int``,
``float`` (ints accepted), ``bool`` (ints refused), ``str``, ``pathlib.Path``
(relative paths resolve against ``base_dir``), ``X | None``, unions,
``list[X]``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``dict[str, X]``,
``Literal[...]``, ``Any``, nested dataclasses and any class with a
``from_config_value(value, path, base_dir)`` classmethod. Every error is a
``ConfigError`` whose path is the full dotted key (``metrics.disabled[2]``).

Fields declare bounds and a doc line with :func:`option`; a dataclass may define
``validate_config(self, path)`` for rules across its fields; it is called once the
instance exists and raises ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import operator
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from relaax_zmq.config.describe import TypeMismatch, describe_value, key_path, mismatch
from relaax_zmq.config.values import expand_path
from relaax_zmq.errors import ConfigError

T = TypeVar("T")
_MISSING: Any = dataclasses.MISSING
_SCALARS = (bool, int, float, str, Path, type(None))
_OPS = {"ge": (operator.ge, ">="), "gt": (operator.gt, ">"), "le": (operator.le, "<=")}
_OPS["lt"] = (operator.lt, "<")


def option(
    default: Any = _MISSING,
    *,
    factory: Any = _MISSING,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    doc: str = "",
) -> Any:
    """A dataclass field with numeric bounds (None always passes) and a one-line doc."""
    bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
    meta = {"bounds": bounds, "doc": doc}
    return dataclasses.field(default=default, default_factory=factory, metadata=meta)


def from_mapping(
    cls: type[T],
    mapping: object,
    path: str = "",
    *,
    base_dir: Path | None = None,
    fixed: Mapping[str, Any] | None = None,
) -> T:
    """Build dataclass ``cls`` from ``mapping``; missing keys take the field defaults.

    ``base_dir`` resolves relative paths (given or default); ``fixed`` sets fields
    marked ``internal`` in their metadata, which no mapping may set.

    Raises:
        ConfigError: an unknown or missing key, a wrong type or an impossible value,
            named by its full dotted path (``path`` is the prefix, "" at the top).
    """
    if not isinstance(mapping, Mapping):
        raise mismatch(cls, mapping, path)
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in config_fields(cls)}
    for key in mapping:
        if not isinstance(key, str):
            raise ConfigError(path, f"keys must be str, got {describe_value(key)}")
        if key not in known:
            raise ConfigError(key_path(path, key), _unknown(key, known))
    for name, f in known.items():
        if name not in mapping and f.default is _MISSING and f.default_factory is _MISSING:
            raise ConfigError(key_path(path, name), "missing required key")
    values: dict[str, Any] = {}
    for name, f in known.items():
        where = key_path(path, name)
        if name in mapping:
            values[name] = convert(hints[name], mapping[name], where, base_dir)
            _check_bounds(f, values[name], mapping[name], where)
        elif isinstance(f.default_factory, type) and dataclasses.is_dataclass(f.default_factory):
            values[name] = from_mapping(f.default_factory, {}, where, base_dir=base_dir)
        elif isinstance(f.default, Path) and base_dir is not None:
            values[name] = base_dir / f.default.expanduser()
    values.update(fixed or {})
    try:
        obj = cls(**values)
    except ValueError as exc:
        raise ConfigError(path, str(exc)) from exc
    validate = getattr(obj, "validate_config", None)
    if validate is not None:
        validate(path)
    return obj


def config_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of dataclass ``cls`` that a mapping may set (not ``internal`` ones)."""
    return [
        f
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.init and not f.metadata.get("internal")
    ]


def convert(tp: Any, value: object, path: str, base_dir: Path | None = None) -> Any:
    """Convert one ``value`` to the type hint ``tp`` or raise ``ConfigError`` at ``path``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin in (Union, types.UnionType):
        return _union(tp, args, value, path, base_dir)
    if origin is Literal:
        if any(type(value) is type(a) and value == a for a in args):
            return value
        raise mismatch(tp, value, path)
    if hasattr(tp, "from_config_value"):
        return tp.from_config_value(value, path, base_dir)
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, path, base_dir=base_dir)  # type: ignore[arg-type]
    if origin in (list, tuple) or tp in (list, tuple):
        return _sequence(tp, origin or tp, args, value, path, base_dir)
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise mismatch(tp, value, path)
        key_tp, val_tp = args or (str, Any)
        return {
            convert(key_tp, k, path, base_dir): convert(val_tp, v, key_path(path, str(k)), base_dir)
            for k, v in value.items()
        }
    return _scalar(tp, value, path, base_dir)


def _scalar(tp: Any, value: object, path: str, base_dir: Path | None) -> Any:
    if tp not in _SCALARS:
        raise TypeError(f"{path}: the config converter does not support the type hint {tp!r}")
    if tp is Path and isinstance(value, str) and value:
        p = expand_path(value, path)
        return base_dir / p if base_dir is not None and not p.is_absolute() else p
    if isinstance(value, bool) and tp is not bool:
        raise mismatch(tp, value, path)
    if tp is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, tp) or tp is Path:
        raise mismatch(tp, value, path)
    if tp is float and not math.isfinite(value):  # type: ignore[arg-type]
        raise ConfigError(path, f"expected a finite number, got {describe_value(value)}")
    return value


def _union(tp: Any, args: tuple, value: object, path: str, base_dir: Path | None) -> Any:
    if value is None and type(None) in args:
        return None
    for member in (a for a in args if a is not type(None)):
        try:
            return convert(member, value, path, base_dir)
        except TypeMismatch as exc:
            if exc.path != path:  # a deeper key is wrong: that is the useful message
                raise
    raise mismatch(tp, value, path)


def _sequence(tp: Any, kind: type, args: tuple, value: object, path: str, base_dir: Any) -> Any:
    fixed = kind is tuple and bool(args) and args[-1] is not Ellipsis
    if not isinstance(value, (list, tuple)) or (fixed and len(args) != len(value)):
        raise mismatch(tp, value, path)
    hints = args if fixed else (args[0] if args else Any,) * len(value)
    return kind(
        convert(t, v, f"{path}[{i}]", base_dir)
        for i, (t, v) in enumerate(zip(hints, value, strict=True))
    )


def _check_bounds(f: dataclasses.Field, value: object, raw: object, path: str) -> None:
    bounds = f.metadata.get("bounds")
    if not bounds or not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if all(_OPS[k][0](value, v) for k, v in bounds.items()):
        return
    rule = " and ".join(f"{_OPS[k][1]} {v}" for k, v in bounds.items())
    noun = "a number" if isinstance(value, float) else "an int"
    raise ConfigError(path, f"expected {noun} {rule}, got {describe_value(raw, bare=True)}")


def _unknown(key: str, known: Mapping[str, object]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key{hint}; known keys: {', '.join(sorted(known))}"
