"""Spike-train comparison metrics on (T, N) boolean rasters (tick x neuron).

All functions are pure and take two rasters ``a`` and ``b`` of the same shape.

**Lag convention**: lag ``L`` pairs a spike of A at tick ``t`` with a spike of B at
tick ``t - L``: a positive lag means A lags B by ``L`` ticks (a chip raster lags
snnTorch by one tick per connection, so chip = A, snnTorch = B gives ``L > 0``).
At lag ``L`` only the ticks where both sides exist are compared: A's ticks
``max(0, L) .. T + min(0, L) - 1`` (see :func:`aligned`). Coincidence counts are
raw counts over that overlap, not normalised by its length.

"Never" is written ``-1`` in the integer results of :func:`first_divergence`.

**The headline measure** is :class:`SpikeAgreement`: how many of B's spikes A
reproduces at the same (aligned) tick and neuron (recall), how many of A's spikes are
B's (precision), their F1, and each side's firing rate. Cells where neither side
spikes do not count, so a silent run scores F1 = 0, the worst, however sparse the
other side is; the share of mismatching (tick, neuron) cells, which such a run makes
small, is a secondary column. In words: mismatching cells = ``spikes_a + spikes_b -
2 * matched``, and ``F1 = 1 - mismatching cells / (spikes_a + spikes_b)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

import numpy as np
from numba import njit

from emu.timing import align


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"rasters must be 2-D and of one shape, got {a.shape} and {b.shape}")


@dataclass(frozen=True)
class SpikeAgreement:
    """How well run A reproduces reference run B, spike by spike, over ``cells`` (sample, tick,
    neuron) cells compared at one alignment.

    ``matched``: cells where both spike. ``recall`` = matched / B's spikes (what A loses
    lowers it; a silent A has 0), ``precision`` = matched / A's spikes (A's extra spikes
    lower it), ``f1`` = 2 matched / (A's + B's spikes), 1 when neither spikes. Removing
    spikes of A that B also has lowers all three; removing A's extra spikes raises
    precision and F1, as it should. ``None`` where a ratio has nothing to count (the
    precision of a silent run, the rate ratio against a silent reference).
    Agreements of disjoint parts add up (``+``, :func:`pooled`).
    """

    spikes_a: int
    spikes_b: int
    matched: int
    cells: int

    @property
    def mismatching_cells(self) -> int:
        """Cells where exactly one side spikes."""
        return self.spikes_a + self.spikes_b - 2 * self.matched

    @property
    def mismatch_rate(self) -> float:
        """Mismatching cells over all cells (secondary: silence makes it small)."""
        return self.mismatching_cells / self.cells if self.cells else 0.0

    @property
    def recall(self) -> Optional[float]:
        return self.matched / self.spikes_b if self.spikes_b else None

    @property
    def precision(self) -> Optional[float]:
        return self.matched / self.spikes_a if self.spikes_a else None

    @property
    def f1(self) -> float:
        both = self.spikes_a + self.spikes_b
        return 2 * self.matched / both if both else 1.0

    @property
    def rate_a(self) -> float:
        """A's spikes per cell (per neuron per tick)."""
        return self.spikes_a / self.cells if self.cells else 0.0

    @property
    def rate_b(self) -> float:
        return self.spikes_b / self.cells if self.cells else 0.0

    @property
    def rate_ratio(self) -> Optional[float]:
        """A's firing rate over B's."""
        return self.spikes_a / self.spikes_b if self.spikes_b else None

    def __add__(self, other: "SpikeAgreement") -> "SpikeAgreement":
        return SpikeAgreement(self.spikes_a + other.spikes_a, self.spikes_b + other.spikes_b,
                              self.matched + other.matched, self.cells + other.cells)

    def to_dict(self) -> dict:
        """The counts and every derived measure, JSON-able."""
        return dict(f1=self.f1, recall=self.recall, precision=self.precision, spikes_a=self.spikes_a,
                    spikes_b=self.spikes_b, matched=self.matched, rate_a=self.rate_a, rate_b=self.rate_b,
                    rate_ratio=self.rate_ratio, mismatching_cells=self.mismatching_cells, cells=self.cells,
                    mismatch_rate=self.mismatch_rate)

    @classmethod
    def from_dict(cls, d: dict) -> "SpikeAgreement":
        return cls(int(d["spikes_a"]), int(d["spikes_b"]), int(d["matched"]), int(d["cells"]))

    def describe(self, a: str = "A", b: str = "B") -> str:
        """The measure in words, e.g. "spike F1 0.930 (A reproduces 95.1 % of B's spikes, 91.0 % of
        A's spikes are B's; A fires 1.05x B's rate)"."""
        if self.spikes_a == self.spikes_b == 0:
            return f"neither {a} nor {b} spikes (spike F1 1 by convention)"
        if self.spikes_a == 0:
            return f"spike F1 0: {a} is silent where {b} fires {self.spikes_b:,} spikes"
        if self.spikes_b == 0:
            return f"spike F1 0: {b} is silent where {a} fires {self.spikes_a:,} spikes"
        return (f"spike F1 {self.f1:.3f} ({a} reproduces {100 * self.recall:.1f} % of {b}'s spikes, "
                f"{100 * self.precision:.1f} % of {a}'s spikes are {b}'s; {a} fires {self.rate_ratio:.2f}x "
                f"{b}'s rate)")


def agreement(a: np.ndarray, b: np.ndarray) -> SpikeAgreement:
    """:class:`SpikeAgreement` of two aligned 0/1 arrays of one shape (any number of axes:
    (T, N), (B, T, N)); B is the reference."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.shape != b.shape:
        raise ValueError(f"spike arrays must have one shape, got {a.shape} and {b.shape}")
    return SpikeAgreement(int(np.count_nonzero(a)), int(np.count_nonzero(b)), int(np.count_nonzero(a & b)),
                          int(a.size))


def agreement_of_keys(keys_a: np.ndarray, keys_b: np.ndarray, cells: int) -> SpikeAgreement:
    """:class:`SpikeAgreement` of two runs given as the sorted keys of their spiking cells
    (:meth:`emu.spikes.Recording.spike_keys` of the same window) over ``cells`` cells: the
    sparse way, without rasters."""
    return SpikeAgreement(int(keys_a.size), int(keys_b.size), int(_common(keys_a, keys_b)), int(cells))


@njit(cache=True, nogil=True)
def _common(a: np.ndarray, b: np.ndarray) -> int:
    """How many values two sorted arrays of distinct values share (one merge pass)."""
    i = j = n = 0
    while i < a.size and j < b.size:
        if a[i] < b[j]:
            i += 1
        elif a[i] > b[j]:
            j += 1
        else:
            n += 1
            i += 1
            j += 1
    return n


def pooled(parts: Iterable[SpikeAgreement]) -> SpikeAgreement:
    """The agreement of disjoint parts taken together (counts added)."""
    total = SpikeAgreement(0, 0, 0, 0)
    for p in parts:
        total = total + p
    return total


def spike_counts(raster: np.ndarray) -> np.ndarray:
    """Spikes per neuron, shape (N,) int64 (the total is its sum)."""
    return raster.sum(axis=0, dtype=np.int64)


def aligned(a: np.ndarray, b: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The overlapping parts of ``a`` and ``b`` at ``lag``: row ``i`` pairs A's tick ``start + i``
    with B's tick ``start + i - lag``. Returns ``(a_part, b_part, start)``; the parts are empty
    (0 rows) when ``|lag| >= T``."""
    _check_pair(a, b)
    a_part, b_part = align(a, b, lag)
    return a_part, b_part, max(0, lag)


def coincidences(a: np.ndarray, b: np.ndarray, lag: int = 0) -> np.ndarray:
    """Exact coincidences per neuron at ``lag``: ticks ``t`` with ``a[t]`` and ``b[t - lag]``."""
    a_part, b_part, _ = aligned(a, b, lag)
    return (a_part & b_part).sum(axis=0, dtype=np.int64)


def coincidences_by_lag(a: np.ndarray, b: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact coincidences for every lag in ``[-max_lag, max_lag]``.

    Returns ``(lags, counts)``: lags shape (2K+1,), counts shape (2K+1, N) per neuron.
    """
    if max_lag < 0:
        raise ValueError(f"max_lag must be >= 0, got {max_lag}")
    lags = np.arange(-max_lag, max_lag + 1)
    return lags, np.stack([coincidences(a, b, int(lag)) for lag in lags])


def best_lag(lags: np.ndarray, totals: np.ndarray) -> int:
    """The lag with the most coincidences; ties go to the smallest ``|lag|``, then the smaller lag.

    ``totals``: one count per lag (e.g. ``counts.sum(axis=1)`` of :func:`coincidences_by_lag`).
    """
    lags, totals = np.asarray(lags), np.asarray(totals)
    order = np.lexsort((lags, np.abs(lags), -totals))  # last key sorts first
    return int(lags[order[0]])


def windowed_coincidences(a: np.ndarray, b: np.ndarray, window: int, lag: int = 0) -> np.ndarray:
    """Coincidences per neuron within ``+-window`` ticks (after shifting by ``lag``), each spike
    matched at most once.

    Matching is greedy in time order: each A spike, earliest first, takes the earliest
    still unmatched B spike of the same neuron within its window. For windows of one
    length this greedy matching is a maximum matching. ``window = 0`` gives
    :func:`coincidences`.
    """
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    a_part, b_part, _ = aligned(a, b, lag)
    t_len = a_part.shape[0]
    free_b = b_part.copy()
    count = np.zeros(a.shape[1], dtype=np.int64)
    for t in np.flatnonzero(a_part.any(axis=1)):
        want = a_part[t].copy()
        for u in range(max(0, t - window), min(t_len, t + window + 1)):
            hit = want & free_b[u]
            count += hit
            free_b[u] &= ~hit
            want &= ~hit
    return count


def van_rossum(a: np.ndarray, b: np.ndarray, tau: float) -> np.ndarray:
    """Van Rossum distance per neuron, exponential kernel with time constant ``tau`` ticks.

    Spikes are delta pulses at integer ticks, filtered by ``exp(-t / tau)``;
    ``D**2 = (2 / tau) * integral (f_a - f_b)**2 dt`` over all time, so one unmatched
    spike gives 1 and identical trains 0. Between ticks the filtered difference ``d``
    decays exactly, so with ``d_k = d_{k-1} exp(-1/tau) + a_k - b_k`` (a recursive
    filter) ``D**2 = (1 - exp(-2/tau)) * sum_{k < T-1} d_k**2 + d_{T-1}**2``
    (the last term is the tail after the recording). Shape (N,) float64.
    For a population, ``sqrt(sum(D**2))`` treats neurons as independent.
    """
    _check_pair(a, b)
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    decay = np.exp(-1.0 / tau)
    diff = a.astype(np.float64) - b.astype(np.float64)
    d = np.zeros(a.shape[1])
    sq_sum = np.zeros(a.shape[1])
    for k in range(a.shape[0]):
        d = d * decay + diff[k]
        sq_sum += d * d
    last = d * d
    return np.sqrt((1.0 - decay * decay) * (sq_sum - last) + last)


@njit(cache=True)
def _victor_purpura_csr(ta: np.ndarray, sa: np.ndarray, tb: np.ndarray, sb: np.ndarray, q: float,
                        out: np.ndarray) -> None:
    """Per neuron n, the distance of A's ticks ``ta[sa[n]:sa[n+1]]`` and B's ``tb[sb[n]:sb[n+1]]``
    (sorted): the edit-distance recursion G[i, j] = min(G[i-1, j] + 1, G[i, j-1] + 1,
    G[i-1, j-1] + q |ta_i - tb_j|), one row of G at a time."""
    for n in range(out.size):
        lo_b, nb = sb[n], sb[n + 1] - sb[n]
        g = np.arange(nb + 1).astype(np.float64)  # row 0: insert every B spike
        for i in range(sa[n], sa[n + 1]):
            diag = g[0]
            g[0] = i - sa[n] + 1
            for j in range(1, nb + 1):
                shift = diag + q * abs(ta[i] - tb[lo_b + j - 1])
                diag = g[j]
                g[j] = min(g[j] + 1.0, g[j - 1] + 1.0, shift)
        out[n] = g[nb]


def _spike_ticks(r: np.ndarray):
    """(ticks, row starts) of each neuron's spikes, in tick order: (T, N) -> CSR by neuron."""
    n_idx, t_idx = np.nonzero(r.T)
    return t_idx.astype(np.int64), np.concatenate([[0], np.cumsum(np.bincount(n_idx, minlength=r.shape[1]))])


def victor_purpura(a: np.ndarray, b: np.ndarray, q: float) -> np.ndarray:
    """Victor-Purpura distance per neuron, shape (N,) float64.

    Deleting or inserting a spike costs 1, moving one by ``dt`` ticks costs ``q * |dt|``;
    the distance is the cheapest edit of A's train into B's (dynamic programming per
    neuron, O(n_a * n_b), compiled). ``q = 0`` gives ``|n_a - n_b|``; a large ``q`` gives
    the number of non-coincident spikes.
    """
    _check_pair(a, b)
    if q < 0:
        raise ValueError(f"q must be >= 0, got {q}")
    out = np.zeros(a.shape[1])
    _victor_purpura_csr(*_spike_ticks(np.asarray(a, bool)), *_spike_ticks(np.asarray(b, bool)), float(q), out)
    return out


def first_divergence(a: np.ndarray, b: np.ndarray, lag: int = 0) -> np.ndarray:
    """Per neuron, A's first tick where A and B (shifted by ``lag``) differ; -1 if they never do.

    Shape (N,) int64. Only the overlap of :func:`aligned` is compared.
    """
    a_part, b_part, start = aligned(a, b, lag)
    diff = a_part != b_part
    return np.where(diff.any(axis=0), diff.argmax(axis=0) + start, -1).astype(np.int64)


def first_divergence_overall(a: np.ndarray, b: np.ndarray, lag: int = 0) -> int:
    """The first tick where any neuron differs (see :func:`first_divergence`); -1 if none does."""
    ticks = first_divergence(a, b, lag)
    ticks = ticks[ticks >= 0]
    return int(ticks.min()) if ticks.size else -1


def per_neuron_table(
    a: np.ndarray, b: np.ndarray, lag: int = 0, window: int = 1, tau: float = 5.0, q: float = 0.5
) -> list[dict[str, Any]]:
    """One row (a dict of plain ints / floats) per neuron.

    Columns: ``neuron``, ``count_a``, ``count_b``, ``coinc_lag0``, ``coinc_at_lag``
    (exact, at ``lag``), ``coinc_window_at_lag`` (within ``+-window``, at ``lag``),
    ``van_rossum_at_lag`` (``tau``), ``victor_purpura_at_lag`` (``q``),
    ``first_divergence_lag0`` and ``first_divergence_at_lag`` (ticks of A; ``None`` = never).
    """
    a_part, b_part, _ = aligned(a, b, lag)
    columns = {
        "count_a": spike_counts(a),
        "count_b": spike_counts(b),
        "coinc_lag0": coincidences(a, b, 0),
        "coinc_at_lag": coincidences(a, b, lag),
        "coinc_window_at_lag": windowed_coincidences(a, b, window, lag),
        "van_rossum_at_lag": van_rossum(a_part, b_part, tau),
        "victor_purpura_at_lag": victor_purpura(a_part, b_part, q),
        "first_divergence_lag0": first_divergence(a, b, 0),
        "first_divergence_at_lag": first_divergence(a, b, lag),
    }
    rows = []
    for n in range(a.shape[1]):
        row: dict[str, Any] = {"neuron": n}
        for name, values in columns.items():
            value = values[n].item()
            row[name] = None if name.startswith("first_divergence") and value < 0 else value
        rows.append(row)
    return rows


def predicted_classes(spikes, tick_axis: int = 1) -> np.ndarray:
    """THE classification rule: per sample, the output neuron with the most spikes over the
    run; ties, including no spikes at all, go to the lowest index. ``spikes``: the output
    population's 0/1 spikes, e.g. (B, T, N) with ``tick_axis=1`` (a torch tensor too)."""
    return classes_from_counts(np.asarray(spikes).sum(axis=tick_axis))


def classes_from_counts(counts) -> np.ndarray:
    """:func:`predicted_classes` from the output neurons' spike counts, (..., N)."""
    return np.argmax(np.asarray(counts), axis=-1)


def output_margins(counts, truth) -> np.ndarray:
    """Per sample, the true class's spike count minus the largest count of any other class: a
    continuous measure of how surely a sample is classified right (> 0: right by that many
    spikes; < 0 or a tie at 0: wrong), with more statistical power than right / wrong.
    ``counts``: (B, N) output spike counts; ``truth``: (B,) class per sample."""
    counts = np.asarray(counts, np.int64)
    truth = np.asarray(truth).reshape(-1)
    rows = np.arange(counts.shape[0])
    own = counts[rows, truth]
    others = counts.copy()
    others[rows, truth] = np.iinfo(np.int64).min
    return own - (others.max(axis=1) if counts.shape[1] > 1 else 0)


def class_agreement(pred_a: np.ndarray, pred_b: np.ndarray) -> dict[str, Any]:
    """How often two runs predict the same class for the samples of a dataset.

    ``pred_a``, ``pred_b``: 1-D integer class per sample. Returns ``n`` (samples),
    ``agree`` (count), ``fraction``, ``classes`` (sorted labels seen) and
    ``confusion`` (rows: A's class, columns: B's class, in ``classes`` order).
    """
    pred_a, pred_b = np.asarray(pred_a), np.asarray(pred_b)
    if pred_a.ndim != 1 or pred_a.shape != pred_b.shape:
        raise ValueError(f"predictions must be 1-D and of one length, got {pred_a.shape} and {pred_b.shape}")
    if pred_a.size == 0:
        raise ValueError("no predictions to compare")
    for p in (pred_a, pred_b):
        if p.dtype.kind not in "iu":
            raise ValueError(f"predicted classes must be integers, got dtype {p.dtype}")
    classes, inverse = np.unique(np.concatenate([pred_a, pred_b]), return_inverse=True)
    ia, ib = inverse[: pred_a.size], inverse[pred_a.size :]
    confusion = np.zeros((classes.size, classes.size), dtype=np.int64)
    np.add.at(confusion, (ia, ib), 1)
    agree = int((pred_a == pred_b).sum())
    return {
        "n": int(pred_a.size),
        "agree": agree,
        "fraction": agree / pred_a.size,
        "classes": classes.tolist(),
        "confusion": confusion.tolist(),
    }
