"""snnTorch -> NIR -> file -> NIR -> snnTorch, and the percentile PTQ."""
import json
from collections import OrderedDict

import nir
import numpy as np
import pytest
import torch
from torch import nn

from emu.apps.gesture.export import from_nir, to_nir
from emu.apps.gesture.model import SpikingSequential, gesture_net, leaky
from emu.apps.gesture.ptq import choose_percentile, populations, quantize


def _trained_like(seed=0, **kwargs):
    """The paper net with non-trivial weights (heavier tails, as after training)."""
    torch.manual_seed(seed)
    net = gesture_net(**kwargs)
    with torch.no_grad():
        for w in net.parameters():
            w.mul_(torch.exp(torch.randn_like(w)))
    return net


def _node_fields(node):
    return {k: v for k, v in vars(node).items() if k not in ("input_type", "output_type")}


def _assert_same_graph(a, b):
    assert sorted(a.nodes) == sorted(b.nodes) and sorted(a.edges) == sorted(b.edges)  # HDF5 sorts names
    assert a.metadata == b.metadata
    for name in a.nodes:
        fa, fb = _node_fields(a.nodes[name]), _node_fields(b.nodes[name])
        assert type(a.nodes[name]) is type(b.nodes[name]) and fa.keys() == fb.keys(), name
        for key in fa:
            va, vb = fa[key], fb[key]
            if isinstance(va, np.ndarray):
                assert va.dtype == np.asarray(vb).dtype and np.array_equal(va, vb), (name, key)
            elif isinstance(va, dict):  # metadata
                assert va == vb, (name, va, vb)
            else:
                assert np.array_equal(va, vb), (name, key, va, vb)


def test_graph_nodes_shapes_and_metadata():
    graph = to_nir(gesture_net(), dt=1e-3)
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert kinds == {"input": "Input", "conv1": "Conv2d", "lif1": "LIF", "conv2": "Conv2d", "lif2": "LIF",
                     "pool2": "SumPool2d", "conv3": "Conv2d", "lif3": "LIF", "pool3": "SumPool2d",
                     "flatten": "Flatten", "fc1": "Linear", "lif4": "LIF", "fc2": "Linear", "lif5": "LIF",
                     "output": "Output"}
    names = list(graph.nodes)
    assert graph.edges == list(zip(names[:-1], names[1:]))
    assert graph.nodes["lif1"].tau.shape == (16, 15, 15) and graph.nodes["lif3"].tau.shape == (8, 7, 7)
    assert list(graph.nodes["flatten"].output_type["output"]) == [72]
    assert list(graph.nodes["output"].output_type["output"]) == [11]
    assert graph.metadata == {"dt": 1e-3, "integrator": "forward", "reset": "subtract"}
    for name in ("lif1", "lif2", "lif3", "lif4", "lif5"):
        assert graph.nodes[name].metadata == {"reset": "subtract", "reset_delay": True, "dt": 1e-3}
    assert not np.any(graph.nodes["conv1"].bias)


@pytest.mark.parametrize("dt", [1e-3, 1e-4])
def test_lif_parameters_follow_the_forward_conversion_rule(dt):
    """docs/semantics.md, converter rules, FORWARD: alpha = 1 - dt/tau = beta, r_factor = r*dt/tau = 1,
    chip threshold = v_threshold / r_factor = the snnTorch threshold."""
    graph = to_nir(gesture_net(beta=0.93, threshold=1.0), dt=dt)
    for name in ("lif1", "lif4", "lif5"):
        lif = graph.nodes[name]
        alpha = 1 - dt / lif.tau
        r_factor = lif.r * dt / lif.tau
        assert np.all(np.float32(alpha) == np.float32(0.93))
        assert np.allclose(alpha, 0.93, rtol=0, atol=1e-7)
        assert np.allclose(r_factor, 1.0, rtol=1e-12)
        assert np.allclose(lif.v_threshold / r_factor, 1.0, rtol=1e-12)
        assert not np.any(lif.v_leak) and lif.metadata["dt"] == dt


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_export_write_read_import_is_exact(tmp_path, reset):
    net = _trained_like(beta=0.9, threshold=0.75)
    if reset == "zero":
        for name in ("lif2", "lif4"):
            setattr(net.layers, name, leaky(beta=0.8, threshold=1.25, reset_mechanism="zero", reset_delay=False))
    graph = to_nir(net)
    path = tmp_path / "gesture.nir"
    nir.write(path, graph)
    read = nir.read(path)
    _assert_same_graph(graph, read)
    back = from_nir(read)
    assert back.input_shape == net.input_shape
    assert list(back.layers._modules) == list(net.layers._modules)
    original, imported = net.state_dict(), back.state_dict()
    assert original.keys() == imported.keys()
    for key, value in original.items():
        assert imported[key].dtype == value.dtype and torch.equal(imported[key], value), key
    for a, b in zip(net.layers, back.layers):
        assert type(a) is type(b)
        if hasattr(a, "reset_mechanism"):
            assert (a.reset_mechanism, a.reset_delay) == (b.reset_mechanism, b.reset_delay)
    x = (torch.rand(30, 2, 2, 32, 32) < 0.1).float()
    assert torch.equal(net(x), back(x))


def test_bias_and_affine_round_trip():
    torch.manual_seed(0)
    net = SpikingSequential(OrderedDict([
        ("conv", nn.Conv2d(2, 4, 3, stride=2, padding=1)), ("lif_a", leaky()),
        ("flat", nn.Flatten()), ("fc", nn.Linear(4 * 4 * 4, 3)), ("lif_b", leaky())]), (2, 8, 8))
    graph = to_nir(net)
    assert isinstance(graph.nodes["fc"], nir.Affine) and np.any(graph.nodes["conv"].bias)
    back = from_nir(graph)
    for key, value in net.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key


def test_importer_rejects_what_it_cannot_represent():
    graph = to_nir(gesture_net())
    graph.nodes["lif2"].r = graph.nodes["lif2"].r * 2
    with pytest.raises(ValueError, match="lif2.*r \\* dt / tau must be 1"):
        from_nir(graph)
    graph = to_nir(gesture_net())
    graph.edges.append(("lif1", "lif3"))
    with pytest.raises(ValueError, match="not a feed-forward chain at node 'lif1'"):
        from_nir(graph)


def test_ptq_integer_weights_and_scale_rule():
    graph = to_nir(_trained_like())
    quantized, report = quantize(graph, percentile=99.9)
    json.dumps(report)
    assert populations(graph) == {"lif1": ["conv1"], "lif2": ["conv2"], "lif3": ["conv3"],
                                  "lif4": ["fc1"], "lif5": ["fc2"]}
    total_clipped = 0
    for lif_name, (weight_name,) in populations(graph).items():
        w = graph.nodes[weight_name].weight.astype(np.float64)
        q = quantized.nodes[weight_name].weight
        w_scale = 127 / np.percentile(np.abs(w), 99.9)
        entry = report["populations"][lif_name]
        assert entry["w_scale"] == pytest.approx(w_scale, rel=1e-12)
        assert np.all(q == np.trunc(q)) and np.abs(q).max() <= 127
        assert np.array_equal(q, np.clip(np.trunc(w * entry["w_scale"]), -127, 127))
        assert entry["n_clipped"] == int(np.sum(np.abs(np.trunc(w * entry["w_scale"])) > 127))
        assert np.allclose(quantized.nodes[lif_name].v_threshold, graph.nodes[lif_name].v_threshold * w_scale)
        assert quantized.nodes[lif_name].metadata["w_scale"] == entry["w_scale"]
        np.testing.assert_array_equal(quantized.nodes[lif_name].tau, graph.nodes[lif_name].tau)
        total_clipped += entry["n_clipped"]
    assert report["n_clipped"] == total_clipped > 0  # 99.9 % of |W|: the heaviest 0.1 % clip
    assert quantized.nodes["conv1"].weight.dtype == np.float32
    assert np.array_equal(graph.nodes["conv1"].weight, to_nir(_trained_like()).nodes["conv1"].weight)  # untouched


def test_ptq_max_scaling_clips_nothing_and_nearest_rounds():
    graph = to_nir(_trained_like())
    _, report = quantize(graph, percentile=100)
    assert report["n_clipped"] == 0
    quantized, report = quantize(graph, percentile=100, rounding="nearest")
    w = graph.nodes["fc1"].weight.astype(np.float64)
    s = report["populations"]["lif4"]["w_scale"]
    assert np.array_equal(quantized.nodes["fc1"].weight, np.rint(w * s))
    assert np.abs(quantized.nodes["fc1"].weight).max() == 127


def test_quantized_graph_round_trips_and_imports(tmp_path):
    quantized, _ = quantize(to_nir(_trained_like()))
    nir.write(tmp_path / "q.nir", quantized)
    read = nir.read(tmp_path / "q.nir")
    _assert_same_graph(quantized, read)
    net = from_nir(read)
    assert net.layers.lif1.threshold.item() == pytest.approx(read.nodes["lif1"].v_threshold.flat[0], rel=1e-6)
    assert torch.all(net.layers.conv1.weight == torch.trunc(net.layers.conv1.weight))


def test_choose_percentile_keeps_the_best_score():
    graph = to_nir(_trained_like())
    target = 99.5

    def score(quantized):  # best when the lif1 scale is the one of the target percentile
        w = graph.nodes["conv1"].weight.astype(np.float64)
        return -abs(quantized.nodes["lif1"].metadata["w_scale"] - 127 / np.percentile(np.abs(w), target))

    result = choose_percentile(graph, score, percentiles=(99.0, 99.5, 99.9, 100.0))
    assert result["percentile"] == 99.5 and result["report"]["percentile"] == 99.5
    assert list(result["scores"]) == [99.0, 99.5, 99.9, 100.0]
    assert choose_percentile(graph, lambda g: 0.0, percentiles=(99.9, 99.0))["percentile"] == 99.9  # tie: first
