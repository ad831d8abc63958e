"""The DVS-gesture paper network (SPINNAKER2.md section 6) as a benchmark workload.

Built twice on the same integer weights:

* as an :class:`emu.network.Network` for the emulator (chip units: int8 weights,
  alpha 0.93, subtract reset, pooling folded into the projection after the pooled
  population, as the chip converter does);
* as a plain snnTorch stack (``torch.nn.Conv2d`` / ``Linear`` holding the same
  integers as float32, ``snntorch.Leaky(beta=0.93, subtract reset)``, exact sum
  pooling as ``avg_pool2d * 4``).

Weights are random integers in [-127, 127]; the input is Bernoulli noise (about
2 % of the 2 x 32 x 32 inputs active per tick). Thresholds are calibrated layer by
layer (bisection on a short emulator run) so that each layer fires about 3 % of its
neurons per tick, as a trained network does. Everything is seeded: the same seed
gives the same weights, inputs and thresholds.

Layer sizes: in 2x32x32 (2048) -> pop1 16x15x15 (3600) -> pop2 16x15x15 (3600)
-> [pool 2] pop3 8x7x7 (392) -> [pool 2, flatten 72] pop4 256 -> pop5 11.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from emu.engine import Emulator
from emu.network import Network, Population, Projection
from emu.synapses import synapse_runs
from emu.profile import SemanticsProfile

ALPHA = 0.93
INPUT_SHAPE = (2, 32, 32)
LAYERS = ("pop1", "pop2", "pop3", "pop4", "pop5")
SHAPES = {"in": INPUT_SHAPE, "pop1": (16, 15, 15), "pop2": (16, 15, 15), "pop3": (8, 7, 7),
          "pop4": (256,), "pop5": (11,)}
# (name, pre, post, kind, weight shape, stride, padding, pool)
PROJECTIONS = (
    ("conv1", "in", "pop1", "conv2d", (16, 2, 5, 5), 2, 1, 1),
    ("conv2", "pop1", "pop2", "conv2d", (16, 16, 3, 3), 1, 1, 1),
    ("conv3", "pop2", "pop3", "conv2d", (8, 16, 3, 3), 1, 1, 2),
    ("fc1", "pop3", "pop4", "dense", (256, 72), 1, 0, 2),
    ("fc2", "pop4", "pop5", "dense", (11, 256), 1, 0, 1),
)
INPUT_RATE = 0.02
TARGET_RATE = 0.03


def random_weights(seed: int = 0) -> Dict[str, np.ndarray]:
    """Integer weights in [-127, 127] (float64 arrays holding integers), by projection name."""
    rng = np.random.default_rng(seed)
    return {name: rng.integers(-127, 128, size=shape).astype(np.float64)
            for name, _, _, _, shape, _, _, _ in PROJECTIONS}


def random_input(batch: int, ticks: int, rate: float = INPUT_RATE, seed: int = 1) -> np.ndarray:
    """(batch, ticks, 2, 32, 32) bool: each input active with probability ``rate`` per tick."""
    rng = np.random.default_rng(seed)
    return rng.random((batch, ticks) + INPUT_SHAPE, dtype=np.float32) < rate


def build_network(weights: Dict[str, np.ndarray], thresholds: Sequence[float], alpha: float = ALPHA,
                  upto: Optional[int] = None, classes=None) -> Network:
    """The paper network as an emulator :class:`Network`; ``upto`` keeps only the first
    ``upto`` neuron layers (for calibration). ``classes``: a module with ``Network``,
    ``Population`` and ``Projection`` (default :mod:`emu.network`; ``ab_engine.py``
    passes another version's)."""
    net_cls, pop_cls, proj_cls = ((Network, Population, Projection) if classes is None else
                                  (classes.Network, classes.Population, classes.Projection))
    n_layers = len(LAYERS) if upto is None else upto
    net = net_cls(dt=1e-3, meta={"name": "dvs_gesture_paper_random"})
    net.add(pop_cls("in", INPUT_SHAPE, "input"))
    for name, thr in zip(LAYERS[:n_layers], thresholds):
        net.add(pop_cls(name, SHAPES[name], "lif", alpha=alpha, threshold=float(np.float32(thr))))
    for name, pre, post, kind, _, stride, pad, pool in PROJECTIONS:
        if post in net.populations:
            net.add(proj_cls(pre, post, weights[name], kind=kind, stride=stride, padding=pad, pool=pool,
                             name=name))
    return net


def layer_rates(result, batch: int, ticks: int, skip: int = 0) -> List[float]:
    """Spikes per neuron per tick of every neuron layer (ticks from ``skip`` on)."""
    rates = []
    for name in LAYERS:
        if name not in result.populations:
            break
        lo, n = result.offsets[name], result.sizes[name]
        total = 0
        for b in range(result.batch):
            tk, nr = result.events(b)
            total += int(((nr >= lo) & (nr < lo + n) & (tk >= skip)).sum())
        rates.append(total / (n * batch * (ticks - skip)))
    return rates


def calibrate_thresholds(weights: Dict[str, np.ndarray], target: float = TARGET_RATE, batch: int = 4,
                         ticks: int = 150, skip: int = 20, seed: int = 2, iters: int = 12,
                         profile: Optional[SemanticsProfile] = None, verbose: bool = False) -> List[float]:
    """Thresholds (float32 values) giving about ``target`` spikes per neuron per tick in
    every layer, layer by layer: bisection (in log space) of layer k's threshold on the
    network cut after layer k, with the layers before it already calibrated.
    Deterministic: a fixed calibration input drawn from ``seed``."""
    profile = profile or SemanticsProfile.chip()
    x = random_input(batch, ticks, seed=seed)
    thresholds: List[float] = []
    for k in range(len(LAYERS)):
        # one compiled prefix network per layer; a trial threshold only changes that
        # layer's thresholds in the compiled arrays (what a rebuild would give)
        emu = Emulator(build_network(weights, thresholds + [1.0], upto=k + 1), profile)
        seen = {}

        def rate(thr):
            if thr not in seen:
                emu.compiled.set_threshold(LAYERS[k], thr)
                seen[thr] = layer_rates(emu(x), batch, ticks, skip)[k]
            return seen[thr]

        lo, hi = 1.0, 4.0
        while rate(hi) > target:  # grow until the layer is quiet enough
            lo, hi = hi, hi * 4
        for _ in range(iters):
            mid = float(np.float32(np.sqrt(lo * hi)))
            if mid in (lo, hi):
                break
            if rate(mid) > target:
                lo = mid
            else:
                hi = mid
        thr = lo if abs(rate(lo) - target) <= abs(rate(hi) - target) else hi  # the end closer to the target
        thresholds.append(float(np.float32(thr)))
        if verbose:
            print(f"  calibrated {LAYERS[k]}: threshold={thresholds[-1]:.6g} rate={rate(thr):.4f} "
                  f"({len(seen)} runs)", flush=True)
    return thresholds


def synapses_per_pre(weights: Dict[str, np.ndarray], network: Optional[Network] = None) -> Dict[str, np.ndarray]:
    """Per projection: number of synapses of every pre neuron (NIR order), pooling included."""
    net = network or build_network(weights, [1.0] * len(LAYERS))
    out = {}
    for pr in net.projections:
        pre, post = net.populations[pr.pre], net.populations[pr.post]
        # a conv's synapses as runs over its output channels (channels-last post): the list of a
        # 1M-neuron conv without a number per synapse; the pre neurons stay in NIR order
        runs = synapse_runs(pr, pre, post, channels_last=(False, pr.kind == "conv2d"))
        out[pr.label] = np.bincount(runs.pre, minlength=pre.size) * runs.run
    return out


def synaptic_events(result, network: Network, fanout: Dict[str, np.ndarray]) -> int:
    """Sum over projections of (spikes of each pre neuron) x (its synapses), whole batch."""
    total = 0
    for pr in network.projections:
        lo, n = result.offsets[pr.pre], result.sizes[pr.pre]
        counts = np.zeros(n, np.int64)
        for nr in result.neurons:
            sel = nr[(nr >= lo) & (nr < lo + n)] - lo
            counts += np.bincount(sel, minlength=n)
        total += int(counts @ fanout[pr.label])
    return total


def vector_adds(result, compiled) -> int:
    """The vector adds the engine's scatter runs for ``result`` (whole batch): every spike of
    a population runs, per outgoing footprint projection, its rows times the vectors of a
    row (int16 buffers 16 lanes to a vector, float ones 8), zero lanes included. Only
    footprints are counted (the paper network has nothing else): a projection stored as
    listed rows or as a synapse list is refused rather than counted as none."""
    a = compiled.arrays
    listed = [j for j in range(len(a.proj_width)) if a.proj_width[j] <= 0]
    if listed:
        raise ValueError(f"vector_adds counts footprint projections only; projections {listed} are stored as "
                         "listed rows or synapse lists")
    total = 0
    for p, name in enumerate(compiled.order):
        lo, n = result.offsets[name], result.sizes[name]
        spikes = sum(int(((nr >= lo) & (nr < lo + n)).sum()) for nr in result.neurons)
        for j in range(a.out_ptr[p], a.out_ptr[p + 1]):
            lanes = 16 if a.proj_int_drive[j] else 8
            total += spikes * int(a.proj_rows[j]) * int(a.proj_width[j]) // lanes
    return total


# snnTorch --------------------------------------------------------------------

def snntorch_net(weights: Dict[str, np.ndarray], thresholds: Sequence[float], beta: float = ALPHA):
    """The same network in snnTorch: a torch Module whose ``forward(x, count=False)`` takes
    (T, B, 2, 32, 32) float and returns the output spikes (T, B, 11), or with
    ``count=True`` the spike counts (B, n) of every LIF layer summed over time."""
    import snntorch as snn
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(2, 16, 5, stride=2, padding=1, bias=False)
            self.conv2 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
            self.conv3 = nn.Conv2d(16, 8, 3, padding=1, bias=False)
            self.fc1 = nn.Linear(72, 256, bias=False)
            self.fc2 = nn.Linear(256, 11, bias=False)
            for name in ("conv1", "conv2", "conv3", "fc1", "fc2"):
                getattr(self, name).weight.data = torch.tensor(weights[name], dtype=torch.float32)
            self.lifs = nn.ModuleList(
                snn.Leaky(beta=beta, threshold=float(t), reset_mechanism="subtract") for t in thresholds)

        def forward(self, x, count: bool = False):
            l1, l2, l3, l4, l5 = self.lifs
            m1, m2, m3, m4, m5 = (lif.init_leaky() for lif in self.lifs)
            counts = [0, 0, 0, 0, 0]
            out = []
            for step in x:
                s1, m1 = l1(self.conv1(step), m1)
                s2, m2 = l2(self.conv2(s1), m2)
                s3, m3 = l3(self.conv3(F.avg_pool2d(s2, 2) * 4), m3)  # exact sum pooling
                s4, m4 = l4(self.fc1((F.avg_pool2d(s3, 2) * 4).flatten(1)), m4)
                s5, m5 = l5(self.fc2(s4), m5)
                out.append(s5)
                if count:
                    for i, s in enumerate((s1, s2, s3, s4, s5)):
                        counts[i] = counts[i] + s.flatten(1)
            return counts if count else torch.stack(out)

    return Net().eval()
