"""numba kernels of the engine: pure functions of flat arrays, no Python objects.

One compiled call runs all ticks of one sample; a batch runs samples in parallel
threads, each taking the next sample left (:func:`run_samples`), each sample with
its own state, so batch results equal one-by-one runs.

Per tick, populations are visited in topological order. A population first
updates its neurons from its input-buffer slot of this tick, then scatters its
spikes into the slots ``lag`` ticks ahead of every outgoing projection
(lag = synaptic latency + extra delay; 0 is allowed for feed-forward edges since
the target is visited later in the same tick). Synapses are stored as contiguous
rows (one pre neuron -> a run of consecutive post neurons), so a spike costs a few
vectorisable row adds. A tick's spikes are scattered in NIR index order, which
fixes the order of floating-point additions, except where every addition is
exact (integer weights whose sums fit the mantissa): there any order gives the
same bits and channels-last populations keep their internal order.

What makes it fast (the DVS-gesture benchmark, ``benchmarks/bench_dvs_network.py``):
* row adds are explicit vector operations (int8 -> float converted exactly, one
  IEEE add per lane, as the scalar loop), see :func:`emu.engine.intrinsics.vector_add`;
* a conv's pre neuron adds one footprint: a fixed number of rows of whole
  vectors, one output row apart, zero-padded where it lacks synapses (see
  :func:`emu.engine.rows.strided_rows`). Its rows are found by arithmetic from one
  (first post neuron, weight offset) pair, every spike runs the same vector adds,
  and no row table is read (a dependent load per row halves the rate of row adds);
  the footprint of a 3x3 kernel (3 vectors per row) runs as straight-line code;
* the neuron pass of the chip's case (float arithmetic, same-tick reset, no
  CubaLIF) is branch-free. A population whose parameters are uniform (as after a
  conversion) runs 64 neurons at a time, in steps of one AVX2 register, as vector
  operations whose comparisons give the spike bit mask directly (:func:`_update_fire_uniform`); others run one loop with unsigned indices (:func:`_update_float`)
  and a 0/1 byte per neuron, a CubaLIF population one loop with its synapse step
  fused in (:func:`_update_cuba_float`); every other profile takes the multi-pass
  :func:`_update_population`;
* spike indices come out of 64-bit masks with four unconditional stores and a
  population count (:func:`_append_bits`), put back in NIR order by a counting
  sort on the channel only where the order matters (:func:`_nir_order`);
* spikes are recorded as 4-byte neuron indices plus one count per tick.

A tick's spikes are population-local internal indices (the keys of the row
table); a channels-last population (``pop_channels`` > 1) puts them in NIR order
only where ``pop_nir_sorted`` (some sum downstream is inexact).

The arithmetic follows the dtype of the arrays passed in (float32 for the chip
profile, float64 otherwise); every constant comes in as a scalar of that dtype
(:class:`emu.engine.arrays.Constants`), so no value is silently promoted.
"""
import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from emu import numerics
from emu import kernel_cache as cache
from emu.engine.arrays import SYNAPSE_LIST, Workspace
from emu.engine.intrinsics import (cast_like, lif64, mask64, popcount, prefetch, take_next, vadd4, vadd8,
                                   vadd16)

# cached kernels are keyed by every file they are built from, not only this one
cache.install()

#: input-buffer slots are a multiple of this many elements long (64 bytes of int16 or more)
SLOT_ALIGN = 32

#: spikes ahead whose synapse lists are prefetched: a large sparse network's lists lie in
#: DRAM, one random block per spike, which the hardware prefetcher cannot guess
PREFETCH_AHEAD = 4

# the stochastic rounding's bits are a rule of the numbers (emu.numerics), compiled here
stochastic_bits = njit(cache=True)(numerics.stochastic_bits)


@njit(cache=True, inline="always")
def _add_row(dst, d, src, s, n):
    """dst[d:d+n] += src[s:s+n], element by element (vector lanes, then a scalar tail)."""
    m = 0
    while m + 16 <= n:
        vadd16(dst, d + m, src, s + m)
        m += 16
    if m + 8 <= n:
        vadd8(dst, d + m, src, s + m)
        m += 8
    if m + 4 <= n:
        vadd4(dst, d + m, src, s + m)
        m += 4
    while m < n:
        dst[d + m] += src[s + m]
        m += 1


@njit(cache=True)
def _round_to_grid(work, modes, consts, scratch, neuron, tick, stream):
    """Fixed point: products in ``work`` (LSBs times the coefficient scale) back on
    the integer LSB grid, with the profile's rounding. ``neuron``: their NIR indices.
    Step "decay" of :mod:`emu.neuron` under fixed-point arithmetic."""
    rounding = modes.rounding
    inv_coef, half = consts.inv_coef, consts.half
    if rounding == 1:
        for i in range(work.shape[0]):
            work[i] = np.trunc(work[i] * inv_coef)
    elif rounding == 2:
        for i in range(work.shape[0]):
            work[i] = np.floor(work[i] * inv_coef + half)
    else:
        seed, mask = modes.seed, np.uint64(modes.coef_mask)
        for i in range(work.shape[0]):
            # the offset goes through `scratch` so that it keeps the state dtype
            scratch[0] = stochastic_bits(seed, neuron[i], tick, stream) & mask
            work[i] = np.floor(work[i] * inv_coef + scratch[0] * inv_coef)


@njit(cache=True)
def _saturate(x, consts):
    """Clip ``x`` to the fixed-point word; returns how many values were clipped."""
    low, high = consts.sat_lo, consts.sat_hi
    n = 0
    for i in range(x.shape[0]):
        if x[i] > high:
            x[i] = high
            n += 1
        elif x[i] < low:
            x[i] = low
            n += 1
    return n


@njit(cache=True, inline="always")
def _update_population(p, t, lo, hi, nir_of, is_cuba, buf, slot_base, v, syn, reset_prev, spiked, work,
                       alpha, alpha_syn, thr, fire_thr, ioff, sbias, vreset, modes, consts, scratch, sat_count):
    """:func:`emu.neuron.update` (synapse, decay, integrate, fire, reset, in every profile)
    for neurons [lo, hi) of population p at tick t, taking their input from
    ``buf[slot_base + lo : slot_base + hi]`` (and clearing it).

    A few simple passes over the population, each branch-free inside (mode switches sit
    outside the loops). Indices are unsigned, so numba needs no negative-index checks
    (which would stop LLVM vectorising)."""
    u0, u1 = np.uint64(lo), np.uint64(hi)
    b = np.uint64(slot_base)
    rounding = modes.rounding
    saturating = modes.saturating
    if is_cuba:
        for i in range(u0, u1):
            work[i] = alpha_syn[i] * syn[i]
        if rounding != 0:
            _round_to_grid(work[lo:hi], modes, consts, scratch, nir_of[lo:hi], t, 1)
        for i in range(u0, u1):
            work[i] = work[i] + buf[b + i] + sbias[i]
        if saturating:
            sat_count[p] += _saturate(work[lo:hi], consts)
        last = modes.cuba_last
        for i in range(u0, u1):
            # the membrane's drive: this tick's synaptic current, or last tick's
            buf[b + i] = syn[i] if last else work[i]
            syn[i] = work[i]
    subtract = modes.subtract
    next_tick = modes.next_tick
    if next_tick and not subtract and not is_cuba:
        for i in range(u0, u1):
            # snnTorch Leaky's zero reset: (1 - reset) * mem, then this tick's input
            work[i] = alpha[i] * (vreset[i] if reset_prev[i] else v[i])
    else:
        for i in range(u0, u1):
            work[i] = alpha[i] * v[i]
    if rounding != 0:
        _round_to_grid(work[lo:hi], modes, consts, scratch, nir_of[lo:hi], t, 0)
    for i in range(u0, u1):
        work[i] = work[i] + buf[b + i] + ioff[i]
        buf[b + i] = 0
    if next_tick and subtract:
        for i in range(u0, u1):
            work[i] = work[i] - thr[i] if reset_prev[i] else work[i]
    if next_tick and not subtract and is_cuba:
        for i in range(u0, u1):
            # snnTorch Synaptic's zero reset: the whole membrane, this tick's input included
            work[i] = vreset[i] if reset_prev[i] else work[i]
    if saturating:
        sat_count[p] += _saturate(work[lo:hi], consts)
    for i in range(u0, u1):
        vi = work[i]
        fire = vi > fire_thr[i]
        reset_prev[i] = fire
        spiked[i] = fire
        if next_tick:
            v[i] = vi
        elif subtract:
            v[i] = vi - thr[i] if fire else vi
        else:
            v[i] = vreset[i] if fire else vi


@njit(cache=True, inline="always")
def _lif_float(v, drive, alpha, ioff, thr, fire_thr, vreset, subtract):
    """One neuron, one tick, float arithmetic, same-tick reset: (new v, fired). The steps
    decay, integrate, fire and reset of :mod:`emu.neuron`, in the same order of operations."""
    vi = alpha * v + cast_like(drive, v) + ioff
    fire = vi > fire_thr
    r = vi - thr if subtract else vreset
    return (r if fire else vi), fire


@njit(cache=True, inline="always")
def _update_float(lo, hi, buf, boff, v, alpha, thr, fire_thr, ioff, vreset, subtract, spiked):
    """:func:`_update_population` for floating-point arithmetic, plain LIF / IF / LI,
    reset in the same tick (the chip's case), neurons with parameters of their own:
    the same operations in the same order, written without data-dependent branches
    so that the loop vectorises. Indices are unsigned: numba then emits no
    negative-index wrap-around, which would stop the vectorisation."""
    d = np.uint64(boff)
    for i in range(np.uint64(lo), np.uint64(hi)):
        drive = buf[d + i]
        buf[d + i] = 0
        v[i], spiked[i] = _lif_float(v[i], drive, alpha[i], ioff[i], thr[i], fire_thr[i], vreset[i], subtract)


@njit(cache=True, inline="always")
def _update_cuba_float(lo, hi, buf, boff, v, syn, alpha, alpha_syn, sbias, thr, fire_thr, ioff, vreset, subtract,
                       last, spiked):
    """:func:`_update_float` for a CubaLIF population: the step "synapse" of
    :mod:`emu.neuron` (``alpha_syn * syn + inputs + syn_bias``, then the membrane
    driven by this tick's current or by last tick's where ``last``) fused into the
    same single pass, the operations in the order of :func:`_update_population`. A
    small recurrent network (the braille RNN) is mostly the fixed cost of its passes,
    so one pass instead of six matters there."""
    d = np.uint64(boff)
    for i in range(np.uint64(lo), np.uint64(hi)):
        s = alpha_syn[i] * syn[i] + buf[d + i] + sbias[i]
        buf[d + i] = 0
        drive = syn[i] if last else s
        syn[i] = s
        v[i], spiked[i] = _lif_float(v[i], drive, alpha[i], ioff[i], thr[i], fire_thr[i], vreset[i], subtract)


@njit(cache=True, inline="always")
def _append_bits(x, base, out, n):
    """``base + m`` for every set bit m of ``x``, ascending, into ``out[n:]`` (4 spare
    elements); returns the new count. The first four come out by trailing-zero
    counts of ``x`` with its lowest bits cleared one by one, stored unconditionally
    (the count moves by the population count), so most words take no data-dependent
    branch; a fifth and later bit take a loop."""
    count = popcount(x)
    x1 = x & (x - np.uint64(1))
    x2 = x1 & (x1 - np.uint64(1))
    x3 = x2 & (x2 - np.uint64(1))
    # trailing_zeros(0) is 64: an index past the word, written but not counted
    out[n] = base + np.int64(trailing_zeros(x))
    out[n + 1] = base + np.int64(trailing_zeros(x1))
    out[n + 2] = base + np.int64(trailing_zeros(x2))
    out[n + 3] = base + np.int64(trailing_zeros(x3))
    if count > 4:
        x = x3 & (x3 - np.uint64(1))
        m = n + 4
        while x != 0:
            out[m] = base + np.int64(trailing_zeros(x))
            m += 1
            x &= x - np.uint64(1)
    return n + count


@njit(cache=True, inline="always")
def _update_fire_uniform(lo, hi, buf, boff, v, alpha, thr, fire_thr, ioff, vreset, subtract, out):
    """The arithmetic of :func:`_update_float` for a uniform population, fused with the
    extraction of its spikes: 64 neurons at a time by :func:`emu.engine.intrinsics.lif64`, whose spike mask goes straight
    to :func:`_append_bits` (no byte per neuron stored and read back). Writes the
    population-local indices of the neurons that fired into ``out``; returns their
    number."""
    al, io, th, fth, vr = alpha[lo], ioff[lo], thr[lo], fire_thr[lo], vreset[lo]
    n = 0
    i = lo
    while i + 64 <= hi:
        n = _append_bits(lif64(buf, boff + i, v, i, al, io, th, fth, vr, subtract), i - lo, out, n)
        i += 64
    x = np.uint64(0)
    for m in range(hi - i):  # the last partial block, neuron by neuron
        drive = buf[boff + i + m]
        buf[boff + i + m] = 0
        v[i + m], fire = _lif_float(v[i + m], drive, al, io, th, fth, vr, subtract)
        x |= np.uint64(fire) << np.uint64(m)
    return _append_bits(x, i - lo, out, n)


@njit(cache=True, inline="always")
def _set_indices(mask, lo, hi, out):
    """Indices ``i - lo`` of the set bytes of ``mask[lo:hi]``, ascending, into ``out``;
    returns their number. ``mask``: a flat C-contiguous 0/1 byte array; ``out`` needs
    4 spare elements.

    The mask is read 64 bytes at a time as a bit mask, whose indices
    :func:`_append_bits` writes out."""
    n = 0
    size = mask.shape[0]
    for i in range(lo, hi, 64):
        if i + 64 <= size:
            x = mask64(mask, i)
        else:  # the end of the array: byte by byte
            x = np.uint64(0)
            for m in range(size - i):
                x |= np.uint64(mask[i + m] != 0) << np.uint64(m)
        if i + 64 > hi:
            x &= (np.uint64(1) << np.uint64(hi - i)) - np.uint64(1)
        n = _append_bits(x, i - lo, out, n)
    return n


@njit(cache=True, inline="always")
def _nir_order(n, channels, internal, counts, spikes):
    """The first ``n`` of ``internal`` (ascending population-local indices of a
    channels-last population, ``(y * W + x) * C + c``) in NIR ``(c, y, x)`` order, into
    ``spikes``: a stable counting sort on the channel (within a channel, internal order
    is NIR order)."""
    for c in range(channels):
        counts[c] = 0
    for k in range(n):
        counts[internal[k] % channels] += 1
    acc = 0
    for c in range(channels):
        cnt = counts[c]
        counts[c] = acc
        acc += cnt
    for k in range(n):
        c = internal[k] % channels
        spikes[counts[c]] = internal[k]
        counts[c] += 1


@njit(cache=True, inline="always")
def _add_footprints(dst, toff, spikes, n_spk, pre_base, pre_rows, wpool, n_rows, stride, width, nvec, lanes):
    """The footprints of ``n_spk`` spikes of one projection: ``n_rows`` rows of ``nvec``
    vectors of ``lanes`` each, ``stride`` apart."""
    for s in range(n_spk):
        k = pre_base + spikes[s]
        d, w = toff + pre_rows[k, 0], pre_rows[k, 1]
        for _ in range(n_rows):
            for m in range(nvec):
                if lanes == 16:
                    vadd16(dst, d + 16 * m, wpool, w + 16 * m)
                else:
                    vadd8(dst, d + 8 * m, wpool, w + 8 * m)
            d += stride
            w += width


@njit(cache=True, inline="always")
def _scatter(dst, lanes, toff, spikes, n_spk, j, proj_pre_base, proj_width, proj_rows, proj_stride, pre_rows, blk,
             wpool, syn_post):
    """Add the rows of projection j of every spiking pre neuron into ``dst`` at slot offset
    ``toff``: the float buffers (``lanes`` 8), or the int16 ones of exact small sums (16
    lanes to a 32-byte store; their footprints are whole multiples of 16). A synapse list
    (see :mod:`emu.engine.layout`) adds its synapses one by one, the lists of the spikes
    :data:`PREFETCH_AHEAD` further on already on their way into the cache."""
    width, pre_base = proj_width[j], proj_pre_base[j]
    if width == SYNAPSE_LIST:  # synapse by synapse, as _add_row's scalar tail adds
        for s in range(n_spk):
            if s + PREFETCH_AHEAD < n_spk:
                ahead = pre_rows[pre_base + spikes[s + PREFETCH_AHEAD], 0]
                prefetch(syn_post, ahead)
                prefetch(wpool, ahead)
            k = pre_base + spikes[s]
            for i in range(pre_rows[k, 0], pre_rows[k, 0] + pre_rows[k, 1]):
                dst[toff + syn_post[i]] += wpool[i]
    elif width > 0:  # one footprint per pre neuron: rows of whole vectors, `stride` apart
        n_rows, stride = proj_rows[j], proj_stride[j]
        nvec = width // lanes
        # the common footprint (3x3 kernels at stride 1: 3 rows of 3 positions of 8 or 16
        # channels) with literal row and vector counts: straight-line code, no loop
        # counters; other heights of 3-vector rows keep a literal vector count
        if nvec == 3 and n_rows == 3:
            _add_footprints(dst, toff, spikes, n_spk, pre_base, pre_rows, wpool, 3, stride, width, 3, lanes)
        elif nvec == 3:
            _add_footprints(dst, toff, spikes, n_spk, pre_base, pre_rows, wpool, n_rows, stride, width, 3, lanes)
        else:
            _add_footprints(dst, toff, spikes, n_spk, pre_base, pre_rows, wpool, n_rows, stride, width, nvec, lanes)
    else:
        for s in range(n_spk):
            k = pre_base + spikes[s]
            for b in range(pre_rows[k, 0], pre_rows[k, 0] + pre_rows[k, 1]):
                _add_row(dst, toff + blk[b, 0], wpool, blk[b, 1], blk[b, 2])


@njit(cache=True, inline="always")
def _slot_length(n):
    """Elements of one input-buffer slot for ``n`` neurons: a whole number of 64-byte blocks, so
    every slot starts as aligned as the first (numba's arrays start on 32 bytes) and a row's
    vectors keep the alignment their population has in the slot instead of straddling cache
    lines."""
    return (n + SLOT_ALIGN - 1) // SLOT_ALIGN * SLOT_ALIGN


@njit(cache=True)
def workspace(net):
    """A zeroed :class:`emu.engine.arrays.Workspace` for one sample of ``net``."""
    alpha = net.alpha
    n = alpha.shape[0]
    # slot-major input buffers, with room for the zero lanes of fixed-width rows at the end;
    # int16 ones for populations whose every input sum fits (pop_int_drive), ``int_drive``
    # giving their type (the state's, and no room, where no population has int16 sums)
    size = net.n_slots * _slot_length(n) + net.buf_pad
    return Workspace(np.zeros_like(alpha), np.zeros_like(alpha), np.zeros_like(alpha),
                     np.zeros(size, dtype=alpha.dtype),
                     np.zeros(size if net.pop_int_drive.any() else 0, dtype=net.int_drive.dtype),
                     np.zeros(1, dtype=alpha.dtype), np.zeros(n, dtype=np.bool_), np.zeros(n + 64, dtype=np.uint8),
                     np.zeros(n + 4, dtype=np.int64), np.zeros(n + 4, dtype=np.int64),
                     np.zeros(max(net.pop_channels.max(), 1), dtype=np.int64))


# Without the runtime's reference counts (_nrt=False): the tick loop allocates nothing, and
# every helper inlined into it would otherwise take and drop a reference to each array it
# is given, an atomic operation per array per population per tick
@njit(cache=True, _nrt=False)
def run_sample(n_ticks, net, ws, in_flat, in_cols, in_off, v_col, v_rec, tick_end, ev_neuron, sat_count):
    """All ticks of one sample of the network ``net`` (:class:`NetworkArrays`), its state and
    scratch in ``ws`` (:func:`workspace`). ``in_flat``:
    its (ticks, in_cols) 0/1 input raster, flattened; input population p at columns
    ``in_off[p]:``. ``v_col[p] >= 0``: record population p's voltages into ``v_rec``
    from that column on.

    Spikes are written to ``ev_neuron`` as global NIR indices, tick after tick, and
    ``tick_end[t]`` = the number written up to and including tick t (module doc).
    Returns the number of spikes; it may exceed the capacity of ``ev_neuron``: then
    only the first ones are stored and the caller reruns."""
    n_slots, modes, consts = net.n_slots, net.modes, net.consts
    pop_lo, pop_hi, pop_is_input, pop_cuba = net.pop_lo, net.pop_hi, net.pop_is_input, net.pop_cuba
    pop_uniform, pop_int_drive, pop_channels, pop_nir_sorted = (net.pop_uniform, net.pop_int_drive, net.pop_channels,
                                                                net.pop_nir_sorted)
    nir_of, alpha, alpha_syn, thr, fire_thr, ioff, vreset, sbias = (net.nir_of, net.alpha, net.alpha_syn, net.thr,
                                                                    net.fire_thr, net.ioff, net.vreset, net.sbias)
    out_ptr, proj_lag, proj_int_drive = net.out_ptr, net.proj_lag, net.proj_int_drive
    proj_pre_base, proj_width, proj_rows, proj_stride = net.proj_pre_base, net.proj_width, net.proj_rows, net.proj_stride
    pre_rows, blk, wpool, syn_post = net.pre_rows, net.blk, net.wpool, net.syn_post
    v, syn, work, buf, ibuf, scratch, reset_prev, spiked, spikes, tmp, counts = ws
    n_pops = pop_lo.shape[0]
    slot = _slot_length(alpha.shape[0])
    # the chip's case: float arithmetic, no saturation, same-tick reset
    fast = modes.rounding == 0 and not modes.saturating and not modes.next_tick
    subtract = modes.subtract
    cap = ev_neuron.shape[0]
    n_ev = 0
    for t in range(n_ticks):
        boff = (t % n_slots) * slot
        for p in range(n_pops):
            lo, hi = pop_lo[p], pop_hi[p]
            if pop_is_input[p]:
                first = t * in_cols + in_off[p]
                n_spk = _set_indices(in_flat, first, first + hi - lo, spikes)
            else:
                nir = pop_nir_sorted[p] and pop_channels[p] > 1
                out = tmp if nir else spikes
                single_pass = pop_int_drive[p] or fast and not pop_cuba[p]
                if single_pass and pop_uniform[p]:
                    if pop_int_drive[p]:
                        n_spk = _update_fire_uniform(lo, hi, ibuf, boff, v, alpha, thr, fire_thr, ioff, vreset,
                                                     subtract, out)
                    else:
                        n_spk = _update_fire_uniform(lo, hi, buf, boff, v, alpha, thr, fire_thr, ioff, vreset,
                                                     subtract, out)
                else:
                    if pop_int_drive[p]:
                        _update_float(lo, hi, ibuf, boff, v, alpha, thr, fire_thr, ioff, vreset, subtract, spiked)
                    elif single_pass:
                        _update_float(lo, hi, buf, boff, v, alpha, thr, fire_thr, ioff, vreset, subtract, spiked)
                    elif fast:  # a CubaLIF in the chip's case
                        _update_cuba_float(lo, hi, buf, boff, v, syn, alpha, alpha_syn, sbias, thr, fire_thr, ioff,
                                           vreset, subtract, modes.cuba_last, spiked)
                    else:
                        _update_population(p, t, lo, hi, nir_of, pop_cuba[p], buf, boff, v, syn, reset_prev, spiked,
                                           work, alpha, alpha_syn, thr, fire_thr, ioff, sbias, vreset, modes, consts,
                                           scratch, sat_count)
                    n_spk = _set_indices(spiked, lo, hi, out)
                if v_col[p] >= 0:
                    for k in range(hi - lo):
                        v_rec[t, v_col[p] + nir_of[lo + k] - lo] = v[lo + k]
                if nir:
                    _nir_order(n_spk, pop_channels[p], tmp, counts, spikes)
            for s in range(min(n_spk, max(cap - n_ev, 0))):  # over capacity: count only
                ev_neuron[n_ev + s] = nir_of[lo + spikes[s]]
            n_ev += n_spk
            for j in range(out_ptr[p], out_ptr[p + 1] if n_spk else 0):  # silent: nothing to add
                toff = ((t + proj_lag[j]) % n_slots) * slot
                if proj_int_drive[j]:
                    _scatter(ibuf, 16, toff, spikes, n_spk, j, proj_pre_base, proj_width, proj_rows, proj_stride,
                             pre_rows, blk, wpool, syn_post)
                else:
                    _scatter(buf, 8, toff, spikes, n_spk, j, proj_pre_base, proj_width, proj_rows, proj_stride,
                             pre_rows, blk, wpool, syn_post)
        tick_end[t] = n_ev
    return n_ev


@njit(cache=True, nogil=True)
def run_samples(next_sample, n_ticks, net, in_raster, in_off, v_col, v_rec, tick_end, ev_neuron, sat_count, n_events):
    """Samples of a batch, each the next one no worker has taken (``next_sample[0]``, a
    counter the workers share), until none is left: a worker on a slower core (shared
    with another tenant, or smaller) takes fewer samples instead of holding the batch
    up. Arrays with a leading batch axis are per sample, ``net`` is the
    :class:`NetworkArrays`. Releases the GIL: the engine runs one call per worker thread
    (a serial loop compiles in less time than a ``prange`` loop, and the tick loop takes
    no references that threads could contend on)."""
    cols = in_raster.shape[2]
    b = take_next(next_sample)
    while b < in_raster.shape[0]:
        n_events[b] = run_sample(n_ticks, net, workspace(net), in_raster[b].reshape(-1), cols, in_off, v_col, v_rec[b],
                                 tick_end[b], ev_neuron[b], sat_count[b])
        b = take_next(next_sample)
