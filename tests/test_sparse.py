"""Sparse projections (a connection list, as py-spinnaker2 takes one): the same network as
the dense matrix holding the same weights, errors that name the field, memory and chip
budget by the synapses listed."""
import numpy as np
import pytest

from emu.chip.budget import fit_table
from emu.engine import Emulator
from emu.network import Network, NetworkError, Population, Projection
from emu.profile import SemanticsProfile
from emu.reference import reference_run

RNG = np.random.default_rng(7)


def pair(sparse: bool, fan_in: int = 5, pool: int = 1, seed: int = 0):
    """in (2, 8, 8) -[pool]-> a 30 -> b 12, every post neuron reading ``fan_in`` random
    sources; as connection lists or as dense matrices zero elsewhere."""
    rng = np.random.default_rng(seed)
    net = Network(dt=1e-3)
    net.add(Population("in", (2, 8, 8), "input"))
    net.add(Population("a", (30,), "lif", alpha=0.9, threshold=60.0))
    net.add(Population("b", (12,), "lif", alpha=0.8, threshold=40.0))
    for pre, post, n_src in (("in", "a", 128 // pool ** 2), ("a", "b", 30)):
        n_post = net.populations[post].size
        src = np.argsort(rng.random((n_post, n_src)), axis=1)[:, :fan_in]
        dst = np.repeat(np.arange(n_post), fan_in)
        w = rng.integers(-127, 128, size=dst.size).astype(float)
        kw = dict(pool=pool if pre == "in" else 1)
        if sparse:
            listed = np.random.default_rng(seed + 1).permutation(dst.size)  # any order of the list
            net.add(Projection(pre, post, w[listed], kind="sparse",
                               connections=np.stack([src.ravel(), dst], axis=1)[listed], **kw))
        else:
            dense = np.zeros((n_post, n_src))
            dense[dst, src.ravel()] = w
            net.add(Projection(pre, post, dense, **kw))
    return net.validate()


@pytest.mark.parametrize("pool", [1, 2])
@pytest.mark.parametrize("arithmetic", ["chip", "float64"])
def test_sparse_equals_the_dense_matrix_with_the_same_weights(pool, arithmetic):
    profile = SemanticsProfile(arithmetic=arithmetic)
    x = RNG.random((3, 40, 128)) < 0.3
    runs = [Emulator(pair(sparse, pool=pool), profile)(x, record_v=True) for sparse in (False, True)]
    for b in range(3):
        for name in ("a", "b"):
            np.testing.assert_array_equal(runs[0].raster(name, b), runs[1].raster(name, b))
            np.testing.assert_array_equal(runs[0].v[name][b], runs[1].v[name][b])
    assert runs[1].raster("b").sum() > 0  # the comparison is not between two silent runs
    # the numpy reference reads the list directly (np.add.at), not through synapse_list
    spikes, volts, _ = reference_run(pair(True, pool=pool), {"in": x[0]}, 40, profile)
    np.testing.assert_array_equal(spikes["b"], runs[0].raster("b", 0))
    np.testing.assert_array_equal(volts["a"], runs[0].v["a"][0])


def test_memory_follows_the_synapses_listed():
    def arrays_bytes(n):
        net = Network(dt=1e-3)
        net.add(Population("in", (n,), "input"))
        net.add(Population("out", (n,), "lif", alpha=0.9, threshold=50.0))
        pre = RNG.integers(0, n, size=4 * n)
        post = np.arange(4 * n) % n
        keep = np.unique(pre * n + post, return_index=True)[1]
        net.add(Projection("in", "out", np.ones(len(keep)), kind="sparse",
                           connections=np.stack([pre[keep], post[keep]], axis=1)))
        a = Emulator(net).compiled.arrays
        return sum(x.nbytes for x in a if isinstance(x, np.ndarray))
    # 4 synapses per neuron: 10x the neurons is about 10x the bytes (a dense matrix: 100x)
    assert arrays_bytes(20_000) < 12 * arrays_bytes(2_000)


def test_chip_budget_counts_listed_synapses_as_the_dense_matrix():
    rows = [fit_table(pair(sparse, pool=2), 100)["rows"] for sparse in (False, True)]
    assert [r.get("synapse_bytes") for r in rows[0]] == [r.get("synapse_bytes") for r in rows[1]]
    assert rows[1][1]["synapse_bytes"] > 0


def _sparse(connections, weight, pre_size=4, post_size=3, kind="sparse"):
    net = Network(dt=1e-3)
    net.add(Population("in", (pre_size,), "input"))
    net.add(Population("out", (post_size,), "lif", alpha=0.9, threshold=1.0))
    net.add(Projection("in", "out", weight, kind=kind, connections=connections, name="syn"))
    return net.validate()


@pytest.mark.parametrize("connections, weight, kind, words", [
    (None, np.ones(2), "sparse", "connections missing"),
    ([[0, 1]], np.ones((3, 4)), "dense", "kind 'sparse' only"),
    ([[0, 1], [1, 2]], np.ones(3), "sparse", "shape (2, 2) for weight shape (3,)"),
    ([0, 1], np.ones(2), "sparse", "connections (n, 2) and weight (n,)"),
    ([[0, -1]], np.ones(1), "sparse", "integers >= 0"),
    ([[0.5, 1]], np.ones(1), "sparse", "integers >= 0"),
    ([[4, 1]], np.ones(1), "sparse", "connection 0 has pre index 4, but in has 4 neurons"),
    ([[0, 1], [2, 3]], np.ones(2), "sparse", "connection 1 has post index 3, but out has 3 neurons"),
    ([[0, 1], [2, 2], [0, 1]], np.ones(3), "sparse", "(pre 0, post 1) is listed more than once"),
])
def test_bad_connection_lists_name_the_projection_and_field(connections, weight, kind, words):
    with pytest.raises(NetworkError) as err:
        _sparse(connections, weight, kind=kind)
    msg = str(err.value)
    assert "projection syn" in msg and words in msg and "\n" not in msg


def test_an_empty_connection_list_is_a_silent_projection():
    net = _sparse(np.zeros((0, 2), int), np.zeros(0))
    res = Emulator(net)(np.ones((1, 5, 4), bool))
    assert res.raster("out").sum() == 0
