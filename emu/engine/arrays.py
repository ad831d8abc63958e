"""The typed argument bundle of the kernels: everything a run needs of a network, by name.

numba compiles functions that take NamedTuples of arrays and scalars and caches them
on disk (a ``jitclass`` would not be cached, so every run would compile again).
"""
from typing import NamedTuple

import numpy as np

#: ``proj_width`` of a projection stored as a synapse list: scattered synapses (a sparse
#: connection list), whose rows would mostly be single neurons
SYNAPSE_LIST = -1


class Modes(NamedTuple):
    """How the neuron pass computes: a profile's choices for one run, by name."""

    rounding: int  # emu.numerics.ROUNDING_CODES of fixed-point decay products; 0: float arithmetic
    subtract: bool  # reset subtracts the threshold (else: v = v_reset)
    next_tick: bool  # snnTorch's delayed reset (else the chip's same-tick reset)
    cuba_last: bool  # a CubaLIF membrane integrates last tick's synaptic current
    saturating: bool  # fixed point: values clip to the membrane word (counted)
    seed: int  # of stochastic rounding
    coef_mask: int  # coef_one - 1: the fraction bits a stochastic offset draws


class Constants(NamedTuple):
    """Numbers the neuron pass uses, in the state dtype (so float32 arithmetic is never promoted)."""

    half: np.floating  # 0.5, of round-half-up
    inv_coef: np.floating  # 1 / coef_one: a fixed-point product back to LSBs
    sat_lo: np.floating  # the membrane word's range
    sat_hi: np.floating


class NetworkArrays(NamedTuple):
    """Everything :func:`run_sample` needs of a network, built by :mod:`emu.engine.layout`.

    Populations ``p`` hold neurons ``pop_lo[p]:pop_hi[p]`` of one internal neuron axis
    (channels-last where ``pop_channels[p] > 1``; ``nir_of`` maps an internal index to
    its NIR one). Projections ``out_ptr[p]:out_ptr[p + 1]`` leave population p, in
    scatter order; ``pre_rows`` and ``blk`` hold their rows (see
    :func:`emu.engine.rows.strided_rows`), ``wpool`` their weights, ``syn_post`` the
    post neurons of synapse lists.
    """

    n_slots: int  # ring-buffer slots: the largest lag + 1
    pop_lo: np.ndarray
    pop_hi: np.ndarray
    pop_is_input: np.ndarray
    pop_cuba: np.ndarray
    pop_uniform: np.ndarray  # every neuron parameter the same, bit for bit: the 64-lane pass
    pop_int_drive: np.ndarray  # input sums exact and below 2**15: int16 buffers
    pop_channels: np.ndarray  # channels of a channels-last population, 1 for NIR order
    pop_nir_sorted: np.ndarray  # spikes must be scattered in NIR order (inexact sums downstream)
    nir_of: np.ndarray
    alpha: np.ndarray  # per neuron, state dtype
    alpha_syn: np.ndarray
    thr: np.ndarray
    fire_thr: np.ndarray  # what `v >` compares against (the next value below thr for '>=')
    ioff: np.ndarray
    sbias: np.ndarray  # a CubaLIF's bias into its synaptic current (bias_path "synaptic"), else 0
    vreset: np.ndarray
    out_ptr: np.ndarray
    proj_lag: np.ndarray
    proj_int_drive: np.ndarray
    proj_pre_base: np.ndarray
    proj_width: np.ndarray  # > 0: one footprint per pre neuron, `proj_rows` rows of this width; 0: rows
    # listed in `blk`; SYNAPSE_LIST: one (post neuron, weight) per synapse, `syn_post` and `wpool`
    proj_rows: np.ndarray
    proj_stride: np.ndarray
    buf_pad: int  # spare buffer elements after the last neuron, for footprint rows past the end
    int_drive: np.ndarray  # empty; its dtype is the int16 buffers' (the state's where none is needed)
    pre_rows: np.ndarray
    blk: np.ndarray
    wpool: np.ndarray
    syn_post: np.ndarray  # post neuron of each `wpool` weight of a synapse list (empty where none)
    modes: Modes
    consts: Constants


class Workspace(NamedTuple):
    """One sample's state and scratch arrays, zeroed, made by :func:`emu.engine.kernels.workspace`."""

    v: np.ndarray  # membrane, per internal neuron, state dtype
    syn: np.ndarray  # a CubaLIF's synaptic current
    work: np.ndarray  # the multi-pass neuron update's intermediate values
    buf: np.ndarray  # slot-major input buffers, state dtype, `buf_pad` spare elements at the end
    ibuf: np.ndarray  # the same as exact int16 sums (empty where no population has them)
    scratch: np.ndarray  # one element of the state dtype
    reset_prev: np.ndarray  # fired last tick (the delayed reset)
    spiked: np.ndarray  # 0/1 byte per neuron, 64 spare for whole-block reads
    spikes: np.ndarray  # this population's spikes this tick, population-local indices
    tmp: np.ndarray  # the same in internal order, before the NIR-order sort
    counts: np.ndarray  # per channel, for the sort
