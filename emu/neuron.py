"""The SpiNNaker2 neuron update, as named steps: synapse -> decay -> integrate -> fire -> reset.

This module is the one written statement of the rule. :mod:`emu.reference` runs it
as is (numpy, one population at a time); the numba kernels
(:mod:`emu.engine.kernels`) implement the same steps, in the same order of
floating-point operations, and name the step each part implements. Tests demand
both agree bit for bit.

The model and its ODE (NIR)::

    LIF:      tau     dv/dt = (v_leak - v) + R I
    CubaLIF:  tau_syn dI/dt = -I + w_in (W x + b)       tau_mem dv/dt = (v_leak - v) + R I
    IF:       dv/dt = R I                               LI: a LIF that never fires

What the chip computes per tick (after the converter has folded dt, tau, R and the
weight scale into ``alpha``, ``threshold`` and ``i_offset``; :mod:`emu.nir_import`)::

    syn   = alpha_syn * syn + sum of arriving weights       synapse   (CubaLIF only; + syn_bias when
                                                                       the bias path is synaptic)
    v     = alpha * v                                       decay
    v     = v + drive + i_offset                            integrate (drive: syn, or the arriving weights)
    fired = v > threshold                                   fire      (or >=)
    v     = v - threshold  |  v_reset                       reset     (same tick: the recorded v is post-reset)

Profile options change single steps: ``cuba_current="last_tick"`` drives the
membrane with last tick's ``syn``; ``reset_timing="next_tick"`` (snnTorch's
``reset_delay=True``) applies the reset of tick t at t+1 and records the pre-reset
value: subtract after integrating; zero, as snnTorch's ``Leaky`` does, before the
decay, so that tick's input is kept, and as its ``Synaptic`` does for a CubaLIF,
the whole membrane of that tick, input included.

State and the width each arithmetic gives it (``Numerics``):

=========  ===========  ==============  ==============  =====================================
variable   ``chip``     ``brian2``      ``float64``     ``fixed``
=========  ===========  ==============  ==============  =====================================
v, syn     float32      float64         float64         int, ``membrane_bits`` word, saturating
alpha      float32      float32 value   float64         int of ``coef_frac_bits`` fraction bits
threshold  float32      float32 value   float64         int LSBs of ``2**-membrane_frac_bits``
weights    int8 added   int8 added      integers        integers in LSBs
=========  ===========  ==============  ==============  =====================================

Hardware reasons: the PE is an ARM Cortex-M4F whose FPU is single precision, so
state and parameters are float32 (``chip``); py-spinnaker2's brian2 backend keeps
float64 state but float32-rounded parameters (``brian2``, golden to 7e-16).
Fixed point is what future integer firmware or the Q-SpiNN study would use: a
decay product is rounded back to the LSB grid (truncate / nearest / stochastic).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import numpy as np

from emu.numerics import Numerics, stochastic_bits
from emu.profile import SemanticsProfile


@dataclass
class NeuronState:
    """One population's state between ticks: membrane ``v``, synaptic current ``syn``
    (CubaLIF), and whether each neuron fired last tick (for the delayed reset)."""

    v: np.ndarray
    syn: np.ndarray
    fired: np.ndarray

    @classmethod
    def zeros(cls, n: int, dtype) -> "NeuronState":
        return cls(np.zeros(n, dtype), np.zeros(n, dtype), np.zeros(n, bool))


def decay(coef: np.ndarray, x: np.ndarray, num: Numerics, profile: SemanticsProfile, neurons: np.ndarray,
          tick: int, stream: int) -> np.ndarray:
    """``coef * x``; in fixed point, the product rounded back to the LSB grid by the profile's
    ``fixed_rounding`` (stochastic: a counter hash of seed, neuron, tick and ``stream``:
    0 for the membrane, 1 for the synaptic current)."""
    if not num.fixed:
        return coef * x
    y = coef * x / num.coef_one
    if profile.fixed_rounding == "truncate":
        return np.trunc(y)
    if profile.fixed_rounding == "nearest":
        return np.floor(y + 0.5)
    with np.errstate(over="ignore"):
        bits = stochastic_bits(profile.seed, neurons.astype(np.uint64), tick, stream)
    frac = (bits & np.uint64(int(num.coef_one) - 1)).astype(np.float64) / num.coef_one
    return np.floor(y + frac)


def saturate(x: np.ndarray, num: Numerics):
    """Fixed point: ``x`` clipped to the membrane word, and how many values were clipped."""
    if not num.fixed:
        return x, 0
    lo, hi = num.state_dtype(num.sat_lo), num.state_dtype(num.sat_hi)
    return np.clip(x, lo, hi), int(np.sum((x > hi) | (x < lo)))


def integrate(v: np.ndarray, drive: np.ndarray, i_offset: np.ndarray) -> np.ndarray:
    """``(v + drive) + i_offset``, in this order (the order of floating-point additions is part of the rule)."""
    return v + drive + i_offset


def fire(v: np.ndarray, threshold: np.ndarray, condition: str) -> np.ndarray:
    """Which neurons spike: ``v > threshold`` (the chip) or ``v >= threshold``."""
    return v >= threshold if condition == ">=" else v > threshold


def reset(v: np.ndarray, fired: np.ndarray, threshold: np.ndarray, v_reset: np.ndarray, mode: str) -> np.ndarray:
    """The membrane of the neurons that fired: ``v - threshold`` (subtract) or ``v_reset`` (zero)."""
    return np.where(fired, v - threshold if mode == "subtract" else v_reset, v)


def update(state: NeuronState, inputs: np.ndarray, p: Dict[str, np.ndarray], cuba: bool, num: Numerics,
           profile: SemanticsProfile, neurons: np.ndarray, tick: int) -> tuple:
    """One tick of one population: the steps above in order. ``inputs``: the sum of the
    weights arriving this tick; ``p``: :meth:`Numerics.neuron_params`; ``neurons``: NIR
    indices (for stochastic rounding). Updates ``state``; returns ``(fired, saturations)``."""
    clipped = 0
    drive = inputs
    if cuba:  # synapse
        syn, n = saturate(decay(p["alpha_syn"], state.syn, num, profile, neurons, tick, 1) + inputs + p["syn_bias"],
                          num)
        clipped += n
        drive = state.syn if profile.cuba_current == "last_tick" else syn
        state.syn = syn
    delayed = profile.reset_timing == "next_tick"
    zero = delayed and profile.reset_mode == "zero"
    v = state.v
    if zero and not cuba:  # last tick's zero reset, before the decay (snnTorch's Leaky)
        v = np.where(state.fired, p["v_reset"], v)
    v = integrate(decay(p["alpha"], v, num, profile, neurons, tick, 0), drive, p["i_offset"])
    if delayed and profile.reset_mode == "subtract":  # last tick's subtract reset, after integrating
        v = np.where(state.fired, v - p["threshold"], v)
    if zero and cuba:  # last tick's zero reset of the whole membrane (snnTorch's Synaptic)
        v = np.where(state.fired, p["v_reset"], v)
    v, n = saturate(v, num)
    clipped += n
    fired = fire(v, p["threshold"], profile.spike_condition)
    if not delayed:
        v = reset(v, fired, p["threshold"], p["v_reset"], profile.reset_mode)
    state.fired = fired
    state.v = v.astype(num.state_dtype)
    return fired, clipped


def inert_fields(network) -> set:
    """Profile fields that cannot change any run of ``network``: ``cuba_current`` without a
    CubaLIF population, ``bias_path`` without a CubaLIF bias, the fixed-point fields
    (they matter only under ``arithmetic="fixed"``, which the caller knows)."""
    pops = [p for p in network.populations.values() if p.model == "cuba_lif"]
    inert = set()
    if not pops:
        inert.add("cuba_current")
    if not any(np.any(p.syn_bias != 0) for p in pops):
        inert.add("bias_path")
    if not any(p.model not in ("input", "li") for p in network.populations.values()):
        inert |= {"reset_mode", "reset_timing", "spike_condition"}
    return inert
