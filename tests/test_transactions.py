"""Every command's outputs are one transaction (issue 27, parts 1, 2 and 7): Ctrl-C or a failed write
leaves the previous output set byte for byte and no temporary, says one line and exits 130 (or 2);
every file of a set names it; two sweeps on one results file: the second is refused with the first's
pid. Real SIGINTs go to real processes of attribute, demo, calibrate, train and sweep --workers 2.

These tests use the command line only (nothing new from emu), so each runs on older code too: on
the code before issue 27 every one of them fails."""
import errno
import json
import os
import resource
import signal
import subprocess
import sys
import time

import pytest

from emu.cli import main
from hostile import S2EMU, build_files, env, made_with, messages, one_line, snapshot_folder, tree_cpu


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return build_files(tmp_path_factory.mktemp("transactions"))


# --- a failure or Ctrl-C between two writes leaves the previous set --------------------------------------

def _interrupt_report_write(monkeypatch, after: bool):
    """Report.write raises KeyboardInterrupt (after writing, when ``after``)."""
    from validate.report import Report

    real = Report.write

    def write(self, path):
        if after:
            real(self, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(Report, "write", write)


@pytest.mark.parametrize("command", ["attribute", "calibrate", "validate", "compare"])
def test_ctrl_c_between_the_writes_of_a_command_leaves_its_previous_set(files, tmp_path, capsys, monkeypatch, command):
    work = tmp_path / "work"
    work.mkdir()
    model = str(files / "m.nir")
    argv = {"attribute": ["attribute", model, "--inputs", str(files / "samples"), "--labels", str(files / "labels.npy"),
                          "--auto-scale", "--report", str(work / "r.html"), "--out", str(work / "s.json")],
            "calibrate": ["calibrate", model, "--input", str(files / "x.npy"), "--chip", str(files / "rec.npz"),
                          "--auto-scale", "--report", str(work / "r.html"), "--out", str(work / "s.json")],
            "validate": ["validate", model, "--input", str(files / "x.npy"), "--auto-scale",
                         "--report", str(work / "r.html"), "--out", str(work / "s.json")],
            "compare": ["compare", str(files / "rec.npz"), str(files / "rec.npz"), "--report", str(work / "r.html"),
                        "--out", str(work / "s.json")]}[command]
    assert main(argv) == 0
    before = snapshot_folder(work)
    assert set(before) == {"r.html", "r.json", "s.json"}
    capsys.readouterr()
    other = {"attribute": ["--ticks", "70"], "calibrate": ["--ticks", "60"], "validate": ["--ticks", "90"],
             "compare": ["--max-lag", "3"]}[command]  # a run whose files differ from the first's
    with monkeypatch.context() as m:
        # the report written, then Ctrl-C: on main the new report stood beside the old summary
        _interrupt_report_write(m, after=True)
        rc = main(argv + other)
    line = one_line(capsys, rc, 130)
    assert line == f"s2emu {command}: interrupted; no partial output was written"
    assert snapshot_folder(work) == before


def test_a_full_disk_names_the_file_and_leaves_the_previous_report_and_summary(files, tmp_path, capsys, monkeypatch):
    """Room for part of the set only: on main the new summary stood beside the old report, and the error
    said `[Errno 28] No space left on device`, naming no file."""
    work = tmp_path / "work"
    work.mkdir()
    argv = ["compare", str(files / "rec.npz"), str(files / "rec.npz"), "--report", str(work / "r.html"),
            "--out", str(work / "s.json")]
    assert main(argv) == 0
    before = snapshot_folder(work)
    capsys.readouterr()
    room = [len(before["r.html"]) + len(before["r.json"]) + 8]
    real_open, real_fdopen = open, os.fdopen

    class Disk:
        def __init__(self, f):
            self.f = f

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            if len(data) > room[0]:
                raise OSError(errno.ENOSPC, "No space left on device")
            room[0] -= len(data)
            return self.f.write(data)

    def fdopen(fd, mode="r", *a, **k):
        f = real_fdopen(fd, mode, *a, **k)
        return Disk(f) if "w" in mode and str(work) in os.readlink(f"/proc/self/fd/{fd}") else f

    monkeypatch.setattr("builtins.open", lambda p, mode="r", *a, **k: Disk(real_open(p, mode, *a, **k))
                        if "w" in mode and str(work) in str(p) else real_open(p, mode, *a, **k))
    monkeypatch.setattr(os, "fdopen", fdopen)
    rc = main(argv)
    monkeypatch.undo()
    line = one_line(capsys, rc)
    named = [f"s2emu compare: error: {work / name}: No space left on device" for name in before]
    assert line in named, line
    assert snapshot_folder(work) == before


def test_a_failed_demo_leaves_the_older_folder_and_every_file_names_its_set(tmp_path, capsys, monkeypatch):
    """demo --percentile 90 over an older folder, stopped as it writes its report: on main the new chip
    model stood beside the old summary, and the summary did not say which percentile it was made with."""
    out = tmp_path / "demo"
    argv = ["demo", "--per-class", "1", "--ticks", "20", "--out", str(out)]
    assert main(argv) == 0
    before = snapshot_folder(out)
    summary = json.loads(before["demo_summary.json"])
    chip = json.loads(before["gesture_chip_int8.json"])
    report = json.loads(before["demo_report.json"])
    assert len({made_with(out / name) for name in ("demo_summary.json", "gesture_chip_int8.json",
                                                   "demo_report.json")}) == 1
    assert summary["output_set"]["settings"]["percentile"] == chip["percentile"] == 99.9 and report
    capsys.readouterr()
    with monkeypatch.context() as m:
        _interrupt_report_write(m, after=True)
        rc = main(argv + ["--percentile", "90"])
    assert one_line(capsys, rc, 130) == "s2emu demo: interrupted; no partial output was written"
    assert snapshot_folder(out) == before


def test_ctrl_c_while_a_checkpoint_is_saved_leaves_the_last_one_and_no_temporary(tmp_path, capsys, monkeypatch):
    """On main a `ck.pt.tmp` was left (3 of 3 tries in the issue's tour)."""
    import torch

    argv = ["train", "--root", str(tmp_path), "--synthetic", "1", "--ticks", "20", "--batch-size", "11", "--quiet",
            "--threads", "1", "--checkpoint", str(tmp_path / "ck.pt")]
    assert main(argv + ["--epochs", "1"]) == 0
    before = snapshot_folder(tmp_path)
    capsys.readouterr()
    real = torch.save

    def save(obj, f, *a, **k):
        real(obj, f, *a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", save)
    rc = main(argv + ["--epochs", "2"])
    monkeypatch.undo()
    assert one_line(capsys, rc, 130) == "s2emu train: interrupted; no partial output was written"
    assert snapshot_folder(tmp_path) == before
    assert torch.load(tmp_path / "ck.pt", weights_only=False)["epoch"] == 1


# --- one writer per results file: two real sweeps ---------------------------------------------------------

def test_a_second_sweep_on_the_same_results_is_refused_with_the_first_ones_pid(files, tmp_path):
    """Sweep A (percentile 99.9) is paused inside its run; sweep B (percentile 95) on the same --out is
    refused with A's pid; A then finishes alone and reports its own rows. On main B ran, both appended,
    and A's "chosen" could be B's row."""
    out = tmp_path / "s.jsonl"
    common = ["sweep", str(files / "m.nir"), "--data", str(files / "data.npz"), "--weight-bits", "8,6",
              "--membrane-bits", "16", "--rounding", "truncate", "--workers", "0", "--auto-scale", "--out", str(out)]
    a = subprocess.Popen(S2EMU + common + ["--scale-percentile", "99.9"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env())
    try:
        first = a.stdout.readline()  # "4 samples x 60 ticks; ...": A has its data (and its lock)
        assert "samples x" in first, first + a.stderr.read()
        a.send_signal(signal.SIGSTOP)
        b = subprocess.run(S2EMU + common + ["--scale-percentile", "95"], capture_output=True, text=True, env=env(),
                           timeout=600)
        a.send_signal(signal.SIGCONT)
        a_out, a_err = a.communicate(timeout=600)
    finally:
        a.kill()
    assert b.returncode == 2, b.stdout + b.stderr
    assert messages(b.stderr) == [f"s2emu sweep: error: {out}: another process is writing it (--out is locked by pid "
                                  f"{a.pid}); wait for it to finish, or give another --out"]
    assert a.returncode == 0, a_err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and {r["settings"]["options"]["scale_percentile"] for r in rows} == {99.9}


# --- real SIGINTs at several points ---------------------------------------------------------------------------

def _run(argv, fraction: float = None, cpu: float = 0.0):
    """Run ``argv`` in a new process; with ``fraction``, SIGINT it once it has used that fraction of
    ``cpu`` seconds of CPU time, its worker processes' included (a point in its work however loaded
    the machine is). Returns (exit status, stderr lines without progress bars, CPU seconds it used)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(S2EMU + argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(),
                            start_new_session=True)
    if fraction is not None:
        try:
            while proc.poll() is None and tree_cpu(proc.pid) < fraction * cpu:
                time.sleep(0.02)
            os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: to the command and its workers
        except (FileNotFoundError, ProcessLookupError):
            pass  # it finished first
    _, err = proc.communicate(timeout=600)
    print(f"{argv[0]} at {fraction} of {cpu:.1f} s CPU: exit {proc.returncode}: {messages(err)[-1:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert "Traceback" not in err, err
    used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return proc.returncode, messages(err), used


def _clean(folder) -> None:
    left = [p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert not left, left


def _one_set(folder, names) -> set:
    """What the JSON files ``names`` in ``folder`` say they were made with (one: not mixed)."""
    return {made_with(folder / name) for name in names}


#: where to interrupt: fractions of the CPU time a whole run takes (imports, reading, running, writing)
POINTS = (0.3, 0.6)

#: per command: its arguments (inputs from the fixture, outputs in ``work``), what changes in the runs that
#: are interrupted, and the JSON files of its set
COMMANDS = {
    "attribute": (lambda f, w: ["attribute", str(f / "m.nir"), "--inputs", str(f / "samples"), "--labels",
                                str(f / "labels.npy"), "--auto-scale", "--report", str(w / "r.html"), "--out",
                                str(w / "s.json")], ["--chunk", "2"], ["r.json", "s.json"]),
    "calibrate": (lambda f, w: ["calibrate", str(f / "m.nir"), "--input", str(f / "x.npy"), "--chip",
                                str(f / "rec.npz"), "--auto-scale", "--report", str(w / "r.html"), "--out",
                                str(w / "s.json")], ["--ticks", "60"], ["r.json", "s.json"]),
    "demo": (lambda f, w: ["demo", "--per-class", "1", "--ticks", "20", "--out", str(w)], ["--percentile", "90"],
             ["demo_report.json", "demo_summary.json", "gesture_chip_int8.json"]),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_real_ctrl_c_leaves_the_old_set_or_a_whole_new_one(files, tmp_path, command):
    args, change, jsons = COMMANDS[command]
    work = tmp_path / "work"
    work.mkdir()
    rc, said, cpu = _run(args(files, work))
    assert rc in (0, 4), said
    before = snapshot_folder(work)
    for fraction in POINTS:
        rc, said, _ = _run(args(files, work) + change, fraction, cpu)
        _clean(work)
        if rc == 130:
            assert said == [f"s2emu {command}: interrupted; no partial output was written"], said
            assert snapshot_folder(work) == before
        else:  # finished before the signal (or stopped as Python started or ended: killed by it, -2)
            assert rc in (0, 4, -signal.SIGINT) and not [s for s in said if "error" in s], said
            before = snapshot_folder(work)
        assert len(_one_set(work, jsons)) == 1


def test_real_ctrl_c_in_training_keeps_whole_epochs_and_the_old_graph(tmp_path):
    import torch

    argv = ["train", "--root", str(tmp_path), "--synthetic", "1", "--ticks", "20", "--batch-size", "11", "--quiet",
            "--threads", "1", "--checkpoint", str(tmp_path / "ck.pt"), "--nir", str(tmp_path / "net.nir")]
    rc, said, cpu = _run(argv + ["--epochs", "1"])
    assert rc == 0, said
    graph = (tmp_path / "net.nir").read_bytes()
    epoch = 1
    for fraction in POINTS:
        rc, said, _ = _run(argv + ["--epochs", "1000"], fraction, cpu)
        _clean(tmp_path)
        assert rc in (130, -signal.SIGINT), said
        assert (tmp_path / "net.nir").read_bytes() == graph  # the graph of the finished run, not a half one
        now = torch.load(tmp_path / "ck.pt", weights_only=True)["epoch"]
        if rc == 130:
            assert len(said) == 1 and said[0].startswith("s2emu train: interrupted; no partial output was written"), said
            if now > epoch:  # the checkpoint went on: the message says so, and how far
                assert said[0].endswith(f"ck.pt holds epoch {now} of 1000 (run again to resume)"), said
        epoch = now


def test_real_ctrl_c_in_a_sweep_with_workers_is_one_line_and_keeps_whole_rows(files, tmp_path):
    """On main the workers printed 33-105 lines of tracebacks before the one-line message, which said
    that nothing was written while the results had grown."""
    out = tmp_path / "s.jsonl"
    argv = ["sweep", str(files / "m.nir"), "--data", str(files / "data.npz"), "--weight-bits", "8,6,4",
            "--membrane-bits", "16,24", "--rounding", "truncate", "--workers", "2", "--auto-scale", "--out", str(out)]
    rc, said, cpu = _run(argv + ["--out", str(tmp_path / "whole.jsonl")])
    assert rc == 0, said
    had = 0
    for fraction in POINTS:
        rc, said, _ = _run(argv, fraction, cpu)
        _clean(tmp_path)
        if rc == 0:
            break
        assert rc in (130, -signal.SIGINT), said
        rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
        assert all(r["status"] == "ok" for r in rows)
        if rc == 130:
            assert len(said) == 1 and said[0].startswith("s2emu sweep: interrupted; no partial output was written"), said
            if len(rows) > had:
                assert said[0].endswith(f"s.jsonl holds every finished point ({len(rows) - had} new; run again to "
                                        f"resume)"), said
        had = len(rows)


def test_a_command_ending_while_its_background_float_run_goes_on_exits_with_its_status():
    """attribute and demo compute the float run on a background thread; interrupted or failed
    before it ends, Python's exit tore it down inside torch (SIGABRT, "terminate called without
    an active exception") instead of exiting with 130 or 2."""
    code = ("import sys, time, torch\n"
            "from emu.parallel import in_background\n"
            "from emu.cli import _leave_background_work\n"
            "def spin():\n"
            "    x = torch.zeros(300_000)\n"
            "    while True:\n"
            "        x = x * 1.0001 + 1\n"
            "in_background(spin)\n"
            "time.sleep(0.5)\n"
            "print('done', flush=True)\n"
            "_leave_background_work(130)\n"
            "sys.exit(0)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (130, "done"), done.stderr
    assert "terminate called" not in done.stderr
