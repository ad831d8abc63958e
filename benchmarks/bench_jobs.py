"""The whole job, not the engine alone: wall time of ``s2emu demo``, ``validate --inputs`` and
``attribute`` on synthetic sets in the real DVS Gesture layout, split by phase, and the
ratio job time / engine time.

    python benchmarks/bench_jobs.py                       # 3 rounds, both sets, all three jobs
    python benchmarks/bench_jobs.py --sets demo --rounds 5

Sets (written once under ``--work``, in tonic's DVS Gesture layout, read back through
tonic by the commands as a user's files would be):

* ``demo``: the demo's own set, 33 samples x 300 ticks (``s2emu demo`` writes and reads it);
* ``gesture``: 264 samples x 1,800 ticks (24 per class; the size of the real test split).

Each job is a fresh process of the console command, after setup (kernels compiled), with
the float-run cache off (``S2EMU_NO_CACHE=1``: every round computes everything) unless
``--cached``. Its phases come from :mod:`emu.phases` (``S2EMU_PHASES``): data (reading
events, framing), build (converting and laying out the network), emulator (the engine's
runs), float reference (``attribute`` computes it on another thread while the emulator
runs: printed apart, as background), attribution (its counting), validation (per-sample
measures), report (writing HTML and JSON); ``imports`` is measured on its own (a fresh process
importing what the commands import), ``other`` is the rest of the wall time. Printed per
job: the median over rounds of each, with the spread, and ``job/engine`` = wall time over
emulator time. Targets of issue 28 on 2 cores: demo within 6 s; validate --inputs and
attribute on 264 x 1,800 within 60 s each.
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

from emu.apps.demo import DEMO_SEED
from emu.apps.gesture.data import SynthConfig, ensure_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]
S2EMU = str(Path(sys.executable).parent / "s2emu")
MODEL = ROOT / "emu" / "models" / "gesture_float.nir"
SETS = {"demo": (3, 300), "gesture": (24, 1800)}  # samples per class (11 classes), ticks
PHASES = ("data", "build", "emulator", "float reference", "attribution", "validation", "report")
BACKGROUND = ("float reference (background)",)  # on another thread, while the phases above run
CONVERT = ["--auto-scale", "--scale-percentile", "99.9", "--saturate-weights"]  # the demo's PTQ


def make_set(work: Path, name: str) -> Path:
    """The synthetic set ``name`` under ``work`` (written once; its marker says how)."""
    per_class, ticks = SETS[name]
    root = work / f"set-{name}"
    ensure_synthetic_dataset(root, n_train_per_class=0, n_test_per_class=per_class, seed=DEMO_SEED,
                             config=SynthConfig(duration_ms=max(ticks, 300)), log=lambda s: None)
    return root


def commands(job: str, root: Path, ticks: int, out: Path):
    if job == "demo":
        return [S2EMU, "demo", "--out", str(out / "demo")]
    base = [S2EMU, job, str(MODEL), "--inputs", str(root), "--ticks", str(ticks), *CONVERT,
            "--report", str(out / f"{job}.html")]
    return base


def run_job(cmd, env: dict) -> dict:
    """Wall time and phases of one fresh process."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        phases_file = f.name
    env = dict(env, S2EMU_PHASES=phases_file)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    seconds = json.loads(Path(phases_file).read_text())["seconds"]
    os.unlink(phases_file)
    return dict(wall=wall, **{p: seconds.get(p, 0.0) for p in PHASES + BACKGROUND})


def import_time(env: dict) -> float:
    code = "import emu.cli.attribute, emu.cli.validate, emu.cli.demo"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)
    return time.perf_counter() - t0


def _spread(values) -> str:
    return f"{statistics.median(values):7.2f} ({min(values):.2f}-{max(values):.2f})"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="demo,gesture")
    ap.add_argument("--jobs", default="demo,validate,attribute")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cached", action="store_true", help="leave the float-run cache on (a warm second run)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "s2emu-bench-jobs")
    args = ap.parse_args(argv)
    env = dict(os.environ)
    if args.cached:
        env["S2EMU_CACHE_DIR"] = str(args.work / "float-runs")
    else:
        env["S2EMU_NO_CACHE"] = "1"
    env.pop("S2EMU_FAST", None)
    load = os.getloadavg()[0]
    print(f"host load {load:.1f} on {os.cpu_count()} cores; float-run cache {'on' if args.cached else 'off'}")
    imports = [import_time(env) for _ in range(3)]
    print(f"imports (fresh process, median of 3): {statistics.median(imports):.2f} s")
    for set_name in args.sets.split(","):
        per_class, ticks = SETS[set_name]
        root = make_set(args.work, set_name)
        for job in args.jobs.split(","):
            if job == "demo" and set_name != "demo":
                continue  # the demo runs on its own set
            rows = []
            for _ in range(args.rounds):
                rows.append(run_job(commands(job, root, ticks, args.work / "out"), env))
            n = 11 * per_class
            print(f"\n{job} on {set_name} ({n} samples x {ticks} ticks), {args.rounds} rounds: median (min-max) s")
            print(f"  wall            {_spread([r['wall'] for r in rows])}")
            print(f"  imports         {statistics.median(imports):7.2f}")
            for p in PHASES:
                if any(r[p] for r in rows):
                    print(f"  {p:<15} {_spread([r[p] for r in rows])}")
            for p in BACKGROUND:
                if any(r[p] for r in rows):
                    print(f"  {p:<15} {_spread([r[p] for r in rows])}  (overlaps the phases above)")
            other = [r["wall"] - statistics.median(imports) - sum(r[p] for p in PHASES) for r in rows]
            print(f"  other           {_spread(other)}")
            ratio = [r["wall"] / r["emulator"] for r in rows if r["emulator"] > 0]
            if ratio:
                print(f"  job/engine      {_spread(ratio)}")
            print(f"  load after      {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
