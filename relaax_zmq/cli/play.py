"""``relaax-zmq play [-n CLIENTS] [--episodes N]``: the trained policy's mean score.

Plays ``-n`` times ``--episodes`` episodes of the app's policy and prints the mean
episode reward. When the app's environment is a gymnasium one and its shards have a
complete checkpoint, this is ``relaax-zmq eval`` of the app (the same code: the newest
checkpoint's policy in this process, episode i seeded ``--seed + i``; ``--render`` and
``--video`` as there). Otherwise (a runner of its own, or nothing trained yet) it runs
environment clients in exploit mode (greedy actions, nothing learned) against the
servers: when none run for this app, it starts them (``run servers``; the shards
restore the newest checkpoint) and stops them afterwards.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from relaax_zmq.cli.common import CliError, add_app_option, add_json_option, load_app, print_json
from relaax_zmq.cli.runfolder import RunFolder
from relaax_zmq.cli.supervisor import Supervisor
from relaax_zmq.config import load_config
from relaax_zmq.errors import ConfigError, RelaaxError

HELP = "run clients in exploit mode against the latest weights; print the mean score"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_app_option(parser)
    parser.add_argument("-n", "--clients", type=int, default=4, help="environment sessions (4)")
    parser.add_argument("--episodes", type=int, default=5, help="episodes per session (5)")
    parser.add_argument("--ready-timeout", type=float, default=120.0, help="seconds (120)")
    parser.add_argument("--render", choices=("human", "rgb_array"), help="render the episodes")
    parser.add_argument("--video", type=Path, help="write the episodes to this .mp4 file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (0)")
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
    if args.clients < 1 or args.episodes < 1:
        raise CliError("play: -n and --episodes expect numbers >= 1", code=2)
    config = load_app(args.config)
    if _evaluable(config):
        from relaax_zmq.cli.evaluate import evaluate_policy

        result, _ = evaluate_policy(
            Path(args.config),
            args.clients * args.episodes,
            render=args.render,
            video=args.video,
            seed=args.seed,
        )
        rewards = result.returns
    else:
        if args.render or args.video:
            raise CliError("play: --render and --video need a gymnasium environment", code=2)
        rewards = _through_servers(args)
    mean = sum(rewards) / len(rewards) if rewards else math.nan
    if args.json:
        print_json({"episodes": len(rewards), "mean_reward": mean, "rewards": rewards})
    else:
        print(f"{len(rewards)} exploit episodes: mean reward {mean:g}")
    return 0


def _evaluable(config) -> bool:  # noqa: ANN001
    """The app's policy can be played in this process: a gymnasium environment and a
    complete checkpoint of its shards."""
    from relaax_zmq.checkpoint.weights import latest_step
    from relaax_zmq.client import TrainingBase
    from relaax_zmq.envs.launch import load_class

    env = config.environment
    if env.run not in ("gym", "bandit") and issubclass(load_class(str(env.run)), TrainingBase):
        return False
    try:
        latest_step(config)
    except RelaaxError:
        return False
    return True


def _through_servers(args: argparse.Namespace) -> list[float]:
    """Exploit clients against the app's servers (started for the time of it when none run)."""
    from relaax_zmq.cli import run as run_command

    supervisor = Supervisor(RunFolder.of(args.config))
    started = not supervisor.running()
    if started:
        servers = ["servers", "--detach", "-c", str(args.config)]
        run_command.run(
            run_command.parse_options([*servers, "--ready-timeout", str(args.ready_timeout)])
        )
    try:
        return play(args.config, args.clients, args.episodes)
    finally:
        if started:
            supervisor.shutdown()
