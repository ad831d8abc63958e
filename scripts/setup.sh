#!/usr/bin/env bash
# Fresh-machine setup: .venv, the local CPU torch wheel FIRST (plain `torch`
# would pull a multi-GB CUDA build), then this package with its dev extras, the peer
# simulators, and every kernel specialisation compiled into numba's cache.
# Prints the step it is on and how long each took; pip's progress is one line per step
# (rewritten in place on a terminal), its whole output only where it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=6
STEP=0
SETUP_START=$SECONDS
STEP_START=$SECONDS

step() {  # step LABEL: closes the previous step with its time, announces the next
    [ "$STEP" = 0 ] || echo "      done in $((SECONDS - STEP_START)) s"
    STEP=$((STEP + 1))
    STEP_START=$SECONDS
    echo "[setup $STEP/$STEPS] $1"
}

pip_install() {  # pip install ARGS, showing what it collects; its full log where it fails
    local log status
    log=$(mktemp)
    set +e
    .venv/bin/python -m pip install --progress-bar off "$@" 2>&1 | tee "$log" | pip_progress
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" != 0 ]; then
        echo "pip install $* failed (exit $status); its output:" >&2
        cat "$log" >&2
        rm -f "$log"
        exit "$status"
    fi
    rm -f "$log"
}

pip_progress() {  # reads pip's output: the package it is on, then a count of what it installed
    local n=0 line installed=""
    while IFS= read -r line; do
        case $line in
            Collecting\ *|Processing\ *|Requirement\ already\ satisfied:\ *)
                n=$((n + 1))
                if [ -t 1 ]; then printf '\r\033[K      %d: %.70s' "$n" "$line"; fi ;;
            Installing\ collected\ packages:\ *)
                if [ -t 1 ]; then printf '\r\033[K      installing %d packages' "$(wc -w <<<"${line#*: }")"; fi ;;
            Successfully\ installed\ *)
                installed=$(wc -w <<<"${line#Successfully installed }") ;;
            ERROR:*)  # pip reports a broken dependency set this way and still exits 0
                echo "$line" >&2 ;;
        esac
    done
    if [ -t 1 ]; then printf '\r\033[K'; fi
    echo "      $n requirements, ${installed:-0} installed"
}

step "virtual environment (.venv)"
[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
step "pip itself"
pip_install --upgrade pip
step "torch (CPU wheel)"
pip_install torch==2.13.0
step "this package and its dev and sweep extras"
pip_install -e '.[dev,sweep]'
step "peer simulators of tests/test_peers.py"
PIP_QUIET=2 bash scripts/install_peers.sh .venv  # pip's errors only, not its warnings about index folders
step "numba kernels, every specialisation (about a minute)"
.venv/bin/python -m emu.apps.warm
echo "      done in $((SECONDS - STEP_START)) s"
echo "setup done in $((SECONDS - SETUP_START)) s: .venv ready (s2emu at .venv/bin/s2emu)"
