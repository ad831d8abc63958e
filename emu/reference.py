"""Plain numpy reference of the emulator's semantics: per tick, dense, obviously correct.

It shares nothing with the engine but the starting bits (:mod:`emu.numerics`: the
profile's parameter rounding and weight quantization) and the schedule (which
population is updated first and each projection's lag). Synaptic input is
computed directly: a matrix product for dense projections, an explicit
correlation for conv2d, a reshape-sum for pooling. Tests demand the engine equal
this bit for bit.

Voltages are returned in chip units, spikes as (T, N) bool per population, both
in NIR neuron order, for one sample.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from emu.network import Network, Projection, pooled_shape
from emu.numerics import Numerics, quantize_weights, stochastic_bits
from emu.profile import SemanticsProfile
from emu.timing import schedule


def synaptic_input(pr: Projection, weight: np.ndarray, pre_shape, spikes: np.ndarray, dtype) -> np.ndarray:
    """Input current to every post neuron from the 0/1 ``spikes`` of the pre population."""
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
    v = {n: np.zeros(pops[n].size, dt) for n in order}
    syn = {n: np.zeros(pops[n].size, dt) for n in order}
    fired = {n: np.zeros(pops[n].size, bool) for n in order}
    buf = {n: np.zeros((n_slots, pops[n].size), dt) for n in order}
    spikes = {n: np.zeros((ticks, pops[n].size), bool) for n in order}
    volts = {n: np.zeros((ticks, pops[n].size), np.float64) for n in order if pops[n].model != "input"}
    sat = {n: 0 for n in order}
    lo, hi = dt(num.sat_lo), dt(num.sat_hi)

    def decay(coef, x, neurons, t, stream):
        if not num.fixed:
            return coef * x
        y = coef * x / num.coef_one
        if profile.fixed_rounding == "truncate":
            return np.trunc(y)
        if profile.fixed_rounding == "nearest":
            return np.floor(y + 0.5)
        with np.errstate(over="ignore"):
            bits = stochastic_bits(profile.seed, neurons.astype(np.uint64), t, stream)
        frac = (bits & np.uint64(int(num.coef_one) - 1)).astype(np.float64) / num.coef_one
        return np.floor(y + frac)

    def saturate(x, name):
        if not num.fixed:
            return x
        sat[name] += int(np.sum((x > hi) | (x < lo)))
        return np.clip(x, lo, hi)

    for t in range(ticks):
        slot = t % n_slots
        for name in order:
            pop = pops[name]
            if pop.model == "input":
                s = np.asarray(inputs[name][t], bool) if t < len(inputs[name]) else np.zeros(pop.size, bool)
            else:
                p = par[name]
                neurons = base[name] + np.arange(pop.size)
                drive = buf[name][slot].copy()
                buf[name][slot] = 0
                if pop.model == "cuba_lif":
                    new_syn = saturate(decay(p["alpha_syn"], syn[name], neurons, t, 1) + drive, name)
                    drive = syn[name] if profile.cuba_current == "last_tick" else new_syn
                    syn[name] = new_syn
                vm = v[name]
                delayed = profile.reset_timing == "next_tick"
                if delayed and profile.reset_mode == "zero":
                    vm = np.where(fired[name], p["v_reset"], vm)
                vm = decay(p["alpha"], vm, neurons, t, 0) + drive + p["i_offset"]
                if delayed and profile.reset_mode == "subtract":
                    vm = np.where(fired[name], vm - p["threshold"], vm)
                vm = saturate(vm, name)
                s = vm >= p["threshold"] if profile.spike_condition == ">=" else vm > p["threshold"]
                if not delayed:
                    vm = np.where(s, vm - p["threshold"] if profile.reset_mode == "subtract" else p["v_reset"], vm)
                fired[name] = s
                v[name] = vm.astype(dt)
                volts[name][t] = v[name] / num.lsb
            spikes[name][t] = s
            for j, pr, lag in sched:
                if pr.pre == name:
                    buf[pr.post][(t + lag) % n_slots] += synaptic_input(pr, weights[j], pop.shape, s, dt)
    return spikes, volts, sat
