"""``relaax-zmq new APP [-a ALGO] [-e ENV]``: a new app folder, runnable as created.

``APP/app.yaml`` and the environment's code: ``-e bandit`` (default, RELAAX's
4-armed bandit: ``APP/bandit.py``), ``-e template`` (a runner to edit:
``APP/template.py``) or a gymnasium id (``-e CartPole-v1``: no code, the built-in gym
runner). ``-a`` picks the algorithm (default reinforce, da3c for a gymnasium id); its
hyperparameters come from the matching preset (``relaax-zmq config -l``), or the
algorithm's first preset fitted to the environment's observation and action spaces
(``relaax_zmq.config.fitting``). ``--set KEY=VALUE`` changes keys of the new app.
Then: ``cd APP && relaax-zmq run all``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from relaax_zmq.cli.appfile import write_app
from relaax_zmq.cli.common import CliError, add_set_option, doc_path, load_app, parse_set
from relaax_zmq.cli.scaffold import ENV_TEMPLATES, algorithm_package, vendor_module
from relaax_zmq.config import apply_overrides
from relaax_zmq.config.fitting import algorithm_preset, fitted_app
from relaax_zmq.errors import ConfigError
from relaax_zmq.presets import presets_dir

HELP = "create an app folder (app.yaml and environment code)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", type=Path, metavar="APP", help="folder to create")
    parser.add_argument("-a", "--algorithm", help="built-in algorithm (reinforce; da3c for gym)")
    parser.add_argument(
        "-e",
        "--environment",
        default="bandit",
        help=f"{', '.join(ENV_TEMPLATES)} (code copied into the app) or a gymnasium id",
    )
    add_set_option(parser)


def app_data(algorithm: str, environment: str) -> tuple[dict[str, Any], str | None]:
    """The new app's mapping and the environment module to copy (None for gym)."""
    template = ENV_TEMPLATES.get(environment)
    try:
        if template is None:  # a gymnasium id
            return fitted_app(algorithm, environment), None
        if environment == "bandit" and algorithm == "reinforce":
            preset = yaml.safe_load((presets_dir() / "bandit-reinforce.yaml").read_text())
        else:
            preset = algorithm_preset(algorithm)
    except ConfigError as exc:
        raise CliError(f"new: {exc}") from None
    config = dict(preset["algorithm"].get("config", {}))
    config.update(
        {"input": {"shape": list(template.shape)}, "output": {"actions": template.actions}}
    )
    env: dict[str, Any] = {"run": f"{template.file_name}:{template.cls}"}
    env.update({"clients": 16, "vectorized": True} if template.vectorizable else {"clients": 4})
    env["env_kwargs"] = dict(template.env_kwargs)
    data = {
        "version": 1,
        "environment": env,
        **{k: v for k, v in preset.items() if k in ("workers", "parameter_servers")},
        "algorithm": {"name": algorithm, "config": config},
    }
    return data, template.module


def run(args: argparse.Namespace) -> int:
    folder: Path = args.app
    if folder.exists() and any(folder.iterdir()):
        raise CliError(f"{folder} exists and is not empty")
    default = "da3c" if args.environment not in ENV_TEMPLATES else "reinforce"
    algorithm = args.algorithm or default
    algorithm_package(algorithm)  # checks the name
    overrides = parse_set(args.set)
    data, module = app_data(algorithm, args.environment)
    try:
        data = apply_overrides(data, overrides)
    except ConfigError as exc:
        raise CliError(f"new: --set {exc}", code=2) from None
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if module is not None:
            vendor_module(module, folder / ENV_TEMPLATES[args.environment].file_name)
        header = (
            f"app: {algorithm} on {args.environment} (made by relaax-zmq new).\n"
            f"{doc_path('config.md')} describes every key; relaax-zmq config -l lists presets.\n"
            "Run it: relaax-zmq run all (from this folder)."
        )
        write_app(folder / "app.yaml", data, header)
        load_app(folder / "app.yaml", overrides)  # the algorithm checks keys --set gave
    except BaseException:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
        raise
    print(
        f"created {folder}/app.yaml"
        + (f" and {folder}/{module.rpartition('.')[2]}.py" if module else "")
    )
    print(f"run it: cd {folder} && relaax-zmq run all (every key: {doc_path('config.md')})")
    return 0
