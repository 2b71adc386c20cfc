"""``relaax-zmq keys generate|list|revoke``: the CURVE keys of an app (docs/security.md).

- ``generate [ROLE [NAME]]``: a new key pair for ROLE (broker, shard, metrics, client,
  worker, admin) named NAME (default: the role); without ROLE, the default pair of every
  role that has none yet. Secret files get mode 0600.
- ``list``: every key by role and name, its public key, whether its secret is here (and
  its mode) and whether it is revoked.
- ``revoke ROLE NAME``: add the key to the revoked list and delete its files; running
  daemons refuse it (after ``security.reload_interval``) at its next handshake and on the
  connections it already has, from its next message.

The folder is ``security.keys_dir`` of the app (``-c APP.yaml``) or ``--keys-dir DIR``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from relaax_zmq.cli.common import CliError, add_app_option, add_json_option, load_app, print_json
from relaax_zmq.security import ROLES, KeyInfo, generate, list_keys, revoke

HELP = "generate, list or revoke the CURVE keys of the app"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("generate", "list", "revoke"), help="what to do")
    parser.add_argument("role", nargs="?", choices=ROLES, help="key role")
    parser.add_argument("name", nargs="?", help="key name (default: the role)")
    add_app_option(parser)
    add_json_option(parser)
    parser.add_argument("--keys-dir", type=Path, help="the keys folder (default: the app's)")
    parser.add_argument("--force", action="store_true", help="generate: replace an existing pair")


def run(args: argparse.Namespace) -> int:
    keys_dir = _keys_dir(args)
    if args.action == "generate":
        made = _generate(keys_dir, args.role, args.name, args.force)
        _show(made, args.json, f"generated in {keys_dir}")
        return 0
    if args.action == "revoke":
        if args.role is None or args.name is None:
            raise CliError("keys revoke: give the ROLE and NAME of the key", code=2)
        _show([revoke(keys_dir, args.role, args.name)], args.json, "revoked")
        return 0
    _show(list_keys(keys_dir) if keys_dir.is_dir() else [], args.json, f"keys in {keys_dir}")
    return 0


def _keys_dir(args: argparse.Namespace) -> Path:
    if args.keys_dir is not None:
        return args.keys_dir
    keys_dir = load_app(args.config).security.keys_dir
    if keys_dir is None:
        raise CliError(f"{args.config}: set security.keys_dir, or give --keys-dir DIR")
    return keys_dir


def _generate(keys_dir: Path, role: str | None, name: str | None, force: bool) -> list[KeyInfo]:
    if role is not None:
        try:
            return [generate(keys_dir, role, name, force=force)]
        except FileExistsError as exc:
            raise CliError(f"keys generate: {exc}") from None
    if name is not None:
        raise CliError("keys generate: a NAME needs a ROLE", code=2)
    have = {(k.role, k.name) for k in list_keys(keys_dir)} if keys_dir.is_dir() else set()
    return [generate(keys_dir, r, force=force) for r in ROLES if force or (r, r) not in have]


def _show(keys: list[KeyInfo], as_json: bool, title: str) -> None:
    if as_json:
        print_json({"keys": [dataclasses.asdict(k) for k in keys]})
        return
    print(f"{title}: {len(keys)} key(s)")
    for k in keys:
        mode = "no secret" if k.secret_mode is None else f"secret {k.secret_mode:04o}"
        state = "REVOKED" if k.revoked else mode
        print(f"  {k.role:<8} {k.name:<20} {k.public_key}  {state}")
