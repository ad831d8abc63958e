"""The synapse lists and orders a network is built from: conv synapses against a loop over the
convolution's definition, sorting, and the topological order of populations."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from emu.network import (Population, Projection, _conv_synapses, _pairs_sorted, conv_output_shape, sort_pairs,
                         synapse_list, topological_order)


def conv_by_loop(weight, in_shape, stride, padding, out_shape):
    """(source, post, weight) of out[co, oy, ox] += w[co, ci, dy, dx] * in[ci, oy*s + dy - p, ox*s + dx - p]."""
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
                            if 0 <= y < h and 0 <= x < w:
                                found.append(((ci * h + y) * w + x, (co * oh + oy) * ow + ox, weight[co, ci, dy, dx]))
    found.sort()
    return [np.array([f[i] for f in found]) for i in range(3)]


@settings(max_examples=60, deadline=None)
@given(c_in=st.integers(1, 3), c_out=st.integers(1, 3), kh=st.integers(1, 5), kw=st.integers(1, 5),
       h=st.integers(1, 9), w=st.integers(1, 9), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       padding=st.tuples(st.integers(0, 2), st.integers(0, 2)), seed=st.integers(0, 2**16))
def test_conv_synapses_are_the_convolution_sorted_by_source_then_post(c_in, c_out, kh, kw, h, w, stride, padding,
                                                                         seed):
    weight = np.random.default_rng(seed).integers(-127, 128, (c_out, c_in, kh, kw)).astype(float)
    out = conv_output_shape((c_in, h, w), weight.shape, stride, padding)
    if min(out) < 1:
        return
    pre, post = Population("in", (c_in, h, w), "input"), Population("out", out, "lif")
    got = synapse_list(Projection("in", "out", weight, kind="conv2d", stride=stride, padding=padding), pre, post)
    want = conv_by_loop(weight, (c_in, h, w), stride, padding, out)
    for g, e in zip(got, want):
        np.testing.assert_array_equal(g, e.reshape(g.shape) if e.size else e.astype(g.dtype))
    # built in order: the synapse list needs no sort (seconds for a large conv)
    src, post_idx, _ = _conv_synapses((c_in, h, w), weight, stride, padding, out)
    assert _pairs_sorted(src, post_idx)


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
