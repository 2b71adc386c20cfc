#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job.
# Until the broker, workers and parameter servers land, the job is: load the
# default app, check every RLX test vector with the selected codec, and run the
# hot-path benchmarks (their figures end each benchmark as one JSON line).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
APP=${1:-conf/app.yaml}
python - "$APP" <<'PY'
import sys

from relaax_zmq import protocol
from relaax_zmq.config import load_config
from relaax_zmq.protocol.vectors import load_vectors

app = load_config(sys.argv[1])
print(f"app {sys.argv[1]}: environment {app.environment.run!r}, algorithm {app.algorithm.name or app.algorithm.path!r}")
vectors = load_vectors()
for vector in vectors:
    if vector.message is not None:
        assert [bytes(memoryview(f)) for f in protocol.encode(vector.message)] == vector.frames, vector.name
        assert protocol.decode(vector.frames) == vector.message, vector.name
print(f"RLX v1: {len(vectors)} test vectors checked with the {protocol.BACKEND} codec")
PY
python -m bench.codec
python -m bench.kernels
