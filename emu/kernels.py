"""numba kernels of the engine: pure functions of flat arrays, no Python objects.

One compiled call runs all ticks of one sample; a batch runs samples in parallel
(``prange``), each with its own state, so batch results equal one-by-one runs.

Per tick, populations are visited in topological order. A population first
updates its neurons from its input-buffer slot of this tick, then scatters its
spikes into the slots ``lag`` ticks ahead of every outgoing projection
(lag = synaptic latency + extra delay; 0 is allowed for feed-forward edges since
the target is visited later in the same tick). Synapses are stored as contiguous
rows (one pre neuron -> a run of consecutive post neurons), so a spike costs a few
vectorisable row adds. Spikes are kept as lists in NIR index order, which fixes
the order of floating-point additions.

The arithmetic follows the dtype of the arrays passed in (float32 for the chip
profile, float64 otherwise); every constant comes in as an array of that dtype
so no value is silently promoted.
"""
import numpy as np
from numba import njit, prange

# indices into the `modes` int64 array
M_ROUNDING, M_SUBTRACT, M_NEXT_TICK, M_GE, M_CUBA_LAST, M_SEED, M_COEF_MASK = range(7)
# indices into the `consts` state-dtype array
C_HALF, C_INV_COEF, C_SAT_LO, C_SAT_HI, C_SAT_ON = range(5)

_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xBF58476D1CE4E5B9)
_K3 = np.uint64(0x94D049BB133111EB)


@njit(cache=True)
def stochastic_bits(seed, neuron, tick, stream):
    """splitmix64 of (seed, neuron, tick, stream): the bits of stochastic rounding.

    Works on numpy uint64 scalars or arrays alike (the reference calls the plain
    Python version with arrays).
    """
    z = np.uint64(seed) * _K1 + np.uint64(neuron) * _K2 + np.uint64(tick) * _K3 + np.uint64(stream)
    z = (z ^ (z >> np.uint64(30))) * _K2
    z = (z ^ (z >> np.uint64(27))) * _K3
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _round_to_grid(work, modes, consts, scratch, neuron, tick, stream):
    """Fixed point: products in ``work`` (LSBs times the coefficient scale) back on
    the integer LSB grid, with the profile's rounding. ``neuron``: their NIR indices."""
    rounding = modes[M_ROUNDING]
    inv_coef, half = consts[C_INV_COEF], consts[C_HALF]
    if rounding == 1:
        for i in range(work.shape[0]):
            work[i] = np.trunc(work[i] * inv_coef)
    elif rounding == 2:
        for i in range(work.shape[0]):
            work[i] = np.floor(work[i] * inv_coef + half)
    else:
        seed, mask = modes[M_SEED], np.uint64(modes[M_COEF_MASK])
        for i in range(work.shape[0]):
            # the offset goes through `scratch` so that it keeps the state dtype
            scratch[0] = stochastic_bits(seed, neuron[i], tick, stream) & mask
            work[i] = np.floor(work[i] * inv_coef + scratch[0] * inv_coef)


@njit(cache=True)
def _saturate(x, consts):
    """Clip ``x`` to the fixed-point word; returns how many values were clipped."""
    low, high = consts[C_SAT_LO], consts[C_SAT_HI]
    n = 0
    for i in range(x.shape[0]):
        if x[i] > high:
            x[i] = high
            n += 1
        elif x[i] < low:
            x[i] = low
            n += 1
    return n


@njit(cache=True)
def _update_population(p, t, lo, hi, nir_of, is_cuba, buf, slot_base, v, syn, reset_prev, spiked, work,
                       alpha, alpha_syn, thr, ioff, vreset, modes, consts, scratch, sat_count):
    """Leak, integrate, fire and reset neurons [lo, hi) of population p at tick t,
    taking their input from ``buf[slot_base + lo : slot_base + hi]`` (and clearing it).

    A few simple passes over views of the population, each branch-free inside
    (mode switches sit outside the loops), indexed from 0 so that numba needs no
    negative-index checks: that is what lets LLVM vectorise them."""
    n = hi - lo
    inp, w, vv, fired = buf[slot_base + lo:slot_base + hi], work[lo:hi], v[lo:hi], reset_prev[lo:hi]
    al, th, off, vr, neuron = alpha[lo:hi], thr[lo:hi], ioff[lo:hi], vreset[lo:hi], nir_of[lo:hi]
    rounding = modes[M_ROUNDING]
    saturating = consts[C_SAT_ON] != 0
    if is_cuba:
        als, sy = alpha_syn[lo:hi], syn[lo:hi]
        for i in range(n):
            w[i] = als[i] * sy[i]
        if rounding != 0:
            _round_to_grid(w, modes, consts, scratch, neuron, t, 1)
        for i in range(n):
            w[i] = w[i] + inp[i]
        if saturating:
            sat_count[p] += _saturate(w, consts)
        last = modes[M_CUBA_LAST] == 1
        for i in range(n):
            # the membrane's drive: this tick's synaptic current, or last tick's
            inp[i] = sy[i] if last else w[i]
            sy[i] = w[i]
    subtract = modes[M_SUBTRACT] == 1
    next_tick = modes[M_NEXT_TICK] == 1
    if next_tick and not subtract:
        for i in range(n):
            # snnTorch zero reset: (1 - reset) * mem, then this tick's input
            w[i] = al[i] * (vr[i] if fired[i] else vv[i])
    else:
        for i in range(n):
            w[i] = al[i] * vv[i]
    if rounding != 0:
        _round_to_grid(w, modes, consts, scratch, neuron, t, 0)
    for i in range(n):
        w[i] = w[i] + inp[i] + off[i]
        inp[i] = 0
    if next_tick and subtract:
        for i in range(n):
            w[i] = w[i] - th[i] if fired[i] else w[i]
    if saturating:
        sat_count[p] += _saturate(w, consts)
    ge = modes[M_GE] == 1
    out = spiked[lo:hi]
    for i in range(n):
        vi = w[i]
        fire = (vi >= th[i]) if ge else (vi > th[i])
        fired[i] = fire
        out[i] = fire
        if next_tick:
            vv[i] = vi
        elif subtract:
            vv[i] = vi - th[i] if fire else vi
        else:
            vv[i] = vr[i] if fire else vi


@njit(cache=True)
def run_sample(
    n_ticks, n_slots, pop_lo, pop_hi, pop_nir_base, pop_is_input, pop_cuba, internal_of, nir_of,
    alpha, alpha_syn, thr, ioff, vreset, modes, consts,
    out_ptr, proj_lag, proj_pre_base, blk_ptr, blk_post, blk_w, blk_len, wpool,
    in_ptr, in_idx, v_col, v_rec, ev_tick, ev_neuron, sat_count,
):
    """All ticks of one sample. Returns the number of spikes (may exceed the capacity
    of ``ev_tick``; then only the first ones are stored and the caller reruns)."""
    n = alpha.shape[0]
    n_pops = pop_lo.shape[0]
    v = np.zeros_like(alpha)
    syn = np.zeros_like(alpha)
    work = np.zeros_like(alpha)
    # one flat ring buffer, n_slots x n; plain indices, no array views in the hot
    # loops (a view costs reference-count atomics that threads contend on)
    buf = np.zeros(n_slots * n, dtype=alpha.dtype)
    scratch = np.zeros(1, dtype=alpha.dtype)
    reset_prev = np.zeros(n, dtype=np.bool_)
    spiked = np.zeros(n, dtype=np.bool_)
    spikes = np.zeros(n, dtype=np.int64)
    cap = ev_tick.shape[0]
    n_ev = 0
    for t in range(n_ticks):
        slot_base = (t % n_slots) * n
        for p in range(n_pops):
            lo, hi, base = pop_lo[p], pop_hi[p], pop_nir_base[p]
            if pop_is_input[p]:
                k0, k1 = in_ptr[t * n_pops + p], in_ptr[t * n_pops + p + 1]
                n_spk = k1 - k0
                for s in range(n_spk):
                    spikes[s] = in_idx[k0 + s]
            else:
                _update_population(p, t, lo, hi, nir_of, pop_cuba[p], buf, slot_base, v, syn, reset_prev, spiked, work,
                                   alpha, alpha_syn, thr, ioff, vreset, modes, consts, scratch, sat_count)
                if v_col[p] >= 0:
                    for k in range(hi - lo):
                        v_rec[t, v_col[p] + k] = v[internal_of[base + k]]
                # branch-free compaction, in NIR index order
                n_spk = 0
                where = internal_of[base:base + hi - lo]
                for k in range(hi - lo):
                    spikes[n_spk] = k
                    n_spk += spiked[where[k]]
            for s in range(n_spk):
                if n_ev + s < cap:
                    ev_tick[n_ev + s] = t
                    ev_neuron[n_ev + s] = base + spikes[s]
            n_ev += n_spk
            for j in range(out_ptr[p], out_ptr[p + 1]):
                target = ((t + proj_lag[j]) % n_slots) * n
                pre_base = proj_pre_base[j]
                for s in range(n_spk):
                    k = pre_base + spikes[s]
                    for b in range(blk_ptr[k], blk_ptr[k + 1]):
                        dst = target + blk_post[b]
                        src = blk_w[b]
                        for m in range(blk_len[b]):
                            buf[dst + m] += wpool[src + m]
    return n_ev


@njit(cache=True, parallel=True)
def run_batch(
    n_ticks, n_slots, pop_lo, pop_hi, pop_nir_base, pop_is_input, pop_cuba, internal_of, nir_of,
    alpha, alpha_syn, thr, ioff, vreset, modes, consts,
    out_ptr, proj_lag, proj_pre_base, blk_ptr, blk_post, blk_w, blk_len, wpool,
    in_ptr, in_base, in_idx, v_col, v_rec, ev_tick, ev_neuron, sat_count, n_events,
):
    """Samples of a batch in parallel; arrays with a leading batch axis are per sample."""
    for b in prange(in_ptr.shape[0]):
        n_events[b] = run_sample(
            n_ticks, n_slots, pop_lo, pop_hi, pop_nir_base, pop_is_input, pop_cuba, internal_of, nir_of,
            alpha, alpha_syn, thr, ioff, vreset, modes, consts,
            out_ptr, proj_lag, proj_pre_base, blk_ptr, blk_post, blk_w, blk_len, wpool,
            in_ptr[b], in_idx[in_base[b]:], v_col, v_rec[b], ev_tick[b], ev_neuron[b], sat_count[b],
        )
