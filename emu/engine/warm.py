"""Compile the engine's kernels once, into numba's disk cache, for every arithmetic a command can select.

``python -m emu.engine.warm [--workers N]`` (``make setup`` runs it): a tiny network under
each preset, and each preset with float weights, runs two ticks. The kernels are compiled
per array dtype (float32 or float64 state; int16, float32 or float64 input sums), not per
network, so afterwards no command pays the 10-25 s of compiling a specialisation: the first
``s2emu run`` loads them from the cache. Entries older sources left behind are removed.
numba's cache lives beside the sources, or in ``NUMBA_CACHE_DIR``, or in the user's cache
folder (:mod:`emu.kernel_cache`); the run that warms it must see the same location as
later runs.

Variants compile in ``--workers`` processes at once (default 2): the cache folder's lock
(:func:`emu.kernel_cache._locked`) makes two processes saving entries of one function
keep both. The variants that need a specialisation of their own come first, so the
others find theirs in the cache instead of compiling it a second time beside it.
"""
from __future__ import annotations

import argparse
import multiprocessing
import signal
import sys
import time
from typing import Tuple

import numpy as np

from emu import kernel_cache as cache
from emu.engine.emulator import Emulator
from emu.network import Network, Population, Projection
from emu.profile import SemanticsProfile

#: every preset, and those whose weights may also be float (weight_bits=None); the first
#: four each compile a specialisation of their own, the others load one of theirs
VARIANTS = (("chip", {}), ("brian2", {}), ("fixed", {}), ("chip", {"weight_bits": None}),
            ("float64", {}), ("snntorch", {}), ("brian2", {"weight_bits": None}),
            ("float64", {"weight_bits": None}))


def tiny_network() -> Network:
    """Input -> LIF -> CubaLIF with integer weights: every population kind's code path."""
    net = Network(dt=1e-3)
    net.add(Population("in", (4,), "input"))
    net.add(Population("lif", (8,), "lif", alpha=0.9, threshold=2.0))
    net.add(Population("cuba", (3,), "cuba_lif", alpha=0.9, alpha_syn=0.5, threshold=2.0))
    net.add(Projection("in", "lif", np.ones((8, 4))))
    net.add(Projection("lif", "cuba", np.ones((3, 8))))
    return net


def warm_variant(index: int) -> Tuple[str, float]:
    """Compile (or load) the kernels of ``VARIANTS[index]``: (its label, seconds)."""
    name, changes = VARIANTS[index]
    t0 = time.perf_counter()
    Emulator(tiny_network(), SemanticsProfile.preset(name, **changes))(np.ones((1, 2, 4), bool))
    return name + "".join(f", {k}={v}" for k, v in changes.items()), time.perf_counter() - t0


def warm(out=sys.stdout, workers: int = 1) -> float:
    """Compile (or load) every variant's kernels in ``workers`` processes, then remove the
    cache entries no current source loads (:func:`emu.kernel_cache.prune`); prints one line
    per variant as it is ready; returns the seconds."""
    start = time.perf_counter()
    total = len(VARIANTS)

    def report(done: int, label: str, seconds: float) -> None:
        print(f"[{done}/{total}] kernels ready: {label} ({seconds:.1f} s)", file=out, flush=True)

    if workers <= 1:
        for i in range(total):
            report(i + 1, *warm_variant(i))
    else:
        # spawned, not forked: a fork of a process that has started numba's threads may hang;
        # the workers leave Ctrl-C to this process, which stops them
        pool = multiprocessing.get_context("spawn").Pool(workers, initializer=signal.signal,
                                                         initargs=(signal.SIGINT, signal.SIG_IGN))
        try:
            for done, result in enumerate(pool.imap_unordered(warm_variant, range(total)), 1):
                report(done, *result)
        finally:
            pool.terminate()
            pool.join()
    print(f"stale cache files removed: {cache.prune()}", file=out, flush=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m emu.engine.warm", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="processes compiling at once (default 2)")
    try:
        seconds = warm(workers=parser.parse_args().workers)
    except KeyboardInterrupt:
        print("warm: interrupted; the kernels compiled so far are cached", file=sys.stderr)
        sys.exit(130)
    print(f"numba kernels compiled or loaded in {seconds:.0f} s", flush=True)
