"""No pickle on any socket path: the package source never unpickles or imports pickle.

``bench/`` is left out: ``bench/codec.py`` times pickle in-process, as a baseline only.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("relaax_zmq", "broker", "algorithms", "envs")
FORBIDDEN = re.compile(
    r"recv_pyobj|send_pyobj|recv_serialized|send_serialized|pickle\.loads?|"
    r"^\s*(import\s+(_?pickle|cPickle|dill|cloudpickle)|from\s+(_?pickle|cPickle|dill|cloudpickle)\s+import)",
    re.MULTILINE,
)


def test_no_pickle_in_the_package_source() -> None:
    scanned, found = 0, []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py*")):
            if path.suffix not in (".py", ".pyx", ".pxd"):
                continue
            scanned += 1
            text = path.read_text(encoding="utf-8", errors="replace")
            found += [
                f"{path.relative_to(ROOT)}: {m.group(0).strip()}" for m in FORBIDDEN.finditer(text)
            ]
    assert scanned > 100, f"scanned only {scanned} files: is the source tree where expected?"
    assert found == [], "pickle on a socket path:\n" + "\n".join(found)


def test_the_scan_catches_what_it_looks_for() -> None:
    bad = "import pickle\nx = sock.recv_pyobj()\nfrom cPickle import loads\ny = pickle.loads(b)\n"
    assert len(list(FORBIDDEN.finditer(bad))) == 4
