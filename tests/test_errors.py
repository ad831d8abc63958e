"""Every user mistake is one line on stderr and exit 2 (130 for Ctrl-C), never a traceback,
and no partial output is left behind."""
import json
import os

import nir
import numpy as np
import pytest

from emu.cli import main
from emu.engine import emulator as emulator_module

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "emu", "examples")


def _graph(dt=None):
    meta = {} if dt is None else {"dt": dt}
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([3])),
        "fc": nir.Linear(weight=np.full((2, 3), 0.6)),
        "lif": nir.LIF(tau=np.full(2, 0.01), r=np.full(2, 10.0), v_leak=np.zeros(2), v_threshold=np.ones(2),
                       v_reset=np.zeros(2)),
        "output": nir.Output(output_type=np.array([2]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], metadata=meta, type_check=False)


@pytest.fixture
def files(tmp_path):
    nir.write(str(tmp_path / "m.nir"), _graph())
    nir.write(str(tmp_path / "dt.nir"), _graph(1e-3))
    (tmp_path / "in.json").write_text(json.dumps({"0": [1, 2, 3], "2": [5]}))
    return tmp_path


def _one_line(capsys, rc, expect_rc=2):
    err = capsys.readouterr().err
    assert rc == expect_rc, err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and lines, err
    return lines[-1]


@pytest.mark.parametrize("extra, words", [
    (["--dt", "inf"], "argument --dt: must be a finite number, got inf"),
    (["--dt", "-1e-3"], "argument --dt: must be > 0, got -1e-3"),
    (["--dt", "nan"], "argument --dt: must be a finite number"),
    (["--dt", "1e-3", "--auto-scale", "--scale-percentile", "200"], "must be a percentile in (0, 100], got 200"),
    ([], "m.nir has no dt in its metadata: give the tick length with --dt SECONDS"),
])
def test_bad_numbers_and_a_missing_dt(files, capsys, extra, words):
    with pytest.raises(SystemExit) if extra else _nothing():
        rc = main(["run", str(files / "m.nir"), "--input", str(files / "in.json"), "--out", str(files / "o.json"),
                   *extra])
        line = _one_line(capsys, rc)
        assert words in line, line
    if extra:
        assert words in capsys.readouterr().err
    assert not (files / "o.json").exists()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_read_only_output_folder_is_refused_before_the_run(files, capsys, monkeypatch):
    import emu.cli.files

    ro = files / "ro"
    ro.mkdir()
    # the folder as an unprivileged user sees it (root may write anywhere)
    monkeypatch.setattr(emu.cli.files.os, "access", lambda path, mode: os.fspath(path) != os.fspath(ro))
    ran = []
    monkeypatch.setattr(emulator_module.Emulator, "run", lambda *a, **k: ran.append(1))
    for argv in (["run", str(files / "dt.nir"), "--input", str(files / "in.json"), "--out", str(ro / "o.json")],
                 ["validate", str(files / "dt.nir"), "--input", str(files / "in.json"), "--report",
                  str(ro / "r.html")],
                 ["demo", "--out", str(ro / "demo")]):
        line = _one_line(capsys, main(argv))
        assert "is not writable" in line and not ran, line


def test_the_read_only_check_itself(files):
    from emu.cli.files import CommandFileError, check_outputs

    with pytest.raises(CommandFileError, match="does not exist"):
        check_outputs(files / "nowhere" / "o.json")
    with pytest.raises(CommandFileError, match="is a folder"):
        check_outputs(files)


def test_ctrl_c_exits_130_with_one_line_and_no_partial_file(files, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(emulator_module.Emulator, "run", interrupted)
    rc = main(["run", str(files / "dt.nir"), "--input", str(files / "in.json"), "--out", str(files / "o.json")])
    line = _one_line(capsys, rc, 130)
    assert line == "s2emu run: interrupted; no partial output was written"
    assert sorted(p.name for p in files.iterdir()) == ["dt.nir", "in.json", "m.nir"]


def test_demo_with_a_model_without_dt(files, capsys):
    line = _one_line(capsys, main(["demo", "--model", str(files / "m.nir"), "--out", str(files / "demo")]))
    assert "m.nir has no dt in its metadata" in line and "--dt" in line


@pytest.mark.parametrize("arrays, words", [
    (dict(x=[1], y=[1], t=[0]), "field p is missing"),
    (dict(x=np.zeros(0, int), y=np.zeros(0, int), p=np.zeros(0, int), t=np.zeros(0, int)),
     "no events, so the number of ticks is unknown"),
])
def test_event_files_name_what_is_missing(tmp_path, capsys, arrays, words):
    np.savez(tmp_path / "ev.npz", **arrays)
    line = _one_line(capsys, main(["run", os.path.join(EXAMPLE, "conv_net.nir"), "--input", str(tmp_path / "ev.npz"),
                                   "--dt", "1e-3", "--auto-scale", "--conn-delay", "0",
                                   "--out", str(tmp_path / "o.json")]))
    assert words in line, line


def test_fit_exits_3_when_the_model_does_not_fit(files, capsys):
    assert main(["fit", str(files / "dt.nir"), "--ticks", "10"]) == 0
    assert main(["fit", str(files / "dt.nir"), "--ticks", "100000000"]) == 3
    assert "does NOT fit" in capsys.readouterr().out
    line = _one_line(capsys, main(["fit", str(files / "dt.nir"), "--max-atoms", "nope=3"]))
    assert "unknown populations ['nope']" in line


def test_weights_truncated_to_zero_are_warned_about_with_counts(tmp_path, capsys):
    """Without a weight scale the chip's int8 truncation zeroes almost every float weight below 1."""
    rc = main(["run", os.path.join(EXAMPLE, "conv_net.nir"), "--input", os.path.join(EXAMPLE, "circle_events.npz"),
               "--conn-delay", "0", "--out", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert rc == 0
    assert "warning: projection fc: " in err and "non-zero weights become 0 as 8-bit integers (truncate)" in err
    assert "--auto-scale" in err
    meta = json.loads((tmp_path / "o.json").read_text())["meta"]
    assert meta["warnings"] and meta["settings"]["dt"] == "graph metadata"
