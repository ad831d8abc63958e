"""The reports' form: the finding is computed from the run, rates never exceed 100 %, figures
never draw what is not there, and the browser check itself catches a broken page."""
import dataclasses
import json
import re

import numpy as np
import plotly.graph_objects as go
import pytest

from browser import look
from emu.network import Network, Population, Projection
from emu.profile import SemanticsProfile
from validate.attribution import attribute
from validate.figures import divergence_map, waterfall
from validate.metrics import predicted_classes
from validate.report import Report, percent

SNN = SemanticsProfile.snntorch()


def _classifier(seed=1, alpha=0.5):
    """A small dense LIF classifier with weights of a few units: truncating them to integers
    (int8 weights) changes its answers."""
    rng = np.random.default_rng(seed)
    net = Network()
    net.add(Population("in", (24,), "input"))
    net.add(Population("h", (40,), "lif", alpha=alpha, threshold=4.0))
    net.add(Population("out", (6,), "lif", alpha=alpha, threshold=4.0))
    net.add(Projection("in", "h", rng.uniform(-1.5, 3.0, (40, 24))))
    net.add(Projection("h", "out", rng.uniform(-1.5, 3.0, (6, 40))))
    x = rng.random((24, 80, 24)) < rng.uniform(0.02, 0.5, (24, 1, 24))  # each sample its own rates
    return net, x


@pytest.fixture(scope="module")
def classifier():
    from emu.engine import Emulator

    net, x = _classifier()
    labels = predicted_classes(Emulator(net, SNN)(x).raster("out"))  # the float model is right by definition
    return net, x, labels


def test_the_finding_names_the_factor_that_costs_accuracy(classifier, tmp_path):
    net, x, labels = classifier
    weights = attribute(net, x, labels, target=dataclasses.replace(SNN, weight_bits=8), progress=False)
    reset = attribute(net, x, labels, target=dataclasses.replace(SNN, reset_timing="same_tick"), progress=False)
    assert [f.key for f in weights.factors] == ["weights"] and [f.key for f in reset.factors] == ["reset_timing"]
    assert weights.drop > 0 and reset.drop > 0
    label = weights.factors[0].label
    assert f"(Shapley): {label} +{100 * weights.drop:.1f};" in weights.finding()
    assert f"flips carried by {label}: {weights.paired.lost} samples" in weights.finding()
    assert "reset timing" not in weights.finding()
    assert "(Shapley): reset timing (next tick -> same tick) +" in reset.finding()
    # how many samples carry the drop, and whether that is more than chance
    assert f"{reset.paired.lost} samples flip (lost: samples " in reset.finding()
    assert ("not significant on 24 samples" if reset.paired.p_value >= 0.05 else "significant on 24 samples") in \
        reset.finding()
    # the finding heads the report and its JSON, and no rate in it exceeds 100 %
    html_path, json_path = weights.report().write(tmp_path / "w.html")
    assert json.loads(json_path.read_text())["finding"] == weights.finding()
    rates = [float(m) for m in re.findall(r"(-?\d+(?:\.\d+)?) %", html_path.read_text().split("<body>", 1)[1])]
    assert rates and max(rates) <= 100 and min(rates) >= 0


def test_no_loss_and_no_difference_say_so(classifier):
    net, x, labels = classifier
    same = attribute(net, x, labels, target=SNN, progress=False)
    assert same.finding().endswith("the two profiles do not differ in any factor that can change this network.")
    shifted = attribute(net, x, labels, target=dataclasses.replace(SNN, synaptic_latency=1), progress=False)
    assert shifted.drop == 0
    assert shifted.finding().endswith("no sample flips. Spikes: spike F1 1.000 (the chip reproduces 100.0 % of the "
                                      "float run's spikes, 100.0 % of the chip's spikes are the float run's; the chip "
                                      "fires 1.00x the float run's rate).")


def test_a_population_without_mismatches_is_an_empty_map():
    spikes = np.random.default_rng(0).random((50, 8)) < 0.3
    fig = divergence_map(spikes, spikes, 0, "same")
    heat = fig.data[0]
    assert np.asarray(heat.z).size == 0 and heat.zmin == 0 and heat.zmax == 1
    other = spikes.copy()
    other[10, 3] = ~other[10, 3]
    heat = divergence_map(spikes, other, 0, "one").data[0]
    assert list(heat.y) == ["3"] and int(np.asarray(heat.z).sum()) == 1  # only the neuron that differs has a row


def test_a_waterfall_without_drop_has_a_plain_axis():
    fig = waterfall(["a", "b"], [1e-17, -1e-17], "none", "points", "total")
    assert list(fig.data[0].y) == [0.0, 0.0, 0.0] and tuple(fig.layout.yaxis.range) == (-1, 1)


def test_percent_formats_fractions():
    assert percent(0.0303) == "3.0 %" and percent(1.0, 2) == "100.00 %" and percent(float("nan")) == "n/a"


def _report(figure) -> Report:
    report = Report("t", "The answer in one sentence.")
    report.add_table([{"x": 1}])
    report.add_figure(figure, "a figure")
    return report


def test_the_browser_check_catches_a_broken_page(chrome, tmp_path):
    good = go.Figure(go.Scatter(x=[0, 1, 2], y=[1, 0, 1]))
    path, _ = _report(good).write(tmp_path / "good.html")
    assert len(look(chrome, path, "The answer in one sentence.")) == 1
    with pytest.raises(AssertionError, match="empty or flat"):
        look(chrome, _report(go.Figure(go.Scatter(x=[], y=[]))).write(tmp_path / "empty.html")[0],
             "The answer in one sentence.")
    with pytest.raises(AssertionError, match="finding shown as"):
        look(chrome, path, "Another answer.")
    broken = tmp_path / "broken.html"
    broken.write_text(path.read_text().replace("</body>", "<script>undefinedFunction();</script></body>"))
    with pytest.raises(AssertionError, match="console errors"):
        look(chrome, broken, "The answer in one sentence.")
    late = _report(good)
    late._blocks.insert(0, {"type": "text", "text": "x " * 20000, "note": False})
    late.finding, text = "", late.finding
    html = late.to_html().replace("</body>", f'<p class="finding" id="finding">{text}</p></body>')
    (tmp_path / "late.html").write_text(html)
    with pytest.raises(AssertionError, match="below the first screen"):
        look(chrome, tmp_path / "late.html", text)
