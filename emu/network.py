"""The network model: populations, projections, network (plain dataclasses, as nir),
and the geometry of a projection (its shapes; its synapse list: :mod:`emu.synapses`).

All numbers are in *chip units*: thresholds, biases and weights already carry the
converter's scale, so what the chip holds is what is stored here (before weight
quantization, which the :class:`~emu.profile.SemanticsProfile` applies). Neuron
indices are always the NIR flat (C, H, W) order.

The engine turns a projection's synapse list (:func:`emu.synapses.synapse_list`) into
contiguous rows (:mod:`emu.engine.layout`); the numpy reference does not use it at all
(it convolves and multiplies directly), so the two are independent implementations of
the same geometry.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from emu.errors import UserError

NEURON_MODELS = ("input", "lif", "if", "li", "cuba_lif")
PROJECTION_KINDS = ("dense", "conv2d", "one_to_one", "sparse")


class NetworkError(UserError):
    """A network is inconsistent (shapes, names, parameters)."""


def topological_order(nodes, edges, first=()) -> List[str]:
    """Nodes in depth-first topological order (``first`` ones start, in node order);
    an edge that closes a cycle is simply not followed.

    The depth-first search runs on an explicit stack over each node's outgoing edges
    (in edge order), so that a chain of thousands of populations neither recurses
    past Python's limit nor scans every edge per node."""
    out_edges = defaultdict(list)
    for a, b in edges:
        out_edges[a].append(b)
    visited, out = set(), []
    first = set(first)
    for root in sorted(nodes, key=lambda n: n not in first):
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(out_edges[root]))]
        while stack:
            node, successors = stack[-1]
            for b in successors:
                if b not in visited:
                    visited.add(b)
                    stack.append((b, iter(out_edges[b])))
                    break
            else:  # every successor done: the node is finished
                stack.pop()
                out.append(node)
    return out[::-1]


def _per_neuron(name: str, field_name: str, value, n: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    arr = arr.reshape(-1)
    if arr.size == 1 and n != 1:
        arr = np.full(n, arr[0])
    if arr.size != n:
        raise NetworkError(f"population {name!r}: {field_name} has {arr.size} values, expected {n}")
    if not np.all(np.isfinite(arr)) and field_name != "threshold":
        raise NetworkError(f"population {name!r}: {field_name} has non-finite values")
    return arr


@dataclass
class Population:
    """A group of neurons with one model and per-neuron parameters (chip units).

    ``model``: ``input`` (spike source), ``lif``, ``if`` (alpha = 1), ``li`` (leaky
    integrator, never spikes) or ``cuba_lif`` (current-based, synaptic decay
    ``alpha_syn``). ``scale`` converts voltages back to NIR units:
    ``v_nir = v_chip / scale``.

    A CubaLIF's bias has two forms, and the profile's ``bias_path`` picks one:
    ``syn_bias`` drives the synaptic current every tick (NIR: ``tau_syn dI/dt = -I +
    w_in (W x + b)``), while the chip converter folds its steady state,
    ``bias_offset``, into ``i_offset`` (straight onto the membrane from tick 0).
    ``i_offset`` always holds the converter's value, ``bias_offset`` included.
    """

    name: str
    shape: Tuple[int, ...]
    model: str = "lif"
    alpha: np.ndarray = None
    threshold: np.ndarray = None
    i_offset: np.ndarray = None
    v_reset: np.ndarray = None
    alpha_syn: Optional[np.ndarray] = None
    scale: np.ndarray = None
    syn_bias: Optional[np.ndarray] = None
    bias_offset: Optional[np.ndarray] = None

    def __post_init__(self):
        self.shape = tuple(int(s) for s in np.atleast_1d(self.shape))
        if self.model not in NEURON_MODELS:
            raise NetworkError(f"population {self.name!r}: unknown model {self.model!r} (one of {NEURON_MODELS})")
        if any(s <= 0 for s in self.shape):
            raise NetworkError(f"population {self.name!r}: shape {self.shape} has an empty axis")
        n = self.size
        defaults = dict(
            alpha=1.0, threshold=np.inf if self.model in ("input", "li") else 1.0, i_offset=0.0, v_reset=0.0, scale=1.0
        )
        for f, d in defaults.items():
            v = getattr(self, f)
            setattr(self, f, _per_neuron(self.name, f, d if v is None else v, n))
        if self.model == "if":
            self.alpha = np.ones(n)
        if self.model == "li":
            self.threshold = np.full(n, np.inf)
        cuba_fields = ("alpha_syn", "syn_bias", "bias_offset")
        if self.model == "cuba_lif":
            for f in cuba_fields:
                setattr(self, f, _per_neuron(self.name, f, 0.0 if getattr(self, f) is None else getattr(self, f), n))
        else:
            for f in cuba_fields:
                if getattr(self, f) is not None:
                    raise NetworkError(f"population {self.name!r}: {f} only applies to model 'cuba_lif'")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class Projection:
    """Synapses from ``pre`` to ``post`` with one extra ``delay`` (ticks).

    ``kind``:
      * ``dense``: ``weight`` (post.size, pre.size after pooling);
      * ``conv2d``: ``weight`` (C_out, C_in, kh, kw), ``stride`` and ``padding``
        (symmetric per axis), acting on the (C, H, W) pre output;
      * ``one_to_one``: ``weight`` (post.size,);
      * ``sparse``: a connection list, as py-spinnaker2 takes one: ``weight`` (n,) and
        ``connections`` (n, 2), the (pre index after pooling, post index) of each
        synapse, every pair at most once. A random network with a fixed fan-in then
        stores its n synapses, not a (post, pre) matrix of mostly zeros.
    ``pool``: sum-pooling window (kernel == stride) applied to the pre output
    before the weights, the chip converter's fusion of SumPool2d.
    Weights are in chip units, before quantization.
    """

    pre: str
    post: str
    weight: np.ndarray
    kind: str = "dense"
    delay: int = 0
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    pool: int = 1
    name: str = ""
    connections: Optional[np.ndarray] = None

    def __post_init__(self):
        if self.kind not in PROJECTION_KINDS:
            raise NetworkError(f"projection {self.label}: unknown kind {self.kind!r} (one of {PROJECTION_KINDS})")
        self.weight = np.asarray(self.weight, dtype=np.float64)
        if (self.kind == "sparse") != (self.connections is not None):
            given = "given" if self.connections is not None else "missing"
            raise NetworkError(f"projection {self.label}: field connections goes with kind 'sparse' only "
                               f"(kind {self.kind!r}, connections {given})")
        if self.connections is not None:
            self.connections = _connection_list(self.connections, self.weight, self.label)
        self.stride = tuple(int(s) for s in np.broadcast_to(self.stride, 2))
        self.padding = tuple(int(p) for p in np.broadcast_to(self.padding, 2))
        if int(self.delay) != self.delay or self.delay < 0:
            raise NetworkError(f"projection {self.label}: delay {self.delay!r} must be an int >= 0")
        self.delay = int(self.delay)
        if not np.all(np.isfinite(self.weight)):
            raise NetworkError(f"projection {self.label}: weight has non-finite values")

    @property
    def label(self) -> str:
        return self.name or f"{self.pre}->{self.post}"


def _connection_list(connections, weight: np.ndarray, label: str) -> np.ndarray:
    """``connections`` as an (n, 2) int64 array matching the n weights, or NetworkError."""
    c = np.asarray(connections)
    if c.ndim != 2 or c.shape[1:] != (2,) or weight.shape != (c.shape[0],):
        raise NetworkError(f"projection {label}: field connections has shape {c.shape} for weight shape "
                           f"{weight.shape}; a sparse projection needs connections (n, 2) and weight (n,)")
    if c.size and (c.dtype.kind not in "iuf" or not np.all(c == np.round(c)) or c.min() < 0):
        raise NetworkError(f"projection {label}: field connections must hold neuron indices (integers >= 0)")
    return c.astype(np.int64)


@dataclass
class Network:
    """Populations (by name, in insertion order) and the projections between them."""

    populations: Dict[str, Population] = field(default_factory=dict)
    projections: List[Projection] = field(default_factory=list)
    dt: float = 1e-3
    meta: dict = field(default_factory=dict)

    def add(self, item):
        if isinstance(item, Population):
            if item.name in self.populations:
                raise NetworkError(f"population {item.name!r} exists already")
            self.populations[item.name] = item
        elif isinstance(item, Projection):
            self.projections.append(item)
        else:
            raise TypeError(f"cannot add {type(item).__name__} to a Network")
        return item

    @property
    def inputs(self) -> List[str]:
        return [p.name for p in self.populations.values() if p.model == "input"]

    def order(self) -> List[str]:
        """Populations in topological order of the feed-forward edges (inputs first).

        An edge that closes a cycle (e.g. a recurrent self-projection) is a back
        edge; see :meth:`back_edges`.
        """
        return topological_order(self.populations, [(pr.pre, pr.post) for pr in self.projections],
                                 first=self.inputs)

    def back_edges(self) -> List[int]:
        """Indices of projections whose post comes no later than their pre in :meth:`order`."""
        pos = {n: i for i, n in enumerate(self.order())}
        return [i for i, pr in enumerate(self.projections) if pos[pr.post] <= pos[pr.pre]]

    def validate(self) -> "Network":
        """Check names and shapes of every projection; raise NetworkError naming it."""
        for pr in self.projections:
            for end in (pr.pre, pr.post):
                if end not in self.populations:
                    raise NetworkError(f"projection {pr.label}: unknown population {end!r}")
            if self.populations[pr.post].model == "input":
                raise NetworkError(f"projection {pr.label}: an input population cannot receive synapses")
            check_projection_shapes(pr, self.populations[pr.pre], self.populations[pr.post])
        if not self.inputs:
            raise NetworkError("network has no input population")
        return self


# geometry ---------------------------------------------------------------------------------


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
    if pr.kind == "sparse":
        _check_connections(pr, n_src, post.size)
        return
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


def _check_connections(pr: Projection, n_src: int, n_post: int) -> None:
    """Every (pre, post) pair of a sparse projection in range and listed once."""
    c = pr.connections
    for col, end, n in ((0, "pre", n_src), (1, "post", n_post)):
        bad = np.flatnonzero(c[:, col] >= n)
        if bad.size:
            pooled = " pooled" if end == "pre" and pr.pool > 1 else ""
            raise NetworkError(f"projection {pr.label}: connection {int(bad[0])} has {end} index "
                               f"{int(c[bad[0], col])}, but {getattr(pr, end)}{pooled} has {n} neurons")
    key = np.sort(c[:, 0] * n_post + c[:, 1])
    dup = np.flatnonzero(key[1:] == key[:-1])
    if dup.size:
        k = int(key[dup[0]])
        raise NetworkError(f"projection {pr.label}: the pair (pre {k // n_post}, post {k % n_post}) is listed "
                           "more than once; give each pair one weight (their sum)")
