"""THE lag rule: when a spike arrives, how late each population answers, how to line runs up.

A spike emitted at tick ``t`` on a projection reaches its target at ``t + lag``:

    lag = synaptic_latency + extra delay        (recurrent edges: at least 1)

``synaptic_latency`` is 1 on the chip (golden: an input spike at tick 60 first
shows in the membrane at tick 61) and 0 in snnTorch, which propagates through all
layers within one step. A recurrent edge (a back edge of
:meth:`emu.network.Network.order`, such as a self-projection) needs a tick to close
the loop whatever the latency: snnTorch's recurrent state is last step's.

Every caller (engine, reference, float reference, localization, attribution,
sweep, demo) takes its lags, depths and alignment shifts from here.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Optional, Tuple

import numpy as np

from emu.network import Network, Projection
from emu.profile import SemanticsProfile


def projection_lags(network: Network, latency: int, delays: bool = True) -> List[int]:
    """Ticks each projection takes, in the order of ``network.projections``.

    ``latency``: ticks every connection adds (a profile's ``synaptic_latency``);
    ``delays=False`` drops the projections' extra delays (an snnTorch model has
    none). Back edges take at least one tick.
    """
    back = set(network.back_edges())
    lags = []
    for j, pr in enumerate(network.projections):
        lag = int(latency) + (pr.delay if delays else 0)
        lags.append(max(lag, 1) if j in back else lag)
    return lags


def schedule(network: Network, profile: SemanticsProfile) -> Tuple[List[str], List[Tuple[int, Projection, int]]]:
    """Population order, and each projection's lag, as both engines use them.

    Returns ``(order, items)``: ``order`` is :meth:`Network.order`; ``items`` are
    ``(index, projection, lag)`` sorted by the position of the pre population, then
    by index: the order in which a tick's spikes are scattered.
    """
    order = network.order()
    pos = {n: i for i, n in enumerate(order)}
    lags = projection_lags(network, profile.synaptic_latency)
    items = [(j, pr, lags[j]) for j, pr in enumerate(network.projections)]
    items.sort(key=lambda it: (pos[it[1].pre], it[0]))
    return order, items


def arrival_ticks(network: Network, latency: int, delays: bool = True) -> Dict[str, int]:
    """Per population, the tick at which an input spike of tick 0 first reaches it: the
    shortest feed-forward path from an input, summing latency (+ delay) per projection."""
    back = set(network.back_edges())
    into = defaultdict(list)  # feed-forward projections by post population
    for j, pr in enumerate(network.projections):
        if j not in back:
            into[pr.post].append(pr)
    out = {n: 0 for n in network.inputs}
    for name in network.order():
        if name in out:
            continue
        ins = [out[pr.pre] + int(latency) + (pr.delay if delays else 0) for pr in into[name] if pr.pre in out]
        out[name] = min(ins) if ins else 0
    return out


def depth(network: Network, latency: int = 1, delays: bool = True) -> int:
    """Ticks the network answers after its input along its longest feed-forward path:
    how many silent ticks to append so that a run's response is not cut off."""
    back = set(network.back_edges())
    out_of = defaultdict(list)  # feed-forward projections by pre population, in index order
    for j, pr in enumerate(network.projections):
        if j not in back:
            out_of[pr.pre].append(pr)
    order = network.order()
    reach = {n: 0 for n in order}
    for n in order:
        for pr in out_of[n]:
            reach[pr.post] = max(reach[pr.post], reach[n] + int(latency) + (pr.delay if delays else 0))
    return max(reach.values(), default=0)


def latency_shifts(network: Network, profile: SemanticsProfile, reference: Optional[SemanticsProfile] = None,
                   reference_delays: bool = True, delays: bool = True) -> Dict[str, int]:
    """Ticks each population of a run under ``profile`` lags the same network under ``reference``
    (default: snnTorch's latency 0): the difference of their :func:`arrival_ticks`.

    ``delays`` / ``reference_delays``: whether each run kept the projections' extra
    delays (the float reference drops them). Exact for networks whose feed-forward
    paths into a population all have one length (chains); with skip projections of
    another length no shift aligns every spike, and the shortest path is used.
    """
    ref = reference or SemanticsProfile.snntorch()
    a = arrival_ticks(network, profile.synaptic_latency, delays)
    r = arrival_ticks(network, ref.synaptic_latency, reference_delays)
    return {n: a[n] - r[n] for n in network.order()}


def align(a: np.ndarray, b: np.ndarray, shift: int, axis: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A's ticks ``shift ..`` against B's ticks ``0 ..`` along ``axis``, over the ticks both
    have (a negative ``shift`` starts B later instead). Row ``i`` of the parts pairs A's
    tick ``max(shift, 0) + i`` with B's tick ``max(-shift, 0) + i``."""
    shift = int(shift)
    ta, tb = a.shape[axis], b.shape[axis]
    sa, sb = max(shift, 0), max(-shift, 0)
    length = max(0, min(ta - sa, tb - sb))
    cut_a = [slice(None)] * a.ndim
    cut_b = [slice(None)] * b.ndim
    cut_a[axis] = slice(sa, sa + length)
    cut_b[axis] = slice(sb, sb + length)
    return a[tuple(cut_a)], b[tuple(cut_b)]
