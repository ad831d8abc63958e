"""Benchmark: how the emulator scales from 10,000 to 1,000,000 neurons.

    python benchmarks/bench_scale.py                      # 10k .. 1M neurons
    python benchmarks/bench_scale.py --quick              # up to 100k
    python benchmarks/bench_scale.py --max-neurons 300000

Three network families, LIF neurons (alpha 0.93, subtract reset), random int8
weights in [-127, 127], Bernoulli input (2 % of the inputs active per tick), one
threshold per layer calibrated at the family's smallest size so that each layer
fires about 3 % of its neurons per tick (the rates of every size are printed):

* ``sparse-random``: in -> L1 -> L2, N/3 neurons each, every neuron reading 100
  distinct random pre neurons, as a connection list (``Projection(kind="sparse")``):
  the engine stores the listed synapses only, so memory grows as N. A spike adds
  its 100 or so scattered synapses one by one (rows of one or two neurons).
* ``dense-blocks``: the same fan-in of 100 as dense rows: each layer
  is split into groups of 100 neurons (populations), each group reading one
  random group of the layer below through a full 100 x 100 dense matrix. This is
  the dense-row path of the engine at 1M neurons (10,000 populations).
* ``conv``: in (2, H, W) -> c1 -> c2 -> c3, 16 channels each, 3x3 kernels, padding
  1, over growing H = W.

Every size runs in a subprocess of its own, so that its peak RSS
(``ru_maxrss``) is its own; the address space of a subprocess is limited to
``--memory-gib`` (+ headroom) so that a size that does not fit fails instead of
exhausting the machine, and the family stops there. Per size the table gives:

* ``syn/n``: synapses per neuron as the engine stores them (``synapses_per_pre``);
  ``fill``: the share of them that is non-zero;
* ``B/syn``: bytes of the compiled network arrays (``Emulator.compiled.arrays``)
  per stored synapse;
* ``net s``: generating the :class:`Network`; ``build s``: ``Emulator(network,
  profile)`` (layout: synapse lists, rows, quantization), wall time; ``build GiB``:
  the subprocess's peak RSS when the build is done (the network included);
* ``run s``: one ``Emulator(...)(inputs)`` call of ``--batch`` samples x
  ``--ticks`` ticks on ``--threads`` numba threads (default 1: the cost of one
  core, which other load on a shared machine disturbs least), the fastest of at
  least ``--repeats`` runs and of 1 s of runs, after a 2-tick warm-up (loads the
  numba kernels);
* ``ns/ev``: run time per synaptic event (``synaptic_events``: spikes of every pre
  neuron times its stored synapses); ``ns/nz-ev``: per non-zero synaptic event;
* ``scat ns/ev``: kernel time of spike handling and scatter per event (the kernel
  time minus that of an all-silent input); ``pass ns/nt``: the neuron pass (the
  silent run's kernel time) per neuron and tick;
* ``rates %``: spikes per neuron per tick of each layer (ticks from 20 on);
* ``peak GiB``: the subprocess's peak RSS.

The summary gives each family's change of ``ns/ev`` from its smallest to its
largest size, the size its peak RSS per synapse would allow under ``--memory-gib``
(and what 1M neurons need), and sizes one SpiNNaker2 chip (152 PEs at the neurons per PE that
``emu.chip.budget.fit_table`` allows for the family, recording spikes of
``--ticks`` ticks) and a 48-chip board, and how far toward the board the largest
run got.

A full run takes several minutes on 2 cores, most of it in the builds of the 1M
sparse-random and dense-blocks networks (the 1M conv network builds in seconds);
``--quick`` about 2.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import numba  # noqa: E402

from bench_dvs_network import KernelTimer  # noqa: E402
from dvs_network import synapses_per_pre, synaptic_events  # noqa: E402
from emu.chip.budget import ChipBudget, fit_table  # noqa: E402
from emu.engine import Emulator  # noqa: E402
from emu.network import Network, Population, Projection  # noqa: E402
from emu.profile import SemanticsProfile  # noqa: E402

ALPHA = 0.93
INPUT_RATE = 0.02
TARGET_RATE = 0.03
FAN_IN = 100
CHANNELS = 16
SILENT = 1e30  # a threshold no layer reaches: layers not yet calibrated stay quiet
RATE_SKIP = 20  # ticks before the layers' rates are counted (the network fills up)
SIZES = (10_000, 30_000, 100_000, 300_000, 1_000_000)
BOARD_CHIPS = 48
GIB = 2 ** 30
RESULT = "RESULT "


# the families ------------------------------------------------------------------------------


def int8_weights(rng: np.random.Generator, shape) -> np.ndarray:
    """Random integers in [-127, 127] as float64 (chip units, exact under int8 quantization)."""
    return rng.integers(-127, 128, size=shape).astype(np.float64)


def lif(name: str, shape, threshold: float) -> Population:
    return Population(name, shape, "lif", alpha=ALPHA, threshold=float(np.float32(threshold)))


def distinct_random(rng: np.random.Generator, n_rows: int, high: int, k: int) -> np.ndarray:
    """(n_rows, k) integers in [0, high), distinct within each row (sorted): duplicates are
    drawn again until none is left (k << high: a few rounds)."""
    cols = rng.integers(0, high, size=(n_rows, k))
    while True:
        cols.sort(axis=1)
        dup = cols[:, 1:] == cols[:, :-1]
        if not dup.any():
            return cols
        cols[:, 1:][dup] = rng.integers(0, high, size=int(dup.sum()))


def sparse_random(n_neurons: int, thresholds: Sequence[float], seed: int = 0) -> Network:
    """in -> L1 -> L2 of n_neurons / 3 each; every L neuron reads FAN_IN distinct random
    neurons of the layer below, listed as (pre, post) pairs."""
    n = n_neurons // 3
    rng = np.random.default_rng(seed)
    net = Network(meta={"name": "sparse_random"})
    net.add(Population("in", (n,), "input"))
    pre = "in"
    for name, thr in zip(("L1", "L2"), thresholds):
        net.add(lif(name, (n,), thr))
        pairs = np.stack([distinct_random(rng, n, n, FAN_IN).ravel(), np.repeat(np.arange(n), FAN_IN)], axis=1)
        net.add(Projection(pre, name, int8_weights(rng, n * FAN_IN), kind="sparse", connections=pairs))
        pre = name
    return net


def dense_blocks(n_neurons: int, thresholds: Sequence[float], seed: int = 0) -> Network:
    """in -> L1 -> L2 split into groups of FAN_IN neurons; group k of a layer reads one
    random group of the layer below through a full FAN_IN x FAN_IN matrix, so every
    stored synapse is a real (non-zero) one."""
    groups = max(1, round(n_neurons / (3 * FAN_IN)))
    rng = np.random.default_rng(seed)
    net = Network(meta={"name": "dense_blocks"})
    for k in range(groups):
        net.add(Population(f"in_{k}", (FAN_IN,), "input"))
    pre = "in"
    for layer, thr in zip(("L1", "L2"), thresholds):
        for k in range(groups):
            net.add(lif(f"{layer}_{k}", (FAN_IN,), thr))
        for k, src in enumerate(rng.permutation(groups)):
            net.add(Projection(f"{pre}_{src}", f"{layer}_{k}", int8_weights(rng, (FAN_IN, FAN_IN))))
        pre = layer
    return net


def conv_stack(n_neurons: int, thresholds: Sequence[float], seed: int = 0) -> Network:
    """in (2, H, W) -> c1 -> c2 -> c3 (CHANNELS, H, W), 3x3 kernels with padding 1, H = W
    chosen so that the whole network has about n_neurons neurons."""
    side = max(3, round(math.sqrt(n_neurons / (2 + 3 * CHANNELS))))
    rng = np.random.default_rng(seed)
    net = Network(meta={"name": "conv_stack"})
    net.add(Population("in", (2, side, side), "input"))
    pre, c_in = "in", 2
    for name, thr in zip(("c1", "c2", "c3"), thresholds):
        net.add(lif(name, (CHANNELS, side, side), thr))
        net.add(Projection(pre, name, int8_weights(rng, (CHANNELS, c_in, 3, 3)), kind="conv2d", padding=(1, 1)))
        pre, c_in = name, CHANNELS
    return net


@dataclass(frozen=True)
class Family:
    name: str
    build: Callable[[int, Sequence[float], int], Network]
    n_layers: int
    sizes: Sequence[int]


FAMILIES = {
    "sparse-random": Family("sparse-random", sparse_random, 2, SIZES),
    "dense-blocks": Family("dense-blocks", dense_blocks, 2, SIZES),
    "conv": Family("conv", conv_stack, 3, SIZES),
}


# measuring -----------------------------------------------------------------------------------


def layer_of(population: str) -> str:
    """Populations named ``L1_17`` belong to layer ``L1`` (the block family's groups)."""
    return population.split("_")[0]


def layers(network: Network) -> Dict[str, List[str]]:
    """Neuron layers in network order, each with its populations."""
    out: Dict[str, List[str]] = {}
    for name, pop in network.populations.items():
        if pop.model != "input":
            out.setdefault(layer_of(name), []).append(name)
    return out


def random_inputs(network: Network, batch: int, ticks: int, seed: int) -> Dict[str, np.ndarray]:
    """(batch, ticks, N) bool per input population, each input active with probability INPUT_RATE."""
    rng = np.random.default_rng(seed)
    names = network.inputs
    sizes = [network.populations[n].size for n in names]
    raster = rng.random((batch, ticks, sum(sizes)), dtype=np.float32) < INPUT_RATE
    return dict(zip(names, np.split(raster, np.cumsum(sizes)[:-1], axis=2)))


def spike_counts(result) -> np.ndarray:
    """Spikes of every neuron (global NIR index), summed over samples and ticks."""
    n = sum(result.sizes.values())
    return sum(np.bincount(nr, minlength=n) for nr in result.neurons)


def layer_rates(result, network: Network, skip: int = RATE_SKIP) -> Dict[str, float]:
    """Spikes per neuron per tick of every layer, ticks from ``skip`` on."""
    starts = np.array(list(result.offsets.values()))
    per_pop = np.zeros(len(starts), np.int64)
    for b in range(result.batch):
        first = int(result.tick_end[b][skip - 1]) if skip else 0
        pop = np.searchsorted(starts, result.neurons[b][first:], side="right") - 1
        per_pop += np.bincount(pop, minlength=len(starts))
    spikes = dict(zip(result.populations, per_pop))
    rates = {}
    for layer, pops in layers(network).items():
        n = sum(network.populations[p].size for p in pops)
        rates[layer] = sum(int(spikes[p]) for p in pops) / (n * result.batch * (result.ticks - skip))
    return rates


def count_events(result, network: Network, fanout: Dict[str, np.ndarray]) -> int:
    """``synaptic_events`` (dvs_network) where the network has few projections; for the
    block family's thousands it counts the spikes of every neuron once instead of
    scanning all spikes once per projection (the same sum)."""
    if len(network.projections) <= 16:
        return synaptic_events(result, network, fanout)
    counts, offsets, sizes = spike_counts(result), result.offsets, result.sizes
    return sum(int(counts[offsets[pr.pre]:offsets[pr.pre] + sizes[pr.pre]] @ fanout[pr.label])
               for pr in network.projections)


def nonzero_share(network: Network, fanout: Dict[str, np.ndarray]) -> float:
    """Share of the stored synapses whose weight is not 0: every dense matrix entry is a
    stored synapse; a conv stores its kernel's share of zeros (exact but for borders)."""
    total = sum(int(f.sum()) for f in fanout.values())
    nonzero = sum(np.count_nonzero(pr.weight) / pr.weight.size * int(fanout[pr.label].sum())
                  for pr in network.projections)
    return nonzero / total


def array_bytes(emulator: Emulator) -> int:
    """Bytes of the compiled network's numpy arrays (what a run streams and scatters from)."""
    return sum(a.nbytes for a in emulator.compiled.arrays if isinstance(a, np.ndarray))


def peak_rss() -> int:
    """This process's peak resident set, bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def fastest_run(emulator: Emulator, inputs, ticks: int, repeats: int, min_seconds: float = 1.0):
    """(result, seconds of the whole call, seconds inside the kernel) of the fastest of at
    least ``repeats`` runs, repeated until ``min_seconds`` have passed: on a shared
    machine the fastest run is the least disturbed one, and short runs need many."""
    best, spent, n = None, 0.0, 0
    while n < repeats or (spent < min_seconds and n < 50):
        with KernelTimer() as kernel:
            t0 = time.perf_counter()
            result = emulator(inputs, ticks=ticks)
            seconds = time.perf_counter() - t0
        if best is None or seconds < best[1]:
            best = (result, seconds, kernel.seconds)
        spent, n = spent + seconds, n + 1
    return best


def measure(family: Family, n_neurons: int, thresholds: Sequence[float], batch: int, ticks: int,
            repeats: int = 3, seed: int = 0) -> dict:
    """One size of one family, in this process: build, warm up, time, count.

    A second input, all silent, runs the neuron pass alone (every neuron is updated
    every tick, nothing is scattered): the kernel time of the real input minus it is
    the time of spike handling and scatter."""
    t0 = time.perf_counter()
    net = family.build(n_neurons, thresholds, seed)
    t1 = time.perf_counter()
    em = Emulator(net, SemanticsProfile.chip())
    t2 = time.perf_counter()
    build_rss = peak_rss()
    x = random_inputs(net, batch, ticks, seed + 1)
    em({k: v[:, :2] for k, v in x.items()}, ticks=2)
    result, run_s, kernel_s = fastest_run(em, x, ticks, repeats)
    _, _, silent_s = fastest_run(em, {k: np.zeros_like(v) for k, v in x.items()}, ticks, repeats)
    fanout = synapses_per_pre({}, net)
    synapses = sum(int(f.sum()) for f in fanout.values())
    return dict(family=family.name, neurons=em.compiled.n_neurons, synapses=synapses,
                nonzero=nonzero_share(net, fanout), array_bytes=array_bytes(em), net_s=t1 - t0,
                build_s=t2 - t1, build_rss=build_rss, run_s=run_s, kernel_s=kernel_s, silent_kernel_s=silent_s,
                events=count_events(result, net, fanout), rates=layer_rates(result, net), peak_rss=peak_rss(),
                batch=batch, ticks=ticks)


# calibration and the chip's size -------------------------------------------------------------


def bisect_threshold(rate: Callable[[float], float], target: float, iters: int = 12) -> float:
    """The float32 threshold whose rate (``rate``, falling as the threshold grows) is
    closest to ``target``: grow until quiet enough, then bisect in log space."""
    lo, hi = 1.0, 4.0
    while rate(hi) > target:
        lo, hi = hi, hi * 4
    for _ in range(iters):
        mid = float(np.float32(math.sqrt(lo * hi)))
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if rate(mid) > target else (lo, mid)
    return lo if abs(rate(lo) - target) <= abs(rate(hi) - target) else hi


class LayerRate:
    """A layer's rate as a function of its threshold, on one compiled network (a trial
    threshold only changes that layer's compiled thresholds, as a rebuild would)."""

    def __init__(self, emulator: Emulator, inputs, ticks: int, layer: str, populations: Sequence[str]):
        self.emulator, self.inputs, self.ticks = emulator, inputs, ticks
        self.layer, self.populations = layer, list(populations)
        self.seen: Dict[float, float] = {}

    def set(self, threshold: float) -> None:
        for p in self.populations:
            self.emulator.compiled.set_threshold(p, threshold)

    def __call__(self, threshold: float) -> float:
        if threshold not in self.seen:
            self.set(threshold)
            result = self.emulator(self.inputs, ticks=self.ticks)
            self.seen[threshold] = layer_rates(result, self.emulator.network)[self.layer]
        return self.seen[threshold]


def calibrate(family: Family, n_neurons: int, batch: int, ticks: int, seed: int = 2,
              target: float = TARGET_RATE) -> List[float]:
    """One threshold per layer giving about ``target`` spikes per neuron per tick, layer by
    layer (a layer's rate depends only on those before it) on one compiled network,
    later layers silent. A neuron's fan-in does not grow with the network, so the
    thresholds found at the smallest size hold for all."""
    net = family.build(n_neurons, [SILENT] * family.n_layers, 0)
    em = Emulator(net, SemanticsProfile.chip())
    x = random_inputs(net, batch, ticks, seed)
    thresholds: List[float] = []
    for layer, pops in layers(net).items():
        rate = LayerRate(em, x, ticks, layer, pops)
        thresholds.append(bisect_threshold(rate, target))
        rate.set(thresholds[-1])
    return thresholds


def chip_capacity(network: Network, ticks: int) -> dict:
    """Neurons of the family's mix that one chip holds under the project's memory model:
    the largest neurons-per-PE (<= the model's limit) at which every population's
    synapses, state and a spike recording of ``ticks`` ticks fit its PEs, then
    152 PEs x (neurons / PEs of the whole network, input PEs included)."""
    budget, profile = ChipBudget(), SemanticsProfile.chip()
    neuron_pops = [n for n, p in network.populations.items() if p.model != "input"]

    def table(per_pe: int) -> dict:
        return fit_table(network, ticks, profile, budget=budget, max_atoms_per_core={n: per_pe for n in neuron_pops})

    def fits(per_pe: int) -> bool:
        return all(r["max_ticks"] is None or (r["free_bytes"] > 0 and r["max_ticks"] >= ticks)
                   for r in table(per_pe)["rows"])

    lo, hi = 1, budget.default_neurons_per_pe
    while lo < hi:  # largest per_pe that fits (fits is monotone in per_pe)
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    t = table(lo)
    neurons = sum(p.size for p in network.populations.values())
    per_chip = budget.pes_per_chip * neurons / t["total_pes"]
    return dict(neurons_per_pe=lo, per_chip=per_chip, per_board=BOARD_CHIPS * per_chip,
                pes_per_chip=budget.pes_per_chip)


# the driver ----------------------------------------------------------------------------------


def run_worker(family: str, n_neurons: int, thresholds: Sequence[float], args, limit_bytes: int) -> dict:
    """``measure`` in a fresh subprocess (its own peak RSS), its address space capped at
    ``limit_bytes``; a dict with ``error`` when it fails (out of memory, ...)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", f"{family}:{n_neurons}",
           "--thresholds", ",".join(repr(t) for t in thresholds), "--batch", str(args.batch),
           "--ticks", str(args.ticks), "--repeats", str(args.repeats), "--threads", str(args.threads)]

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, preexec_fn=cap)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT):])
    tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    return dict(family=family, neurons=n_neurons, error=tail)


COLUMNS = ("family", "neurons", "syn/n", "fill", "B/syn", "net s", "build s", "build GiB", "run s", "events",
           "ns/ev", "ns/nz-ev", "scat ns/ev", "pass ns/nt", "rates %", "peak GiB")
WIDTHS = (12, 9, 6, 6, 6, 6, 7, 9, 6, 8, 6, 8, 10, 10, 15, 8)


def format_row(cells: Sequence[str]) -> str:
    return " ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, WIDTHS)))


def row_cells(r: dict) -> List[str]:
    ns = r["run_s"] * 1e9 / max(r["events"], 1)
    scatter = (r["kernel_s"] - r["silent_kernel_s"]) * 1e9 / max(r["events"], 1)
    neuron_tick = r["silent_kernel_s"] * 1e9 / (r["neurons"] * r["batch"] * r["ticks"])
    rates = "/".join(f"{100 * v:.1f}" for v in r["rates"].values())
    return [r["family"], f"{r['neurons']:,}", f"{r['synapses'] / r['neurons']:.0f}", f"{100 * r['nonzero']:.1f}%",
            f"{r['array_bytes'] / r['synapses']:.2f}", f"{r['net_s']:.1f}", f"{r['build_s']:.2f}",
            f"{r['build_rss'] / GIB:.2f}", f"{r['run_s']:.3f}", f"{r['events']:.2e}", f"{ns:.2f}", f"{ns / r['nonzero']:.2f}", f"{scatter:.2f}",
            f"{neuron_tick:.2f}", rates, f"{r['peak_rss'] / GIB:.2f}"]


def cache_sizes() -> str:
    """The CPU's data caches, as Linux lists them (L1d, L2, L3)."""
    base = "/sys/devices/system/cpu/cpu0/cache"

    def read(entry: str, name: str) -> str:
        with open(os.path.join(base, entry, name)) as f:
            return f.read().strip()

    entries = sorted(e for e in os.listdir(base) if e.startswith("index")) if os.path.isdir(base) else []
    return ", ".join(f"L{read(e, 'level')} {read(e, 'size')}" for e in entries if read(e, "type") != "Instruction")


def memory_limit(run: dict, budget_bytes: float, board: float) -> str:
    """How large the family could grow on this machine, from its largest run: peak RSS
    per stored synapse (the build's temporaries dominate it), extrapolated linearly (every
    family stores a fixed number of synapses per neuron)."""
    per_synapse = run["peak_rss"] / run["synapses"]
    largest = run["neurons"] * budget_bytes / run["peak_rss"]
    need_1m = run["peak_rss"] * 1_000_000 / run["neurons"]
    return (f"peak RSS {per_synapse:.0f} B per stored synapse at {run['neurons']:,} neurons: under "
            f"{budget_bytes / GIB:.0f} GiB about {largest:,.0f} neurons ({largest / board:.2f} boards); "
            f"1M neurons need about {need_1m / GIB:,.0f} GiB")


def summary(name: str, cap: dict, runs: Sequence[dict], ticks: int, budget_bytes: float) -> List[str]:
    """A family's closing lines: how ns/ev changed with size, how far memory would let
    it grow, and its largest run against one chip and the board."""
    lines = []
    if len(runs) > 1:
        first, last = (r["run_s"] / r["events"] * 1e9 for r in (runs[0], runs[-1]))
        lines.append(f"ns/ev {first:.2f} at {runs[0]['neurons']:,} neurons -> {last:.2f} at {runs[-1]['neurons']:,} "
                     f"(x{last / first:.1f}; flat would be x1.0)")
    if runs:
        last = runs[-1]
        lines.append(f"build {last['build_s']:.2f} s (peak RSS {last['build_rss'] / GIB:.2f} GiB) at "
                     f"{last['neurons']:,} neurons: {last['build_s'] / last['run_s']:.1f}x its run of "
                     f"{last['batch']} x {last['ticks']} ticks ({last['run_s']:.3f} s)")
        lines.append(memory_limit(runs[-1], budget_bytes, cap["per_board"]))
    largest = max((r["neurons"] for r in runs), default=0)
    per_pe = cap["per_chip"] / cap["pes_per_chip"]
    lines.append(f"one chip = {cap['pes_per_chip']} PEs x {per_pe:.0f} neurons per PE on average = "
                 f"{cap['per_chip']:,.0f} neurons (memory model: at most {cap['neurons_per_pe']} per PE with spikes of "
                 f"{ticks} ticks recorded; input PEs and part-filled PEs included); a {BOARD_CHIPS}-chip board = "
                 f"{cap['per_board']:,.0f}; largest run {largest:,} neurons = {largest / cap['per_chip']:.1f} chips = "
                 f"{100 * largest / cap['per_board']:.1f} % of the board")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="stop at 100k neurons")
    ap.add_argument("--max-neurons", type=int, default=None, help="largest network size to run")
    ap.add_argument("--families", default=",".join(FAMILIES), help=f"comma-separated, of {', '.join(FAMILIES)}")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--ticks", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per size, at least (the fastest is shown)")
    ap.add_argument("--threads", type=int, default=1, help="numba threads (samples run in parallel); 1 gives the "
                                                          "cost of one core, least disturbed by other load")
    ap.add_argument("--memory-gib", type=float, default=16.0, help="peak RSS target; a subprocess's address space "
                                                                     "is capped a little above it")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--thresholds", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.ticks <= RATE_SKIP:
        ap.error(f"--ticks must be more than {RATE_SKIP}: the layers' rates are counted from tick {RATE_SKIP} on")

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    if args.worker:
        family, size = args.worker.split(":")
        thresholds = [float(t) for t in args.thresholds.split(",")]
        r = measure(FAMILIES[family], int(size), thresholds, args.batch, args.ticks, args.repeats)
        print(RESULT + json.dumps(r))
        return

    max_neurons = args.max_neurons or (100_000 if args.quick else SIZES[-1])
    budget = args.memory_gib * GIB
    limit = int(budget + 4 * GIB)  # numba, thread stacks and malloc arenas reserve address space beyond RSS
    print(f"machine: {os.cpu_count()} cpus ({cache_sizes()}), numba threads {numba.get_num_threads()}, "
          f"load {os.getloadavg()[0]:.2f}; batch {args.batch} x {args.ticks} ticks; input rate {INPUT_RATE:.0%}, "
          f"target rate {TARGET_RATE:.0%}", flush=True)
    results, capacity = [], {}
    for name in args.families.split(","):
        family = FAMILIES[name]
        sizes = [s for s in family.sizes if s <= max_neurons]
        if not sizes:
            continue
        t0 = time.perf_counter()
        thresholds = calibrate(family, sizes[0], args.batch, args.ticks)
        capacity[name] = chip_capacity(family.build(sizes[0], thresholds, 0), args.ticks)
        print(f"\n{name}: thresholds {', '.join(f'{t:.6g}' for t in thresholds)} (calibrated at {sizes[0]:,} "
              f"neurons in {time.perf_counter() - t0:.1f} s)", flush=True)
        print(format_row(COLUMNS), flush=True)
        for size in sizes:
            r = run_worker(name, size, thresholds, args, limit)
            results.append(r)
            if "error" in r:
                print(f"{name} {size:,}: stopped (address space capped at {limit / GIB:.0f} GiB): {r['error']}",
                      flush=True)
                break
            print(format_row(row_cells(r)), flush=True)

    print()
    for name, cap in capacity.items():
        runs = [r for r in results if r["family"] == name and "error" not in r]
        for line in summary(name, cap, runs, args.ticks, budget):
            print(f"{name}: {line}")
    worst = max((r["peak_rss"] for r in results if "error" not in r), default=0)
    print(f"largest peak RSS {worst / GIB:.2f} GiB (target <= {args.memory_gib:.0f} GiB)")


if __name__ == "__main__":
    main()
