"""The float reference's chunked stepper gives the tick-by-tick stepper's bits (tests/float_oracle.py):
spikes, the Recording's arrays and the membranes, on random graphs of any topology (cycles, skips,
self-projections, several inputs), exact and inexact weights, every chunk length, with and without
the links' sparse matrices; and a path's sparse matrix is its torch layers' sum exactly."""
import contextlib

import nir
import numpy as np
import pytest
import torch
from float_oracle import tick_by_tick
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu.apps.demo import MODEL
from emu.nir_import import read_nir
from emu.spike_io import read_input
from emu.testing.strategies import nir_graphs
from validate import float_links, float_reference, float_steps
from validate.float_links import Bound, Path, exact_bound, grid_exponent, path_matrix
from validate.float_reference import FloatReference

EXAMPLES = MODEL.parent.parent / "examples"


@contextlib.contextmanager
def patched(**values):
    """Module constants of the stepper (``chunk_bytes``) and the links (``matrix_entries``) set for a block."""
    where = {"chunk_bytes": (float_steps, "CHUNK_BYTES"), "matrix_entries": (float_links, "MATRIX_ENTRIES"),
             "split_elements": (float_reference, "SPLIT_ELEMENTS")}
    old = {k: getattr(*where[k]) for k in values}
    try:
        for k, v in values.items():
            setattr(*where[k], v)
        yield
    finally:
        for k, v in old.items():
            setattr(*where[k], v)


def assert_identical(got, want):
    assert got.populations == want.populations
    for b in range(want.batch):
        assert np.array_equal(got.neurons[b], want.neurons[b]), b
        assert np.array_equal(got.tick_end[b], want.tick_end[b]), b
    assert set(got.v) == set(want.v)
    for name, v in want.v.items():  # bit patterns: -0.0 is not 0.0 here
        assert np.array_equal(got.v[name].view(np.int64), v.view(np.int64)), \
            (name, float(np.nanmax(np.abs(got.v[name] - v))))


# random graphs of any topology -------------------------------------------------------------
def _weights(rng, kind: str, shape) -> np.ndarray:
    w = rng.normal(0.0, 0.6, shape)
    if kind == "dyadic":
        return np.round(w * 8) / 8
    if kind == "float32":  # a trained model's: float32 values, exact sums when their span allows
        return w.astype(np.float32).astype(np.float64)
    if kind == "tiny":  # float32 values spanning 2**-40: sums not exact, torch's order decides
        return (w * np.where(rng.random(shape) < 0.3, 2.0 ** -40, 1.0)).astype(np.float32).astype(np.float64)
    return w  # float64: not exact


def _population(draw, rng, n: int):
    kind = draw(st.sampled_from(("lif", "if", "li", "cuba")))
    tau = np.full(n, draw(st.sampled_from((2e-3, 5e-3, 20e-3))))
    vth = rng.uniform(0.3, 1.5, n)
    if kind == "if":
        return nir.IF(r=np.ones(n), v_threshold=vth, v_reset=np.zeros(n))
    if kind == "cuba":
        return nir.CubaLIF(tau_mem=tau, tau_syn=np.full(n, 3e-3), r=tau / 1e-3, v_leak=np.zeros(n),
                           v_threshold=vth, v_reset=np.zeros(n), w_in=np.full(n, 3.0))
    leak = rng.uniform(-0.2, 0.3, n) if draw(st.booleans()) else np.zeros(n)
    cls = nir.LI if kind == "li" else nir.LIF
    params = dict(tau=tau, r=tau / 1e-3, v_leak=leak)
    return cls(**params) if kind == "li" else cls(**params, v_threshold=vth, v_reset=np.zeros(n))


@st.composite
def any_graphs(draw):
    """1-2 inputs and 2-5 populations joined by random dense links: forward, skipping, backward
    (cycles) and onto themselves, each with its own kind of weights (:func:`_weights`)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    inputs = [f"in{i}" for i in range(draw(st.integers(1, 2)))]
    pops = [f"p{i}" for i in range(draw(st.integers(2, 5)))]
    size = {n: draw(st.integers(1, 9)) for n in inputs + pops}
    nodes = {n: nir.Input(input_type=np.array([size[n]])) for n in inputs}
    nodes.update({n: _population(draw, rng, size[n]) for n in pops})
    pairs = {(draw(st.sampled_from(inputs)), p) for p in pops[:1]}  # the first population is fed
    for i, p in enumerate(pops[1:], 1):
        pairs.add((draw(st.sampled_from(inputs + pops[:i])), p))  # every population reachable
    for _ in range(draw(st.integers(0, 6))):
        pairs.add((draw(st.sampled_from(inputs + pops)), draw(st.sampled_from(pops))))
    edges = []
    for k, (pre, post) in enumerate(sorted(pairs)):
        w = _weights(rng, draw(st.sampled_from(("dyadic", "float32", "float64", "tiny"))), (size[post], size[pre]))
        biased = isinstance(nodes[post], nir.CubaLIF) or draw(st.booleans())
        nodes[f"w{k}"] = (nir.Affine(weight=w, bias=_weights(rng, "dyadic", size[post]) / 4) if biased
                          else nir.Linear(weight=w))
        edges += [(pre, f"w{k}"), (f"w{k}", post)]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3}, type_check=False)


def _run_both(graph, data, **model_kw):
    model = FloatReference(graph, dt=1e-3, **model_kw)
    batch, ticks = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 40))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = {n: rng.random((batch, ticks) + model.shapes[n]) < rng.uniform(0.05, 0.5) for n in model.inputs}
    want = tick_by_tick(model, x, record_v=True)
    chunk = data.draw(st.sampled_from((1, 3000, 1 << 30)))  # 1 tick, a few, all
    split = data.draw(st.sampled_from((1, float_reference.SPLIT_ELEMENTS)))  # 1: every batch on up to 3 workers
    with patched(chunk_bytes=chunk, matrix_entries=data.draw(st.sampled_from((0, float_links.MATRIX_ENTRIES))),
                 split_elements=split), float_steps.torch_threads(3):
        got = model(x, record_v=data.draw(st.booleans()), progress=False)
    if not got.v:
        want.v = {}
    assert_identical(got, want)
    return model


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_chunked_equals_tick_by_tick_on_random_topologies(data):
    timing = data.draw(st.sampled_from(("next_tick", "same_tick")))
    _run_both(data.draw(any_graphs()), data, integrator=data.draw(st.sampled_from(("forward", "exponential"))),
              reset=data.draw(st.sampled_from(("subtract", "zero"))), reset_timing=timing)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_chunked_equals_tick_by_tick_on_conv_and_recurrent_graphs(data):
    _run_both(data.draw(nir_graphs()), data, reset=data.draw(st.sampled_from(("subtract", "zero"))))


def test_the_gesture_model_and_the_conv_example():
    """The shipped gesture net (exact float32 weights: sparse matrices) and the bundled conv
    example (float64 weights: torch's layers tick by tick), over several chunks."""
    rng = np.random.default_rng(5)
    gesture = FloatReference(read_nir(MODEL), dt=1e-3)
    assert all(lc.matrix is not None for lc in gesture.currents)
    x = rng.random((3, 160, 2, 32, 32)) < 0.08
    with patched(chunk_bytes=8 << 20):
        got = gesture(x, progress=False)
    want = tick_by_tick(gesture, x)
    assert got.spike_counts("lif5").sum() > 0
    assert_identical(got, want)

    conv = FloatReference(EXAMPLES / "conv_net.nir", dt=1e-3)
    assert not any(lc.exact for lc in conv.currents)
    x, _ = read_input(EXAMPLES / "circle_events.npz", {"input": conv.shapes["input"]}, dt=1e-3)
    with patched(chunk_bytes=1 << 16):
        got = conv(x, progress=False)
    assert sum(got.spike_counts(n).sum() for n in got.populations if n != "input") > 0
    assert_identical(got, tick_by_tick(conv, x))


# exact sums and the sparse matrix of a path ------------------------------------------------
def test_the_grid_of_a_set_of_floats():
    assert grid_exponent(np.array([0.5, 0.75, -3.0])) == -2
    assert grid_exponent(np.array([0.0, 4.0, 12.0])) == 2
    assert grid_exponent(np.zeros(3)) == np.inf
    assert grid_exponent(np.array([np.float32(0.1)])) == -27  # 0.1f: 24 significant bits from 2**-4
    assert Bound(-2, 2.0 ** 49).exact(53) and not Bound(-2, 2.0 ** 50).exact(53)  # 2**51: one bit to spare


def _linear(weight, bias=None):
    layer = nir.Linear(weight=weight) if bias is None else nir.Affine(weight=weight, bias=bias)
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([weight.shape[1]])), "w": layer},
                         edges=[("input", "w")], type_check=False)
    return Path(graph, ("w",), torch.float64)


def test_which_sums_are_exact():
    rng = np.random.default_rng(0)
    assert exact_bound(_linear(np.round(rng.normal(size=(4, 300)) * 8) / 8), torch.float64) is not None
    assert exact_bound(_linear(rng.normal(size=(4, 300)).astype(np.float32).astype(float)), torch.float64)
    assert exact_bound(_linear(rng.normal(size=(4, 300))), torch.float64) is None  # float64 weights
    spread = rng.normal(size=(4, 300)) * np.where(rng.random((4, 300)) < 0.5, 2.0 ** -40, 1)
    assert exact_bound(_linear(spread.astype(np.float32).astype(float)), torch.float64) is None
    assert exact_bound(_linear(np.full((1, 3), np.inf)), torch.float64) is None
    assert exact_bound(_linear(np.full((1, 3), 0.5), np.array([0.25])), torch.float64) is not None
    assert exact_bound(_linear(np.full((1, 3), 0.5), np.array([0.1])), torch.float64) is None  # 1.5 + 0.1 rounds
    # a float32 state has 24 bits: 0.1f needs them all, so three of them do not add exactly
    assert exact_bound(_linear(np.full((1, 3), np.float32(0.1), dtype=float)), torch.float32) is None


def _conv_graph(pool_first: dict, conv: dict, pool_after: dict, dense: bool):
    nodes = {"input": nir.Input(input_type=np.array([4, 11, 12]))}
    chain = []
    if pool_first:
        nodes["pool"] = nir.SumPool2d(**{k: np.array(v) for k, v in pool_first.items()})
        chain.append("pool")
    nodes["conv"] = nir.Conv2d(input_shape=None, **conv)
    chain.append("conv")
    if pool_after:
        nodes["pool2"] = nir.SumPool2d(**{k: np.array(v) for k, v in pool_after.items()})
        chain.append("pool2")
    if dense:
        nodes["flat"] = nir.Flatten(input_type=None, start_dim=0, end_dim=-1)
        chain.append("flat")
    return nir.NIRGraph(nodes=nodes, edges=list(zip(["input"] + chain, chain)), type_check=False), tuple(chain)


def _product(x: torch.Tensor, matrix) -> torch.Tensor:
    """The 0/1 spikes ``x`` (rows, ...) times a path's matrix, plus its bias."""
    out = np.empty((x.shape[0], matrix.bias.size))
    rows, cols = np.nonzero(x.reshape(x.shape[0], -1).numpy())
    float_links.scatter_spikes(rows, cols, matrix.indptr, matrix.dst, matrix.weight, matrix.bias, float_links.NONE,
                               float_links.NONE, out)
    return torch.from_numpy(out)


CONVS = [
    dict(stride=1, padding=1, dilation=1, groups=1),
    dict(stride=2, padding=(2, 0), dilation=1, groups=2),
    dict(stride=(1, 2), padding=0, dilation=2, groups=4),
    dict(stride=1, padding="same", dilation=1, groups=1),  # an even kernel: the extra row on the right
    dict(stride=1, padding="same", dilation=(2, 1), groups=2),
    dict(stride=3, padding="valid", dilation=1, groups=1),
]


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
@pytest.mark.parametrize("conv", CONVS)
@pytest.mark.parametrize("pools", [({}, {}), ({"kernel_size": 2, "stride": 2, "padding": 0}, {}),
                                   ({"kernel_size": 3, "stride": 2, "padding": 1},
                                    {"kernel_size": 2, "stride": 1, "padding": 0})])
def test_a_paths_matrix_is_its_layers_sum(conv, pools):
    rng = np.random.default_rng(1)
    k = (4, 3) if conv["padding"] == "same" else (3, 2)
    cin = 4 // conv["groups"]
    weight = np.round(rng.normal(size=(4, cin) + k) * 8) / 8 * (rng.random((4, cin) + k) < 0.8)
    graph, chain = _conv_graph(pools[0], dict(weight=weight, bias=np.round(rng.normal(size=4) * 4) / 4, **conv),
                               pools[1], dense=bool(pools[1]))
    path = Path(graph, chain, torch.float64)
    assert exact_bound(path, torch.float64) is not None
    matrix = path_matrix(path, (4, 11, 12), torch.float64)
    x = torch.as_tensor(rng.random((5, 4, 11, 12)) < 0.3)
    want = path(x.double()).reshape(5, -1)
    assert torch.equal(_product(x, matrix), want)


def test_a_linear_on_the_last_axis_and_two_weights_in_a_row():
    """Linear acts on the last axis of a (C, H, W) input; Linear after Linear composes."""
    rng = np.random.default_rng(2)
    w1, w2 = np.round(rng.normal(size=(6, 5)) * 4) / 4, np.round(rng.normal(size=(3, 6)) * 4) / 4
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([2, 3, 5])),
                                "a": nir.Affine(weight=w1, bias=np.full(6, 0.5)), "b": nir.Linear(weight=w2)},
                         edges=[("input", "a"), ("a", "b")], type_check=False)
    path = Path(graph, ("a", "b"), torch.float64)
    matrix = path_matrix(path, (2, 3, 5), torch.float64)
    x = torch.as_tensor(rng.random((4, 2, 3, 5)) < 0.4)
    assert torch.equal(_product(x, matrix), path(x.double()).reshape(4, -1))


def test_a_large_matrix_is_not_built():
    rng = np.random.default_rng(3)
    path = _linear(np.round(rng.normal(size=(40, 50)) * 8) / 8)
    assert path_matrix(path, (50,), torch.float64) is not None
    with patched(matrix_entries=1000):
        assert path_matrix(path, (50,), torch.float64) is None


# batches, chunks and threads -----------------------------------------------------------------
def test_a_sample_gives_the_same_bits_alone_or_in_a_batch_when_sums_are_exact():
    graph = read_nir(MODEL)
    model = FloatReference(graph, dt=1e-3)
    x = np.random.default_rng(4).random((3, 50, 2, 32, 32)) < 0.02
    batch = model(x, progress=False)
    alone = model(x[1:2], progress=False)
    assert_identical(alone, batch.sample(1))


def test_a_split_batch_gives_the_bits_of_one_run_and_stops_with_its_caller():
    """Where sums are exact, the batch is split over worker threads (each its own neuron modules):
    the same bits as one run, voltages included; a worker that fails stops the others at their
    next chunk, and the failure reaches the caller."""
    graph = read_nir(MODEL)
    model = FloatReference(graph, dt=1e-3)
    x = np.random.default_rng(5).random((5, 60, 2, 32, 32)) < 0.02
    with float_steps.torch_threads(2):
        assert model._workers(5) == 1  # 5 samples of this net are below SPLIT_ELEMENTS
        one = model(x, progress=False)
        with patched(split_elements=1):
            assert model._workers(5) == 2
            assert_identical(model(x, progress=False), one)
            steps = []
            model._worker_neurons(1)  # worker 1's modules: a copy, which fails at its first step
            name = [n for n in model.order if n not in model.inputs][0]
            first = model.neurons[f"n{model.order.index(name)}"]
            first.register_forward_pre_hook(lambda *_: steps.append(1))
            model._copies[0][f"n{model.order.index(name)}"].register_forward_pre_hook(
                lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
            with patched(chunk_bytes=1), pytest.raises(KeyboardInterrupt):  # one tick per chunk
                model(np.zeros((2, 5000, 2, 32, 32), bool), progress=False)
            assert 0 < len(steps) < 5000  # worker 0 stopped long before its last tick


def test_the_callers_torch_threads_are_restored():
    """A run steps with one torch thread (exact sums; FloatReference._threads) and gives the
    caller's setting back, after a build too."""
    threads = torch.get_num_threads()
    seen = []
    try:
        torch.set_num_threads(2)
        with patched(matrix_entries=0):  # its torch layers run, so the hook sees the run's threads
            model = FloatReference(_cuba_graph(), dt=1e-3)
        assert torch.get_num_threads() == 2
        model.currents[0].path.register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))
        model(np.zeros((1, 5, 2), bool), progress=False)
        assert torch.get_num_threads() == 2 and seen and set(seen) == {1}
    finally:
        torch.set_num_threads(threads)


def _cuba_graph():
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([2])),
        "fc": nir.Affine(weight=np.array([[1.0, 0.5]]), bias=np.array([0.25])),
        "c": nir.CubaLIF(tau_mem=np.array([0.01]), tau_syn=np.array([0.005]), r=np.array([10.0]),
                         v_leak=np.array([0.0]), v_threshold=np.array([20.0]), v_reset=np.array([0.0]),
                         w_in=np.array([5.0]))},
        edges=[("input", "fc"), ("fc", "c")], metadata={"dt": 1e-3}, type_check=False)



def test_an_inexact_link_reads_each_tick_as_a_stepper_holds_it():
    """MKL's float64 sums depend on the rows of a call and on the input's address: an inexact
    link runs tick by tick on the whole batch, each tick's spikes in a tensor of their own (a
    row of a chunk's tensor lies elsewhere in memory and moved last bits here)."""
    rng = np.random.default_rng(6)
    lif = lambda n: nir.LIF(tau=np.full(n, 5e-3), r=np.full(n, 5.0), v_leak=np.zeros(n),  # noqa: E731
                            v_threshold=np.full(n, 0.6), v_reset=np.zeros(n))
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([9])), "p0": lif(9), "p1": lif(1),
                                "w0": nir.Linear(weight=rng.normal(0, 0.5, (9, 9))),
                                "w1": nir.Linear(weight=rng.normal(0, 0.5, (1, 9)))},
                         edges=[("input", "w0"), ("w0", "p0"), ("p0", "w1"), ("w1", "p1")], type_check=False)
    model = FloatReference(graph, dt=1e-3)
    assert not any(lc.exact for lc in model.currents)
    calls = []
    model.currents[1].path.register_forward_pre_hook(lambda _m, args: calls.append(tuple(args[0].shape)))
    x = rng.random((1, 400, 9)) < 0.4
    assert_identical(model(x, progress=False), tick_by_tick(model, x))
    assert set(calls[:400]) == {(1, 9)} and len(calls) == 800  # one tick a call (and 400 of the oracle's)


def test_no_ticks_give_an_empty_recording_as_the_emulators():
    model = FloatReference(_cuba_graph(), dt=1e-3)
    rec = model(np.zeros((2, 0, 2), bool), progress=False)
    assert (rec.batch, rec.ticks) == (2, 0) and not any(len(n) for n in rec.neurons)
    assert rec.v["c"].shape == (2, 0, 1)
