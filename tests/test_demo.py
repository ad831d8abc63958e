"""The main job: s2emu demo on a small synthetic split, and the shipped model's accuracy."""
import json

import numpy as np
import pytest
import torch

from browser import look
from conftest import plotly_figures
from emu.cli import main
from emu.apps.demo import MODEL, demo_settings
from emu.engine import Emulator
from emu.apps.gesture.data import load_dvsgesture
from emu.apps.gesture.export import from_nir as torch_from_nir
from emu.nir_import import from_nir, read_nir


@pytest.mark.slow
def test_demo_runs_and_its_figures_come_from_real_runs(tmp_path, capsys, chrome):
    out = tmp_path / "demo"
    assert main(["demo", "--per-class", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "demo_summary.json").read_text())
    html = (out / "demo_report.html").read_text()
    # the answer first: accuracies, where the drop comes from, where chip and float first part
    assert summary["finding"].startswith("Chip accuracy") and "first difference in time at population" in \
        summary["finding"]
    # how many samples carry the drop, whether that is significant, and the close-up is a flipping sample
    paired = summary["attribution"]["paired"]
    flips = paired["lost_samples"] + paired["gained_samples"]
    if flips:
        assert f"{len(flips)} sample" in summary["finding"] and "significant on " in summary["finding"]
        assert summary["closest_look"]["sample"] in flips
    assert "Cause: " in summary["finding"] or "No single factor removes it" in summary["finding"]
    assert summary["percentile"] == 99.9
    assert json.loads((out / "demo_report.json").read_text())["finding"] == summary["finding"]
    assert plotly_figures(html) >= 8 and len(html) < 8e6
    k = summary["closest_look"]["sample"]
    assert f"Sample {k} up close: " in summary["finding"]
    seen = look(chrome, out / "demo_report.html", summary["finding"], min_figures=8)
    assert any(f["title"].startswith("first divergence: ") for f in seen)
    assert (out / "gesture_chip_int8.nir").exists()
    # the shipped model is clearly above chance (1/11) in float and on the emulated chip
    assert summary["accuracy_float"] > 0.5 and summary["accuracy_chip"] > 0.5
    assert f"{summary['accuracy_float']:.1%}" in printed

    # recompute both accuracies independently from the same files
    data = load_dvsgesture(out / "data", train=False, ticks=300, cache=False)
    frames = np.stack([np.asarray(data[i][0]) > 0 for i in range(len(data))])
    labels = np.array([int(data[i][1]) for i in range(len(data))])
    assert len(labels) == summary["samples"] == 22
    model = torch_from_nir(read_nir(MODEL))
    with torch.no_grad():
        spikes = model(torch.tensor(frames.swapaxes(0, 1), dtype=torch.float32))
    float_acc = float(np.mean(spikes.sum(0).argmax(1).numpy() == labels))
    assert float_acc == pytest.approx(summary["accuracy_float"])
    settings = demo_settings(read_nir(MODEL), 99.9)
    net = from_nir(read_nir(MODEL), settings.conversion)
    res = Emulator(net, settings.profile)(frames.reshape(22, 300, -1), ticks=305)
    chip_acc = float(np.mean(res.raster("lif5")[:, 5:].sum(1).argmax(1) == labels))
    assert chip_acc == pytest.approx(summary["accuracy_chip"])


def test_demo_ptq_matches_the_converter_scaling():
    """The emulated chip model (percentile auto-scale + truncation) equals the PTQ artifact."""
    from emu.numerics import quantize_weights
    from emu.apps.gesture.ptq import quantize

    graph = read_nir(MODEL)
    q, report = quantize(graph, percentile=99.9)
    settings = demo_settings(graph, 99.9)
    net = from_nir(graph, settings.conversion)
    for pr in net.projections:
        w, _ = quantize_weights(pr.weight, settings.profile, pr.label)
        assert np.array_equal(w, np.asarray(q.nodes[pr.name].weight, dtype=float)), pr.name
        assert np.abs(w).max() <= 127
