"""One quantizer: every path that makes integer weights calls emu.numerics, each with its own rounding mode."""
import nir
import numpy as np
import pytest
import torch

from emu.chip import fit_warnings
from emu.apps.gesture.ptq import quantize as ptq_quantize
from emu.network import Network, Population, Projection
from emu.numerics import WeightRangeError, quantize, quantize_weights, round_weights, weight_bits, weight_max
from emu.profile import SemanticsProfile
from emu.apps.gesture.qat import ChipWeightQuant

# halves tell the three modes apart; 127 makes every path's scale exactly 1
W = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.7, -3.7, 127.0])
TRUNCATE = [0, 1, 2, 0, -1, -2, 3, -3, 127]
HALF_AWAY = [1, 2, 3, -1, -2, -3, 4, -4, 127]
HALF_EVEN = [0, 2, 2, 0, -2, -2, 4, -4, 127]


@pytest.mark.parametrize("mode,want", [("truncate", TRUNCATE), ("nearest", HALF_AWAY), ("nearest_even", HALF_EVEN)])
def test_round_weights_modes(mode, want):
    assert round_weights(W, mode).tolist() == want


def test_bits_and_ranges():
    assert [weight_max(b) for b in (2, 5, 8, 16)] == [1, 15, 127, 32767]
    assert weight_max(None) is None
    assert [weight_bits(m) for m in (15, 127)] == [5, 8]
    with pytest.raises(ValueError):
        weight_bits(100)


def test_overflow_is_an_error_or_counted_never_wrapped():
    with pytest.raises(WeightRangeError, match="2 of 3 weights are outside"):
        quantize(np.array([200.0, -128.0, 3.0]), 8, "truncate")
    q, n = quantize(np.array([200.0, -128.0, 3.0]), 8, "truncate", overflow="saturate")
    assert q.tolist() == [127, -127, 3] and n == 2


def test_emulator_profile_path_truncates_by_default_and_follows_the_option():
    assert quantize_weights(W, SemanticsProfile.chip())[0].tolist() == TRUNCATE
    assert quantize_weights(W, SemanticsProfile.chip(weight_rounding="nearest"))[0].tolist() == HALF_AWAY
    assert quantize_weights(W, SemanticsProfile.chip(weight_rounding="nearest_even"))[0].tolist() == HALF_EVEN


def _chain(weights):
    nodes = {"input": nir.Input(input_type=np.array([len(weights)])),
             "fc": nir.Linear(weight=np.array([weights], np.float64)),
             "lif": nir.LIF(tau=np.array([0.01]), r=np.array([10.0]), v_leak=np.array([0.0]),
                            v_threshold=np.array([1.0]), v_reset=np.array([0.0])),
             "output": nir.Output(output_type=np.array([1]))}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])


@pytest.mark.parametrize("mode,want", [("trunc", TRUNCATE), ("nearest", HALF_EVEN)])
def test_ptq_path_truncates_or_rounds_halves_to_even(mode, want):
    q, report = ptq_quantize(_chain(W), percentile=100.0, rounding=mode)
    assert report["populations"]["lif"]["w_scale"] == 1.0
    assert q.nodes["fc"].weight.reshape(-1).tolist() == want


@pytest.mark.parametrize("mode,want", [("truncate", TRUNCATE), ("nearest", HALF_AWAY)])
def test_qat_path_truncates_or_rounds_halves_away(mode, want):
    rounded, scale = ChipWeightQuant(bits=8, rounding=mode).integers(torch.tensor(W))
    assert float(scale) == 1.0 and rounded.tolist() == want


@pytest.mark.parametrize("mode,warned", [("truncate", False), ("nearest", True)])
def test_chip_script_fit_check_uses_the_profile_rounding(mode, warned):
    net = Network()
    net.add(Population("in", (2,), "input"))
    net.add(Population("out", (1,), "lif"))
    net.add(Projection("in", "out", np.array([[127.5, 1.0]])))
    lines = fit_warnings(net, 10, SemanticsProfile.chip(weight_rounding=mode))
    assert any("outside [-127, 127]" in line for line in lines) == warned
