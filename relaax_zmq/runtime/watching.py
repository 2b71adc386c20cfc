"""What watching a training run looks at: the app's live figures, where its files are, and
the rules that stop it (``relaax-zmq run``'s watch and ``relaax_zmq.learn`` share them)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from relaax_zmq.config import AppConfig
from relaax_zmq.runtime.admin_client import app_broker_status
from relaax_zmq.runtime.progress import ProgressState


def global_step(config: AppConfig) -> int:
    """Shard 0's global step as the workers last reported it (0 when unknown)."""
    try:
        workers = app_broker_status(config, timeout=1.0)["workers"]
    except Exception:
        return 0
    return reported_global_step(workers)


def reported_global_step(workers: Sequence[dict]) -> int:
    """Shard 0's global step in the workers' entries of a broker status (0 when unknown)."""
    steps = [w.get("stats", {}).get("parameters", {}).get("global_step", 0) for w in workers]
    return max(steps, default=0)


def served_steps(workers: Sequence[dict]) -> int:
    """Environment steps the workers of a broker status have served, all together."""
    return sum(int(w.get("stats", {}).get("steps", 0)) for w in workers)


def checkpoint_files(config: AppConfig) -> int:
    folder = config.parameter_servers.checkpoint.dir
    return len(list(folder.glob("ckpt-*.h5"))) if folder is not None and folder.exists() else 0


def locations(config: AppConfig, log_dir: Path | None, **more: Path) -> list[str]:
    """Lines that say where a run's checkpoints, TensorBoard files and logs are."""
    lines = [
        f"checkpoints: {config.parameter_servers.checkpoint.dir} ({checkpoint_files(config)})",
        f"TensorBoard: tensorboard --logdir {config.metrics.logdir}",
    ]
    lines += [f"{what.replace('_', ' ')}: {where}" for what, where in more.items()]
    if log_dir is not None:
        lines.append(f"daemon logs: {log_dir}")
    return lines


def target_met(state: ProgressState, target_reward: float | None) -> bool:
    """The mean reward reached ``target_reward`` (never without one)."""
    return target_reward is not None and state.mean_reward >= target_reward


def stop_reason(
    state: ProgressState,
    max_global_step: int | None,
    *,
    target_reward: float | None,
    time_limit: float | None,
    interrupted: bool = False,
    total_steps: int | None = None,
) -> str | None:
    """Why a run stops now (the target first), or None while it goes on."""
    if target_met(state, target_reward):
        return f"target reward {target_reward:g} reached"
    if interrupted:
        return "interrupted"
    if total_steps is not None and state.steps >= total_steps:
        return f"{total_steps:,} steps done"
    if time_limit is not None and state.elapsed >= time_limit:
        return f"time limit of {time_limit:g} s reached"
    if max_global_step is not None and state.global_step >= max_global_step:
        # a run of the app resumes from its checkpoints: say how to start over
        return f"max_global_step {max_global_step:,} reached (--fresh trains from scratch)"
    return None
