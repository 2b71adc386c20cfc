"""Benchmark of the parameter-server kernels: ``python -m bench.kernels``.

Two figures, each against baselines measured in the same run:

* aggregation: the sum of 8 gradients of 10**7 float32 into an accumulator,
  against numpy's best loop (``np.add`` chained with ``out=``) and against the
  memory bandwidth of ``np.copyto``. GB/s count the bytes the operation must
  read and write (8 gradients read, the accumulator written once).
* one Adam step on 10**7 parameters, against the numpy reference and against
  ``torch.optim.Adam(foreach=True)`` at torch's default thread count.

Prints a table, then one JSON line with every figure (the last line).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from relaax_zmq import kernels
from relaax_zmq.kernels import reference

N = 10**7
GRADS = 8
REPEATS = 11
LR = 1e-3


def _seconds(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median wall time of ``fn`` after one warm-up call (perf_counter: finest clock)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _numpy_sum(out: np.ndarray, grads: list[np.ndarray]) -> None:
    np.add(grads[0], grads[1], out=out)
    for g in grads[2:]:
        np.add(out, g, out=out)


def bench_sum(rng: np.random.Generator) -> dict[str, float]:
    grads = [rng.standard_normal(N, dtype=np.float32) for _ in range(GRADS)]
    out = np.empty(N, np.float32)
    moved = (GRADS + 1) * N * 4  # bytes read + written by a fused sum
    ours = _seconds(lambda: kernels.sum_into(out, grads))
    numpy_loop = _seconds(lambda: _numpy_sum(out, grads))
    copy = _seconds(lambda: np.copyto(out, grads[0]))
    return {
        "sum8_1e7_ms": ours * 1e3,
        "sum8_1e7_gbps": moved / ours / 1e9,
        "numpy_sum8_ms": numpy_loop * 1e3,
        "numpy_sum8_gbps": moved / numpy_loop / 1e9,
        "copyto_gbps": 2 * N * 4 / copy / 1e9,
        "sum8_vs_numpy": numpy_loop / ours,
        "sum8_vs_copyto_bw": (moved / ours) / (2 * N * 4 / copy),
    }


def bench_adam(rng: np.random.Generator) -> dict[str, float]:
    param = rng.standard_normal(N, dtype=np.float32)
    grad = rng.standard_normal(N, dtype=np.float32)
    state = {name: np.zeros(N, np.float32) for name in ("ours", "ours_sq", "ref", "ref_sq")}
    ours_param, ref_param = param.copy(), param.copy()
    steps = {"ours": 0, "ref": 0}

    def ours() -> None:
        steps["ours"] += 1
        kernels.adam_step(ours_param, grad, state["ours"], state["ours_sq"], steps["ours"], LR)

    def ref() -> None:
        steps["ref"] += 1
        reference.adam_step(ref_param, grad, state["ref"], state["ref_sq"], steps["ref"], LR)

    tensor = torch.nn.Parameter(torch.from_numpy(param.copy()))
    tensor.grad = torch.from_numpy(grad)
    optimizer = torch.optim.Adam([tensor], lr=LR, foreach=True)
    ours_s, ref_s = _seconds(ours), _seconds(ref, repeats=3)
    torch_s = _seconds(optimizer.step)
    return {
        "adam_1e7_ms": ours_s * 1e3,
        "adam_1e7_gbps": 7 * N * 4 / ours_s / 1e9,  # reads 4 buffers, writes 3
        "adam_reference_ms": ref_s * 1e3,
        "adam_torch_ms": torch_s * 1e3,
        "adam_vs_torch": torch_s / ours_s,
        "adam_vs_reference": ref_s / ours_s,
    }


def main() -> None:
    rng = np.random.default_rng(0)
    with torch.no_grad():
        figures = {**bench_sum(rng), **bench_adam(rng)}
    rows = [
        ("sum of 8 x 1e7 float32", "ours", figures["sum8_1e7_ms"], figures["sum8_1e7_gbps"]),
        ("", "numpy np.add chain", figures["numpy_sum8_ms"], figures["numpy_sum8_gbps"]),
        ("", "np.copyto bandwidth", None, figures["copyto_gbps"]),
        ("Adam step, 1e7 params", "ours (fused)", figures["adam_1e7_ms"], figures["adam_1e7_gbps"]),
        ("", "numpy reference", figures["adam_reference_ms"], None),
        ("", "torch foreach", figures["adam_torch_ms"], None),
    ]
    print(f"kernels backend: {kernels.BACKEND}; torch threads: {torch.get_num_threads()}")
    print(f"{'operation':<24}{'implementation':<22}{'ms':>10}{'GB/s':>10}")
    for op, impl, ms, gbps in rows:
        ms_text = f"{ms:10.2f}" if ms is not None else f"{'':>10}"
        gbps_text = f"{gbps:10.1f}" if gbps is not None else f"{'':>10}"
        print(f"{op:<24}{impl:<22}{ms_text}{gbps_text}")
    print(
        f"sum8: {figures['sum8_vs_numpy']:.2f}x numpy's loop, "
        f"{figures['sum8_vs_copyto_bw']:.2f}x copyto's bandwidth (target >= 0.8x numpy)"
    )
    print(
        f"adam: {figures['adam_vs_torch']:.2f}x torch, "
        f"{figures['adam_vs_reference']:.2f}x the reference (target > 1x torch)"
    )
    figures["torch_threads"] = torch.get_num_threads()
    figures["backend"] = kernels.BACKEND
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
