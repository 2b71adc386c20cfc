"""How config errors name keys, types and values (``broker.frontend``, ``str 'x'``)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union

from relaax_zmq.errors import ConfigError

_NAMES = {int: "int", float: "float", bool: "bool", str: "str", Path: "path (non-empty str)"}
_MAX_REPR = 60


class TypeMismatch(ConfigError):
    """A value of the wrong type at exactly ``path`` (unions try their next member)."""


def key_path(prefix: str, key: str) -> str:
    """The dotted path of ``key`` under ``prefix`` (``broker.admin``)."""
    return f"{prefix}.{key}" if prefix else key


def describe_type(tp: Any) -> str:
    """A type hint in words, as error messages use it (``int or null``, ``list of str``)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return "any value"
    if hasattr(tp, "config_type_name"):
        return tp.config_type_name
    if tp is type(None):
        return "null"
    if origin in (Union, types.UnionType):
        return " or ".join(describe_type(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin is tuple and args and args[-1] is not Ellipsis:
        return f"a list of {len(args)} ({', '.join(describe_type(a) for a in args)})"
    if origin in (list, tuple) or tp in (list, tuple):
        return f"a list of {describe_type(args[0])}" if args else "a list"
    if origin is dict or tp is dict:
        return f"a mapping of str to {describe_type(args[1])}" if args else "a mapping"
    return _NAMES.get(tp, getattr(tp, "__name__", repr(tp)))


def describe_value(value: object, *, bare: bool = False) -> str:
    """A value as YAML wrote it, with its type unless ``bare``: ``str 'two'``, ``bool True``."""
    if value is None:
        return "null"
    text = repr(value)
    if len(text) > _MAX_REPR:
        text = text[: _MAX_REPR - 3] + "..."
    if bare:
        return text
    if isinstance(value, Mapping):
        kind = "mapping"
    elif isinstance(value, (list, tuple)):
        kind = "list"
    else:
        kind = type(value).__name__
    return f"{kind} {text}"


def mismatch(tp: Any, value: object, path: str) -> TypeMismatch:
    """The error for ``value`` not being of type ``tp``."""
    hint = ""
    if isinstance(value, float) and (tp is int or int in typing.get_args(tp)):
        hint = " (write 1_000_000, not 1e6, for an int)"
    return TypeMismatch(path, f"expected {describe_type(tp)}, got {describe_value(value)}{hint}")
