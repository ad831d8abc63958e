"""Every command that converts weights says when the chip's integers zero most of a projection's
weights: on stderr, in its JSON and in its report, through one function (issue 26, part 4)."""
import json
import warnings

import nir
import numpy as np
import pytest

from netgen import lif_chain_graph
from emu.cli import main
from emu.engine import Emulator
from emu.nir_import import from_nir
from emu.settings import resolve
from emu.spike_io import save_recording
from emu.testing import run_chip

ZEROED = "non-zero weights become 0 as 8-bit integers (truncate)"


def _unscaled_graph():
    """Input 12 -> fc1 -> LIF 20 -> fc2 -> LIF 5: float weights below 1, which int8 truncation zeroes
    without a weight scale."""
    return lif_chain_graph(np.random.default_rng(0), ((0.3, 0.2), (0.3, 0.2)))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("zeroed")
    graph = _unscaled_graph()
    nir.write(str(d / "m.nir"), graph)
    rng = np.random.default_rng(1)
    (d / "samples").mkdir()
    for i in range(3):
        np.save(d / "samples" / f"s{i}.npy", rng.random((60, 12)) < 0.3)
    np.save(d / "labels.npy", np.array([0, 1, 2]))
    x = np.load(d / "samples" / "s0.npy")
    np.save(d / "x.npy", x)
    np.savez(d / "data.npz", inputs=np.stack([np.load(d / "samples" / f"s{i}.npy") for i in range(3)]),
             labels=np.array([0, 1, 2]))
    settings = resolve({}, graph)
    save_recording(Emulator(from_nir(graph, settings.conversion), settings.profile)(x), d / "rec.npz")
    return d


def _said(capsys, rc, expect=0):
    err = capsys.readouterr().err
    assert rc == expect, err
    lines = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert any("projection fc1: " in line and ZEROED in line and "--auto-scale" in line for line in lines), err
    return lines


def _in_report(path):
    report = json.loads(path.with_suffix(".json").read_text())
    html = path.read_text()
    found = [w for w in report["warnings"] if "projection" in w]
    # shown right under the finding, before any table or figure
    assert all(html.index(f"Warning: {w[:40]}") < html.index("<table") for w in found)
    return [f"Warning: {w}" for w in found]


def _json_warnings(data):
    return [w for w in data.get("warnings", []) if ZEROED in w]


@pytest.mark.parametrize("command", ["validate", "validate_inputs", "attribute", "calibrate"])
def test_commands_with_a_report_warn_on_stderr_in_json_and_report(files, tmp_path, capsys, command):
    model, rep, out = str(files / "m.nir"), tmp_path / "r.html", tmp_path / "out.json"
    argv = {"validate": ["validate", model, "--input", str(files / "x.npy"), "--report", str(rep), "--out", str(out)],
            "validate_inputs": ["validate", model, "--inputs", str(files / "samples"), "--report", str(rep),
                                "--out", str(out)],
            "attribute": ["attribute", model, "--inputs", str(files / "samples"), "--labels",
                          str(files / "labels.npy"), "--report", str(rep), "--out", str(out)],
            "calibrate": ["calibrate", model, "--input", str(files / "x.npy"), "--chip", str(files / "rec.npz"),
                          "--reset", "subtract", "--integrator", "exponential", "--out", str(out), "--report",
                          str(rep)]}[command]
    lines = _said(capsys, main(argv))
    assert len(_json_warnings(json.loads(out.read_text()))) == len(lines) == len(_in_report(rep)) == 2


def test_run_fit_and_chip_script_warn(files, tmp_path, capsys):
    model = str(files / "m.nir")
    _said(capsys, main(["run", model, "--input", str(files / "x.npy"), "--out", str(tmp_path / "o.json")]))
    assert len(_json_warnings(json.loads((tmp_path / "o.json").read_text())["meta"])) == 2
    rc = main(["fit", model, "--json"])
    table = json.loads(capsys.readouterr().out)
    assert rc == 0 and len(_json_warnings(table)) == 2
    _said(capsys, main(["fit", model]))
    _said(capsys, main(["chip-script", model, "--input", str(files / "x.npy"), "--ticks", "60", "--conn-delay", "0",
                        "--out", str(tmp_path / "run_on_chip.py")]))


def test_sweep_rows_and_report_carry_the_warning(files, tmp_path, capsys):
    """Scaled to 2-bit weights (one step: the largest |w|), most of them fall below it."""
    out = tmp_path / "sweep.jsonl"
    rc = main(["sweep", str(files / "m.nir"), "--data", str(files / "data.npz"), "--weight-bits", "2",
               "--membrane-bits", "16", "--rounding", "truncate", "--workers", "0", "--out", str(out),
               "--report", str(tmp_path / "sweep.html")])
    err = capsys.readouterr().err
    assert rc == 0 and "warning: ptq/w2/m16/truncate: projection fc1: " in err, err
    assert "become 0 as 2-bit integers" in err and "--scale-percentile" in err
    row = json.loads(out.read_text().splitlines()[-1])
    assert any("projection fc1" in w for w in row["warnings"])
    assert any("ptq/w2/m16/truncate: projection fc1" in t for t in _in_report(tmp_path / "sweep.html"))


def test_the_test_kit_warns_in_python(files):
    x = np.load(files / "x.npy")
    with pytest.warns(UserWarning) as said:  # validate.conversion_warnings.ConversionWarning
        run_chip(files / "m.nir", x)
    assert [type(w.message).__name__ for w in said] == ["ConversionWarning"] * 2
    assert "projection fc1: " in str(said[0].message) and ZEROED in str(said[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scaled: nothing to say
        run_chip(files / "m.nir", x, weight_scale="auto")
