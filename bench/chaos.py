"""Chaos: DA3C trains CartPole while a worker or shard is SIGKILLed every interval.

Run: ``python -m bench.chaos [--interval 60] [--duration 300] [--seed 0] [--until-solved]``.

The app is the ``cartpole-da3c`` preset (``bench.learning.write_case_app``) on two workers
and two shards, so that a kill always leaves a worker and a shard running, with a
checkpoint every ``CHECKPOINT_SECONDS`` (a restarted shard resumes from its newest). Its
agent is pinned (``CHAOS_AGENT``: DA3C's CartPole defaults, 16 environments), so that tuning
the preset for speed does not change what these runs measure: a preset that solves in a few
seconds would solve before the second kill. Runs that go on after solving have the learning
rate decay from 3e-3 to 1e-4 over 300k steps (``DECAYING``: at a constant rate DA3C's policy
collapses now and then once solved, faults or not). The environments run in ``CLIENTS``
vectorised blocks in this process (``environment.blocks``), one block on each worker.
The daemons are real processes (``relaax_zmq.runtime.local.LocalStack``); a killed one is started
again at once, as supervisord would.

Two runs in the same process, of the same app and seed: one without faults, then one where
every ``interval`` seconds (the first after half of one) a worker or a shard (``pick``: the
kinds alternate, the daemon is random) is SIGKILLed and restarted. Both train for ``duration`` seconds and go on after
they solve (mean of the last 100 episodes >= 475), so that the chaos run sees several
kills; then every worker must be synced with every shard again, and 16 exploit sessions
judge the final policy (greedy, 100 episodes). ``--until-solved`` stops each run when it
solves instead (the default-suite test, tests/faults/test_chaos.py, does that with kills
every few seconds).

Figures per run: environment steps per second over the whole run (and the chaos /
fault-free ratio, which the issue wants >= 0.7), seconds and steps until solved, the mean
of the last 100 episodes at the end, the greedy mean of the final policy, the kills (which
daemon, when), the clients' episode restarts and the seconds to recover after the run. The
last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.learning import TASKS, rolling_mean, write_case_app
from bench.timing import exit_on_sigterm, table
from relaax_zmq.config import AppConfig
from relaax_zmq.envs.launch import make_vector_blocks, make_vector_runner
from relaax_zmq.runtime.local import LocalStack, app_daemons, wait_ready

#: The preset trained (``conf/<case>.yaml``).
CASE = "cartpole-da3c"
#: Workers, shards and vectorised blocks of the chaos app.
WORKERS, SHARDS, CLIENTS = 2, 2, 2
#: Environments, and the DA3C settings of the chaos app (its defaults for CartPole).
ENVIRONMENTS = 16
CHAOS_AGENT = {
    "input": {"shape": [4]},
    "output": {"actions": 2},
    "t_max": 20,
    "optimizer": {"name": "adam", "learning_rate": 3.0e-3, "max_grad_norm": 1.0},
}
#: Seconds between two checkpoints of each shard.
CHECKPOINT_SECONDS = 5.0
#: The shards' optimizer of runs that go on after solving: DA3C's, its learning rate decaying
#: from 3e-3 to 1e-4 over 300k steps (at a constant 3e-3 the policy of a solved run collapses
#: now and then, faults or not). Runs that stop at solving keep ``CHAOS_AGENT``'s.
DECAYING = {
    "name": "adam",
    "learning_rate": {"kind": "linear", "initial": 3.0e-3, "final": 1.0e-4, "steps": 300_000},
    "max_grad_norm": 1.0,
}
#: Exploit sessions judging the final policy, and the episodes they play.
JUDGES, JUDGE_EPISODES = 16, 100
#: Seconds every worker has, after a run, to be registered and synced with every shard.
RECOVERY_TIMEOUT = 60.0


def say(text: str) -> None:
    """A progress line (flushed: a benchmark runs for minutes)."""
    print(text, flush=True)


@dataclass
class Run:
    """One training run: its length, steps, when it solved, its kills."""

    seconds: float = 0.0
    steps: int = 0
    solved_seconds: float | None = None
    solved_steps: int | None = None
    final_mean: float = float("-inf")
    episodes: int = 0
    restarts: int = 0  # EpisodeRestart the clients received
    kills: list[tuple[float, str]] = field(default_factory=list)  # (seconds in, daemon)
    recovered_s: float | None = None  # every worker synced again after the run (None: not)
    greedy_mean: float | None = None  # the final policy acting greedily (``judge``)

    @property
    def solved(self) -> bool:
        return self.solved_seconds is not None

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0

    def figures(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 1),
            "steps": self.steps,
            "steps_per_s": round(self.steps_per_s, 1),
            "solved": self.solved,
            "solved_seconds": _rounded(self.solved_seconds),
            "solved_steps": self.solved_steps,
            "final_mean": round(self.final_mean, 1),
            "episodes": self.episodes,
            "restarts": self.restarts,
            "kills": len(self.kills),
            "workers_killed": sum(1 for _, name in self.kills if name.startswith("worker-")),
            "shards_killed": sum(1 for _, name in self.kills if name.startswith("shard-")),
            "recovered_s": _rounded(self.recovered_s),
            "greedy_mean": _rounded(self.greedy_mean),
            "killed": [f"{t:.0f}s:{name}" for t, name in self.kills],
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def write_chaos_app(case: str, seed: int, folder: Path, *, decay: bool = False) -> Path:
    """The preset with this run's seed and ports, ``CHAOS_AGENT`` on ``ENVIRONMENTS``
    environments in ``CLIENTS`` blocks, ``WORKERS`` workers and ``SHARDS`` shards,
    checkpointing every ``CHECKPOINT_SECONDS`` into ``folder``; with ``decay``, the learning
    rate of ``DECAYING``."""
    path = write_case_app(case, seed, folder)
    app = yaml.safe_load(path.read_text())
    app["workers"]["count"] = WORKERS
    app["environment"].update({"clients": ENVIRONMENTS, "blocks": CLIENTS})
    app["algorithm"]["config"] = dict(CHAOS_AGENT)  # a new dict: decay replaces a key of it
    ps = app["parameter_servers"]
    ps["shards"] = SHARDS
    ps["checkpoint"]["every_seconds"] = CHECKPOINT_SECONDS
    if decay:
        app["algorithm"]["config"]["optimizer"] = dict(DECAYING)
    path.write_text(yaml.safe_dump(app))
    return path


@dataclass
class ChaosStack(LocalStack):
    """A ``LocalStack`` whose workers and shards can be SIGKILLed and started again."""

    restarts: dict[str, int] = field(default_factory=dict, init=False)

    def targets(self) -> list[str]:
        """The daemons chaos picks from: every worker and shard."""
        return [d.name for d in self.daemons if d.name.startswith(("worker-", "shard-"))]

    def kill_and_restart(self, name: str) -> None:
        """SIGKILL daemon ``name``, reap it and start it again (the old log: ``NAME.N.log``)."""
        daemon = next(d for d in self.daemons if d.name == name)
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(30)
        self.daemons.remove(daemon)
        count = self.restarts[name] = self.restarts.get(name, 0) + 1
        if daemon.log.exists():
            daemon.log.rename(daemon.log.with_name(f"{name}.{count}.log"))
        specs = app_daemons(self.config, collector=self.collector)
        self._start(next(s for s in specs if s.name == name))


def noticed(config: AppConfig) -> float:
    """Seconds after which a dead daemon is surely noticed: the longer liveness timeout (the
    broker's of workers, the workers' of shards), plus one second."""
    broker, ps = config.broker, config.parameter_servers
    return 1.0 + max(
        broker.heartbeat_interval * broker.heartbeat_liveness,
        ps.heartbeat_interval * ps.heartbeat_liveness,
    )


def pick(rng: random.Random, targets: list[str], last: str | None) -> str:
    """A random daemon of ``targets``: a worker after a shard and a shard after a worker (a
    random kind first), so that a run of a few kills has both kinds."""
    kinds = {name.split("-")[0] for name in targets}
    kind = rng.choice(sorted(kinds)) if last is None else last.split("-")[0]
    if last is not None and len(kinds) > 1:
        kind = next(k for k in sorted(kinds) if k != kind)
    return rng.choice([name for name in targets if name.startswith(kind + "-")])


def train(
    path: Path,
    *,
    duration: float,
    interval: float | None,
    until_solved: bool = False,
    seed: int = 0,
    log: Callable[[str], None] = say,
) -> Run:
    """Train the app at ``path`` for ``duration`` seconds (or until it solves, with
    ``until_solved``); with ``interval``, SIGKILL a worker or shard (``pick``) that often.

    Afterwards every worker must be registered and synced with every shard again
    (``Run.recovered_s``: how long that took once the clients stopped).
    """
    task = TASKS["cartpole"]
    run = Run()
    rng = random.Random(seed)
    with ChaosStack(path) as stack:
        blocks = make_vector_blocks(stack.config)
        thread = threading.Thread(target=blocks.run, daemon=True)
        start = time.monotonic()
        thread.start()
        # the first kill after half an interval: a run that solves early still sees some
        next_kill = start + interval / 2 if interval else float("inf")
        try:
            while True:
                now = time.monotonic()
                steps = blocks.steps
                mean = rolling_mean(blocks.finished, task.window)
                if mean >= task.threshold and run.solved_seconds is None:
                    run.solved_seconds, run.solved_steps = now - start, steps
                    log(f"  solved at {now - start:.1f} s, {steps} steps")
                    if until_solved:
                        break
                if now - start >= duration or not thread.is_alive():
                    break
                if interval and now >= next_kill:
                    name = pick(rng, stack.targets(), run.kills[-1][1] if run.kills else None)
                    stack.kill_and_restart(name)
                    run.kills.append((now - start, name))
                    log(f"  {now - start:5.1f} s: killed {name} (mean {mean:.0f})")
                    next_kill += interval
                time.sleep(0.1)
        finally:
            run.seconds = time.monotonic() - start
            run.steps = blocks.steps
            blocks.stop()
            thread.join(30)
        run.final_mean = rolling_mean(blocks.finished, task.window)
        run.episodes = len(blocks.finished)
        run.restarts = blocks.restarts
        if run.kills:  # until the last kill has been noticed, the old state looks synced
            time.sleep(
                max(0.0, start + run.kills[-1][0] + noticed(stack.config) - time.monotonic())
            )
        stopped = time.monotonic()
        try:
            wait_ready(stack.config, timeout=RECOVERY_TIMEOUT)
            run.recovered_s = time.monotonic() - stopped
        except TimeoutError:
            log(f"  workers not all synced {RECOVERY_TIMEOUT:g} s after the run:\n{stack.logs()}")
            return run
        if until_solved:
            return run  # it stopped at solving: nothing more to judge
        run.greedy_mean = judge(stack.config)
        log(
            f"  the final policy, greedy: mean {run.greedy_mean:.1f} over {JUDGE_EPISODES} episodes"
        )
    return run


def judge(config: AppConfig, episodes: int = JUDGE_EPISODES) -> float:
    """The mean return of the policy the shards hold now, acting greedily (exploit sessions
    of ``JUDGES`` environments, which do not learn) over ``episodes`` episodes."""
    env = dataclasses.replace(config.environment, clients=JUDGES, exploit=True)
    runner = make_vector_runner(dataclasses.replace(config, environment=env))
    returns = runner.run(max_episodes=-(-episodes // JUDGES))
    return sum(returns[:episodes]) / episodes


def compare(
    *,
    duration: float,
    interval: float,
    seed: int = 0,
    until_solved: bool = False,
    folder: Path | None = None,
    log: Callable[[str], None] = say,
) -> dict[str, Any]:
    """A fault-free run and a chaos run of the same app (module docstring); their figures."""
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-chaos-") as tmp:
        base = Path(folder or tmp)
        for name, every in (("fault_free", None), ("chaos", interval)):
            app_folder = base / name
            app_folder.mkdir(parents=True, exist_ok=True)
            path = write_chaos_app(CASE, seed, app_folder, decay=not until_solved)
            log(f"{name}: {duration:g} s at most, kills every {every or '-'} s")
            runs[name] = train(
                path,
                duration=duration,
                interval=every,
                until_solved=until_solved,
                seed=seed,
                log=log,
            )
            log(f"  {runs[name].figures()}")
    free, chaos = runs["fault_free"], runs["chaos"]
    ratio = chaos.steps_per_s / free.steps_per_s if free.steps_per_s else 0.0
    return {
        "case": CASE,
        "workers": WORKERS,
        "shards": SHARDS,
        "interval_s": interval,
        "duration_s": duration,
        "until_solved": until_solved,
        "seed": seed,
        "fault_free": free.figures(),
        "chaos": chaos.figures(),
        "throughput_ratio": round(ratio, 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between kills")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--until-solved", action="store_true", help="stop each run at solving")
    args = parser.parse_args(argv)
    figures = compare(
        duration=args.duration,
        interval=args.interval,
        seed=args.seed,
        until_solved=args.until_solved,
    )
    free, chaos = figures["fault_free"], figures["chaos"]
    rows = [["run", "steps/s", "solved at s", "solved at steps", "final mean", "greedy", "kills"]]
    for name, run in (("fault-free", free), ("chaos", chaos)):
        rows.append(
            [
                name,
                str(run["steps_per_s"]),
                str(run["solved_seconds"]),
                str(run["solved_steps"]),
                str(run["final_mean"]),
                str(run["greedy_mean"]),
                str(run["kills"]),
            ]
        )
    print(
        f"\nchaos on this machine ({os.cpu_count()} CPU cores): {CASE}, {WORKERS} workers, "
        f"{SHARDS} shards, one SIGKILLed every {args.interval:g} s"
    )
    print(table(rows))
    print(f"throughput chaos / fault-free: {figures['throughput_ratio']:.2f} (wanted >= 0.7)")
    print(json.dumps(figures))


if __name__ == "__main__":
    exit_on_sigterm()  # the processes it started stop with it
    main()
