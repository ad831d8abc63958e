"""``python -m emu.apps.warm [--workers N]`` (``make setup`` runs it): every compiled kernel
into numba's cache, so no command compiles later.

The engine's specialisations come from :mod:`emu.engine.warm`; then the kernels above the
engine, each compiled by a tiny run of the public call that uses it, with the argument
types the commands give it: the spike lists' keys (:meth:`emu.spikes.Recording.spike_keys`),
the spike agreement and Victor-Purpura distance (:mod:`validate.metrics`), the localization
(:mod:`validate.localize`), the float reference's exact links (:mod:`validate.float_links`)
and the event pipeline's Denoise (:mod:`emu.apps.gesture.denoise`).
"""
from __future__ import annotations

import argparse
import sys
import time

import nir
import numpy as np

from emu.apps.gesture.data import EVENT_DTYPE
from emu.apps.gesture.denoise import Denoise
from emu.engine import warm as engine_warm
from emu.network import Network, Population, Projection
from emu.spikes import Recording
from validate.float_reference import FloatReference
from validate.localize import localize
from validate.metrics import agreement_of_keys, victor_purpura


def warm_above_engine() -> float:
    """Compile (or load) the kernels above the engine; returns the seconds."""
    t0 = time.perf_counter()
    a = Recording.from_rasters({"in": np.eye(4, dtype=bool), "p": np.eye(4, 3, dtype=bool)})
    b = Recording.from_rasters({"in": np.eye(4, dtype=bool), "p": np.eye(4, 3, k=1, dtype=bool)})
    agreement_of_keys(a.spike_keys("p", 1, 3), b.spike_keys("p", 0, 3), 9)
    victor_purpura(a.raster("p", 0), b.raster("p", 0), 0.5)
    net = Network()
    net.add(Population("in", (4,), "input"))
    net.add(Population("p", (3,), "lif", alpha=0.9, threshold=1.0))
    net.add(Projection("in", "p", np.ones((3, 4))))
    localize(a, b, net)
    graph = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([4])}),
                                "w": nir.Linear(weight=np.full((3, 4), 0.5)),
                                "p": nir.LIF(tau=np.full(3, 0.01), r=np.full(3, 10.0), v_leak=np.zeros(3),
                                             v_threshold=np.ones(3), v_reset=np.zeros(3))},
                         edges=[("in", "w"), ("w", "p")], type_check=False)
    FloatReference(graph, dt=1e-3)({"in": np.eye(4, dtype=bool)[None]}, record_v=False)
    events = np.zeros(3, dtype=EVENT_DTYPE)
    events["x"], events["t"] = [0, 1, 1], [0, 1, 2]
    Denoise()(events)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emu.apps.warm", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="processes compiling the engine's kernels (default 2)")
    args = parser.parse_args(argv)
    try:
        seconds = engine_warm.warm(workers=args.workers)
        above = warm_above_engine()
    except KeyboardInterrupt:
        print("warm: interrupted; the kernels compiled so far are cached", file=sys.stderr)
        return 130
    print(f"kernels above the engine ready ({above:.1f} s)", flush=True)
    print(f"numba kernels compiled or loaded in {seconds + above:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
