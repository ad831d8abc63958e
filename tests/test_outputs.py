"""The mechanism of issue 27, parts 1 and 2 (:mod:`emu.outputs`): an output set is put in place
together or not at all and leaves no temporary; one process at a time holds a results file's lock.
The commands that use them: tests/test_transactions.py."""
import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from emu.outputs import OutputError, OutputSet, exclusive
from hostile import build_files, env


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return build_files(tmp_path_factory.mktemp("outputs"))


# --- the mechanism ------------------------------------------------------------------------------------

def test_a_set_is_put_in_place_together_or_not_at_all(tmp_path):
    (tmp_path / "a.json").write_text("old a")
    with OutputSet("t") as outputs:
        outputs.write(tmp_path / "a.json", "new a")
        staged = outputs.path(tmp_path / "r.html")
        staged.write_text("report")
        staged.with_suffix(".json").write_text("beside the report")  # a file written beside a staged one
        assert (tmp_path / "a.json").read_text() == "old a" and not (tmp_path / "r.html").exists()
    assert (tmp_path / "a.json").read_text() == "new a" and (tmp_path / "r.json").read_text() == "beside the report"
    assert outputs.written == [tmp_path / "a.json", tmp_path / "r.html", tmp_path / "r.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "r.html", "r.json"]

    for stop in (KeyboardInterrupt, ValueError):
        with pytest.raises(stop):
            with OutputSet("t") as outputs:
                outputs.write(tmp_path / "a.json", "newer a")
                outputs.write(tmp_path / "b.json", "b")
                raise stop()
        assert (tmp_path / "a.json").read_text() == "new a"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "r.html", "r.json"]


def test_staging_left_by_a_killed_process_is_removed_by_the_next_set(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".s2emu-partial-{dead.stdout.strip()}-0123456789ab"
    stale.mkdir()
    (stale / "half.json").write_text("{")
    with OutputSet("t") as outputs:
        outputs.write(tmp_path / "x.json", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_a_full_disk_names_the_file_and_leaves_the_previous_set(tmp_path, monkeypatch):
    (tmp_path / "s.json").write_text("old")
    real_open = open

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("builtins.open", lambda p, mode="r", *a, **k: Full(real_open(p, mode, *a, **k))
                        if "w" in mode and str(tmp_path) in str(p) else real_open(p, mode, *a, **k))
    with pytest.raises(OSError) as info:
        with OutputSet("t") as outputs:
            outputs.write(tmp_path / "s.json", "new")
    assert info.value.filename == str(tmp_path / "s.json") and info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert (tmp_path / "s.json").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]


HOLDER = textwrap.dedent("""
    import sys, time
    from emu.outputs import exclusive
    with exclusive(sys.argv[1]):
        print("held", flush=True)
        time.sleep(120)
""")


def _holder(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True, env=env())
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_the_sweep_holds_its_lock_while_points_run(files, tmp_path):
    """While run_sweep evaluates, another process cannot take the results file's lock."""
    from emu.apps.sweep import grid, run_sweep
    from emu.apps.sweep.points import evaluate_point

    out = tmp_path / "s.jsonl"
    tries = []

    def evaluate(task):
        probe = subprocess.run([sys.executable, "-c", "import sys\nfrom emu.outputs import exclusive\n"
                                "with exclusive(sys.argv[1]): pass", str(out)],
                               capture_output=True, text=True, env=env())
        tries.append(probe)
        return evaluate_point(task)

    data = np.load(files / "data.npz")
    run_sweep(files / "m.nir", data["inputs"], data["labels"], grid([8], [16], ["truncate"]), out,
              options=dict(dt=1e-3, integrator="exponential", weight_scale="auto", scale_percentile=99.9, conn_delay=1,
                           allow_unsupported=False), workers=0, evaluate=evaluate)
    assert len(tries) == 1 and tries[0].returncode != 0
    assert f"locked by pid {os.getpid()}" in tries[0].stderr


def test_the_lock_is_reentrant_in_one_process_and_refused_from_another(tmp_path):
    out = tmp_path / "r.jsonl"
    with exclusive(out):
        with exclusive(out):  # the CLI holds it around run_sweep, which takes it again
            pass
        probe = subprocess.run([sys.executable, "-c", "import sys\nfrom emu.outputs import exclusive\n"
                                "with exclusive(sys.argv[1]): pass", str(out)],
                               capture_output=True, text=True, env=env())
        assert probe.returncode != 0 and f"locked by pid {os.getpid()}" in probe.stderr
    with exclusive(out):
        pass
    with pytest.raises(OutputError, match="locked by pid"):
        holder = _holder(out)
        try:
            with exclusive(out):
                pass
        finally:
            holder.kill()
            holder.wait()
