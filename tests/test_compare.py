"""compare / report / the `compare` subcommand, on the braille chip-vs-snnTorch pair and on small cases."""
from __future__ import annotations

import json

import numpy as np
import pytest

from browser import look
from conftest import GOLDEN, plotly_figures
from emu.cli import main
from validate.compare import CompareError, build_report, compare, pair_populations
from emu.spike_io import load_recording, save_recording
from emu.spikes import UNNAMED, Recording
from validate.figures import waterfall
from validate.report import Report

BRAILLE_CHIP = GOLDEN / "braille_rnn" / "s2_activity_noDelay_noBias_subtract.npy"
BRAILLE_SNNTORCH = GOLDEN / "braille_rnn" / "snntorch_activity_noDelay_noBias_subtract.npy"


def _independent_lag_counts(a: np.ndarray, b: np.ndarray, max_lag: int) -> dict[int, int]:
    """Lag L pairs A at t with B at t - L: roll B down by L ticks and blank the rows that wrapped."""
    out = {}
    for lag in range(-max_lag, max_lag + 1):
        rolled = np.roll(b, lag, axis=0)
        if lag > 0:
            rolled[:lag] = 0
        elif lag < 0:
            rolled[lag:] = 0
        out[lag] = int(np.logical_and(a, rolled).sum())
    return out


def test_braille_chip_vs_snntorch():
    chip_raw, torch_raw = np.load(BRAILLE_CHIP), np.load(BRAILLE_SNNTORCH)
    summary = compare(load_recording(BRAILLE_CHIP), load_recording(BRAILLE_SNNTORCH), max_lag=5, window=1)
    json.dumps(summary, allow_nan=False)  # JSON-able as it is

    assert summary["spike_counts"] == {"a": int(chip_raw.sum()), "b": int(torch_raw.sum())}
    expected = _independent_lag_counts(chip_raw == 1, torch_raw == 1, 5)
    loops = {
        lag: sum(
            int(chip_raw[t, n] == 1 and torch_raw[t - lag, n] == 1)
            for t in range(chip_raw.shape[0])
            for n in range(chip_raw.shape[1])
            if 0 <= t - lag < chip_raw.shape[0]
        )
        for lag in (-1, 0, 1)
    }
    assert all(expected[lag] == loops[lag] for lag in loops)
    assert summary["coincidences_by_lag"] == {str(lag): c for lag, c in expected.items()}
    best = max(expected, key=lambda lag: (expected[lag], -abs(lag), -lag))
    assert summary["best_lag"] == best == 1  # the chip lags snnTorch by one connection (docs/semantics.md: one tick per connection)
    assert summary["coincidences"]["lag_0"] == expected[0]
    assert summary["coincidences"]["best_lag"] == expected[1]
    assert summary["coincidences"]["window_best_lag"] >= expected[1]
    assert summary["ticks_compared"] == 256 and summary["notes"] == []
    assert len(summary["per_neuron"]) == 40
    rows = summary["per_neuron"]
    assert [r["count_a"] for r in rows] == chip_raw.sum(0).tolist()
    assert [r["count_b"] for r in rows] == torch_raw.sum(0).astype(int).tolist()
    assert sum(r["coinc_at_lag"] for r in rows) == expected[1]
    assert sum(r["coinc_lag0"] for r in rows) == expected[0]
    assert summary["mismatches_lag0"] == int((chip_raw != torch_raw).sum())


def _rec(source: str, **rasters: np.ndarray) -> Recording:
    return Recording.from_rasters(rasters, source=source)


def test_identical_recordings():
    r = np.random.default_rng(0).random((50, 6)) < 0.2
    s = compare(_rec("x.npz", h=r), _rec("y.npz", h=r))
    assert s["best_lag"] == 0 and s["mismatches_lag0"] == 0
    assert s["first_divergence"] == {"lag_0": None, "best_lag": None}
    pop = s["populations"]["h"]
    assert pop["van_rossum_best_lag"] == 0.0 and pop["victor_purpura_best_lag"] == 0.0


def test_populations_pair_by_name_and_each_has_its_best_lag():
    rng = np.random.default_rng(1)
    h, o = rng.random((80, 5)) < 0.3, rng.random((80, 3)) < 0.3
    a = _rec("a.json", hidden=np.roll(h, 1, axis=0), out=np.roll(o, 2, axis=0), extra=h)
    b = _rec("b.json", out=o, hidden=h)
    s = compare(a, b)
    assert list(s["populations"]) == ["hidden", "out"]
    assert s["populations"]["hidden"]["best_lag"] == 1 and s["populations"]["out"]["best_lag"] == 2
    assert s["notes"] == ["population 'extra' is only in A: not compared"]
    assert {r["population"] for r in s["per_neuron"]} == {"hidden", "out"} and len(s["per_neuron"]) == 8
    assert s["spike_counts"]["b"] == int(h.sum() + o.sum())
    only_out = compare(a, b, populations=["out"])
    assert list(only_out["populations"]) == ["out"] and only_out["best_lag"] == 2


def test_unnamed_raster_pairs_with_the_single_population():
    r = np.random.default_rng(2).random((30, 4)) < 0.3
    raster = Recording.from_rasters({UNNAMED: r}, source="raster.npy")
    s = compare(raster, _rec("emu.json", lif1=r, inp=r[:, :2]), populations=["lif1"])
    assert list(s["populations"]) == ["lif1"] and s["mismatches_lag0"] == 0
    with pytest.raises(CompareError, match="choose one"):
        compare(raster, _rec("emu.json", lif1=r, inp=r[:, :2]))


def test_shape_mismatches():
    r = np.zeros((20, 4), bool)
    with pytest.raises(CompareError, match=r"one\.npz and two\.npz.*4 neurons in one\.npz but 3 in two\.npz"):
        compare(_rec("one.npz", h=r), _rec("two.npz", h=r[:, :3]))
    with pytest.raises(CompareError, match="one.npz and two.npz: no population name in common"):
        compare(_rec("one.npz", h=r), _rec("two.npz", g=r))
    with pytest.raises(CompareError, match="two.npz: unknown population 'x'"):
        compare(_rec("one.npz", x=r), _rec("two.npz", h=r), populations=["x"])
    r[5, 1] = True
    s = compare(_rec("one.npz", h=r), _rec("two.npz", h=r[:12]))
    assert s["ticks_compared"] == 12 and s["a"]["ticks"] == 20 and s["b"]["ticks"] == 12
    assert s["notes"] == ["A has 20 ticks and B 12: compared on the first 12 ticks only"]


def test_voltages_are_compared_when_both_have_them():
    spikes = np.zeros((4, 2), bool)
    va = np.array([[0.0, 1.0], [0.5, 1.0], [0.25, np.nan], [0.0, 0.0]])
    vb = va.copy()
    vb[2, 0] = 0.2
    s = compare(Recording.from_rasters({"p": spikes}, v={"p": va}, source="a"), Recording.from_rasters({"p": spikes}, v={"p": vb}, source="b"))
    assert s["populations"]["p"]["voltage"] == {
        "cells_compared": 7,
        "max_abs_diff": pytest.approx(0.05),
        "first_tick_differs": 2,
    }


def test_report_is_self_contained_with_json_beside(tmp_path):
    a, b = load_recording(BRAILLE_CHIP), load_recording(BRAILLE_SNNTORCH)
    pairs, _ = pair_populations(a, b)
    summary = compare(a, b)
    report = build_report(summary, pairs)
    report.add_figure(waterfall(["reset timing", "quantization", "rest"], [-1.5, 0.75, -0.2], "gap", "points",
                                "total"), "gap", data=[1])
    html_path, json_path = report.write(tmp_path / "report.html")
    text = html_path.read_text()
    assert json_path == tmp_path / "report.json"
    data = json.loads(json_path.read_text())
    assert data["title"].startswith("Spike comparison") and data["finding"] == summary["finding"]
    assert text.index(summary["finding"][:40]) < text.index("<table")  # the answer before any number
    kinds = [blk["type"] for blk in data["blocks"]]
    # mismatch rates, lag profile, the rasters, one divergence map per population that differs, the waterfall
    differing = sum(1 for sec in summary["populations"].values() if sec["mismatches_lag0"] or sec["best_lag"])
    assert plotly_figures(text) == kinds.count("figure") == 4 + differing and "table" in kinds
    assert data["blocks"][-1] == {"type": "figure", "caption": "gap", "data": [1]}
    with pytest.raises(ValueError, match="not ending in .json"):
        Report("x").write(tmp_path / "x.json")


def test_report_escapes_text(tmp_path):
    r = Report("<t>")
    r.add_heading("a & b")
    r.add_text("<script>")
    r.add_table([{"x": 1.23456789, "y": None, "<z>": "<b>"}])
    html_path, _ = r.write(tmp_path / "r.html")
    text = html_path.read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text and "1.235" in text and "&lt;z&gt;" in text


# --- the command line ----------------------------------------------------------------------------


def _run(argv: list[str]) -> int:
    return main(argv)


def test_cli_compare_writes_summary_and_report(tmp_path, capsys, chrome):
    out, report = tmp_path / "summary.json", tmp_path / "report.html"
    rc = _run(["compare", str(BRAILLE_CHIP), str(BRAILLE_SNNTORCH), "--max-lag", "3", "--out", str(out), "--report", str(report)])
    assert rc == 0
    summary = json.loads(out.read_text())
    assert summary["best_lag"] == 1 and list(summary["coincidences_by_lag"]) == [str(k) for k in range(-3, 4)]
    assert plotly_figures(report.read_text()) >= 3
    assert json.loads((tmp_path / "report.json").read_text())["finding"] == summary["finding"]
    look(chrome, report, summary["finding"], min_figures=3)
    assert "best lag +1" in capsys.readouterr().out


@pytest.mark.parametrize(
    "make_args, words",
    [
        (lambda d: [str(d / "missing.npy"), str(BRAILLE_SNNTORCH)], "missing.npy: no such file"),
        (lambda d: [str(d / "bad.npy"), str(BRAILLE_SNNTORCH)], "bad.npy: raster values must be 0 or 1"),
        (lambda d: [str(d / "narrow.npy"), str(BRAILLE_SNNTORCH)], "narrow.npy and"),
        (lambda d: [str(d / "pops.json"), str(BRAILLE_SNNTORCH), "--population", "nope"], "unknown population 'nope'"),
        (lambda d: [str(BRAILLE_CHIP), str(BRAILLE_SNNTORCH), "--report", str(d / "out.html")], "--out is also"),
        (lambda d: [str(BRAILLE_CHIP), str(BRAILLE_SNNTORCH), "--report", str(d / "r.json")], "needs an .html"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys, make_args, words):
    np.save(tmp_path / "bad.npy", np.full((4, 4), 3))
    np.save(tmp_path / "narrow.npy", np.zeros((256, 39)))
    save_recording(Recording.from_rasters({"h": np.zeros((3, 2), bool)}), tmp_path / "pops.json")
    rc = _run(["compare", *make_args(tmp_path), "--out", str(tmp_path / "out.json")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("s2emu compare: error: ") and err.count("\n") == 1, err
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "out.json").exists()


def test_cli_rejects_bad_options(capsys):
    with pytest.raises(SystemExit) as info:
        _run(["compare", "a.npy", "b.npy", "--max-lag", "-1", "--out", "s.json"])
    assert info.value.code == 2
    assert "s2emu compare: error: argument --max-lag: must be >= 0" in capsys.readouterr().err
