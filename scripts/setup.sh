#!/usr/bin/env bash
# Prepare this checkout on a fresh machine: a virtual environment in .venv with
# torch (CPU build, installed first so nothing pulls a CUDA build), the project
# (compiling its Cython extensions) and the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."

# The C client (envs/c): libzmq's headers, pkg-config, make and a compiler; installed with
# apt-get when running as root, else a message says what is missing.
bash envs/c/install-deps.sh

# The browser tests (tests/test_browser_cartpole.py): Debian's chromium and its chromedriver,
# driven by selenium (nothing downloaded); installed as root when missing, else a message.
chromium_missing=()
[ -x /usr/bin/chromium ] || chromium_missing+=(chromium)
[ -x /usr/bin/chromedriver ] || chromium_missing+=(chromium-driver)
if [ ${#chromium_missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "browser tests: installing ${chromium_missing[*]}"
        install_chromium() {
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                -o DPkg::Lock::Timeout=300 "${chromium_missing[@]}" >/dev/null
        }
        install_chromium || { apt-get update -qq && install_chromium; }
    else
        echo "browser tests: missing ${chromium_missing[*]}: install them as root" \
            "(Debian: apt-get install ${chromium_missing[*]}); the browser tests skip until then." >&2
    fi
fi

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
