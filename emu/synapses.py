"""Projection geometry: shapes, and the synapse list (pre, post, weight) of a projection.

Everything here works in NIR flat (C, H, W) neuron indices. The engine turns the
synapse list into contiguous rows (see :mod:`emu.compiled`); the numpy reference
does not use it at all (it convolves and multiplies directly), so the two are
independent implementations of the same geometry.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from emu.network import NetworkError, Population, Projection


def pooled_shape(shape: Tuple[int, ...], pool: int, label: str = "") -> Tuple[int, ...]:
    """Shape after sum pooling with kernel == stride == ``pool`` (remainder dropped)."""
    if pool == 1:
        return tuple(shape)
    if len(shape) != 3:
        raise NetworkError(f"projection {label}: sum pooling needs a (C, H, W) population, got shape {shape}")
    c, h, w = shape
    if h < pool or w < pool:
        raise NetworkError(f"projection {label}: pooling window {pool} is larger than the input {shape}")
    return (c, h // pool, w // pool)


def conv_output_shape(in_shape, weight_shape, stride, padding) -> Tuple[int, int, int]:
    c_out, _, kh, kw = weight_shape
    _, h, w = in_shape
    return (c_out, (h + 2 * padding[0] - kh) // stride[0] + 1, (w + 2 * padding[1] - kw) // stride[1] + 1)


def check_projection_shapes(pr: Projection, pre: Population, post: Population) -> None:
    """Raise NetworkError naming the projection if weights do not fit pre and post."""
    src = pooled_shape(pre.shape, pr.pool, pr.label)
    n_src = int(np.prod(src))
    got = tuple(pr.weight.shape)
    fits = {"dense": lambda: got == (post.size, n_src), "one_to_one": lambda: got == (post.size,) and n_src == post.size}
    if pr.kind in fits:
        if not fits[pr.kind]():
            want = (post.size, n_src) if pr.kind == "dense" else (n_src,)
            raise NetworkError(
                f"projection {pr.label}: weight shape {got} does not fit {pr.pre} {pre.shape}"
                f"{f' pooled {pr.pool}x{pr.pool}' if pr.pool > 1 else ''} -> {pr.post} {post.shape}; expected {want}"
            )
        return
    if len(src) != 3 or len(got) != 4 or got[1] != src[0]:
        raise NetworkError(
            f"projection {pr.label}: conv2d weight {got} needs (C_out, {src[0] if len(src) == 3 else 'C_in'}, kh, kw) "
            f"and a (C, H, W) source, got source shape {src}"
        )
    out = conv_output_shape(src, got, pr.stride, pr.padding)
    if min(out) <= 0 or out != tuple(post.shape):
        raise NetworkError(
            f"projection {pr.label}: conv2d of {src} with weight {got}, stride {pr.stride}, padding {pr.padding} "
            f"gives {out}, but population {pr.post} has shape {post.shape}"
        )


def synapse_list(pr: Projection, pre: Population, post: Population):
    """(pre_index, post_index, weight) arrays of every synapse, sorted by pre then post.

    Sum pooling is folded in: every pre neuron inside a pooling window gets the
    synapses of the window's pooled neuron.
    """
    src = pooled_shape(pre.shape, pr.pool, pr.label)
    if pr.kind == "dense":
        n_post, n_src = pr.weight.shape
        s, q = np.meshgrid(np.arange(n_src), np.arange(n_post), indexing="ij")
        src_idx, post_idx, w = s.ravel(), q.ravel(), pr.weight.T.ravel()
    elif pr.kind == "one_to_one":
        src_idx = post_idx = np.arange(post.size)
        w = pr.weight.copy()
    else:
        src_idx, post_idx, w = _conv_synapses(src, pr.weight, pr.stride, pr.padding, post.shape)
    order = np.argsort(src_idx, kind="stable")
    src_idx, post_idx, w = src_idx[order], post_idx[order], w[order]
    starts = np.concatenate([[0], np.cumsum(np.bincount(src_idx, minlength=int(np.prod(src))))])
    # every pre neuron inside a pooling window takes the synapses of its pooled source
    src_of_pre = _pool_map(pre.shape, pr.pool)
    pre_used = np.flatnonzero(src_of_pre >= 0)
    first = starts[src_of_pre[pre_used]]
    lens = starts[src_of_pre[pre_used] + 1] - first
    pre_idx = np.repeat(pre_used, lens)
    rep = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(first, lens)
    post_idx, w = post_idx[rep], w[rep]
    order = np.lexsort((post_idx, pre_idx))
    return pre_idx[order].astype(np.int64), post_idx[order].astype(np.int64), w[order]


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


def _conv_synapses(src_shape, weight, stride, padding, out_shape):
    c_in, h, w = src_shape
    c_out, _, kh, kw = weight.shape
    _, oh, ow = out_shape
    ci, y, x, co, dy, dx = np.meshgrid(
        np.arange(c_in), np.arange(h), np.arange(w), np.arange(c_out), np.arange(kh), np.arange(kw), indexing="ij"
    )
    ny, nx = y + padding[0] - dy, x + padding[1] - dx
    oy, ox = ny // stride[0], nx // stride[1]
    ok = (ny % stride[0] == 0) & (nx % stride[1] == 0) & (oy >= 0) & (oy < oh) & (ox >= 0) & (ox < ow)
    ci, y, x, co, dy, dx, oy, ox = (a[ok] for a in (ci, y, x, co, dy, dx, oy, ox))
    return (ci * h + y) * w + x, (co * oh + oy) * ow + ox, weight[co, ci, dy, dx]
