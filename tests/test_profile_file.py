"""The file ``s2emu calibrate --out`` writes is accepted by every command that takes
``--profile-file``, and each converts under it (issue 26, part 5)."""
import json

import nir
import numpy as np
import pytest

from netgen import lif_chain_graph
from emu.cli import main
from emu.engine import Emulator
from emu.nir_import import from_nir
from emu.settings import resolve
from emu.spike_io import save_recording

#: the board's hidden choices: 2-bit weights (so the demo's gesture model loses weights to 0 under it)
BOARD = dict(weight_scale="auto", weight_bits=2, reset="zero")


def _graph():
    return lif_chain_graph(np.random.default_rng(0), ((0.3, 0.6), (0.3, 0.5)))


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    d = tmp_path_factory.mktemp("profile_file")
    graph = _graph()
    nir.write(str(d / "m.nir"), graph)
    rng = np.random.default_rng(1)
    x = rng.random((80, 12)) < 0.3
    np.save(d / "x.npy", x)
    (d / "samples").mkdir()
    for i in range(2):
        np.save(d / "samples" / f"s{i}.npy", rng.random((60, 12)) < 0.3)
    np.save(d / "labels.npy", np.array([0, 1]))
    np.savez(d / "data.npz", inputs=np.stack([np.load(d / "samples" / f"s{i}.npy") for i in range(2)]),
             labels=np.array([0, 1]))
    settings = resolve(BOARD, graph)
    save_recording(Emulator(from_nir(graph, settings.conversion), settings.profile)(x, record_v=True), d / "rec.npz")
    assert main(["calibrate", str(d / "m.nir"), "--input", str(d / "x.npy"), "--chip", str(d / "rec.npz"),
                 "--auto-scale", "--weight-bits", "2", "--out", str(d / "board.json")]) == 0
    return d


def test_calibrate_writes_the_boards_choices_and_its_conversion(calibrated):
    board = json.loads((calibrated / "board.json").read_text())
    assert board["exact"] and board["profile"]["reset_mode"] == "zero" and board["profile"]["weight_bits"] == 2
    assert board["conversion"]["weight_scale"] == "auto" and board["conversion"]["dt"] == 1e-3


@pytest.mark.parametrize("command", ["run", "validate", "attribute", "fit", "chip-script", "sweep"])
def test_every_command_taking_a_profile_file_takes_calibrates_output(calibrated, tmp_path, capsys, command):
    d, out = calibrated, tmp_path / "out.json"
    model, pfile = str(d / "m.nir"), ["--profile-file", str(d / "board.json")]
    argv = {"run": ["run", model, "--input", str(d / "x.npy"), "--out", str(out)],
            "validate": ["validate", model, "--input", str(d / "x.npy"), "--report", str(tmp_path / "r.html"),
                         "--out", str(out)],
            "attribute": ["attribute", model, "--inputs", str(d / "samples"), "--labels", str(d / "labels.npy"),
                          "--report", str(tmp_path / "r.html"), "--out", str(out)],
            "fit": ["fit", model, "--json"],
            "chip-script": ["chip-script", model, "--input", str(d / "x.npy"), "--ticks", "80",
                            "--out", str(tmp_path / "run_on_chip.py")],
            "sweep": ["sweep", model, "--data", str(d / "data.npz"), "--weight-bits", "8", "--membrane-bits", "16",
                      "--rounding", "truncate", "--workers", "0", "--out", str(tmp_path / "s.jsonl")]}[command]
    rc = main(argv + pfile)
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "Traceback" not in captured.err and "not exact" not in captured.err
    if command == "run":
        sources = json.loads(out.read_text())["meta"]["settings"]
    elif command == "validate":
        sources = json.loads(out.read_text())["settings"]
    elif command == "sweep":
        row = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[-1])
        assert row["status"] == "ok" and row["settings"]["base_profile"]["reset_mode"] == "zero"
        assert row["settings"]["base_profile"]["profile_file"].startswith(str(d / "board.json"))
        return
    elif command == "fit":
        assert json.loads(captured.out)["rows"]
        return
    else:
        return
    assert sources["weight_scale"] == sources["reset_mode"] == sources["weight_bits"] == "profile file"


@pytest.mark.slow
def test_the_demo_takes_calibrates_output(calibrated, tmp_path, capsys):
    """The demo under the board's 2-bit weights: accepted, and the weights it zeroes are said."""
    out = tmp_path / "demo"
    assert main(["demo", "--per-class", "1", "--ticks", "20", "--out", str(out), "--profile-file",
                 str(calibrated / "board.json")]) == 0
    err = capsys.readouterr().err
    summary = json.loads((out / "demo_summary.json").read_text())
    assert "become 0 as 2-bit integers" in err and any("2-bit" in w for w in summary["warnings"])
    report = json.loads((out / "demo_report.json").read_text())
    blocks = report["blocks"]
    assert any(w.startswith("projection") for w in report["warnings"])
    sources = {k: v for b in blocks if b["type"] == "settings" for k, v in b["items"].items()
               if k.startswith("sources.")}
    assert sources["sources.weight_bits"] == "profile file", sources
