#!/usr/bin/env bash
# What building librlx (envs/c, docs/c_client.md) needs: libzmq's headers, pkg-config, make and
# a C compiler. Run by scripts/setup.sh and by tests/test_c_client.py. As root, installs what is
# missing with apt-get; otherwise says what to install (the C client tests skip until then).
set -euo pipefail

have_zmq() { [ -f /usr/include/zmq.h ] || pkg-config --exists libzmq 2>/dev/null; }

missing=()
have_zmq || missing+=(libzmq3-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "librlx: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
    have_zmq || { echo "librlx: libzmq3-dev installed but zmq.h is still missing" >&2; exit 1; }
else
    echo "librlx (envs/c): missing ${missing[*]}: install them as root" \
        "(Debian/Ubuntu: apt-get install ${missing[*]}); the C client tests skip until then." >&2
fi
