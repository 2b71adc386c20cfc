"""``relaax-zmq generate -e ENV | -a ALGO``: copy built-in code into the app to customise it.

``-e bandit`` or ``-e template`` copies that environment to ``<app folder>/<name>.py``
and points ``environment.run`` at it (fitting ``input``/``output`` of the algorithm to
it); ``-a ALGO`` copies the built-in algorithm's package to
``<app folder>/algorithms/ALGO/`` and replaces ``algorithm.name`` by
``algorithm.path: algorithms/ALGO`` (``relaax_zmq.runtime.registry`` imports such a
folder as a package). Relative imports that leave the copy become absolute. The app
file keeps its comments; the previous one is kept as ``app.yaml.bak``.
"""

from __future__ import annotations

import argparse
import shutil
from typing import Any

from relaax_zmq.cli.appfile import read_app, write_app
from relaax_zmq.cli.common import CliError, add_app_option
from relaax_zmq.cli.scaffold import ENV_TEMPLATES, algorithm_package, vendor_module, vendor_package

HELP = "copy an environment template or a built-in algorithm into the app"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("-e", "--environment", choices=sorted(ENV_TEMPLATES), help="environment")
    what.add_argument("-a", "--algorithm", help="built-in algorithm to copy")
    add_app_option(parser)
    parser.add_argument("--force", action="store_true", help="overwrite an earlier copy")


def section(data: Any, name: str) -> Any:
    """``data[name]``, created empty when missing or null (edited in place, comments kept)."""
    if data.get(name) is None:
        data[name] = {}
    return data[name]


def run(args: argparse.Namespace) -> int:
    app = args.config
    data = read_app(app)
    folder = app.resolve().parent
    if args.environment:
        template = ENV_TEMPLATES[args.environment]
        target = folder / template.file_name
        if target.exists() and not args.force:
            raise CliError(f"{target} exists (--force overwrites it)")
        vendor_module(template.module, target)
        env = section(data, "environment")
        env.update({"run": f"{template.file_name}:{template.cls}", "name": None})
        env["env_kwargs"] = dict(template.env_kwargs)
        if not template.vectorizable:
            env.update({"vectorized": False, "blocks": 1})
        config = section(section(data, "algorithm"), "config")
        config.update(
            {"input": {"shape": list(template.shape)}, "output": {"actions": template.actions}}
        )
        backup = write_app(app, data, f"environment.run: {template.file_name} (generate -e)")
        print(f"copied {template.module} to {target}; environment.run is now {env['run']}")
        print(f"the previous app file: {backup}")
        return 0
    package = algorithm_package(args.algorithm)
    target = folder / "algorithms" / args.algorithm
    if target.exists():
        if not args.force:
            raise CliError(f"{target} exists (--force overwrites it)")
        shutil.rmtree(target)
    vendor_package(package, target)
    algorithm = section(data, "algorithm")
    algorithm.pop("name", None)
    algorithm["path"] = f"algorithms/{args.algorithm}"
    backup = write_app(app, data, f"algorithm.path: algorithms/{args.algorithm} (generate -a)")
    print(f"copied {package} to {target}; algorithm.path is now algorithms/{args.algorithm}")
    print(f"the previous app file: {backup}")
    return 0
