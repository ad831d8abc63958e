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

A step is, for every population in the graph's order, its current ``0 + p1 + p2 ...``
(its links' outputs in the links' order) times its gain plus its offset, then its module's
update. The run computes exactly these float64 operations, but not tick by tick: a chunk
of ticks at a time, a feed-forward population's current for the whole chunk at once, its
module stepping only the elementwise recurrence, and a recurrent part (a back edge and
every population on a cycle with it) tick by tick (:mod:`validate.float_steps`). Where a
link's weights put every partial sum on one grid below 2**53 the sums are exact, so their
order cannot matter: such a link is a sparse product of the spikes with its matrix, one
addition per spike and synapse; any other link runs its torch layers tick by tick on the
whole batch, as a tick-by-tick stepper did, whose last bits (MKL's summation order) depend
on the batch and the memory layout (:mod:`validate.float_links`, ``docs/semantics.md``).

``SemanticsProfile.snntorch()`` is the emulator's float profile that should equal
this model spike for spike; ``tests/test_float_reference.py`` checks that they do, and
``tests/test_float_steps.py`` that the chunked run gives a tick-by-tick stepper's bits.
"""
from __future__ import annotations

import copy
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import nir
import numpy as np
import snntorch as snn
import torch
from torch import nn
from tqdm import tqdm

from emu.inputs import normalize_inputs
from emu.nir_import import read_nir
from emu.spikes import Recording

from .float_links import NEURONS, WEIGHTS, FloatReferenceError, Link, graph_links, link_currents
from .float_links import Path as LinkPath
from .float_steps import Run, step_groups, torch_threads

# Link and graph_links live in float_links now; they stay importable from here
__all__ = ["FloatReference", "FloatReferenceError", "Link", "graph_links", "NEURONS", "WEIGHTS"]

INTEGRATORS = ("forward", "exponential")
RESETS = ("subtract", "zero")
RESET_TIMINGS = ("next_tick", "same_tick")
#: a run of more neuron-steps (samples x ticks x neurons) shows a progress bar by default
PROGRESS_STEPS = 1e9
#: neurons per tick (samples x neurons) a worker thread of a split batch needs to gain (measured on
#: the gesture net, 2 cores: 32 samples, 0.3 M, ran 0.85-1.0x as fast on two workers; 132 and 264
#: samples, 1.3 and 2.6 M, 1.4-1.8x)
SPLIT_ELEMENTS = 400_000


class _Stopped(Exception):
    """A worker's run ended early because the caller was interrupted."""


def _vec(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _tensor(x: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """``x`` in ``dtype``; one value (a 0-d tensor) where every neuron has the same: the same
    numbers broadcast, and snnTorch's elementwise steps run faster on a scalar."""
    x = np.asarray(x)
    return torch.as_tensor(x.flat[0] if x.size and np.all(x == x.flat[0]) else x, dtype=dtype)


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
        with torch_threads(1):  # many small torch ops: waking a thread pool costs more than it shares
            self.paths = nn.ModuleList(LinkPath(graph, lk.nodes, dtype) for lk in self.links)
            self.shapes = self._shapes()
            self.neurons = nn.ModuleDict()
            self._gain: Dict[str, torch.Tensor] = {}
            self._offset: Dict[str, Optional[torch.Tensor]] = {}
            for i, name in enumerate(self.order):
                if name not in self.inputs:
                    self.neurons[f"n{i}"] = self._neuron(name)
            # an Input's incoming links are never computed: it takes the given spikes
            live = [(lk, path) for lk, path in zip(self.links, self.paths) if lk.post not in self.inputs]
            self.currents = link_currents([lk for lk, _ in live], [p for _, p in live], self.shapes, dtype)
        self.groups = step_groups(self.order, self.inputs, [lc.link for lc in self.currents])
        self._copies: List[nn.ModuleDict] = []  # the neuron modules of further worker threads
        self.n_neurons = sum(int(np.prod(s)) for s in self.shapes.values())  # in all, inputs included

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
        t = lambda x: _tensor(x, self.dtype)  # noqa: E731
        d = lambda x: _tensor(x, self.decay_dtype)  # noqa: E731
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
    @property
    def batch_independent(self) -> bool:
        """Whether a sample's spikes and voltages are the same bits in any batch: every link's
        sums are exact (an inexact link sums as torch does, which may depend on the batch)."""
        return all(lc.exact for lc in self.currents)

    def _threads(self, batch: int) -> int:
        """torch's threads for a run over ``batch`` samples: one where every link's sums are
        exact. The steps left are elementwise ops on one tick's tensors, where a thread pool's
        wake-up and barriers cost more than it shares (measured on this project's 2-core host:
        a second torch thread made 33 and 264 gesture samples 1.6-2x slower). A link summed in
        torch's order runs tick by tick as a tick-by-tick stepper ran it, with that stepper's
        threads (one below a million neurons in all), since MKL's inexact sums may depend on a
        call's threads."""
        if self.batch_independent:
            return 1
        return 1 if batch * self.n_neurons < 1e6 else torch.get_num_threads()

    def _workers(self, batch: int) -> int:
        """Worker threads for a run over ``batch`` samples: where a sample's bits do not depend on
        its batch (:attr:`batch_independent`), the batch is split over up to the caller's torch
        threads, each worker stepping its part with its own neuron modules, as long as each part
        keeps :data:`SPLIT_ELEMENTS` neurons per tick (below that, a worker's per-step Python
        holds the GIL longer than its ops run). Only from the main thread: a run on another
        thread (the float run beside the emulator's) shares the cores with that thread's work."""
        if not self.batch_independent or threading.current_thread() is not threading.main_thread():
            return 1
        return int(max(1, min(torch.get_num_threads(), batch, batch * self.n_neurons // SPLIT_ELEMENTS)))

    def _worker_neurons(self, worker: int) -> Dict[str, nn.Module]:
        """The neuron modules worker ``worker`` steps (snnTorch's modules keep a step's state in
        themselves): this model's, or copies of them."""
        while len(self._copies) < worker:
            self._copies.append(copy.deepcopy(self.neurons))
        modules = self.neurons if worker == 0 else self._copies[worker - 1]
        return {n: modules[f"n{i}"] for i, n in enumerate(self.order) if n not in self.inputs}

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
        workers = self._workers(batch)
        modules = [self._worker_neurons(w) for w in range(workers)]
        volts = {n: np.zeros((batch, ticks, int(np.prod(self.shapes[n]))), np.float64) for n in modules[0]} \
            if record_v else {}
        steps = batch * ticks * self.n_neurons
        bar = tqdm(total=ticks, desc="float reference", unit="step") \
            if (progress if progress is not None else steps > PROGRESS_STEPS) else None
        stop = threading.Event()  # set when the caller is interrupted: the workers end at their next chunk

        def part(worker: int, lo: int, hi: int) -> List[Tuple[np.ndarray, np.ndarray]]:
            def advance(k: int) -> None:
                if stop.is_set():
                    raise _Stopped
                if bar is not None and worker == 0:  # the workers keep pace: the first one's ticks
                    bar.update(k)

            with torch.no_grad():  # grad mode is per thread
                run = Run(self, {n: r[lo:hi] for n, r in rasters.items()}, ticks, hi - lo, modules[worker],
                          {n: v[lo:hi] for n, v in volts.items()}, advance)
                run.all()
                return run.sample_events()

        bounds = np.linspace(0, batch, workers + 1).round().astype(int)
        try:
            with torch_threads(self._threads(batch)):
                if workers == 1:
                    events = part(0, 0, batch)
                else:
                    with ThreadPoolExecutor(workers, thread_name_prefix="float-reference") as pool:
                        parts = [pool.submit(part, w, lo, hi) for w, (lo, hi) in enumerate(zip(bounds, bounds[1:]))]
                        try:
                            wait(parts, return_when=FIRST_EXCEPTION)  # a failure (or Ctrl-C here) stops all
                            failed = [f.exception() for f in parts if f.done() and f.exception() is not None]
                            if failed:
                                raise failed[0]
                            events = [ev for f in parts for ev in f.result()]
                        except BaseException:
                            stop.set()
                            raise
        finally:
            if bar is not None:
                bar.close()
        meta = dict(runner="float reference (snnTorch)", snntorch_version=snn.__version__, dt=self.dt,
                    integrator=self.integrator, reset=self.reset, reset_timing=self.reset_timing,
                    dtype=str(self.dtype), decay_dtype=str(self.decay_dtype), voltage_units="NIR", ticks=ticks,
                    batch=batch, order=self.order, inputs=list(self.inputs))
        return Recording.from_events(self.shapes, ticks, events, volts, meta=meta,
                                     source="float reference (snnTorch)")
