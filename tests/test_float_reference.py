"""The float reference: the NIR graph as snnTorch runs it, equal to the emulator's snntorch profile."""
import nir
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.apps.demo import MODEL
from emu.engine import Emulator
from emu.nir_import import ConversionOptions, from_nir, read_nir
from emu.profile import SemanticsProfile
from emu.testing.strategies import nir_graphs, spike_rasters
from validate.float_reference import FloatReference, FloatReferenceError


def emulated(graph, x, dt, integrator, reset, timing, profile=None):
    net = from_nir(graph, ConversionOptions(dt=dt, integrator=integrator, conn_delay=0))
    profile = profile or SemanticsProfile.snntorch(reset_mode=reset, reset_timing=timing)
    return net, Emulator(net, profile)(x, record_v=True)


def assert_same(ref, emu_run, net):
    for name in ref.populations:
        assert np.array_equal(ref.raster(name), emu_run.raster(name)), (name, int((ref.raster(name) != emu_run.raster(name)).sum()))
    for name, v in ref.v.items():
        scale = net.populations[name].scale  # the emulator holds chip units: v_nir * scale
        np.testing.assert_allclose(emu_run.v[name] / scale, v, rtol=1e-9, atol=1e-9, err_msg=name)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_equals_the_emulators_snntorch_profile_on_random_graphs(data):
    """Dense, conv + pooling, recurrent CubaLIF, biases; both integrators, resets and reset timings."""
    graph = data.draw(nir_graphs())
    integrator = data.draw(st.sampled_from(("forward", "exponential")))
    reset = data.draw(st.sampled_from(("subtract", "zero")))
    # snnTorch's same-step subtract reset is another model when the membrane stays above the
    # threshold after a reset (test below)
    timing = data.draw(st.sampled_from(("next_tick", "same_tick") if reset == "zero" else ("next_tick",)))
    n_in = int(np.prod(graph.nodes["input"].input_type["input"]))
    x = data.draw(spike_rasters(n_in, data.draw(st.integers(20, 60)), density=(0.05, 0.3), batch=2))
    ref = FloatReference(graph, dt=1e-3, integrator=integrator, reset=reset, reset_timing=timing)(x)
    net, emu_run = emulated(graph, x, 1e-3, integrator, reset, timing)
    assert ref.meta["voltage_units"] == "NIR"
    assert_same(ref, emu_run, net)


def test_the_shipped_gesture_model():
    graph = read_nir(MODEL)
    x = np.random.default_rng(0).random((2, 120, 2, 32, 32)) < 0.1
    ref = FloatReference(graph, dt=1e-3)(x)
    net, emu_run = emulated(graph, x.reshape(2, 120, -1), 1e-3, "forward", "subtract", "next_tick")
    assert ref.spike_counts("lif5").sum() > 0
    assert_same(ref, emu_run, net)


def _cuba_with_bias(v_leak=0.0, v_threshold=20.0):
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([2])),
        "fc": nir.Affine(weight=np.array([[1.0, 0.5]]), bias=np.array([0.25])),
        "c": nir.CubaLIF(tau_mem=np.array([0.01]), tau_syn=np.array([0.005]), r=np.array([10.0]),
                         v_leak=np.array([v_leak]), v_threshold=np.array([v_threshold]), v_reset=np.array([0.0]),
                         w_in=np.array([5.0])),
        "output": nir.Output(output_type=np.array([1]))},
        edges=[("input", "fc"), ("fc", "c"), ("c", "output")], metadata={"dt": 1e-3}, type_check=False)


def test_a_cuba_bias_passes_through_the_synaptic_current_unlike_the_converters_folding():
    graph = _cuba_with_bias()
    x = np.zeros((1, 30, 2), bool)
    ref = FloatReference(graph, dt=1e-3)(x)
    # NIR: tau_syn dI/dt = -I + w_in b: the current (and the membrane) rise from 0
    v = ref.v["c"][0, :, 0]
    assert v[0] == pytest.approx(0.25) and np.all(np.diff(v) > 0) and not ref.raster("c").any()
    net, synaptic = emulated(graph, x, 1e-3, "forward", "subtract", "next_tick")
    assert_same(ref, synaptic, net)
    # the converter puts the steady state on the membrane from tick 0: another model
    _, folded = emulated(graph, x, 1e-3, "forward", "subtract", "next_tick",
                         SemanticsProfile.snntorch(bias_path="membrane"))
    assert folded.v["c"][0, 0, 0] / net.populations["c"].scale[0] == pytest.approx(0.25 / 0.2)
    assert not np.allclose(folded.v["c"], synaptic.v["c"])


def test_snntorchs_same_step_subtract_reset_needs_twice_the_threshold_after_a_reset():
    """snnTorch's reset_delay=False: a neuron whose membrane is still above the threshold after its
    reset subtracts it again in the next step (the delayed-reset term) before it fires, so it
    fires only above twice the threshold; the chip fires again at once (docs/peers.md)."""
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([1])),
        "fc": nir.Linear(weight=np.array([[1.25]])),
        "n": nir.IF(r=np.array([1.0]), v_threshold=np.array([0.5]), v_reset=np.array([0.0])),
        "output": nir.Output(output_type=np.array([1]))},
        edges=[("input", "fc"), ("fc", "n"), ("n", "output")], metadata={"dt": 1e-3}, type_check=False)
    x = np.zeros((1, 4, 1), bool)
    x[0, 0] = True
    ref = FloatReference(graph, dt=1e-3, reset_timing="same_tick")(x)
    _, chip_rule = emulated(graph, x, 1e-3, "forward", "subtract", "same_tick")
    assert ref.raster("n", 0)[:, 0].tolist() == [True, False, False, False]  # 1.25 -> 0.75 stays
    assert chip_rule.raster("n", 0)[:, 0].tolist() == [True, False, False, False] or True
    assert chip_rule.raster("n", 0)[:, 0].tolist() == [True, True, False, False]  # 0.75 > 0.5 fires again


def test_bad_graphs_and_settings_say_what_and_where():
    with pytest.raises(FloatReferenceError, match="node 'c': field v_leak != 0"):
        FloatReference(_cuba_with_bias(v_leak=0.1), dt=1e-3)
    with pytest.raises(FloatReferenceError, match="integrator must be one of"):
        FloatReference(_cuba_with_bias(), dt=1e-3, integrator="euler")
    with pytest.raises(FloatReferenceError, match="dt must be"):
        FloatReference(_cuba_with_bias(), dt=float("inf"))
