"""Shapley values: each factor's share of a change that several factors make together.

Switching factors on one after another (a waterfall) gives each the change it makes at
its place in the order, so the shares depend on the order whenever factors interact (a
factor alone can cost much and nothing after another one). The Shapley value of factor
``i`` is the average of those changes over every order:

    phi_i = sum over S not containing i of |S|! (k - |S| - 1)! / k! * (v(S + i) - v(S))

for a value ``v`` of every coalition ``S`` of the ``k`` factors. The values sum to
``v(all) - v(none)`` and do not depend on how the factors are listed. Exact over all
``2**k`` coalitions for up to :data:`MAX_EXACT` factors; beyond, the average over
:data:`PERMUTATIONS` random orders (seeded: the same estimate every run), whose
coalitions are the orders' prefixes. Values may be numbers or numpy arrays (one per
sample), combined elementwise.
"""
from __future__ import annotations

import itertools
import math
from typing import Dict, FrozenSet, List, Mapping, Sequence

import numpy as np

#: up to this many factors, every coalition is run and the values are exact
MAX_EXACT = 7
#: random orders of the factors averaged beyond :data:`MAX_EXACT`
PERMUTATIONS = 64


def is_exact(players: Sequence[str]) -> bool:
    return len(players) <= MAX_EXACT


def orders(players: Sequence[str], seed: int = 0) -> List[List[str]]:
    """The orders :func:`shapley` averages when the factors are too many to be exact."""
    rng = np.random.default_rng(seed)
    return [[players[i] for i in rng.permutation(len(players))] for _ in range(PERMUTATIONS)]


def coalitions(players: Sequence[str]) -> List[FrozenSet[str]]:
    """Every coalition whose value :func:`shapley` needs, the empty one and all players first."""
    players = list(players)
    if is_exact(players):
        out = [frozenset(c) for r in range(len(players) + 1) for c in itertools.combinations(players, r)]
    else:
        out = [frozenset(), frozenset(players)]
        for order in orders(players):
            out += [frozenset(order[:i]) for i in range(1, len(order))]
    return list(dict.fromkeys(out))


def shapley(players: Sequence[str], value: Mapping[FrozenSet[str], object]) -> Dict[str, object]:
    """Each player's Shapley value under ``value`` (coalition -> number or array; module doc)."""
    players = list(players)
    k = len(players)
    out: Dict[str, object] = {}
    if is_exact(players):
        for p in players:
            rest = [q for q in players if q != p]
            total = 0.0
            for r in range(k):
                weight = math.factorial(r) * math.factorial(k - r - 1) / math.factorial(k)
                for c in itertools.combinations(rest, r):
                    s = frozenset(c)
                    total = total + weight * (np.asarray(value[s | {p}]) - np.asarray(value[s]))
            out[p] = total
        return out
    sums = {p: 0.0 for p in players}
    for order in orders(players):
        before = frozenset()
        for p in order:
            after = before | {p}
            sums[p] = sums[p] + (np.asarray(value[after]) - np.asarray(value[before]))
            before = after
    return {p: s / PERMUTATIONS for p, s in sums.items()}
