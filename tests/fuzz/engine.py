"""The fuzzing process: ``python -m tests.fuzz.engine TARGET [libFuzzer args]``.

Imports the target with every relaax_zmq module it loads instrumented for coverage
(the harness, outside the package, is run and not measured), then hands control to
atheris, which runs until libFuzzer's own limits and exits the process (``runner``
starts and reads it).
``RELAAX_ZMQ_FUZZ_PLANT=HEX`` plants a bug: any input starting with those bytes raises,
so that a test can prove that a failure is caught, reported and written to a file.
Logging and warnings are off: the handlers log every bad message they drop.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings
from collections.abc import Callable

import atheris

from . import TARGETS

PLANT_ENV = "RELAAX_ZMQ_FUZZ_PLANT"


class PlantedBug(Exception):
    """The failure ``RELAAX_ZMQ_FUZZ_PLANT`` asks for."""


def load_target(name: str) -> Callable[[bytes], None]:
    """The target's ``test_one_input``, imported with relaax_zmq instrumented."""
    with atheris.instrument_imports(include=["relaax_zmq"]):
        module = importlib.import_module(f".{TARGETS[name]}", __package__)
    test = module.test_one_input
    planted = bytes.fromhex(os.environ.get(PLANT_ENV, ""))
    if not planted:
        return test

    def with_plant(data: bytes) -> None:
        if data.startswith(planted):
            raise PlantedBug(f"input starts with the planted bytes {planted.hex()}")
        test(data)

    return with_plant


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: {argv[0]} {{{','.join(TARGETS)}}} [libFuzzer args]")
    # findings are exceptions; the handlers' warnings about bad input are expected noise
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    test = load_target(argv[1])
    atheris.Setup([argv[0], *argv[2:]], test)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
