"""Quantization-aware training: the chip's quantizer in the forward pass, exported exactly."""
import json

import nir
import numpy as np
import pytest
import torch

from emu.cli import main
from emu.engine import Emulator
from emu.apps.gesture.model import gesture_net
from emu.nir_import import ConversionOptions, from_nir
from emu.profile import SemanticsProfile
from emu.apps.gesture.qat import ChipWeightQuant, export_integer, integer_weights, quantization_aware
from emu.apps.sweep.results import ResultsMismatch


@pytest.mark.parametrize("bits,percentile,rounding", [(8, None, "truncate"), (5, None, "nearest"), (8, 99.0, "truncate")])
def test_fake_quant_is_the_chip_quantizer_with_straight_through_gradient(bits, percentile, rounding):
    torch.manual_seed(1)
    w = torch.randn(16, 9, requires_grad=True)
    q = ChipWeightQuant(bits, percentile, rounding)(w)
    wmax = 2 ** (bits - 1) - 1
    top = np.abs(w.detach().numpy().astype(np.float64)).max() if percentile is None else \
        np.quantile(np.abs(w.detach().numpy().astype(np.float64)), percentile / 100)
    x = w.detach().numpy().astype(np.float64) * (wmax / top)
    ints = np.trunc(x) if rounding == "truncate" else np.sign(x) * np.floor(np.abs(x) + 0.5)
    np.testing.assert_allclose(q.detach().numpy(), np.clip(ints, -wmax, wmax) / (wmax / top), rtol=1e-6)
    q.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))  # straight through


def test_export_gives_exactly_the_integers_training_used_and_the_chip_runs_them(tmp_path):
    torch.manual_seed(0)
    model = quantization_aware(gesture_net())
    x = (torch.rand(10, 2, 2, 32, 32) < 0.05).float()
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    graph, scales = export_integer(model)
    for name, ints in integer_weights(model).items():
        w = np.asarray(graph.nodes[name].weight)
        assert np.array_equal(w, ints) and np.abs(w).max() == 127, name
    assert set(scales["populations"]) == {"lif1", "lif2", "lif3", "lif4", "lif5"}
    nir.write(str(tmp_path / "qat.nir"), graph)
    net = from_nir(tmp_path / "qat.nir", ConversionOptions(dt=1e-3, integrator="forward", conn_delay=0))
    res = Emulator(net, SemanticsProfile.chip())(x.numpy().swapaxes(0, 1).reshape(2, 10, -1) > 0)
    assert res.meta["clipped_weights"] == {}


@pytest.mark.slow
def test_train_command_with_qat_writes_the_chip_ready_model(tmp_path):
    out = tmp_path / "qat.nir"
    assert main(["train", "--root", str(tmp_path / "data"), "--synthetic", "1", "--epochs", "1", "--ticks", "40",
                 "--batch-size", "11", "--threads", "1", "--quiet", "--qat-bits", "8", "--nir", str(out)]) == 0
    graph = nir.read(str(out), type_check=False)
    for name in ("conv1", "conv2", "conv3", "fc1", "fc2"):
        w = np.asarray(graph.nodes[name].weight)
        # the largest |w| times 127 / max|w| can be 126.99999... in float64, truncated to 126 (as the converter does)
        assert np.array_equal(w, np.round(w)) and 126 <= np.abs(w).max() <= 127
    assert json.loads(out.with_suffix(".json").read_text())["populations"]["lif1"]["w_scale"] > 0


# --------------------------------------------------------------------------- s2emu sweep --method qat

SWEEP_OPTIONS = dict(dt=1e-3, integrator="forward", weight_scale="auto", scale_percentile=99.9, conn_delay=0,
                     allow_unsupported=False)
SWEEP_ARGS = ["--dt", "1e-3", "--integrator", "forward", "--conn-delay", "0", "--workers", "0"]


@pytest.fixture(scope="module")
def small_gesture(tmp_path_factory):
    """A float NIR model on 2 x 32 x 32 frames (conv 4 x 4 stride 4 -> 11 classes), test and training data."""
    from collections import OrderedDict

    from torch import nn
    from torch.utils.data import TensorDataset

    from emu.apps.gesture.export import to_nir
    from emu.apps.gesture.model import SpikingSequential, leaky

    torch.manual_seed(3)
    net = SpikingSequential(OrderedDict([("conv1", nn.Conv2d(2, 4, 4, stride=4, bias=False)), ("lif1", leaky()),
                                         ("flatten", nn.Flatten()), ("fc1", nn.Linear(256, 11, bias=False)),
                                         ("lif2", leaky())]), (2, 32, 32))
    with torch.no_grad():
        for w in net.parameters():
            w.mul_(4.0)
    d = tmp_path_factory.mktemp("small_gesture")
    nir.write(str(d / "float.nir"), to_nir(net))
    rng = np.random.default_rng(0)
    x = rng.random((6, 12, 2, 32, 32)) < 0.1
    y = rng.integers(0, 11, 6)
    np.savez(d / "test.npz", inputs=x, labels=y)
    train_set = TensorDataset(torch.tensor(rng.random((8, 12, 2, 32, 32)) < 0.1).float(),
                              torch.tensor(rng.integers(0, 11, 8)))
    return d / "float.nir", x.reshape(6, 12, -1), y, train_set


def _run(small_gesture, out, points, epochs=1, **kw):
    from emu.apps import sweep as sw

    model, x, y, train_set = small_gesture
    training = sw.QatTraining(lambda: train_set, epochs=epochs, batch_size=4)
    return sw.latest(sw.run_sweep(model, x, y, points, out, options=SWEEP_OPTIONS, workers=0, qat=training, **kw))


def test_sweep_cli_runs_ptq_and_qat_points_and_qat_graphs_hold_w_bit_integers(small_gesture, tmp_path):
    from emu.apps import sweep as sw

    model = small_gesture[0]
    out = tmp_path / "r.jsonl"
    assert main(["sweep", str(model), "--data", str(model.parent / "test.npz"), "--train-synthetic", "11",
                 "--ticks", "12", "--weight-bits", "8,4", "--membrane-bits", "16", "--rounding", "truncate",
                 "--method", "ptq,qat", "--qat-epochs", "1", "--auto-scale", "--out", str(out), *SWEEP_ARGS]) == 0
    rows = sw.read_results(out)
    assert {r["key"] for r in rows} == {"ptq/w8/m16/truncate", "ptq/w4/m16/truncate", "qat/w8/m16/truncate",
                                        "qat/w4/m16/truncate"}
    assert all(r["status"] == "ok" and r["samples"] == 6 for r in rows), rows
    for bits in (8, 4):
        wmax = 2 ** (bits - 1) - 1
        graph = nir.read(str(sw.qat_model_path(out, bits)), type_check=False)
        scales = json.loads(sw.qat_model_path(out, bits).with_suffix(".json").read_text())
        assert scales["recipe"] == dict(epochs=1, lr=1e-3, batch_size=16, seed=0, data="synthetic 11",
                                        percentile=99.9)
        assert len(scales["history"]) == 1
        for layer, lif in (("conv1", "lif1"), ("fc1", "lif2")):
            w = np.asarray(graph.nodes[layer].weight)
            assert np.array_equal(w, np.round(w)) and np.abs(w).max() == wmax, (bits, layer)
            np.testing.assert_allclose(graph.nodes[lif].v_threshold, scales["populations"][lif]["w_scale"])
    assert (out.parent / "r.jsonl.qat" / "train-synthetic11" / "DVSGesture").is_dir()


def test_qat_without_fine_tuning_is_ptq(small_gesture, tmp_path):
    """0 epochs: the integer graph converted unscaled runs exactly as ptq's automatic scale does."""
    from emu.apps import sweep as sw

    rows = {r["key"]: r for r in _run(small_gesture, tmp_path / "r.jsonl",
                                      sw.grid([8, 4], [16], ["nearest"], ["ptq", "qat"]), epochs=0)}
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows.values())
    same = ("accuracy", "spike_mismatch", "output_spikes", "synaptic_events", "memory_bytes", "membrane_frac_bits")
    for bits in (8, 4):
        ptq, qat = rows[f"ptq/w{bits}/m16/nearest"], rows[f"qat/w{bits}/m16/nearest"]
        assert {k: ptq[k] for k in same} == {k: qat[k] for k in same}
        assert qat["clipped_weights"] == 0  # the graph's weights are within range already
    assert rows["ptq/w8/m16/nearest"]["output_spikes"] > 0


def test_resumed_sweep_reuses_the_trained_qat_graph(small_gesture, tmp_path, monkeypatch):
    from emu.apps.gesture import train as gesture_train
    from emu.apps import sweep as sw

    out = tmp_path / "r.jsonl"
    _run(small_gesture, out, sw.grid([4], [16], ["truncate"], ["qat"]))
    graph = sw.qat_model_path(out, 4)
    stamp = graph.stat().st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("retrained although the graph is cached")

    monkeypatch.setattr(gesture_train, "train", no_training)
    rows = _run(small_gesture, out, sw.grid([4], [16, 24], ["truncate"], ["qat"]))
    assert {r["key"]: r["status"] for r in rows} == {"qat/w4/m16/truncate": "ok", "qat/w4/m24/truncate": "ok"}
    assert graph.stat().st_mtime_ns == stamp


def test_qat_graph_trained_otherwise_is_refused(small_gesture, tmp_path):
    from emu.apps import sweep as sw

    out = tmp_path / "r.jsonl"
    _run(small_gesture, out, sw.grid([4], [16], ["truncate"], ["qat"]), epochs=1)
    more = sw.grid([4], [16, 24], ["truncate"], ["qat"])  # a new point of the same weight bits
    # the results file says its rows came from another training, and refuses to mix
    with pytest.raises(ResultsMismatch, match=r"r.jsonl holds results made with other settings \(qat.epochs: 1 there, 2 now\)"):
        _run(small_gesture, out, more, epochs=2)
    # without the results, the trained graph itself says how it was trained
    out.rename(tmp_path / "kept.jsonl")
    with pytest.raises(sw.SweepError, match=r"w4.nir was trained differently \(epochs: saved 1, asked 2\)"):
        _run(small_gesture, out, more, epochs=2)
    (tmp_path / "kept.jsonl").rename(out)
    assert len(_run(small_gesture, out, more, epochs=1)) == 2


def test_failed_qat_training_is_recorded_as_error_rows_and_retrained(small_gesture, tmp_path, monkeypatch):
    from emu.apps.gesture import train as gesture_train
    from emu.apps import sweep as sw
    from emu.apps.gesture.qat import ChipWeightQuant

    real_train = gesture_train.train

    def fails_at_4_bits(model, *args, **kwargs):
        if any(isinstance(m, ChipWeightQuant) and m.wmax == 7 for m in model.modules()):
            raise RuntimeError("diverged")
        return real_train(model, *args, **kwargs)

    out = tmp_path / "r.jsonl"
    points = sw.grid([8, 4], [16], ["truncate"], ["ptq", "qat"])
    monkeypatch.setattr(gesture_train, "train", fails_at_4_bits)
    rows = {r["key"]: r for r in _run(small_gesture, out, points)}
    assert rows["qat/w4/m16/truncate"]["status"] == "error"
    assert rows["qat/w4/m16/truncate"]["error"] == "qat training failed: RuntimeError: diverged"
    assert all(rows[k]["status"] == "ok" for k in ("ptq/w8/m16/truncate", "ptq/w4/m16/truncate",
                                                   "qat/w8/m16/truncate"))
    assert not sw.qat_model_path(out, 4).exists()
    monkeypatch.setattr(gesture_train, "train", real_train)
    rows = _run(small_gesture, out, points)
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)


def test_qat_without_training_data_is_a_clear_error(small_gesture, tmp_path, capsys):
    from emu.apps import sweep as sw

    model, x, y, _ = small_gesture
    assert main(["sweep", str(model), "--data", str(model.parent / "test.npz"), "--method", "ptq,qat",
                 "--out", str(tmp_path / "r.jsonl"), *SWEEP_ARGS]) == 2
    err = capsys.readouterr().err
    assert "--method qat" in err and "--train-data" in err and "--train-synthetic" in err
    with pytest.raises(SystemExit):
        main(["sweep", str(model), "--synthetic", "2", "--method", "ptq,pqt", "--out", str(tmp_path / "r.jsonl")])
    assert "unknown method ['pqt']" in capsys.readouterr().err
    with pytest.raises(sw.SweepError, match="--train-data ROOT or --train-synthetic N"):
        sw.run_sweep(model, x, y, sw.grid([8], [16], ["truncate"], ["qat"]), tmp_path / "r.jsonl",
                     options=SWEEP_OPTIONS, workers=0)
