"""Quantization-aware training: the chip's quantizer in the forward pass, exported exactly."""
import json

import nir
import numpy as np
import pytest
import torch

from emu.cli import main
from emu.engine import Emulator
from emu.gesture.model import gesture_net
from emu.nir_import import ConversionOptions, from_nir
from emu.profile import SemanticsProfile
from emu.quant.qat import ChipWeightQuant, export_integer, integer_weights, quantization_aware


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
        assert np.array_equal(w, np.round(w)) and np.abs(w).max() == 127
    assert json.loads(out.with_suffix(".json").read_text())["populations"]["lif1"]["w_scale"] > 0
