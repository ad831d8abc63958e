"""Localization of the first difference between two runs, and the ``s2emu validate`` command."""
import copy
import json
from pathlib import Path

import nir
import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import emu
from emu.cli import main
from emu.engine import Emulator
from emu.network import Network, Population, Projection
from emu.profile import SemanticsProfile
from browser import look
from conftest import plotly_figures
from netgen import networks
from emu.timing import latency_shifts, projection_lags
from validate.cause import divergence_causes
from validate.localize import LocalizeError, localize
from emu.spikes import RecordingError


@settings(max_examples=40)
@given(st.data())
def test_a_change_in_population_k_is_localized_there(data):
    net = data.draw(networks(models=("lif", "if", "cuba_lif")))  # LI never spikes: nothing could differ after it
    profile = data.draw(st.sampled_from((SemanticsProfile.chip(weight_overflow="saturate"),
                                         SemanticsProfile.snntorch(), SemanticsProfile.brian2(weight_bits=None),
                                         SemanticsProfile.fixed(weight_overflow="saturate"))))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.random((2, data.draw(st.integers(15, 40)), net.populations["in"].size)) < data.draw(
        st.sampled_from((0.1, 0.3, 0.6)))
    a = Emulator(net, profile)(x, record_v=True)
    changed = copy.deepcopy(net)
    names = [n for n in net.order() if net.populations[n].model != "input"]
    k = data.draw(st.sampled_from(names))
    pop = changed.populations[k]
    what = data.draw(st.sampled_from(("weight", "threshold")))
    if what == "threshold" and pop.model != "li":  # an LI neuron never spikes, whatever its threshold
        # a neuron that fired stops firing as often; one that did not gets a threshold it crossed
        j = data.draw(st.integers(0, pop.size - 1))
        peak = a.v[k][:, :, j].max()
        fired = a.raster(k)[:, :, j].any()
        pop.threshold = pop.threshold.copy()
        pop.threshold[j] = pop.threshold[j] * 4 if fired or peak <= 0 else peak / 2
    else:
        what = "weight"
        pr = data.draw(st.sampled_from([p for p in changed.projections if p.post == k]))
        w = pr.weight.reshape(-1)
        i = data.draw(st.sampled_from((int(np.argmax(np.abs(w))), data.draw(st.integers(0, w.size - 1)))))
        w[i] = -w[i] if w[i] else max(np.abs(w).max(), 1.0)
    b = Emulator(changed, profile)(x)
    loc = localize(a, b, net, profile=profile)
    differs = any((a.raster(n) != b.raster(n)).any() for n in net.populations)
    assert loc.identical == (not differs)
    event(f"change made a difference: {differs}")
    if not differs:
        return
    assert loc.population == k
    assert loc.kind == "entered", loc.finding()
    if what == "threshold":
        assert loc.neuron == j
    assert a.raster(k)[loc.sample, loc.tick, loc.neuron] != b.raster(k)[loc.sample, loc.tick, loc.neuron]
    assert a.raster(k)[loc.sample, loc.tick, loc.neuron] == loc.a_spiked
    # nothing differs before that tick in that population, nor at all in earlier populations
    assert not (a.raster(k)[:, :loc.tick] != b.raster(k)[:, :loc.tick]).any()
    for n in net.order()[:net.order().index(k)]:
        assert np.array_equal(a.raster(n), b.raster(n))


def _loop_net():
    """in -> a -> b, and b -> a (a back edge)."""
    net = Network()
    net.add(Population("in", (2,), "input"))
    net.add(Population("a", (3,), "lif", alpha=0.9, threshold=1.0))
    net.add(Population("b", (2,), "lif", alpha=0.9, threshold=1.0))
    net.add(Projection("in", "a", np.ones((3, 2))))
    net.add(Projection("a", "b", np.ones((2, 3))))
    net.add(Projection("b", "a", np.ones((3, 2)), name="back"))
    return net


def test_inherited_through_a_back_edge_and_unknown_without_the_inputs():
    net = _loop_net()
    assert net.order() == ["in", "a", "b"] and net.back_edges() == [2]
    t = 10
    base = {n: np.zeros((t, net.populations[n].size), bool) for n in net.populations}
    other = copy.deepcopy(base)
    other["b"][3, 1] = True   # b differs first (tick 3) ...
    other["a"][5, 2] = True   # ... and a, earlier in topological order, later (through the back edge)
    loc = localize(base, other, net, profile=SemanticsProfile.chip())
    # first means first in time: b at tick 3, not a (first in graph order) at tick 5
    assert (loc.population, loc.neuron, loc.tick, loc.kind) == ("b", 1, 3, "entered")
    assert loc.earliest == dict(population="b", tick=3)
    assert loc.first_ticks == {"a": 5, "b": 3}
    assert "'b'" in loc.finding() and "B spiked" in loc.finding()
    # a tie at tick 3 goes to a (earlier in topological order); a back edge given 0 ticks makes it inherited
    tie = copy.deepcopy(other)
    tie["a"][5, 2], tie["a"][3, 2] = False, True
    loc = localize(base, tie, net, lags=[1, 1, 0])
    assert (loc.population, loc.tick, loc.kind) == ("a", 3, "inherited")
    assert loc.sources == [dict(population="b", tick=3, neuron=1, projection="back", lag=0)]
    assert "inherited from 'b'" in loc.finding()
    # the b difference at tick 3 could reach a at tick 4 at the earliest: at tick 3 it is "entered"
    other["a"][5, 2] = False
    other["a"][3, 0] = True
    loc = localize(base, other, net, profile=SemanticsProfile.chip())
    assert (loc.population, loc.tick, loc.kind) == ("a", 3, "entered")
    # b not recorded: a's own difference cannot be told apart
    loc = localize({"a": base["a"]}, {"a": other["a"]}, net)
    assert loc.kind == "unknown" and loc.unchecked == ["b"]
    assert "not in both runs" in loc.finding()
    # an input that differs
    other["in"][0, 0] = True
    assert localize(base, other, net).kind == "input"


def test_same_tick_propagation_counts_as_inherited_at_latency_zero():
    net = _loop_net()
    base = {n: np.zeros((1, 6, net.populations[n].size), bool) for n in net.populations}
    other = copy.deepcopy(base)
    other["a"][0, 2, 0] = True
    other["b"][0, 2, 1] = True  # same tick as a: reachable only when the projection takes 0 ticks
    loc = localize({"b": base["b"], "a": base["a"]}, {"b": other["b"], "a": other["a"]}, net)
    assert (loc.population, loc.kind) == ("a", "entered")
    lags = projection_lags(net, 0)  # latency 0: in->a 0, a->b 0, back edge 1
    assert lags == [0, 0, 1]
    b_only = localize({"b": base["b"]}, {"b": other["b"]}, net)
    assert b_only.kind == "unknown"  # a is not recorded
    assert projection_lags(net, SemanticsProfile.chip().synaptic_latency) == [1, 1, 1]


def _chain(n_in=4, sizes=(6, 5, 3), seed=0):
    rng = np.random.default_rng(seed)
    net = Network()
    net.add(Population("in", (n_in,), "input"))
    prev = ("in", n_in)
    for i, n in enumerate(sizes):
        net.add(Population(f"l{i}", (n,), "lif", alpha=0.875, threshold=2.0))
        net.add(Projection(prev[0], f"l{i}", np.round(rng.uniform(-1, 3, (n, prev[1])) * 8) / 8, delay=i % 2))
        prev = (f"l{i}", n)
    return net


def test_latency_alignment_makes_chip_timing_and_snntorch_timing_equal():
    net = _chain()
    x = np.random.default_rng(2).random((50, 4)) < 0.4
    slow = SemanticsProfile.snntorch(synaptic_latency=1)
    a = Emulator(net, slow)(np.concatenate([x, np.zeros((6, 4), bool)]))
    b = Emulator(net, SemanticsProfile.snntorch())(x)
    shifts = latency_shifts(net, slow, SemanticsProfile.snntorch())
    assert shifts == {"in": 0, "l0": 1, "l1": 2, "l2": 3}
    assert latency_shifts(net, slow, reference_delays=False) == {"in": 0, "l0": 1, "l1": 3, "l2": 4}
    assert b.spike_counts("l2").sum() > 0
    loc = localize(a, b, net, shift=shifts)
    assert loc.identical, loc.finding()
    unaligned = localize(a, b, net)
    assert not unaligned.identical and unaligned.population == "l0"
    # ticks are in B's time base; A's tick is shifted
    changed = copy.deepcopy(net)
    changed.populations["l1"].threshold[2] = 6.0
    c = Emulator(changed, slow)(np.concatenate([x, np.zeros((6, 4), bool)]), record_v=True)
    loc = localize(c, b, net, shift=shifts)
    assert (loc.population, loc.neuron, loc.kind) == ("l1", 2, "entered")
    assert loc.tick_a == loc.tick + 2


def test_single_samples_with_voltages():
    net = _chain()
    x = np.random.default_rng(3).random((40, 4)) < 0.4
    a = Emulator(net, SemanticsProfile.chip())(x, record_v=True)
    changed = copy.deepcopy(net)
    changed.populations["l0"].threshold[1] = 1.0
    b = Emulator(changed, SemanticsProfile.chip())(x, record_v=True)
    rec_a, rec_b = a.sample(0), b.sample(0)
    loc = localize(rec_a, rec_b, net, profile=SemanticsProfile.chip())
    assert (loc.population, loc.neuron, loc.kind) == ("l0", 1, "entered")
    assert loc.voltage_first_diff is not None and loc.voltage_first_diff <= loc.tick
    json.dumps(loc.to_dict())


def test_bad_inputs():
    net = _chain()
    r = {"l0": np.zeros((5, 6), bool)}
    with pytest.raises(LocalizeError, match="unknown population 'nope'"):
        localize({"nope": np.zeros((5, 6))}, r, net)
    with pytest.raises(LocalizeError, match="has 4 neurons, the network 6"):
        localize({"l0": np.zeros((5, 4))}, r, net)
    with pytest.raises(LocalizeError, match="no population in common"):
        localize({"l1": np.zeros((5, 5))}, r, net)
    with pytest.raises(LocalizeError, match="expected \\(T, N\\) or \\(B, T, N\\)"):
        localize({"l0": np.zeros(5)}, r, net)
    with pytest.raises(RecordingError, match="A: population .l0.: raster values must be 0 or 1"):
        localize({"l0": np.full((5, 6), 3)}, r, net)
    with pytest.raises(LocalizeError, match="2 samples"):
        localize({"l0": np.zeros((2, 5, 6))}, r, net)
    with pytest.raises(LocalizeError, match="shift names unknown population"):
        localize(r, r, net, shift={"x": 1})
    with pytest.raises(LocalizeError, match="got RuntimeError|got int"):
        localize(3, r, net)


# s2emu validate ---------------------------------------------------------------------
def _lif(n, thr):
    return nir.LIF(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, thr),
                   v_reset=np.zeros(n))


@pytest.fixture
def model(tmp_path):
    rng = np.random.default_rng(0)
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([10])}),
               "fc1": nir.Affine(weight=rng.normal(0, 0.5, (16, 10)), bias=np.zeros(16)), "lif1": _lif(16, 0.1),
               "fc2": nir.Affine(weight=rng.normal(0, 0.5, (4, 16)), bias=np.zeros(4)), "lif2": _lif(4, 0.1),
               "output": nir.Output(output_type={"output": np.array([4])})},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")],
        type_check=False)
    path = tmp_path / "m.nir"
    nir.write(str(path), graph)
    np.save(tmp_path / "x.npy", rng.random((60, 10)) < 0.25)
    return path


CONV = ["--dt", "1e-3", "--auto-scale"]


def test_validate_against_snntorch_and_a_chip_recording(tmp_path, model, capsys):
    x = tmp_path / "x.npy"
    assert main(["validate", str(model), "--input", str(x), "--report", str(tmp_path / "r.html"),
                 "--out", str(tmp_path / "s.json")] + CONV) == 0
    out = capsys.readouterr().out
    assert out.startswith("Against the float model (snnTorch): spike F1 ") and "first difference in time" in out
    assert "Cause: " in out or "No single factor removes it" in out
    assert "`s2emu attribute`" in out
    html = (tmp_path / "r.html").read_text()
    report = json.loads((tmp_path / "r.json").read_text())
    figures = [b for b in report["blocks"] if b["type"] == "figure"]
    # rates, the membranes at the first divergence (and at the worst population's), the rasters, where they differ
    assert plotly_figures(html) == len(figures) >= 4
    assert "first difference in time: population 'lif1'" in report["finding"]
    assert any(b["caption"].startswith("membrane of lif1 neuron") for b in figures)
    summary = json.loads((tmp_path / "s.json").read_text())
    assert list(summary["comparisons"]) == ["emulator_vs_snntorch"]  # implied without --chip
    sn = summary["comparisons"]["emulator_vs_snntorch"]
    # latency 1 + the converter's extra delay 1 per connection
    assert {r["population"]: r["expected lag"] for r in sn["rows"]} == {"input": 0, "lif1": 2, "lif2": 4}
    assert sn["localization"]["population"] == "lif1" and sn["localization"]["kind"] == "entered"
    assert sn["mismatches"] > 0
    # a "chip recording" that is the emulator's own output: identical at lag 0
    assert main(["run", str(model), "--input", str(x), "--out", str(tmp_path / "chip.json")] + CONV) == 0
    assert main(["validate", str(model), "--input", str(x), "--chip", str(tmp_path / "chip.json"),
                 "--report", str(tmp_path / "r2.html"), "--out", str(tmp_path / "s2.json")] + CONV) == 0
    assert "reproduces the chip recording spike for spike" in capsys.readouterr().out
    chip = json.loads((tmp_path / "s2.json").read_text())["comparisons"]["emulator_vs_chip"]
    assert chip["mismatches"] == 0 and chip["localization"]["identical"]
    assert all(r["best lag"] == 0 for r in chip["rows"])


def test_validate_report_with_chip_voltages_in_a_browser(tmp_path, model, capsys, chrome):
    """A "chip" recording with membranes (a run with the reset one tick late) against the emulator:
    the report draws both membranes where they first part, in a real browser."""
    x, chip = str(tmp_path / "x.npy"), str(tmp_path / "chip.json")
    assert main(["run", str(model), "--input", x, "--record", "spikes,v", "--reset-timing", "next_tick",
                 "--out", chip] + CONV) == 0
    assert main(["validate", str(model), "--input", x, "--chip", chip, "--report", str(tmp_path / "r.html"),
                 "--out", str(tmp_path / "s.json")] + CONV) == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    assert set(summary["comparisons"]) == {"emulator_vs_chip"}
    loc = summary["comparisons"]["emulator_vs_chip"]["localization"]
    assert not loc["identical"] and summary["finding"].startswith("Against the chip recording: spike F1 ")
    assert "`s2emu calibrate`" in summary["finding"] and summary["finding"].count("Against") == 1
    seen = look(chrome, tmp_path / "r.html", summary["finding"], min_figures=3)
    traces = [f for f in seen if f["title"].startswith("first divergence: ")]
    assert traces and f"{loc['population']} neuron {loc['neuron']} around tick {loc['tick']} (after reset" in \
        traces[0]["title"]
    blocks = json.loads((tmp_path / "r.json").read_text())["blocks"]
    assert any(b["type"] == "figure" and b["caption"].startswith("membrane of") for b in blocks)


def _error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"s2emu {argv[0]}: error: "), err
    assert match in err, err


def test_validate_bad_inputs(tmp_path, model, capsys):
    x, report = str(tmp_path / "x.npy"), str(tmp_path / "r.html")
    np.save(tmp_path / "wrong.npy", np.zeros((20, 7), bool))
    _error(capsys, ["validate", str(model), "--input", str(tmp_path / "wrong.npy"), "--report", report] + CONV,
           "does not fit population shape (10,)")
    (tmp_path / "empty.json").write_text("{}")
    _error(capsys, ["validate", str(model), "--input", x, "--chip", str(tmp_path / "empty.json"), "--report",
                    report] + CONV, "empty")
    np.save(tmp_path / "raster.npy", np.zeros((60, 4), bool))
    _error(capsys, ["validate", str(model), "--input", x, "--chip", str(tmp_path / "raster.npy"), "--report",
                    report] + CONV, "choose one")
    _error(capsys, ["validate", str(model), "--input", x, "--chip", str(tmp_path / "raster.npy"), "--population",
                    "nope", "--report", report] + CONV, "unknown population 'nope'")
    np.save(tmp_path / "raster5.npy", np.zeros((60, 5), bool))
    _error(capsys, ["validate", str(model), "--input", x, "--chip", str(tmp_path / "raster5.npy"), "--population",
                    "lif2", "--report", report] + CONV, "has 4 neurons")
    _error(capsys, ["validate", str(model), "--input", x, "--sample", "3", "--report", report] + CONV,
           "--sample 3: the input has 1 sample(s)")
    _error(capsys, ["validate", str(model), "--input", x, "--report", str(tmp_path / "no" / "r.html")] + CONV,
           "does not exist")
    _error(capsys, ["validate", str(model), "--input", x, "--report", str(tmp_path / "r.json")] + CONV, ".html")
    _error(capsys, ["validate", str(tmp_path / "none.nir"), "--input", x, "--report", report] + CONV,
           "no such NIR file")


EXAMPLES = Path(emu.__file__).parent / "examples"


def test_conv_net_first_difference_is_first_in_time_and_has_a_cause(tmp_path, capsys):
    """The bundled conv net: lif1 first differs at tick 5, lif2 (deeper) already at tick 3. The
    sentence, the table and the JSON all say lif2, tick 3; the cause is the int8 weights (with
    float weights that divergence goes away)."""
    argv = ["validate", str(EXAMPLES / "conv_net.nir"), "--input", str(EXAMPLES / "circle_events.npz"), "--dt",
            "1e-3", "--auto-scale", "--conn-delay", "0", "--snntorch", "--report", str(tmp_path / "r.html"),
            "--out", str(tmp_path / "s.json")]
    assert main(argv) == 0
    comp = json.loads((tmp_path / "s.json").read_text())["comparisons"]["emulator_vs_snntorch"]
    loc = comp["localization"]
    assert (loc["population"], loc["tick"]) == ("lif2", 3) and loc["earliest"] == dict(population="lif2", tick=3)
    firsts = {r["population"]: r["first difference"] for r in comp["rows"]}
    assert firsts["lif2"] == 3 < firsts["lif1"]
    assert "first difference in time: population 'lif2', neuron 5, tick 3" in comp["finding"] + capsys.readouterr().out
    cause = {s["factor"]: s for s in comp["cause"]["switches"]}
    assert cause["weights"]["effect"] in ("disappears", "moves later")
    assert comp["cause"]["finding"].startswith("Cause: int8 weights (truncate).")


def test_validate_with_a_chip_recording_and_the_float_model_says_one_finding(tmp_path, model, capsys):
    x, chip = str(tmp_path / "x.npy"), str(tmp_path / "chip.json")
    assert main(["run", str(model), "--input", x, "--record", "spikes,v", "--reset-timing", "next_tick",
                 "--out", chip] + CONV) == 0
    capsys.readouterr()
    assert main(["validate", str(model), "--input", x, "--chip", chip, "--snntorch", "--report",
                 str(tmp_path / "r.html"), "--out", str(tmp_path / "s.json")] + CONV) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    summary = json.loads((tmp_path / "s.json").read_text())
    finding = summary["finding"]
    assert printed[0] == finding  # one finding, printed once, not one line per comparison
    assert finding.startswith("Against the chip recording: ") and " Against the float model (snnTorch): " in finding
    assert "`s2emu calibrate`" in finding and "`s2emu attribute`" in finding


def test_the_cause_of_a_divergence_is_the_factor_whose_switch_removes_it():
    """A LIF whose only difference from the float model is the reset timing: switched back, the
    runs spike identically; every other factor leaves the divergence where it is."""
    net = Network()
    net.add(Population("in", (1,), "input"))
    net.add(Population("out", (1,), "lif", alpha=0.75, threshold=1.0))
    net.add(Projection("in", "out", np.array([[0.625]])))
    x = np.ones((1, 40, 1), bool)
    chip = SemanticsProfile.snntorch(reset_timing="same_tick", arithmetic="chip")
    ref = Emulator(net, SemanticsProfile.snntorch())(x).sample(0)
    run = Emulator(net, chip)(x).sample(0)
    first = localize(run, ref, net)
    assert not first.identical
    cause = divergence_causes(net, chip, {"in": x}, ref, first)
    effects = {s.factor.key: s.effect for s in cause.switches}
    assert effects == {"reset_timing": "disappears", "arithmetic": "stays"}
    assert cause.finding().startswith("Cause: reset timing (next tick -> same tick). With the float model's value")
    assert "the runs then spike identically" in cause.finding()
