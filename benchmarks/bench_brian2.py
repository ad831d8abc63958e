"""Benchmark: the emulator against what py-spinnaker2's users would run instead, brian2 (and norse).

    bash scripts/install_bench.sh                # brian2 2.11.0 + Cython into .venv; norse: install_peers.sh
    python benchmarks/bench_brian2.py            # 3 networks, 5 paired runs, brian2 numpy and cython targets
    python benchmarks/bench_brian2.py --quick    # smoke run (~10 s): small sizes, numpy target, identity checked

What each side computes (the networks: ``brian2_nets.py``):

* the emulator: ``Emulator(network, SemanticsProfile.brian2(reset_mode=...))(inputs)``: float64
  membrane and synaptic current, float32-rounded parameters, int8 weights (truncated), one tick
  of synaptic latency, same-tick reset (subtract, or zero for the dense layer);
* brian2 (2.11.0, runtime targets ``numpy`` and ``cython``): the same networks written as brian2
  NeuronGroups / Synapses with the chip's update as statements (``brian2_nets.Brian2Net``): float64
  state, the same float32-rounded parameters held as float64, the same integer weights, the latency
  from brian2's own schedule; the cython target compiled without ``-ffast-math`` and with
  ``-ffp-contract=off`` (brian2's defaults let gcc fuse ``alpha*v + inp`` into one FMA, a
  different rounding from the emulator's and py-spinnaker2's numpy arithmetic; on these
  workloads that changed no spike when tried once, but nothing guarantees it). A batch is one
  brian2 network of B copies run by one ``run()`` call;
* norse 1.1.0 (CPU, float32), on the conv net only: ``torch.nn`` conv / linear layers with the
  same integer weights and ``LIFBoxCell`` neurons scaled to the same decay and threshold
  (``brian2_nets.norse_dvs``). norse has no 1-tick latency per connection (a spike crosses every
  layer in one step) and computes in float32, so its spikes are not the chip's: spike rates per
  layer are compared, not spikes.

Identity: every run of every side saves its spikes, and every brian2 run must equal the
emulator's spike for spike (asserted before any time is printed; the number of spikes compared is
printed per network). All three networks are identical.

Timing: each measurement is a fresh process (``--worker``; imports are not timed), and the
processes of one network alternate (emulator, brian2 numpy, brian2 cython, norse; the order
rotates every round) over ``--repeats`` rounds. Within a process:

* emulator: ``build`` (``Emulator(...)``: the network laid out into arrays), ``first`` call (it
  also loads numba's cached kernels: half a second to a second, once per process) and a second,
  ``steady`` call on the same input;
* brian2: ``build`` (groups, ``connect``, parameters, monitors) and ``run``, one ``run()`` call:
  brian2 generates (and, for cython, loads) the code of every object, then steps the ticks; a
  further ``run()`` of a single tick measures that fixed cost of every ``run()`` call;
* norse: build, first and steady forward pass (``torch.no_grad``).

``speedup_vs_brian2_<target>`` is the median over the rounds of the ratio of one round's brian2
``run`` to the same round's emulator ``steady`` call: the cost of one simulation once the network
is built and compiled (brian2 pays its fixed cost on every ``run()`` call; numba loads its kernels
once per process). ``fresh_process`` is the paired ratio of brian2 ``build + run`` to the
emulator's ``build + first``: one simulation in a new process, compilation aside. One-time
compilation: brian2's cython target compiles every code object once into a cache
(``--cython-cache``; default a fresh temporary folder, so that it is measured): ``compile_s`` is
the first cython process's ``build + run`` minus the median of the later ones. numba compiles the
emulator's kernels once into its disk cache (``python -m emu.engine.warm``); a process that finds
that cache stale (the engine's source changed) compiles again, which can show as a first call of
tens of seconds. ``speedup_vs_norse`` is norse's steady forward over the emulator's steady call.
Every side runs on ``--threads`` threads (default 1: brian2's runtime targets are
single-threaded). ``--quick`` runs every measurement in this one process (no numba load in the
first calls after the first network).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import brian2_nets as nets  # noqa: E402

TARGETS = ("numpy", "cython")
#: dvs_network.calibrate_thresholds(random_weights(0), seed=2, profile=brian2, batch=2, ticks=80, skip=10)
QUICK_DVS_THRESHOLDS = "230.970139,573.858276,435.227234,958.600098,758.955261"


# workers: one measurement each, in a fresh process ------------------------------------------

def _load(args) -> nets.Workload:
    thresholds = [float(t) for t in args.thresholds.split(",")] if args.thresholds else None
    return nets.workload(args.network, args.quick, thresholds)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def work_emulator(args) -> tuple:
    import numba

    from emu.engine import Emulator

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    w = _load(args)
    em, build = _timed(lambda: Emulator(w.network, w.profile))
    rec, first = _timed(lambda: em(w.inputs, ticks=w.ticks))
    _, steady = _timed(lambda: em(w.inputs, ticks=w.ticks))
    return dict(build=build, first=first, steady=steady), {p: rec.raster(p) for p in w.neuron_populations()}


def work_brian2(args) -> tuple:
    import brian2 as b2

    if args.cython_cache:
        b2.prefs.codegen.runtime.cython.cache_dir = args.cython_cache
    w = _load(args)
    net, build = _timed(lambda: nets.Brian2Net(w, args.target))
    _, run = _timed(net.run)
    _, overhead = _timed(net.run_empty_tick)
    return dict(build=build, run=run, overhead=overhead), net.rasters()


def work_norse(args) -> tuple:
    import norse.torch  # noqa: F401  (imported before the clock starts, as brian2 and emu are)
    import torch

    torch.set_num_threads(args.threads)
    w = _load(args)
    weights = {pr.name: pr.weight for pr in w.network.projections}
    thresholds = [float(w.network.populations[n].threshold[0]) for n in w.neuron_populations()]
    x = torch.from_numpy(w.inputs.reshape((w.batch, w.ticks) + w.network.populations["in"].shape))
    x = x.float().transpose(0, 1).contiguous()
    model, build = _timed(lambda: nets.norse_dvs(weights, thresholds, dt=w.network.dt))
    with torch.no_grad():
        counts, first = _timed(lambda: model(x))
        _, steady = _timed(lambda: model(x))
    rates = [float(c.sum()) / (c.shape[1] * w.batch * w.ticks) for c in counts]
    return dict(build=build, first=first, steady=steady, rates=rates), {}


WORKERS = {"emulator": work_emulator, "brian2": work_brian2, "norse": work_norse}


def worker_main(args) -> dict:
    """Measure one side once; spikes to ``--spikes``; returns the timings."""
    times, rasters = WORKERS[args.worker](args)
    if args.spikes:
        np.savez_compressed(args.spikes, **rasters)
    return times


# the parent: identity, paired rounds, summary ------------------------------------------------

class Side:
    """One side of the comparison: how to start its worker, and what each of its runs measured."""

    def __init__(self, label: str, worker: str, target: Optional[str] = None):
        self.label, self.worker, self.target = label, worker, target
        self.runs: List[dict] = []
        self.spike_files: List[Path] = []

    @property
    def has_spikes(self) -> bool:
        return self.worker != "norse"

    def worker_argv(self, args, network: str, thresholds: str, spikes: Optional[Path], cache: str) -> list:
        argv = ["--worker", self.worker, "--network", network, "--threads", str(args.threads)]
        if self.target:
            argv += ["--target", self.target]
        if args.quick:
            argv.append("--quick")
        if thresholds:
            argv += ["--thresholds", thresholds]
        if spikes:
            argv += ["--spikes", str(spikes)]
        if self.target == "cython":
            argv += ["--cython-cache", cache]
        return argv

    def measure(self, args, network: str, thresholds: str, spikes: Optional[Path], cache: str) -> dict:
        """One measurement: a fresh process, or (``--quick``) a call in this one."""
        argv = self.worker_argv(args, network, thresholds, spikes, cache)
        if args.quick:
            return worker_main(parse(argv))
        threads = str(args.threads)
        env = dict(os.environ, NUMBA_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
                   OPENBLAS_NUM_THREADS=threads)
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve())] + argv, capture_output=True,
                              text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"{self.label} worker on {network} failed:\n{proc.stderr[-4000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def run_once(self, args, network: str, thresholds: str, tmp: Path, cache: str) -> None:
        spikes = tmp / f"{network}_{self.label.replace(' ', '_')}_{len(self.runs)}.npz" if self.has_spikes else None
        self.runs.append(self.measure(args, network, thresholds, spikes, cache))
        if spikes:
            self.spike_files.append(spikes)


def load_spikes(path: Path) -> Dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def check_identical(label: str, network: str, mine: Dict[str, np.ndarray], reference: Dict[str, np.ndarray]) -> None:
    """Assert spike-for-spike equality with the emulator's first run, naming what differs."""
    assert set(mine) == set(reference), (label, network, sorted(mine), sorted(reference))
    diff = {p: int((mine[p] != reference[p]).sum()) for p in reference}
    assert not any(diff.values()), (
        f"{network}: {label} differs from the emulator in {diff} (sample, tick, neuron) cells; "
        f"spikes {({p: int(mine[p].sum()) for p in mine})} vs {({p: int(reference[p].sum()) for p in reference})}")


def spread(xs: List[float], scale: float = 1.0, digits: int = 1) -> str:
    """``median [min-max]`` of ``xs`` times ``scale``."""
    xs = [x * scale for x in xs]
    return f"{statistics.median(xs):.{digits}f} [{min(xs):.{digits}f}-{max(xs):.{digits}f}]"


def paired(theirs: List[float], ours: List[float]) -> List[float]:
    return [t / o for t, o in zip(theirs, ours)]


def ratio_line(name: str, ratios: List[float], fresh: List[float]) -> str:
    """``name=<median of the paired ratios>``, their min-max, and the fresh-process ratios."""
    return (f"{name}={statistics.median(ratios):.1f} (min-max {min(ratios):.1f}-{max(ratios):.1f} over "
            f"{len(ratios)} paired runs; fresh_process {spread(fresh)})")


def print_brian2(s: Side, e_steady: List[float], e_fresh: List[float], compile_s: Optional[float]) -> None:
    name = s.label.replace(" ", "_")
    comp = f"; compile_s={compile_s:.1f} (one-time, cold cache)" if compile_s is not None else ""
    print(f"{name}_ms: run {spread([r['run'] for r in s.runs], 1e3)}, fixed cost per run() call (a further "
          f"1-tick run) {spread([r['overhead'] for r in s.runs], 1e3)}, "
          f"build {spread([r['build'] for r in s.runs], 1e3)}{comp}")
    print(ratio_line(f"speedup_vs_{name}", paired([r["run"] for r in s.runs], e_steady),
                     paired([r["build"] + r["run"] for r in s.runs], e_fresh)))


def print_norse(s: Side, args, reference: Dict[str, np.ndarray], e_steady: List[float],
                e_fresh: List[float]) -> None:
    print(f"norse_ms ({args.threads} thread(s)): steady forward {spread([r['steady'] for r in s.runs], 1e3)}, "
          f"build {spread([r['build'] for r in s.runs], 1e3)}, "
          f"first forward {spread([r['first'] for r in s.runs], 1e3)}")
    print("spike_rates per layer (spikes per neuron per tick; norse has no 1-tick latency and runs "
          "float32: rates compared, not spikes)")
    print("  emulator " + ",".join(f"{float(r.mean()):.4f}" for r in reference.values()))
    print("  norse    " + ",".join(f"{r:.4f}" for r in s.runs[0]["rates"]))
    print(ratio_line("speedup_vs_norse", paired([r["steady"] for r in s.runs], e_steady),
                     paired([r["build"] + r["first"] for r in s.runs], e_fresh)))


def summary(args, network: str, w: nets.Workload, sides: List[Side], compile_s: Optional[float]) -> None:
    emu = sides[0]
    reference = load_spikes(emu.spike_files[0])
    n_spikes = int(sum(r.sum() for r in reference.values()))
    n_cells = int(sum(r.size for r in reference.values()))
    print(f"\n== {network}: {w.description}; {w.batch} samples x {w.ticks} ticks, "
          f"{sum(w.network.populations[p].size for p in reference)} neurons per sample")
    for s in sides[1:]:
        if s.has_spikes:
            runs = len(s.spike_files) + (compile_s is not None and s.target == "cython")
            print(f"spikes_compared {network} emulator vs {s.label}: {n_spikes} spikes ({n_cells} cells), "
                  f"identical in all {runs} runs")
    e_fresh = [r["build"] + r["first"] for r in emu.runs]
    e_steady = [r["steady"] for r in emu.runs]
    print(f"emulator_ms ({args.threads} thread(s)): steady call {spread(e_steady, 1e3)}, "
          f"build {spread([r['build'] for r in emu.runs], 1e3)}, "
          f"first call {spread([r['first'] for r in emu.runs], 1e3)}")
    # the fixed per-tick cost of a small network shows as time per sample-tick
    print(f"emulator_ns_per_sample_tick {network}: {spread(e_steady, 1e9 / (w.batch * w.ticks), 0)}")
    for s in sides[1:]:
        if s.worker == "brian2":
            print_brian2(s, e_steady, e_fresh, compile_s if s.target == "cython" else None)
        else:
            print_norse(s, args, reference, e_steady, e_fresh)


def bench_network(args, network: str, thresholds: str, tmp: Path, cache: str) -> None:
    """Identity and paired timing of one network; prints its summary."""
    w = nets.workload(network, args.quick, [float(t) for t in thresholds.split(",")] if thresholds else None)
    sides = [Side("emulator", "emulator")] + [Side(f"brian2 {t}", "brian2", t) for t in args.targets]
    if network == "dvs" and not args.no_norse:
        sides.append(Side("norse", "norse"))
    cython = next((s for s in sides if s.target == "cython"), None)
    cold = None
    if cython:
        print(f"{network}: brian2 cython, first process (compiles into {cache})", flush=True)
        cold_spikes = tmp / f"{network}_cython_cold.npz"
        cold = cython.measure(args, network, thresholds, cold_spikes, cache)
    for rnd in range(args.repeats):
        for s in sides[rnd % len(sides):] + sides[:rnd % len(sides)]:
            s.run_once(args, network, thresholds, tmp, cache)
        reference = load_spikes(sides[0].spike_files[0])
        for s in sides:
            if s.has_spikes:
                check_identical(s.label, network, load_spikes(s.spike_files[-1]), reference)
        print(f"{network}: round {rnd + 1}/{args.repeats} done, spikes identical", flush=True)
    compile_s = None
    if cold:
        check_identical("brian2 cython (cold cache)", network, load_spikes(cold_spikes), reference)
        compile_s = cold["build"] + cold["run"] - statistics.median(r["build"] + r["run"] for r in cython.runs)
    summary(args, network, w, sides, compile_s)


def dvs_thresholds(args) -> str:
    """The conv net's thresholds: calibrated (layer rates about 3 %) under the brian2 profile, except
    in a quick run, which takes the values that calibration gives (any thresholds test identity)."""
    if args.thresholds:
        return args.thresholds
    if args.quick:
        return QUICK_DVS_THRESHOLDS
    from dvs_network import calibrate_thresholds, random_weights

    from emu.profile import SemanticsProfile

    t0 = time.perf_counter()
    thr = calibrate_thresholds(random_weights(0), seed=2, profile=SemanticsProfile.brian2())
    print(f"dvs: thresholds calibrated in {time.perf_counter() - t0:.1f} s: "
          + ",".join(f"{t:.9g}" for t in thr), flush=True)
    return ",".join(f"{t:.9g}" for t in thr)


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", default=",".join(nets.WORKLOADS), help="comma-separated: braille,dense,dvs")
    ap.add_argument("--targets", default=None,
                    help="brian2 targets, comma-separated (default numpy,cython; quick: numpy)")
    ap.add_argument("--repeats", type=int, default=None, help="paired rounds (default 5; quick: 1)")
    ap.add_argument("--threads", type=int, default=1, help="threads of the emulator (numba) and of norse (torch)")
    ap.add_argument("--thresholds", default=None, help="the dvs net's 5 thresholds (skips the calibration)")
    ap.add_argument("--cython-cache", default=None,
                    help="brian2's cython cache folder (default: a fresh one, so that the compile time is measured)")
    ap.add_argument("--no-norse", action="store_true", help="skip norse on the conv net")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: small sizes, numpy target, 1 round, all in this process (identity checked)")
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--network", help=argparse.SUPPRESS)
    ap.add_argument("--target", choices=TARGETS, default="numpy", help=argparse.SUPPRESS)
    ap.add_argument("--spikes", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not args.worker:
        args.targets = (args.targets or ("numpy" if args.quick else ",".join(TARGETS))).split(",")
        args.repeats = args.repeats or (1 if args.quick else 5)
        unknown = set(args.targets) - set(TARGETS)
        if unknown:
            ap.error(f"unknown brian2 target(s) {sorted(unknown)}; choose from {TARGETS}")
    return args


def main(argv=None) -> None:
    args = parse(argv)
    if args.worker:
        print(json.dumps(worker_main(args)))
        return
    import brian2

    print(f"machine: {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; brian2 {brian2.__version__}, "
          f"targets {','.join(args.targets)}; threads {args.threads}; {args.repeats} paired round(s)"
          f"{'; quick: one process' if args.quick else ''}", flush=True)
    networks = args.networks.split(",")
    thresholds = dvs_thresholds(args) if "dvs" in networks else ""
    with tempfile.TemporaryDirectory(prefix="bench_brian2_") as tmp:
        cache = args.cython_cache or str(Path(tmp) / "cython_cache")
        for network in networks:
            bench_network(args, network, thresholds if network == "dvs" else "", Path(tmp), cache)


if __name__ == "__main__":
    main()
