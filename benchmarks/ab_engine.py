"""Benchmark: two versions of the engine on the paper network, in the same process.

    python benchmarks/ab_engine.py HEAD~1              # HEAD~1 against the working tree
    python benchmarks/ab_engine.py v1 v2 --rounds 4    # two revisions

A change worth a few percent cannot be seen by timing two processes one after the
other on these machines: their load drifts 1.5x within minutes, and the same code
runs a few percent faster or slower from one process to the next (where its arrays
land). So both versions run in one process, alternately, on the same input:

* each version's ``emu/`` is copied under a name of its own (``emu_a``, ``emu_b``;
  ``git archive`` for a revision, the working tree's files for ``WORKTREE``), so that
  both import side by side, each with its own numba cache;
* a round is one subprocess: it builds the paper network with each version, checks
  that both give the same spikes, then times one sample of ``--ticks`` ticks on one
  thread (CPU time), full input and silent input (the neuron pass alone), ``--pairs``
  times, the order of the two versions alternating within the round; ``--batch`` and
  ``--threads`` time a batch on worker threads instead (wall time: how the threads
  share the work shows only there), e.g. ``--batch 32 --ticks 300 --threads 2`` as
  ``bench_dvs_network.py``;
* rounds alternate which version is imported and built first, since that one tends
  to run a little faster; the summary is the geometric mean of the rounds' median
  ratios.

Prints per round and overall ``ratio_b_over_a`` (kernel CPU time of B / A, below 1:
B is faster) for the full run and the silent one. With the defaults, two copies of
the same code measure within about 5 % of each other (where their code and arrays
land; HEAD against itself gave 1.018, rounds 0.992-1.041, silent 1.057), so a
smaller change is not resolved; a change that does not touch the neuron pass shows
its silent ratio as that floor. Short runs resolve far less (1000 ticks, 4 pairs:
1.07-1.15 for the same code).
"""
from __future__ import annotations

import argparse
import io
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKTREE = "WORKTREE"
_IMPORT = re.compile(r"\b(from|import) emu\b|\bemu\.(?=[a-z_])")


def export(rev: str, name: str, dest: str) -> None:
    """``emu/`` of ``rev`` (or of the working tree) as package ``name`` under ``dest``."""
    target = os.path.join(dest, name)
    if rev == WORKTREE:
        shutil.copytree(os.path.join(ROOT, "emu"), target, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        data = subprocess.run(["git", "-C", ROOT, "archive", rev, "emu"], check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(os.path.join(dest, "_" + name), filter="data")
        shutil.move(os.path.join(dest, "_" + name, "emu"), target)
    for folder, _, files in os.walk(target):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                with open(path) as fh:
                    text = fh.read()
                text = _IMPORT.sub(lambda m: f"{m.group(1)} {name}" if m.group(1) else f"{name}.", text)
                with open(path, "w") as fh:
                    fh.write(text)


ROUND = r'''
import importlib, statistics, sys, time
import numpy as np, numba
sys.path[:0] = [{dest!r}, {bench!r}, {root!r}]
numba.set_num_threads({threads})
clock = time.perf_counter if {threads} > 1 else time.process_time
from dvs_network import build_network, random_input, random_weights
# what calibrate_thresholds gives for weights seed 0 (bench_dvs_network.py prints them), fixed
# here so that a round spends no time calibrating
THRESHOLDS = [232.303, 574.441, 408.95, 1002.06, 872.815]

def emulator(name):
    pkg = importlib.import_module(name)
    for sub in ("network", "profile", "engine", "engine.emulator"):
        importlib.import_module(name + "." + sub)
    net = build_network(random_weights(0), THRESHOLDS, classes=pkg.network)
    return pkg.engine.emulator, pkg.engine.Emulator(net, pkg.profile.SemanticsProfile.chip())

def kernel_seconds(mod, em, x):
    inner, box = mod.run_batch, []
    def timed(*a, **k):
        t0 = clock(); inner(*a, **k); box.append(clock() - t0)
    mod.run_batch = timed
    try:
        em(x)
    finally:
        mod.run_batch = inner
    return box[0]

first, second = {order!r}
built = dict((n, emulator(n)) for n in (first, second))
x = random_input({batch}, {ticks}, seed=3)
silent = np.zeros_like(x)
outs = [built[n][1](x) for n in ("emu_a", "emu_b")]
same = all(np.array_equal(p, q) for p, q in zip(outs[0].neurons, outs[1].neurons)) and len(outs[0].neurons) == {batch}
times = dict((k, []) for k in ("a", "b", "a_s", "b_s"))
for i in range({pairs}):
    for n in (("emu_a", "emu_b") if i % 2 == 0 else ("emu_b", "emu_a")):
        key = n[-1]
        times[key].append(kernel_seconds(*built[n], x))
        times[key + "_s"].append(kernel_seconds(*built[n], silent))
full = statistics.median(b / a for a, b in zip(times["a"], times["b"]))
sil = statistics.median(b / a for a, b in zip(times["a_s"], times["b_s"]))
print(f"RESULT {{full:.4f}} {{sil:.4f}} {{min(times['a']) * 1e3:.1f}} {{min(times['b']) * 1e3:.1f}} {{same}}")
'''


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", help="revision A (git rev)")
    ap.add_argument("b", nargs="?", default=WORKTREE, help=f"revision B (default: {WORKTREE}, the working tree)")
    ap.add_argument("--ticks", type=int, default=6000)
    ap.add_argument("--pairs", type=int, default=16, help="timed pairs per round")
    ap.add_argument("--rounds", type=int, default=4, help="subprocesses, alternating which version goes first")
    ap.add_argument("--batch", type=int, default=1, help="samples per timed run")
    ap.add_argument("--threads", type=int, default=1, help="worker threads (above 1: wall time, not CPU time)")
    args = ap.parse_args(argv)
    dest = tempfile.mkdtemp(prefix="s2emu-ab-")
    try:
        export(args.a, "emu_a", dest)
        export(args.b, "emu_b", dest)
        fulls, sils = [], []
        for r in range(args.rounds):
            order = ("emu_a", "emu_b") if r % 2 == 0 else ("emu_b", "emu_a")
            code = ROUND.format(dest=dest, bench=os.path.join(ROOT, "benchmarks"), root=ROOT, order=order,
                                ticks=args.ticks, pairs=args.pairs, batch=args.batch,
                                threads=args.threads)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 env=dict(os.environ, NUMBA_CACHE_DIR=os.path.join(dest, "numba")))
            line = [x for x in out.stdout.splitlines() if x.startswith("RESULT")]
            if out.returncode or not line:
                print(out.stderr[-2000:], file=sys.stderr)
                return 1
            full, sil, ta, tb, same = line[0].split()[1:]
            if same != "True":
                print(f"round {r}: the two versions give different spikes; no timing compares them", file=sys.stderr)
                return 1
            fulls.append(float(full))
            sils.append(float(sil))
            print(f"round {r} ({order[0]} first): ratio_b_over_a full={float(full):.3f} silent={float(sil):.3f} "
                  f"(fastest A {ta} ms, B {tb} ms)", flush=True)
        geo = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))  # noqa: E731
        print(f"ratio_b_over_a={geo(fulls):.3f} (geometric mean of {args.rounds} rounds; "
              f"spread {min(fulls):.3f}-{max(fulls):.3f}) silent={geo(sils):.3f}")
        return 0
    finally:
        shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
