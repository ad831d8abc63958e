#!/usr/bin/env bash
# Install the peer libraries of tests/test_peers.py (norse, sinabs, and nirtorch for
# snnTorch's own NIR importer) into the project's virtual environment WITHOUT
# letting pip touch torch or nir.
#
#   scripts/install_peers.sh [VENV]        (default: .venv at the repository root)
#
# Why --no-deps: `pip install norse sinabs` resolves torch 2.14 + CUDA (several GB)
# and torchvision for norse, nir<=1.0.4 and samna (the Speck/DynapCNN driver) for
# sinabs. None of these are needed to import the NIR importers the tests use, so
# every peer is installed pinned and alone. The one dependency they add at import
# time are pbr (sinabs/__init__.py reads its version with pbr.version; pbr needs
# setuptools, already in the venv) and matplotlib (sinabs/network.py imports pylab),
# which depends on neither torch nor nir and is installed with its own dependencies.
# norse 1.1.0 is an sdist without a setup.py: pip builds a pure-Python wheel (build
# isolation fetches setuptools and setuptools_scm for the build only); no C++
# extension is compiled (the sdist ships no norse/csrc sources).
#
# Afterwards torch must still be 2.13.0 and nir the version found before; the
# script fails loudly otherwise. A no-op (well under a second) when the pinned
# versions are already installed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${1:-$ROOT/.venv}
case "$VENV" in /*) ;; *) VENV=$ROOT/$VENV ;; esac
PY=$VENV/bin/python
[ -x "$PY" ] || { echo "install_peers: no python at $PY (run scripts/setup.sh first)" >&2; exit 2; }

TORCH_WANT=2.13.0
PEERS=(norse==1.1.0 sinabs==3.1.3 nirtorch==2.6 pbr==7.1.3)
PEER_DEPS=("matplotlib>=3.6")  # with their dependencies: none of them touches torch or nir
IMPORTS="import norse.torch, sinabs, nirtorch, snntorch.import_nir"

versions() {  # prints "torch nir" as installed (torch without its local tag, e.g. +cpu)
    "$PY" -c '
from importlib.metadata import version, PackageNotFoundError
def v(name):
    try:
        return version(name).split("+")[0]
    except PackageNotFoundError:
        return "missing"
print(v("torch"), v("nir"))'
}

peers_ok() {  # exit 0 when every pinned peer is installed at its version (metadata only: fast)
    "$PY" -c '
import sys
from importlib.metadata import version, PackageNotFoundError
try:
    sys.exit(any(version(n) != v for n, v in (s.split("==") for s in sys.argv[1:])))
except PackageNotFoundError:
    sys.exit(1)' "${PEERS[@]}"
}

read -r TORCH_BEFORE NIR_BEFORE < <(versions)
if [ "$TORCH_BEFORE" != "$TORCH_WANT" ]; then
    echo "install_peers: torch is $TORCH_BEFORE in $VENV, expected $TORCH_WANT (run scripts/setup.sh)" >&2
    exit 2
fi
if [ "$NIR_BEFORE" = missing ]; then
    echo "install_peers: nir is not installed in $VENV (run scripts/setup.sh)" >&2
    exit 2
fi

if peers_ok && "$PY" -c "import matplotlib" 2>/dev/null; then
    echo "install_peers: already installed (${PEERS[*]}); torch $TORCH_BEFORE, nir $NIR_BEFORE"
    exit 0
fi

"$PY" -m pip install -q "${PEER_DEPS[@]}"
"$PY" -m pip install -q --no-deps "${PEERS[@]}"

read -r TORCH_AFTER NIR_AFTER < <(versions)
if [ "$TORCH_AFTER" != "$TORCH_WANT" ] || [ "$NIR_AFTER" != "$NIR_BEFORE" ]; then
    echo "install_peers: FAILED: pip changed the pinned core: torch $TORCH_BEFORE -> $TORCH_AFTER," \
         "nir $NIR_BEFORE -> $NIR_AFTER. Restore with scripts/setup.sh." >&2
    exit 1
fi
if ! peers_ok || ! "$PY" -c "$IMPORTS"; then
    echo "install_peers: FAILED: the peers are not installed as ${PEERS[*]} or do not import ($IMPORTS)" >&2
    exit 1
fi
echo "install_peers: installed ${PEERS[*]}; torch $TORCH_AFTER, nir $NIR_AFTER unchanged"
