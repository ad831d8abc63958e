"""Every hostile input and setting of issue 27's tour, each through the command line: one line on
stderr naming the file and field, exit 2 (3: fit), no traceback, nothing written, nothing
allocated beyond what the machine has. Uses the command line only, so each case also runs on the
code before issue 27, where every one of them failed (a traceback, a silent exit 0, or a message
naming no file)."""
import json
import math

import nir
import numpy as np
import pytest
import torch

from emu.cli import main
from hostile import build_files, graph, huge_conv_graph, one_line


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = build_files(tmp_path_factory.mktemp("hostile"))
    assert main(["calibrate", str(d / "m.nir"), "--input", str(d / "x.npy"), "--chip", str(d / "rec.npz"),
                 "--auto-scale", "--out", str(d / "board.json")]) == 0
    return d


def _run(files, tmp_path, *extra, model=None, inputs=None):
    return main(["run", str(model or files / "m.nir"), "--input", str(inputs or files / "x.npy"),
                 "--out", str(tmp_path / "o.json"), *extra])


def _edited_profile(files, tmp_path, edit):
    data = json.loads((files / "board.json").read_text())
    edit(data)
    (tmp_path / "p.json").write_text(json.dumps(data))
    return tmp_path / "p.json"


# --- profile files --------------------------------------------------------------------------------------

@pytest.mark.parametrize("section, field, value, words", [
    ("profile", "weight_bits", "eight", "profile.weight_bits: expected an integer, got str 'eight'"),
    ("profile", "seed", "abc", "profile.seed: expected an integer, got str 'abc'"),
    ("profile", "membrane_bits", [32], "profile.membrane_bits: expected an integer, got list [32]"),
    ("conversion", "scale_percentile", 500, "conversion.scale_percentile: 500 is outside"),
    ("profile", "weight_bits", 1, "profile: weight_bits=1 must be None or 2..16"),
    ("conversion", "dt", "fast", "conversion.dt: expected a finite number, got str 'fast'"),
])
def test_profile_file_values_of_the_wrong_type_or_range(files, tmp_path, capsys, section, field, value, words):
    pfile = _edited_profile(files, tmp_path, lambda d: d[section].__setitem__(field, value))
    line = one_line(capsys, _run(files, tmp_path, "--profile-file", str(pfile)))
    assert line.startswith(f"s2emu run: error: {pfile}: ") and words in line, line
    assert not (tmp_path / "o.json").exists()


def test_a_bad_profile_file_through_the_demo(files, tmp_path, capsys):
    pfile = _edited_profile(files, tmp_path, lambda d: d["profile"].__setitem__("weight_bits", "eight"))
    line = one_line(capsys, main(["demo", "--out", str(tmp_path / "demo"), "--profile-file", str(pfile)]))
    assert line == (f"s2emu demo: error: {pfile}: profile.weight_bits: expected an integer, got str 'eight'")


@pytest.mark.parametrize("field, value, words", [
    ("format", "not-a-profile", "format: 'not-a-profile' is not a spinnaker2-emu profile file ('s2emu-profile')"),
    ("version", 99, "version: format version 99 is not one this spinnaker2-emu reads (1); update spinnaker2-emu"),
    ("version", "one", "version: expected an integer, got 'one'"),
])
def test_profile_files_of_another_format_or_version(files, tmp_path, capsys, field, value, words):
    pfile = _edited_profile(files, tmp_path, lambda d: d.__setitem__(field, value))
    line = one_line(capsys, _run(files, tmp_path, "--profile-file", str(pfile)))
    assert line == f"s2emu run: error: {pfile}: {words}"


def test_profile_values_that_do_not_go_together_name_the_file(files, tmp_path, capsys):
    pfile = _edited_profile(files, tmp_path, lambda d: d["profile"].__setitem__("membrane_frac_bits", 20))
    line = one_line(capsys, _run(files, tmp_path, "--profile-file", str(pfile), "--membrane-bits", "16"))
    assert line.startswith(f"s2emu run: error: {pfile}: profile.membrane_frac_bits: membrane_frac_bits=20"), line


# --- recordings, manifests, results, data, checkpoints ---------------------------------------------------

@pytest.mark.parametrize("change, words", [
    ("tick_end", "spikes/tick_end: cumulative spike counts must start >= 0 and never fall"),
    ("float_ids", "spikes/neurons: expected 1-d integers, got shape"),
    ("version", "version: expected an integer scalar, got shape () of <U3"),
])
def test_npz_recordings_with_bad_arrays(files, tmp_path, capsys, change, words):
    arrays = dict(np.load(files / "rec.npz"))
    if change == "tick_end":
        ends = arrays["spikes/tick_end"].copy()
        ends[0, 5] = ends[0, 40] + 3
        arrays["spikes/tick_end"] = ends
    elif change == "float_ids":
        arrays["spikes/neurons"] = arrays["spikes/neurons"].astype(float) + 0.5
    else:
        arrays["version"] = np.array("one")
    np.savez(tmp_path / "bad.npz", **arrays)
    line = one_line(capsys, main(["compare", str(tmp_path / "bad.npz"), str(files / "rec.npz"),
                                  "--out", str(tmp_path / "c.json")]))
    assert line == f"s2emu compare: error: {tmp_path / 'bad.npz'}: {words}" or words in line, line


def test_a_manifest_whose_options_are_a_string(files, tmp_path, capsys):
    rec = {"format": "s2emu-recording", "version": 1,
           "populations": {"lif2": {"size": 5, "spikes": {"0": [3]}}},
           "meta": {"ticks": 80, "manifest": {"model_sha256": "x", "options": "dt=1e-3"}}}
    (tmp_path / "chip.json").write_text(json.dumps(rec))
    line = one_line(capsys, main(["validate", str(files / "m.nir"), "--input", str(files / "x.npy"), "--chip",
                                  str(tmp_path / "chip.json"), "--auto-scale", "--report", str(tmp_path / "r.html")]))
    assert line == (f"s2emu validate: error: {tmp_path / 'chip.json'}: meta.manifest.options: expected an object, "
                    f"got str 'dt=1e-3'")


def _sweep(files, out, *extra, data=None):
    return main(["sweep", str(files / "m.nir"), "--data", str(data or files / "data.npz"), "--weight-bits", "8",
                 "--membrane-bits", "16", "--rounding", "truncate", "--workers", "0", "--auto-scale",
                 "--out", str(out), *extra])


@pytest.mark.parametrize("content, words", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a sweep results file (JSON lines): not UTF-8 text at byte 0"),
    (b'[1, 2, 3]\n', "line 1: expected a sweep results row (a JSON object), got list"),
    (b'{"key": "ptq/w8/m16/truncate", "status": "ok", "accuracy": "high"}\n',
     "line 1: accuracy: expected a finite number, got str 'high'"),
    (b'{"key": 1, "status": "ok"}\n{broken\n', "line 1: key: expected a string, got int 1"),
    (b'{"key": "a", "status": "ok"}\n{broken\n{"key": "b", "status": "ok"}\n',
     "line 2: not a JSON row of a sweep results file"),
])
def test_sweep_results_files_that_are_not(files, tmp_path, capsys, content, words):
    (tmp_path / "s.jsonl").write_bytes(content)
    line = one_line(capsys, _sweep(files, tmp_path / "s.jsonl"))
    assert line == f"s2emu sweep: error: {tmp_path / 's.jsonl'}: {words}", line
    assert (tmp_path / "s.jsonl").read_bytes() == content


def test_sweep_data_without_labels(files, tmp_path, capsys):
    np.savez(tmp_path / "d.npz", inputs=np.load(files / "data.npz")["inputs"])
    line = one_line(capsys, _sweep(files, tmp_path / "s.jsonl", data=tmp_path / "d.npz"))
    assert line == f"s2emu sweep: error: {tmp_path / 'd.npz'}: missing field 'labels'"


def test_sweep_labels_the_model_cannot_answer(files, tmp_path, capsys):
    """The model has 5 output neurons (classes 0..4); a label 99 was accepted (accuracy 0, exit 0)."""
    data = dict(np.load(files / "data.npz"))
    np.savez(tmp_path / "d.npz", inputs=data["inputs"], labels=np.array([0, 1, 99, 3]))
    line = one_line(capsys, _sweep(files, tmp_path / "s.jsonl", data=tmp_path / "d.npz"))
    assert line.startswith("s2emu sweep: error: label 99: ") and "classifies 5 classes (0..4)" in line, line


@pytest.mark.parametrize("flag, value, words", [
    ("--weight-bits", "", "the grid is empty: give at least one value to --weight-bits, --membrane-bits, --rounding "
                          "and --method"),
    ("--weight-bits", "0", "--weight-bits 0: weight_bits=0 must be None or 2..16"),
    ("--weight-bits", "1", "--weight-bits 1: weight_bits=1 must be None or 2..16"),
    ("--weight-bits", "40", "--weight-bits 40: weight_bits=40 must be None or 2..16"),
    ("--weight-bits", "-4", "--weight-bits -4: weight_bits=-4 must be None or 2..16"),
    ("--membrane-bits", "200", "--membrane-bits 200: membrane_bits=200 must be 8..32"),
])
def test_a_sweep_whose_every_point_would_fail_is_refused(files, tmp_path, capsys, flag, value, words):
    argv = ["sweep", str(files / "m.nir"), "--data", str(files / "data.npz"), "--weight-bits", "8",
            "--membrane-bits", "16", "--rounding", "truncate", "--workers", "0", "--auto-scale",
            "--out", str(tmp_path / "s.jsonl")]
    argv[argv.index(flag) + 1] = value
    line = one_line(capsys, main(argv))
    assert line == f"s2emu sweep: error: {words}", line
    assert not (tmp_path / "s.jsonl").exists()


def test_a_sweep_exits_1_when_some_points_fail_and_2_when_all_do(files, tmp_path, capsys, monkeypatch):
    import emu.apps.sweep.points as points

    real = points._evaluate

    def evaluate(task):
        if task["point"]["weight_bits"] == 6 or task["point"]["rounding"] == "stochastic":
            raise RuntimeError("this point breaks")
        return real(task)

    monkeypatch.setattr(points, "_evaluate", evaluate)
    base = ["sweep", str(files / "m.nir"), "--data", str(files / "data.npz"), "--membrane-bits", "16",
            "--workers", "0", "--auto-scale"]
    assert main(base + ["--weight-bits", "8,6", "--rounding", "truncate", "--out", str(tmp_path / "a.jsonl")]) == 1
    assert "1 of 2 point(s) failed" in capsys.readouterr().err
    assert main(base + ["--weight-bits", "6", "--rounding", "truncate,stochastic",
                        "--out", str(tmp_path / "b.jsonl")]) == 2
    assert "2 of 2 point(s) failed" in capsys.readouterr().err


def test_a_garbage_training_checkpoint(tmp_path, capsys):
    (tmp_path / "ck.pt").write_bytes(b"\x00garbage" * 100)
    line = one_line(capsys, main(["train", "--root", str(tmp_path), "--synthetic", "1", "--epochs", "1", "--ticks",
                                  "20", "--quiet", "--checkpoint", str(tmp_path / "ck.pt")]))
    assert line.startswith(f"s2emu train: error: {tmp_path / 'ck.pt'}: not a training checkpoint of s2emu train"), line


def test_train_refuses_a_checkpoint_made_with_other_settings(tmp_path, capsys):
    """--ticks 20 --lr 0.002 resumed under --ticks 30 --lr 0.01 ran (exit 0): the optimizer kept 0.002
    while the configuration said 0.01."""
    argv = ["train", "--root", str(tmp_path), "--synthetic", "1", "--batch-size", "11", "--quiet", "--threads", "1",
            "--checkpoint", str(tmp_path / "ck.pt")]
    assert main(argv + ["--epochs", "1", "--ticks", "20", "--lr", "0.002"]) == 0
    capsys.readouterr()
    line = one_line(capsys, main(argv + ["--epochs", "2", "--ticks", "30", "--lr", "0.01"]))
    assert line == (f"s2emu train: error: {tmp_path / 'ck.pt'}: made with other settings (lr 0.002 there, 0.01 now, "
                    f"ticks 20 there, 30 now); give --no-resume to start afresh, or --resume-anyway to continue it "
                    f"under these settings")
    assert main(argv + ["--epochs", "2", "--ticks", "30", "--lr", "0.01", "--resume-anyway"]) == 0
    state = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert state["epoch"] == 2 and state["config"]["lr"] == 0.01
    assert [g["lr"] for g in state["optimizer"]["param_groups"]] == [0.01]
    assert main(argv + ["--epochs", "3", "--ticks", "30", "--lr", "0.01"]) == 0  # more epochs: the same run


# --- sizes beyond the machine: refused before anything is allocated ----------------------------------------

def test_run_ticks_beyond_memory_are_refused_at_once(files, tmp_path, capsys):
    """run --ticks 2000000000 was OOM-killed after 108 s at 23 GB."""
    line = one_line(capsys, _run(files, tmp_path, "--ticks", "2000000000"))
    assert line.startswith("s2emu run: error: the run (1 sample(s) x 2,000,000,000 ticks x 37 neurons) needs about")
    assert "of memory, more than the" in line and line.endswith("available on this machine: run fewer ticks or samples")


def test_input_ticks_of_1e12(files, tmp_path, capsys):
    (tmp_path / "in.json").write_text(json.dumps({"0": [1, 1_000_000_000_000]}))
    line = one_line(capsys, _run(files, tmp_path, inputs=tmp_path / "in.json"))
    assert line.startswith(f"s2emu run: error: {tmp_path / 'in.json'}: input: ticks (from data): "
                           f"1,000,000,000,001 ticks is more than the"), line


@pytest.mark.parametrize("flag, words", [
    ("--synaptic-latency", "synaptic_latency=1000000000 must be an int in 0..65536"),
    ("--conn-delay", "conn_delay must be an int in 0..65536, got 1000000000"),
])
def test_delays_beyond_any_ring_buffer(files, tmp_path, capsys, flag, words):
    line = one_line(capsys, _run(files, tmp_path, flag, "1000000000"))
    assert words in line, line


def test_compare_lags_beyond_the_recordings(files, tmp_path, capsys):
    line = one_line(capsys, main(["compare", str(files / "rec.npz"), str(files / "rec.npz"), "--max-lag", "100000000",
                                  "--out", str(tmp_path / "c.json")]))
    assert line == ("s2emu compare: error: --max-lag 100000000: more ticks than the recordings have (80); no spikes "
                    "pair that far apart: give at most 80")


def test_fit_of_a_network_too_large_to_convert_exits_3(tmp_path, capsys):
    """A 37 kB NIR file of 8e9 neurons (a 20000 x 20000 conv): MemoryError on main."""
    g = huge_conv_graph()
    nir.write(str(tmp_path / "huge.nir"), g)
    line = one_line(capsys, main(["fit", str(tmp_path / "huge.nir")]), 3)
    assert line.startswith(f"s2emu fit: error: {tmp_path / 'huge.nir'}: converting the graph (8,000,000,000 neurons) "
                           f"needs about"), line
    assert line.endswith("the model does NOT fit (exit status 3)")


# --- silent acceptance and messages that named no file --------------------------------------------------

@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_non_finite_threshold_is_refused_naming_the_file(tmp_path, capsys, value):
    """A NaN v_threshold ran: the population never spiked (NaN tau and r were refused)."""
    nir.write(str(tmp_path / "nan.nir"), graph(threshold=value))
    np.save(tmp_path / "x.npy", np.ones((10, 12), bool))
    line = one_line(capsys, main(["run", str(tmp_path / "nan.nir"), "--input", str(tmp_path / "x.npy"),
                                  "--out", str(tmp_path / "o.json")]))
    assert line.startswith(f"s2emu run: error: {tmp_path / 'nan.nir'}: node 'lif1': field v_threshold has "
                           f"non-finite values"), line


def test_scale_percentile_without_auto_scale(files, tmp_path, capsys):
    """It was ignored, yet recorded as 'set by a flag'."""
    line = one_line(capsys, _run(files, tmp_path, "--scale-percentile", "90"))
    assert line == "s2emu run: error: --scale-percentile 90 scales from a percentile of |W|: it needs --auto-scale"


def test_a_bad_metadata_reset_is_not_called_a_profile_option(tmp_path, capsys):
    nir.write(str(tmp_path / "meta.nir"), graph(meta={"reset": "bogus"}))
    np.save(tmp_path / "x.npy", np.ones((10, 12), bool))
    line = one_line(capsys, main(["run", str(tmp_path / "meta.nir"), "--input", str(tmp_path / "x.npy"),
                                  "--out", str(tmp_path / "o.json")]))
    assert line == (f"s2emu run: error: {tmp_path / 'meta.nir'}: graph metadata reset: reset='bogus' is not one of "
                    f"'zero', 'subtract'")


def test_errors_about_nir_content_name_the_file(tmp_path, capsys):
    g = graph()
    g.nodes["fc2"] = nir.Linear(weight=np.ones((5, 7)))  # lif1 has 20 neurons
    nir.write(str(tmp_path / "bad.nir"), g)
    np.save(tmp_path / "x.npy", np.ones((10, 12), bool))
    line = one_line(capsys, main(["run", str(tmp_path / "bad.nir"), "--input", str(tmp_path / "x.npy"),
                                  "--out", str(tmp_path / "o.json")]))
    assert line.startswith(f"s2emu run: error: {tmp_path / 'bad.nir'}: node 'fc2': field weight has shape (5, 7)"), line


def test_a_nan_event_time_is_not_a_negative_timestamp(tmp_path, capsys):
    from pathlib import Path

    conv = Path(__file__).parents[1] / "emu" / "examples" / "conv_net.nir"
    np.savez(tmp_path / "ev.npz", x=np.array([1, 2]), y=np.array([1, 2]), p=np.array([0, 1]),
             t=np.array([100.0, math.nan]))
    line = one_line(capsys, main(["run", str(conv), "--input", str(tmp_path / "ev.npz"), "--auto-scale",
                                  "--out", str(tmp_path / "o.json")]))
    assert line == (f"s2emu run: error: {tmp_path / 'ev.npz'}: field t: 1 events with a value that is not a finite "
                    f"number (NaN or infinite)")
