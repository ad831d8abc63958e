"""The synapse lists and orders a network is built from: conv synapses against a loop over the
convolution's definition (in NIR and channels-last orders), sorting, and the topological order of populations."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from emu.network import Population, Projection, conv_output_shape, topological_order
from emu.synapses import _pairs_sorted, channels_last_perm, sort_pairs, synapse_list


def conv_by_loop(weight, in_shape, stride, padding, out_shape, pool=1):
    """(pre, post, weight) of out[co, oy, ox] += w[co, ci, dy, dx] * src[ci, oy*s + dy - p, ox*s + dx - p], where
    src is in summed over pool x pool windows (every pre neuron of a window gets its source's synapses),
    NIR indices, sorted."""
    c_out, c_in, kh, kw = weight.shape
    _, h, w = in_shape
    _, oh, ow = out_shape
    found = []
    for co in range(c_out):
        for oy in range(oh):
            for ox in range(ow):
                for ci in range(c_in):
                    for dy in range(kh):
                        for dx in range(kw):
                            y, x = oy * stride[0] + dy - padding[0], ox * stride[1] + dx - padding[1]
                            if not (0 <= y < h // pool and 0 <= x < w // pool):
                                continue
                            for py in range(pool):
                                for px in range(pool):
                                    pre = (ci * h + y * pool + py) * w + x * pool + px
                                    found.append((pre, (co * oh + oy) * ow + ox, weight[co, ci, dy, dx]))
    found.sort()
    return [np.array([f[i] for f in found], dtype) for i, dtype in enumerate((np.int64, np.int64, np.float64))]


def in_order(pre, post, weight, pre_shape, post_shape, channels_last):
    """A NIR synapse list in the orders ``channels_last`` picks, sorted again (the engine's
    generate-then-sort before conv synapses were generated in its order)."""
    if channels_last[0]:
        pre = channels_last_perm(pre_shape)[pre]
    if channels_last[1]:
        post = channels_last_perm(post_shape)[post]
    order = np.lexsort((post, pre))
    return pre[order], post[order], weight[order]


@settings(max_examples=150, deadline=None)
@given(c_in=st.integers(1, 3), c_out=st.integers(1, 4), kh=st.integers(1, 5), kw=st.integers(1, 5),
       h=st.integers(1, 10), w=st.integers(1, 10), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       padding=st.tuples(st.integers(0, 2), st.integers(0, 2)), pool=st.integers(1, 3),
       channels_last=st.tuples(st.booleans(), st.booleans()), seed=st.integers(0, 2**16))
def test_conv_synapses_are_the_convolution_sorted_in_either_order(c_in, c_out, kh, kw, h, w, stride, padding, pool,
                                                                   channels_last, seed):
    # generated in the engine's order (channels-last pre and/or post), pooling folded in:
    # the same list as the convolution's definition, mapped to that order and sorted
    weight = np.random.default_rng(seed).integers(-127, 128, (c_out, c_in, kh, kw)).astype(float)
    if h < pool or w < pool:
        return
    out = conv_output_shape((c_in, h // pool, w // pool), weight.shape, stride, padding)
    if min(out) < 1:
        return
    pre, post = Population("in", (c_in, h, w), "input"), Population("out", out, "lif")
    pr = Projection("in", "out", weight, kind="conv2d", stride=stride, padding=padding, pool=pool)
    got = synapse_list(pr, pre, post, channels_last=channels_last)
    want = in_order(*conv_by_loop(weight, (c_in, h, w), stride, padding, out, pool), pre.shape, out, channels_last)
    for g, e, dtype in zip(got, want, (np.int64, np.int64, np.float64)):
        assert g.dtype == dtype
        np.testing.assert_array_equal(g, e)


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["dense", "one_to_one", "sparse"]), c=st.integers(1, 3), h=st.integers(2, 5),
       w=st.integers(2, 5), pool=st.integers(1, 2), channels_last=st.tuples(st.booleans(), st.booleans()),
       seed=st.integers(0, 2**16))
def test_other_synapse_lists_in_channels_last_order_are_sorted_again(kind, c, h, w, pool, channels_last, seed):
    rng = np.random.default_rng(seed)
    shape = (c, h, w)
    n_src = c * (h // pool) * (w // pool)
    pool = pool if kind != "one_to_one" else 1
    post_shape = shape if kind == "one_to_one" else (2, 3, 2)
    n_post = int(np.prod(post_shape))
    weight, connections = rng.integers(-9, 10, (n_post, n_src)).astype(float), None
    if kind == "one_to_one":
        weight = weight[:, 0]
    if kind == "sparse":
        keep = rng.random(n_post * n_src) < 0.3
        connections = np.argwhere(keep.reshape(n_src, n_post))[rng.permutation(int(keep.sum()))]
        weight = rng.integers(-9, 10, len(connections)).astype(float)
    pre, post = Population("a", shape, "input"), Population("b", post_shape, "lif")
    pr = Projection("a", "b", weight, kind=kind, pool=pool, connections=connections)
    want = in_order(*synapse_list(pr, pre, post), shape, post_shape, channels_last)
    for g, e in zip(synapse_list(pr, pre, post, channels_last=channels_last), want):
        np.testing.assert_array_equal(g, e)


@settings(max_examples=80, deadline=None)
@given(high=st.sampled_from([9, 2**29, 2**40]), size=st.integers(2, 40), seed=st.integers(0, 2**16))
def test_sort_pairs_is_a_stable_lexsort(high, size, seed):
    # small pairs sort packed with their positions; 2**29 leaves no room for positions
    # (argsort of one key); 2**40 overflows one key (lexsort). Few distinct values: ties
    major, minor = np.random.default_rng(seed).integers(0, high + 1, (2, size))
    values = np.arange(size) * 1.5
    order = np.lexsort((minor, major))
    for got, want in zip(sort_pairs(major, minor, values), (major[order], minor[order], values[order])):
        np.testing.assert_array_equal(got, want)
    assert _pairs_sorted(major, minor) == np.array_equal(order, np.arange(size))


def recursive_topological_order(nodes, edges, first=()):
    """The order as first written: a recursive depth-first search scanning every edge per node."""
    visited, out = set(), []

    def visit(n):
        visited.add(n)
        for a, b in edges:
            if a == n and b not in visited:
                visit(b)
        out.append(n)

    for n in sorted(nodes, key=lambda n: n not in first):
        if n not in visited:
            visit(n)
    return out[::-1]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 12), data=st.data())
def test_topological_order_is_the_recursive_depth_first_order(n, data):
    nodes = [f"p{i}" for i in range(n)]
    edges = data.draw(st.lists(st.tuples(st.sampled_from(nodes), st.sampled_from(nodes)), max_size=30))
    first = data.draw(st.lists(st.sampled_from(nodes), max_size=3))
    assert topological_order(nodes, edges, first) == recursive_topological_order(nodes, edges, first)


def test_a_chain_of_thousands_of_populations_is_ordered():
    nodes = [f"p{i}" for i in range(5000)]
    edges = list(zip(nodes[1:], nodes[:-1]))[::-1]  # p4999 -> ... -> p0, listed backwards
    assert topological_order(nodes, edges, first=["p4999"]) == nodes[::-1]


@pytest.mark.parametrize("kind", ["dense", "one_to_one", "sparse"])
def test_synapse_lists_share_no_memory_with_the_projection(kind):
    pre, post = Population("a", (1,), "input"), Population("b", (1,), "lif")
    weight = np.ones(1) if kind != "dense" else np.ones((1, 1))
    pr = Projection("a", "b", weight, kind=kind, connections=[[0, 0]] if kind == "sparse" else None)
    for arr in synapse_list(pr, pre, post):
        assert not np.shares_memory(arr, pr.weight)
        assert pr.connections is None or not np.shares_memory(arr, pr.connections)
    src, dst, _ = synapse_list(pr, pre, post)
    assert not np.shares_memory(src, dst)
