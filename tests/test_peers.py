"""Conformance with peer libraries nobody on this project wrote: each peer's own NIR importer
runs a graph, and the project's float reference (validate.float_reference.FloatReference) and
the emulator's snntorch profile must give the same spikes, cell for cell, per population.

Peers: snnTorch's ``snntorch.import_nir.import_from_nir`` (snnTorch 1.0 + nirtorch 2.6), norse
1.1.0's ``norse.torch.from_nir`` and sinabs 3.1.3's ``sinabs.from_nir``; install them with
``scripts/install_peers.sh`` (pinned, ``--no-deps``: torch and nir stay as they are). Each
test's docstring says which semantics were matched and why; docs/peers.md ("Conformance")
lists the numbers and every peer quirk worked around. A missing peer skips its test, and
fails it under ``CI=true``.

The peers run in float64 where they can (nirtorch and norse keep some parameters float32;
snnTorch's and sinabs' spikes are float32 tensors, which pre-hooks cast, 0/1 exactly): the
comparison is about semantics, and float32 state would put ~1e-7 rounding noise on every
threshold crossing.
"""
import contextlib
import copy
import importlib
import io
import os
import warnings
from itertools import pairwise

import nir
import numpy as np
import pytest
import torch
from conftest import GOLDEN
from float_oracle import tick_by_tick

from emu.engine import Emulator
from emu.nir_import import ConversionOptions, from_nir, read_nir
from emu.profile import SemanticsProfile
from validate.float_reference import FloatReference

GESTURE = GOLDEN.parent.parent / "emu" / "models" / "gesture_float.nir"
LIF_NORSE = GOLDEN / "lif_single" / "lif_norse.nir"
BRAILLE = GOLDEN / "braille_rnn" / "braille_noDelay_noBias_subtract.nir"
SNNTORCH_DT = 1e-4  # snnTorch's importer hard-codes dt = 1e-4 s for LIF and CubaLIF


# helpers ----------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def one_torch_thread():
    """The peers step small tensors in Python loops: waking torch's thread pool costs more than
    it shares (and makes the run time depend on what else the machine does)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def peer(module: str):
    """Import a peer module; skip the test if it is missing, but fail under CI=true."""
    try:
        with warnings.catch_warnings():  # norse's torch.jit.script DeprecationWarnings
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError as exc:
        msg = f"peer {module!r} not importable ({exc}); install it with scripts/install_peers.sh"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"{msg} (CI=true: a missing peer is a failure)", pytrace=False)
        pytest.skip(msg)


@contextlib.contextmanager
def quiet():
    """Peers print and warn while importing (snnTorch's '[warning] scaling weights', nirtorch.load's
    DeprecationWarning); none of it is about the comparison."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def spikes_in(seed: int, batch: int, ticks: int, shape) -> np.ndarray:
    """(batch, ticks, *shape) bool input, each sample with its own density in 5..20 %."""
    rng = np.random.default_rng(seed)
    density = rng.uniform(0.05, 0.2, (batch, 1) + (1,) * len(shape))
    return rng.random((batch, ticks) + tuple(shape)) < density


def sanitized(name: str) -> str:
    return name.replace(".", "_")  # nirtorch's module names


def float64_inputs(module: torch.nn.Module) -> torch.nn.Module:
    """Run a peer module in float64: its weights become float64 (float32 values, exact) and the
    0/1 spikes its neurons emit as float32 are cast before each weight layer."""
    module.double()
    for mod in module.modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            mod.register_forward_pre_hook(lambda _m, args: tuple(a.to(torch.float64) for a in args))
    return module


def record(modules: dict, out: dict, pick=lambda o: o):
    """Forward hooks appending each neuron module's spikes (``pick(output)``) to ``out[name]``."""
    for name, mod in modules.items():
        out[name] = []
        mod.register_forward_hook(lambda _m, _i, o, name=name: out[name].append(pick(o).detach().clone()))


def ours(graph, x, dt, reset, reset_timing, spike_condition=">"):
    """The float reference and the emulator's snntorch profile on the same input; the float
    reference's chunked stepper is checked against its tick-by-tick oracle, bit for bit."""
    model = FloatReference(graph, dt=dt, integrator="forward", reset=reset, reset_timing=reset_timing)
    ref = model(x)
    want = tick_by_tick(model, x)
    for b in range(want.batch):
        assert np.array_equal(ref.neurons[b], want.neurons[b]) and np.array_equal(ref.tick_end[b], want.tick_end[b])
    assert all(np.array_equal(ref.v[n], v) for n, v in want.v.items())
    net = from_nir(graph, ConversionOptions(dt=dt, integrator="forward", conn_delay=0))
    profile = SemanticsProfile.snntorch(reset_mode=reset, reset_timing=reset_timing, spike_condition=spike_condition)
    emu = Emulator(net, profile)(x.reshape(x.shape[:2] + (-1,)))
    return ref, emu


def compare(label: str, theirs: dict, runs: dict, expect_equal=None) -> dict:
    """Cells compared and differing per population and run; asserts 0 differing for the runs in
    ``expect_equal`` (default: all). ``theirs``: population -> (B, T, N) bool. Returns
    {run: {population: differing}} and prints one line per population."""
    expect_equal = list(runs) if expect_equal is None else expect_equal
    diff, lines = {}, []
    for run, rec in runs.items():
        diff[run] = {}
        for pop, peer_raster in theirs.items():
            mine = rec.raster(pop)
            assert mine.shape == peer_raster.shape, (label, run, pop, mine.shape, peer_raster.shape)
            diff[run][pop] = int((mine != peer_raster).sum())
            lines.append(f"{label} | {run} | {pop}: {mine.size} cells, {int(peer_raster.sum())} peer spikes, "
                         f"{int(mine.sum())} ours, {diff[run][pop]} differing")
    print("\n" + "\n".join(lines))
    for pop, peer_raster in theirs.items():
        assert peer_raster.any(), f"{label}: population {pop} never spikes: the comparison would be vacuous"
    bad = {run: d for run, d in diff.items() if run in expect_equal and any(d.values())}
    assert not bad, f"{label}: differing cells {bad}\n" + "\n".join(lines)
    return diff


def unit_gain(tau: np.ndarray, dt: float) -> np.ndarray:
    """``r`` with ``r * (dt / tau) == 1.0`` exactly in float64 (the float reference's and the
    converter's gain), for a peer that treats ``r dt / tau`` within np.allclose of 1 as exactly 1."""
    frac = dt / np.asarray(tau, np.float64)
    r = 1.0 / frac
    for _ in range(4):
        p = r * frac
        r = np.where(p > 1, np.nextafter(r, 0.0), np.where(p < 1, np.nextafter(r, np.inf), r))
    assert np.all(r * frac == 1.0)
    return r


def graph_with(graph: nir.NIRGraph, nodes: dict | None = None, drop=()) -> nir.NIRGraph:
    """A copy of ``graph`` with some nodes replaced and some removed (with their edges)."""
    new = {k: v for k, v in graph.nodes.items() if k not in drop}
    new.update(nodes or {})
    edges = [(a, b) for a, b in graph.edges if a not in drop and b not in drop]
    return nir.NIRGraph(nodes=new, edges=edges, metadata=dict(graph.metadata), type_check=False)


def test_a_missing_peer_skips_outside_ci_and_fails_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="install_peers"):
        peer("no_such_peer_module")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        peer("no_such_peer_module")


# snnTorch ---------------------------------------------------------------------------------
def run_snntorch(graph: nir.NIRGraph, x: np.ndarray):
    """snnTorch's own importer; one sample at a time, unbatched (its Flatten keeps NIR's
    start_dim=0 literally, so a batch axis would be flattened into the features)."""
    import_nir = peer("snntorch.import_nir")
    snn = peer("snntorch")
    with quiet():
        module = import_nir.import_from_nir(copy.deepcopy(graph))  # it rewrites the graph it gets
    neurons = {n: m for n, m in module.named_children() if isinstance(m, (snn.Leaky, snn.Synaptic))}
    for name, mod in neurons.items():  # what the docstrings below rely on
        assert mod.reset_mechanism == "zero" and mod.reset_delay is False and mod.init_hidden, name
    float64_inputs(module)
    out, samples = {}, {n: [] for n in neurons}
    record(neurons, out)
    with torch.no_grad():
        for b in range(x.shape[0]):
            for mod in neurons.values():
                mod.reset_mem()
            for v in out.values():
                v.clear()
            state = None
            for t in range(x.shape[1]):
                _, state = module(torch.as_tensor(x[b, t], dtype=torch.float64), state)
            for n in neurons:
                samples[n].append(torch.stack(out[n]).reshape(x.shape[1], -1).numpy() > 0)
    names = {sanitized(k): k for k in graph.nodes}
    return {names[n]: np.stack(v) for n, v in samples.items()}, neurons


def test_snntorch_importer_on_the_gesture_net():
    """snnTorch 1.0's ``import_from_nir`` on the DVS-gesture conv net (5 LIF layers, SumPool2d,
    Flatten, no biases), 3 samples x 200 ticks of 2x32x32 input.

    Matched: dt: the importer hard-codes dt = 1e-4 s (beta = 1 - 1e-4/tau) while the net is
    trained at dt = 1e-3 (metadata), so every tau is scaled by 1e-4/1e-3 = 0.1: at 1e-4 the
    rescaled graph has the trained net's decay 0.93 and unit gain. r: the importer drops r when
    r dt / tau is within np.allclose of 1 (the net's r = 14.28571575 gives 0.9999997), so r is
    set to the value that makes the float reference's and the converter's gain exactly 1.
    Reset: the importer ignores the graph's reset (metadata "subtract") and builds
    ``Leaky(reset_mechanism="zero", reset_delay=False)``: reset="zero", reset_timing="same_tick".
    Integrator: forward (beta = 1 - dt/tau). SumPool2d becomes nirtorch's LPPool2d(1), the exact
    sum of 0/1 spikes. The float reference runs the same rescaled graph at dt = 1e-4.
    """
    peer("nirtorch")
    graph = read_nir(GESTURE)
    dt_graph = float(graph.metadata["dt"])
    rescaled = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.LIF):
            tau = np.asarray(node.tau, np.float64) * (SNNTORCH_DT / dt_graph)
            rescaled[name] = nir.LIF(tau=tau, r=unit_gain(tau, SNNTORCH_DT), v_leak=node.v_leak,
                                     v_threshold=node.v_threshold, v_reset=node.v_reset)
    graph = graph_with(graph, rescaled)
    x = spikes_in(1, 3, 200, (2, 32, 32))
    theirs, neurons = run_snntorch(graph, x)
    for mod in neurons.values():  # no threshold rescaling: the gain is exactly 1
        assert float(mod.threshold) == 1.0 and float(mod.beta.flatten()[0]) == np.float32(0.93)
    ref, emu = ours(graph, x, SNNTORCH_DT, "zero", "same_tick")
    compare("snntorch gesture", theirs, {"float reference": ref, "emulator": emu})


def test_snntorch_importer_on_the_braille_net_without_its_recurrence():
    """snnTorch 1.0's ``import_from_nir`` on the public braille net (12 -> Linear -> CubaLIF(40)
    -> Linear -> CubaLIF(7), dt = 1e-4 s) with the hidden layer's recurrent Linear removed,
    4 samples x 300 ticks.

    Why without the recurrence: the importer wraps the recurrent CubaLIF into a nested NIR
    sub-graph, and nirtorch 2.6's ``nir_to_torch`` then fails on it (``AttributeError:
    'GraphModule' object has no attribute 'items'`` in ``_construct_state_recursive``).
    Matched: dt 1e-4 (the graph's own and the importer's); r and w_in set so that both gains are
    exactly 1 (the importer treats r = 6.66666773 ~ tau_mem/dt and w_in = 4 ~ tau_syn/dt as
    exact); ``Synaptic(reset_mechanism="zero", reset_delay=False)``: reset="zero",
    reset_timing="same_tick" (the net was trained with subtract, which the importer drops).
    """
    peer("nirtorch")
    graph = read_nir(BRAILLE)
    exact = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.CubaLIF):
            exact[name] = nir.CubaLIF(tau_mem=node.tau_mem, tau_syn=node.tau_syn,
                                      r=unit_gain(node.tau_mem, SNNTORCH_DT), v_leak=node.v_leak,
                                      v_threshold=node.v_threshold, v_reset=node.v_reset,
                                      w_in=unit_gain(node.tau_syn, SNNTORCH_DT))
    graph = graph_with(graph, exact, drop=("lif1.w_rec",))
    x = spikes_in(2, 4, 300, (12,))
    theirs, _ = run_snntorch(graph, x)
    ref, emu = ours(graph, x, SNNTORCH_DT, "zero", "same_tick")
    compare("snntorch braille (no recurrence)", theirs, {"float reference": ref, "emulator": emu})


def test_snntorch_importer_turns_if_into_a_leaky_neuron():
    """Why no IF graph is compared with snnTorch's importer: it maps nir.IF to
    ``Leaky(beta=0.9, reset_delay=False)`` (default subtract reset), a leaky neuron, not NIR's
    integrate-and-fire (and asserts r == 1). Pinned so that a fixed importer is noticed."""
    import_nir = peer("snntorch.import_nir")
    peer("nirtorch")
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([3])),
        "fc": nir.Linear(weight=np.ones((2, 3), np.float32)),
        "if1": nir.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.zeros(2)),
        "output": nir.Output(output_type=np.array([2]))},
        edges=[("input", "fc"), ("fc", "if1"), ("if1", "output")], type_check=False)
    with quiet():
        module = import_nir.import_from_nir(copy.deepcopy(graph))
    assert float(module.if1.beta) == pytest.approx(0.9) and module.if1.reset_mechanism == "subtract"


# norse ------------------------------------------------------------------------------------
def run_norse(graph: nir.NIRGraph, x: np.ndarray, dt: float, reset: str = "zero"):
    """norse's ``from_nir`` (nirtorch.load's GraphExecutor), batched, step by step; returns the
    spikes and the post-reset membranes per population."""
    nt = peer("norse.torch")
    from norse.torch.functional import reset as norse_reset
    from norse.torch.module.iaf import IAFCell
    from norse.torch.module.lif_box import LIFBoxCell
    from norse.torch.utils.import_nir import CubaLIF

    method = {"zero": norse_reset.reset_value, "subtract": norse_reset.reset_subtract}[reset]
    with quiet():
        module = nt.from_nir(copy.deepcopy(graph), dt=dt, reset_method=method)
    module.double()  # weights; the neurons' parameter tuples stay float32
    neurons = {n: m for n, m in module.named_children() if isinstance(m, (LIFBoxCell, IAFCell, CubaLIF))}
    spk, mem = {}, {}
    record(neurons, spk, lambda o: o[0])
    record(neurons, mem, lambda o: o[1][1].v if isinstance(o[1], tuple) and len(o[1]) == 2 else o[1].v)
    batch, ticks = x.shape[:2]
    with torch.no_grad(), quiet():
        state = None
        for t in range(ticks):
            _, state = module(torch.as_tensor(x[:, t].reshape(batch, -1), dtype=torch.float64), state)
    names = {sanitized(k): k for k in graph.nodes}
    stack = lambda d: {names[n]: torch.stack(v, 1).reshape(batch, ticks, -1).numpy() for n, v in d.items()}
    return {n: s > 0 for n, s in stack(spk).items()}, stack(mem)


def assert_membranes(label, mem: dict, ref, rtol=1e-5):
    """norse's post-reset membranes against the float reference's (same-tick reset records the
    post-reset value too): equal up to the float32 rounding of norse's coefficients."""
    for pop, v in mem.items():
        scale = max(1.0, float(np.abs(ref.v[pop]).max()))
        err = float(np.abs(v - ref.v[pop]).max())
        print(f"{label} | membrane {pop}: max |norse - float reference| = {err:.3g}")
        assert err <= rtol * scale, (label, pop, err)


def test_norse_on_the_public_single_lif_graph():
    """norse 1.1.0's ``from_nir`` on tests/data/lif_single/lif_norse.nir (Affine w=1 -> LIF
    tau=2.5 ms, r=1, v_th=0.1), 8 samples x 1000 ticks.

    Matched: dt = 1e-4 s, passed to ``from_nir`` (its default is 1e-3); norse's LIFBox is forward
    Euler, v += dt/tau (v_leak - v + I): integrator "forward" with r = 1 (norse ignores r; the
    graph has r = 1); norse resets to 0 in the step of the spike (``reset_value``; it ignores
    the graph's v_reset, 0 here): reset="zero", reset_timing="same_tick"; spike when v > v_th
    (heaviside of v - v_th), as snnTorch.
    """
    graph = read_nir(LIF_NORSE)
    x = spikes_in(3, 8, 1000, (1,))
    theirs, mem = run_norse(graph, x, 1e-4)
    ref, emu = ours(graph, x, 1e-4, "zero", "same_tick")
    compare("norse lif_norse.nir", theirs, {"float reference": ref, "emulator": emu})
    assert_membranes("norse lif_norse.nir", mem, ref)


def _dense_lif_if_graph(seed: int = 4) -> nir.NIRGraph:
    """16 inputs -> Affine -> LIF(24) -> Linear -> IF(16) -> Affine -> LIF(8), per-neuron tau
    and thresholds, r = 1 and v_leak = 0 (see the test), weights multiples of 1/8."""
    rng = np.random.default_rng(seed)
    dt = 1e-3
    dy = lambda shape, s: np.round(rng.normal(0.0, s, shape) * 8) / 8

    def lif(n):
        return nir.LIF(tau=rng.choice([2e-3, 5e-3, 1e-2], n), r=np.ones(n), v_leak=np.zeros(n),
                       v_threshold=rng.uniform(0.5, 1.5, n), v_reset=np.zeros(n))

    nodes = {
        "input": nir.Input(input_type=np.array([16])),
        "fc1": nir.Affine(weight=dy((24, 16), 2.0), bias=dy((24,), 0.25)),
        "lif1": lif(24),
        "fc2": nir.Linear(weight=dy((16, 24), 0.5)),
        "if2": nir.IF(r=np.ones(16), v_threshold=rng.uniform(0.75, 2.0, 16), v_reset=np.zeros(16)),
        "fc3": nir.Affine(weight=dy((8, 16), 2.5), bias=dy((8,), 0.25)),
        "lif3": lif(8),
        "output": nir.Output(output_type=np.array([8])),
    }
    chain = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(pairwise(chain)), metadata={"dt": dt},
                        type_check=False)


def test_norse_on_a_generated_dense_lif_and_if_graph():
    """norse 1.1.0's ``from_nir`` on a generated dense graph (LIF, IF, LIF; Affine with biases and
    Linear), dt = 1e-3 s, 4 samples x 400 ticks.

    Matched: dt passed to ``from_nir``; forward Euler; r = 1 everywhere (norse's LIF and IF ignore
    r); v_leak = 0 (norse starts a LIF at v = v_leak, NIR and the float reference at 0); norse's
    IAF is v += I with a reset to 0 in the step of the spike: reset="zero",
    reset_timing="same_tick".
    """
    graph = _dense_lif_if_graph()
    x = spikes_in(5, 4, 400, (16,))
    theirs, mem = run_norse(graph, x, 1e-3)
    ref, emu = ours(graph, x, 1e-3, "zero", "same_tick")
    compare("norse dense LIF/IF", theirs, {"float reference": ref, "emulator": emu})
    assert_membranes("norse dense LIF/IF", mem, ref)


def test_norse_on_the_recurrent_braille_net_zero_reset():
    """norse 1.1.0's ``from_nir`` on the public braille net as published (recurrent CubaLIF(40)
    with its Linear self-projection, CubaLIF(7) read-out), dt = 1e-4 s, 4 samples x 300 ticks.

    Matched: norse's CubaLIF is w_in * x into an LIBox synapse (forward Euler, tau_syn), r times
    that current into a LIFBox (forward Euler, tau_mem), the membrane taking this step's current:
    the float reference's Synaptic with integrator "forward" (r and w_in are used, unlike LIF's
    r). The recurrent Linear reads last step's spikes (nirtorch's cache), as the float
    reference's back edge. Reset: norse's default ``reset_value`` (to 0, same step):
    reset="zero", reset_timing="same_tick". (The net was trained with subtract; see the next
    test.) v_leak = 0 in the graph (norse would also feed v_leak into the synapse).
    """
    graph = read_nir(BRAILLE)
    x = spikes_in(6, 4, 300, (12,))
    theirs, mem = run_norse(graph, x, 1e-4)
    ref, emu = ours(graph, x, 1e-4, "zero", "same_tick")
    compare("norse braille (recurrent, zero reset)", theirs, {"float reference": ref, "emulator": emu})
    assert_membranes("norse braille (recurrent, zero reset)", mem, ref)


def test_norse_on_the_recurrent_braille_net_subtract_reset():
    """As above with ``reset_method=reset_subtract`` (the braille net's training reset): norse
    subtracts the threshold in the step of the spike and a neuron still above it fires again in
    the next step. That is the emulator's same-tick subtract rule (the chip's), which must match;
    the float reference's same_tick subtract is snnTorch's ``reset_delay=False``, which fires
    again only above twice the threshold (tests/test_float_reference.py), so it is another model
    here and its differing cells are only reported.
    """
    graph = read_nir(BRAILLE)
    x = spikes_in(6, 4, 300, (12,))
    theirs, _ = run_norse(graph, x, 1e-4, reset="subtract")
    ref, emu = ours(graph, x, 1e-4, "subtract", "same_tick")
    diff = compare("norse braille (recurrent, subtract reset)", theirs, {"emulator": emu, "float reference": ref},
                   expect_equal=["emulator"])
    assert sum(diff["float reference"].values()) > 0  # the input does exercise the difference


# sinabs -----------------------------------------------------------------------------------
def _conv_if_graph(seed: int, thresholds: str) -> nir.NIRGraph:
    """2x16x16 input -> Conv2d -> IF -> SumPool2d -> Conv2d(stride 2) -> IF -> Flatten ->
    Affine -> IF(32) -> Affine -> IF(10); weights and biases multiples of 1/8, r = 1.
    ``thresholds``: "random" (float32 values in 0.75..1.5 that input sums never hit exactly) or
    "one" (1.0: the membrane lands exactly on the threshold, so > and >= differ)."""
    rng = np.random.default_rng(seed)
    dy = lambda shape, s: (np.round(rng.normal(0.0, s, shape) * 8) / 8).astype(np.float32)

    def if_(shape):
        th = (rng.uniform(0.75, 1.5, shape) if thresholds == "random" else np.ones(shape)).astype(np.float32)
        return nir.IF(r=np.ones(shape, np.float32), v_threshold=th, v_reset=np.zeros(shape, np.float32))

    nodes = {
        "input": nir.Input(input_type=np.array([2, 16, 16])),
        "conv1": nir.Conv2d(input_shape=(16, 16), weight=dy((4, 2, 3, 3), 0.8), stride=1, padding=1, dilation=1,
                            groups=1, bias=dy((4,), 0.1)),
        "if1": if_((4, 16, 16)),
        "pool1": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "conv2": nir.Conv2d(input_shape=(8, 8), weight=dy((8, 4, 3, 3), 0.5), stride=2, padding=1, dilation=1,
                            groups=1, bias=dy((8,), 0.1)),
        "if2": if_((8, 4, 4)),
        "flat": nir.Flatten(input_type={"input": np.array([8, 4, 4])}, start_dim=0, end_dim=-1),
        "fc1": nir.Affine(weight=dy((32, 128), 0.4), bias=dy((32,), 0.1)),
        "if3": if_((32,)),
        "fc2": nir.Affine(weight=dy((10, 32), 0.6), bias=dy((10,), 0.1)),
        "if4": if_((10,)),
        "output": nir.Output(output_type=np.array([10])),
    }
    chain = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(pairwise(chain)), metadata={"dt": 1e-3},
                        type_check=False)


def run_sinabs(graph: nir.NIRGraph, x: np.ndarray):
    """sinabs' ``from_nir``, then each IAF layer switched to one spike per step without the
    lower clamp; the whole (batch * time) sequence in one call, as sinabs' Squeeze layers take it."""
    sinabs = peer("sinabs")
    import sinabs.layers as sl
    from sinabs.activation import MultiSpike, SingleSpike

    batch, ticks = x.shape[:2]
    with quiet():
        module = sinabs.from_nir(copy.deepcopy(graph), batch_size=batch)
    neurons = {n: m for n, m in module.named_children() if isinstance(m, sl.IAFSqueeze)}
    for name, mod in neurons.items():
        # the importer's IF: several spikes per step and v clamped at -v_threshold; not NIR's IF
        assert mod.spike_fn is MultiSpike, name
        assert torch.equal(mod.min_v_mem, -mod.spike_threshold), name
        mod.spike_fn, mod.min_v_mem = SingleSpike, None
    float64_inputs(module)
    out = {}
    record(neurons, out)
    with torch.no_grad():
        module(torch.as_tensor(x.reshape((batch * ticks,) + x.shape[2:]), dtype=torch.float64))
    return {n: out[n][0].reshape(batch, ticks, -1).numpy() > 0 for n in neurons}


def test_sinabs_single_spike_if_on_a_generated_conv_net():
    """sinabs 3.1.3's ``from_nir`` on a generated conv / IF / SumPool2d / Affine net, 4 samples x
    250 ticks, IF layers set to ``SingleSpike`` and ``min_v_mem=None`` after importing.

    Matched: sinabs' IAF is v += I, spike when v >= v_th, then v -= v_th in the same step. With a
    decay of 1 that is exactly snnTorch's delayed subtract reset (the next step's v is v - v_th + I
    either way, and both fire on the pre-reset v): reset="subtract", reset_timing="next_tick" for
    the float reference, and the emulator's same_tick subtract (the chip rule) gives the same
    spikes. ``>=`` against snnTorch's ``>``: the thresholds are random float32 values that sums of
    multiples of 1/8 never reach exactly, so the two conditions agree (the next test has ties).
    r = 1 (sinabs ignores IF's r). SumPool2d is sinabs' LPPool2d(1), the exact sum.
    """
    graph = _conv_if_graph(7, "random")
    x = spikes_in(8, 4, 250, (2, 16, 16))
    theirs = run_sinabs(graph, x)
    ref, emu = ours(graph, x, 1e-3, "subtract", "next_tick")
    _, chip_rule = ours(graph, x, 1e-3, "subtract", "same_tick", spike_condition=">=")
    compare("sinabs conv IF", theirs, {"float reference": ref, "emulator": emu, "emulator same_tick >=": chip_rule})


def test_sinabs_fires_at_the_threshold_which_the_emulators_spike_condition_matches():
    """The same net with every threshold 1.0: sums of multiples of 1/8 hit it exactly, and
    sinabs fires on v >= v_th. The emulator's snntorch profile with ``spike_condition=">="``
    must match spike for spike; the float reference (snnTorch's v > v_th, no such option) and
    the profile with ">" differ, which shows the ties occur; their counts are reported.
    """
    graph = _conv_if_graph(7, "one")
    x = spikes_in(8, 4, 250, (2, 16, 16))
    theirs = run_sinabs(graph, x)
    ref, strict = ours(graph, x, 1e-3, "subtract", "next_tick")
    _, emu = ours(graph, x, 1e-3, "subtract", "next_tick", spike_condition=">=")
    diff = compare("sinabs conv IF (threshold 1)", theirs,
                   {"emulator >=": emu, "emulator >": strict, "float reference": ref}, expect_equal=["emulator >="])
    assert sum(diff["emulator >"].values()) > 0 and sum(diff["float reference"].values()) > 0
