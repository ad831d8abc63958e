"""THE float reference: the user's model, built from the NIR graph by the NIR equations,
run with real snnTorch modules. Never a copy of the chip conversion: its differences
from the emulator are what the validator measures.

Each neuron node of the graph becomes one snnTorch module, each path between two of
them (``[SumPool2d] [Flatten] weight [Flatten]``) the torch layers of its nodes, with
the graph's own weights and biases (``Linear`` / ``Conv2d`` with bias; SumPool2d as
``avg_pool2d(divisor_override=1)``, the exact sum). The NIR equations

    LIF      tau dv/dt = (v_leak - v) + R I                       I = W x + b
    CubaLIF  tau_syn dI/dt = -I + w_in (W x + b)    tau_mem dv/dt = (v_leak - v) + R I
    IF       v += R I per tick                       LI: a LIF that never fires

are stepped with ``dt`` by the chosen integrator, ``a = 1 - dt/tau`` (``forward``) or
``exp(-dt/tau)`` (``exponential``), into snnTorch's update ``mem = beta * mem + input``:

* LIF: ``snntorch.Leaky(beta=a, threshold=v_threshold)``, input
  ``(1 - a) * (R * I + v_leak)`` (``R dt/tau`` and ``dt/tau`` under forward);
* CubaLIF: ``snntorch.Synaptic(alpha=a_syn, beta=a, threshold=v_threshold)``, input
  ``(1 - a) R (1 - a_syn) w_in (W x + b)``: the bias passes through the synaptic
  current, as NIR says (``v_leak`` must be 0: Synaptic has no membrane input);
* IF: ``Leaky(beta=1)``, input ``R I``; LI: ``Leaky`` with ``reset_mechanism="none"``.

Voltages are in NIR units (the emulator reports chip units: ``v_chip = v_nir *
scale``). ``reset``: snnTorch's ``reset_mechanism`` (``subtract`` / ``zero``);
``reset_timing``: ``next_tick`` is snnTorch's default ``reset_delay=True``,
``same_tick`` is ``reset_delay=False``. A recurrent path (a back edge, e.g. a
population projecting to itself) takes last step's spikes, so a recurrent CubaLIF is
``Synaptic`` plus a recurrent ``Linear`` (snnTorch 1.0's ``RSynaptic(reset_delay=False)``
crashes). There are no synaptic delays and no latency: a spike reaches the next layer
in the same step. State and weights are ``dtype`` (float64 by default); decays are
``decay_dtype`` (float32 by default: a Python float given to snnTorch becomes a
float32 tensor, so a trained model's decay is ``float32(beta)``).

``SemanticsProfile.snntorch()`` is the emulator's float profile that should equal
this model spike for spike; ``tests/test_float_reference.py`` checks that they do.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import nir
import numpy as np
import snntorch as snn
import torch
import torch.nn.functional as F
from torch import nn

from emu.errors import UserError
from emu.inputs import normalize_inputs
from emu.network import topological_order
from emu.nir_import import read_nir
from emu.spikes import Recording

NEURONS = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI)
WEIGHTS = (nir.Affine, nir.Linear, nir.Conv2d)
INTEGRATORS = ("forward", "exponential")
RESETS = ("subtract", "zero")
RESET_TIMINGS = ("next_tick", "same_tick")


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


class _Path(nn.Module):
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
                layer = _SumPool(node)
            else:  # Flatten
                layer = nn.Flatten(int(node.start_dim) + 1 if int(node.start_dim) >= 0 else int(node.start_dim),
                                   int(node.end_dim) + 1 if int(node.end_dim) >= 0 else int(node.end_dim))
            layer.requires_grad_(False)
            self.ops.append(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            x = op(x)
        return x


class _SumPool(nn.Module):
    """NIR SumPool2d: the exact sum over each window (``avg_pool2d`` with ``divisor_override=1``)."""

    def __init__(self, node: nir.SumPool2d):
        super().__init__()
        self.k = tuple(int(v) for v in np.broadcast_to(node.kernel_size, 2))
        self.s = tuple(int(v) for v in np.broadcast_to(node.stride, 2))
        self.p = tuple(int(v) for v in np.broadcast_to(node.padding, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.k, self.s, self.p, divisor_override=1)


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


class FloatReference(nn.Module):
    """The user's model as snnTorch runs it (module doc). ``FloatReference(graph, dt)(inputs)``
    has the emulator's call shape and returns a :class:`~emu.spikes.Recording`."""

    def __init__(self, graph: Union[nir.NIRGraph, str, Path], dt: float, integrator: str = "forward",
                 reset: str = "subtract", reset_timing: str = "next_tick", dtype: torch.dtype = torch.float64,
                 decay_dtype: Optional[torch.dtype] = torch.float32):
        super().__init__()
        graph = graph if isinstance(graph, nir.NIRGraph) else read_nir(graph)
        for what, value, allowed in (("integrator", integrator, INTEGRATORS), ("reset", reset, RESETS),
                                     ("reset_timing", reset_timing, RESET_TIMINGS)):
            if value not in allowed:
                raise FloatReferenceError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
        if not (isinstance(dt, (int, float)) and np.isfinite(dt) and dt > 0):
            raise FloatReferenceError(f"dt must be a finite number of seconds > 0, got {dt!r}")
        self.graph, self.dt, self.integrator = graph, float(dt), integrator
        self.reset, self.reset_timing, self.dtype = reset, reset_timing, dtype
        self.decay_dtype = decay_dtype or dtype
        self.order, self.links = graph_links(graph)
        self.inputs = [n for n in self.order if isinstance(graph.nodes[n], nir.Input)]
        if not self.inputs:
            raise FloatReferenceError("graph has no Input node")
        self.paths = nn.ModuleList(_Path(graph, lk.nodes, dtype) for lk in self.links)
        self.shapes = self._shapes()
        self.neurons = nn.ModuleDict()
        self._gain: Dict[str, torch.Tensor] = {}
        self._offset: Dict[str, Optional[torch.Tensor]] = {}
        for i, name in enumerate(self.order):
            if name not in self.inputs:
                self.neurons[f"n{i}"] = self._neuron(name)

    def __reduce__(self):
        """Pickled as its recipe (snnTorch's surrogate gradients are closures that do not pickle):
        a worker process or dask worker builds the same modules from the same graph."""
        return (type(self), (self.graph, self.dt, self.integrator, self.reset, self.reset_timing, self.dtype,
                             self.decay_dtype))

    # building -----------------------------------------------------------------------------
    def _shapes(self) -> Dict[str, Tuple[int, ...]]:
        """Neuron shapes: an Input's declared type, a population's from what its links deliver."""
        shapes = {}
        for name in self.order:
            node = self.graph.nodes[name]
            if isinstance(node, nir.Input):
                shapes[name] = tuple(int(s) for s in np.asarray(node.input_type["input"]).reshape(-1))
                continue
            out = set()
            for lk, path in zip(self.links, self.paths):
                if lk.post == name and lk.pre in shapes:
                    try:
                        with torch.no_grad():
                            out.add(tuple(path(torch.zeros((1,) + shapes[lk.pre], dtype=self.dtype)).shape[1:]))
                    except RuntimeError as exc:  # torch's message names the layer's problem
                        raise FloatReferenceError(f"path {lk.pre!r} -> {' -> '.join(lk.nodes)} -> {name!r}: "
                                                  f"{str(exc).splitlines()[0]}") from None
            if len(out) != 1:
                raise FloatReferenceError(f"node {name!r}: its inputs give shapes {sorted(out) or 'none'}")
            shapes[name] = out.pop()
        return shapes

    def _param(self, name: str, node, field: str) -> np.ndarray:
        shape = self.shapes[name]
        arr = _vec(getattr(node, field))
        if arr.ndim == 1 and len(shape) == 3 and arr.size == shape[0]:
            arr = arr.reshape(-1, 1, 1)  # one value per channel
        try:
            return np.broadcast_to(arr.reshape(shape) if arr.size == int(np.prod(shape)) else arr, shape).copy()
        except ValueError:
            raise FloatReferenceError(f"node {name!r}: field {field} has shape {arr.shape}, which does not fit the "
                                      f"population shape {shape}") from None

    def _decay(self, tau: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(a, 1 - a) of one step of ``tau dv/dt = -v``, by the integrator."""
        if self.integrator == "forward":
            return 1 - self.dt / tau, self.dt / tau
        a = np.exp(-self.dt / tau)
        return a, 1 - a

    def _neuron(self, name: str) -> nn.Module:
        node = self.graph.nodes[name]
        P = lambda f: self._param(name, node, f)  # noqa: E731
        t = lambda x: torch.as_tensor(x, dtype=self.dtype)  # noqa: E731
        d = lambda x: torch.as_tensor(x, dtype=self.decay_dtype)  # noqa: E731
        delay = self.reset_timing == "next_tick"
        if isinstance(node, nir.IF):
            self._gain[name], self._offset[name] = t(P("r")), None
            return snn.Leaky(beta=d(np.ones(self.shapes[name])), threshold=t(P("v_threshold")),
                             reset_mechanism=self.reset, reset_delay=delay)
        if isinstance(node, nir.CubaLIF):
            if np.any(P("v_leak") != 0):
                raise FloatReferenceError(f"node {name!r}: field v_leak != 0 has no input in snnTorch's Synaptic")
            a, frac = self._decay(P("tau_mem"))
            a_syn, frac_syn = self._decay(P("tau_syn"))
            self._gain[name], self._offset[name] = t(P("r") * frac * frac_syn * P("w_in")), None
            return snn.Synaptic(alpha=d(a_syn), beta=d(a), threshold=t(P("v_threshold")), reset_mechanism=self.reset,
                                reset_delay=delay)
        a, frac = self._decay(P("tau"))
        self._gain[name] = t(P("r") * frac)
        self._offset[name] = t(frac * P("v_leak")) if np.any(P("v_leak") != 0) else None
        if isinstance(node, nir.LI):
            return snn.Leaky(beta=d(a), threshold=t(np.full(self.shapes[name], np.inf)), reset_mechanism="none")
        return snn.Leaky(beta=d(a), threshold=t(P("v_threshold")), reset_mechanism=self.reset, reset_delay=delay)

    # running ------------------------------------------------------------------------------
    def forward(self, inputs, ticks: Optional[int] = None, progress: Optional[bool] = None,
                record_v: bool = True) -> Recording:
        return self.run(inputs, ticks, progress, record_v)

    def run(self, inputs, ticks: Optional[int] = None, progress: Optional[bool] = None,
            record_v: bool = True) -> Recording:
        """Spikes (and, with ``record_v``, NIR-unit membranes) of every population for ``ticks``
        steps (default: the input length). ``inputs``: 0/1 rasters per Input node, as the
        emulator takes them ((T, N) or (B, T, N), trailing axes may be the node's shape), or a
        Recording."""
        rasters, ticks = normalize_inputs({n: self.shapes[n] for n in self.inputs}, inputs, ticks)
        batch = next(iter(rasters.values())).shape[0]
        threads = torch.get_num_threads()
        if batch * sum(int(np.prod(s)) for s in self.shapes.values()) < 1e6:
            torch.set_num_threads(1)  # small steps: waking torch's thread pool costs more than it shares
        try:
            with torch.no_grad():
                spikes, mems = self._steps(rasters, ticks, batch, progress, record_v)
        finally:
            torch.set_num_threads(threads)
        meta = dict(runner="float reference (snnTorch)", snntorch_version=snn.__version__, dt=self.dt,
                    integrator=self.integrator, reset=self.reset, reset_timing=self.reset_timing,
                    dtype=str(self.dtype), decay_dtype=str(self.decay_dtype), voltage_units="NIR", ticks=ticks,
                    batch=batch, order=self.order, inputs=list(self.inputs))
        return Recording.from_rasters(spikes, self.shapes, mems, meta=meta, source="float reference (snnTorch)")

    def _steps(self, rasters, ticks: int, batch: int, progress, record_v: bool):
        x_in = {n: torch.as_tensor(r, dtype=self.dtype).reshape((batch, ticks) + self.shapes[n])
                for n, r in rasters.items()}
        neuron = {name: self.neurons[f"n{i}"] for i, name in enumerate(self.order) if name not in self.inputs}
        state = {n: (tuple(torch.zeros((batch,) + self.shapes[n], dtype=self.dtype) for _ in range(2))
                     if isinstance(m, snn.Synaptic) else torch.zeros((batch,) + self.shapes[n], dtype=self.dtype))
                 for n, m in neuron.items()}
        now = {n: torch.zeros((batch,) + self.shapes[n], dtype=self.dtype) for n in self.order}
        spikes = {n: np.zeros((batch, ticks, int(np.prod(self.shapes[n]))), bool) for n in self.order}
        mems = {n: np.zeros((batch, ticks, int(np.prod(self.shapes[n]))), np.float64) for n in neuron} if record_v \
            else {}
        steps = range(ticks)
        if progress if progress is not None else batch * ticks * sum(s.size for s in spikes.values()) > 5e10:
            from tqdm import tqdm

            steps = tqdm(steps, desc="float reference", unit="step")
        for t in steps:
            last = dict(now)  # a back edge reads the previous step's spikes
            for name in self.order:
                if name in self.inputs:
                    s = x_in[name][:, t]
                else:
                    cur = torch.zeros((batch,) + self.shapes[name], dtype=self.dtype)
                    for lk, path in zip(self.links, self.paths):
                        if lk.post == name:
                            cur = cur + path(last[lk.pre] if lk.lag else now[lk.pre])
                    cur = cur * self._gain[name]
                    if self._offset[name] is not None:
                        cur = cur + self._offset[name]
                    if isinstance(neuron[name], snn.Synaptic):
                        s, syn, mem = neuron[name](cur, *state[name])
                        state[name] = (syn, mem)
                    else:
                        s, mem = neuron[name](cur, state[name])
                        state[name] = mem
                    s = s.to(self.dtype)
                    if record_v:
                        mems[name][:, t] = mem.reshape(batch, -1).numpy()
                now[name] = s
                spikes[name][:, t] = s.reshape(batch, -1).numpy() > 0
        return spikes, mems
