"""How synapse runs become weight rows (emu.engine.rows): a conv's footprints built per group of
neurons holding the same kernel rows equal those built per neuron from the flat weights, bit for
bit, and the chunked passes over long lists equal one pass."""
from unittest import mock

import numpy as np
from hypothesis import given, settings, strategies as st

import emu.engine.layout as layout
import emu.engine.rows as rows
from emu.engine.layout import input_sums
from emu.network import Population, Projection, conv_output_shape
from emu.numerics import Numerics
from emu.profile import SemanticsProfile
from emu.synapses import SynapseRuns, synapse_runs

conv_geometry = dict(c_in=st.integers(1, 3), c_out=st.integers(1, 4), kh=st.integers(1, 4), kw=st.integers(1, 4),
                     h=st.integers(1, 9), w=st.integers(1, 9), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
                     padding=st.tuples(st.integers(0, 2), st.integers(0, 2)), pool=st.integers(1, 2),
                     pre_cl=st.booleans(), seed=st.integers(0, 2**16))


def conv_runs(c_in, c_out, kh, kw, h, w, stride, padding, pool, pre_cl, seed, values=(-1.0, -0.0, 0.0, 1.0, 2.5)):
    """A conv's runs into a channels-last post (None where the geometry has no output). Few
    distinct weights, -0.0 among them: footprints of different kernel rows can be equal."""
    if h < pool or w < pool:
        return None
    weight = np.random.default_rng(seed).choice(values, (c_out, c_in, kh, kw))
    out = conv_output_shape((c_in, h // pool, w // pool), weight.shape, stride, padding)
    if min(out) < 1:
        return None
    pre, post = Population("in", (c_in, h, w), "input"), Population("out", out, "lif")
    pr = Projection("in", "out", weight, kind="conv2d", stride=stride, padding=padding, pool=pool)
    return synapse_runs(pr, pre, post, channels_last=(pre_cl, True)), pre.size, post.size


def flat_weights(runs: SynapseRuns) -> SynapseRuns:
    """The same runs with every run's weights stored in a row of its own."""
    return SynapseRuns(runs.pre, runs.post, runs.weights().copy())


def both_footprints(runs, n_pre, n_post, unit=8, sorted_groups=False):
    """footprints() of the runs as they are (grouped by kernel rows) and of their flat weights
    (a block per neuron, a few rows at a time); ``sorted_groups``: the groups come in
    np.unique's order, as after a hash collision of the groups alone."""
    first = rows.row_starts(runs.pre, runs.post, runs.run)
    lens = np.diff(np.append(first * runs.run, len(runs.pre) * runs.run))
    geometry = rows.strided_rows(n_pre, runs.pre[first], runs.post[first], lens, unit, 0)
    if geometry is None:
        return None
    _, n_rows, width, _, slot = geometry
    calls, unique_rows = [], rows._unique_rows

    def groups_sorted(x):
        calls.append(len(calls))
        return np.unique(x, axis=0, return_inverse=True) if len(calls) == 1 else unique_rows(x)

    with mock.patch.object(rows, "_unique_rows", groups_sorted if sorted_groups else unique_rows):
        grouped = rows.footprints(runs, first, slot, n_pre, n_rows, width)
    with mock.patch.object(rows, "CHUNK", 3 * width):
        per_neuron = rows.footprints(flat_weights(runs), first, slot, n_pre, n_rows, width)
    return grouped, per_neuron


def assert_same(got, want):
    for g, e in zip(got, want):
        assert g.dtype == e.dtype and g.shape == e.shape
        assert np.array_equal(g.view(np.uint8), e.view(np.uint8))  # bits: -0.0 is not 0.0


@settings(max_examples=150, deadline=None)
@given(**conv_geometry)
def test_footprints_grouped_by_kernel_rows_equal_footprints_per_neuron(**geometry):
    made = conv_runs(**geometry)
    found = made and both_footprints(*made)
    if found:
        grouped, per_neuron = found
        assert_same(grouped, per_neuron)


@settings(max_examples=40, deadline=None)
@given(**conv_geometry)
def test_footprints_equal_when_every_row_hash_collides(**geometry):
    # every hash equal: np.unique's sorted order, which the groups are put back in first-occurrence order from
    made = conv_runs(**geometry)
    with mock.patch.object(rows, "row_hash_multipliers", lambda n: np.zeros(n, np.int64)):
        found = made and both_footprints(*made)
    if found:
        grouped, per_neuron = found
        assert_same(grouped, per_neuron)


@settings(max_examples=40, deadline=None)
@given(**conv_geometry)
def test_footprints_equal_when_the_groups_come_sorted(**geometry):
    # the groups' hashes collide (np.unique's sorted order), the footprints' do not: the groups
    # are put back in the order they first occur, so the pool holds footprints in that order
    made = conv_runs(**geometry)
    found = made and both_footprints(*made, sorted_groups=True)
    if found:
        grouped, per_neuron = found
        assert_same(grouped, per_neuron)


def test_weights_no_synapse_uses_do_not_count_against_integer_sums():
    # a 3x3 kernel with padding 1 on a 1x1 input reaches only its centre: the 0.5 elsewhere is never added
    weight = np.full((2, 1, 3, 3), 0.5)
    weight[:, :, 1, 1] = [[3.0], [-4.0]]
    pr = Projection("in", "out", weight, kind="conv2d", padding=(1, 1))
    runs = synapse_runs(pr, Population("in", (1, 1, 1), "input"), Population("out", (2, 1, 1), "lif"), (False, True))
    integers, sums = input_sums(runs, Numerics.of(SemanticsProfile.chip()), 2)
    assert integers and list(sums) == [3.0, 4.0]


@settings(max_examples=60, deadline=None)
@given(**conv_geometry, profile=st.sampled_from(["chip", "float64", "fixed", "snntorch"]), chunk=st.integers(1, 40))
def test_input_sums_of_kernel_rows_equal_those_of_the_flat_list(profile, chunk, **geometry):
    made = conv_runs(**geometry, values=(-3.0, 0.0, 0.5, 7.0))
    if made is None:
        return
    runs, _, n_post = made
    num = Numerics.of(getattr(SemanticsProfile, profile)())
    pre, post, w = runs.flat()
    added = num.weight_units(w).astype(np.float64)
    want = (bool(np.all(np.trunc(added) == added)), np.bincount(post, weights=np.abs(added), minlength=n_post))
    with mock.patch.object(layout, "CHUNK", chunk):  # a few runs at a time
        found = input_sums(runs, num, n_post), input_sums(flat_weights(runs), num, n_post)
    for got in found:
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 60), run=st.integers(1, 3), chunk=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_row_starts_a_chunk_at_a_time_equal_one_pass(size, run, chunk, seed):
    rng = np.random.default_rng(seed)
    pre = np.sort(rng.integers(0, 5, size))
    post = np.cumsum(rng.integers(0, 3, size) * run) + run * np.arange(size)
    new = np.ones(size, bool)
    new[1:] = (pre[1:] != pre[:-1]) | (post[1:] != post[:-1] + run)
    with mock.patch.object(rows, "CHUNK", chunk):
        np.testing.assert_array_equal(rows.row_starts(pre, post, run), np.flatnonzero(new))
