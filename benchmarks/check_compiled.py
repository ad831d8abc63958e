"""Check: two versions of the build give byte-identical compiled networks.

    python benchmarks/check_compiled.py main                  # main against the working tree
    python benchmarks/check_compiled.py v1 v2 --sizes 1000000

A change to how the engine builds a network (the synapse lists, their order, the
rows) must leave what the kernels receive unchanged, bit for bit. Each version's
``emu/`` is exported as in ``ab_engine.py`` (a revision by ``git archive``, or the
working tree) and imported as ``emu`` itself in a subprocess of its own (so the
benchmark families build their networks with that version's classes, and each
build's memory is its own). Every build prints a digest of every array and scalar
of its :class:`~emu.engine.layout.CompiledNetwork` (dtype, shape and bytes of each
``NetworkArrays`` field, the population order and bounds, the clipped weights),
and the two versions' digests are compared field by field.

Networks: the paper network (``dvs_network.py``), bench_scale's ``conv``,
``sparse-random`` and ``dense-blocks`` families at ``--sizes``, and ``conv-mix``: a
small net of convs with strides, asymmetric padding, pooling, 1x1 kernels, a
channels-last population read by a dense and a sparse projection, and a sparse
projection into a channels-last population. Each under the ``--profiles`` presets
(chip and float64 by default). ``--rounds`` builds each network that many times per
version, alternating which version builds first (each build a fresh subprocess, so
its time includes its first touch of memory, and its peak RSS is its own): the
times of old and new builds, compared on the same host at the same load. Prints one
line per network and profile (the build times, median and range, and the peak
RSS of each version), then ``identical=True`` or the fields that differ (exit
status 1).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from ab_engine import WORKTREE, export  # noqa: E402

WORKER = r'''
import hashlib, json, resource, sys, time
sys.path.insert(0, {tree!r})
import emu, emu.engine.layout, emu.network, emu.profile  # this version, before the benchmarks put theirs first
assert emu.__file__.startswith({tree!r}), emu.__file__
try:
    import emu.synapses
except ImportError:  # a version from before emu.synapses: its synapse lists lived in emu.network
    sys.modules["emu.synapses"] = emu.network
    emu.network.synapse_runs = None  # imported by the benchmarks, not called here
sys.path.insert(1, {bench!r})
import numpy as np
from bench_scale import FAMILIES
from dvs_network import build_network, random_weights
from emu.network import Network, Population, Projection

THRESHOLDS = [232.303, 574.441, 408.95, 1002.06, 872.815]


def conv_mix():
    rng = np.random.default_rng(7)
    w = lambda *shape: rng.integers(-127, 128, size=shape).astype(np.float64)
    net = Network()
    net.add(Population("in", (3, 37, 41), "input"))
    for name, shape in (("a", (8, 19, 41)), ("b", (5, 9, 19)), ("c", (4, 3, 6)), ("d", (30,)), ("e", (8, 19, 41))):
        net.add(Population(name, shape, "lif", alpha=0.9, threshold=300.0))
    net.add(Projection("in", "a", w(8, 3, 5, 3), kind="conv2d", stride=(2, 1), padding=(2, 1)))
    net.add(Projection("a", "b", w(5, 8, 3, 2), kind="conv2d", stride=(1, 1), padding=(1, 0), pool=2))
    net.add(Projection("b", "c", w(4, 5, 1, 1), kind="conv2d", stride=(1, 1), padding=(0, 0), pool=3))
    net.add(Projection("b", "d", w(30, 5 * 4 * 9), pool=2))
    net.add(Projection("in", "e", w(8, 3, 3, 3), kind="conv2d", stride=(2, 1), padding=(1, 1)))
    pairs = np.stack([rng.choice(5 * 9 * 19, 400, replace=False), rng.choice(8 * 19 * 41, 400, replace=False)], 1)
    net.add(Projection("b", "e", w(400), kind="sparse", connections=pairs))
    net.add(Projection("c", "c", w(4, 4, 3, 3), kind="conv2d", padding=(1, 1), delay=2))
    return net


def network(name, size):
    if name == "paper":
        return build_network(random_weights(0), THRESHOLDS)
    if name == "conv-mix":
        return conv_mix()
    family = FAMILIES[name]
    return family.build(size, [50.0] * family.n_layers, 0)


def digest(a):
    if isinstance(a, np.ndarray):
        a = np.ascontiguousarray(a)
        return f"{{a.dtype.str}} {{a.shape}} " + hashlib.sha256(a.view(np.uint8).reshape(-1)).hexdigest()
    if isinstance(a, tuple) and hasattr(a, "_fields"):
        return {{k: digest(v) for k, v in a._asdict().items()}}
    return f"{{type(a).__name__}} {{a!r}}"


net = network({name!r}, {size})
profile = getattr(emu.profile.SemanticsProfile, {profile!r})()
t0 = time.perf_counter()
compiled = emu.engine.layout.CompiledNetwork.build(net, profile)
seconds = time.perf_counter() - t0
fields = {{k: digest(v) for k, v in compiled.arrays._asdict().items()}}
fields.update(order=digest(tuple(compiled.order)), pop_lo=digest(compiled.pop_lo), pop_hi=digest(compiled.pop_hi),
              clipped=digest(sorted(compiled.clipped_weights.items())))
print("RESULT " + json.dumps(dict(fields=fields, seconds=seconds,
                                  peak_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)))
'''


def build(tree: str, name: str, size: int, profile: str) -> dict:
    """Digests of one build by the version exported under ``tree``, in a subprocess."""
    code = WORKER.format(tree=tree, bench=HERE, name=name, size=size, profile=profile)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=tree))
    lines = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    if out.returncode or not lines:
        raise SystemExit(f"{name} {size} {profile} in {tree}: {out.stderr.strip()[-3000:]}")
    return json.loads(lines[0][len("RESULT "):])


def differences(a, b, prefix=""):
    """Names of the fields whose digests differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


def summary(builds) -> str:
    seconds, peaks = [b["seconds"] for b in builds], [b["peak_gib"] for b in builds]
    spread = f" ({min(seconds):.2f}-{max(seconds):.2f})" if len(builds) > 1 else ""
    return f"{statistics.median(seconds):.2f} s{spread}, peak {max(peaks):.2f} GiB"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", help="revision A (git rev)")
    ap.add_argument("b", nargs="?", default=WORKTREE, help=f"revision B (default: {WORKTREE}, the working tree)")
    ap.add_argument("--networks", default="paper,conv-mix,conv,sparse-random,dense-blocks")
    ap.add_argument("--sizes", default="100000", help="comma-separated sizes of the bench_scale families")
    ap.add_argument("--profiles", default="chip,float64", help="comma-separated SemanticsProfile presets")
    ap.add_argument("--rounds", type=int, default=1, help="builds per version, alternating which goes first")
    args = ap.parse_args(argv)
    dest = tempfile.mkdtemp(prefix="s2emu-check-")
    try:
        trees = {}
        for label, rev in (("A", args.a), ("B", args.b)):
            trees[label] = os.path.join(dest, label)
            os.makedirs(trees[label])
            export(rev, "emu", trees[label])
        bad = []
        for name in args.networks.split(","):
            sizes = [0] if name in ("paper", "conv-mix") else [int(s) for s in args.sizes.split(",")]
            for size in sizes:
                for profile in args.profiles.split(","):
                    got = {"A": [], "B": []}
                    for r in range(args.rounds):
                        for label in ("A", "B") if r % 2 == 0 else ("B", "A"):
                            got[label].append(build(trees[label], name, size, profile))
                    diff = sorted({d for a, b in zip(got["A"], got["B"])
                                   for d in differences(a["fields"], b["fields"])})
                    what = f"{name}{f' {size:,}' if size else ''} {profile}"
                    print(f"{what}: {'identical' if not diff else 'DIFFERENT: ' + ', '.join(diff)} "
                          f"({len(got['A'][0]['fields'])} fields); build {summary(got['A'])} (A), "
                          f"{summary(got['B'])} (B)", flush=True)
                    bad += [f"{what}: {d}" for d in diff]
        print(f"identical={not bad}")
        return 1 if bad else 0
    finally:
        shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
