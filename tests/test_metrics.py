"""validate.metrics against definitions written out independently (loops, closed forms, hand cases)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from validate import metrics as m

rasters = st.integers(1, 30).flatmap(
    lambda t: st.integers(1, 4).flatmap(lambda n: st.tuples(arrays(bool, (t, n)), arrays(bool, (t, n))))
)


def _coincidences_loop(a, b, lag):
    """Lag L pairs A at tick t with B at tick t - L."""
    t_len, n = a.shape
    return sum(
        1 for t in range(t_len) for j in range(n) if 0 <= t - lag < t_len and a[t, j] and b[t - lag, j]
    )


def _max_matching(ta, tb, window):
    """Maximum number of disjoint pairs |ta_i - tb_j| <= window (augmenting paths, Kuhn)."""
    owner = [-1] * len(tb)

    def augment(i, seen):
        for j, t in enumerate(tb):
            if abs(ta[i] - t) <= window and j not in seen:
                seen.add(j)
                if owner[j] < 0 or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return sum(augment(i, set()) for i in range(len(ta)))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shift=st.integers(-5, 5), t_len=st.integers(40, 120), n=st.integers(3, 8))
def test_lag_search_recovers_a_known_shift(seed, shift, t_len, n):
    rng = np.random.default_rng(seed)
    base = rng.random((t_len + 10, n)) < 0.3
    b = base[5 : 5 + t_len]
    a = base[5 - shift : 5 - shift + t_len]  # a[t] = b[t - shift]: A lags B by `shift`
    lags, counts = m.coincidences_by_lag(a, b, max_lag=5)
    totals = counts.sum(axis=1)
    assert totals[lags == shift][0] == a[max(0, shift) : t_len + min(0, shift)].sum()  # every spike pairs
    assert m.best_lag(lags, totals) == shift


@settings(max_examples=80, deadline=None)
@given(pair=rasters, max_lag=st.integers(0, 6))
def test_coincidences_by_lag_matches_the_definition(pair, max_lag):
    a, b = pair
    lags, counts = m.coincidences_by_lag(a, b, max_lag)
    assert lags.tolist() == list(range(-max_lag, max_lag + 1))
    assert counts.shape == (2 * max_lag + 1, a.shape[1])
    assert [int(c) for c in counts.sum(axis=1)] == [_coincidences_loop(a, b, lag) for lag in lags]


def test_best_lag_ties_go_to_small_then_negative_lags():
    lags = np.arange(-2, 3)
    assert m.best_lag(lags, [5, 3, 5, 3, 5]) == 0
    assert m.best_lag(lags, [5, 0, 0, 0, 5]) == -2
    assert m.best_lag(lags, [0, 5, 0, 5, 0]) == -1
    assert m.best_lag(lags, [0, 0, 0, 0, 0]) == 0
    assert m.best_lag(lags, [0, 1, 0, 2, 0]) == 1


@settings(max_examples=80, deadline=None)
@given(pair=rasters, window=st.integers(0, 4), lag=st.integers(-3, 3))
def test_windowed_coincidences_are_a_maximum_matching(pair, window, lag):
    a, b = pair
    exact = m.coincidences(a, b, lag)
    windowed = m.windowed_coincidences(a, b, window, lag)
    assert np.all(windowed >= exact)
    a_part, b_part, _ = m.aligned(a, b, lag)
    assert np.all(windowed <= np.minimum(a_part.sum(0), b_part.sum(0)))
    for j in range(a.shape[1]):
        assert windowed[j] == _max_matching(np.flatnonzero(a_part[:, j]), np.flatnonzero(b_part[:, j]), window)
    np.testing.assert_array_equal(m.windowed_coincidences(a, b, 0, lag), exact)


def test_windowed_matches_each_spike_once():
    a = np.zeros((10, 1), bool)
    b = np.zeros((10, 1), bool)
    a[[4, 5], 0] = True
    b[5, 0] = True
    assert m.windowed_coincidences(a, b, 2).tolist() == [1]
    assert m.windowed_coincidences(b, a, 2).tolist() == [1]


def test_van_rossum_identical_single_and_moved_spikes():
    t_len, tau = 60, 4.0
    a = np.zeros((t_len, 1), bool)
    a[20, 0] = True
    assert m.van_rossum(a, a, tau).tolist() == [0.0]
    assert m.van_rossum(a, np.zeros_like(a), tau)[0] == pytest.approx(1.0)
    previous = 0.0
    for d in (1, 2, 4, 8, 16):
        b = np.zeros_like(a)
        b[20 + d, 0] = True
        dist = m.van_rossum(a, b, tau)[0]
        assert dist == pytest.approx(np.sqrt(2 - 2 * np.exp(-d / tau)), rel=1e-12)
        assert dist > previous
        previous = dist


@settings(max_examples=60, deadline=None)
@given(pair=rasters, tau=st.floats(0.3, 30))
def test_van_rossum_matches_the_pairwise_closed_form(pair, tau):
    a, b = pair

    def k(x, y):
        return np.exp(-np.abs(x[:, None] - y[None, :]) / tau).sum()

    for j in range(a.shape[1]):
        ta, tb = np.flatnonzero(a[:, j]).astype(float), np.flatnonzero(b[:, j]).astype(float)
        expected = np.sqrt(max(k(ta, ta) + k(tb, tb) - 2 * k(ta, tb), 0.0))
        assert m.van_rossum(a, b, tau)[j] == pytest.approx(expected, abs=1e-9)


def _trains(t_len, *spike_ticks):
    r = np.zeros((t_len, len(spike_ticks)), bool)
    for j, ticks in enumerate(spike_ticks):
        r[list(ticks), j] = True
    return r


def test_victor_purpura_hand_computed():
    a = _trains(30, [2, 5, 9], [0, 10], [], [4])
    b = _trains(30, [3, 9], [1, 20], [7], [4])
    # neuron 0, q=1: shift 2->3 (1) + delete 5 (1) + keep 9 (0) = 2
    # neuron 1, q=1: shift 0->1 (1) + delete 10, insert 20 (2) = 3
    # neuron 2: insert one spike = 1; neuron 3: identical = 0
    np.testing.assert_allclose(m.victor_purpura(a, b, 1.0), [2.0, 3.0, 1.0, 0.0])
    # q = 0.25: neuron 0: 0.25 + 1 = 1.25 (moving 5 -> 3 instead: 0.5 + 1);
    # neuron 1: 0.25 + 2 = 2.25 (moving 10 -> 20 would cost 2.5 > delete + insert)
    np.testing.assert_allclose(m.victor_purpura(a, b, 0.25), [1.25, 2.25, 1.0, 0.0])
    np.testing.assert_allclose(m.victor_purpura(a, b, 0.0), [1.0, 0.0, 1.0, 0.0])  # |n_a - n_b|
    np.testing.assert_allclose(m.victor_purpura(a, b, 100.0), [3.0, 4.0, 1.0, 0.0])  # non-coincident spikes


@settings(max_examples=40, deadline=None)
@given(pair=rasters, q=st.floats(0, 3))
def test_victor_purpura_is_symmetric_and_bounded(pair, q):
    a, b = pair
    d = m.victor_purpura(a, b, q)
    np.testing.assert_allclose(d, m.victor_purpura(b, a, q))
    assert np.all(d <= a.sum(0) + b.sum(0) + 1e-12)
    assert np.all(d >= np.abs(a.sum(0) - b.sum(0)) - 1e-12)


def test_first_divergence_per_neuron_and_overall():
    a = _trains(10, [1, 5], [3], [], [2])
    b = _trains(10, [1, 6], [3], [], [3])
    assert m.first_divergence(a, b).tolist() == [5, -1, -1, 2]
    assert m.first_divergence_overall(a, b) == 2
    assert m.first_divergence_overall(a, a) == -1
    # at lag 1, A's tick t is compared with B's tick t - 1: neuron 3 agrees, neuron 0 differs at A's tick 2
    assert m.first_divergence(a, b, 1).tolist() == [1, 3, -1, 2]
    assert m.first_divergence(_trains(10, [4]), _trains(10, [3]), 1).tolist() == [-1]


def test_aligned_handles_lags_beyond_the_recording():
    a = np.ones((3, 2), bool)
    for lag in (-5, -3, 3, 7):
        a_part, b_part, _ = m.aligned(a, a, lag)
        assert a_part.shape == b_part.shape == (0, 2)
    assert m.coincidences(a, a, 4).tolist() == [0, 0]


def test_per_neuron_table_rows():
    a = _trains(10, [1, 5], [])
    b = _trains(10, [2, 6], [])  # B is A one tick later: A leads, lag -1
    rows = m.per_neuron_table(a, b, lag=-1, window=1, tau=2.0, q=1.0)
    assert rows == [
        {
            "neuron": 0,
            "count_a": 2,
            "count_b": 2,
            "coinc_lag0": 0,
            "coinc_at_lag": 2,
            "coinc_window_at_lag": 2,
            "van_rossum_at_lag": 0.0,
            "victor_purpura_at_lag": 0.0,
            "first_divergence_lag0": 1,
            "first_divergence_at_lag": None,
        },
        {
            "neuron": 1,
            "count_a": 0,
            "count_b": 0,
            "coinc_lag0": 0,
            "coinc_at_lag": 0,
            "coinc_window_at_lag": 0,
            "van_rossum_at_lag": 0.0,
            "victor_purpura_at_lag": 0.0,
            "first_divergence_lag0": None,
            "first_divergence_at_lag": None,
        },
    ]
    wrong_way = m.per_neuron_table(a, b, lag=1, window=1, tau=2.0, q=1.0)[0]
    # at lag +1 the trains are 2 ticks apart in each pair: no coincidence even within +-1
    assert wrong_way["coinc_at_lag"] == 0 and wrong_way["coinc_window_at_lag"] == 0
    assert wrong_way["victor_purpura_at_lag"] == 4.0
    assert wrong_way["first_divergence_at_lag"] == 1


def test_class_agreement():
    out = m.class_agreement(np.array([0, 1, 2, 2, 1]), np.array([0, 2, 2, 2, 1]))
    assert out == {
        "n": 5,
        "agree": 4,
        "fraction": 0.8,
        "classes": [0, 1, 2],
        "confusion": [[1, 0, 0], [0, 1, 1], [0, 0, 2]],
    }
    with pytest.raises(ValueError, match="one length"):
        m.class_agreement(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="integers"):
        m.class_agreement(np.array([0.5]), np.array([1.0]))


def test_bad_parameters():
    a = np.zeros((4, 2), bool)
    with pytest.raises(ValueError):
        m.van_rossum(a, a, 0)
    with pytest.raises(ValueError):
        m.victor_purpura(a, a, -1)
    with pytest.raises(ValueError):
        m.windowed_coincidences(a, a, -1)
    with pytest.raises(ValueError, match="one shape"):
        m.coincidences(a, np.zeros((4, 3), bool))


def test_predicted_classes_is_the_argmax_of_counts_with_ties_to_the_lowest_index():
    spikes = np.zeros((3, 5, 4), bool)
    spikes[0, :3, 2] = True  # class 2
    spikes[1, :2, 1] = spikes[1, 2:4, 3] = True  # a tie of 1 and 3: 1
    assert m.predicted_classes(spikes).tolist() == [2, 1, 0]  # silence: 0
    assert m.predicted_classes(spikes.swapaxes(0, 1), tick_axis=0).tolist() == [2, 1, 0]


# the headline measure: spike agreement -----------------------------------------------------
@settings(max_examples=200)
@given(rasters, st.data())
def test_losing_spikes_never_improves_the_headline(pair, data):
    """Removing spikes that the other side also has (lost spikes) never raises F1, recall or
    precision; removing any spikes of A never raises its recall; a side made silent scores F1 0,
    the worst, whenever the other side spikes."""
    a, b = pair
    before = m.agreement(a, b)
    shared = np.argwhere(a & b)
    if len(shared):
        keep = data.draw(arrays(bool, (len(shared),)))
        lost = a.copy()
        lost[tuple(shared[~keep].T)] = False
        after = m.agreement(lost, b)
        assert after.f1 <= before.f1 and after.recall <= before.recall
        assert after.precision is None or after.precision <= before.precision
        if (~keep).any():
            assert after.f1 < before.f1
        assert m.agreement(b, lost).f1 <= m.agreement(b, a).f1  # the same from the other side
    fewer = a & data.draw(arrays(bool, a.shape))
    assert (m.agreement(fewer, b).recall or 0) <= (before.recall or 0)
    silent = m.agreement(np.zeros_like(a), b)
    if b.any():
        assert silent.f1 == 0 == silent.recall and silent.precision is None and silent.f1 <= before.f1
    # the closed forms behind the columns
    assert before.mismatching_cells == int((a != b).sum())
    assert before.f1 == pytest.approx(1 - before.mismatching_cells / max(1, a.sum() + b.sum()))


def test_silence_cannot_fool_the_headline():
    """The case of the issue: a float run firing 800 spikes in 100,000 cells; an int8 chip firing
    1,100, half of them the float run's; a silent chip. By mismatching cells the silent chip is
    better (800 < 900), by F1 and recall it is the worst there is."""
    cells = 100_000
    working = m.SpikeAgreement(1_100, 800, 500, cells)
    silent = m.SpikeAgreement(0, 800, 0, cells)
    assert silent.mismatch_rate < working.mismatch_rate  # what used to lead the reports
    assert silent.f1 == 0 < working.f1 and silent.recall == 0 < working.recall
    assert silent.describe("the chip", "the float run") == \
        "spike F1 0: the chip is silent where the float run fires 800 spikes"
    assert (working + silent) == m.SpikeAgreement(1_100, 1_600, 500, 2 * cells) == m.pooled([working, silent])
    assert m.SpikeAgreement.from_dict(working.to_dict()) == working


@settings(max_examples=100)
@given(rasters, st.integers(0, 3), st.integers(0, 5))
def test_agreement_of_spike_keys_equals_the_rasters(pair, shift, cut):
    """The sparse way (sorted cell keys of :meth:`Recording.spike_keys`) counts what the rasters count."""
    from emu.spikes import Recording

    a, b = pair
    t = a.shape[0]
    ra, rb = Recording.from_rasters({"p": a}), Recording.from_rasters({"p": b})
    length = max(0, min(t - shift, t - cut))
    keys = m.agreement_of_keys(ra.spike_keys("p", shift, length), rb.spike_keys("p", 0, length), length * a.shape[1])
    assert keys == m.agreement(a[shift:shift + length], b[:length])


def test_output_margins_and_classes_from_counts():
    counts = np.array([[3, 5, 1], [2, 2, 0], [0, 0, 0], [7, 1, 6]])
    assert m.classes_from_counts(counts).tolist() == [1, 0, 0, 0]
    assert m.output_margins(counts, [1, 0, 2, 2]).tolist() == [2, 0, 0, -1]
    spikes = np.zeros((4, 9, 3), bool)
    for i, row in enumerate(counts):
        for j, c in enumerate(row):
            spikes[i, :c, j] = True
    assert m.predicted_classes(spikes).tolist() == m.classes_from_counts(counts).tolist()


def _vp_matrix(ta, tb, q):
    """The Victor-Purpura recursion over the full (n_a + 1) x (n_b + 1) matrix."""
    g = np.zeros((len(ta) + 1, len(tb) + 1))
    g[:, 0], g[0, :] = np.arange(len(ta) + 1), np.arange(len(tb) + 1)
    for i in range(1, len(ta) + 1):
        for j in range(1, len(tb) + 1):
            g[i, j] = min(g[i - 1, j] + 1, g[i, j - 1] + 1, g[i - 1, j - 1] + q * abs(ta[i - 1] - tb[j - 1]))
    return g[-1, -1]


@settings(max_examples=100)
@given(rasters, st.floats(0, 3))
def test_victor_purpura_equals_the_full_recursion(pair, q):
    a, b = pair
    want = [_vp_matrix(np.flatnonzero(a[:, n]), np.flatnonzero(b[:, n]), q) for n in range(a.shape[1])]
    np.testing.assert_allclose(m.victor_purpura(a, b, q), want, rtol=1e-12, atol=1e-12)
