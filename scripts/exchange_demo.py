"""Run an app's exchange on this machine: broker, workers and environment clients.

``python scripts/exchange_demo.py conf/exchange.yaml``: starts the broker and
``workers.count`` workers as subprocesses, waits until every worker has
registered, runs the environment clients (``python -m relaax_zmq.envs``) to the
end, prints the broker's figures and stops everything with SIGTERM. The
``relaax-zmq run`` command of the admin CLI will supersede it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from relaax_zmq.config import load_config
from relaax_zmq.runtime.admin_client import broker_status, wait_for_workers


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(path: str) -> int:
    config = load_config(path)
    python = sys.executable
    daemons = [subprocess.Popen([python, "-m", "relaax_zmq.broker", "--config", path])]
    try:
        for i in range(config.workers.count):
            name = f"worker-{i}"
            cmd = [python, "-m", "relaax_zmq.worker", "--config", path, "--name", name]
            daemons.append(subprocess.Popen(cmd))
        admin = str(config.broker.admin)
        wait_for_workers(admin, config.workers.count, timeout=60)
        start = time.monotonic()
        clients = subprocess.run([python, "-m", "relaax_zmq.envs", "--config", path], check=False)
        wall = time.monotonic() - start
        time.sleep(
            2 * config.broker.heartbeat_interval
        )  # workers report their counts in heartbeats
        figures = broker_status(admin)
        counters = figures["counters"]
        print(f"clients exited {clients.returncode} after {wall:.1f} s")
        for worker in figures["workers"]:
            steps = worker["stats"].get("steps", 0)
            print(f"worker {worker['name']}: {steps} steps, {worker['sessions']} sessions now")
        print(f"broker: {counters['requests']} requests, errors {counters.get('errors', {})}")
        return clients.returncode
    finally:
        stop(daemons)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else str(Path("conf/exchange.yaml"))))
