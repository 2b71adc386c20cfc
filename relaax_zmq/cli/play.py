"""``relaax-zmq play [-n CLIENTS] [--episodes N]``: the trained policy's mean score.

Runs environment clients in exploit mode (greedy actions, nothing learned) for
``--episodes`` episodes each and prints the mean episode reward. The servers must
serve the latest weights: when none run for this app, it starts them (``run
servers``; the shards restore the newest checkpoint) and stops them afterwards.
"""

from __future__ import annotations

import argparse
import math

from relaax_zmq.cli.common import CliError, add_app_option, add_json_option, load_app, print_json
from relaax_zmq.cli.runfolder import RunFolder
from relaax_zmq.cli.supervisor import Supervisor
from relaax_zmq.config import load_config
from relaax_zmq.errors import ConfigError

HELP = "run clients in exploit mode against the latest weights; print the mean score"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_app_option(parser)
    parser.add_argument("-n", "--clients", type=int, default=4, help="environment sessions (4)")
    parser.add_argument("--episodes", type=int, default=5, help="episodes per session (5)")
    parser.add_argument("--ready-timeout", type=float, default=120.0, help="seconds (120)")
    add_json_option(parser)


def play(config_path, clients: int, episodes: int) -> list[float]:  # noqa: ANN001
    """Episode rewards of ``clients`` exploit sessions of ``episodes`` episodes each."""
    from relaax_zmq.envs.launch import make_runner, make_vector_blocks, run_sessions

    overrides = {
        "environment.exploit": True,
        "environment.clients": clients,
        "environment.max_episodes": episodes,
    }
    try:
        config = load_config(config_path, overrides)
    except ConfigError as exc:
        raise CliError(f"{config_path}: {exc}") from None
    if config.environment.vectorized:
        runners = [make_vector_blocks(config)]
    else:
        runners = [make_runner(config, i) for i in range(clients)]
    results = run_sessions(runners, episodes)
    if any(r is None for r in results):
        raise CliError("a client session failed (see the messages above)")
    return [reward for rewards in results for reward in rewards or []]


def run(args: argparse.Namespace) -> int:
    from relaax_zmq.cli import run as run_command

    if args.clients < 1 or args.episodes < 1:
        raise CliError("play: -n and --episodes expect numbers >= 1", code=2)
    load_app(args.config)
    supervisor = Supervisor(RunFolder.of(args.config))
    started = not supervisor.running()
    if started:
        servers = ["servers", "--detach", "-c", str(args.config)]
        run_command.run(
            run_command.parse_options([*servers, "--ready-timeout", str(args.ready_timeout)])
        )
    try:
        rewards = play(args.config, args.clients, args.episodes)
    finally:
        if started:
            supervisor.shutdown()
    mean = sum(rewards) / len(rewards) if rewards else math.nan
    if args.json:
        print_json({"episodes": len(rewards), "mean_reward": mean, "rewards": rewards})
    else:
        print(f"{len(rewards)} exploit episodes: mean reward {mean:g}")
    return 0
