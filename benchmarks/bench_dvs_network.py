"""Benchmark: the DVS-gesture paper network, emulator vs snnTorch, same weights and input.

    python benchmarks/bench_dvs_network.py            # batch 32 x 300 ticks, median of 5
    python benchmarks/bench_dvs_network.py --quick    # a small smoke run

Workload (see benchmarks/dvs_network.py): random int8 weights, alpha 0.93, subtract
reset, about 2 % of the inputs active per tick, thresholds calibrated layer by layer
so that every layer fires about 3 % of its neurons per tick. The emulator runs
through the normal ``Emulator(network, SemanticsProfile.chip())(inputs)`` path
(input conversion and result building included); snnTorch runs the same integer
weights as float32 with ``torch.no_grad()`` on ``--torch-threads`` threads. Both are
timed in the same process, interleaved, as the median of ``--repeats`` runs after a
warm-up run (which also compiles the numba kernels).

snnTorch's semantics differ from the chip's (no one-tick latency per connection,
reset applied one step late), so its spikes differ; both rates are printed.
The last line is ``speedup_vs_snntorch=<ratio>``: the median over the interleaved pairs
of snnTorch's time / the emulator's (same batch, same ticks); ``speedup_of_medians``
is the ratio of the two medians.

The breakdown ends in the roofline (``roofline.py``), from the kernel's CPU time (what
other load changes least): the scatter per vector add against the same footprint loop
with every byte in L1 (``scatter_fraction_of_l1``), and the neuron pass per neuron-tick
against the instructions of its compiled loop at the core's issue limits
(``neuron_pass_fraction_of_bound``; the same loop in L1 printed beside it). A
regression shows as a falling fraction, not only as a time.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numba  # noqa: E402

import emu.engine.emulator  # noqa: E402
from dvs_network import (build_network, calibrate_thresholds, layer_rates, random_input, random_weights,  # noqa: E402
                         snntorch_net, synapses_per_pre, synaptic_events, vector_adds)
from roofline import ISSUE_PER_CYCLE, VECTOR_PER_CYCLE, l1_ns_per_vector_add, neuron_pass_bound  # noqa: E402
from emu.engine import Emulator  # noqa: E402
from emu.profile import SemanticsProfile  # noqa: E402


# a pause before every timed run: the other runtime's worker threads (numba's and
# torch's OpenMP pools) stop spinning and go to sleep, so they cannot steal the cores
PAUSE = float(os.environ.get("BENCH_PAUSE", 0.2))


def _fmt(xs):
    return ",".join(f"{x:.4f}" for x in xs)


class KernelTimer:
    """Wraps ``emu.engine.emulator.run_batch`` to add up the time spent inside the numba kernel:
    ``seconds`` of wall time, ``cpu_seconds`` of CPU time of all its worker threads (what
    other load on a shared machine changes least)."""

    def __init__(self):
        self.inner = emu.engine.emulator.run_batch
        self.seconds = self.cpu_seconds = 0.0

    def __call__(self, *args, **kwargs):
        t0, c0 = time.perf_counter(), time.process_time()
        out = self.inner(*args, **kwargs)
        self.seconds += time.perf_counter() - t0
        self.cpu_seconds += time.process_time() - c0
        return out

    def __enter__(self):
        emu.engine.emulator.run_batch = self
        return self

    def __exit__(self, *exc):
        emu.engine.emulator.run_batch = self.inner


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--ticks", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--long-ticks", type=int, default=6000, help="ticks of the one-sample one-core run")
    ap.add_argument("--seed", type=int, default=0, help="weights seed (inputs use seed+1, calibration seed+2)")
    ap.add_argument("--torch-threads", type=int, default=2)
    ap.add_argument("--thresholds", type=str, default=None,
                    help="comma-separated thresholds of the 5 layers (skips the calibration)")
    ap.add_argument("--no-breakdown", action="store_true", help="skip the where-does-the-time-go runs")
    ap.add_argument("--quick", action="store_true", help="small smoke run (batch 4 x 60 ticks, 1 repeat)")
    args = ap.parse_args(argv)
    if args.quick:
        args.batch, args.ticks, args.repeats, args.long_ticks = 4, 60, 1, 600

    import torch

    torch.set_num_threads(args.torch_threads)
    print(f"machine: {os.cpu_count()} cpus, numba threads {numba.get_num_threads()}, "
          f"torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}", flush=True)

    weights = random_weights(args.seed)
    t0 = time.perf_counter()
    if args.thresholds:
        thresholds = [float(np.float32(x)) for x in args.thresholds.split(",")]
    else:
        cal = dict(batch=2, ticks=80, skip=10) if args.quick else {}
        thresholds = calibrate_thresholds(weights, seed=args.seed + 2, **cal)
        print(f"calibration: {time.perf_counter() - t0:.1f} s", flush=True)
    print("thresholds=" + ",".join(f"{t:.6g}" for t in thresholds), flush=True)

    net = build_network(weights, thresholds)
    profile = SemanticsProfile.chip()
    t0 = time.perf_counter()
    em = Emulator(net, profile)
    print(f"emulator build: {time.perf_counter() - t0:.3f} s", flush=True)
    x = random_input(args.batch, args.ticks, seed=args.seed + 1)
    print(f"input rate={x.mean():.4f}  batch={args.batch} ticks={args.ticks} neurons={em.compiled.n_neurons}",
          flush=True)

    xt = torch.from_numpy(x).float().transpose(0, 1).contiguous()  # (T, B, 2, 32, 32)
    tnet = snntorch_net(weights, thresholds)

    # warm-up (compiles numba, or loads it from the cache)
    t0 = time.perf_counter()
    res = em(x)
    print(f"emulator warm-up (incl. compile): {time.perf_counter() - t0:.2f} s", flush=True)
    with torch.no_grad():
        tnet(xt)
        counts = tnet(xt, count=True)

    emu_t, torch_t = [], []
    for _ in range(args.repeats):  # interleaved, so load changes hit both alike
        time.sleep(PAUSE)
        t0 = time.perf_counter()
        res = em(x)
        emu_t.append(time.perf_counter() - t0)
        time.sleep(PAUSE)
        with torch.no_grad():
            t0 = time.perf_counter()
            tnet(xt)
            torch_t.append(time.perf_counter() - t0)
    t_emu, t_torch = statistics.median(emu_t), statistics.median(torch_t)
    # the ratio of each back-to-back pair, then their median: load on a shared machine
    # drifts between pairs more than within one
    paired = statistics.median(t / e for e, t in zip(emu_t, torch_t))
    sample_ticks = args.batch * args.ticks

    rates = layer_rates(res, args.batch, args.ticks)
    t_rates = [float(c.sum()) / (c.shape[1] * sample_ticks) for c in counts]
    n_syn = synaptic_events(res, net, synapses_per_pre(weights, net))
    print(f"spike_rates={_fmt(rates)}")
    print(f"snntorch_spike_rates={_fmt(t_rates)}")
    print(f"synaptic_events_per_sample_tick={n_syn / sample_ticks:.0f}")
    print(f"emulator_ms={t_emu * 1e3:.1f} (runs: {', '.join(f'{t * 1e3:.1f}' for t in emu_t)})")
    print(f"snntorch_ms={t_torch * 1e3:.1f} (runs: {', '.join(f'{t * 1e3:.1f}' for t in torch_t)})")
    print(f"emulator_sample_ticks_per_s={sample_ticks / t_emu:.0f}")
    print(f"snntorch_sample_ticks_per_s={sample_ticks / t_torch:.0f}")
    print(f"emulator_synaptic_events_per_s={n_syn / t_emu:.3e}")

    if not args.no_breakdown:
        # where the time goes: numba kernel vs Python (input conversion, result building),
        # and inside the kernel the neuron pass (a silent input: every neuron is still
        # updated every tick, nothing is scattered) vs spike handling and scatter (the rest)
        silent = np.zeros_like(x)
        em(silent)
        k_full, k_silent, tot_full, tot_silent, cpu_full, cpu_silent = [], [], [], [], [], []
        for _ in range(args.repeats):
            for inp, kl, tl, cl in ((x, k_full, tot_full, cpu_full), (silent, k_silent, tot_silent, cpu_silent)):
                time.sleep(PAUSE)
                with KernelTimer() as kt:
                    t0 = time.perf_counter()
                    em(inp)
                    tl.append(time.perf_counter() - t0)
                kl.append(kt.seconds)
                cl.append(kt.cpu_seconds)
        kf, ks = statistics.median(k_full), statistics.median(k_silent)
        tf = statistics.median(tot_full)
        print(f"breakdown_ms: total={tf * 1e3:.1f} kernel={kf * 1e3:.1f} python={(tf - kf) * 1e3:.1f} "
              f"kernel_silent_input(neuron pass)={ks * 1e3:.1f} kernel_spikes+scatter={(kf - ks) * 1e3:.1f}")
        # the roofline, in CPU time of the kernel's threads (medians of the runs above): the
        # scatter's vector adds (one 32-byte store each) against the same footprint loop with
        # every byte in L1; the neuron pass (the silent input's kernel) against the
        # instructions of its compiled loop at the core's issue limits (see roofline.py)
        cf, cs = statistics.median(cpu_full), statistics.median(cpu_silent)
        adds = vector_adds(res, em.compiled)
        per_add = (cf - cs) / adds * 1e9
        l1 = l1_ns_per_vector_add()
        print(f"vector_adds_per_sample_tick={adds / sample_ticks:.0f} "
              f"({n_syn / adds:.1f} synaptic events per add)")
        print(f"scatter_ns_per_vector_add={per_add:.3f} (kernel CPU time, spike handling included) "
              f"l1_ns_per_vector_add={l1:.3f} ratio={per_add / l1:.2f} scatter_fraction_of_l1={l1 / per_add:.2f}")
        neurons = sum(p.size for p in net.populations.values() if p.model != "input")
        per_neuron = cs / (sample_ticks * neurons) * 1e9
        bound = neuron_pass_bound()
        if bound is None:
            print(f"neuron_pass_ns_per_neuron_tick={per_neuron:.4f} (its compiled loop not found: no bound)")
        else:
            print(f"neuron_pass_instructions_per_8_neurons={bound.instructions:.2f} (vector {bound.vector:.2f}; "
                  f"counted in its compiled loop) clock_ghz={bound.clock_ghz:.2f} (measured) bound_cycles_per_8="
                  f"{bound.bound_cycles:.2f} (max of vector / {VECTOR_PER_CYCLE}, all / {ISSUE_PER_CYCLE} per cycle)")
            print(f"neuron_pass_ns_per_neuron_tick={per_neuron:.4f} ({bound.cycles_per_step(per_neuron):.2f} cycles "
                  f"per 8; kernel CPU time, silent input) l1={bound.l1_ns_per_neuron:.4f} "
                  f"({bound.cycles_per_step(bound.l1_ns_per_neuron):.2f} cycles) bound={bound.bound_ns_per_neuron:.4f} "
                  f"neuron_pass_fraction_of_bound={bound.bound_ns_per_neuron / per_neuron:.2f}")

    # one whole gesture (--long-ticks) of one sample on one core
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        x1 = random_input(1, args.long_ticks, seed=args.seed + 3)
        em(x1[:, :50])
        long_t = []
        for _ in range(args.repeats):
            time.sleep(PAUSE)
            t0 = time.perf_counter()
            r1 = em(x1)
            long_t.append(time.perf_counter() - t0)
    finally:
        numba.set_num_threads(threads)
    t_long = statistics.median(long_t)
    print(f"one_sample_{args.long_ticks}_ticks_1_core_ms={t_long * 1e3:.1f} "
          f"(rates {_fmt(layer_rates(r1, 1, args.long_ticks))})")
    print(f"speedup_of_medians={t_torch / t_emu:.2f}")
    print(f"speedup_vs_snntorch={paired:.2f}")


if __name__ == "__main__":
    main()
