"""The waterfall: each factor switched alone does what the theory says; the bookkeeping adds up;
the ``s2emu attribute`` command."""
import json

import nir
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from browser import look
from conftest import GOLDEN, plotly_figures
from emu.cli import main
from emu.engine import Emulator
from emu.network import Network, Population, Projection
from emu.profile import SemanticsProfile
from netgen import networks, without_biases, two_layer_lif_graph
from validate.attribution import Attribution, ConfigResult, attribute
from validate.metrics import SpikeAgreement
from validate.factors import AttributionError, Factor, configuration, default_factors, without_delays

SNN, CHIP = SemanticsProfile.snntorch(), SemanticsProfile.chip()


def _constant_drive(model, beta, threshold, current, ticks):
    """One neuron whose input spikes every tick through weight ``current``: constant input."""
    net = Network()
    net.add(Population("in", (1,), "input"))
    net.add(Population("out", (1,), model, alpha=beta, threshold=threshold))
    net.add(Projection("in", "out", np.array([[current]])))
    return net, np.ones((ticks, 1), bool)


def test_default_factors_in_waterfall_order():
    keys = [f.key for f in default_factors(SNN, CHIP)]
    assert keys == ["latency", "reset_timing", "bias_path", "weights", "arithmetic"]
    keys = [f.key for f in default_factors(SemanticsProfile.snntorch(reset_mode="zero"), CHIP, include_fixed=True)]
    assert keys == ["latency", "reset_timing", "reset_mode", "bias_path", "weights", "arithmetic", "fixed"]
    cfg = configuration(SNN, default_factors(SNN, CHIP), ["latency", "reset_timing", "bias_path", "weights",
                                                          "arithmetic"])
    assert cfg.profile == CHIP and cfg.delays is False  # no network given: no delays to restore
    with pytest.raises(AttributionError, match="unknown factor"):
        configuration(SNN, default_factors(SNN, CHIP), ["reset"])
    # given a network, a factor that cannot change it is left out: no CubaLIF bias, no bias path
    net = Network()
    net.add(Population("in", (2,), "input"))
    net.add(Population("c", (2,), "cuba_lif", alpha_syn=0.5))
    net.add(Projection("in", "c", np.eye(2)))
    assert "bias_path" not in [f.key for f in default_factors(SNN, CHIP, net)]
    net.populations["c"].syn_bias[:] = 0.5
    assert "bias_path" in [f.key for f in default_factors(SNN, CHIP, net)]


@settings(max_examples=30)
@given(beta=st.floats(0.5, 0.99), threshold=st.floats(0.5, 5.0), drive=st.floats(1.05, 3.0))
def test_reset_timing_alone_costs_one_minus_beta_threshold_per_spike(beta, threshold, drive):
    """Same-tick (chip) reset, pre-reset value p: p_t = b (p_{t-1} - T s_{t-1}) + I.
    Next-tick (snnTorch) reset, recorded u:  u_t = b u_{t-1} + I - T s_{t-1}.
    While the spikes agree, D_t = u_t - p_t obeys D_t = b D_{t-1} - (1 - b) T s_{t-1}, so
    D_t = -(1 - b) T sum_{k<t} b^(t-1-k) s_k: every spike costs the delayed-reset neuron an
    extra (1 - b) T (the threshold is subtracted one decay later), decaying like the membrane."""
    beta = float(np.float32(beta))
    current = drive * (1 - beta) * threshold  # the steady state I / (1 - b) lies above threshold
    net, x = _constant_drive("lif", beta, threshold, current, 400)
    factors = default_factors(SNN, CHIP)
    alone = configuration(SNN, factors, ["reset_timing"])
    assert alone.profile == SNN.with_(reset_timing="same_tick")
    u_run = Emulator(net, SNN)(x, record_v=True)
    v_run = Emulator(net, alone.profile)(x, record_v=True)
    s_n, s_c = u_run.raster("out")[0, :, 0], v_run.raster("out")[0, :, 0]
    u = u_run.v["out"][0, :, 0]
    p = v_run.v["out"][0, :, 0] + threshold * s_c  # the chip records the post-reset value
    agree = int(np.argmax(s_n != s_c)) if (s_n != s_c).any() else len(s_n)
    assert s_c[:agree].any(), "no spike before the trains part"
    for t in range(min(agree + 1, len(s_n))):  # D_t needs the spikes before t only
        k = np.arange(t)
        theory = -(1 - beta) * threshold * np.sum(beta ** (t - 1 - k) * s_c[:t])
        assert abs((u[t] - p[t]) - theory) <= 1e-9 * threshold * (1 + t), (t, u[t] - p[t], theory)
    t0 = int(np.flatnonzero(s_c)[0])
    if t0 + 1 < len(s_n):
        assert u[t0 + 1] - p[t0 + 1] == pytest.approx(-(1 - beta) * threshold, rel=1e-9)


def test_reset_mode_alone_keeps_or_drops_the_residual():
    """Same-tick reset of an IF neuron (no leak): subtract keeps the overshoot v - T, zero drops it."""
    threshold, current = 1.0, 0.375
    net, x = _constant_drive("if", 1.0, threshold, current, 12)
    factors = default_factors(SemanticsProfile.snntorch(reset_mode="subtract"), CHIP.with_(reset_mode="zero"))
    assert [f.key for f in factors][:3] == ["latency", "reset_timing", "reset_mode"]
    src = SemanticsProfile.snntorch(reset_mode="subtract")
    sub = Emulator(net, configuration(src, factors, ["reset_timing"]).profile)(x, record_v=True)
    zero = Emulator(net, configuration(src, factors, ["reset_timing", "reset_mode"]).profile)(x, record_v=True)
    t0 = int(np.flatnonzero(sub.raster("out")[0, :, 0])[0])
    assert t0 == 2  # 3 * 0.375 = 1.125 > 1
    assert sub.v["out"][0, t0, 0] - zero.v["out"][0, t0, 0] == (t0 + 1) * current - threshold
    assert np.array_equal(sub.v["out"][0, :t0], zero.v["out"][0, :t0])


def _feed_forward(net: Network) -> Network:
    """netgen's network without recurrent and skip projections and without biases."""
    net.projections = [p for p in net.projections if p.name != "skip" and not p.name.endswith(".rec")]
    return without_biases(net)


@settings(max_examples=20)
@given(st.data())
def test_latency_alone_gives_identical_spikes_after_alignment(data):
    net = _feed_forward(data.draw(networks()))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.random((2, 30, net.populations["in"].size)) < 0.3
    target = SNN.with_(synaptic_latency=1)
    factors = default_factors(SNN, target, net)
    assert [f.key for f in factors] == ["latency"]
    assert factors[0].delays == any(p.delay for p in net.projections)
    for pad in (True, False):
        att = attribute(net, x, source=SNN, target=target, pad=pad, progress=False)
        assert att.target.total_mismatch == 0, att.target.mismatches
    # padded, nothing of the response is cut off: the same classes (without padding the chip's last
    # ticks are missing, which is a real effect of running it as long as the input)
    att = attribute(net, x, source=SNN, target=target, progress=False)
    assert att.drop == 0 and np.array_equal(att.target.predictions, att.source.predictions)
    depth = {"in": 0}
    for p in net.projections:
        depth[p.post] = depth[p.pre] + 1 + p.delay
    assert att.target.shifts == depth
    # without alignment the runs do differ (when anything spikes)
    slow = Emulator(net, target)(x)
    fast = Emulator(without_delays(net), SNN)(x)
    if any(fast.raster(n)[:, :-10].any() for n in net.populations if n != "in"):
        assert any(not np.array_equal(slow.raster(n), fast.raster(n)) for n in net.populations if n != "in")


def test_weights_alone_equal_hand_truncated_weights():
    rng = np.random.default_rng(4)
    net = Network()
    net.add(Population("in", (6,), "input"))
    net.add(Population("h", (8,), "lif", alpha=0.875, threshold=40.0))
    net.add(Population("o", (3,), "lif", alpha=0.875, threshold=30.0))
    net.add(Projection("in", "h", rng.uniform(-30, 60, (8, 6))))
    net.add(Projection("h", "o", rng.uniform(-30, 60, (3, 8))))
    x = rng.random((40, 6)) < 0.4
    profile = configuration(SNN, default_factors(SNN, CHIP), ["weights"]).profile
    assert profile == SNN.with_(weight_bits=8)
    by_hand = Network(dict(net.populations), [Projection(p.pre, p.post, np.trunc(p.weight)) for p in net.projections])
    a, b = Emulator(net, profile)(x, record_v=True), Emulator(by_hand, SNN)(x, record_v=True)
    for n in ("h", "o"):
        assert np.array_equal(a.raster(n), b.raster(n)) and np.array_equal(a.v[n], b.v[n])
    # integer weights: quantization changes nothing
    att = attribute(by_hand, x, source=SNN, target=SNN.with_(weight_bits=8), progress=False)
    assert [f.key for f in att.factors] == ["weights"] and att.target.total_mismatch == 0


def test_float32_arithmetic_alone_changes_nothing_when_every_number_is_exact():
    """Decays 0.5 / 0.75, weights and thresholds on a 1/8 grid: every product and sum is exact in float32."""
    rng = np.random.default_rng(5)
    net = Network()
    net.add(Population("in", (5,), "input"))
    net.add(Population("h", (6,), "lif", alpha=0.75, threshold=2.5))
    net.add(Population("o", (2,), "lif", alpha=0.5, threshold=1.5))
    net.add(Projection("in", "h", np.round(rng.uniform(-1, 2, (6, 5)) * 8) / 8))
    net.add(Projection("h", "o", np.round(rng.uniform(-1, 2, (2, 6)) * 8) / 8))
    x = rng.random((2, 50, 5)) < 0.4
    att = attribute(net, x, source=SNN, target=SNN.with_(arithmetic="chip"), progress=False)
    assert [f.label for f in att.factors] == ["float32 arithmetic"]
    assert att.target.total_mismatch == 0 and sum(att.source.spikes.values()) > 0


def _result(switched, predictions, truth, spikes=1000, matched=1000):
    counts = np.zeros((len(predictions), 3), np.int64)
    counts[np.arange(len(predictions)), predictions] = 5
    predictions = np.asarray(predictions)
    return ConfigResult("+".join(switched) or "float", tuple(switched), {}, False, {},
                        {"o": SpikeAgreement(spikes, 1000, matched, 10**5)}, counts, predictions,
                        float(np.mean(predictions == truth)))


def test_finding_says_how_many_samples_carry_the_drop_and_which_factor():
    """Ten samples, all right in float. Reset timing alone loses sample 3, weights alone loses
    sample 7; together they lose both, and a third one (4) that neither loses alone."""
    truth = np.zeros(10, int)
    lose = {(): [], ("reset_timing",): [3], ("weights",): [7], ("reset_timing", "weights"): [3, 7, 4]}
    spikes = {(): 1000, ("reset_timing",): 1100, ("weights",): 900, ("reset_timing", "weights"): 1000}

    def build(order):
        factors = [Factor(k, {"reset_timing": "reset timing", "weights": "int8 weights"}[k], ()) for k in order]
        configs = {}
        for switched, lost in lose.items():
            pred = truth.copy()
            pred[lost] = 1
            configs[frozenset(switched)] = _result(switched, pred, truth, spikes[switched], 800 if switched else 1000)
        return Attribution(factors, configs, ["o"], "o", 10, truth, list(range(10)))

    att = build(["reset_timing", "weights"])
    assert att.drop == pytest.approx(0.3)
    phi = att.shapley("accuracy")
    assert phi == pytest.approx({"reset_timing": 0.15, "weights": 0.15})  # sample 4 shared: half each
    assert sum(phi.values()) == pytest.approx(att.drop)
    assert build(["weights", "reset_timing"]).shapley("accuracy") == pytest.approx(phi)  # order-free
    flips = {f.sample: f.cause for f in att.flips()}
    assert flips == {3: ["reset_timing"], 4: ["reset_timing", "weights"], 7: ["weights"]}
    text = att.finding()
    assert text.startswith("Chip accuracy 70.0 % vs float 100.0 % on 10 samples: a 30.0-point drop; 3 samples flip "
                           "(lost: samples 3, 4, 7): not significant on 10 samples (exact McNemar p = 0.25")
    assert "Points lost by factor (Shapley): reset timing +15.0, int8 weights +15.0;" in text
    assert "flips carried by reset timing: 1 sample; by reset timing and int8 weights: 1 sample; by int8 weights: " \
           "1 sample" in text
    assert "Spikes: spike F1 0.800" in text
    rows = {r["key"]: r for r in att.rows()}
    assert rows["weights"]["alone (points)"] == pytest.approx(10) and rows["weights"]["flips carried"] == 2
    assert rows["weights"]["interaction (points)"] == pytest.approx(5)
    assert rows["reset_timing"]["leave-one-out (points)"] == pytest.approx(20)
    # no sample flips: said so, with the margin
    same = {s: _result(tuple(s), truth, truth) for s in att.configs}
    assert Attribution(att.factors, same, ["o"], "o", 10, truth, list(range(10))).finding().startswith(
        "Chip accuracy 100.0 % vs float 100.0 % on 10 samples: no sample flips")


def test_bookkeeping_on_the_braille_network():
    """Every coalition is run; Shapley shares add up to the total of each measure and do not
    depend on the order of the factors; leave-one-out runs miss exactly one factor."""
    from emu.nir_import import ConversionOptions, from_nir

    path = GOLDEN / "braille_rnn" / "braille_noDelay_noBias_subtract.nir"
    net = from_nir(path, ConversionOptions(dt=1e-4, weight_scale="auto"))
    rng = np.random.default_rng(0)
    samples = [rng.random((t, 12)) < 0.1 for t in (120, 120, 100)]  # two lengths: two batches
    labels = [0, 3, 5]
    att = attribute(net, samples, labels, progress=False)
    keys = [f.key for f in att.factors]
    assert keys == ["latency", "reset_timing", "weights", "arithmetic"]
    assert len(att.configs) == 2 ** 4 and att.exact
    assert att.factors[0].delays  # the converter's extra delay of 1 per connection
    for measure in ("accuracy", "margin", "spikes"):
        assert sum(att.shapley(measure).values()) == pytest.approx(att.loss(measure, att.target), abs=1e-12)
    assert att.loss("spikes", att.target) > 0
    for f, loo in zip(att.factors, att.leave_one_out):
        assert set(loo.switched) == set(keys) - {f.key}
    assert [a.switched for a in att.alone] == [(k,) for k in keys]
    assert att.target.shifts == {"input": 0, "lif1.lif": 2, "lif2": 4}
    assert att.source.accuracy == np.mean(att.source.predictions == labels)
    backwards = attribute(net, samples, labels, factors=att.factors[::-1], progress=False)
    for measure in ("accuracy", "margin", "spikes"):
        assert backwards.shapley(measure) == pytest.approx(att.shapley(measure), abs=1e-12)
    d = att.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["finding"] == att.finding()


def test_bad_inputs():
    net, x = _constant_drive("lif", 0.5, 1.0, 0.75, 10)
    with pytest.raises(AttributionError, match="2 labels for 1 samples"):
        attribute(net, x, labels=[0, 1], progress=False)
    with pytest.raises(AttributionError, match="class indices 0..0"):
        attribute(net, x, labels=[3], progress=False)
    with pytest.raises(AttributionError, match="integer class indices"):
        attribute(net, x, labels=[0.5], progress=False)
    with pytest.raises(AttributionError, match="integer class indices"):
        attribute(net, x, labels=["cat"], progress=False)
    with pytest.raises(AttributionError, match="output population 'in' is not a neuron population"):
        attribute(net, x, output="in", progress=False)
    with pytest.raises(AttributionError, match="output population 'nope'"):
        attribute(net, x, output="nope", progress=False)
    from emu.inputs import InputError

    with pytest.raises(InputError, match="does not fit"):
        attribute(net, np.zeros((10, 4), bool), progress=False)


# s2emu attribute --------------------------------------------------------------------
@pytest.fixture
def model(tmp_path):
    rng = np.random.default_rng(0)

    graph = two_layer_lif_graph(rng)
    nir.write(str(tmp_path / "m.nir"), graph)
    (tmp_path / "in").mkdir()
    for i in range(3):
        np.save(tmp_path / "in" / f"s{i}.npy", rng.random((40, 10)) < 0.25)
    np.save(tmp_path / "in" / "batch.npy", rng.random((2, 40, 10)) < 0.25)  # a file may hold a batch
    (tmp_path / "labels.txt").write_text("0, 1, 2, 3, 1\n")
    return tmp_path / "m.nir"


CONV = ["--dt", "1e-3", "--auto-scale"]


def test_attribute_command(tmp_path, model, capsys, chrome):
    argv = ["attribute", str(model), "--inputs", str(tmp_path / "in"), "--labels", str(tmp_path / "labels.txt"),
            "--report", str(tmp_path / "a.html"), "--out", str(tmp_path / "a_full.json"), "--fixed"] + CONV
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("Chip + fixed point accuracy") and "on 5 samples" in out.splitlines()[0]
    full = json.loads((tmp_path / "a_full.json").read_text())
    assert full["n_samples"] == 5
    assert [r["key"] for r in full["rows"]] == ["latency", "reset_timing", "weights", "arithmetic", "fixed"]
    assert full["steps"][-1]["profile"]["arithmetic"] == "fixed"
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["finding"] == full["finding"]
    figures = [b for b in report["blocks"] if b["type"] == "figure"]
    assert len(figures) == 4  # the Shapley shares of accuracy, margin and spike F1; the agreement per population
    for fig in figures[:3]:
        assert set(fig["data"]) == {f["label"] for f in full["factors"]}
    assert sum(figures[0]["data"].values()) == pytest.approx(100 * full["paired"]["drop"])
    assert len(full["configurations"]) == 2 ** 5
    html = (tmp_path / "a.html").read_text()
    assert plotly_figures(html) == 4 and full["finding"].split(":")[0] in html
    look(chrome, tmp_path / "a.html", full["finding"], min_figures=4)


def _error(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("s2emu attribute: error: "), err
    assert match in err[0], err


def test_attribute_bad_inputs(tmp_path, model, capsys):
    base = ["attribute", str(model), "--report", str(tmp_path / "a.html")] + CONV
    (tmp_path / "bad.txt").write_text("0 1\n")
    _error(capsys, base + ["--inputs", str(tmp_path / "in"), "--labels", str(tmp_path / "bad.txt")],
           "2 labels for 5 samples")
    (tmp_path / "frac.txt").write_text("0 1 2.5 1 1\n")
    _error(capsys, base + ["--inputs", str(tmp_path / "in"), "--labels", str(tmp_path / "frac.txt")],
           "integer class indices")
    _error(capsys, base + ["--inputs", str(tmp_path / "in"), "--output-population", "nope"],
           "output population 'nope'")
    (tmp_path / "empty").mkdir()
    _error(capsys, base + ["--inputs", str(tmp_path / "empty")], "no input files")
    _error(capsys, base + ["--inputs", str(tmp_path / "missing")], "no such input file or folder")
    np.save(tmp_path / "wide.npy", np.zeros((40, 11), bool))
    _error(capsys, base + ["--inputs", str(tmp_path / "wide.npy")], "does not fit population shape (10,)")
    _error(capsys, base + ["--inputs", str(tmp_path / "in"), "--labels", str(tmp_path / "nolabels.npy")],
           "no such labels file")
