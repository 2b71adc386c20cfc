"""The raw transport baseline of ``bench.ps``: pyzmq PUSH/PULL of the same bytes, no work.

``python -m bench.ps_baseline`` alone prints the figure; ``bench.ps`` calls
``raw_push_pull`` in its own run.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time

import numpy as np
import zmq

from relaax_zmq.testing.ports import free_port


def _pusher(endpoint: str, size: int, count: int) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.SNDHWM, 4)
    sock.connect(endpoint)
    payload = np.ones(size, np.float32)
    header = b"\x00" * 64
    for _ in range(count):
        sock.send_multipart([header, payload], copy=False)
    sock.close(linger=-1)
    ctx.term()


def raw_push_pull(size: int = 10**7, pushers: int = 2, per_pusher: int = 20) -> dict[str, float]:
    """MB/s a PULL receives from ``pushers`` processes sending float32 vectors of ``size``."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context.instance()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, 4)
    pull.bind(endpoint)
    spawn = mp.get_context("spawn")
    procs = [
        spawn.Process(target=_pusher, args=(endpoint, size, per_pusher)) for _ in range(pushers)
    ]
    for p in procs:
        p.start()
    total = pushers * per_pusher
    pull.recv_multipart(copy=False)  # the first message starts the clock (process start excluded)
    start = time.perf_counter()
    for _ in range(total - 1):
        pull.recv_multipart(copy=False)
    wall = time.perf_counter() - start
    for p in procs:
        p.join()
    pull.close(0)
    megabytes = (total - 1) * size * 4 / 1e6
    return {"mb_per_s": megabytes / wall, "messages": total - 1, "seconds": wall}


if __name__ == "__main__":
    figures = raw_push_pull()
    print(f"raw PUSH/PULL, 2 pushers, 10^7 float32: {figures['mb_per_s']:,.0f} MB/s")
    print(json.dumps({k: round(v, 2) for k, v in figures.items()}))
