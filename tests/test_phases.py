"""emu.phases: each second goes to the innermost open phase of its thread, another thread's phases
are counted apart (as background), and
S2EMU_PHASES makes a process write its totals when it ends."""
import json
import os
import subprocess
import sys
import threading
import time

from emu import phases


def test_nested_phases_count_each_second_once(monkeypatch):
    monkeypatch.setattr(phases, "_totals", phases.defaultdict(float))
    monkeypatch.setattr(phases, "_counts", phases.defaultdict(int))
    t0 = time.perf_counter()
    with phases.phase("outer"):
        time.sleep(0.05)
        with phases.phase("inner"):
            time.sleep(0.1)
        time.sleep(0.05)
        other = threading.Thread(target=_background_work)
        other.start()
        other.join()
    wall = time.perf_counter() - t0
    got = phases.totals()
    assert set(got) == {"outer", "inner", "thread (background)", "nested (background)"}
    assert 0.095 <= got["inner"] < 0.2 and 0.095 <= got["outer"] < 0.3
    assert got["inner"] + got["outer"] <= wall + 1e-9
    # the other thread's phases nest on their own stack: its outer phase paused while its inner ran
    assert 0.02 <= got["thread (background)"] < 0.1 and 0.03 <= got["nested (background)"] < 0.1


def _background_work():
    with phases.phase("thread"):
        time.sleep(0.02)
        with phases.phase("nested"):
            time.sleep(0.03)


def test_the_totals_are_written_when_asked(tmp_path):
    out = tmp_path / "phases.json"
    code = "from emu.phases import phase\nwith phase('x'):\n    pass\n"
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, S2EMU_PHASES=str(out)))
    assert json.loads(out.read_text())["calls"] == {"x": 1}
    subprocess.run([sys.executable, "-c", code], check=True, env={k: v for k, v in os.environ.items()
                                                                   if k != "S2EMU_PHASES"})
