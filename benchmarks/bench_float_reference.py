"""Benchmark: the float reference of a git revision (default: the tick-by-tick stepper) against
the working tree's, in one process, on the gesture net and the demo's test set.

    python benchmarks/bench_float_reference.py                  # 33 x 300 demo set, 5 rounds
    python benchmarks/bench_float_reference.py --rounds 7 --synthetic

The revision's ``validate/`` is exported under the package name ``validate_old`` (``git
archive``; its ``validate.`` imports renamed) and imported beside the working tree's; both
use the working tree's ``emu``. Each round builds each model from the graph with the demo's
float settings and runs the whole set (``record_v=False``, as ``s2emu demo`` and ``validate
--inputs`` do), the two sides alternating which goes first; it checks that both give the
same spikes (and, once, the same membranes, bit for bit). Each side keeps its own torch
thread policy, as a user gets it.

Prints per round the wall times (build + run) and ``old/new``, then the median ratio with
its spread over the rounds, the CPU-time ratio, and the host's load average before and
after (this host's 2 cores are shared: a busy host moves the ratio).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
#: the last revision of the tick-by-tick stepper (issue 28 replaced it)
BASELINE = "ebde474"
_IMPORT = re.compile(r"\b(from|import) validate\b|\bvalidate\.(?=[a-z_])")


def export(rev: str, dest: str) -> str:
    """``validate/`` of ``rev`` as package ``validate_old`` under ``dest``."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "validate"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(os.path.join(dest, "_old"), filter="data")
    target = os.path.join(dest, "validate_old")
    shutil.move(os.path.join(dest, "_old", "validate"), target)
    for folder, _, files in os.walk(target):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                text = Path(path).read_text()
                Path(path).write_text(_IMPORT.sub(lambda m: f"{m.group(1)} validate_old" if m.group(1)
                                                  else "validate_old.", text))
    return "validate_old"


def demo_set(synthetic: bool, samples: int, ticks: int, work: Path) -> np.ndarray:
    """(samples, ticks, 2, 32, 32) bool: the demo's synthetic gesture set, or random rasters of its density."""
    from emu.apps.demo import load_test_set

    if not synthetic:
        frames, _ = load_test_set(None, work, max(samples // 11, 1), ticks)
        return frames[:samples]
    return np.random.default_rng(0).random((samples, ticks, 2, 32, 32)) < 0.0037  # the demo set's density


def same(a, b) -> bool:
    return a.batch == b.batch and all(np.array_equal(p, q) for p, q in zip(a.neurons, b.neurons)) and \
        all(np.array_equal(p, q) for p, q in zip(a.tick_end, b.tick_end))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rev", nargs="?", default=BASELINE, help=f"the old side's git revision (default {BASELINE})")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--samples", type=int, default=33)
    ap.add_argument("--ticks", type=int, default=300)
    ap.add_argument("--synthetic", action="store_true", help="random rasters of the demo set's density")
    args = ap.parse_args(argv)

    from emu.apps.demo import MODEL, demo_settings
    from emu.nir_import import read_nir
    from validate.float_reference import FloatReference

    load = os.getloadavg()
    dest = tempfile.mkdtemp(prefix="s2emu-bench-float-")
    try:
        sys.path.insert(0, dest)
        old_cls = importlib.import_module(export(args.rev, dest) + ".float_reference").FloatReference
        frames = demo_set(args.synthetic, args.samples, args.ticks, Path(dest))
        graph = read_nir(MODEL)
        settings = dataclasses.asdict(demo_settings(graph, 99.9).float)
        sides = {"old": old_cls, "new": FloatReference}
        print(f"gesture net {MODEL.name}, {len(frames)} samples x {frames.shape[1]} ticks "
              f"({'synthetic rasters' if args.synthetic else 'demo set'}, input density {frames.mean():.4f}); "
              f"old = {args.rev}, new = working tree; load average {load[0]:.2f}")
        first = {k: cls(graph, **settings)(frames, progress=False, record_v=True) for k, cls in sides.items()}
        if not same(first["old"], first["new"]) or any(not np.array_equal(first["old"].v[n], first["new"].v[n])
                                                       for n in first["old"].v):
            print("the two sides give different spikes or membranes: no timing compares them", file=sys.stderr)
            return 1
        print("warm-up run: spikes and membranes identical, bit for bit")
        walls, cpus = [], []
        for r in range(args.rounds):
            t, c, out = {}, {}, {}
            for k in (("old", "new") if r % 2 == 0 else ("new", "old")):
                w0, c0 = time.perf_counter(), time.process_time()
                out[k] = sides[k](graph, **settings)(frames, progress=False, record_v=False)
                t[k], c[k] = time.perf_counter() - w0, time.process_time() - c0
            if not same(out["old"], out["new"]):
                print(f"round {r}: different spikes", file=sys.stderr)
                return 1
            walls.append(t["old"] / t["new"])
            cpus.append(c["old"] / c["new"])
            print(f"round {r}: old {t['old']:.3f} s, new {t['new']:.3f} s: old/new {walls[-1]:.2f} "
                  f"(CPU {c['old']:.3f} / {c['new']:.3f} s: {cpus[-1]:.2f}); spikes identical", flush=True)
        load_after = os.getloadavg()
        print(f"old/new wall: median {statistics.median(walls):.2f} (rounds {min(walls):.2f}-{max(walls):.2f}); "
              f"CPU: median {statistics.median(cpus):.2f} ({min(cpus):.2f}-{max(cpus):.2f}); "
              f"load average {load[0]:.2f} -> {load_after[0]:.2f} on {os.cpu_count()} CPUs")
        return 0
    finally:
        shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
