"""relaax-zmq eval POLICY: a trained policy's score on its environment, in this process.

POLICY is a run folder (relaax-zmq train, relaax_zmq.learn), an app folder or app file
(its newest complete checkpoint), a checkpoint folder, a policy file (policy.h5) or an
exported TorchScript/ONNX file (give --env then). Runs --episodes deterministic
episodes (--stochastic: sampled actions) on the app's gymnasium environment or --env,
prints the mean, the standard deviation and each return. --render human opens a
window; --video out.mp4 writes the episodes as a video.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from relaax_zmq.cli.common import CliError, add_json_option, print_json

HELP = "evaluate a trained policy: mean and spread of its episode returns"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "policy", type=Path, metavar="POLICY", help="run/app/checkpoint folder or file"
    )
    parser.add_argument("--episodes", "-n", type=int, default=20, help="episodes (20)")
    parser.add_argument("--env", "-e", help="gymnasium id (default: the app's environment)")
    parser.add_argument("--render", choices=("human", "rgb_array"), help="render the episodes")
    parser.add_argument("--video", type=Path, help="write the episodes to this .mp4 file")
    parser.add_argument("--stochastic", action="store_true", help="sample actions")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (0)")
    add_json_option(parser)


def evaluate_policy(
    target: Path,
    episodes: int,
    *,
    env: str | None = None,
    render: str | None = None,
    video: Path | None = None,
    deterministic: bool = True,
    seed: int | None = 0,
):  # noqa: ANN201
    """(the ``Evaluation``, the environment used) of the policy at ``target``."""
    from relaax_zmq.api import Policy, evaluate

    if episodes < 1:
        raise CliError("eval: --episodes expects a number >= 1", code=2)
    policy = Policy.load(target)
    if video is not None:
        render = "rgb_array"
    environment = env or _app_environment(policy, render)
    if environment is None:
        raise CliError(
            f"{target}: the policy names no gymnasium environment; give --env ID", code=2
        )
    result = evaluate(
        policy, environment, episodes, render=render, deterministic=deterministic, seed=seed
    )
    if video is not None:
        write_video(result.frames, video, fps=result.fps)
    return result, environment


def _app_environment(policy, render: str | None):  # noqa: ANN001, ANN202
    """A factory of the app's gymnasium environment (its wrappers included, rendering as
    asked), None when the policy names none."""
    config = getattr(policy, "config", None)
    if config is None:
        return None
    env = config.environment
    if env.run == "gym" and env.name:
        from relaax_zmq.config.fitting import register_optional_envs
        from relaax_zmq.envs.wrappers import env_maker

        register_optional_envs()
        kwargs = {**env.env_kwargs, **({"render_mode": render} if render else {})}
        return env_maker(str(env.name), kwargs, env.wrappers)
    from relaax_zmq.envs.launch import env_factory

    try:
        return env_factory(config)
    except Exception:
        return None


def write_video(frames, path: Path, fps: int = 30) -> None:  # noqa: ANN001
    """Write RGB ``frames`` as an MP4 video (OpenCV's mp4v codec)."""
    from relaax_zmq.runtime.extras import require_extra

    cv2 = require_extra("cv2", "video", "eval --video")
    if not frames:
        raise CliError("eval --video: the environment rendered no frames")
    height, width = frames[0].shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def run(args: argparse.Namespace) -> int:
    result, _ = evaluate_policy(
        args.policy,
        args.episodes,
        env=args.env,
        render=args.render,
        video=args.video,
        deterministic=not args.stochastic,
        seed=args.seed,
    )
    if args.json:
        print_json(
            {
                "episodes": len(result.returns),
                "mean_reward": result.mean,
                "std": result.std,
                "returns": result.returns,
                "lengths": result.lengths,
            }
        )
    else:
        print(f"{result}")
        print("returns: " + " ".join(f"{r:g}" for r in result.returns))
        if args.video is not None:
            print(f"video: {args.video}")
    return 0
