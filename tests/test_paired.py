"""The uncertainty of an accuracy difference (validate.paired) and Shapley shares (validate.shapley),
against definitions written out independently."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from validate import shapley as sh
from validate.paired import mcnemar_exact, paired_accuracy, paired_difference_interval


def test_mcnemar_exact_by_enumeration():
    """p = the probability, under fair coins for the discordant pairs, of a split at least as uneven."""
    for lost, gained in [(0, 0), (1, 0), (3, 0), (5, 1), (9, 2), (10, 10), (0, 12), (20, 4)]:
        n = lost + gained
        if n == 0:
            assert mcnemar_exact(lost, gained) == 1.0
            continue
        dev = abs(lost - n / 2)
        p = sum(math.comb(n, k) for k in range(n + 1) if abs(k - n / 2) >= dev - 1e-12) / 2 ** n
        assert mcnemar_exact(lost, gained) == pytest.approx(min(1.0, p))
    assert mcnemar_exact(1, 0) == 1.0  # one sample can never be significant
    assert mcnemar_exact(6, 0) < 0.05 < mcnemar_exact(5, 0)


@settings(max_examples=200)
@given(st.integers(0, 40), st.integers(0, 15), st.integers(0, 15), st.integers(0, 40))
def test_the_interval_holds_the_difference(both, lost, gained, neither):
    n = both + lost + gained + neither
    lo, hi = paired_difference_interval(both, lost, gained, neither)
    assert -1 <= lo <= hi <= 1
    if n:
        assert lo - 1e-12 <= (lost - gained) / n <= hi + 1e-12
        lo2, hi2 = paired_difference_interval(both, gained, lost, neither)  # swapped sides: mirrored interval
        assert lo2 == pytest.approx(-hi) and hi2 == pytest.approx(-lo)


def test_more_samples_narrow_the_interval_and_one_flip_is_not_significant():
    one = paired_accuracy([1] * 33, [1] * 32 + [0], [1] * 33)
    assert (one.lost, one.gained, one.lost_samples) == (1, 0, (32,)) and not one.significant
    assert one.drop == pytest.approx(1 / 33)
    assert "1 sample flips (lost: sample 32): not significant on 33 samples" in one.describe()
    lo, hi = one.interval
    many = paired_accuracy([1] * 3300, [1] * 3200 + [0] * 100, [1] * 3300)
    lo2, hi2 = many.interval
    assert many.significant and hi2 - lo2 < hi - lo and lo2 > 0
    same = paired_accuracy([0, 1, 2], [0, 1, 1], [0, 1, 0])
    assert same.lost == same.gained == 0 and same.describe().startswith("no sample flips")


def _shapley_by_orders(players, value):
    """The definition: the mean marginal contribution over every order of the players."""
    out = {p: 0.0 for p in players}
    orders = list(itertools.permutations(players))
    for order in orders:
        before = frozenset()
        for p in order:
            out[p] += value[before | {p}] - value[before]
            before = before | {p}
    return {p: v / len(orders) for p, v in out.items()}


@settings(max_examples=50)
@given(st.integers(1, 5), st.data())
def test_shapley_is_the_mean_over_orders_and_does_not_depend_on_the_order(k, data):
    players = [f"f{i}" for i in range(k)]
    value = {c: data.draw(st.floats(-10, 10)) for c in sh.coalitions(players)}
    value[frozenset()] = 0.0
    phi = sh.shapley(players, value)
    want = _shapley_by_orders(players, value)
    for p in players:
        assert phi[p] == pytest.approx(want[p], abs=1e-9)
    assert sum(phi.values()) == pytest.approx(value[frozenset(players)], abs=1e-9)
    backwards = sh.shapley(players[::-1], value)
    assert all(backwards[p] == pytest.approx(phi[p], abs=1e-9) for p in players)


def test_interacting_factors_split_fairly_where_a_waterfall_does_not():
    """Two factors that each cost 1 alone and 1 together (they are redundant): a waterfall gives
    all to whichever comes first, Shapley gives each 0.5."""
    v = {frozenset(): 0.0, frozenset("a"): 1.0, frozenset("b"): 1.0, frozenset("ab"): 1.0}
    assert sh.shapley(["a", "b"], v) == {"a": 0.5, "b": 0.5}
    arrays = {c: np.array([x, 2 * x]) for c, x in v.items()}  # per sample, elementwise
    assert np.allclose(sh.shapley(["a", "b"], arrays)["a"], [0.5, 1.0])


def test_many_factors_are_estimated_from_random_orders(monkeypatch):
    monkeypatch.setattr(sh, "MAX_EXACT", 3)
    players = list("abcdefghi")
    weight = dict(a=1.0, b=2.0, c=0.0, d=-1.0, e=0.5, f=3.0, g=-2.0, h=0.25, i=1.5)
    coalitions = sh.coalitions(players)
    assert len(coalitions) < 2 ** 9 and frozenset() in coalitions and frozenset(players) in coalitions
    value = {c: sum(weight[p] for p in c) for c in coalitions}  # additive: every order gives the weights
    phi = sh.shapley(players, value)
    assert all(phi[p] == pytest.approx(weight[p]) for p in players)
