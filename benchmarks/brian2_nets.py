"""The workloads of ``bench_brian2.py``, and the same networks in brian2 (and the conv net in norse).

Three workloads, each an emulator :class:`~emu.network.Network`, its profile and a seeded
input (every process that builds one gets the same numbers):

* ``braille``: the public braille CubaLIF RNN (12 -> CubaLIF(40) with a recurrent
  Linear -> CubaLIF(7)), converted as ``tests/`` convert it (dt 1e-4 s, automatic weight
  scaling, ``conn_delay=0``, the converter's default exponential integrator), subtract reset,
  Bernoulli input;
* ``dense``: one dense layer, 1,000 inputs -> 10,000 LIF, random int8 weights, zero reset;
* ``dvs``: the DVS-gesture paper conv net of ``dvs_network.py`` (random int8 weights,
  thresholds calibrated by the caller), subtract reset.

:class:`Brian2Net` builds any such network in brian2 with the chip's update written out as
brian2 statements (``emu/neuron.py``): per tick, ``syn = alpha_syn*syn + inp`` (CubaLIF),
``v = alpha*v + drive``, ``v = v + i_offset``, then ``v > v_th`` and in the same tick
``v = v - v_th`` or ``v = v_reset``. What brian2 computes, and why it equals the emulator's
``brian2`` profile:

* state ``v``, ``syn``, ``inp`` in float64 (brian2's default float type); parameters are the
  population's values rounded to float32 and held as float64 (py-spinnaker2's brian2 backend);
* weights truncated toward zero to integers in [-127, 127] (``astype(int8)`` without the
  wrap); their sums are exact in float64, so the order in which brian2 adds them is free;
* the 1-tick synaptic latency is brian2's schedule: spikes found in the ``thresholds`` slot of
  tick t are added to ``inp`` in the ``synapses`` slot of the same tick, and the neuron update
  (a ``run_regularly`` in the ``groups`` slot) consumes and clears ``inp`` at tick t + 1; a
  projection's extra delay d is a synaptic delay of d ticks;
* each floating-point step is its own two-operand statement, so neither sympy (which may reorder
  a sum) nor the compiler may change the order of roundings; the cython target is compiled
  without ``-ffast-math`` and with ``-ffp-contract=off`` (no fused multiply-add: brian2's default
  ``-ffast-math -march=native`` leaves gcc free to round ``alpha*v + inp`` once instead of twice,
  or to reassociate). With brian2's default flags the spikes of the full braille and conv
  workloads were identical too (checked once), but only these flags make it a rule.

A batch of B samples is one brian2 network holding B independent copies of every population
and projection (neuron ``b*N + i`` is neuron ``i`` of sample ``b``): one ``run()`` call for the
whole batch, since every ``run()`` call costs brian2 a fixed code-generation time. Synapses
of weight 0 are not created (adding 0 changes no sum).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dvs_network import ALPHA, build_network, random_input, random_weights  # noqa: E402
from emu.network import Network, Population, Projection
from emu.synapses import synapse_list  # noqa: E402
from emu.nir_import import ConversionOptions, from_nir  # noqa: E402
from emu.profile import SemanticsProfile  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BRAILLE_NIR = ROOT / "tests" / "data" / "braille_rnn" / "braille_noDelay_noBias_subtract.nir"
WORKLOADS = ("braille", "dense", "dvs")
WEIGHT_MAX = 127
# gcc flags of brian2's cython target: its defaults less -ffast-math, and no contraction into FMA
CYTHON_FLAGS = ["-w", "-O3", "-ffp-contract=off", "-march=native", "-std=c++17"]


@dataclass
class Workload:
    """A network, the profile it runs under, and its input (B, T, N_in) bool."""

    name: str
    network: Network
    profile: SemanticsProfile
    inputs: np.ndarray
    description: str

    @property
    def batch(self) -> int:
        return self.inputs.shape[0]

    @property
    def ticks(self) -> int:
        return self.inputs.shape[1]

    def neuron_populations(self):
        return [n for n, p in self.network.populations.items() if p.model != "input"]


def bernoulli(batch: int, ticks: int, n: int, rate: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((batch, ticks, n), dtype=np.float32) < rate


def braille(quick: bool = False) -> Workload:
    """The braille RNN as tests/ convert it; 140 x 256 ticks (quick: 8 x 64), 10 % input rate."""
    net = from_nir(BRAILLE_NIR, ConversionOptions(dt=1e-4, weight_scale="auto", conn_delay=0))
    batch, ticks = (8, 64) if quick else (140, 256)
    x = bernoulli(batch, ticks, net.populations["input"].size, 0.1, seed=11)
    return Workload("braille", net, SemanticsProfile.brian2(reset_mode="subtract"), x,
                    "braille CubaLIF RNN 12 -> 40 (recurrent) -> 7, subtract reset")


def dense_network(n_in: int = 1000, n_out: int = 10000, threshold: float = 3000.0, seed: int = 12) -> Network:
    """``n_in`` inputs -> ``n_out`` LIF (alpha 0.9), random integer weights in [-120, 127] (a
    slight positive mean, so that the layer's drive grows with the input)."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-120, 128, size=(n_out, n_in)).astype(np.float64)
    net = Network(dt=1e-3, meta={"name": "dense_1000_10000"})
    net.add(Population("in", (n_in,), "input"))
    net.add(Population("lif", (n_out,), "lif", alpha=0.9, threshold=threshold, v_reset=0.0))
    net.add(Projection("in", "lif", w, kind="dense", name="fc"))
    return net


def dense(quick: bool = False) -> Workload:
    """1,000 -> 10,000 LIF, 4 samples x 100 ticks (quick: 100 -> 1,000, 2 x 40), 5 % input rate;
    the thresholds make about 3 % of the layer fire per tick."""
    n_in, n_out, thr, batch, ticks = (100, 1000, 600.0, 2, 40) if quick else (1000, 10000, 3000.0, 4, 100)
    net = dense_network(n_in, n_out, thr)
    x = bernoulli(batch, ticks, n_in, 0.05, seed=13)
    return Workload("dense", net, SemanticsProfile.brian2(reset_mode="zero"), x,
                    f"dense {n_in} -> {n_out} LIF, zero reset")


def dvs(thresholds: Sequence[float], quick: bool = False, seed: int = 0) -> Workload:
    """The paper conv net with ``dvs_network.random_weights(seed)`` and the given thresholds;
    8 samples x 300 ticks (quick: 2 x 60), 2 % input rate."""
    net = build_network(random_weights(seed), thresholds)
    batch, ticks = (2, 60) if quick else (8, 300)
    x = random_input(batch, ticks, seed=seed + 1).reshape(batch, ticks, -1)
    return Workload("dvs", net, SemanticsProfile.brian2(reset_mode="subtract"), x,
                    "DVS-gesture conv net 2x32x32 -> 16x15x15 -> 16x15x15 -> 8x7x7 -> 256 -> 11, subtract reset")


def workload(name: str, quick: bool = False, thresholds: Optional[Sequence[float]] = None) -> Workload:
    if name == "braille":
        return braille(quick)
    if name == "dense":
        return dense(quick)
    if name == "dvs":
        if thresholds is None:
            raise ValueError("the dvs workload needs its calibrated thresholds")
        return dvs(thresholds, quick)
    raise ValueError(f"unknown workload {name!r}; one of {WORKLOADS}")


# brian2 -------------------------------------------------------------------------------------

def float32_params(values: np.ndarray) -> np.ndarray:
    """Parameters as py-spinnaker2's brian2 backend holds them: float32 values in float64."""
    return np.asarray(values, np.float64).astype(np.float32).astype(np.float64)


def integer_weights(w: np.ndarray, label: str) -> np.ndarray:
    """Weights truncated toward zero (the converter's ``astype(int8)``); out of range is an error."""
    q = np.trunc(np.asarray(w, np.float64))
    if np.abs(q).max(initial=0) > WEIGHT_MAX:
        raise ValueError(f"{label}: weights beyond +-{WEIGHT_MAX} after truncation")
    return q


def replicate(idx: np.ndarray, size: int, batch: int) -> np.ndarray:
    """Indices of every sample's copy: ``b * size + idx`` for b in range(batch), sample-major."""
    return (np.arange(batch, dtype=np.int64)[:, None] * size + idx[None, :]).ravel()


def neuron_update(model: str) -> str:
    """The chip's tick (emu/neuron.py) as brian2 statements, one rounding per statement."""
    if model == "cuba_lif":
        return "syn = alpha_syn * syn + inp\nv = alpha * v + syn\nv = v + i_offset\ninp = 0"
    return "v = alpha * v + inp\nv = v + i_offset\ninp = 0"


def neuron_equations(model: str) -> str:
    eqs = ["v : 1", "inp : 1", "alpha : 1 (constant)", "v_th : 1 (constant)", "i_offset : 1 (constant)",
           "v_reset : 1 (constant)"]
    if model == "cuba_lif":
        eqs += ["syn : 1", "alpha_syn : 1 (constant)"]
    return "\n".join(eqs)


def set_cython_flags(b2) -> None:
    b2.prefs.codegen.cpp.extra_compile_args_gcc = list(CYTHON_FLAGS)


class Brian2Net:
    """A :class:`Workload` as one brian2 network of ``batch`` copies (see the module docstring).

    ``target``: brian2's runtime code generation target, ``numpy`` or ``cython``.
    """

    def __init__(self, work: Workload, target: str = "numpy"):
        import brian2 as b2

        self.b2, self.work = b2, work
        b2.prefs.codegen.target = target
        set_cython_flags(b2)
        b2.prefs.core.default_float_dtype = np.float64
        self.dt = work.network.dt * b2.second
        prof = work.profile
        if prof.reset_timing != "same_tick" or prof.synaptic_latency != 1 or prof.arithmetic != "brian2":
            raise ValueError("Brian2Net implements the brian2 profile: same-tick reset, 1-tick latency")
        self.groups, self.monitors = {}, {}
        objects = []
        for name, pop in work.network.populations.items():
            group = self._input_group(pop) if pop.model == "input" else self._neuron_group(pop, prof)
            self.groups[name] = group
            objects.append(group)
            if pop.model != "input":
                self.monitors[name] = b2.SpikeMonitor(group, record=True, name=f"mon_{_ident(name)}")
                objects.append(self.monitors[name])
        for k, pr in enumerate(work.network.projections):
            objects.append(self._synapses(pr, k))
        self.net = b2.Network(*objects)

    def _input_group(self, pop: Population):
        b, t, n = np.nonzero(self.work.inputs)
        indices = b.astype(np.int64) * pop.size + n
        return self.b2.SpikeGeneratorGroup(self.work.batch * pop.size, indices, t * self.dt, dt=self.dt,
                                           name=f"grp_{_ident(pop.name)}")

    def _neuron_group(self, pop: Population, prof: SemanticsProfile):
        if pop.model not in ("lif", "if", "li", "cuba_lif"):
            raise ValueError(f"population {pop.name}: model {pop.model} is not built in brian2 here")
        if pop.model == "cuba_lif" and prof.bias_path != "membrane":
            raise ValueError("only the chip's membrane bias path is built in brian2 here")
        b2, batch = self.b2, self.work.batch
        cond = "v >= v_th" if prof.spike_condition == ">=" else "v > v_th"
        reset = "v = v - v_th" if prof.reset_mode == "subtract" else "v = v_reset"
        g = b2.NeuronGroup(batch * pop.size, neuron_equations(pop.model), threshold=cond, reset=reset,
                           dt=self.dt, name=f"grp_{_ident(pop.name)}")
        params = dict(alpha=pop.alpha, v_th=pop.threshold, i_offset=pop.i_offset, v_reset=pop.v_reset)
        if pop.model == "cuba_lif":
            params["alpha_syn"] = pop.alpha_syn
        for key, value in params.items():
            setattr(g, key, np.tile(float32_params(value), batch))
        g.run_regularly(neuron_update(pop.model), when="groups", name=f"upd_{_ident(pop.name)}")
        return g

    def _synapses(self, pr: Projection, k: int):
        b2, batch = self.b2, self.work.batch
        pops = self.work.network.populations
        pre, post = pops[pr.pre], pops[pr.post]
        i, j, w = synapse_list(pr, pre, post)
        w = integer_weights(w, pr.label)
        keep = w != 0
        i, j, w = i[keep], j[keep], w[keep]
        syn = b2.Synapses(self.groups[pr.pre], self.groups[pr.post], "w : 1 (constant)", on_pre="inp_post += w",
                          delay=pr.delay * self.dt, dt=self.dt, name=f"syn{k}_{_ident(pr.label)}")
        syn.connect(i=replicate(i, pre.size, batch), j=replicate(j, post.size, batch))
        syn.w = np.tile(w, batch)
        return syn

    def run(self) -> None:
        self.net.run(self.work.ticks * self.dt)

    def run_empty_tick(self) -> None:
        """One more ``run()`` call of a single tick: brian2's fixed cost per call."""
        self.net.run(self.dt)

    def rasters(self) -> Dict[str, np.ndarray]:
        """Spikes per neuron population, (B, T, N) bool, NIR neuron order."""
        out = {}
        for name, mon in self.monitors.items():
            n = self.work.network.populations[name].size
            r = np.zeros((self.work.batch, self.work.ticks, n), bool)
            tick = np.rint(np.asarray(mon.t_) / float(self.dt)).astype(np.int64)
            idx = np.asarray(mon.i, np.int64)
            keep = tick < self.work.ticks
            r[idx[keep] // n, tick[keep], idx[keep] % n] = True
            out[name] = r
        return out


def _ident(name: str) -> str:
    """A brian2 object name from a population or projection name."""
    return "".join(c if c.isalnum() else "_" for c in name)


# norse --------------------------------------------------------------------------------------

#: the conv net's weight layers in order, and whether the previous layer's spikes are sum-pooled first
NORSE_STAGES = (("conv1", False), ("conv2", False), ("conv3", True), ("fc1", True), ("fc2", False))

def norse_dvs(weights: Dict[str, np.ndarray], thresholds: Sequence[float], dt: float = 1e-3):
    """The paper conv net in norse 1.1.0 (float32, as users run it): ``torch.nn`` Conv2d / Linear
    with the same integer weights, ``LIFBoxCell`` neurons with ``dt * tau_mem_inv = 1 - 0.93``
    (forward Euler: ``v += 0.07 (i - v)``, i.e. ``v = 0.93 v + 0.07 i``), thresholds multiplied
    by 0.07 so that norse's membrane is 0.07 times the chip's, subtract reset in the step of the
    spike, exact sum pooling (``LPPool2d`` of norm 1, nirtorch's mapping of SumPool2d).

    Built from norse modules rather than ``norse.torch.from_nir``: that importer gives a LIF
    norse's default reset to a value (only its CubaLIF takes ``reset_method``), and maps NIR's
    ``Flatten(start_dim=0)`` to ``torch.nn.Flatten(0)``, which would fold the batch axis in.

    Semantics differ from the chip's: norse propagates a spike through every layer within one
    step (no 1-tick latency per connection) and computes in float32, so only spike rates are
    comparable. Returns ``forward(x) -> [spike counts (B, n) per LIF layer]`` for (T, B, ...)
    float input.
    """
    import torch
    from norse.torch.functional.reset import reset_subtract
    from norse.torch.module.lif_box import LIFBoxCell, LIFBoxParameters
    from torch import nn

    gain = 1.0 - ALPHA

    def lif(thr):
        p = LIFBoxParameters(tau_mem_inv=torch.as_tensor(gain / dt), v_th=torch.as_tensor(gain * float(thr)),
                             v_leak=torch.as_tensor(0.0), reset_method=reset_subtract)
        return LIFBoxCell(p, dt=dt)

    def layer(module, name):
        module.weight.data = torch.tensor(weights[name], dtype=torch.float32)
        return module

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = layer(nn.Conv2d(2, 16, 5, stride=2, padding=1, bias=False), "conv1")
            self.conv2 = layer(nn.Conv2d(16, 16, 3, padding=1, bias=False), "conv2")
            self.conv3 = layer(nn.Conv2d(16, 8, 3, padding=1, bias=False), "conv3")
            self.fc1 = layer(nn.Linear(72, 256, bias=False), "fc1")
            self.fc2 = layer(nn.Linear(256, 11, bias=False), "fc2")
            self.pool = nn.LPPool2d(1, 2, 2)
            self.lifs = nn.ModuleList(lif(t) for t in thresholds)

        def forward(self, x):
            states, counts = [None] * len(NORSE_STAGES), [0] * len(NORSE_STAGES)
            for step in x:
                z = step
                for k, (name, pooled) in enumerate(NORSE_STAGES):
                    z = self.pool(z) if pooled else z
                    h = getattr(self, name)(z.flatten(1) if name.startswith("fc") else z)
                    z, states[k] = self.lifs[k](h, states[k])
                    counts[k] = counts[k] + z.flatten(1)
            return counts

    return Net().eval()
