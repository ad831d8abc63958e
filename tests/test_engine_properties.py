"""Property tests: the numba engine equals the numpy reference bit for bit, and the
semantics hold the invariants the chip guarantees."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.engine import Emulator
from emu.network import Network, Population, Projection
from emu.profile import SemanticsProfile
from emu.reference import reference_run
from netgen import input_rasters, networks, profiles, without_biases


def _assert_same(res, ref, sample=0):
    spikes, volts, sat = ref
    for name in spikes:
        assert np.array_equal(res.raster(name)[sample], spikes[name]), name
    for name in volts:
        got = res.v[name][sample].astype(np.float64)
        assert np.array_equal(got, volts[name]), (name, np.abs(got - volts[name]).max())


@settings(max_examples=120)
@given(st.data())
def test_engine_equals_reference(data):
    net = data.draw(networks())
    profile = data.draw(profiles())
    raster = data.draw(input_rasters(net))
    res = Emulator(net, profile)(raster, record_v=True)
    ref = reference_run(net, {"in": raster}, raster.shape[0], profile)
    _assert_same(res, ref)
    assert res.meta["saturations"] == {k: v for k, v in ref[2].items() if v}


@settings(max_examples=25)
@given(st.data())
def test_batch_equals_one_by_one_and_runs_repeat(data):
    net = data.draw(networks())
    profile = data.draw(profiles(arithmetic=data.draw(st.sampled_from(("chip", "fixed")))))
    batch = data.draw(input_rasters(net, batch=3))
    emu = Emulator(net, profile)
    together = emu(batch, record_v=True)
    again = emu(batch, record_v=True)
    for b in range(3):
        alone = emu(batch[b], record_v=True)
        for name in net.populations:
            assert np.array_equal(together.raster(name)[b], alone.raster(name)[0])
            assert np.array_equal(together.raster(name)[b], again.raster(name)[b])
        for name in together.v:
            assert np.array_equal(together.v[name][b], alone.v[name][0])


@settings(max_examples=40)
@given(st.data())
def test_uniform_population_fast_path_equals_reference(data):
    """The 64-neuron vector pass (emu.engine.intrinsics.lif64) of a uniform population:
    random networks seldom draw one of 64 neurons or more with one set of parameters."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n_in, n_out = data.draw(st.integers(1, 30)), data.draw(st.integers(64, 300))
    w = np.round(rng.uniform(-20, 20, (n_out, n_in)) * 8) / 8
    net = Network()
    net.add(Population("in", (n_in,), "input"))
    net.add(Population("out", (n_out,), data.draw(st.sampled_from(("lif", "if"))),
                       alpha=round(rng.uniform(0.5, 1.0), 4), threshold=round(rng.uniform(2.0, 30.0), 2),
                       i_offset=round(rng.uniform(-0.5, 1.0), 2) if data.draw(st.booleans()) else 0.0))
    net.add(Projection("in", "out", w))
    profile = data.draw(profiles(arithmetic=data.draw(st.sampled_from(("chip", "brian2", "float64"))))).with_(
        reset_timing="same_tick")
    raster = rng.random((data.draw(st.integers(1, 40)), n_in)) < 0.5
    res = Emulator(net, profile)(raster, record_v=True)
    _assert_same(res, reference_run(net, {"in": raster}, raster.shape[0], profile))


@settings(max_examples=30)
@given(st.data())
def test_3x3_conv_footprints_equal_reference(data):
    """A 3x3 kernel at stride 1 and 6 or 16 output channels: footprints of 3 rows of 3
    vectors (16 int16 lanes, or 8 float lanes of 6 channels padded to 24), the kernel's
    fully unrolled case. Random networks seldom draw it."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    c_in, size = data.draw(st.integers(1, 3)), data.draw(st.integers(3, 9))
    c_out = data.draw(st.sampled_from((6, 16)))
    integer = data.draw(st.booleans())  # int8 weights: int16 sums under the chip profile
    shape = (c_out, c_in, 3, 3)
    w = rng.integers(-60, 61, shape) if integer else np.round(rng.uniform(-20, 20, shape) * 8) / 8
    net = Network()
    net.add(Population("in", (c_in, size, size), "input"))
    net.add(Population("out", (c_out, size, size), "lif", alpha=0.9, threshold=round(rng.uniform(5.0, 60.0), 1)))
    net.add(Projection("in", "out", w, kind="conv2d", padding=1))
    profile = data.draw(profiles(arithmetic=data.draw(st.sampled_from(("chip", "float64"))))).with_(
        reset_timing="same_tick", weight_bits=8 if integer else None)
    raster = rng.random((data.draw(st.integers(1, 30)), c_in * size * size)) < 0.3
    res = Emulator(net, profile)(raster, record_v=True)
    _assert_same(res, reference_run(net, {"in": raster}, raster.shape[0], profile))

def _path_lengths(net):
    """Shortest number of connections from the input to each population."""
    dist = {"in": 0}
    for _ in net.populations:
        for pr in net.projections:
            if pr.pre in dist:
                dist[pr.post] = min(dist.get(pr.post, 1 << 30), dist[pr.pre] + 1 + pr.delay)
    return dist


@settings(max_examples=40)
@given(st.data())
def test_first_spike_no_earlier_than_path_latency(data):
    net = data.draw(networks())
    # with ">=" a threshold that rounds to 0 fires at v = 0: spontaneous, not driven
    profile = data.draw(profiles()).with_(synaptic_latency=1, spike_condition=">")
    raster = data.draw(input_rasters(net))
    # without bias a neuron can only be driven through the connections from the input
    without_biases(net)
    res = Emulator(net, profile)(raster)
    ticks_never = raster.shape[0]  # no input: no spike may ever come
    active = np.flatnonzero(raster.any(axis=1))
    first_input = int(active[0]) if active.size else ticks_never
    for name, hops in _path_lengths(net).items():
        r = res.raster(name)[0]
        if r.any():
            assert int(np.flatnonzero(r.any(axis=1))[0]) >= first_input + hops


@settings(max_examples=40)
@given(st.data())
def test_silence_in_silence_out(data):
    net = data.draw(networks())
    without_biases(net)
    profile = data.draw(profiles()).with_(spike_condition=">")
    res = Emulator(net, profile)(np.zeros((30, net.populations["in"].size), bool), record_v=True)
    for name in net.populations:
        assert not res.raster(name).any()
    for v in res.v.values():
        assert not v.any()


@settings(max_examples=40)
@given(st.data())
def test_subtract_reset_never_leaves_v_above_threshold(data):
    """With at most one threshold of input per tick, a same-tick subtract reset
    always brings v back to <= threshold (any arithmetic, any decay)."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n_in, n_out = data.draw(st.integers(1, 10)), data.draw(st.integers(1, 8))
    w = rng.integers(-20, 21, (n_out, n_in)).astype(float)
    thr = np.maximum(np.clip(w, 0, None).sum(axis=1), 1) * rng.uniform(1.0, 1.5, n_out).round(2)
    net = Network()
    net.add(Population("in", (n_in,), "input"))
    net.add(Population("out", (n_out,), data.draw(st.sampled_from(("lif", "if"))), alpha=rng.uniform(0.5, 1.0, n_out),
                       threshold=thr))
    net.add(Projection("in", "out", w))
    profile = data.draw(profiles()).with_(reset_mode="subtract", reset_timing="same_tick", weight_bits=8,
                                          membrane_bits=32)
    raster = rng.random((40, n_in)) < 0.6
    res = Emulator(net, profile)(raster, record_v=True)
    from emu.numerics import Numerics

    num = Numerics.of(profile)
    limit = num.neuron_params(net.populations["out"])["threshold"] / num.lsb
    assert np.all(res.v["out"][0] <= limit)


def test_next_tick_reset_matches_snntorch_leaky():
    """reset_timing='next_tick' + latency 0 + float64 is snnTorch's Leaky, step for step."""
    import snntorch as snn
    import torch

    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.6, (5, 4))
    raster = rng.random((60, 4)) < 0.4
    for mode in ("subtract", "zero"):
        net = Network()
        net.add(Population("in", (4,), "input"))
        # snnTorch keeps beta as a float32 tensor, so its decay is float32(0.9)
        net.add(Population("out", (5,), "lif", alpha=float(np.float32(0.9)), threshold=1.0))
        net.add(Projection("in", "out", w))
        res = Emulator(net, SemanticsProfile.snntorch(reset_mode=mode))(raster, record_v=True)
        lif = snn.Leaky(beta=0.9, threshold=1.0, reset_mechanism=mode)
        mem = lif.init_leaky()
        spk_t, mem_t = [], []
        with torch.no_grad():
            x = torch.tensor(raster, dtype=torch.float64) @ torch.tensor(w.T)
            for t in range(60):
                spk, mem = lif(x[t], mem)
                spk_t.append(spk.numpy())
                mem_t.append(mem.numpy())
        assert np.array_equal(res.raster("out")[0], np.array(spk_t).astype(bool)), mode
        np.testing.assert_allclose(res.v["out"][0], np.array(mem_t), rtol=0, atol=1e-12)
