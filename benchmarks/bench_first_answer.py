"""Time to first answer: how long a new user waits for the first ``s2emu run``, against the time
Python takes to import torch, numba and snntorch, all measured in this run.

    python benchmarks/bench_first_answer.py            # 3 rounds
    python benchmarks/bench_first_answer.py --demo     # also s2emu demo after setup (about a minute)

Each measurement is a fresh process. Per round, in order:

* ``import_s``: ``python -c "import torch, numba, snntorch"`` (the yardstick);
* ``cold_run_s``: the first ``s2emu run`` of the bundled example with an empty numba cache
  (what a user paid before the kernels were compiled at setup);
* ``warm_s``: ``python -m emu.apps.warm`` into that cache (what ``make setup`` does: the engine's
  kernels and those above it);
* ``first_run_s``: the first ``s2emu run`` after it;
* ``demo_after_setup_s`` (``--demo``): the first ``s2emu demo`` after it, into a new folder (it
  writes its synthetic set), with no float-run cache (a new user has none).

The last lines are the medians and ``first_run_over_import`` (target: at most 3).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
S2EMU = [str(Path(sys.executable).parent / "s2emu")]  # the console command a user runs
EXAMPLE = ["run", str(ROOT / "emu/examples/conv_net.nir"), "--input", str(ROOT / "emu/examples/circle_events.npz"),
           "--auto-scale", "--conn-delay", "0"]


def timed(cmd, env) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - t0


def one_round(work: Path, demo: bool) -> dict:
    cache = tempfile.mkdtemp(dir=work)
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, S2EMU_NO_CACHE="1")
    out = str(work / "run.json")
    row = dict(import_s=timed([sys.executable, "-c", "import torch, numba, snntorch"], env),
               cold_run_s=timed(S2EMU + EXAMPLE + ["--out", out], env))
    cache = tempfile.mkdtemp(dir=work)
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, S2EMU_NO_CACHE="1")
    row["warm_s"] = timed([sys.executable, "-m", "emu.apps.warm"], env)
    row["first_run_s"] = timed(S2EMU + EXAMPLE + ["--out", out], env)
    if demo:
        row["demo_after_setup_s"] = timed(S2EMU + ["demo", "--out", tempfile.mkdtemp(dir=work)], env)
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--demo", action="store_true", help="also time s2emu demo after setup")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            rows.append(one_round(Path(tmp), args.demo))
            print(f"round {r + 1}: " + ", ".join(f"{k}={v:.2f}" for k, v in rows[-1].items()), flush=True)
    med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
    print("median: " + ", ".join(f"{k}={v:.2f}" for k, v in med.items()))
    print(f"cold_run_over_import={med['cold_run_s'] / med['import_s']:.2f}")
    print(f"first_run_over_import={med['first_run_s'] / med['import_s']:.2f}")


if __name__ == "__main__":
    main()
