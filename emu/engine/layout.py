"""A network and a profile flattened into the arrays the numba kernels take.

Layout decisions live here, not in the kernels:
* populations in topological order, one global neuron axis;
* populations fed by a conv2d are stored channels-last (H, W, C), so that a
  presynaptic spike adds contiguous rows of ``C_out`` weights;
* synapses of each (projection, pre neuron) as rows of consecutive post neurons;
  where every pre neuron's rows fit one zero-padded footprint (conv kernel rows,
  one output row apart), a pre neuron is just (first post neuron, weight offset),
  else its rows are listed (first post neuron, weight offset, length), or, where
  they are mostly single synapses (a sparse connection list), its synapses are
  (post neuron, weight) pairs;
* weights quantized by the profile, in the state dtype or int8/int16 when they are
  integers that fit (fewer bytes to stream, converted exactly on add).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from emu.numerics import Numerics, quantize_weights
from emu.engine.arrays import SYNAPSE_LIST, Constants, Modes, NetworkArrays
from emu.engine.rows import CHUNK, footprints, row_starts, share_rows, strided_rows
from emu.network import Network
from emu.profile import SemanticsProfile
from emu.synapses import SynapseRuns, channels_last_perm, synapse_runs
from emu.timing import schedule


def bit_identical(x: np.ndarray) -> bool:
    """A non-empty array whose elements are all the same bits (-0.0 is not 0.0:
    ``x + -0.0`` and ``x + 0.0`` differ for ``x = -0.0``)."""
    if len(x) == 0:
        return False
    b = x.view(np.uint8).reshape(len(x), -1)
    return bool(np.all(b == b[:1]))


def fire_threshold(thr: np.ndarray, spike_condition: str) -> np.ndarray:
    """What the kernel compares ``v >`` against: the threshold for '>'; for '>=' the next
    value below it (no value of the state's type lies between), so the neuron loop
    needs one comparison and no mode switch."""
    return np.nextafter(thr, thr.dtype.type(-np.inf)) if spike_condition == ">=" else thr.copy()


def uniform_parameters(params: dict, lo: int, hi: int) -> bool:
    """Every neuron parameter the same, bit for bit, over neurons [lo, hi)."""
    return all(bit_identical(params[k][lo:hi]) for k in ("alpha", "alpha_syn", "thr", "fire_thr", "ioff", "vreset"))


def _index_array(x) -> np.ndarray:
    """Indices as int32 when they fit (half the cache footprint), else int64."""
    x = np.ascontiguousarray(x, dtype=np.int64)
    return x.astype(np.int32) if x.size == 0 or x.max() < 2**31 - 1 else x


@dataclass
class NeuronAxis:
    """Populations in topological order on one internal neuron axis.

    A population fed by a conv2d is stored channels-last (H, W, C), so that a
    presynaptic spike adds contiguous rows of ``C_out`` weights; ``perm[name]``
    gives each NIR index's place inside its population, ``nir_of`` the NIR
    (global) index of every internal one.
    """

    order: List[str]
    pop_lo: np.ndarray
    pop_hi: np.ndarray
    perm: Dict[str, np.ndarray]
    nir_of: np.ndarray
    channels_last: set

    @classmethod
    def of(cls, network: Network, order: List[str]) -> "NeuronAxis":
        sizes = np.array([network.populations[n].size for n in order], dtype=np.int64)
        pop_lo = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        channels_last = {pr.post for pr in network.projections if pr.kind == "conv2d"}
        perm, internal_of = {}, np.empty(int(sizes.sum()), np.int64)
        for name, lo in zip(order, pop_lo):
            p = network.populations[name]
            perm[name] = channels_last_perm(p.shape) if name in channels_last else np.arange(p.size)
            internal_of[lo:lo + p.size] = lo + perm[name]
        nir_of = np.empty_like(internal_of)
        nir_of[internal_of] = np.arange(len(internal_of))
        return cls(order, pop_lo, pop_lo + sizes, perm, nir_of, channels_last)

    @property
    def n(self) -> int:
        return int(self.pop_hi[-1]) if len(self.pop_hi) else 0

    @functools.cached_property
    def position(self) -> Dict[str, int]:
        """Each population's place in ``order`` (a list search per projection would make
        a network of thousands of populations quadratic to build)."""
        return {name: i for i, name in enumerate(self.order)}

    def lo(self, name: str) -> int:
        return int(self.pop_lo[self.position[name]])


def neuron_parameters(network: Network, axis: NeuronAxis, num: Numerics, spike_condition: str) -> Dict[str, np.ndarray]:
    """Per internal neuron, in the state dtype: alpha, alpha_syn, thr, fire_thr, ioff, sbias, vreset."""
    params = {k: np.empty(axis.n, num.state_dtype) for k in ("alpha", "alpha_syn", "thr", "ioff", "sbias", "vreset")}
    for name, lo in zip(axis.order, axis.pop_lo):
        p = network.populations[name]
        vals = num.neuron_params(p)
        idx = lo + axis.perm[name]
        for key, field_name in (("alpha", "alpha"), ("alpha_syn", "alpha_syn"), ("thr", "threshold"),
                                ("ioff", "i_offset"), ("sbias", "syn_bias"), ("vreset", "v_reset")):
            params[key][idx] = vals[field_name]
    params["fire_thr"] = fire_threshold(params["thr"], spike_condition)
    return params


def input_sums(runs: SynapseRuns, num: Numerics, n_post: int):
    """(whether every weight the runs add is an integer, the sum of |weight added| per post
    neuron), a chunk of runs at a time: no temporary is the size of a long list. (Sums of
    integers below 2**53 have the same bits in any order, and only those are compared.)"""
    units = lambda w: num.weight_units(w).astype(np.float64, copy=False)  # noqa: E731
    integer = lambda x: bool(np.all(np.trunc(x) == x))  # noqa: E731
    sums, step = np.zeros(n_post), max(CHUNK // runs.run, 1)
    offsets = np.arange(runs.run)
    if runs.row is None:
        integers = True
        for a in range(0, len(runs.pre), step):
            added = units(runs.table[a:a + step])
            integers &= integer(added)
            sums += np.bincount((runs.post[a:a + step, None] + offsets).reshape(-1),
                                weights=np.abs(added).reshape(-1), minlength=n_post)
        return integers, sums
    added = units(runs.table)
    used = np.zeros(len(added), bool)
    used[runs.row] = True
    size = np.abs(added)
    for a in range(0, len(runs.pre), step):
        sums += np.bincount((runs.post[a:a + step, None] + offsets).reshape(-1),
                            weights=size[runs.row[a:a + step]].reshape(-1), minlength=n_post)
    return integer(added[used]), sums


@dataclass
class Synapses:
    """Every projection's quantized synapse list (indices internal to each population, in the
    :class:`NeuronAxis` order, sorted by pre then post), and what its sums allow.

    A population's sums are ``exact`` when every weight added to its input buffers is
    an integer and the sum of |w| over any neuron's synapses stays below the state's
    mantissa: then no order of additions can change a bit (spikes may be scattered
    in internal order), and below 2**15 the sums fit int16 (``int_drive``: half the
    bytes and vector stores of a scatter).
    """

    lists: Dict[int, tuple]
    clipped: Dict[str, int]
    exact: Dict[str, bool]
    int8_weights: bool
    int_drive: Dict[str, bool]

    @classmethod
    def of(cls, network: Network, sched, profile: SemanticsProfile, num: Numerics, axis: NeuronAxis) -> "Synapses":
        lists, clipped = {}, {}
        exact = {name: True for name in network.populations}
        abs_in = {name: np.zeros(p.size) for name, p in network.populations.items()}
        for j, pr, _ in sched:
            post = network.populations[pr.post]
            w_int, n_clip = quantize_weights(pr.weight, profile, f"projection {pr.label}")
            if n_clip:
                clipped[pr.label] = n_clip
            # indices internal to each population (channels-last where the axis says so), sorted so
            lists[j] = synapse_runs(dataclasses.replace(pr, weight=w_int), network.populations[pr.pre], post,
                                    channels_last=(pr.pre in axis.channels_last, pr.post in axis.channels_last))
            integers, sums = input_sums(lists[j], num, post.size)
            exact[pr.post] &= integers
            abs_in[pr.post] += sums
        mantissa = 2.0 ** (np.finfo(num.state_dtype).nmant + 1)
        exact = {name: exact[name] and abs_in[name].max(initial=0) < mantissa for name in exact}
        # weights stored as int8 (converted exactly on add) when they fit
        int8_weights = profile.weight_bits is not None and profile.weight_bits <= 8 and not num.fixed
        # int16 sums (of int8 weights) only feed the single-pass neuron loop (float state,
        # same-tick reset, no CubaLIF)
        single_pass = num.rounding == 0 and not num.fixed and profile.reset_timing == "same_tick"
        int_drive = {name: int8_weights and single_pass and exact[name] and p.model not in ("input", "cuba_lif")
                     and abs_in[name].max(initial=0) < 2**15 for name, p in network.populations.items()}
        return cls(lists, clipped, exact, int8_weights, int_drive)


@dataclass
class Rows:
    """The weight rows of every projection, in scatter order (see :func:`strided_rows`), or
    its synapses one by one (``width`` :data:`~emu.engine.arrays.SYNAPSE_LIST`)."""

    out_ptr: np.ndarray
    lag: List[int]
    pre_base: List[int]
    width: List[int]
    count: List[int]
    stride: List[int]
    pre_rows: np.ndarray
    blk: np.ndarray
    pool: np.ndarray
    syn_post: np.ndarray
    buf_end: int

    @classmethod
    def of(cls, network: Network, sched, axis: NeuronAxis, syn: Synapses) -> "Rows":
        out_ptr = np.zeros(len(axis.order) + 1, np.int64)
        lag, pre_base_of, widths, counts, strides, pre_rows, blk_rows, pool = [], [], [], [], [], [], [], []
        listed = {}  # pool offset of each synapse list: its post neurons
        pre_base = w_count = n_rows = buf_end = 0
        for j, pr, lag_j in sched:
            pre = network.populations[pr.pre]
            out_ptr[axis.position[pr.pre] + 1] += 1
            runs = syn.lists[j]  # internal indices, sorted by pre then post
            first = row_starts(runs.pre, runs.post, runs.run)  # the run each row starts with
            starts, n_syn = first * runs.run, len(runs.pre) * runs.run
            lens = np.diff(np.append(starts, n_syn))
            post_lo = axis.lo(pr.post)
            row_post = post_lo + runs.post[first]
            # Where every pre neuron's rows fit one footprint (see strided_rows), a
            # spike adds whole vectors at computed places. Footprint rows past the
            # population add zeros to what follows (an input buffer never holds -0.0,
            # so +0.0 changes no value; the buffers end in `buf_pad` spare elements).
            layout = strided_rows(pre.size, runs.pre[first], row_post, lens, 16 if syn.int_drive[pr.post] else 8,
                                  post_lo)
            if layout:
                stride, count, width, first_post, slot = layout
                shared, offsets = footprints(runs, first, slot, pre.size, count, width)
                pre_rows.append(np.stack([first_post, w_count + offsets], axis=1))
                buf_end = max(buf_end, int(first_post.max()) + (count - 1) * stride + width)
            elif n_syn < 2 * len(starts):
                # mostly single synapses (a sparse list): per synapse 4 + 1 bytes (post, int8
                # weight) instead of a listed row's 12 and a weight looked up in the pool
                stride, count, width = 0, 0, SYNAPSE_LIST
                pre_idx, post_int, shared = runs.flat()
                per_pre = np.bincount(pre_idx, minlength=pre.size)
                pre_rows.append(np.stack([w_count + np.cumsum(per_pre) - per_pre, per_pre], axis=1))
                listed[w_count] = post_lo + post_int
            else:  # rows of their own lengths, listed in `blk`
                stride, count, width = 0, 0, 0
                shared, offsets = share_rows(runs.weights().reshape(-1), starts, lens)
                rows_per_pre = np.bincount(runs.pre[first], minlength=pre.size)
                pre_rows.append(np.stack([n_rows + np.cumsum(rows_per_pre) - rows_per_pre, rows_per_pre], axis=1))
                blk_rows.append(np.stack([row_post, w_count + offsets, lens], axis=1))
                n_rows += len(starts)
            pool.append(shared)
            lag.append(lag_j)
            pre_base_of.append(pre_base)
            widths.append(width)
            counts.append(count)
            strides.append(stride)
            pre_base += pre.size
            w_count += len(shared)
        # per pre neuron (global over projections, from pre_base): of a footprint, its first
        # post neuron and weight offset; else its first row in `blk` and its number of rows
        pre_rows = _index_array(np.concatenate(pre_rows) if pre_rows else np.zeros((0, 2), np.int64))
        # rows (first post neuron, weight offset, length)
        blk = _index_array(np.concatenate(blk_rows) if blk_rows else np.zeros((0, 3), np.int64))
        # the post neuron of every pool weight that belongs to a synapse list (empty where none)
        syn_post = np.zeros(w_count if listed else 0, np.int64)
        for at, post_of in listed.items():
            syn_post[at:at + len(post_of)] = post_of
        syn_post = _index_array(syn_post)
        return cls(np.cumsum(out_ptr), lag, pre_base_of, widths, counts, strides, pre_rows, blk,
                   np.concatenate(pool) if pool else np.zeros(0), syn_post, buf_end)


def modes_of(profile: SemanticsProfile, num: Numerics) -> Tuple[Modes, Constants]:
    """A profile's neuron-pass choices and constants, as the kernels take them."""
    modes = Modes(rounding=int(num.rounding), subtract=profile.reset_mode == "subtract",
                  next_tick=profile.reset_timing == "next_tick", cuba_last=profile.cuba_current == "last_tick",
                  saturating=bool(num.fixed), seed=int(profile.seed), coef_mask=int(num.coef_one) - 1)
    t = num.state_dtype
    return modes, Constants(half=t(0.5), inv_coef=t(1.0 / num.coef_one), sat_lo=t(num.sat_lo), sat_hi=t(num.sat_hi))


@dataclass
class CompiledNetwork:
    """A network and a profile as :class:`emu.engine.kernels.NetworkArrays`, plus what is needed
    to read results back."""

    network: Network
    profile: SemanticsProfile
    numerics: Numerics
    order: List[str]
    pop_lo: np.ndarray
    pop_hi: np.ndarray
    arrays: NetworkArrays
    clipped_weights: Dict[str, int] = field(default_factory=dict)

    @property
    def n_neurons(self) -> int:
        return int(self.pop_hi[-1])

    def set_threshold(self, population: str, threshold) -> None:
        """Give one population new thresholds (a scalar, or one per neuron in NIR order)
        in place, as a rebuild with them would: for a calibration loop that tries many
        values on one compiled network. ``self.network`` keeps its old values."""
        i = self.order.index(population)
        lo, hi = int(self.pop_lo[i]), int(self.pop_hi[i])
        a = self.arrays
        values = np.broadcast_to(np.asarray(threshold, np.float64), (hi - lo,))
        thr = self.numerics.value(values)[a.nir_of[lo:hi] - lo]
        a.thr[lo:hi] = thr
        a.fire_thr[lo:hi] = fire_threshold(thr, self.profile.spike_condition)
        a.pop_uniform[i] = uniform_parameters(a._asdict(), lo, hi)

    @classmethod
    def build(cls, network: Network, profile: SemanticsProfile) -> "CompiledNetwork":
        network.validate()
        num = Numerics.of(profile)
        order, sched = schedule(network, profile)
        pops = [network.populations[n] for n in order]
        axis = NeuronAxis.of(network, order)
        params = neuron_parameters(network, axis, num, profile.spike_condition)
        syn = Synapses.of(network, sched, profile, num, axis)
        rows = Rows.of(network, sched, axis, syn)
        wpool = num.weight_units(rows.pool)
        if syn.int8_weights:
            wpool = wpool.astype(np.int8)
        # spikes of p are scattered in NIR order unless every target's sums are exact
        nir_sorted = np.zeros(len(pops), bool)
        for pr in network.projections:
            nir_sorted[axis.position[pr.pre]] |= not syn.exact[pr.post]
        modes, consts = modes_of(profile, num)
        i64 = lambda x: np.array(x, np.int64)  # noqa: E731
        arrays = NetworkArrays(
            n_slots=max(rows.lag, default=0) + 1,
            pop_lo=axis.pop_lo, pop_hi=axis.pop_hi,
            pop_is_input=np.array([p.model == "input" for p in pops], bool),
            pop_cuba=np.array([p.model == "cuba_lif" for p in pops], bool),
            pop_uniform=np.array([uniform_parameters(params, lo, hi) for lo, hi in zip(axis.pop_lo, axis.pop_hi)],
                                 bool),
            pop_int_drive=np.array([syn.int_drive[n] for n in order], bool),
            pop_channels=i64([p.shape[0] if p.name in axis.channels_last else 1 for p in pops]),
            pop_nir_sorted=nir_sorted, nir_of=axis.nir_of,
            alpha=params["alpha"], alpha_syn=params["alpha_syn"], thr=params["thr"], fire_thr=params["fire_thr"],
            ioff=params["ioff"], sbias=params["sbias"], vreset=params["vreset"],
            out_ptr=rows.out_ptr, proj_lag=i64(rows.lag),
            proj_int_drive=np.array([syn.int_drive[pr.post] for _, pr, _ in sched], bool),
            proj_pre_base=i64(rows.pre_base), proj_width=i64(rows.width), proj_rows=i64(rows.count),
            proj_stride=i64(rows.stride), buf_pad=max(rows.buf_end - axis.n, 0),
            int_drive=np.zeros(0, np.int16 if syn.int8_weights else num.state_dtype),
            pre_rows=rows.pre_rows, blk=rows.blk, wpool=wpool, syn_post=rows.syn_post, modes=modes, consts=consts,
        )
        return cls(network, profile, num, order, axis.pop_lo, axis.pop_hi, arrays, syn.clipped)
