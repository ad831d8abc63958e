"""Plain numpy reference of the emulator's semantics: per tick, dense, obviously correct.

It shares nothing with the engine but the starting bits (:mod:`emu.numerics`: the
profile's parameter rounding and weight quantization), the schedule
(:mod:`emu.timing`: which population is updated first and each projection's lag)
and the written rule it runs as is (:func:`emu.neuron.update`). Synaptic input is
computed directly: a matrix product for dense projections, an explicit
correlation for conv2d, one unbuffered add per listed synapse for sparse ones
(``np.add.at``), a reshape-sum for pooling. Tests demand the engine equal
this bit for bit.

Voltages are returned in chip units, spikes as (T, N) bool per population, both
in NIR neuron order, for one sample.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from emu.network import Network, Projection, pooled_shape
from emu.neuron import NeuronState, update
from emu.numerics import Numerics, quantize_weights
from emu.profile import SemanticsProfile
from emu.timing import schedule


def synaptic_input(pr: Projection, weight: np.ndarray, pre_shape, spikes: np.ndarray, dtype,
                    n_post: int) -> np.ndarray:
    """Input current to every one of the ``n_post`` post neurons from the 0/1 ``spikes`` of
    the pre population."""
    x = spikes.astype(dtype)
    if pr.pool > 1:
        c, h, w = pre_shape
        _, ph, pw = pooled_shape(pre_shape, pr.pool)
        p = pr.pool
        x = x.reshape(c, h, w)[:, : ph * p, : pw * p].reshape(c, ph, p, pw, p).sum(axis=(2, 4))
    src_shape = pooled_shape(pre_shape, pr.pool)
    x = x.reshape(-1)
    if pr.kind == "dense":
        return weight.astype(dtype) @ x
    if pr.kind == "one_to_one":
        return weight.astype(dtype) * x
    if pr.kind == "sparse":
        out = np.zeros(n_post, dtype)
        pre_idx, post_idx = pr.connections.T
        np.add.at(out, post_idx, weight.astype(dtype) * x[pre_idx])
        return out
    c_out, c_in, kh, kw = weight.shape
    (sy, sx), (py, px) = pr.stride, pr.padding
    _, h, w = src_shape
    xp = np.zeros((c_in, h + 2 * py, w + 2 * px), dtype)
    xp[:, py:py + h, px:px + w] = x.reshape(src_shape)
    oh, ow = (h + 2 * py - kh) // sy + 1, (w + 2 * px - kw) // sx + 1
    out = np.zeros((c_out, oh, ow), dtype)
    for dy in range(kh):
        for dx in range(kw):
            patch = xp[:, dy:dy + sy * (oh - 1) + 1:sy, dx:dx + sx * (ow - 1) + 1:sx]
            out += np.einsum("oc,chw->ohw", weight[:, :, dy, dx].astype(dtype), patch)
    return out.reshape(-1)


def reference_run(network: Network, inputs: Dict[str, np.ndarray], ticks: int,
                  profile: SemanticsProfile) -> tuple:
    """Run one sample; ``inputs`` maps input populations to (T, N) 0/1 rasters.

    Returns ``(spikes, v, saturations)``: dicts by population of (ticks, N) bool,
    (ticks, N) chip-unit voltages, and saturation counts.
    """
    network.validate()
    num = Numerics.of(profile)
    dt = num.state_dtype
    order, sched = schedule(network, profile)
    n_slots = max((lag for _, _, lag in sched), default=0) + 1
    base = dict(zip(order, np.cumsum([0] + [network.populations[n].size for n in order])[:-1].tolist()))
    weights = {j: num.weight_units(quantize_weights(pr.weight, profile, pr.label)[0]) for j, pr, _ in sched}
    pops = network.populations
    par = {n: num.neuron_params(pops[n]) for n in order}
    state = {n: NeuronState.zeros(pops[n].size, dt) for n in order}
    buf = {n: np.zeros((n_slots, pops[n].size), dt) for n in order}
    spikes = {n: np.zeros((ticks, pops[n].size), bool) for n in order}
    volts = {n: np.zeros((ticks, pops[n].size), np.float64) for n in order if pops[n].model != "input"}
    sat = {n: 0 for n in order}
    for t in range(ticks):
        slot = t % n_slots
        for name in order:
            pop = pops[name]
            if pop.model == "input":
                s = np.asarray(inputs[name][t], bool) if t < len(inputs[name]) else np.zeros(pop.size, bool)
            else:
                drive = buf[name][slot].copy()
                buf[name][slot] = 0
                neurons = base[name] + np.arange(pop.size)
                s, clipped = update(state[name], drive, par[name], pop.model == "cuba_lif", num, profile, neurons, t)
                sat[name] += clipped
                volts[name][t] = state[name].v / num.lsb
            spikes[name][t] = s
            for j, pr, lag in sched:
                if pr.pre == name:
                    current = synaptic_input(pr, weights[j], pop.shape, s, dt, pops[pr.post].size)
                    buf[pr.post][(t + lag) % n_slots] += current
    return spikes, volts, sat
