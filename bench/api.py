"""The Python API: ``relaax_zmq.learn`` to CartPole's target, and ``Policy.predict``, against SB3.

Run: ``python -m bench.api [--seeds 5] [--budget S] [--modes serial,local] [--quick]``.

Learning: ``relaax_zmq.learn("CartPole-v1", algo=ALGO, target_reward=475, seed=s,
mode=MODE)`` exactly as a user calls it (the bundled preset, a run folder under a
temporary directory), per seed, against Stable-Baselines3's PPO with the RL-Zoo's
CartPole-v1 hyperparameters (``bench.learning.run_sb3_ppo``) in the same invocation.
Seconds count from the first environment step to the step where the last 100 episodes'
mean reached 475 (``Run.seconds``; the daemons' start in local mode is reported apart,
as ``call s``). Medians over the solved seeds, and their ratio to SB3's.

Inference: ``policy.predict`` for one observation and for a batch of 256 (a trained
ppo policy, deterministic), against SB3's ``model.predict`` on the same observations;
microseconds per call, medians of repeated timings.

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.learning import Outcome, run_sb3_ppo, summarise
from bench.timing import exit_on_sigterm, table

ENV, TARGET = "CartPole-v1", 475.0


def learn_outcome(algo: str, mode: str, seed: int, budget: float) -> tuple[Outcome, float]:
    """One ``relaax_zmq.learn`` run to the target: its outcome and the whole call's seconds."""
    import relaax_zmq

    with tempfile.TemporaryDirectory(prefix=f"bench-api-{mode}-") as tmp:
        start = time.monotonic()
        run = relaax_zmq.learn(
            ENV,
            algo,
            target_reward=TARGET,
            seed=seed,
            mode=mode,
            time_limit=budget,
            run_dir=Path(tmp) / "run",
        )
        call = time.monotonic() - start
    outcome = Outcome(run.target_reached, run.seconds, run.steps, run.final_mean_reward)
    return outcome, call


def per_call_us(predict: Any, observation: np.ndarray, repeats: int) -> float:
    """Median microseconds of ``predict(observation)`` over ``repeats`` timed rounds."""
    for _ in range(20):
        predict(observation)
    rounds = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(repeats):
            predict(observation)
        rounds.append((time.perf_counter() - start) / repeats * 1e6)
    return statistics.median(rounds)


def inference(repeats: int) -> dict[str, dict[str, float]]:
    """``policy.predict`` against SB3's ``model.predict``, one observation and 256."""
    from stable_baselines3 import PPO

    import relaax_zmq

    with tempfile.TemporaryDirectory(prefix="bench-api-predict-") as tmp:
        policy = relaax_zmq.learn(
            ENV, "ppo", total_steps=2000, mode="serial", run_dir=Path(tmp) / "r"
        ).policy
    model = PPO("MlpPolicy", ENV, seed=0, device="cpu")
    rng = np.random.default_rng(0)
    figures = {}
    for label, shape in (("one", (4,)), ("batch256", (256, 4))):
        obs = rng.normal(size=shape).astype(np.float32)
        ours = per_call_us(lambda o: policy.predict(o, deterministic=True), obs, repeats)
        theirs = per_call_us(lambda o: model.predict(o, deterministic=True), obs, repeats)
        figures[label] = {
            "relaax_us": round(ours, 1),
            "sb3_us": round(theirs, 1),
            "ratio": round(ours / theirs, 2),
        }
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api")
    parser.add_argument("--seeds", type=int, default=5, help="runs per case (seeds 0..N-1)")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds per run at most")
    parser.add_argument("--modes", default="serial,local", help="learn modes to measure")
    parser.add_argument("--algo", default="ppo", help="algorithm for learn (ppo)")
    parser.add_argument("--quick", action="store_true", help="1 seed, short budget, few repeats")
    args = parser.parse_args(argv)
    seeds, budget = (1, 60.0) if args.quick else (args.seeds, args.budget)
    repeats = 50 if args.quick else 500

    learning: dict[str, dict[str, Any]] = {}
    calls: dict[str, list[float]] = {}
    cases = [
        (f"learn-{m}", lambda s, m=m: learn_outcome(args.algo, m, s, budget))
        for m in args.modes.split(",")
        if m
    ]
    cases.append(("sb3-ppo", lambda s: (run_sb3_ppo(s, budget), None)))
    for case, run in cases:
        outcomes = []
        for seed in range(seeds):
            outcome, call = run(seed)
            outcomes.append(outcome)
            if call is not None:  # the seconds of the whole learn call
                calls.setdefault(case, []).append(call)
            took = "-" if call is None else f"{call:.1f}"
            print(f"{case} seed {seed}: {outcome} (call {took} s)", flush=True)
        call_seconds = round(statistics.median(calls[case]), 1) if case in calls else None
        learning[case] = {**summarise(outcomes), "call_seconds": call_seconds}
    baseline = learning["sb3-ppo"]["seconds"]
    rows = [["case", "solved", "median s", "median steps", "call s", "vs SB3"]]
    for case, summary in learning.items():
        ratio = None
        if summary["seconds"] is not None and baseline:
            ratio = round(summary["seconds"] / baseline, 2)
        summary["vs_sb3"] = ratio
        rows.append(
            [
                case,
                f"{summary['solved']}/{summary['seeds']}",
                str(summary["seconds"]),
                str(summary["steps"]),
                str(summary["call_seconds"]),
                str(ratio),
            ]
        )
    print(f"\nrelaax_zmq.learn({ENV!r}, {args.algo!r}, target_reward={TARGET:g}) against SB3 PPO")
    print(table(rows))

    predict = inference(repeats)
    rows = [["observations", "Policy.predict us", "SB3 predict us", "ratio"]]
    rows += [
        [label, str(f["relaax_us"]), str(f["sb3_us"]), str(f["ratio"])]
        for label, f in predict.items()
    ]
    print("\npredict, deterministic, per call")
    print(table(rows))
    print(json.dumps({"learning": learning, "predict": predict}))


if __name__ == "__main__":
    exit_on_sigterm()
    main()
