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
def _decay(coef, x, modes, consts, scratch, neuron, tick, stream):
    """coef * x, rounded back to the state grid for fixed-point arithmetic."""
    rounding = modes[M_ROUNDING]
    if rounding == 0:
        return coef * x
    y = coef * x * consts[C_INV_COEF]
    if rounding == 1:
        return np.trunc(y)
    if rounding == 2:
        return np.floor(y + consts[C_HALF])
    scratch[0] = stochastic_bits(modes[M_SEED], neuron, tick, stream) & np.uint64(modes[M_COEF_MASK])
    return np.floor(y + scratch[0] * consts[C_INV_COEF])


@njit(cache=True)
def _saturate(x, consts, sat_count, p):
    if consts[C_SAT_ON] == 0:
        return x
    if x > consts[C_SAT_HI]:
        sat_count[p] += 1
        return consts[C_SAT_HI]
    if x < consts[C_SAT_LO]:
        sat_count[p] += 1
        return consts[C_SAT_LO]
    return x


@njit(cache=True)
def _update_population(p, t, lo, hi, nir_of, is_cuba, slot_buf, v, syn, reset_prev, spiked,
                       alpha, alpha_syn, thr, ioff, vreset, modes, consts, scratch, sat_count):
    """Leak, integrate, fire and reset neurons [lo, hi) of population p at tick t."""
    subtract = modes[M_SUBTRACT] == 1
    next_tick = modes[M_NEXT_TICK] == 1
    ge = modes[M_GE] == 1
    cuba_last = modes[M_CUBA_LAST] == 1
    for i in range(lo, hi):
        drive = slot_buf[i]
        slot_buf[i] = 0
        if is_cuba:
            syn_new = _saturate(_decay(alpha_syn[i], syn[i], modes, consts, scratch, nir_of[i], t, 1) + drive,
                                consts, sat_count, p)
            drive = syn[i] if cuba_last else syn_new
            syn[i] = syn_new
        vi = v[i]
        if next_tick and reset_prev[i] and not subtract:
            vi = vreset[i]  # snnTorch zero reset: (1 - reset) * mem, then this tick's input
        vi = _decay(alpha[i], vi, modes, consts, scratch, nir_of[i], t, 0) + drive + ioff[i]
        if next_tick and reset_prev[i] and subtract:
            vi = vi - thr[i]
        vi = _saturate(vi, consts, sat_count, p)
        fire = (vi >= thr[i]) if ge else (vi > thr[i])
        if fire and not next_tick:
            vi = vi - thr[i] if subtract else vreset[i]
        reset_prev[i] = fire
        spiked[i] = fire
        v[i] = vi


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
    buf = np.zeros((n_slots, n), dtype=alpha.dtype)
    scratch = np.zeros(1, dtype=alpha.dtype)
    reset_prev = np.zeros(n, dtype=np.bool_)
    spiked = np.zeros(n, dtype=np.bool_)
    spikes = np.zeros(n, dtype=np.int64)
    cap = ev_tick.shape[0]
    n_ev = 0
    for t in range(n_ticks):
        slot = t % n_slots
        for p in range(n_pops):
            lo, hi, base = pop_lo[p], pop_hi[p], pop_nir_base[p]
            if pop_is_input[p]:
                k0, k1 = in_ptr[t * n_pops + p], in_ptr[t * n_pops + p + 1]
                n_spk = k1 - k0
                spikes[:n_spk] = in_idx[k0:k1]
            else:
                _update_population(p, t, lo, hi, nir_of, pop_cuba[p], buf[slot], v, syn, reset_prev, spiked,
                                   alpha, alpha_syn, thr, ioff, vreset, modes, consts, scratch, sat_count)
                if v_col[p] >= 0:
                    for k in range(hi - lo):
                        v_rec[t, v_col[p] + k] = v[internal_of[base + k]]
                # branch-free compaction, in NIR index order
                n_spk = 0
                for k in range(hi - lo):
                    spikes[n_spk] = k
                    n_spk += spiked[internal_of[base + k]]
            for s in range(n_spk):
                if n_ev + s < cap:
                    ev_tick[n_ev + s] = t
                    ev_neuron[n_ev + s] = base + spikes[s]
            n_ev += n_spk
            for j in range(out_ptr[p], out_ptr[p + 1]):
                target = buf[(t + proj_lag[j]) % n_slots]
                pre_base = proj_pre_base[j]
                for s in range(n_spk):
                    k = pre_base + spikes[s]
                    for b in range(blk_ptr[k], blk_ptr[k + 1]):
                        dst = target[blk_post[b]:blk_post[b] + blk_len[b]]
                        src = wpool[blk_w[b]:blk_w[b] + blk_len[b]]
                        for m in range(blk_len[b]):
                            dst[m] += src[m]
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
