"""``KEY=VALUE`` overrides of an app file, as ``--set`` gives them on every command line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from relaax_zmq.errors import ConfigError


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """``{dotted key: value}`` of ``KEY=VALUE`` pairs (the value read as YAML 1.2), for
    ``load_config``'s ``overrides``; a later pair for the same key wins.

    Raises:
        ConfigError: a pair that is not ``KEY=VALUE`` with a dotted KEY, or a value that
            is not YAML (the message names the key and the text).
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    reader = YAML(typ="safe", pure=True)
    found: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not all(p.strip() for p in key.split(".")):
            raise ConfigError("--set", f"expected KEY=VALUE with a dotted KEY, got {pair!r}")
        try:
            found[key] = reader.load(text) if text.strip() else None
        except YAMLError as exc:
            problem = getattr(exc, "problem", None) or exc
            raise ConfigError(
                f"--set {key}", f"expected a YAML value, got {text!r} ({problem})"
            ) from None
    return found
