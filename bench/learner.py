"""Learner throughput: transitions per second a central learner consumes, against its bound.

Run: ``python -m bench.learner [--seconds S] [--device cpu|cuda]``.

Three figures for the IMPALA learner of ``conf/cartpole-impala.yaml`` (batches of 8
unrolls of 16 transitions) and, with ``--batch-size``, larger batches:

- ``bare``: the bound. The same model's forward pass over the batch, a loss, backward and
  an Adam step in a bare torch loop on ``device``: nothing else.
- ``learner``: ``ImpalaLearner.learn`` on the same batches in this process (V-trace, the
  loss, the gradient pushed to an in-process link that applies it with torch's Adam at
  once): the algorithm's own cost over the bound.
- ``daemons`` (cpu only): the real system. Shards, the learner daemon, broker and two
  workers as processes (``LocalStack``), 2 x 16 CartPole sessions stepped in this process;
  the learner's transitions/s read from its /metrics over the measured window. On two
  cores the environments, the actors and the learner share the machine: this is the rate
  of the whole loop, the learner waiting for unrolls as much as computing.

The last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import yaml

from bench.timing import table
from relaax_zmq.algorithms.impala.agent import ImpalaLearner, build_model
from relaax_zmq.core_learner import ExperienceBatch, LearnerContext

CONF = Path(__file__).resolve().parent.parent / "conf"
OBS, ACTIONS = 4, 2


class TorchLink:
    """A ``ParameterLink`` in this process whose push is a torch Adam step at once."""

    sync = False
    stopping = False
    ready = True
    global_step = 0

    def __init__(self, model: torch.nn.Module) -> None:
        from relaax_zmq.algorithms.common.flat import FlatModel

        self.flat = FlatModel(model)
        self.param_count = self.flat.param_count
        self.vector = self.flat.vector.detach().clone()
        self.vector.grad = torch.zeros_like(self.vector)
        self.optimizer = torch.optim.Adam([self.vector], lr=1e-3)
        self.version = 0

    def poll(self) -> bool:
        return False

    def weights(self):
        return self.vector.detach().cpu().numpy(), np.array([self.version]), True

    def wait_consistent(self, timeout: float, *, newer_than: int | None = None) -> bool:
        return True

    def push(self, gradient, base_versions: Sequence[int], steps: int, episodes: int) -> int:
        self.vector.grad.copy_(torch.as_tensor(gradient))
        self.optimizer.step()
        self.version += 1
        return 1

    def add_statistics(self, delta) -> None:
        """No shared statistics: the benchmark's model normalises nothing."""

    def statistics(self):
        return None


def config(batch_size: int = 0) -> dict:
    """The preset's algorithm config, with ``batch_size`` unrolls per batch (0: its own)."""
    app = yaml.safe_load((CONF / "cartpole-impala.yaml").read_text())
    found = app["algorithm"]["config"]
    return {**found, "batch_size": batch_size or found["batch_size"]}


def random_batch(n: int, t: int) -> ExperienceBatch:
    rng = np.random.default_rng(0)
    fields = {
        "obs": rng.standard_normal((n, t + 1, OBS)).astype(np.float32),
        "action": rng.integers(0, ACTIONS, (n, t)),
        "behaviour_log_prob": np.full((n, t), np.log(0.5), np.float32),
        "reward": np.ones((n, t), np.float32),
        "done": (rng.random((n, t)) < 0.05).astype(np.float32),
    }
    return ExperienceBatch(fields, np.zeros(n, np.int64), steps=n * t)


def bare_rate(batch: ExperienceBatch, device: str, seconds: float) -> float:
    """Transitions/s of forward + loss + backward + Adam on the same model and batch."""
    from relaax_zmq.algorithms.impala.config import ImpalaConfig
    from relaax_zmq.core import parse_config

    model = build_model(parse_config(ImpalaConfig, config(len(batch)), "impala")).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    obs = torch.as_tensor(batch.fields["obs"], device=device).transpose(0, 1)
    actions = torch.as_tensor(batch.fields["action"], device=device).transpose(0, 1)

    def step() -> None:
        out = model.unroll(obs)
        log_probs = model.distribution(out.head[:-1]).log_prob(actions)
        loss = -(log_probs * out.value[:-1].detach()).mean() + out.value.pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return _rate(step, batch.steps, device, seconds)


def learner_rate(batch: ExperienceBatch, device: str, seconds: float) -> float:
    """Transitions/s of ``ImpalaLearner.learn`` with an in-process link (module docstring)."""
    from relaax_zmq.algorithms.impala.config import ImpalaConfig
    from relaax_zmq.core import parse_config

    c = config(len(batch))
    link = TorchLink(build_model(parse_config(ImpalaConfig, c, "impala")))
    learner = ImpalaLearner(
        LearnerContext(config=c, device=device, parameters=link),
        parse_config(ImpalaConfig, c, "impala"),
    )
    return _rate(lambda: learner.learn(batch), batch.steps, device, seconds)


def _rate(step, transitions: int, device: str, seconds: float) -> float:
    for _ in range(5):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return count * transitions / (time.perf_counter() - start)


def learner_counters(port: int) -> dict[str, float]:
    """The learner daemon's unlabelled samples from its /metrics."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        s.name.removeprefix("relaax_learner_"): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if set(s.labels) <= {"role", "name"}
    }


def daemons_rate(seconds: float) -> dict[str, float]:
    """The learner daemon's transitions/s fed by two workers (module docstring)."""
    from bench.learning import write_case_app
    from relaax_zmq.config import load_config
    from relaax_zmq.envs.launch import make_vector_blocks
    from relaax_zmq.runtime.local import LocalStack
    from relaax_zmq.runtime.ports import free_port_range

    with tempfile.TemporaryDirectory(prefix="bench-learner-") as tmp:
        path = write_case_app("cartpole-impala", 1, Path(tmp))
        app = yaml.safe_load(path.read_text())
        port = free_port_range(1)
        app["workers"] = {"count": 2}
        app["prometheus"] = {"learners": port}
        path.write_text(yaml.safe_dump(app))
        with LocalStack(path):
            runner = make_vector_blocks(load_config(path))
            thread = threading.Thread(target=runner.run, daemon=True)
            thread.start()
            try:
                deadline = time.monotonic() + 30
                while learner_counters(port).get("learn_steps_total", 0) < 10:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the learner made no steps in 30 s")
                    time.sleep(0.2)
                first, start, steps0 = learner_counters(port), time.monotonic(), runner.steps
                time.sleep(seconds)
                last, elapsed = learner_counters(port), time.monotonic() - start
                env_rate = (runner.steps - steps0) / elapsed
            finally:
                runner.stop()
                thread.join(30)
    consumed = last["transitions_total"] - first["transitions_total"]
    return {
        "transitions_per_s": round(consumed / elapsed, 1),
        "env_steps_per_s": round(env_rate, 1),
        "learner_busy": round((last["learn_seconds"] - first["learn_seconds"]) / elapsed, 3),
        "stale_items": last.get("stale_items_total", 0.0),
        "mean_lag": round(
            last.get("lag_sum_total", 0.0) / max(1.0, last.get("items_total", 1.0)), 2
        ),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.learner", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="per figure")
    parser.add_argument("--device", default="cpu", help="torch device of the learner")
    preset = config(0)["batch_size"]
    parser.add_argument(
        "--batch-sizes", default=f"{preset},64", help="unrolls per batch, comma-separated"
    )
    parser.add_argument("--no-daemons", dest="daemons", action="store_false", help="skip them")
    args = parser.parse_args(argv)
    torch.set_num_threads(1 if args.device == "cpu" else torch.get_num_threads())
    figures: dict[str, dict[str, float]] = {}
    rows = [
        [
            "batch (unrolls x 16)",
            "bare torch",
            "learner",
            "learner / bare",
            "daemons",
            "daemons / bare",
        ]
    ]
    for n in [int(x) for x in args.batch_sizes.split(",")]:
        batch = random_batch(n, 16)
        bare = bare_rate(batch, args.device, args.seconds)
        own = learner_rate(batch, args.device, args.seconds)
        entry = {
            "bare": round(bare, 1),
            "learner": round(own, 1),
            "learner_over_bare": round(own / bare, 3),
        }
        figures[f"{args.device}_batch_{n}"] = entry
        rows.append([str(n), f"{bare:,.0f}", f"{own:,.0f}", f"{own / bare:.2f}", "", ""])
    if args.device == "cpu" and args.daemons and f"cpu_batch_{preset}" in figures:
        found = daemons_rate(max(5.0, 2 * args.seconds))
        bare = figures[f"cpu_batch_{preset}"]["bare"]
        found["over_bare"] = round(found["transitions_per_s"] / bare, 3)
        figures[f"daemons_batch_{preset}"] = found
        rows[1][4:] = [f"{found['transitions_per_s']:,.0f}", f"{found['over_bare']:.2f}"]
    print(table(rows))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
