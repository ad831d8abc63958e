"""Compile the engine's kernels once, into numba's disk cache, for every arithmetic a command can select.

``python -m emu.engine.warm`` (``make setup`` runs it): a tiny network under each preset,
and each preset with float weights, runs two ticks. The kernels are compiled per array
dtype (float32 or float64 state; int16, float32 or float64 input sums), not per network,
so afterwards no command pays the 10-25 s of compiling a specialisation: the first
``s2emu run`` loads them from the cache. Entries older sources left behind are removed.
numba's cache lives beside the sources (or in ``NUMBA_CACHE_DIR``); the run that warms
it must see the same location as later runs.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from emu.engine import cache
from emu.engine.emulator import Emulator
from emu.network import Network, Population, Projection
from emu.profile import SemanticsProfile

#: every preset, and those whose weights may also be float (weight_bits=None)
VARIANTS = tuple((name, {}) for name in SemanticsProfile.PRESETS) + (
    ("chip", {"weight_bits": None}), ("brian2", {"weight_bits": None}), ("float64", {"weight_bits": None}))


def tiny_network() -> Network:
    """Input -> LIF -> CubaLIF with integer weights: every population kind's code path."""
    net = Network(dt=1e-3)
    net.add(Population("in", (4,), "input"))
    net.add(Population("lif", (8,), "lif", alpha=0.9, threshold=2.0))
    net.add(Population("cuba", (3,), "cuba_lif", alpha=0.9, alpha_syn=0.5, threshold=2.0))
    net.add(Projection("in", "lif", np.ones((8, 4))))
    net.add(Projection("lif", "cuba", np.ones((3, 8))))
    return net


def warm(out=sys.stdout) -> float:
    """Compile (or load) every variant's kernels, then remove the cache entries no current
    source loads (:func:`emu.engine.cache.prune`); prints one line each; returns the seconds."""
    start = time.perf_counter()
    x = np.ones((1, 2, 4), bool)
    for name, changes in VARIANTS:
        t0 = time.perf_counter()
        Emulator(tiny_network(), SemanticsProfile.preset(name, **changes))(x)
        label = name + ("".join(f", {k}={v}" for k, v in changes.items()))
        print(f"kernels ready: {label} ({time.perf_counter() - t0:.1f} s)", file=out, flush=True)
    print(f"stale cache files removed: {cache.prune()}", file=out, flush=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    print(f"numba kernels compiled or loaded in {warm():.0f} s", flush=True)
