"""The network model: populations, projections, network (plain dataclasses, as nir).

All numbers are in *chip units*: thresholds, biases and weights already carry the
converter's scale, so what the chip holds is what is stored here (before weight
quantization, which the :class:`~emu.profile.SemanticsProfile` applies). Neuron
indices are always the NIR flat (C, H, W) order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

NEURON_MODELS = ("input", "lif", "if", "li", "cuba_lif")
PROJECTION_KINDS = ("dense", "conv2d", "one_to_one")


class NetworkError(ValueError):
    """A network is inconsistent (shapes, names, parameters)."""


def topological_order(nodes, edges, first=()) -> List[str]:
    """Nodes in depth-first topological order (``first`` ones start, in node order);
    an edge that closes a cycle is simply not followed."""
    names = list(nodes)
    visited, out = set(), []

    def visit(n):
        visited.add(n)
        for a, b in edges:
            if a == n and b not in visited:
                visit(b)
        out.append(n)

    for n in sorted(names, key=lambda n: n not in first):
        if n not in visited:
            visit(n)
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
        if self.model == "cuba_lif":
            self.alpha_syn = _per_neuron(self.name, "alpha_syn", 0.0 if self.alpha_syn is None else self.alpha_syn, n)
        elif self.alpha_syn is not None:
            raise NetworkError(f"population {self.name!r}: alpha_syn only applies to model 'cuba_lif'")

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
      * ``one_to_one``: ``weight`` (post.size,).
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

    def __post_init__(self):
        if self.kind not in PROJECTION_KINDS:
            raise NetworkError(f"projection {self.label}: unknown kind {self.kind!r} (one of {PROJECTION_KINDS})")
        self.weight = np.asarray(self.weight, dtype=np.float64)
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
        from emu.synapses import check_projection_shapes

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
