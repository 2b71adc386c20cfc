"""Learning: seconds and environment steps until each algorithm solves its task, against SB3.

Run: ``python -m bench.learning [--cases cartpole-ppo,cartpole-da3c] [--seeds 3] [--budget S]``.

Each case is a preset of conf/ (``conf/<case>.yaml``) run through the real system on
this machine: the app's shards, broker and workers as processes (``LocalStack``), the
environment clients of the preset as one vectorised client in this process. A run
ends when the mean return of the last ``window`` finished episodes reaches the
task's threshold (solved: seconds from the clients' start, environment steps) or when
its time budget is spent (not solved). For the methods whose training episodes explore
on purpose (``EXPLOIT_JUDGED``: DQN's epsilon, CEM's sampled candidates) the episodes
judged are those of 8 exploit sessions running alongside, acting greedily with the
current weights; the steps counted are the training sessions'. Every case runs once per seed; the table shows
medians over the solved seeds.

Baseline, in the same run: Stable-Baselines3 PPO with the RL-Zoo's tuned CartPole-v1
hyperparameters (8 environments, 32 steps each, 20 epochs of 256-minibatches,
learning rate and clip range decaying linearly), measured the same way on
CartPole-v1 (its last-100-episodes mean). The last line printed is one JSON object:
``{task: {algorithm: {"seconds", "steps", "solved", "seeds"}}}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.timing import exit_on_sigterm, table
from relaax_zmq.config import load_config
from relaax_zmq.envs.launch import make_vector_blocks, make_vector_runner
from relaax_zmq.runtime.local import LocalStack
from relaax_zmq.runtime.ports import on_free_ports

CONF = Path(__file__).resolve().parent.parent / "conf"


@dataclass(frozen=True)
class Task:
    """A gymnasium task, what solves it, and how long a run may take."""

    name: str
    threshold: float
    window: int
    budget: float  # seconds per run


TASKS = {
    "bandit": Task("bandit", 0.95 * 100, 20, 120),  # episodes of 100 pulls: best arm >= 95%
    "cartpole": Task("CartPole-v1", 475.0, 100, 600),
    "cartpole-memory": Task("CartPole-v1 (velocities hidden)", 475.0, 100, 900),
    "acrobot": Task("Acrobot-v1", -100.0, 100, 600),
    "pendulum": Task("Pendulum-v1", -200.0, 20, 900),
    "mountaincar-continuous": Task("MountainCarContinuous-v0", 90.0, 20, 900),
    "lunarlander": Task("LunarLander-v3", 200.0, 100, 1800),
}

#: The cases the issue asks for (``conf/<case>.yaml``), in the order they run.
CASES = (
    "bandit-reinforce",
    "cartpole-ppo",
    "cartpole-da3c",
    "cartpole-trpo",
    "cartpole-dqn",
    "cartpole-reinforce",
    "cartpole-cem",
    "pendulum-da3c",
    "pendulum-ppo",
    "pendulum-ddpg",
    "lunarlander-ppo",
    "cartpole-memory-da3c",
    "cartpole-impala",
    "cartpole-appo",
    "cartpole-apex",
    "pendulum-impala",
    "pendulum-appo",
    "lunarlander-appo",
    "lunarlander-apex",
    "lunarlander-impala",
)


#: Algorithms judged by exploit sessions running alongside (module docstring).
EXPLOIT_JUDGED = frozenset({"dqn", "cem", "apex"})
#: Exploit sessions of such a judge.
JUDGES = 8


def task_of(case: str) -> tuple[str, str]:
    """``"cartpole-memory-da3c"`` -> (``"cartpole-memory"``, ``"da3c"``)."""
    task, _, algorithm = case.rpartition("-")
    if task not in TASKS:
        raise SystemExit(f"unknown case {case!r}: its task must be one of {sorted(TASKS)}")
    return task, algorithm


@dataclass
class Outcome:
    """One run: solved or not, seconds and environment steps it took, the last mean."""

    solved: bool
    seconds: float
    steps: int
    mean: float


def rolling_mean(returns: list[float], window: int) -> float:
    """Mean of the last ``window`` returns (-inf with fewer)."""
    if len(returns) < window:
        return float("-inf")
    tail = returns[-window:]
    return sum(tail) / window


def write_case_app(case: str, seed: int, folder: Path) -> Path:
    """The preset of ``case`` with this run's seed, free ports and its own folders."""
    app = yaml.safe_load((CONF / f"{case}.yaml").read_text())
    environment = app.setdefault("environment", {})
    environment.update({"seed": seed, "vectorized": True, "max_episodes": None})
    on_free_ports(app)
    ps = app["parameter_servers"]
    ps["max_global_step"] = None
    ps["checkpoint"] = {"dir": str(folder / "checkpoints"), "every_seconds": None}
    app["metrics"]["logdir"] = str(folder / "tb")
    path = folder / "app.yaml"
    path.write_text(yaml.safe_dump(app))
    return path


def run_case(case: str, seed: int, budget: float, report_every: float | None = None) -> Outcome:
    """One run of ``case`` through the real daemons (module docstring); with
    ``report_every``, its mean and steps go to stderr that often (seconds)."""
    name, algorithm = task_of(case)
    task = TASKS[name]
    with tempfile.TemporaryDirectory(prefix=f"bench-{case}-") as tmp:
        path = write_case_app(case, seed, Path(tmp))
        with LocalStack(path):
            config = load_config(path)
            runner = make_vector_blocks(config)
            judge = runner
            runners = [runner]
            if algorithm in EXPLOIT_JUDGED:
                env = dataclasses.replace(config.environment, clients=JUDGES, exploit=True)
                judge = make_vector_runner(dataclasses.replace(config, environment=env))
                runners.append(judge)
            threads = [threading.Thread(target=r.run, daemon=True) for r in runners]
            start = time.monotonic()
            for thread in threads:
                thread.start()
            outcome = _watch(
                lambda: (rolling_mean(judge.finished, task.window), runner.steps),
                task.threshold,
                start,
                min(budget, task.budget),
                threads[0],
                lambda text: print(f"{case} seed {seed}: {text}", file=sys.stderr, flush=True),
                report_every,
            )
            for r, thread in zip(runners, threads, strict=True):
                r.stop()
                thread.join(30)
    return outcome


def _watch(
    progress: Callable[[], tuple[float, int]],
    threshold: float,
    start: float,
    budget: float,
    thread: threading.Thread,
    report: Callable[[str], None] | None = None,
    report_every: float | None = None,
) -> Outcome:
    """Poll ``progress`` until the mean reaches ``threshold``, the budget ends or clients
    stop; ``report`` gets a line of progress every ``report_every`` seconds."""
    reported = start
    while True:
        mean, steps = progress()
        elapsed = time.monotonic() - start
        if report is not None and report_every and time.monotonic() - reported >= report_every:
            report(f"{elapsed:.0f} s, {steps} steps, mean {mean:.1f}")
            reported = time.monotonic()
        if mean >= threshold:
            return Outcome(True, elapsed, steps, mean)
        if elapsed >= budget or not thread.is_alive():
            return Outcome(False, elapsed, steps, mean)
        time.sleep(0.2)


def run_sb3_ppo(seed: int, budget: float) -> Outcome:
    """SB3 PPO with the RL-Zoo CartPole-v1 hyperparameters, until its last-100 mean >= 475."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    start = time.monotonic()
    found: dict[str, Outcome] = {}

    class UntilSolved(BaseCallback):
        def _on_step(self) -> bool:
            infos = [info["r"] for info in self.model.ep_info_buffer]
            mean = rolling_mean(infos, 100)
            elapsed = time.monotonic() - start
            if mean >= 475.0 or elapsed >= budget:
                found["outcome"] = Outcome(mean >= 475.0, elapsed, self.num_timesteps, mean)
                return False
            return True

    def linear(initial: float) -> Callable[[float], float]:
        return lambda remaining: remaining * initial

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=linear(1e-3),
        clip_range=linear(0.2),
        seed=seed,
        verbose=0,
    )
    model.learn(total_timesteps=10_000_000, callback=UntilSolved())
    return found.get("outcome", Outcome(False, time.monotonic() - start, model.num_timesteps, 0))


def summarise(outcomes: list[Outcome]) -> dict[str, Any]:
    """Median seconds and steps over the solved runs; how many solved, of how many."""
    solved = [o for o in outcomes if o.solved]
    return {
        "seconds": round(statistics.median(o.seconds for o in solved), 1) if solved else None,
        "steps": int(statistics.median(o.steps for o in solved)) if solved else None,
        "solved": len(solved),
        "seeds": len(outcomes),
        "best_mean": round(max(o.mean for o in outcomes), 1),
        "slowest": round(max(o.seconds for o in outcomes), 1),  # an unsolved run: its budget
    }


def against_sb3(figures: dict[str, dict[str, Any]]) -> None:
    """Add each CartPole case's median over SB3's median, and its slowest seed over it (the
    target: the fastest at most 0.5, and no seed above 1.0)."""
    cases = figures.get("CartPole-v1", {})
    base = (cases.get("sb3_ppo") or {}).get("seconds")
    if not base:
        return
    for summary in cases.values():
        if summary["seconds"] is not None:
            summary["vs_sb3"] = round(summary["seconds"] / base, 2)
        summary["slowest_vs_sb3"] = round(summary["slowest"] / base, 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.learning")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated conf/ presets")
    parser.add_argument("--seeds", type=int, default=3, help="runs per case (seeds 0..N-1)")
    parser.add_argument("--budget", type=float, default=900.0, help="seconds per run at most")
    parser.add_argument("--no-sb3", action="store_true", help="skip the SB3 baseline")
    parser.add_argument(
        "--progress", type=float, default=None, metavar="S", help="each run's mean every S s"
    )
    args = parser.parse_args(argv)
    figures: dict[str, dict[str, Any]] = {}
    rows = [["case", "task", "solved", "median s", "slowest s", "median steps", "best mean"]]
    cases = [c for c in args.cases.split(",") if c]
    runs: list[tuple[str, str, Callable[[int], Outcome]]] = [
        (c, TASKS[task_of(c)[0]].name, lambda s, c=c: run_case(c, s, args.budget, args.progress))
        for c in cases
    ]
    if not args.no_sb3:
        runs.append(("sb3-ppo", "CartPole-v1", lambda s: run_sb3_ppo(s, args.budget)))
    for case, task, run in runs:
        outcomes = []
        for seed in range(args.seeds):
            outcome = run(seed)
            outcomes.append(outcome)
            print(f"{case} seed {seed}: {outcome}", flush=True)
        summary = summarise(outcomes)
        algorithm = "sb3_ppo" if case == "sb3-ppo" else task_of(case)[1]
        figures.setdefault(task, {})[algorithm] = summary
        rows.append(
            [
                case,
                task,
                f"{summary['solved']}/{summary['seeds']}",
                str(summary["seconds"]),
                str(summary["slowest"]),
                str(summary["steps"]),
                str(summary["best_mean"]),
            ]
        )
    against_sb3(figures)
    print(f"\nlearning on this machine ({os.cpu_count()} CPU cores), through the real daemons")
    print(table(rows))
    print(json.dumps(figures))


if __name__ == "__main__":
    exit_on_sigterm()  # the processes it started stop with it
    main()
