"""validate.float_runs: the float reference's run of a set computed once, batched where that gives the
same bits, and reused from disk only under exactly the same recipe."""
import shutil

import nir
import numpy as np
import pytest

from emu.spikes import Recording
from netgen import two_layer_lif_graph
from validate import float_runs as fr
from validate.float_reference import FloatReference


class Counting:
    """A float reference that counts its runs (everything else is the real one's)."""

    def __init__(self, reference):
        self.reference, self.calls = reference, 0

    def __getattr__(self, name):
        return getattr(self.reference, name)

    def __call__(self, *args, **kw):
        self.calls += 1
        return self.reference(*args, **kw)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("S2EMU_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("S2EMU_NO_CACHE", raising=False)
    return tmp_path / "cache"


def _same(a: Recording, b: Recording) -> bool:
    return a.ticks == b.ticks and a.shapes == b.shapes and all(
        np.array_equal(x, y) for x, y in zip(a.neurons + a.tick_end, b.neurons + b.tick_end))


def test_a_run_is_computed_once_and_reused_only_under_the_same_recipe(cache):
    rng = np.random.default_rng(0)
    graph = two_layer_lif_graph(rng)
    ref = Counting(FloatReference(graph, dt=1e-3))
    x = {"input": rng.random((3, 40, 10)) < 0.3}
    first = fr.float_run(ref, x, 40)
    again = fr.float_run(ref, x, 40)
    assert ref.calls == 1 and _same(first, again) and len(list(cache.glob("*.npz"))) == 1
    # anything that decides the run makes another entry: the inputs, the ticks, a setting, the graph
    other = {"input": x["input"].copy()}
    other["input"][0, 0, 0] ^= True
    fr.float_run(ref, other, 40)
    fr.float_run(ref, x, 50)
    fr.float_run(Counting(FloatReference(graph, dt=1e-3, reset="zero")), x, 40)
    graph.nodes["lif2"].v_threshold = graph.nodes["lif2"].v_threshold * 1.0001
    fr.float_run(Counting(FloatReference(graph, dt=1e-3)), x, 40)
    assert ref.calls == 3 and len(list(cache.glob("*.npz"))) == 5
    # an entry that is damaged, or holds another recipe under this name, runs again and is replaced
    entry = next(p for p in cache.glob("*.npz") if fr._key(fr.recipe(ref, x, 40)) in p.name)
    entry.write_bytes(b"not an npz")
    assert _same(fr.float_run(ref, x, 40), first) and ref.calls == 4
    shutil.copy(next(p for p in cache.glob("*.npz") if p != entry), entry)
    assert _same(fr.float_run(ref, x, 40), first) and ref.calls == 5
    assert _same(fr.float_run(ref, x, 40), first) and ref.calls == 5


def test_no_cache_when_told(cache, monkeypatch):
    monkeypatch.setenv("S2EMU_NO_CACHE", "1")
    rng = np.random.default_rng(1)
    ref = Counting(FloatReference(two_layer_lif_graph(rng), dt=1e-3))
    x = {"input": rng.random((1, 20, 10)) < 0.3}
    fr.float_run(ref, x, 20)
    fr.float_run(ref, x, 20)
    assert ref.calls == 2 and not cache.exists()


def test_float_runs_batch_only_where_the_bits_do_not_depend_on_it(cache):
    """Dyadic weights: every sum exact, samples of one length share a batch, and each one's spikes
    and voltages equal its run alone; float64 weights: each sample runs alone."""
    rng = np.random.default_rng(2)
    graph = two_layer_lif_graph(rng)
    exact = {n: node for n, node in graph.nodes.items()}
    for name, node in exact.items():
        if isinstance(node, nir.Affine):
            node.weight = np.round(node.weight * 64) / 64
            node.bias = np.round(node.bias * 64) / 64
    samples = [{"input": rng.random((1, t, 10)) < 0.3} for t in (30, 30, 20, 30)]
    dyadic = Counting(FloatReference(graph, dt=1e-3))
    assert dyadic.batch_independent
    runs = fr.float_runs(dyadic, samples)
    assert dyadic.calls == 2  # one batch per length
    for one, run in zip(samples, runs):
        alone = dyadic.reference(one, record_v=False)
        assert run.batch == 1 and _same(run, alone)
    inexact = Counting(FloatReference(two_layer_lif_graph(np.random.default_rng(3)), dt=1e-3))
    assert not inexact.batch_independent
    fr.float_runs(inexact, samples)
    assert inexact.calls == len(samples)


def test_a_float_run_computed_in_the_background_counts_as_the_recording_itself(cache, monkeypatch):
    """attribute(reference=Future) (the float run made while the emulator runs) gives the same
    numbers as the finished recording, the reference run per batch, and on worker processes;
    a failed background run raises where it is waited for."""
    from emu import ConversionOptions, from_nir
    from validate.attribution import attribute

    rng = np.random.default_rng(4)
    graph = two_layer_lif_graph(rng)
    net = from_nir(graph, ConversionOptions(dt=1e-3, weight_scale="auto"))
    ref = FloatReference(graph, dt=1e-3)
    samples = [{"input": rng.random((1, 30 + 5 * (i % 2), 10)) < 0.3} for i in range(7)]
    done = Recording.stack(fr.float_runs(ref, samples))
    kw = dict(labels=[i % 3 for i in range(7)], chunk=3, progress=False)
    want = attribute(net, samples, reference=done, **kw).reference_agreement
    assert sum(a.spikes_a for a in want.values()) > 0
    assert attribute(net, samples, reference=fr.float_runs_in_background(ref, samples), **kw).reference_agreement == want
    assert attribute(net, samples, reference=fr.float_runs_in_background(ref, samples), workers=2,
                     **kw).reference_agreement == want

    class Broken(Counting):
        def __call__(self, *args, **kw):
            raise RuntimeError("no float run")

    monkeypatch.setenv("S2EMU_NO_CACHE", "1")  # not the entry made above
    with pytest.raises(RuntimeError, match="no float run"):
        attribute(net, samples, reference=fr.float_runs_in_background(Broken(ref), samples), **kw)
