#!/usr/bin/env bash
# Fresh-machine setup: .venv, the local CPU torch wheel FIRST (plain `torch`
# would pull a multi-GB CUDA build), then this package with its dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e '.[dev,sweep]'
# the peer simulators of tests/test_peers.py, without letting pip replace torch or nir
bash scripts/install_peers.sh .venv
# every kernel specialisation compiled once, into numba's cache: no command pays it later
.venv/bin/python -m emu.engine.warm
echo "setup done: .venv ready (s2emu at .venv/bin/s2emu)"
