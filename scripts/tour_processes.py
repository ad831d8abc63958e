"""The tour's scenarios with real processes (scripts/tour_hostile.py): Ctrl-C, as a terminal sends it
to a command and its workers, at two points of its work (fractions of the CPU time a whole run
takes, however loaded the machine is); two sweeps on one results file; a file size limit (as a full
disk) while a command writes."""
from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from hostile import S2EMU, env, messages, tree_cpu  # noqa: E402


def _files(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} if folder.exists() else {}


def _process(argv, fraction=None, cpu=0.0, limit=None):
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    pre = (lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))) if limit else None
    proc = subprocess.Popen(S2EMU + argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(),
                            start_new_session=True, preexec_fn=pre)
    if fraction is not None:
        with contextlib.suppress(OSError):
            while proc.poll() is None and tree_cpu(proc.pid) < fraction * cpu:
                time.sleep(0.02)
            os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=900)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return proc.returncode, err, after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime


def process_scenarios(d: Path, w: Path) -> List[tuple]:
    """(name, class, what) of Ctrl-C at two points of seven commands, two sweeps on one file, a size limit."""
    out = []
    commands = {
        "run": lambda o: ["run", str(d / "m.nir"), "--input", str(d / "x.npy"), "--auto-scale", "--out",
                          str(o / "o.npz")],
        "validate": lambda o: ["validate", str(d / "m.nir"), "--input", str(d / "x.npy"), "--auto-scale", "--report",
                               str(o / "r.html"), "--out", str(o / "s.json")],
        "attribute": lambda o: ["attribute", str(d / "m.nir"), "--inputs", str(d / "samples"), "--labels",
                                str(d / "labels.npy"), "--auto-scale", "--report", str(o / "r.html"), "--out",
                                str(o / "s.json")],
        "calibrate": lambda o: ["calibrate", str(d / "m.nir"), "--input", str(d / "x.npy"), "--chip",
                                str(d / "rec.npz"), "--auto-scale", "--report", str(o / "r.html"), "--out",
                                str(o / "s.json")],
        "demo": lambda o: ["demo", "--per-class", "1", "--ticks", "20", "--out", str(o)],
        "train": lambda o: ["train", "--root", str(o), "--synthetic", "1", "--ticks", "20", "--batch-size", "11",
                            "--quiet", "--threads", "1", "--epochs", "3", "--checkpoint", str(o / "ck.pt"), "--nir",
                            str(o / "n.nir")],
        "sweep": lambda o: ["sweep", str(d / "m.nir"), "--data", str(d / "data.npz"), "--weight-bits", "8,6,4",
                            "--membrane-bits", "16,24", "--rounding", "truncate", "--workers", "2", "--auto-scale",
                            "--out", str(o / "s.jsonl")],
    }
    for name, argv in commands.items():
        folder = w / f"ctrl_c_{name}"
        folder.mkdir()
        rc, err, cpu = _process(argv(folder))
        before = _files(folder)
        for fraction in (0.3, 0.6):
            rc, err, _ = _process(argv(folder), fraction, cpu)
            said = messages(err)
            left = [p.name for p in folder.iterdir() if p.name.startswith(".s2emu") or p.name.endswith(".tmp")]
            resumable = name in ("train", "sweep")
            if "Traceback" in err:
                verdict = ("traceback", err.strip().splitlines()[-1])
            elif left:
                verdict = ("wrong", f"left {left}")
            elif rc == 130 and (len(said) != 1 or (not resumable and _files(folder) != before)):
                verdict = ("wrong", f"{len(said)} lines, outputs changed: {_files(folder) != before}")
            else:
                verdict = ("clean", "")
            out.append((f"Ctrl-C at {fraction:.0%} of {name} (exit {rc})",) + verdict)
            before = _files(folder)
    # two sweeps on one results file: the second refused with the first's pid
    folder = w / "two_sweeps"
    folder.mkdir()
    base = commands["sweep"](folder)
    base[base.index("--workers") + 1] = "0"
    a = subprocess.Popen(S2EMU + base, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    a.stdout.readline()
    a.send_signal(signal.SIGSTOP)
    b = subprocess.run(S2EMU + base + ["--scale-percentile", "95"], capture_output=True, text=True, env=env())
    a.send_signal(signal.SIGCONT)
    a.communicate()
    ok = b.returncode == 2 and f"pid {a.pid}" in b.stderr and a.returncode == 0
    out.append(("two sweeps on one --out", "clean" if ok else "silent", b.stderr.strip()[-200:]))
    # a file size limit (as a full disk) while a report is written: one line naming the file, nothing partial
    for name in ("validate", "attribute", "demo"):
        folder = w / f"full_{name}"
        folder.mkdir()
        rc, err, _ = _process(commands[name](folder), limit=200_000)
        said = messages(err)
        left = [p.name for p in folder.iterdir() if p.is_file() or p.name.startswith(".s2emu")]
        good = rc == 2 and len(said) == 1 and "File too large" in said[0] and not [n for n in left if n.endswith(
            (".html", ".json", ".nir")) or n.startswith(".s2emu")]
        out.append((f"file size limit during {name}", "traceback" if "Traceback" in err else "clean" if good else
                    "wrong", said[-1:]))
    return out
