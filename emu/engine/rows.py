"""A projection's synapse runs as the weight rows a spike adds (:mod:`emu.engine.layout`
decides which form each projection takes): rows of consecutive post neurons, one
footprint per pre neuron where its rows fit one (:func:`strided_rows`), and pools
holding every distinct row or footprint once (:func:`share_rows`, :func:`footprints`).

Every pass over a list of tens of millions of synapses goes a chunk at a time or
per row: a temporary the size of the list costs more in fresh pages than its
arithmetic.
"""
from __future__ import annotations

import numpy as np

from emu.synapses import SynapseRuns


#: synapses per step of a pass over a synapse list: its temporaries stay in cache, and none
#: is the size of a list of tens of millions (fresh pages cost more than the arithmetic)
CHUNK = 1 << 18


def row_starts(pre: np.ndarray, post: np.ndarray, run: int = 1) -> np.ndarray:
    """Where the rows of sorted runs of ``run`` synapses (see :class:`~emu.synapses.SynapseRuns`)
    start: a new pre neuron, or a run whose first post neuron does not follow the one before's last."""
    parts = [np.zeros(min(len(pre), 1), np.int64)]
    for a in range(1, len(pre), CHUNK):
        p, q = pre[a - 1:a + CHUNK], post[a - 1:a + CHUNK]
        parts.append(np.flatnonzero((p[1:] != p[:-1]) | (q[1:] != q[:-1] + run)) + a)
    return np.concatenate(parts)


def windows(x: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """``x[starts[i]:starts[i] + length]`` for every i, as rows of one array (gathered without
    an index per element)."""
    return np.lib.stride_tricks.sliding_window_view(x, length)[starts]


def rows_by_length(lens: np.ndarray):
    """``(length, rows of that length)`` for every distinct row length, ascending; each
    group's rows in ascending order. One sort, so many distinct lengths cost no more
    than a few."""
    order = np.argsort(lens, kind="stable")
    lengths, first = np.unique(lens[order], return_index=True)
    for length, a, b in zip(lengths, first, np.append(first[1:], len(order))):
        yield int(length), order[a:b]


def share_rows(w: np.ndarray, starts: np.ndarray, lens: np.ndarray):
    """A weight pool holding every distinct row of ``w`` once, and each row's offset in it.

    Rows are ``w[starts[i]:starts[i] + lens[i]]``. A conv projection repeats the same
    few kernel rows for every presynaptic neuron (and pooling repeats rows for every
    neuron of a window); stored once, the weights a spike reads stay in cache. Rows
    are compared bit for bit (so ``-0.0`` and ``0.0`` stay apart): the numbers added
    are exactly those of the unshared rows.
    """
    bits = _bits(w)
    offsets = np.empty(len(starts), np.int64)
    parts, size = [], 0
    for length, sel in rows_by_length(lens):
        rows = windows(bits, starts[sel], length)
        uniq, inv = _unique_rows(rows)
        offsets[sel] = size + inv * length
        parts.append(uniq.reshape(-1))
        size += uniq.size
    pool = np.concatenate(parts).view(np.float64) if parts else np.zeros(0)
    return pool, offsets


def _bits(w: np.ndarray) -> np.ndarray:
    """Float64 weights as their int64 bit patterns (rows compared bit for bit)."""
    return np.ascontiguousarray(w, dtype=np.float64).view(np.int64)


def share_blocks(blocks: np.ndarray):
    """:func:`share_rows` of the rows of ``blocks`` (n, length), one after the other: a pool of
    its distinct rows and each row's offset in it."""
    uniq, inv = _unique_rows(_bits(blocks))
    return uniq.reshape(-1).view(np.float64), inv * blocks.shape[1]


def row_hash_multipliers(length: int) -> np.ndarray:
    """Odd 64-bit multipliers of :func:`_unique_rows`' row hash (fixed: builds are repeatable)."""
    return np.random.default_rng(0).integers(1, 2**62, size=length, dtype=np.int64) * 2 + 1


def _unique_rows(rows: np.ndarray):
    """``np.unique(rows, axis=0, return_inverse=True)`` for an int64 matrix, the unique rows
    in the order they first occur, by a 64-bit hash of each row: a sort of one number per
    row instead of whole rows (seconds for a large conv). The rows are compared exactly
    afterwards; a hash collision falls back to ``np.unique``."""
    h = rows @ row_hash_multipliers(rows.shape[1])  # wraps around in int64
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    by_first = np.argsort(first)  # unique rows in the order they first occur
    rank = np.empty_like(by_first)
    rank[by_first] = np.arange(len(by_first))
    uniq, inv = rows[first[by_first]], rank[inv.reshape(-1)]
    step = max(CHUNK // max(rows.shape[1], 1), 1)
    if not all(np.array_equal(uniq[inv[a:a + step]], rows[a:a + step]) for a in range(0, len(rows), step)):
        uniq, inv = np.unique(rows, axis=0, return_inverse=True)
    return uniq, inv.reshape(-1)


def strided_rows(n_pre: int, pre_of_row: np.ndarray, row_post: np.ndarray, lens: np.ndarray, unit: int,
                 empty_post: int):
    """The rows of a projection as one footprint per pre neuron, or None where that
    would take more than twice the vector adds of its rows one by one.

    Rows ``i`` (pre neuron ``pre_of_row[i]``, first post neuron ``row_post[i]``, ``lens[i]``
    weights, sorted by pre then post) become, for every pre neuron k, ``n_rows`` rows of
    ``width`` weights (a multiple of ``unit``) at ``first[k] + r * stride``: a conv's rows
    are its kernel rows, one output row apart. Rows a neuron lacks (at a border, or for a
    strided conv's other input parity) and lanes past a row's end get zero weights
    (:func:`footprints`). Every spike of the projection then costs the same vector adds,
    found by arithmetic, not by a table. Returns ``(stride, n_rows, width, first, slot)``:
    ``first = empty_post`` for a neuron without synapses, ``slot[i]`` the footprint row
    of row i.
    """
    if len(lens) == 0:
        return None
    firsts = np.flatnonzero(np.r_[True, pre_of_row[1:] != pre_of_row[:-1]])  # each pre neuron's first row
    head = np.full(n_pre, -1, np.int64)
    head[pre_of_row[firsts]] = row_post[firsts]
    rel = row_post - head[pre_of_row]
    width = -(-int(lens.max()) // unit) * unit
    # computed rows run about twice as fast per vector as rows looked up in a table
    budget = 2 * int(np.sum(-(-lens // unit))) + 64
    # the stride divides every offset, so the gcd of the first few bounds it from above and
    # the rows per footprint from below: a scattered list is turned away without the gcd of
    # millions of rows
    few = int(np.gcd.reduce(rel[:4096]))
    if few and n_pre * (int(rel.max()) // few + 1) * width // unit > budget:
        return None
    stride = int(np.gcd.reduce(rel))
    slot = rel // stride if stride else np.zeros_like(rel)
    n_rows = int(slot.max()) + 1
    if n_pre * n_rows * width // unit > budget:
        return None
    return stride, n_rows, width, np.where(head >= 0, head, empty_post), slot


def footprints(runs: SynapseRuns, first: np.ndarray, slot: np.ndarray, n_pre: int, n_rows: int, width: int):
    """Every pre neuron's footprint (:func:`strided_rows`: rows ``first`` of ``runs``, the runs
    each row starts with, at footprint rows ``slot``) as ``n_rows * width`` weights, each
    distinct footprint once in a pool: ``(pool, offset of each neuron's footprint)``, what
    :func:`share_blocks` of all neurons' footprints gives.

    Where the runs' weights are rows of a small table (a conv's kernel), neurons whose
    footprints hold the same table rows at the same places are grouped first, and one
    footprint per group is built: tens of groups instead of a block per neuron."""
    run, n_runs = runs.run, len(runs.pre)
    row_len = np.diff(np.append(first, n_runs))  # runs per row
    if runs.row is None:
        blocks = np.zeros((n_pre * n_rows, width))
        w, pre_of_row = runs.table.reshape(-1), runs.pre[first]
        for length, sel in rows_by_length(row_len * run):  # an index per row, not per weight
            for part in np.array_split(sel, -(-len(sel) * length // CHUNK)):
                blocks[pre_of_row[part] * n_rows + slot[part], :length] = windows(w, first[part] * run, length)
        return share_blocks(blocks.reshape(n_pre, n_rows * width))
    # which table row (+ 1; 0: none) sits at each (footprint row, run of the row) of a neuron
    at = np.arange(n_runs) - np.repeat(first, row_len)
    m = int(row_len.max())
    held = np.zeros((n_pre, n_rows, m), np.int64)
    held[runs.pre, np.repeat(slot, row_len), at] = runs.row + 1
    uniq, group = _unique_rows(held.reshape(n_pre, -1))
    _, rep = np.unique(group, return_index=True)  # each group's first neuron
    if np.any(rep[1:] < rep[:-1]):  # (np.unique's order after a hash collision) groups as they first occur
        by_first = np.argsort(rep)
        rank = np.empty_like(by_first)
        rank[by_first] = np.arange(len(by_first))
        uniq, group = uniq[by_first], rank[group]
    uniq = uniq.reshape(-1, n_rows, m)
    blocks = np.zeros((len(uniq), n_rows, width))
    for k in range(m):
        has = uniq[:, :, k] > 0
        blocks[:, :, k * run:(k + 1) * run][has] = runs.table[uniq[:, :, k][has] - 1]
    # the groups' footprints in the order they first occur: the distinct footprints in the same order
    pool, offsets = share_blocks(blocks.reshape(len(uniq), n_rows * width))
    return pool, offsets[group]
