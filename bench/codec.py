"""RLX codec speed: encode+decode against pickle protocol 5, in the same run.

Run: ``python -m bench.codec``. Messages: a 4-float observation, an 84x84x4
uint8 frame, and float32 tensors of 10^3, 10^6 and 10^7 elements (gradient
sized). The last line is one JSON object of the figures.
"""

from __future__ import annotations

import json
import pickle

import numpy as np

from bench.timing import best_seconds, table
from relaax_zmq.protocol import messages, reference

try:
    from relaax_zmq import _codec as compiled
except ImportError:  # reported in the output rather than hidden
    compiled = None


def cases() -> dict[str, object]:
    rng = np.random.default_rng(0)
    small = messages.update(
        1, reward=np.ones(1, np.float32), state=rng.random((1, 4), dtype=np.float32)
    )
    frame = messages.update(
        1, reward=np.ones(1, np.float32), state=rng.integers(0, 255, (1, 84, 84, 4), dtype=np.uint8)
    )
    out = {"obs4_f32": small, "atari_84x84x4_u8": frame}
    for exp in (3, 6, 7):
        out[f"f32_1e{exp}"] = messages.update(1, state=rng.random((1, 10**exp), dtype=np.float32))
    return out


def as_wire(frames: list) -> list[bytes | memoryview]:
    """What a receiver holds: small frames as bytes, large ones as views (like zmq copy=False)."""
    return [bytes(memoryview(f)) if memoryview(f).nbytes < 65536 else memoryview(f) for f in frames]


def measure_codec(codec, message) -> float:
    frames = as_wire(codec.encode(message))
    return best_seconds(lambda: codec.encode(message)) + best_seconds(lambda: codec.decode(frames))


def measure_pickle(message, out_of_band: bool) -> float:
    obj = {
        "type": message.type,
        "sequence": message.sequence,
        "session_id": message.session_id,
        "tensors": message.tensors,
    }
    if out_of_band:
        buffers: list = []
        data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
        raws = [b.raw() for b in buffers]

        def encode() -> object:
            bufs: list = []
            return pickle.dumps(obj, protocol=5, buffer_callback=bufs.append)

        return best_seconds(encode) + best_seconds(lambda: pickle.loads(data, buffers=raws))
    data = pickle.dumps(obj, protocol=5)
    return best_seconds(lambda: pickle.dumps(obj, protocol=5)) + best_seconds(
        lambda: pickle.loads(data)
    )


def main() -> None:
    figures: dict[str, float] = {}
    rows = [["message", "cython us", "python us", "pickle5 us", "pickle5 oob us", "pickle5/cython"]]
    for name, message in cases().items():
        c = measure_codec(compiled, message) if compiled else float("nan")
        p = measure_codec(reference, message)
        pk = measure_pickle(message, out_of_band=False)
        oob = measure_pickle(message, out_of_band=True)
        figures.update(
            {
                f"{name}_cython_us": c * 1e6,
                f"{name}_python_us": p * 1e6,
                f"{name}_pickle5_us": pk * 1e6,
                f"{name}_pickle5_oob_us": oob * 1e6,
                f"{name}_pickle5_over_cython": pk / c,
            }
        )
        rows.append(
            [
                name,
                f"{c * 1e6:.2f}",
                f"{p * 1e6:.2f}",
                f"{pk * 1e6:.2f}",
                f"{oob * 1e6:.2f}",
                f"{pk / c:.1f}x",
            ]
        )
    sizes = [figures[f"f32_1e{e}_cython_us"] for e in (3, 6, 7)]
    figures["cython_size_independence_ratio"] = max(sizes) / min(sizes)
    print("RLX encode+decode, best of 5 (lower is better)")
    print(table(rows))
    print(
        f"\nsmall observation encode+decode: {figures['obs4_f32_cython_us']:.2f} us (target < 3 us)"
    )
    print(
        f"time ratio 10^7 vs 10^3 elements: {figures['cython_size_independence_ratio']:.2f} (target < 2)"
    )
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
