"""An :class:`emu.network.Network` as an snnTorch model, run in float: the validator's reference.

Built by our own code (not snnTorch's NIR importer), one torch module per
projection and one snnTorch neuron per population:

* dense projections -> ``torch.nn.Linear`` (no bias), conv2d -> ``torch.nn.Conv2d``
  (no bias), one-to-one -> an element-wise product; a fused sum pooling
  (kernel == stride) runs first as ``avg_pool2d(divisor_override=1)``, which is
  the exact sum. Weights are the network's float weights (chip units, *not*
  quantized).
* ``lif`` / ``if`` -> ``snntorch.Leaky(beta=alpha, threshold=threshold,
  reset_mechanism=reset, reset_delay=True)`` (``if``: beta = 1); ``li`` -> ``Leaky``
  with ``reset_mechanism="none"`` and an infinite threshold (it never spikes);
  ``cuba_lif`` -> ``snntorch.Synaptic(alpha=alpha_syn, beta=alpha, ...)``.
* The bias ``i_offset`` is added to the input current of every step. For
  ``Synaptic`` the current passes through the synaptic state, so the runner feeds
  ``b`` at the first step and ``(1 - alpha_syn) * b`` afterwards: then
  ``syn = S + b`` where ``S`` is the pure synaptic current, and the membrane gets
  ``S + b`` exactly as the emulator's ``v = alpha*v + S + i_offset`` (equal in real
  arithmetic; in floating point the sums are grouped differently, last-bit
  differences only).
* Recurrent projections (back edges of :meth:`Network.order`) take the previous
  step's spikes; all other projections deliver in the same step (snnTorch's
  same-step propagation through layers).

What this means, and the known deviations from the emulator's
``SemanticsProfile.snntorch()``:

* **beta is float32.** snnTorch stores ``beta`` (and ``alpha``) with
  ``torch.as_tensor``, which makes a Python float a float32 tensor, so the decay
  a trained snnTorch model really applies is ``float32(beta)`` (0.93 becomes
  0.9300000071525574). The runner does the same by default
  (``decay_dtype=torch.float32``); the emulator's float64 profiles use the
  float64 value. Pick float32-representable decays, or ``decay_dtype=None``
  (decays in ``dtype``), when the two must agree bit for bit. Thresholds,
  weights and biases are kept in ``dtype`` (float64 by default).
* **Thresholds are per-neuron tensors.** snnTorch's spikes are float32 (the
  surrogate's forward is ``(x > 0).float()``) and torch computes a float32
  tensor times a 0-d float64 tensor in float32, so a float64 snnTorch model with
  a scalar threshold subtracts ``float32(threshold)`` at a reset. The runner
  stores thresholds with the population's shape, which keeps the reset in float64.
* **Synaptic's zero reset is not Leaky's.** ``Leaky`` with ``reset_mechanism="zero"``
  computes ``(1 - reset) * mem`` and then adds the step's input (the emulator's
  ``next_tick`` zero reset), but ``Synaptic`` sets the whole membrane of the step
  after a spike to 0, dropping that step's input. The runner runs snnTorch as it
  is, so ``cuba_lif`` with zero reset differs from the emulator there.
* **Delays.** snnTorch has no synaptic delays. ``delays="ignore"`` (default)
  drops the projections' extra delays (the NIR converter adds one to every
  connection for the chip; an snnTorch model never had it) and says how many in
  ``meta["delays_ignored"]``; ``delays="honor"`` delivers spikes ``delay`` steps
  later from a spike history (not something snnTorch itself can express).
* ``v_reset`` other than 0 has no snnTorch equivalent and is refused for zero reset.

Results come back as an :class:`emu.spikes.Recording` (``raster(pop)``, ``v[pop]``
with the membrane snnTorch returns: the pre-reset value, ``spike_counts``), so
every validator function takes them like emulator runs.
"""
from __future__ import annotations

from typing import Dict, Optional, Union

import numpy as np
import snntorch as snn
import torch
import torch.nn.functional as F
from torch import nn

from emu.errors import UserError
from emu.inputs import Inputs, normalize_inputs
from emu.spikes import Recording
from emu.network import Network, Projection
from emu.nir_import import from_nir
from emu.timing import projection_lags


class RunnerError(UserError):
    """A network the snnTorch runner cannot express (the message names population or projection)."""


RESETS = ("subtract", "zero")
DELAYS = ("ignore", "honor")


class SumPool2d(nn.Module):
    """Sum pooling, kernel == stride, remainder dropped: exact sums (``divisor_override=1``)."""

    def __init__(self, kernel_size: int):
        super().__init__()
        self.kernel_size = int(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.kernel_size, divisor_override=1)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


class OneToOne(nn.Module):
    """``y = w * x`` element-wise on the flattened input."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


class Synapse(nn.Module):
    """One projection: [sum pool] -> flatten (dense, one-to-one) -> weights -> post shape."""

    def __init__(self, pr: Projection, pre_shape, post_shape, dtype):
        super().__init__()
        self.post_shape = tuple(post_shape)
        self.pool = SumPool2d(pr.pool) if pr.pool > 1 else None
        w = torch.as_tensor(pr.weight, dtype=dtype)
        self.kind = pr.kind
        if pr.kind == "dense":
            self.layer = nn.Linear(w.shape[1], w.shape[0], bias=False, dtype=dtype)
            self.layer.weight.data.copy_(w)
        elif pr.kind == "conv2d":
            c_out, c_in, kh, kw = w.shape
            self.layer = nn.Conv2d(c_in, c_out, (kh, kw), stride=pr.stride, padding=pr.padding, bias=False,
                                   dtype=dtype)
            self.layer.weight.data.copy_(w)
        else:
            self.layer = OneToOne(w)
        self.layer.requires_grad_(False)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        x = spikes
        if self.pool is not None:
            x = self.pool(x)
        if self.kind != "conv2d":
            x = x.flatten(1)
        return self.layer(x).reshape((x.shape[0],) + self.post_shape)


def _param(values: np.ndarray, shape, dtype) -> torch.Tensor:
    """A per-neuron parameter as snnTorch would hold it: a scalar tensor when uniform."""
    values = np.asarray(values, dtype=np.float64)
    if values.size and np.all(values == values.reshape(-1)[0]):
        return torch.tensor(values.reshape(-1)[0], dtype=dtype)
    return torch.as_tensor(values.reshape(shape), dtype=dtype)


class SnnTorchModel(nn.Module):
    """The snnTorch model of a network; :meth:`run` steps it over time and records every population.

    ``reset``: ``subtract`` or ``zero`` (snnTorch's ``reset_mechanism``);
    ``dtype``: state, weight, threshold and bias dtype (float64 default);
    ``decay_dtype``: dtype of beta/alpha (float32 default, as snnTorch stores a
    Python float; ``None``: ``dtype``); ``delays``: ``ignore`` or ``honor`` (see
    the module doc).
    """

    def __init__(self, network: Network, reset: str = "subtract", dtype: torch.dtype = torch.float64,
                 decay_dtype: Optional[torch.dtype] = torch.float32, delays: str = "ignore"):
        super().__init__()
        if reset not in RESETS:
            raise RunnerError(f"reset must be one of {RESETS}, got {reset!r}")
        if delays not in DELAYS:
            raise RunnerError(f"delays must be one of {DELAYS}, got {delays!r}")
        network.validate()
        self.network = network
        self.reset = reset
        self.dtype = dtype
        self.decay_dtype = decay_dtype or dtype
        self.delays = delays
        self.order = network.order()
        pops = network.populations
        self.synapses = nn.ModuleList()
        self.neurons = nn.ModuleDict()
        self._neuron_key: Dict[str, str] = {}
        self._bias: Dict[str, Optional[torch.Tensor]] = {}
        self._cuba_alpha: Dict[str, torch.Tensor] = {}
        #: per projection: (index, pre, post, lag in steps)
        self.links = []
        lags = projection_lags(network, 0, delays=delays == "honor")
        for j, pr in enumerate(network.projections):
            self.synapses.append(Synapse(pr, pops[pr.pre].shape, pops[pr.post].shape, dtype))
            self.links.append((j, pr.pre, pr.post, lags[j]))
        self.delays_ignored = sum(int(delays == "ignore" and pr.delay > 0) for pr in network.projections)
        for i, name in enumerate(self.order):
            pop = pops[name]
            if pop.model == "input":
                continue
            key = f"n{i}"  # ModuleDict keys may not hold '.'; population names may
            self._neuron_key[name] = key
            shape = pop.shape
            # per neuron, never a 0-d tensor: snnTorch's spikes are float32 ((x > 0).float()), and torch
            # computes float32 spikes * a 0-d float64 threshold in float32, so the subtract reset of a
            # float64 model would remove float32(threshold)
            thr = torch.as_tensor(pop.threshold.reshape(shape), dtype=dtype)
            beta = _param(pop.alpha, shape, self.decay_dtype)
            if reset == "zero" and pop.model != "li" and np.any(pop.v_reset != 0):
                raise RunnerError(f"population {name!r}: v_reset != 0 has no snnTorch equivalent "
                                  f"(snnTorch's zero reset goes to 0)")
            if pop.model == "li":
                neuron = snn.Leaky(beta=beta, threshold=torch.tensor(float("inf"), dtype=dtype),
                                   reset_mechanism="none", reset_delay=True)
            elif pop.model == "cuba_lif":
                alpha_syn = _param(pop.alpha_syn, shape, self.decay_dtype)
                neuron = snn.Synaptic(alpha=alpha_syn, beta=beta, threshold=thr, reset_mechanism=reset,
                                      reset_delay=True)
                self._cuba_alpha[name] = alpha_syn
            else:  # lif, if (alpha = 1 already)
                neuron = snn.Leaky(beta=beta, threshold=thr, reset_mechanism=reset, reset_delay=True)
            self.neurons[key] = neuron
            self._bias[name] = (torch.as_tensor(pop.i_offset.reshape(shape), dtype=dtype)
                                if np.any(pop.i_offset != 0) else None)

    @classmethod
    def from_nir(cls, graph, options=None, **kwargs) -> "SnnTorchModel":
        """Convert a NIR graph (or file) with :func:`emu.nir_import.from_nir`, then build the model."""
        return cls(from_nir(graph, options), **kwargs)

    def neuron(self, population: str) -> nn.Module:
        """The snnTorch neuron module of a population."""
        if population not in self._neuron_key:
            raise KeyError(f"no neuron population {population!r}; populations: {list(self._neuron_key)}")
        return self.neurons[self._neuron_key[population]]

    def run(self, inputs: Inputs, ticks: Optional[int] = None, progress: Optional[bool] = None,
            threads: Optional[int] = None) -> Recording:
        """Run every sample for ``ticks`` steps (default: input length); inputs as for the emulator.

        Returns a :class:`Recording` with every population's spikes and (for
        neuron populations) the membrane snnTorch returns at every step.
        ``threads``: torch threads during the run (restored afterwards). Default:
        1 when a step is small (batch x neurons < 1e6), where waking torch's thread
        pool costs far more than the work it shares, else torch's setting.
        """
        rasters, ticks = normalize_inputs(self.network, inputs, ticks)
        batch = next(iter(rasters.values())).shape[0]
        if threads is None and batch * sum(p.size for p in self.network.populations.values()) < 1e6:
            threads = 1
        before = torch.get_num_threads()
        try:
            if threads:
                torch.set_num_threads(int(threads))
            with torch.no_grad():
                return self._run(rasters, ticks, batch, progress)
        finally:
            torch.set_num_threads(before)

    def _run(self, rasters, ticks: int, batch: int, progress) -> Recording:
        net = self.network
        pops = net.populations
        dt = self.dtype
        x_in = {n: torch.as_tensor(r, dtype=dt).reshape((batch, ticks) + pops[n].shape) for n, r in rasters.items()}
        max_lag = max((lag for *_, lag in self.links), default=0)
        history = {n: [] for n in self.order}  # spikes of the last max_lag + 1 steps
        state = {}
        for name, key in self._neuron_key.items():
            zeros = torch.zeros((batch,) + pops[name].shape, dtype=dt)
            state[name] = (zeros.clone(), zeros.clone()) if pops[name].model == "cuba_lif" else zeros.clone()
        spikes = {n: np.zeros((batch, ticks, pops[n].size), bool) for n in self.order}
        mems = {n: np.zeros((batch, ticks, pops[n].size), np.float64) for n in self._neuron_key}
        pos = {n: i for i, n in enumerate(self.order)}
        # history[pre][-1] is this step's spikes once pre has been updated (it comes earlier in the order)
        incoming = {n: [(j, pre, lag, lag + (pos[pre] < pos[n])) for j, pre, post, lag in self.links if post == n]
                    for n in self.order}
        steps = range(ticks)
        show = progress if progress is not None else batch * ticks * sum(p.size for p in pops.values()) > 5e8
        if show:
            from tqdm import tqdm

            steps = tqdm(steps, desc="snnTorch", unit="step")
        for t in steps:
            for name in self.order:
                pop = pops[name]
                if pop.model == "input":
                    s = x_in[name][:, t]
                else:
                    cur = torch.zeros((batch,) + pop.shape, dtype=dt)
                    for j, pre, lag, back_steps in incoming[name]:
                        if t - lag >= 0:
                            cur = cur + self.synapses[j](history[pre][-back_steps])
                    bias = self._bias[name]
                    neuron = self.neurons[self._neuron_key[name]]
                    if pop.model == "cuba_lif":
                        if bias is not None:
                            cur = cur + (bias if t == 0 else (1 - self._cuba_alpha[name].to(dt)) * bias)
                        syn, mem = state[name]
                        s, syn, mem = neuron(cur, syn, mem)
                        state[name] = (syn, mem)
                    else:
                        if bias is not None:
                            cur = cur + bias
                        s, mem = neuron(cur, state[name])
                        state[name] = mem
                    s = s.to(dt)
                    mems[name][:, t] = mem.reshape(batch, -1).numpy()
                spikes[name][:, t] = s.reshape(batch, -1).numpy() > 0
                hist = history[name]
                hist.append(s)
                if len(hist) > max_lag + 1:
                    del hist[0]
        shapes = {n: net.populations[n].shape for n in self.order}
        return Recording.from_rasters(spikes, shapes, mems, source="snnTorch", meta=dict(
            runner="snntorch", snntorch_version=snn.__version__, reset=self.reset, dtype=str(dt),
            decay_dtype=str(self.decay_dtype), delays=self.delays, delays_ignored=self.delays_ignored,
            ticks=ticks, batch=batch, order=self.order, dt=net.dt,
        ))

    forward = run


def run_snntorch(network: Union[Network, "object"], inputs: Inputs, ticks: Optional[int] = None,
                 reset: str = "subtract", dtype: torch.dtype = torch.float64,
                 decay_dtype: Optional[torch.dtype] = torch.float32, delays: str = "ignore",
                 progress: Optional[bool] = None, options=None, threads: Optional[int] = None) -> Recording:
    """One-line form: build :class:`SnnTorchModel` (from a Network, or a NIR graph / path with
    conversion ``options``) and run it on ``inputs``."""
    if not isinstance(network, Network):
        network = from_nir(network, options)
    model = SnnTorchModel(network, reset=reset, dtype=dtype, decay_dtype=decay_dtype, delays=delays)
    return model.run(inputs, ticks, progress, threads)
