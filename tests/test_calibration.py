"""s2emu calibrate: hidden settings recovered from recordings, the golden trace lands on the
profile its test uses, bad recordings answered in one line; --profile-file everywhere;
run --sensitivity."""
import json
import re

import nir
import numpy as np
import pytest

from browser import look
from conftest import GOLDEN
from emu.cli import main
from emu.cli.parser import build_parser
from emu.engine import Emulator
from emu.nir_import import from_nir, read_nir
from emu.settings import resolve
from emu.spike_io import load_recording, save_recording
from emu.spikes import Recording
from validate.calibration import OPTIONS, calibrate

LIF = GOLDEN / "lif_single"
BRAILLE = GOLDEN / "braille_rnn" / "braille_noDelay_noBias_subtract.nir"


def _golden_recording(path):
    g = np.loadtxt(LIF / "lif_spinnaker2.csv", delimiter=",")
    spikes = np.zeros((1001, 1), bool)
    spikes[1:, 0] = g[:, 2] > 0  # row i: input at tick i, voltage and spike at tick i + 1
    v = np.zeros((1001, 1))
    v[1:, 0] = g[:, 1] * 102.02  # chip units: NIR units times the weight scale
    save_recording(Recording.from_rasters({"1": spikes}, v={"1": v}, source="golden"), path)
    return g


def test_the_golden_trace_lands_on_the_profile_of_its_test(tmp_path, capsys, chrome):
    g = _golden_recording(tmp_path / "golden.npz")
    board = tmp_path / "board.json"
    assert main(["calibrate", str(LIF / "lif_norse.nir"), "--input", str(LIF / "input_spikes.json"), "--chip",
                 str(tmp_path / "golden.npz"), "--dt", "1e-4", "--scale", "102.02", "--out", str(board),
                 "--report", str(tmp_path / "calibration.html")]) == 0
    printed = capsys.readouterr().out
    cal = json.loads(board.read_text())
    assert cal["exact"] and cal["profile"]["arithmetic"] == "brian2" and cal["profile"]["reset_mode"] == "zero"
    assert cal["conversion"] == {"dt": 1e-4, "integrator": "forward", "conn_delay": 0, "weight_scale": 102.02,
                                 "scale_percentile": None}
    assert {"integrator", "reset", "conn_delay", "synaptic_latency", "reset_timing"} <= set(cal["pinned"])
    # no voltage lands on the threshold: > and >= cannot be told apart, and the answer says how to
    assert "spike_condition" in cal["undetermined"] and "threshold" in cal["suggestions"]["spike_condition"]
    assert "to settle spike_condition" in printed
    # float32 state is told from float64 by the voltages alone, by far
    per = cal["per_value"]["arithmetic"]
    assert per["chip"]["exact"] and per["chip"]["max_v_error"] > 1e6 * per["brian2"]["max_v_error"]
    assert {"bias_path", "cuba_current"} <= set(cal["inert"])
    assert json.loads((tmp_path / "calibration.json").read_text())["finding"] == cal["finding"]
    look(chrome, tmp_path / "calibration.html", cal["finding"])
    # the calibrated profile file reproduces the trace as the golden test does (1e-12)
    out = tmp_path / "run.json"
    assert main(["run", str(LIF / "lif_norse.nir"), "--input", str(LIF / "input_spikes.json"), "--ticks", "1001",
                 "--profile-file", str(board), "--record", "spikes,v", "--out", str(out)]) == 0
    run = json.loads(out.read_text())
    v = np.array(run["populations"]["1"]["v"]["0"])
    assert np.abs(v[1:] / 102.02 - g[:, 1]).max() < 1e-12
    assert run["meta"]["settings"]["arithmetic"] == "profile file"
    assert run["meta"]["settings"]["profile_file"].startswith(f"{board} (sha256 ")


# hidden settings ---------------------------------------------------------------------------
def _cuba_with_bias(seed=0):
    """Input 12 -> Affine with bias -> recurrent CubaLIF 20 -> Affine -> CubaLIF 5."""
    rng = np.random.default_rng(seed)

    def cuba(n, thr):
        return nir.CubaLIF(tau_syn=np.full(n, 5e-3), tau_mem=np.full(n, 1e-2), r=np.ones(n), v_leak=np.zeros(n),
                           v_threshold=np.full(n, thr), w_in=np.ones(n), v_reset=np.zeros(n))

    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([12])}),
               "fc1": nir.Affine(weight=rng.normal(0.3, 0.6, (20, 12)), bias=rng.uniform(0, 0.05, 20)),
               "lif1": cuba(20, 0.5), "rec": nir.Linear(weight=rng.normal(0, 0.2, (20, 20))),
               "fc2": nir.Affine(weight=rng.normal(0.2, 0.5, (5, 20)), bias=np.zeros(5)), "lif2": cuba(5, 0.5)},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "rec"), ("rec", "lif1"), ("lif1", "fc2"),
               ("fc2", "lif2")], metadata={"dt": 1e-3}, type_check=False)


def _conv_with_ties(seed=0):
    """Integer-friendly conv net: weights ending in .5 or .7 (truncation and rounding differ),
    IF neurons with integer thresholds, so membranes land exactly on them."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-2, 3, (4, 2, 3, 3)) + rng.choice([0.5, 0.7], (4, 2, 3, 3))

    def if_(shape, thr):
        return nir.IF(r=np.ones(shape), v_threshold=np.full(shape, thr), v_reset=np.zeros(shape))

    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([2, 8, 8])}),
               "conv": nir.Conv2d(input_shape=(8, 8), weight=w, stride=1, padding=0, dilation=1, groups=1,
                                  bias=np.zeros(4)),
               "if1": if_((4, 6, 6), 6.0), "pool": nir.SumPool2d(kernel_size=np.array([2, 2]),
                                                                  stride=np.array([2, 2]), padding=np.array([0, 0])),
               "flat": nir.Flatten(start_dim=0, input_type={"input": np.array([4, 3, 3])}),
               "fc": nir.Affine(weight=rng.integers(-1, 3, (3, 36)) + 0.5, bias=np.zeros(3)), "if2": if_(3, 4.0)},
        edges=[("input", "conv"), ("conv", "if1"), ("if1", "pool"), ("pool", "flat"), ("flat", "fc"),
               ("fc", "if2")], metadata={"dt": 1e-3}, type_check=False)


CASES = {
    # conn_delay fixed: with it free, last tick's current equals one more tick of delay (see below)
    "braille": (lambda: read_nir(BRAILLE), dict(dt=1e-4, weight_scale="auto", conn_delay=0), (12,),
                dict(reset="zero", cuba_current="last_tick")),
    "cuba_bias": (_cuba_with_bias, dict(weight_scale="auto"), (12,),
                  dict(bias_path="synaptic", reset="zero", integrator="forward")),
    "conv": (_conv_with_ties, dict(weight_scale=1.0), (2, 8, 8),
             dict(spike_condition=">=", weight_rounding="nearest", synaptic_latency=2, conn_delay=0)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hidden_settings_are_recovered(case):
    make, fixed, in_shape, hidden = CASES[case]
    graph = make()
    settings = resolve(dict(fixed, **hidden), graph)
    rng = np.random.default_rng(1)
    x = rng.random((1, 150) + in_shape) < 0.2
    rec = Emulator(from_nir(graph, settings.conversion), settings.profile)(x, record_v=True)
    chip = rec.select([n for n in rec.populations if n not in rec.meta["inputs"]])
    cal = calibrate(graph, {"input": x.reshape(1, 150, -1)}, chip, fixed, progress=False)
    assert cal.exact, cal.finding()
    for flag, value in hidden.items():
        assert flag in cal.pinned + cal.forced, (flag, cal.finding())
        assert cal.best.assignment[flag] == value, (flag, cal.best.assignment)
    # options this network cannot show stay open, and say so
    if case != "conv":
        assert "spike_condition" in cal.undetermined
    if case == "conv":
        assert {"bias_path", "cuba_current"} <= set(cal.inert) and cal.notes  # latency: searched after all
        assert cal.forced == ["conn_delay"] and "accepts only one value for this model: conn_delay 0" in cal.finding()


def test_a_confound_is_reported_not_guessed():
    """On a CubaLIF network, integrating last tick's synaptic current moves every membrane exactly
    as one more tick of connection delay does: both stay open, each naming the other value."""
    graph = read_nir(BRAILLE)
    fixed = dict(dt=1e-4, weight_scale="auto")
    settings = resolve(dict(fixed, cuba_current="last_tick", conn_delay=0), graph)
    x = np.random.default_rng(1).random((1, 150, 12)) < 0.3
    rec = Emulator(from_nir(graph, settings.conversion), settings.profile)(x, record_v=True)
    cal = calibrate(graph, {"input": x}, rec.select(["lif1.lif", "lif2"]), fixed, progress=False)
    assert cal.exact
    assert cal.alternatives["conn_delay"] == ["0"] and cal.alternatives["cuba_current"] == ["last_tick"]
    assert "conn_delay (1 or 0)" in cal.finding() and "cuba_current (this_tick or last_tick)" in cal.finding()


def test_options_are_documented_with_their_status():
    table = (GOLDEN.parent.parent / "docs" / "semantics.md").read_text()
    for option in OPTIONS:
        name = "reset_mode" if option.flag == "reset" else option.flag
        row = next((line for line in table.splitlines() if line.startswith(f"| `{name}`")), None)
        assert row is not None, f"docs/semantics.md has no row for {name}"
        status = option.status.split(" (")[0].split(";")[0]
        words = re.sub(r"[*]", "", row)
        assert any(part in words for part in (status, status.split(" for ")[0])), (name, status, row)


# bad recordings ---------------------------------------------------------------------------------
@pytest.fixture
def small(tmp_path):
    graph = _cuba_with_bias()
    nir.write(str(tmp_path / "m.nir"), graph)
    x = np.random.default_rng(2).random((80, 12)) < 0.3
    np.save(tmp_path / "x.npy", x)
    rec = Emulator(from_nir(graph, resolve(dict(weight_scale="auto"), graph).conversion))(x)
    save_recording(rec, tmp_path / "rec.npz")
    return tmp_path


def _error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("s2emu calibrate: error: "), err
    assert match in err, err


def test_bad_recordings_get_one_line(small, capsys):
    base = ["calibrate", str(small / "m.nir"), "--input", str(small / "x.npy"), "--auto-scale", "--out",
            str(small / "p.json")]
    other = Recording.from_rasters({"lif9": np.zeros((80, 5), bool)})
    save_recording(other, small / "other.npz")
    _error(capsys, base + ["--chip", str(small / "other.npz")], "population 'lif9' is not in the model")
    wrong = Recording.from_rasters({"lif2": np.zeros((80, 6), bool)})
    save_recording(wrong, small / "wrong.npz")
    _error(capsys, base + ["--chip", str(small / "wrong.npz")], "has 6 neurons, the model 5")
    _error(capsys, base + ["--chip", str(small / "rec.npz"), "--ticks", "500"], "the recording has 80 ticks")
    _error(capsys, base + ["--chip", str(small / "nothing.npz")], "nothing.npz")


def test_a_silent_recording_leaves_everything_undetermined(small, capsys):
    np.save(small / "zeros.npy", np.zeros((80, 12), bool))
    silent = Recording.from_rasters({"lif1": np.zeros((80, 20), bool), "lif2": np.zeros((80, 5), bool)})
    save_recording(silent, small / "silent.npz")
    # a zero bias drives nothing either: a model that stays silent on silence
    graph = _cuba_with_bias()
    graph.nodes["fc1"].bias[:] = 0
    nir.write(str(small / "quiet.nir"), graph)
    assert main(["calibrate", str(small / "quiet.nir"), "--input", str(small / "zeros.npy"), "--auto-scale",
                 "--chip", str(small / "silent.npz"), "--out", str(small / "p.json")]) == 0
    cal = json.loads((small / "p.json").read_text())
    assert cal["exact"] and cal["pinned"] == [] and "spike_condition" in cal["undetermined"]


# --profile-file elsewhere, and run --sensitivity ----------------------------------------------------
def test_sensitivity_names_the_options_a_run_depends_on(tmp_path, capsys):
    nir.write(str(tmp_path / "conv.nir"), _conv_with_ties())
    np.save(tmp_path / "x.npy", np.random.default_rng(1).random((100, 2, 8, 8)) < 0.3)
    assert main(["run", str(tmp_path / "conv.nir"), "--input", str(tmp_path / "x.npy"), "--scale", "1",
                 "--conn-delay", "0", "--sensitivity", "--out", str(tmp_path / "o.json")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"depends on spike_condition \(not proven by data, not set here\): >= changes [\d,]+ spike",
                     out)
    assert re.search(r"depends on weight_rounding .*nearest changes", out)
    meta = json.loads((tmp_path / "o.json").read_text())["meta"]
    assert set(meta["sensitivity"]["spike_condition"]) == {">="} and "conn_delay" not in meta["sensitivity"]
    # fixing them with flags: the run no longer depends on them
    assert main(["run", str(tmp_path / "conv.nir"), "--input", str(tmp_path / "x.npy"), "--scale", "1",
                 "--conn-delay", "0", "--spike-condition", ">=", "--weight-rounding", "nearest", "--sensitivity",
                 "--out", str(tmp_path / "o2.json")]) == 0
    assert "spike_condition" not in capsys.readouterr().out


def test_profile_file_errors_name_the_file_and_field(tmp_path, capsys):
    (tmp_path / "bad.json").write_text(json.dumps({"profile": {"spike_conditon": ">="}}))
    assert main(["run", str(LIF / "lif_norse.nir"), "--input", str(LIF / "input_spikes.json"), "--dt", "1e-4",
                 "--profile-file", str(tmp_path / "bad.json"), "--out", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert "bad.json: profile.spike_conditon: not a SemanticsProfile field" in err and err.count("\n") == 1


# options of layers not recorded, the latency prior, what the profile file carries, exit 4 -----------------
def _two_layers(hidden="cuba", out="lif", seed=0):
    """Input 12 -> Affine with bias -> ``hidden`` 20 -> Linear -> ``out`` 5 (CubaLIF or LIF each)."""
    rng = np.random.default_rng(seed)

    def layer(kind, n):
        if kind == "cuba":
            return nir.CubaLIF(tau_syn=np.full(n, 5e-3), tau_mem=np.full(n, 1e-2), r=np.ones(n), v_leak=np.zeros(n),
                               v_threshold=np.full(n, 0.5), w_in=np.ones(n), v_reset=np.zeros(n))
        return nir.LIF(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5),
                       v_reset=np.zeros(n))

    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([12])}),
               "fc1": nir.Affine(weight=rng.normal(0.3, 0.6, (20, 12)), bias=rng.uniform(0, 0.05, 20)),
               "lif1": layer(hidden, 20), "fc2": nir.Linear(weight=rng.normal(0.3, 0.5, (5, 20))),
               "lif2": layer(out, 5)},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2")], metadata={"dt": 1e-3},
        type_check=False)


def _board(graph, flags, x):
    settings = resolve(flags, graph)
    return Emulator(from_nir(graph, settings.conversion), settings.profile)(x, record_v=True)


def test_options_of_a_hidden_layer_are_searched_from_the_output_alone():
    """Only the output layer recorded: the hidden CubaLIF's bias path and current timing still
    change what it sees, so they are searched, and the board's values found."""
    graph, fixed = _two_layers(), dict(weight_scale="auto", conn_delay=0)
    hidden = dict(bias_path="synaptic", cuba_current="last_tick")
    x = np.random.default_rng(1).random((1, 150, 12)) < 0.2
    chip = _board(graph, dict(fixed, **hidden), x).select(["lif2"])
    cal = calibrate(graph, {"input": x}, chip, fixed, progress=False)
    assert cal.exact, cal.finding()
    assert {f: cal.best.assignment[f] for f in hidden} == hidden and set(hidden) <= set(cal.pinned)
    assert "Cannot change this model: decay_storage." in cal.finding()


def test_an_option_only_unrecorded_layers_show_is_unseen_not_inert():
    graph = _two_layers(hidden="lif", out="cuba")
    x = np.random.default_rng(1).random((1, 100, 12)) < 0.2
    chip = _board(graph, dict(weight_scale="auto"), x).select(["lif1"])
    cal = calibrate(graph, {"input": x}, chip, dict(weight_scale="auto"), progress=False)
    assert cal.unseen == {"cuba_current": ["lif2"]} and "cuba_current" not in cal.inert
    assert "Not seen by this recording: cuba_current (it changes only lif2" in cal.finding()
    assert cal.profile_file()["suggestions"]["cuba_current"] == "record lif2"


def test_a_latency_pin_that_rests_on_the_prior_says_so():
    """Latency and connection delay add up on every connection: with both searched, the recording
    shows their sum only, and the pins hold because latency 1 is proven elsewhere."""
    graph = _two_layers(hidden="lif")
    x = np.random.default_rng(1).random((1, 100, 12)) < 0.2
    chip = _board(graph, dict(weight_scale="auto"), x).select(["lif1", "lif2"])
    cal = calibrate(graph, {"input": x}, chip, dict(weight_scale="auto"), progress=False)
    assert {"synaptic_latency", "conn_delay"} <= set(cal.pinned) and set(cal.on_prior) == {"synaptic_latency",
                                                                                           "conn_delay"}
    assert "rest on the latency-1 prior" in cal.finding() and "synaptic_latency 2 with conn_delay 0" in cal.finding()
    assert cal.profile_file()["rests_on_prior"] == cal.on_prior
    # the connection delay fixed by a flag: the latency's pin rests on the data
    fixed = calibrate(graph, {"input": x}, chip, dict(weight_scale="auto", conn_delay=1), progress=False)
    assert "synaptic_latency" in fixed.pinned and not fixed.on_prior and "prior" not in fixed.finding()


def test_the_profile_file_carries_the_conversion_it_was_calibrated_under(small, capsys):
    """calibrate --auto-scale, then a run with only --profile-file: scaled as calibrated."""
    base = ["--input", str(small / "x.npy")]
    assert main(["calibrate", str(small / "m.nir"), *base, "--chip", str(small / "rec.npz"), "--auto-scale",
                 "--out", str(small / "board.json")]) == 0
    board = json.loads((small / "board.json").read_text())
    assert board["exact"] and board["conversion"] == {"dt": 1e-3, "integrator": "exponential", "conn_delay": 1,
                                                      "weight_scale": "auto", "scale_percentile": None}
    for name, extra in (("with_profile", ["--profile-file", str(small / "board.json")]), ("flags", ["--auto-scale"])):
        assert main(["run", str(small / "m.nir"), *base, *extra, "--out", str(small / f"{name}.json")]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err, err
    ran = {n: json.loads((small / f"{n}.json").read_text()) for n in ("with_profile", "flags")}
    assert ran["with_profile"]["populations"] == ran["flags"]["populations"]
    assert ran["with_profile"]["meta"]["settings"]["weight_scale"] == "profile file"
    # a flag still wins over the file
    assert main(["run", str(small / "m.nir"), *base, "--profile-file", str(small / "board.json"), "--scale", "1",
                 "--out", str(small / "o.json")]) == 0
    assert json.loads((small / "o.json").read_text())["meta"]["settings"]["weight_scale"] == "flag"


def test_calibrate_exits_4_when_nothing_reproduces_and_the_profile_then_warns(small, capsys):
    rec = load_recording(small / "rec.npz")
    spikes = rec.raster("lif2").copy()
    spikes[0, 5:10, 0] = ~spikes[0, 5:10, 0]  # five ticks no semantics gives
    save_recording(Recording.from_rasters({"lif1": rec.raster("lif1")[0], "lif2": spikes[0]}), small / "odd.npz")
    board = small / "board.json"
    assert main(["calibrate", str(small / "m.nir"), "--input", str(small / "x.npy"), "--chip", str(small / "odd.npz"),
                 "--auto-scale", "--integrator", "exponential", "--reset", "subtract", "--out", str(board)]) == 4
    captured = capsys.readouterr()
    assert "No searched profile reproduces the recording" in captured.out and "exit status 4" in captured.err
    written = json.loads(board.read_text())
    assert written["exact"] is False and written["mismatching_cells"] > 0
    assert main(["run", str(small / "m.nir"), "--input", str(small / "x.npy"), "--profile-file", str(board),
                 "--out", str(small / "o.json")]) == 0
    err = capsys.readouterr().err
    assert err.count(f"warning: {board}: this profile is not exact") == 1, err
    assert "4 when none does" in " ".join(build_parser()._subparsers._group_actions[0].choices["calibrate"]
                                          .description.split())
