#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the default test suite; extra arguments go to pytest.
# Long learning and soak runs are marked slow: scripts/test.sh -m slow runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export RELAAX_ZMQ_REQUIRE_EXTENSION=1
ruff check relaax_zmq broker algorithms envs bench tests scripts
python -m pytest "$@"
