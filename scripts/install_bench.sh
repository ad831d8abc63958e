#!/usr/bin/env bash
# Install brian2 (and Cython, for its cython target) for benchmarks/bench_brian2.py into the
# project's virtual environment WITHOUT letting pip touch torch, nir or numpy. brian2 is a
# benchmark peer, not a runtime dependency of the project (pyproject.toml does not name it).
#
#   scripts/install_bench.sh [VENV]        (default: .venv at the repository root)
#
# Why brian2 2.11.0 with --ignore-requires-python: the venv is Python 3.11 and numpy 2.4.
# 2.9.0, the newest release that allows Python 3.11, does not import under numpy 2.4
# (its Quantity class wraps np.ndarray.ptp, which numpy 2.4 removed). 2.11.0 guards that
# wrapper, and declares Requires-Python >= 3.13 (2.10.x: >= 3.12), but its code is plain
# 3.11 Python: it byte-compiles and runs here (benchmarks/bench_brian2.py checks its spikes). It ships only an sdist for
# 3.11, so pip builds its small Cython extension (the spike queue) with gcc, in an isolated
# build environment, in about a minute. Its dependencies (numpy, sympy, pyparsing, jinja2,
# setuptools, packaging) are already in the venv except Cython, which brian2's cython
# target needs at run time too (it compiles generated code with gcc). The installed versions
# of torch, nir and numpy are passed to pip as constraints: a resolution that would replace
# any of them fails instead of downloading another torch. norse (the other peer of the
# benchmark) comes from scripts/install_peers.sh.
#
# Afterwards torch, nir and numpy must be the versions found before and brian2 must import;
# the script fails loudly otherwise. A no-op when brian2 2.11.0 and Cython are installed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${1:-$ROOT/.venv}
case "$VENV" in /*) ;; *) VENV=$ROOT/$VENV ;; esac
PY=$VENV/bin/python
[ -x "$PY" ] || { echo "install_bench: no python at $PY (run scripts/setup.sh first)" >&2; exit 2; }

BRIAN2=brian2==2.11.0
CYTHON="cython>=0.29.21"
PROTECTED=(torch nir numpy)

versions() {  # "name==version" of every protected package, as installed (local tags kept)
    "$PY" - "${PROTECTED[@]}" <<'EOF'
import sys
from importlib.metadata import version, PackageNotFoundError
for name in sys.argv[1:]:
    try:
        print(f"{name}=={version(name)}")
    except PackageNotFoundError:
        print(f"{name}==missing")
EOF
}

installed() {  # exit 0 when brian2 2.11.0 and Cython are installed (metadata only: fast)
    "$PY" -c '
import sys
from importlib.metadata import version, PackageNotFoundError
try:
    sys.exit(version("brian2") != "2.11.0" or not version("cython"))
except PackageNotFoundError:
    sys.exit(1)'
}

BEFORE=$(versions)
if grep -q "==missing" <<<"$BEFORE"; then
    echo "install_bench: missing in $VENV: $(grep "==missing" <<<"$BEFORE" | tr '\n' ' ')(run scripts/setup.sh)" >&2
    exit 2
fi

if installed; then
    echo "install_bench: already installed ($BRIAN2, $("$PY" -c 'import Cython; print("cython", Cython.__version__)'))"
    exit 0
fi

CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "$BEFORE" >"$CONSTRAINTS"
"$PY" -m pip install -q --ignore-requires-python -c "$CONSTRAINTS" "$BRIAN2" "$CYTHON"

AFTER=$(versions)
if [ "$AFTER" != "$BEFORE" ]; then
    echo "install_bench: FAILED: pip changed the pinned core: $(tr '\n' ' ' <<<"$BEFORE")-> $(tr '\n' ' ' <<<"$AFTER")." \
         "Restore with scripts/setup.sh." >&2
    exit 1
fi
if ! installed || ! "$PY" -c "import brian2, Cython"; then
    echo "install_bench: FAILED: $BRIAN2 and Cython are not installed or do not import" >&2
    exit 1
fi
echo "install_bench: installed $BRIAN2, cython $("$PY" -c 'import Cython; print(Cython.__version__)');" \
     "$(tr '\n' ' ' <<<"$AFTER")unchanged"
