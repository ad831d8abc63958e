"""A projection's synapses as lists, sorted by pre then post neuron: generated from its
kind (dense, conv2d, one-to-one, a connection list), sum pooling folded in, in NIR's
(C, H, W) neuron order or in the (H, W, C) order in which the engine stores a
population fed by a conv2d (:mod:`emu.engine.layout`). A conv2d's list is generated
in either order directly, as runs over its output channels where the post is
channels-last; other lists are sorted (:func:`sort_pairs`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from emu.network import Population, Projection, pooled_shape


@dataclass
class SynapseRuns:
    """A projection's synapses as runs of consecutive post neurons, sorted by pre, then post:
    synapse ``(i, k)`` is ``(pre[i], post[i] + k, table[row[i], k])`` (``table[i, k]`` where
    ``row`` is None). A conv2d into a channels-last population: runs over its output
    channels, each a row of its kernel, so its list is a fraction of a flat one's size."""

    pre: np.ndarray
    post: np.ndarray
    table: np.ndarray  # (rows, run length)
    row: Optional[np.ndarray] = None

    @property
    def run(self) -> int:
        return self.table.shape[1]

    def weights(self, a: int = 0, b: Optional[int] = None) -> np.ndarray:
        """The weights of runs ``a:b``, (runs, run length)."""
        return self.table[a:b] if self.row is None else self.table[self.row[a:b]]

    def flat(self):
        """(pre_index, post_index, weight): one entry per synapse."""
        w = self.weights().reshape(-1)
        if self.run == 1:
            return self.pre, self.post, w
        return np.repeat(self.pre, self.run), (self.post[:, None] + np.arange(self.run)).reshape(-1), w


def synapse_list(pr: Projection, pre: Population, post: Population, channels_last=(False, False)):
    """(pre_index, post_index, weight) arrays of every synapse, sorted by pre then post
    (:func:`synapse_runs`, one entry per synapse)."""
    return synapse_runs(pr, pre, post, channels_last).flat()


def synapse_runs(pr: Projection, pre: Population, post: Population, channels_last=(False, False)) -> SynapseRuns:
    """Every synapse of a projection, sorted by pre then post.

    Sum pooling is folded in: every pre neuron inside a pooling window gets the
    synapses of the window's pooled neuron. ``channels_last``: whether the pre and the
    post indices are those of an (H, W, C) layout (:func:`channels_last_perm`; the
    engine stores a population fed by a conv2d so) instead of NIR's (C, H, W), the
    list sorted in that order. A conv2d's list is generated in its order directly.
    """
    if pr.kind == "conv2d":
        return _conv_synapses(pre.shape, pr.pool, pr.weight, pr.stride, pr.padding, post.shape, channels_last)
    src = pooled_shape(pre.shape, pr.pool, pr.label)
    if pr.kind == "dense":
        n_post, n_src = pr.weight.shape
        s, q = np.meshgrid(np.arange(n_src), np.arange(n_post), indexing="ij")
        src_idx, post_idx, w = s.ravel(), q.ravel(), pr.weight.T.flatten()
    elif pr.kind == "one_to_one":
        src_idx, post_idx, w = np.arange(post.size), np.arange(post.size), pr.weight.copy()
    else:
        src_idx, post_idx, w = pr.connections[:, 0].copy(), pr.connections[:, 1].copy(), pr.weight.copy()
    # fresh arrays (none is a view of the projection's): the sort may hand them back as they are
    src_idx, post_idx, w = sort_pairs(src_idx, post_idx, w)
    if pr.pool > 1:
        src_idx, post_idx, w = _pooled(src_idx, post_idx, w, pre.shape, pr.pool, int(np.prod(src)))
    if any(channels_last):
        perms = [channels_last_perm(p.shape) if cl else None for p, cl in zip((pre, post), channels_last)]
        src_idx, post_idx = (idx if perm is None else perm[idx] for idx, perm in zip((src_idx, post_idx), perms))
        src_idx, post_idx, w = sort_pairs(src_idx, post_idx, w)
    return SynapseRuns(src_idx.astype(np.int64, copy=False), post_idx.astype(np.int64, copy=False), w[:, None])


def _pooled(src_idx, post_idx, w, pre_shape, pool: int, n_src: int):
    """A pooled source's synapse list (sorted) as its pre neurons': every pre neuron inside
    a pooling window takes the synapses of its source, pre neurons ascending."""
    starts = np.concatenate([[0], np.cumsum(np.bincount(src_idx, minlength=n_src))])
    src_of_pre = _pool_map(pre_shape, pool)
    pre_used = np.flatnonzero(src_of_pre >= 0)
    first = starts[src_of_pre[pre_used]]
    lens = starts[src_of_pre[pre_used] + 1] - first
    pre_idx = np.repeat(pre_used, lens)
    rep = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(first, lens)
    # pre neurons ascending, each with its source's synapses (sorted by post): sorted
    return pre_idx.astype(np.int64), post_idx[rep].astype(np.int64), w[rep]


def channels_last_perm(shape) -> np.ndarray:
    """The (H, W, C) index of each NIR (C, H, W) index of a population of ``shape``."""
    c, h, w = shape
    return np.arange(c * h * w).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)


def _pairs_sorted(major: np.ndarray, minor: np.ndarray, chunk: int = 1 << 18) -> bool:
    """Pairs in (major, minor) order, checked a cache-sized chunk at a time (overlapping
    by one pair), so that an unsorted list is found out in its first chunk."""
    for a in range(0, len(major) - 1, chunk):
        ma, mi = major[a:a + chunk + 1], minor[a:a + chunk + 1]
        step = ma[1:] - ma[:-1]
        if not np.all((step > 0) | ((step == 0) & (mi[1:] >= mi[:-1]))):
            return False
    return True


def sort_pairs(major: np.ndarray, minor: np.ndarray, values: np.ndarray):
    """``(major, minor, values)`` sorted by ``major``, then ``minor``, stably: what indexing
    all three by ``np.lexsort((minor, major))`` gives. Pairs already in order (a dense
    matrix's synapses, a list given in order) come back as they are, without the sort that
    takes seconds for tens of millions of synapses."""
    if _pairs_sorted(major, minor):
        return major, minor, values
    width = int(minor.max()) + 1
    if min(int(major.min()), int(minor.min())) < 0 or (int(major.max()) + 1) * width >= 2**63:
        order = np.lexsort((minor, major))
        return major[order], minor[order], values[order]
    # one int64 key per pair, stably sorted: lexsort's permutation, about 5x faster
    key = major.astype(np.int64, copy=False) * width + minor
    index_bits = max((len(key) - 1).bit_length(), 1)
    if (int(major.max()) + 1) * width > 2 ** (63 - index_bits):
        order = np.argsort(key, kind="stable")
        return major[order], minor[order], values[order]
    # where it fits, each key with its position in the low bits, sorted as plain numbers
    # (numpy's vectorised sort, about 2x faster again; equal keys keep their order), and
    # the sorted pairs read back from the keys instead of gathered
    key <<= index_bits
    key |= np.arange(len(key))
    key.sort()
    order = key & ((1 << index_bits) - 1)
    key >>= index_bits
    sorted_major = key // width
    key -= sorted_major * width
    return sorted_major, key, values[order]


def _pool_map(shape, pool: int) -> np.ndarray:
    """Pooled source index of every pre neuron (-1 for the dropped remainder)."""
    n = int(np.prod(shape))
    if pool == 1:
        return np.arange(n)
    c, h, w = shape
    ph, pw = h // pool, w // pool
    ci, y, x = np.unravel_index(np.arange(n), shape)
    inside = (y < ph * pool) & (x < pw * pool)
    return np.where(inside, (ci * ph + y // pool) * pw + x // pool, -1)


def _conv_synapses(pre_shape, pool: int, weight, stride, padding, out_shape, channels_last) -> SynapseRuns:
    """Every synapse of a conv2d, sorted by pre, then post, in the orders ``channels_last``
    picks (see :func:`synapse_runs`), pooling folded in.

    Built in that order, without a sort (seconds for tens of millions of synapses):
    which (y, x, dy, dx) reach an output is found once on the source's small grid,
    kernel offsets backwards (a larger dy reaches a smaller output row), so that each
    source position's outputs come out ascending. Every pre neuron, in its order, takes
    the entries of its source's position. Into a channels-last post an entry is one run
    over the output channels (a row of ``C_out`` kernel weights, gathered whole); into a
    NIR post it expands into one synapse per output channel, outermost."""
    pre_cl, post_cl = channels_last
    c_in, h, w = pooled_shape(pre_shape, pool)
    c_out, _, kh, kw = weight.shape
    _, oh, ow = out_shape

    def reach(n, k, pad, step, n_out):
        # per input position and kernel offset (backwards): the output position, and whether it exists
        d = np.arange(k)[::-1]
        t = np.arange(n)[:, None] + pad - d
        o = t // step
        return d, o, (t % step == 0) & (o >= 0) & (o < n_out)

    dy, oy, ok_y = reach(h, kh, padding[0], stride[0], oh)
    dx, ox, ok_x = reach(w, kw, padding[1], stride[1], ow)
    ok = ok_y[:, None, :, None] & ok_x[None, :, None, :]  # (y, x, ky, kx)
    y, x, ky, kx = np.nonzero(ok)  # the entries, by source position, then outputs ascending
    out_pos = oy[y, ky] * ow + ox[x, kx]
    kernel_pos = dy[ky] * kw + dx[kx]
    per_pos = ok.sum(axis=(2, 3)).reshape(-1)
    pos_first = np.cumsum(per_pos) - per_pos
    # every pre neuron in its order: its source (channel, position), or none in a pooling remainder
    nir = np.arange(int(np.prod(pre_shape)))
    if pre_cl:
        nir = nir.reshape(pre_shape).transpose(1, 2, 0).reshape(-1)
    src = _pool_map(pre_shape, pool)[nir]
    has = src >= 0
    ci, pos = np.where(has, src // (h * w), 0), np.where(has, src % (h * w), 0)
    n = np.where(has, per_pos[pos], 0)
    n_entries = int(n.sum())
    starts = np.cumsum(n) - n
    j = np.arange(n_entries) - np.repeat(starts, n)  # entry of its pre neuron
    entry = np.repeat(pos_first[pos], n) + j
    pre = np.repeat(np.arange(len(n)), n)
    # (c_in * kh * kw, c_out): an entry's weights to every output channel, one row
    table = weight.transpose(1, 2, 3, 0).reshape(-1, c_out).copy()
    row = np.repeat(ci, n) * (kh * kw) + kernel_pos[entry]
    if post_cl:  # an entry is one run over the output channels
        return SynapseRuns(pre, out_pos[entry] * c_out, table, row)
    # a NIR post: within a pre neuron, output channel outermost
    at = ((np.arange(n_entries) - j) * c_out + j)[:, None] + np.arange(c_out) * np.repeat(n, n)[:, None]
    post, w_out = np.empty((n_entries * c_out, 1), np.int64), np.empty((n_entries * c_out, 1))
    post[at, 0] = out_pos[entry][:, None] + np.arange(c_out) * (oh * ow)
    w_out[at, 0] = table[row]
    return SynapseRuns(np.repeat(pre, c_out), post[:, 0], w_out)
