"""The float reference's links: every path from one population to another, the torch layers
that compute it, and how its current is computed for a whole chunk of ticks at once.

A link is a path ``[SumPool2d] [Flatten] weight [Flatten]`` from population ``pre`` to
``post`` (:func:`graph_links`); :class:`Path` holds its torch layers with the graph's own
weights and biases. Its current for a chunk of ticks (:class:`LinkCurrent`) has the bits
a tick-by-tick stepper's torch layers give, one of two ways:

* **exact sums**: when every value the path computes (each product of a weight and its
  input, each partial sum, the bias) is an integer multiple of one power of two, below
  ``2**53`` of it (:func:`exact_bound`), every float64 addition is exact and no order of
  additions can change a bit. The link is then a sparse product of the spikes with the
  path's matrix (:func:`path_matrix`, its windows from torch's own ``unfold``): one
  addition per spike and synapse, where a dense layer makes one per neuron and synapse;
  where the matrix would be large, its torch layers run on the chunk with time folded
  into the batch. Weights trained in float32 are float32 values (24 significant bits): a
  layer is exact unless they span more than about 2**29, from the largest row sum down
  to the smallest weight's last bit.
* **torch's order**, otherwise: its torch layers run tick by tick on the run's whole
  batch, each tick's spikes laid out as a tick-by-tick stepper holds them, since MKL's
  float64 sums depend on the rows of a call and on the input's address and strides
  (folding ticks into the batch moved last bits, and with them a spike whose membrane sat
  on its threshold).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import nir
import numpy as np
import torch
import torch.nn.functional as F
from numba import njit
from torch import nn

from emu.errors import UserError
from emu.network import topological_order

NEURONS = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI)
WEIGHTS = (nir.Affine, nir.Linear, nir.Conv2d)
#: a path's sparse matrix is built only up to this many entries (16 bytes each); a larger
#: exact link runs its torch layers on the folded chunk instead
MATRIX_ENTRIES = 1 << 24
NONE = np.zeros(0)
#: rows (ticks x samples) per torch call of an exact link's folded layers: torch's float64
#: conv unfolds a whole call's input at once, so larger calls leave the cache
FOLDED_ROWS = 64


class FloatReferenceError(UserError):
    """A graph or setting the float reference cannot express (the message names node and field)."""


@dataclass(frozen=True)
class Link:
    """A path from population ``pre`` to ``post`` through ``nodes`` (pooling, flatten, one weight node)."""

    pre: str
    post: str
    nodes: Tuple[str, ...]
    lag: int = 0


def _vec(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def graph_links(graph: nir.NIRGraph) -> Tuple[List[str], List[Link]]:
    """Populations (Input and neuron nodes) in topological order, and every path between two
    of them through at most one weight node, with its lag (1 for a back edge, else 0)."""
    succ: Dict[str, List[str]] = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        if a not in graph.nodes or b not in graph.nodes:
            raise FloatReferenceError(f"edge ({a!r}, {b!r}) names an unknown node")
        succ[a].append(b)
    pops = [n for n, node in graph.nodes.items() if isinstance(node, (nir.Input,) + NEURONS)]
    for name, node in graph.nodes.items():
        if not isinstance(node, (nir.Input, nir.Output, nir.Flatten, nir.SumPool2d) + NEURONS + WEIGHTS):
            raise FloatReferenceError(f"node {name!r}: {type(node).__name__} has no float reference "
                                      f"(Input, Output, Affine, Linear, Conv2d, SumPool2d, Flatten, LIF, IF, LI, CubaLIF)")
    links = []
    for pre in pops:
        stack = [(s, ()) for s in succ[pre]]
        while stack:
            name, via = stack.pop()
            node = graph.nodes[name]
            if isinstance(node, nir.Output):
                continue
            if isinstance(node, (nir.Input,) + NEURONS):
                links.append(Link(pre, name, via))
                continue
            stack.extend((s, via + (name,)) for s in succ[name])
    inputs = [n for n in pops if isinstance(graph.nodes[n], nir.Input)]
    order = topological_order(pops, [(lk.pre, lk.post) for lk in links], first=inputs)
    pos = {n: i for i, n in enumerate(order)}
    links = [Link(lk.pre, lk.post, lk.nodes, 1 if pos[lk.post] <= pos[lk.pre] else 0) for lk in links]
    return order, sorted(links, key=lambda lk: (pos[lk.post], pos[lk.pre], lk.nodes))


class SumPool(nn.Module):
    """NIR SumPool2d: the exact sum over each window (``avg_pool2d`` with ``divisor_override=1``)."""

    def __init__(self, node: nir.SumPool2d):
        super().__init__()
        self.k = tuple(int(v) for v in np.broadcast_to(node.kernel_size, 2))
        self.s = tuple(int(v) for v in np.broadcast_to(node.stride, 2))
        self.p = tuple(int(v) for v in np.broadcast_to(node.padding, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.k, self.s, self.p, divisor_override=1)


class Path(nn.Module):
    """The torch layers of one link, in graph order."""

    def __init__(self, graph: nir.NIRGraph, names: Tuple[str, ...], dtype):
        super().__init__()
        self.ops = nn.ModuleList()
        for name in names:
            node = graph.nodes[name]
            if isinstance(node, nir.Conv2d):
                w = torch.as_tensor(_vec(node.weight), dtype=dtype)
                pad = node.padding if isinstance(node.padding, str) else tuple(int(p) for p in np.atleast_1d(node.padding))
                layer = nn.Conv2d(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[2:]),
                                  stride=tuple(int(s) for s in np.broadcast_to(node.stride, 2)), padding=pad,
                                  dilation=tuple(int(d) for d in np.broadcast_to(node.dilation, 2)),
                                  groups=int(node.groups), bias=True, dtype=dtype)
                layer.weight.data.copy_(w)
                layer.bias.data.copy_(torch.as_tensor(np.broadcast_to(_vec(node.bias), w.shape[:1]).copy(), dtype=dtype))
            elif isinstance(node, (nir.Affine, nir.Linear)):
                w = torch.as_tensor(_vec(node.weight), dtype=dtype)
                layer = nn.Linear(w.shape[1], w.shape[0], bias=isinstance(node, nir.Affine), dtype=dtype)
                layer.weight.data.copy_(w)
                if isinstance(node, nir.Affine):
                    layer.bias.data.copy_(torch.as_tensor(np.broadcast_to(_vec(node.bias), w.shape[:1]).copy(), dtype=dtype))
            elif isinstance(node, nir.SumPool2d):
                layer = SumPool(node)
            else:  # Flatten
                layer = nn.Flatten(int(node.start_dim) + 1 if int(node.start_dim) >= 0 else int(node.start_dim),
                                   int(node.end_dim) + 1 if int(node.end_dim) >= 0 else int(node.end_dim))
            layer.requires_grad_(False)
            self.ops.append(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            x = op(x)
        return x

    def trace(self, pre_shape: Tuple[int, ...], dtype) -> Tuple[List[Tuple[int, ...]], torch.Tensor]:
        """The neuron shape entering each layer and leaving the last, and the output for silence (1, ...)."""
        x = torch.zeros((1,) + tuple(pre_shape), dtype=dtype)
        shapes = [tuple(x.shape[1:])]
        with torch.no_grad():
            for op in self.ops:
                x = op(x)
                shapes.append(tuple(x.shape[1:]))
        return shapes, x


# exact sums ---------------------------------------------------------------------------------
def grid_exponent(values: np.ndarray) -> float:
    """The largest ``q`` with every value an integer multiple of ``2**q`` (``inf`` if all are 0)."""
    v = np.abs(np.asarray(values, np.float64).reshape(-1))
    v = v[v != 0]
    if v.size == 0:
        return math.inf
    mant, exp = np.frexp(v)  # v = mant * 2**exp, 0.5 <= mant < 1: mant * 2**53 is an integer
    ints = (mant * 2.0 ** 53).astype(np.int64)
    return float((exp - 53 + np.log2(ints & -ints).astype(np.int64)).min())


@dataclass(frozen=True)
class Bound:
    """What a tensor may hold: integer multiples of ``2**q`` of magnitude at most ``m``."""

    q: float
    m: float

    def exact(self, digits: int) -> bool:
        """Whether every such value, so every partial sum of such values, is a float of ``digits``
        significant bits (one bit spare for the rounding of ``m`` itself)."""
        return self.m == 0 or (math.isfinite(self.q) and self.m < math.ldexp(1.0, int(digits - 1 + self.q)))


def exact_bound(path: Path, dtype) -> Optional[Bound]:
    """The bound of the path's output on 0/1 spikes if every layer computes it exactly in
    ``dtype``, else None."""
    digits = int(-np.log2(torch.finfo(dtype).eps)) + 1
    b = Bound(0.0, 1.0)
    for op in path.ops:
        if isinstance(op, SumPool):
            b = Bound(b.q, b.m * op.k[0] * op.k[1])
        elif isinstance(op, (nn.Linear, nn.Conv2d)):
            w = op.weight.detach().double().numpy()
            bias = op.bias.detach().double().numpy() if op.bias is not None else np.zeros(1)
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(bias))):
                return None
            rows = np.abs(w.reshape(w.shape[0], -1)).sum(axis=1).max(initial=0.0)
            b = Bound(min(b.q + grid_exponent(w), grid_exponent(bias)), b.m * rows + np.abs(bias).max(initial=0.0))
        if not b.exact(digits):
            return None
    return b


# the sparse matrix of a path --------------------------------------------------------------
def _index_map(shape: Tuple[int, ...]) -> torch.Tensor:
    """Each neuron's flat index + 1 as a (1, C, H, W) float64 image (0 marks padding once unfolded)."""
    return torch.arange(1, int(np.prod(shape)) + 1, dtype=torch.float64).reshape((1,) + tuple(shape))


def _windows(shape: Tuple[int, ...], kernel, stride, padding, dilation) -> np.ndarray:
    """torch's own unfold of the index map: (C * kh * kw, L) flat input index per window cell, -1 outside."""
    idx = _index_map(shape)
    if isinstance(padding, str):  # torch's 'same': d * (k - 1) in all, the odd one on the right
        if padding == "valid":
            padding = (0, 0)
        else:
            total = [d * (k - 1) for d, k in zip(dilation, kernel)]
            idx = F.pad(idx, (total[1] // 2, total[1] - total[1] // 2, total[0] // 2, total[0] - total[0] // 2))
            padding = (0, 0)
    cols = F.unfold(idx, tuple(kernel), dilation=tuple(dilation), padding=tuple(padding), stride=tuple(stride))
    return cols[0].numpy().astype(np.int64) - 1


def _layer_matrix(op, shape: Tuple[int, ...], out_shape: Tuple[int, ...]):
    """(src, dst, weight) of one layer without its bias: flat input index -> flat output index."""
    if isinstance(op, nn.Flatten):
        n = np.arange(int(np.prod(shape)))
        return n, n, np.ones(n.size)
    if isinstance(op, SumPool):
        cols = _windows(shape, op.k, op.s, op.p, (1, 1)).reshape(shape[0], op.k[0] * op.k[1], -1)
        c, _, pos = np.indices(cols.shape)
        src, dst = cols.reshape(-1), (c * cols.shape[2] + pos).reshape(-1)
        assert cols.shape[0] * cols.shape[2] == int(np.prod(out_shape)), (shape, out_shape)
        keep = src >= 0
        return src[keep], dst[keep], np.ones(int(keep.sum()))
    if isinstance(op, nn.Linear):
        w = op.weight.detach().double().numpy()
        o, k = np.nonzero(w)
        prefix = np.arange(int(np.prod(shape[:-1]))).reshape(-1, 1)
        return ((prefix * w.shape[1] + k).reshape(-1), (prefix * w.shape[0] + o).reshape(-1),
                np.broadcast_to(w[o, k], (prefix.size, o.size)).reshape(-1))
    w = op.weight.detach().double().numpy()  # Conv2d
    cols = _windows(shape, w.shape[2:], op.stride, op.padding, op.dilation)
    assert w.shape[0] * cols.shape[1] == int(np.prod(out_shape)), (shape, out_shape)
    per_group = w.shape[1] * w.shape[2] * w.shape[3]
    out_per_group = w.shape[0] // op.groups
    co, j = np.nonzero(w.reshape(w.shape[0], -1))
    src = cols[(co // out_per_group) * per_group + j]  # (nonzero weights, L)
    dst = co[:, None] * cols.shape[1] + np.arange(cols.shape[1])
    val = np.broadcast_to(w.reshape(w.shape[0], -1)[co, j][:, None], src.shape)
    keep = src >= 0
    return src[keep], dst[keep], val[keep]


def _layer_entries(op, shape: Tuple[int, ...], out_shape: Tuple[int, ...]) -> int:
    """An upper bound of a layer's matrix entries, known before building it."""
    if isinstance(op, nn.Conv2d):
        return int(np.prod(op.weight.shape[1:])) * int(np.prod(out_shape))
    if isinstance(op, nn.Linear):
        return int(np.prod(shape[:-1])) * int(op.weight.numel())
    if isinstance(op, SumPool):
        return int(np.prod(out_shape)) * op.k[0] * op.k[1]
    return int(np.prod(shape))


def _compose(a: Tuple[np.ndarray, ...], b: Tuple[np.ndarray, ...], n_mid: int):
    """The product of two (src, dst, value) matrices (duplicates kept), None past :data:`MATRIX_ENTRIES`."""
    order = np.argsort(b[0], kind="stable")
    b_src, b_dst, b_val = b[0][order], b[1][order], b[2][order]
    start = np.searchsorted(b_src, np.arange(n_mid + 1))
    count = start[a[1] + 1] - start[a[1]]
    if int(count.sum()) > MATRIX_ENTRIES:
        return None
    first = np.repeat(start[a[1]] - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
    return np.repeat(a[0], count), b_dst[first], np.repeat(a[2], count) * b_val[first]


@dataclass(frozen=True)
class PathMatrix:
    """A path as a sparse matrix, rows by pre neuron (CSR), and its output on silence."""

    indptr: np.ndarray  # (n_pre + 1,) int64
    dst: np.ndarray     # (entries,) int64: post neuron (flat)
    weight: np.ndarray  # (entries,) float64
    bias: np.ndarray    # (n_post,) float64: the path's output for a silent pre, + 0.0 (never -0.0)


def path_matrix(path: Path, pre_shape: Tuple[int, ...], dtype) -> Optional[PathMatrix]:
    """The path as a :class:`PathMatrix` (None where it would exceed :data:`MATRIX_ENTRIES`).

    Only for a path whose sums are exact (:func:`exact_bound`): then the product of 0/1
    spikes with this matrix, plus ``bias``, in any order, is the path's output bit for bit."""
    shapes, silent = path.trace(pre_shape, dtype)
    if any(_layer_entries(op, *s) > MATRIX_ENTRIES for op, s in zip(path.ops, zip(shapes, shapes[1:]))):
        return None
    n_pre = int(np.prod(pre_shape))
    mat = (np.arange(n_pre), np.arange(n_pre), np.ones(n_pre))
    for op, shape, out_shape in zip(path.ops, shapes, shapes[1:]):
        mat = _compose(mat, _layer_matrix(op, shape, out_shape), int(np.prod(shape)))
        if mat is None:
            return None
    n_post = int(np.prod(shapes[-1]))
    key = mat[0] * n_post + mat[1]
    order = np.argsort(key, kind="stable")
    key, val = key[order], mat[2][order]
    if key.size:  # duplicates summed (exact)
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        key, val = key[first], np.add.reduceat(val, first)
    keep = val != 0
    key, val = key[keep], val[keep]
    bias = silent.reshape(-1).double().numpy() + 0.0
    indptr = np.searchsorted(key // n_post, np.arange(n_pre + 1)).astype(np.int64)
    return PathMatrix(indptr, (key % n_post).astype(np.int64), val.astype(np.float64), bias)


@njit(cache=True, nogil=True)
def scatter_spikes(rows, cols, indptr, dst, weight, bias, scale, shift, out):  # pragma: no cover - compiled
    """Row r of ``out``: ``bias`` plus, for every spike (``rows`` ascending, pre neuron ``cols``)
    of row r, the weights of its synapses; then times ``scale`` and plus ``shift``, where they
    are given (else of length 0). One row at a time, so that it stays in the cache."""
    k = 0
    for r in range(out.shape[0]):
        row = out[r]
        row[:] = bias
        while k < rows.size and rows[k] == r:
            i = cols[k]
            for m in range(indptr[i], indptr[i + 1]):
                row[dst[m]] += weight[m]
            k += 1
        if scale.size:
            for j in range(row.size):
                row[j] = row[j] * scale[j]
        if shift.size:
            for j in range(row.size):
                row[j] = row[j] + shift[j]


# a link's current for a chunk of ticks ----------------------------------------------------
@dataclass
class Chunk:
    """A population's spikes over a chunk of ticks, in the forms the links read."""

    train: torch.Tensor  # (ticks, batch, *shape) bool
    events: Tuple[np.ndarray, np.ndarray]  # its nonzero: (row = tick * batch + sample, flat neuron)
    tick: Callable[[int], torch.Tensor]  # tick t's spikes (batch, *shape) in dtype, laid out as a
    # tick-by-tick stepper holds them (MKL's inexact sums depend on the address and strides)


@dataclass
class LinkCurrent:
    """How one link's current is computed for a chunk (module doc): through ``matrix`` (exact),
    by its torch layers on the folded chunk (exact, no matrix), or by its torch layers tick by
    tick (not exact)."""

    link: Link
    path: Path
    post_shape: Tuple[int, ...]
    exact: bool
    matrix: Optional[PathMatrix]

    def __call__(self, pre: Chunk, dtype, scale: np.ndarray = NONE, shift: np.ndarray = NONE) -> torch.Tensor:
        """The current (ticks, batch, *post_shape) of the chunk; with a matrix in float64, times
        ``scale`` and plus ``shift`` (flat float64 arrays, or of length 0: none) in the same pass."""
        ticks, batch = pre.train.shape[:2]
        if self.matrix is not None:
            out = np.empty((ticks * batch, self.matrix.bias.size))
            scatter_spikes(pre.events[0], pre.events[1], self.matrix.indptr, self.matrix.dst, self.matrix.weight,
                           self.matrix.bias, scale, shift, out)
            return torch.from_numpy(out).to(dtype).reshape((ticks, batch) + self.post_shape)
        with torch.no_grad():
            if self.exact:
                x = pre.train.reshape((ticks * batch,) + tuple(pre.train.shape[2:])).to(dtype)
                rows = max(FOLDED_ROWS // batch, 1) * batch
                out = torch.cat([self.path(x[i:i + rows]) for i in range(0, x.shape[0], rows)])
            else:
                out = torch.cat([self.path(pre.tick(t)) for t in range(ticks)])
        return out.reshape((ticks, batch) + self.post_shape)


def link_currents(links: Sequence[Link], paths: Sequence[Path], shapes: Dict[str, Tuple[int, ...]],
                  dtype) -> List[LinkCurrent]:
    out = []
    for lk, path in zip(links, paths):
        exact = exact_bound(path, dtype) is not None
        matrix = path_matrix(path, shapes[lk.pre], dtype) if exact else None
        out.append(LinkCurrent(lk, path, shapes[lk.post], exact, matrix))
    return out
