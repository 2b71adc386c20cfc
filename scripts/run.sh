#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job.
# Until the parameter servers and learning algorithms land, the job is the
# exchange on its own: a broker, two workers with a fixed policy and 64
# CartPole environments in one vectorised client (conf/exchange.yaml), run to
# the end with the broker's figures printed. Pass another app file to run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
python scripts/exchange_demo.py "${1:-conf/exchange.yaml}"
