"""The snnTorch runner: a Network as snnTorch modules, equal to the emulator's snntorch profile."""
import nir
import numpy as np
import pytest
import snntorch as snn
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.engine import Emulator
from emu.inputs import InputError
from emu.spikes import RecordingError
from emu.network import Network, Population, Projection
from emu.profile import SemanticsProfile
from netgen import input_rasters, networks
from validate.factors import without_delays
from validate.snntorch_runner import RunnerError, SnnTorchModel, run_snntorch


def _snntorch_friendly(net: Network) -> Network:
    """Decays as snnTorch holds them (float32) and biases on a 1/16 grid."""
    for p in net.populations.values():
        p.alpha = p.alpha.astype(np.float32).astype(np.float64)
        if p.alpha_syn is not None:
            p.alpha_syn = p.alpha_syn.astype(np.float32).astype(np.float64)
        p.i_offset = np.round(p.i_offset * 16) / 16
    return net


def _assert_same(emu_run, torch_run, net):
    for name in net.populations:
        assert np.array_equal(emu_run.raster(name), torch_run.raster(name)), name
    for name in torch_run.v:
        # equal up to the grouping of the bias addition (beta*v + (I + b) vs (beta*v + I) + b)
        np.testing.assert_allclose(emu_run.v[name], torch_run.v[name], rtol=1e-12, atol=1e-9, err_msg=name)


@settings(max_examples=40)
@given(st.data())
def test_matches_emulator_snntorch_profile(data):
    """Conv, pooling, one-to-one, recurrent and skip projections; LIF, IF, LI, CubaLIF; batch of 2."""
    net = _snntorch_friendly(data.draw(networks(allow_delay=False)))
    reset = data.draw(st.sampled_from(("subtract", "zero")))
    if reset == "zero" and any(p.model == "cuba_lif" for p in net.populations.values()):
        reset = "subtract"  # Synaptic's zero reset is another model (test below)
    x = data.draw(input_rasters(net, batch=2))
    emu_run = Emulator(net, SemanticsProfile.snntorch(reset_mode=reset))(x, record_v=True)
    torch_run = run_snntorch(net, x, reset=reset)
    _assert_same(emu_run, torch_run, net)
    assert torch_run.meta["delays_ignored"] == 0
    assert list(torch_run.populations) == net.order()


@settings(max_examples=15)
@given(st.data())
def test_delays_honored_or_ignored(data):
    net = _snntorch_friendly(data.draw(networks(models=("lif", "if", "li"))))
    x = data.draw(input_rasters(net, batch=1))
    honored = run_snntorch(net, x, delays="honor")
    _assert_same(Emulator(net, SemanticsProfile.snntorch())(x, record_v=True), honored, net)
    ignored = run_snntorch(net, x)  # snnTorch has no delays: they are dropped, and counted
    _assert_same(Emulator(without_delays(net), SemanticsProfile.snntorch())(x, record_v=True), ignored, net)
    assert ignored.meta["delays_ignored"] == sum(pr.delay > 0 for pr in net.projections)


def _single(alpha, model="lif", **kw):
    net = Network()
    net.add(Population("in", (1,), "input"))
    net.add(Population("out", (1,), model, alpha=alpha, **kw))
    net.add(Projection("in", "out", np.array([[0.75]])))
    return net


def test_beta_is_float32_like_snntorch():
    """snnTorch keeps beta = 0.93 as float32(0.93); the runner does the same, the float64 profile does not."""
    x = np.ones((80, 1), bool)
    run = run_snntorch(_single(0.93, threshold=2.0), x)
    model = SnnTorchModel(_single(0.93, threshold=2.0))
    assert isinstance(model.neuron("out"), snn.Leaky) and model.neuron("out").beta.dtype == torch.float32
    assert model.neuron("out").reset_delay
    as_f32 = Emulator(_single(float(np.float32(0.93)), threshold=2.0), SemanticsProfile.snntorch())(x, record_v=True)
    as_f64 = Emulator(_single(0.93, threshold=2.0), SemanticsProfile.snntorch())(x, record_v=True)
    np.testing.assert_allclose(run.v["out"], as_f32.v["out"], rtol=1e-13)
    assert np.abs(run.v["out"] - as_f64.v["out"]).max() > 1e-9  # float32(0.93) - 0.93 = 7e-9 per step
    exact = run_snntorch(_single(0.93, threshold=2.0), x, decay_dtype=None)
    np.testing.assert_allclose(exact.v["out"], as_f64.v["out"], rtol=1e-13)


def test_scalar_threshold_reset_stays_float64():
    """A 0-d float64 threshold times snnTorch's float32 spike is float32 in torch; the runner avoids it."""
    x = np.ones((30, 1), bool)
    net = _single(0.5, threshold=0.506)
    run = run_snntorch(net, x)
    emu_run = Emulator(net, SemanticsProfile.snntorch())(x, record_v=True)
    assert run.raster("out").any()
    np.testing.assert_allclose(run.v["out"], emu_run.v["out"], rtol=0, atol=1e-15)


def test_synaptic_zero_reset_drops_the_input_of_the_next_step():
    """snnTorch's Synaptic zero reset sets the membrane of the step after a spike to 0 (its input
    included), where Leaky (and the emulator's next-tick zero reset) keeps that step's input."""
    x = np.ones((20, 1), bool)
    net = _single(0.5, "cuba_lif", threshold=1.0, alpha_syn=0.5)
    run = run_snntorch(net, x, reset="zero")
    assert isinstance(SnnTorchModel(net, reset="zero").neuron("out"), snn.Synaptic)
    spikes = run.raster("out")[0, :, 0]
    after = np.flatnonzero(spikes[:-1]) + 1
    assert after.size and np.all(run.v["out"][0, after, 0] == 0)
    emu_run = Emulator(net, SemanticsProfile.snntorch(reset_mode="zero"))(x, record_v=True)
    assert np.all(emu_run.v["out"][0, after[0], 0] > 0)  # the emulator keeps the current of that step
    sub = run_snntorch(net, x, reset="subtract")  # subtract reset: Synaptic is the emulator's CubaLIF
    _assert_same(Emulator(net, SemanticsProfile.snntorch())(x, record_v=True), sub, net)


def test_cuba_bias_enters_the_membrane_undecayed():
    x = np.zeros((25, 1), bool)
    net = _single(0.75, "cuba_lif", threshold=1.5, alpha_syn=0.5, i_offset=0.5)
    before = torch.get_num_threads()
    run = run_snntorch(net, x)
    assert torch.get_num_threads() == before  # a small run uses one thread, then restores the setting
    _assert_same(Emulator(net, SemanticsProfile.snntorch())(x, record_v=True), run, net)
    assert run.raster("out").any()


def test_from_nir_names_populations_like_the_graph():
    rng = np.random.default_rng(0)
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2, 6, 6])}),
            "conv": nir.Conv2d(input_shape=(6, 6), weight=rng.normal(0, 1, (3, 2, 3, 3)), stride=1, padding=1,
                               dilation=1, groups=1, bias=np.zeros(3)),
            "lif1": nir.LIF(tau=np.full((3, 6, 6), 0.02), r=np.ones((3, 6, 6)), v_leak=np.zeros((3, 6, 6)),
                            v_threshold=np.full((3, 6, 6), 0.5), v_reset=np.zeros((3, 6, 6))),
            "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            "flat": nir.Flatten(start_dim=0, end_dim=-1, input_type={"input": np.array([3, 3, 3])}),
            "fc": nir.Affine(weight=rng.normal(0, 1, (4, 27)), bias=np.zeros(4)),
            "lif2": nir.LIF(tau=np.full(4, 0.02), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.full(4, 0.5),
                            v_reset=np.zeros(4)),
        },
        edges=[("input", "conv"), ("conv", "lif1"), ("lif1", "pool"), ("pool", "flat"), ("flat", "fc"),
               ("fc", "lif2")],
        type_check=False,
    )
    from emu.nir_import import ConversionOptions, from_nir

    opts = ConversionOptions(dt=1e-3, conn_delay=0)
    model = SnnTorchModel.from_nir(graph, opts)
    x = np.random.default_rng(1).random((30, 72)) < 0.3
    run = model.run(x)
    assert list(run.populations) == ["input", "lif1", "lif2"]
    assert run.v["lif1"].shape == (1, 30, 108)
    net = from_nir(graph, opts)
    emu_run = Emulator(net, SemanticsProfile.snntorch())(x)
    # float weights in another summation order: spikes agree (voltages to rounding)
    for name in ("lif1", "lif2"):
        assert np.array_equal(run.raster(name), emu_run.raster(name))
    assert run_snntorch(graph, x, options=opts).spike_counts("lif2").tolist() == run.spike_counts("lif2").tolist()


def test_bad_inputs():
    net = _single(0.5, threshold=1.0)
    with pytest.raises(InputError, match="does not fit population shape"):
        run_snntorch(net, np.zeros((10, 3), bool))
    with pytest.raises(RecordingError, match="input .in.: raster values must be 0 or 1"):
        run_snntorch(net, np.full((10, 1), 2))
    with pytest.raises(RunnerError, match="reset must be one of"):
        SnnTorchModel(net, reset="none")
    with pytest.raises(RunnerError, match="delays must be one of"):
        SnnTorchModel(net, delays="later")
    with pytest.raises(RunnerError, match="v_reset"):
        SnnTorchModel(_single(0.5, threshold=1.0, v_reset=0.2), reset="zero")
    with pytest.raises(KeyError, match="no neuron population 'nope'"):
        SnnTorchModel(net).neuron("nope")
