"""Key files fail closed: modes, missing and revoked keys, the allow-list, the CLI and config."""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

import pytest
import zmq
import zmq.auth

from relaax_zmq.cli import keys as keys_cli
from relaax_zmq.config import parse_config
from relaax_zmq.errors import AuthError, ConfigError
from relaax_zmq.security import KeyRing, generate, list_keys, load_key_pair, revoke
from relaax_zmq.security.keys import ROLES, secret_path


def test_generated_secret_is_0600_and_a_zeromq_certificate(tmp_path: Path) -> None:
    info = generate(tmp_path, "worker", "host3")
    secret = tmp_path / "worker" / "host3.key_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    public, secret_key = zmq.auth.load_certificate(secret)
    assert public.decode() == info.public_key and zmq.curve_public(secret_key) == public
    assert zmq.auth.load_certificate(tmp_path / "worker" / "host3.key") == (public, None)
    assert load_key_pair(tmp_path, "worker", "host3") == (public, secret_key)
    with pytest.raises(FileExistsError, match="--force"):
        generate(tmp_path, "worker", "host3")


def test_a_secret_readable_by_others_is_refused_naming_file_and_mode(tmp_path: Path) -> None:
    generate(tmp_path, "broker")
    path = secret_path(tmp_path, "broker", "broker")
    os.chmod(path, 0o644)
    with pytest.raises(AuthError) as err:
        load_key_pair(tmp_path, "broker", "broker")
    assert str(path) in str(err.value) and "0644" in str(err.value) and "0600" in str(err.value)


def test_a_missing_secret_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match=r"broker/broker\.key_secret is missing"):
        load_key_pair(tmp_path, "broker", "broker")


def test_bad_roles_and_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected one of broker"):
        generate(tmp_path, "root")
    with pytest.raises(ValueError, match="key name"):
        generate(tmp_path, "client", "../escape")


def test_revoked_key_leaves_the_ring_after_reload_even_if_copied_back(tmp_path: Path) -> None:
    alice = generate(tmp_path, "client", "alice")
    bob = generate(tmp_path, "client", "bob")
    public_file = (tmp_path / "client" / "alice.key").read_bytes()
    ring = KeyRing(tmp_path, reload_interval=3600.0)
    assert ring.lookup(alice.public_key.encode()) == ("client", "alice")
    assert ring.lookup(b"x" * 40) == "unknown"
    revoke(tmp_path, "client", "alice")
    assert not (tmp_path / "client" / "alice.key_secret").exists()
    (tmp_path / "client" / "alice.key").write_bytes(public_file)  # someone copies it back
    ring.reload()
    assert ring.lookup(alice.public_key.encode()) == "revoked"
    assert ring.lookup(bob.public_key.encode()) == ("client", "bob")
    listed = {(k.name, k.revoked) for k in list_keys(tmp_path)}
    assert listed == {("alice", True), ("bob", False)}


def test_ring_reloads_by_itself_when_files_change(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path, reload_interval=0.0)
    carol = generate(tmp_path, "worker", "carol")
    assert ring.lookup(carol.public_key.encode()) == ("worker", "carol")
    assert ring.refresh() is False  # nothing changed since


def _cli(tmp_path: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    keys_cli.add_arguments(parser)
    return keys_cli.run(parser.parse_args([*argv, "--keys-dir", str(tmp_path / "k")]))


def test_cli_generates_every_role_lists_and_revokes(tmp_path: Path, capsys) -> None:
    assert _cli(tmp_path, "generate") == 0
    assert len(list_keys(tmp_path / "k")) == len(ROLES)  # one pair per role
    assert _cli(tmp_path, "generate", "client", "alice") == 0
    assert _cli(tmp_path, "generate") == 0  # nothing missing: nothing new
    assert "0 key(s)" in capsys.readouterr().out.splitlines()[-1]
    assert _cli(tmp_path, "revoke", "client", "alice") == 0
    assert _cli(tmp_path, "list", "--json") == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert '"name": "alice"' in out and '"revoked": true' in out
    with pytest.raises(keys_cli.CliError, match="exists"):
        _cli(tmp_path, "generate", "broker")


def _config(tmp_path: Path, **security):
    return parse_config(
        {
            "version": 1,
            "environment": {"run": "bandit"},
            "algorithm": {"name": "reinforce"},
            "security": security,
        },
        app_dir=tmp_path,
    )


def test_config_checks_key_names_and_needs_keys_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="security.keys_dir: required"):
        _config(tmp_path, curve=True)
    with pytest.raises(ConfigError, match="security.key_names.root: expected a role"):
        _config(tmp_path, curve=True, keys_dir=".", key_names={"root": "x"})
    with pytest.raises(ConfigError, match="security.key_names.client: key name"):
        _config(tmp_path, curve=True, keys_dir=".", key_names={"client": "a/b"})
    config = _config(tmp_path, curve=True, keys_dir=".", key_names={"worker": "host3"})
    assert config.security.key_name("worker") == "host3"
    assert config.security.key_name("broker") == "broker"
