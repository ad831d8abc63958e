"""Layout decisions of emu.engine.layout that change how the kernel works, not what it
computes: when a tick's spikes may be scattered out of NIR order, and when a
population's parameters are read once."""
import threading

import numpy as np
import pytest
from numba import njit

from emu.engine.layout import CompiledNetwork, bit_identical
from emu.engine.rows import _unique_rows, row_hash_multipliers
from emu.engine import Emulator
from emu.engine.intrinsics import take_next
from emu.network import Network, Population, Projection
from emu.profile import SemanticsProfile


def conv_net(weight, threshold=5.0, c_out=4, threshold_c=None):
    net = Network(dt=1e-3)
    net.add(Population("in", (2, 6, 6), "input"))
    net.add(Population("c", (c_out, 6, 6), "lif", alpha=0.9,
                       threshold=threshold if threshold_c is None else threshold_c))
    net.add(Population("d", (3,), "lif", alpha=0.9, threshold=threshold))
    net.add(Projection("in", "c", weight, kind="conv2d", padding=1))
    net.add(Projection("c", "d", np.ones((3, c_out * 36)), kind="dense"))
    return net


def flags(net, profile):
    c = CompiledNetwork.build(net, profile)
    a, order = c.arrays, c.order
    return ({n: bool(a.pop_nir_sorted[i]) for i, n in enumerate(order)},
            {n: bool(a.pop_uniform[i]) for i, n in enumerate(order)})


def test_integer_weights_need_no_nir_order():
    w = np.random.default_rng(0).integers(-127, 128, (4, 2, 3, 3)).astype(float)
    sorted_, _ = flags(conv_net(w), SemanticsProfile.chip())
    assert not any(sorted_.values())


def test_fractional_weights_keep_nir_order():
    w = np.random.default_rng(0).uniform(-1, 1, (4, 2, 3, 3))
    sorted_, _ = flags(conv_net(w), SemanticsProfile.float64(weight_bits=None))
    # the input's spikes feed "c" with inexact sums; "c" feeds "d" with integer weights
    assert sorted_ == {"in": True, "c": False, "d": False}


def test_sums_beyond_the_mantissa_keep_nir_order():
    # 2 * 9 synapses of 2**21 each: a sum can reach 2**25 > 2**24 (float32 mantissa)
    w = np.full((4, 2, 3, 3), 2.0 ** 21)
    assert flags(conv_net(w), SemanticsProfile.chip(weight_bits=None))[0]["in"]
    assert not flags(conv_net(w), SemanticsProfile.brian2(weight_bits=None))[0]["in"]  # float64 state


def test_uniform_parameters_detected_bit_for_bit():
    w = np.ones((4, 2, 3, 3))
    _, uniform = flags(conv_net(w), SemanticsProfile.chip())
    assert uniform["c"] and uniform["d"]
    net = conv_net(w, threshold_c=np.r_[np.full(143, 5.0), 6.0])
    assert not flags(net, SemanticsProfile.chip())[1]["c"]
    assert bit_identical(np.zeros(3)) and not bit_identical(np.array([0.0, -0.0]))
    assert not bit_identical(np.zeros(0))


@pytest.mark.parametrize("profile", [SemanticsProfile.chip(), SemanticsProfile.float64(weight_bits=None)])
def test_out_of_order_scatter_gives_the_nir_order_result(profile):
    """Forcing NIR order everywhere changes no bit where the flags allow any order."""
    rng = np.random.default_rng(3)
    net = conv_net(rng.integers(-127, 128, (4, 2, 3, 3)).astype(float), threshold=60.0)
    x = rng.random((2, 30, 2, 6, 6)) < 0.3
    em = Emulator(net, profile)
    free = em(x, record_v=True)
    em.compiled.arrays.pop_nir_sorted[:] = True
    nir = em(x, record_v=True)
    for key in ("pop_int_drive", "proj_int_drive"):  # float sums instead of int16 ones
        em.compiled.arrays._asdict()[key][:] = False
    floats = em(x, record_v=True)
    assert free.spike_counts("c").sum() > 0
    for other in (nir, floats):
        for name in ("c", "d"):
            assert np.array_equal(free.raster(name), other.raster(name))
            assert np.array_equal(free.v[name], other.v[name])


def test_int16_sums_only_where_they_are_exact_and_fit():
    w = np.random.default_rng(0).integers(-127, 128, (4, 2, 3, 3)).astype(float)

    def drive(net, profile):
        c = CompiledNetwork.build(net, profile)
        return {n: bool(c.arrays.pop_int_drive[i]) for i, n in enumerate(c.order)}

    # c: 18 synapses of |w| <= 127; d: 144 of weight 1
    assert drive(conv_net(w), SemanticsProfile.chip()) == {"in": False, "c": True, "d": True}
    # d: 324 synapses of weight 127, 41,148 > 2**15 - 1
    w9 = np.ones((9, 2, 3, 3))
    net = conv_net(w9, c_out=9)
    net.projections[-1] = Projection("c", "d", np.full((3, 9 * 36), 127.0), kind="dense")
    assert drive(net, SemanticsProfile.chip()) == {"in": False, "c": True, "d": False}
    assert not any(drive(conv_net(w), SemanticsProfile.fixed()).values())
    assert not any(drive(conv_net(w), SemanticsProfile.chip(reset_timing="next_tick")).values())
    assert not any(drive(conv_net(w), SemanticsProfile.chip(weight_bits=None)).values())  # float weight pool


@pytest.mark.parametrize("arithmetic", ["chip", "brian2", "float64", "fixed"])
def test_spike_condition_at_exactly_the_threshold(arithmetic):
    """v reaching the threshold exactly fires with '>=' and not with '>' (the kernel
    compares '>' against the next value below the threshold)."""
    net = Network(dt=1e-3)
    net.add(Population("in", (1,), "input"))
    net.add(Population("n", (1,), "if", threshold=3.0))
    net.add(Projection("in", "n", np.ones((1, 1)), kind="dense"))
    x = np.zeros((1, 10, 1), bool)
    x[0, :3] = True  # three unit inputs: v = 3 exactly at tick 3
    base = getattr(SemanticsProfile, arithmetic)(weight_bits=8)
    fired = {cond: Emulator(net, base.with_(spike_condition=cond))(x).raster("n")[0, :, 0]
             for cond in (">", ">=")}
    assert fired[">="].nonzero()[0].tolist() == [3]
    assert not fired[">"].any()


def test_set_threshold_equals_a_rebuild():
    rng = np.random.default_rng(5)
    w = rng.integers(-127, 128, (4, 2, 3, 3)).astype(float)
    x = rng.random((2, 30, 2, 6, 6)) < 0.3
    per_neuron = rng.uniform(20, 80, 144)
    for profile in (SemanticsProfile.chip(spike_condition=">="), SemanticsProfile.fixed()):
        em = Emulator(conv_net(w, threshold=5.0), profile)
        em.compiled.set_threshold("c", per_neuron)
        em.compiled.set_threshold("d", 40.0)
        rebuilt = Emulator(conv_net(w, threshold=40.0, threshold_c=per_neuron), profile)
        for key in ("thr", "fire_thr", "pop_uniform"):
            assert np.array_equal(em.compiled.arrays._asdict()[key], rebuilt.compiled.arrays._asdict()[key]), key
        a, b = em(x), rebuilt(x)
        assert a.spike_counts("c").sum() > 0
        for name in ("c", "d"):
            assert np.array_equal(a.raster(name), b.raster(name))


def test_batches_larger_than_a_chunk_equal_runs_one_by_one():
    """The engine splits a batch into chunks (one kernel call each, 16 samples per
    thread); the chunk boundaries must not show, with or without the progress bar."""
    import numba

    rng = np.random.default_rng(7)
    net = conv_net(rng.integers(-127, 128, (4, 2, 3, 3)).astype(float), threshold=60.0)
    batch = 16 * numba.get_num_threads() + 3
    x = rng.random((batch, 12, 2, 6, 6)) < 0.3
    em = Emulator(net, SemanticsProfile.chip())
    for progress in (False, True):
        res = em(x, record_v=["c"], progress=progress)
        assert res.batch == batch and res.v["c"].shape[0] == batch
        for b in (0, batch - 2, batch - 1):
            one = em(x[b:b + 1], record_v=["c"])
            assert np.array_equal(res.raster("c")[b], one.raster("c")[0])
            assert np.array_equal(res.v["c"][b], one.v["c"][0])
        assert res.spike_counts("c")[-1] > 0


def strided_conv_net(rng):
    """A stride-2 conv (two input parities), a pooled conv and a dense layer; the last
    population is a conv's output, so footprint rows of its bottom border run past
    the end of the neuron axis."""
    net = Network(dt=1e-3)
    net.add(Population("in", (2, 9, 9), "input"))
    net.add(Population("a", (4, 4, 4), "lif", alpha=0.9, threshold=40.0))
    net.add(Population("d", (5,), "lif", alpha=0.9, threshold=60.0))
    net.add(Population("b", (3, 2, 2), "lif", alpha=0.9, threshold=30.0))
    w = lambda *shape: rng.integers(-127, 128, shape).astype(float)  # noqa: E731
    net.add(Projection("in", "a", w(4, 2, 3, 3), kind="conv2d", stride=2, padding=0))
    net.add(Projection("a", "d", w(5, 16), kind="dense", pool=2))
    net.add(Projection("a", "b", w(3, 4, 3, 3), kind="conv2d", padding=1, pool=2))
    return net


@pytest.mark.parametrize("profile", [SemanticsProfile.chip(), SemanticsProfile.brian2(weight_bits=None)])
def test_footprints_equal_rows_listed_one_by_one(monkeypatch, profile):
    """Conv projections become one footprint per pre neuron (rows found by arithmetic,
    zero-padded); the same network with every row listed in the table gives the same
    bits, and both equal the numpy reference."""
    import emu.engine.layout
    from emu.reference import reference_run

    rng = np.random.default_rng(11)
    net = strided_conv_net(rng)
    x = rng.random((2, 25, 2, 9, 9)) < 0.4
    em = Emulator(net, profile)
    a = em.compiled.arrays
    order = em.compiled.order
    # projections in schedule order: in->a (stride 2), a->d (dense), a->b (conv, pooled)
    assert a.proj_width.all()
    assert a.proj_rows[0] == 2 and a.proj_stride[0] == 4 * 4  # output rows of (W=4) x (C=4)
    assert em.compiled.arrays.buf_pad > 0  # b's bottom rows run past the end
    footprint = em(x, record_v=True)
    monkeypatch.setattr(emu.engine.layout, "strided_rows", lambda *args: None)
    listed = Emulator(net, profile)
    assert not listed.compiled.arrays.proj_width.any()
    rows = listed(x, record_v=True)
    spikes, volts, _ = reference_run(net, {"in": x[0].reshape(25, -1)}, 25, profile)
    assert footprint.spike_counts("b").sum() > 0
    for name in order[1:]:
        assert np.array_equal(footprint.raster(name), rows.raster(name)), name
        assert np.array_equal(footprint.v[name], rows.v[name]), name
        assert np.array_equal(footprint.raster(name)[0].reshape(25, -1), spikes[name]), name
        assert np.array_equal(footprint.v[name][0], volts[name].astype(footprint.v[name].dtype)), name


def test_worker_threads_equal_one_thread(monkeypatch):
    """Samples of a batch run on worker threads (each call of the serial kernel takes
    the next sample no other has taken, here three of them for seven samples); results
    equal a single thread's, sample for sample."""
    import numba

    rng = np.random.default_rng(9)
    net = conv_net(rng.integers(-127, 128, (4, 2, 3, 3)).astype(float), threshold=60.0)
    x = rng.random((7, 20, 2, 6, 6)) < 0.3
    em = Emulator(net, SemanticsProfile.chip())
    monkeypatch.setattr(numba, "get_num_threads", lambda: 1)
    one = em(x, record_v=["c"])
    monkeypatch.setattr(numba, "get_num_threads", lambda: 3)
    three = em(x, record_v=["c"])
    assert one.spike_counts("c").sum() > 0
    for name in ("c", "d"):
        assert np.array_equal(one.raster(name), three.raster(name))
    assert np.array_equal(one.v["c"], three.v["c"])


@njit(nogil=True)
def _take_until(counter, n, taken, sink):
    k = 0
    v = take_next(counter)
    while v < n:
        taken[k] = v
        k += 1
        x = v + 2
        for _ in range(20):  # work per value (a chain of divisions), so that the threads overlap
            x = x * x % 1000003
        sink[0] += x
        v = take_next(counter)
    return k


def test_the_shared_sample_counter_hands_every_value_to_exactly_one_thread():
    """The workers of a batch share one counter (emu.engine.intrinsics.take_next), one
    atomic add: four threads drawing 200,000 values between them get each value once
    (a plain load, add and store hands some values out twice)."""
    n, threads = 200_000, 4
    counter = np.zeros(1, np.int64)
    taken, sinks = np.full((threads, n), -1, np.int64), np.zeros((threads, 1), np.int64)
    _take_until(np.zeros(1, np.int64), 0, taken[0], sinks[0])  # compiled before the threads start
    counts, start = [0] * threads, threading.Barrier(threads)

    def draw(w):
        start.wait()
        counts[w] = _take_until(counter, n, taken[w], sinks[w])

    pool = [threading.Thread(target=draw, args=(w,)) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    got = np.concatenate([taken[w, :counts[w]] for w in range(threads)])
    assert np.array_equal(np.sort(got), np.arange(n))


@pytest.mark.parametrize("profile", [SemanticsProfile.chip(), SemanticsProfile.float64(weight_bits=None),
                                     SemanticsProfile.chip(reset_mode="zero", spike_condition=">=")])
def test_fused_update_of_uniform_populations_equals_the_two_passes(profile):
    """A uniform population is updated 64 neurons at a time with its spikes taken
    straight from the vector comparison; the per-neuron loop plus the byte-mask
    extraction (forced by clearing the uniform flags) gives the same bits. c has
    144 neurons: two whole blocks and a partial one."""
    rng = np.random.default_rng(4)
    net = conv_net(rng.integers(-127, 128, (4, 2, 3, 3)).astype(float), threshold=40.0)
    x = rng.random((2, 30, 2, 6, 6)) < 0.3
    em = Emulator(net, profile)
    assert em.compiled.arrays.pop_uniform[1:].all()
    fused = em(x, record_v=True)
    em.compiled.arrays.pop_uniform[:] = False
    two_pass = em(x, record_v=True)
    assert fused.spike_counts("c").sum() > 0
    for name in ("c", "d"):
        assert np.array_equal(fused.raster(name), two_pass.raster(name))
        assert np.array_equal(fused.v[name], two_pass.v[name])


def test_shared_rows_are_found_exactly_even_when_their_hashes_collide():
    rows = np.random.default_rng(3).integers(-2, 3, size=(600, 4))
    uniq, inv = _unique_rows(rows)
    assert np.array_equal(uniq[inv], rows) and len(uniq) == len(np.unique(rows, axis=0))
    m = row_hash_multipliers(2)
    collide = np.array([[m[1], -m[0]], [0, 0], [m[1], -m[0]]])  # both rows hash to 0
    uniq, inv = _unique_rows(collide)
    assert len(uniq) == 2 and np.array_equal(uniq[inv], collide)
