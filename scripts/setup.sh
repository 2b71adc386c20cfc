#!/usr/bin/env bash
# Prepare this checkout on a fresh machine: a virtual environment in .venv with
# torch (CPU build, installed first so nothing pulls a CUDA build), the project
# (compiling its Cython extensions) and the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."

# The C client (envs/c): libzmq's headers, pkg-config, make and a compiler; installed with
# apt-get when running as root, else a message says what is missing.
bash envs/c/install-deps.sh

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip setuptools wheel
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[test,atari,box2d,bench,s3,plots]"
python - <<'PY'
from relaax_zmq import kernels, protocol
print(f"relaax-zmq ready: codec backend {protocol.BACKEND}, kernels backend {kernels.BACKEND}")
PY
