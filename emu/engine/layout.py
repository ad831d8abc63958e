"""A network and a profile flattened into the arrays the numba kernels take.

Layout decisions live here, not in the kernels:
* populations in topological order, one global neuron axis;
* populations fed by a conv2d are stored channels-last (H, W, C), so that a
  presynaptic spike adds contiguous rows of ``C_out`` weights;
* synapses of each (projection, pre neuron) as rows of consecutive post neurons;
  where every pre neuron's rows fit one zero-padded footprint (conv kernel rows,
  one output row apart), a pre neuron is just (first post neuron, weight offset),
  else its rows are listed (first post neuron, weight offset, length);
* weights quantized by the profile, in the state dtype or int8/int16 when they are
  integers that fit (fewer bytes to stream, converted exactly on add).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from emu.numerics import Numerics, quantize_weights
from emu.engine.kernels import C_HALF, C_INV_COEF, C_SAT_HI, C_SAT_LO, C_SAT_ON, M_COEF_MASK, M_CUBA_LAST, \
    M_NEXT_TICK, M_ROUNDING, M_SEED, M_SUBTRACT
from emu.network import Network, synapse_list
from emu.profile import SemanticsProfile
from emu.timing import schedule


def channels_last_perm(shape) -> np.ndarray:
    """internal index of each NIR (C, H, W) index in an (H, W, C) layout."""
    c, h, w = shape
    ci, y, x = np.unravel_index(np.arange(c * h * w), shape)
    return (y * w + x) * c + ci


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


def share_rows(w: np.ndarray, starts: np.ndarray, lens: np.ndarray):
    """A weight pool holding every distinct row of ``w`` once, and each row's offset in it.

    Rows are ``w[starts[i]:starts[i] + lens[i]]``. A conv projection repeats the same
    few kernel rows for every presynaptic neuron (and pooling repeats rows for every
    neuron of a window); stored once, the weights a spike reads stay in cache. Rows
    are compared bit for bit (so ``-0.0`` and ``0.0`` stay apart): the numbers added
    are exactly those of the unshared rows.
    """
    bits = np.ascontiguousarray(w, dtype=np.float64).view(np.int64)
    offsets = np.empty(len(starts), np.int64)
    parts, size = [], 0
    for length in np.unique(lens):
        sel = np.flatnonzero(lens == length)
        rows = bits[starts[sel, None] + np.arange(length)]
        uniq, inv = np.unique(rows, axis=0, return_inverse=True)
        offsets[sel] = size + inv.reshape(-1) * length
        parts.append(uniq.reshape(-1))
        size += uniq.size
    pool = np.concatenate(parts).view(np.float64) if parts else np.zeros(0)
    return pool, offsets


def strided_rows(n_pre: int, pre_of_row: np.ndarray, row_post: np.ndarray, starts: np.ndarray,
                 lens: np.ndarray, w: np.ndarray, unit: int, empty_post: int):
    """The rows of a projection as one footprint per pre neuron, or None where that
    would take more than twice the vector adds of its rows one by one.

    Rows ``i`` (pre neuron ``pre_of_row[i]``, first post neuron ``row_post[i]``, weights
    ``w[starts[i]:starts[i] + lens[i]]``, sorted by pre then post) become, for every
    pre neuron k, ``n_rows`` rows of ``width`` weights (a multiple of ``unit``) at
    ``first[k] + r * stride``: a conv's rows are its kernel rows, one output row apart.
    Rows a neuron lacks (at a border, or for a strided conv's other input parity) and
    lanes past a row's end get zero weights. Every spike of the projection then costs
    the same vector adds, found by arithmetic, not by a table. Returns
    ``(stride, n_rows, width, first, blocks)``, ``blocks[k]``: neuron k's
    ``n_rows * width`` weights (zeros, and ``first = empty_post``, for a neuron without
    synapses).
    """
    if len(starts) == 0:
        return None
    firsts = np.flatnonzero(np.r_[True, pre_of_row[1:] != pre_of_row[:-1]])  # each pre neuron's first row
    head = np.full(n_pre, -1, np.int64)
    head[pre_of_row[firsts]] = row_post[firsts]
    rel = row_post - head[pre_of_row]
    stride = int(np.gcd.reduce(rel))
    slot = rel // stride if stride else np.zeros_like(rel)
    n_rows = int(slot.max()) + 1
    width = -(-int(lens.max()) // unit) * unit
    # computed rows run about twice as fast per vector as rows looked up in a table
    if n_pre * n_rows * width // unit > 2 * int(np.sum(-(-lens // unit))) + 64:
        return None
    blocks = np.zeros((n_pre, n_rows * width))
    row_of = np.repeat(np.arange(len(starts)), lens)
    lane = np.arange(len(w)) - starts[row_of]
    blocks[pre_of_row[row_of], slot[row_of] * width + lane] = w
    return stride, n_rows, width, np.where(head >= 0, head, empty_post), blocks


@dataclass
class CompiledNetwork:
    """Flat arrays for :func:`emu.engine.kernels.run_sample`, plus what is needed to read results back."""

    network: Network
    profile: SemanticsProfile
    numerics: Numerics
    order: List[str]
    pop_lo: np.ndarray
    pop_hi: np.ndarray
    n_slots: int
    arrays: dict  # static kernel arguments by name
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
        thr = self.numerics.value(values)[a["nir_of"][lo:hi] - lo]
        a["thr"][lo:hi] = thr
        a["fire_thr"][lo:hi] = fire_threshold(thr, self.profile.spike_condition)
        a["pop_uniform"][i] = uniform_parameters(a, lo, hi)

    @classmethod
    def build(cls, network: Network, profile: SemanticsProfile) -> "CompiledNetwork":
        network.validate()
        num = Numerics.of(profile)
        order, sched = schedule(network, profile)
        pops = [network.populations[n] for n in order]
        sizes = np.array([p.size for p in pops], dtype=np.int64)
        pop_lo = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        pop_hi = pop_lo + sizes
        n = int(sizes.sum())
        conv_targets = {pr.post for pr in network.projections if pr.kind == "conv2d"}
        perms = {}
        internal_of = np.empty(n, np.int64)
        for p, lo in zip(pops, pop_lo):
            perms[p.name] = channels_last_perm(p.shape) if p.name in conv_targets else np.arange(p.size)
            internal_of[lo:lo + p.size] = lo + perms[p.name]
        nir_of = np.empty(n, np.int64)
        nir_of[internal_of] = np.arange(n)

        params = {k: np.empty(n, num.state_dtype) for k in ("alpha", "alpha_syn", "thr", "ioff", "vreset")}
        for p, lo in zip(pops, pop_lo):
            vals = num.neuron_params(p)
            idx = internal_of[lo:lo + p.size]
            for key, name in (("alpha", "alpha"), ("alpha_syn", "alpha_syn"), ("thr", "threshold"),
                              ("ioff", "i_offset"), ("vreset", "v_reset")):
                params[key][idx] = vals[name]
        params["fire_thr"] = fire_threshold(params["thr"], profile.spike_condition)

        pos = {name: i for i, name in enumerate(order)}
        out_ptr = np.zeros(len(pops) + 1, np.int64)
        proj_lag, proj_pre_base, proj_width, proj_rows, proj_stride = [], [], [], [], []
        pre_rows, blk_rows, pool = [], [], []
        # per post population: is every sum of its input buffers exact (integer weights,
        # sum of |w| over a neuron's synapses below 2**mantissa)? Then the order of the
        # additions cannot change a bit; below 2**15 they can even be int16 sums, which
        # halve the bytes (and vector stores) of a scatter.
        synapses, clipped = {}, {}
        exact = {name: True for name in order}
        abs_in = {name: np.zeros(p.size) for name, p in zip(order, pops)}
        for j, pr, lag in sched:
            post = network.populations[pr.post]
            w_int, n_clip = quantize_weights(pr.weight, profile, f"projection {pr.label}")
            if n_clip:
                clipped[pr.label] = n_clip
            synapses[j] = synapse_list(dataclasses.replace(pr, weight=w_int), network.populations[pr.pre], post)
            added = num.weight_units(synapses[j][2]).astype(np.float64)
            exact[pr.post] &= bool(np.all(np.trunc(added) == added))
            abs_in[pr.post] += np.bincount(synapses[j][1], weights=np.abs(added), minlength=post.size)
        mantissa = 2.0 ** (np.finfo(num.state_dtype).nmant + 1)
        exact = {name: exact[name] and abs_in[name].max(initial=0) < mantissa for name in order}
        # weights stored as int8 (converted exactly on add) when they fit
        int8_weights = profile.weight_bits is not None and profile.weight_bits <= 8 and not num.fixed
        # int16 sums (of int8 weights) only feed the single-pass neuron loop (float state,
        # same-tick reset, no CubaLIF)
        single_pass = num.rounding == 0 and not num.fixed and profile.reset_timing == "same_tick"
        int_drive = {p.name: int8_weights and single_pass and exact[p.name] and p.model not in ("input", "cuba_lif")
                     and abs_in[p.name].max(initial=0) < 2**15 for p in pops}

        pre_base = w_count = n_rows = buf_end = 0
        for j, pr, lag in sched:
            pre = network.populations[pr.pre]
            out_ptr[pos[pr.pre] + 1] += 1
            pre_nir, post_idx, w = synapses[j]
            pre_idx = perms[pr.pre][pre_nir]  # rows are keyed by the pre neuron's internal index
            post_int = perms[pr.post][post_idx]
            srt = np.lexsort((post_int, pre_idx))
            pre_idx, post_int, w = pre_idx[srt], post_int[srt], w[srt]
            new_row = np.ones(len(w), bool)
            new_row[1:] = (pre_idx[1:] != pre_idx[:-1]) | (post_int[1:] != post_int[:-1] + 1)
            starts = np.flatnonzero(new_row)
            lens = np.diff(np.append(starts, len(w)))
            row_post = pop_lo[pos[pr.post]] + post_int[starts]
            # Where every pre neuron's rows fit one footprint (see strided_rows), a
            # spike adds whole vectors at computed places. Footprint rows past the
            # population add zeros to what follows (an input buffer never holds -0.0,
            # so +0.0 changes no value; the buffers end in `buf_pad` spare elements).
            layout = strided_rows(pre.size, pre_idx[starts], row_post, starts, lens, w,
                                  16 if int_drive[pr.post] else 8, pop_lo[pos[pr.post]])
            if layout:
                stride, count, width, first, blocks = layout
                shared, offsets = share_rows(blocks.reshape(-1), np.arange(pre.size) * blocks.shape[1],
                                             np.full(pre.size, blocks.shape[1]))
                pre_rows.append(np.stack([first, w_count + offsets], axis=1))
                buf_end = max(buf_end, int(first.max()) + (count - 1) * stride + width)
            else:  # rows of their own lengths, listed in `blk`
                stride, count, width = 0, 0, 0
                shared, offsets = share_rows(w, starts, lens)
                rows_per_pre = np.bincount(pre_idx[starts], minlength=pre.size)
                pre_rows.append(np.stack([n_rows + np.cumsum(rows_per_pre) - rows_per_pre, rows_per_pre], axis=1))
                blk_rows.append(np.stack([row_post, w_count + offsets, lens], axis=1))
                n_rows += len(starts)
            pool.append(shared)
            proj_lag.append(lag)
            proj_pre_base.append(pre_base)
            proj_width.append(width)
            proj_rows.append(count)
            proj_stride.append(stride)
            pre_base += pre.size
            w_count += len(shared)
        out_ptr = np.cumsum(out_ptr)
        wpool = num.weight_units(np.concatenate(pool) if pool else np.zeros(0))
        if int8_weights:
            wpool = wpool.astype(np.int8)
        max_lag = max(proj_lag, default=0)
        # spikes of p are scattered in NIR order unless every target's sums are exact
        nir_sorted = np.zeros(len(pops), bool)
        for pr in network.projections:
            nir_sorted[pos[pr.pre]] |= not exact[pr.post]

        modes = np.zeros(6, np.int64)
        modes[M_ROUNDING] = num.rounding
        modes[M_SUBTRACT] = profile.reset_mode == "subtract"
        modes[M_NEXT_TICK] = profile.reset_timing == "next_tick"
        modes[M_CUBA_LAST] = profile.cuba_current == "last_tick"
        modes[M_SEED] = profile.seed
        modes[M_COEF_MASK] = int(num.coef_one) - 1
        consts = np.zeros(5, num.state_dtype)
        consts[C_HALF] = 0.5
        consts[C_INV_COEF] = 1.0 / num.coef_one
        consts[C_SAT_LO], consts[C_SAT_HI], consts[C_SAT_ON] = num.sat_lo, num.sat_hi, float(num.fixed)
        arrays = dict(
            pop_lo=pop_lo, pop_hi=pop_hi,
            pop_is_input=np.array([p.model == "input" for p in pops]),
            pop_cuba=np.array([p.model == "cuba_lif" for p in pops]),
            pop_int_drive=np.array([int_drive[p.name] for p in pops]),
            pop_uniform=np.array([uniform_parameters(params, lo, hi) for lo, hi in zip(pop_lo, pop_hi)]),
            # channels of a channels-last (H, W, C) population, 1 for NIR order
            pop_channels=np.array([p.shape[0] if p.name in conv_targets else 1 for p in pops], np.int64),
            pop_nir_sorted=nir_sorted, nir_of=nir_of,
            alpha=params["alpha"], alpha_syn=params["alpha_syn"], thr=params["thr"], fire_thr=params["fire_thr"],
            ioff=params["ioff"],
            vreset=params["vreset"], modes=modes, consts=consts,
            out_ptr=out_ptr.astype(np.int64), proj_lag=np.array(proj_lag, np.int64),
            proj_int_drive=np.array([int_drive[pr.post] for _, pr, _ in sched]),
            proj_pre_base=np.array(proj_pre_base, np.int64),
            # a projection whose pre neurons each add one footprint (see strided_rows):
            # `proj_rows` rows of `proj_width` weights (a multiple of 8), `proj_stride` apart;
            # width 0: rows of their own lengths, listed in `blk`
            proj_width=np.array(proj_width, np.int64), proj_rows=np.array(proj_rows, np.int64),
            proj_stride=np.array(proj_stride, np.int64),
            buf_pad=np.array([max(buf_end - n, 0)], np.int64),
            # the type of the int16 buffers (the state's where no population has int16 sums)
            int_drive=np.zeros(0, np.int16 if int8_weights else num.state_dtype),
            # per pre neuron (global over projections, from proj_pre_base): of a footprint,
            # its first post neuron and weight offset; else its first row in `blk` and
            # its number of rows
            pre_rows=_index_array(np.concatenate(pre_rows) if pre_rows else np.zeros((0, 2), np.int64)),
            # rows (first post neuron, weight offset, length)
            blk=_index_array(np.concatenate(blk_rows) if blk_rows else np.zeros((0, 3), np.int64)),
            wpool=wpool,
        )
        return cls(network, profile, num, order, pop_lo, pop_hi, max_lag + 1, arrays, clipped)

