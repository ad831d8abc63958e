"""Spike-by-spike matching of two runs for users' tests.

:func:`assert_spikes_match` compares two runs population by population and fails, when
they differ by more than allowed, with each population's spike agreement first (F1,
recall, precision, firing rates: :class:`validate.metrics.SpikeAgreement`, which a silent
run cannot pass), then where the runs first part (the earliest tick, by
:func:`validate.localize.first_in_time`; each side's spike and voltage there).

The tolerance is on spike agreement (``min_f1``, ``min_recall``); without one the runs
must be identical. ``max_mismatch`` (the share of (sample, tick, neuron) cells that
differ) is kept for old tests, as a secondary measure: cells where neither side spikes
count as agreeing, so a silent run scores well on it.

The runs must cover the same ticks and the same populations (inputs left out) unless
the test says which to compare (``ticks=``, ``populations=``): a shorter run or a missing
population is a difference, not something to skip. Light to import (no torch): the
snapshot fixture uses it too.
"""
from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from emu.network import Network
from emu.spike_io import load_recording
from emu.spikes import UNNAMED, Recording
from emu.timing import align
from validate.localize import as_rasters, first_in_time
from validate.metrics import SpikeAgreement, agreement, best_lag


def as_recording(run: Any, where: str) -> Recording:
    """A run as a :class:`Recording`: a Recording (an emulator result is one), a file the
    validator reads (.json, .npz, .npy, .pkl), a mapping population -> (T, N) / (B, T, N)
    raster, or one plain (T, N) / (B, T, N) 0/1 array (a torch tensor too): an unnamed
    population that pairs with the one population the other run has (or ``populations=``
    names)."""
    if isinstance(run, Recording):
        return run
    if isinstance(run, (str, os.PathLike)):
        return load_recording(Path(run))
    if isinstance(run, Mapping):
        return Recording.from_rasters(as_rasters(run, where), source=where)
    if hasattr(run, "detach"):  # a torch tensor, without importing torch
        run = run.detach().cpu().numpy()
    if isinstance(run, (np.ndarray, list, tuple)) or hasattr(run, "__array__"):
        return Recording.from_rasters(as_rasters({UNNAMED: np.asarray(run)}, where), source=where)
    raise TypeError(f"{where}: expected a Recording, a recording file, a mapping population -> raster or a "
                    f"(T, N) / (B, T, N) array, got {type(run).__name__}")


@dataclass(frozen=True)
class Tolerance:
    """How close ``actual`` must come to ``expected``, per population (see the module doc)."""

    min_f1: Optional[float] = None
    min_recall: Optional[float] = None
    max_mismatch: Optional[float] = None

    @classmethod
    def of(cls, min_f1=None, min_recall=None, max_mismatch=None) -> "Tolerance":
        """The tolerance the arguments ask for; none at all: identical spikes (``min_f1=1``)."""
        for name, value in (("min_f1", min_f1), ("min_recall", min_recall), ("max_mismatch", max_mismatch)):
            if value is not None and not (isinstance(value, numbers.Real) and not isinstance(value, bool)
                                          and 0 <= value <= 1):
                raise ValueError(f"{name} is a fraction in [0, 1], got {value!r}")
        if min_f1 is None and min_recall is None and max_mismatch is None:
            min_f1 = 1.0
        return cls(min_f1, min_recall, max_mismatch)

    def broken(self, a: SpikeAgreement) -> List[str]:
        """The limits ``a`` breaks, in words (empty: it passes). A recall with nothing to recall
        (``expected`` silent) breaks nothing; F1 still fails such a run if ``actual`` spikes."""
        out = []
        if self.min_f1 is not None and a.f1 < self.min_f1 - 1e-12:
            out.append(f"F1 {a.f1:.3f} < min_f1 {self.min_f1:g}")
        if self.min_recall is not None and a.recall is not None and a.recall < self.min_recall - 1e-12:
            out.append(f"recall {a.recall:.3f} < min_recall {self.min_recall:g}")
        if self.max_mismatch is not None and a.mismatch_rate > self.max_mismatch + 1e-12:
            out.append(f"{a.mismatch_rate:.4g} of cells differ > max_mismatch {self.max_mismatch:g}")
        return out

    def __str__(self) -> str:
        if (self.min_f1, self.min_recall, self.max_mismatch) == (1.0, None, None):
            return "identical spikes"
        return ", ".join(f"{k}={v:g}" for k, v in (("min_f1", self.min_f1), ("min_recall", self.min_recall),
                                                   ("max_mismatch", self.max_mismatch)) if v is not None)


@dataclass
class PopulationMatch:
    """One population over all samples at the lag (``actual`` later by ``lag`` ticks) with the
    most coincident spikes (:func:`validate.metrics.best_lag`). ``agreement``: actual = A,
    expected = B (the reference). ``first_*``: the first differing cell, in the first sample
    that differs (tick in ``expected``'s ticks); None when they agree."""

    population: str
    lag: int
    agreement: SpikeAgreement
    first_sample: Optional[int]
    first_tick: Optional[int]
    first_neuron: Optional[int]

    @property
    def f1(self) -> float:
        return self.agreement.f1

    @property
    def recall(self) -> Optional[float]:
        return self.agreement.recall

    @property
    def mismatches(self) -> int:
        return self.agreement.mismatching_cells

    @property
    def cells(self) -> int:
        return self.agreement.cells

    @property
    def rate(self) -> float:
        """The share of cells that differ (secondary, see the module doc)."""
        return self.agreement.mismatch_rate


def _ticks(a: Recording, b: Recording, ticks: Optional[int]) -> int:
    if ticks is None:
        if a.ticks != b.ticks:
            raise AssertionError(f"actual has {a.ticks} ticks and expected {b.ticks}: the runs differ in length "
                                 f"(ticks=N compares the first N ticks of both)")
        return a.ticks
    if int(ticks) != ticks or ticks <= 0:
        raise ValueError(f"ticks must be an integer > 0, got {ticks!r}")
    short = [f"{side} has {r.ticks}" for side, r in (("actual", a), ("expected", b)) if r.ticks < ticks]
    if short:
        raise AssertionError(f"ticks={ticks} but {' and '.join(short)}")
    return int(ticks)


def _names(a: Recording, b: Recording, populations: Optional[Sequence[str]]) -> List[Tuple[str, str, str]]:
    """(name in actual, name in expected, name to report) of every population to compare."""
    if isinstance(populations, str):
        populations = [populations]
    inputs = set(a.meta.get("inputs") or ()) | set(b.meta.get("inputs") or ())
    if a.unnamed and b.unnamed:
        return [(UNNAMED, UNNAMED, populations[0] if populations is not None and len(populations) == 1 else UNNAMED)]
    if a.unnamed or b.unnamed:
        named = b if a.unnamed else a
        names = list(populations) if populations is not None else \
            [n for n in named.populations if n not in inputs]
        if len(names) != 1:
            array = "actual" if a.unnamed else "expected"
            raise ValueError(f"{array} is one unnamed raster; the other run has populations "
                             f"{', '.join(map(repr, names))}: say which it is with populations=['name']")
        if names[0] not in named.shapes:
            raise AssertionError(f"population {names[0]!r} is not in the run that names its populations "
                                 f"(it has {', '.join(named.populations)})")
        return [(UNNAMED if a.unnamed else names[0], UNNAMED if b.unnamed else names[0], names[0])]
    if populations is not None:
        for side, r in (("actual", a), ("expected", b)):
            missing = [p for p in populations if p not in r.shapes]
            if missing:
                raise AssertionError(f"population {missing[0]!r} is not in {side} (it has "
                                     f"{', '.join(r.populations)})")
        return [(n, n, n) for n in populations]
    in_a = [n for n in a.populations if n not in inputs]
    in_b = [n for n in b.populations if n not in inputs]
    only = [f"only in {side}: {', '.join(map(repr, names))}" for side, names in
            (("actual", [n for n in in_a if n not in in_b]), ("expected", [n for n in in_b if n not in in_a])) if names]
    if only:
        raise AssertionError(f"actual and expected record different populations ({'; '.join(only)}); "
                             f"populations=[...] compares only those named")
    return [(n, n, n) for n in in_b]


def _match(name: str, ra: np.ndarray, rb: np.ndarray, max_lag: int) -> PopulationMatch:
    lags = np.arange(-max_lag, max_lag + 1)
    matched = [np.count_nonzero(np.logical_and(*align(ra, rb, int(lag), axis=1))) for lag in lags]
    lag = best_lag(lags, np.array(matched))
    pa, pb = align(ra, rb, lag, axis=1)
    diff = pa != pb
    samples = np.flatnonzero(diff.any(axis=(1, 2)))
    first: Tuple[Optional[int], ...] = (None, None, None)
    if samples.size:
        s = int(samples[0])
        t = int(np.flatnonzero(diff[s].any(axis=1))[0])
        first = (s, t + max(-lag, 0), int(np.flatnonzero(diff[s, t])[0]))
    return PopulationMatch(name, lag, agreement(pa, pb), *first)


def spike_matches(actual: Recording, expected: Recording, max_lag: int = 0,
                  populations: Optional[Sequence[str]] = None, ticks: Optional[int] = None) -> List[PopulationMatch]:
    """Every compared population of the two runs at its best lag in ``-max_lag..max_lag``
    (the module doc says which are compared). A difference in samples, ticks or populations
    is an ``AssertionError`` saying so."""
    if actual.batch != expected.batch:
        raise AssertionError(f"actual has {actual.batch} sample(s), expected {expected.batch}")
    ticks = _ticks(actual, expected, ticks)
    out = []
    for name_a, name_b, name in _names(actual, expected, populations):
        ra, rb = actual.raster(name_a)[:, :ticks], expected.raster(name_b)[:, :ticks]
        if ra.shape[2] != rb.shape[2]:
            raise AssertionError(f"population {name!r} has {ra.shape[2]} neurons in actual, {rb.shape[2]} in expected")
        out.append(_match(name, ra, rb, max_lag))
    return out


class _RecordedOrder:
    """A recording's population order where no network is known: the emulator records in
    topological order, which is what :func:`first_in_time` breaks ties by."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)

    def order(self) -> List[str]:
        return self.names


def first_divergence(matches: Sequence[PopulationMatch], order) -> Optional[PopulationMatch]:
    """The population where the runs first part: in the first sample that differs, the earliest
    tick (:func:`validate.localize.first_in_time`; ``order``: a :class:`Network`, or anything
    with ``order()``)."""
    parted = [m for m in matches if m.first_sample is not None]
    if not parted:
        return None
    sample = min(m.first_sample for m in parted)
    ticks = {m.population: m.first_tick for m in parted if m.first_sample == sample}
    name = first_in_time(ticks, order)
    return next(m for m in parted if m.population == name and m.first_sample == sample)


def _side(rec: Recording, pop: str, sample: int, tick: int, neuron: int) -> str:
    if tick is None or not 0 <= tick < rec.ticks:
        return "no tick there"
    spiked = bool(rec.raster(pop, sample)[tick, neuron])
    text = "spiked" if spiked else "no spike"
    if pop in rec.v:
        text += f", v = {float(rec.v[pop][sample, tick, neuron]):.6g}"
    return text


def _percent(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def population_line(m: PopulationMatch, tolerance: Tolerance) -> str:
    """One population's agreement: F1, recall, precision and rates first, the cell mismatch last."""
    a, broken = m.agreement, tolerance.broken(m.agreement)
    return (f"  {'FAIL' if broken else 'ok':>4} {m.population}: spike F1 {a.f1:.3f}, recall {_percent(a.recall)}, "
            f"precision {_percent(a.precision)}, rate {a.rate_a:.4g} (actual) vs {a.rate_b:.4g} (expected) spikes "
            f"per neuron per tick ({a.spikes_a:,} vs {a.spikes_b:,} spikes), lag {m.lag:+d}; "
            f"{100 * a.mismatch_rate:.3f} % of cells differ ({a.mismatching_cells:,} of {a.cells:,})"
            + (f"  [{'; '.join(broken)}]" if broken else ""))


def mismatch_message(matches: Sequence[PopulationMatch], actual: Recording, expected: Recording,
                     tolerance: Tolerance, order=None) -> str:
    """The failure message: every population's agreement (F1, recall, rates; the cell mismatch
    as a secondary column), then the first divergence. ``order``: the network (ties of
    :func:`first_in_time`), else ``expected``'s population order."""
    failing = [m for m in matches if tolerance.broken(m.agreement)]
    lines = [f"spikes differ beyond the tolerance ({tolerance}) in {len(failing)} of {len(matches)} "
             f"population(s):"]
    lines += [population_line(m, tolerance) for m in matches]
    first = first_divergence(matches, order or _RecordedOrder(expected.populations))
    if first is not None:
        t_actual = first.first_tick + first.lag
        name_a = UNNAMED if actual.unnamed else first.population
        name_b = UNNAMED if expected.unnamed else first.population
        lines.append(f"First divergence: population {first.population!r}, neuron {first.first_neuron}, tick "
                     f"{first.first_tick} of sample {first.first_sample}"
                     + (f" (actual's tick {t_actual}, lag {first.lag:+d})" if first.lag else "")
                     + f": actual {_side(actual, name_a, first.first_sample, t_actual, first.first_neuron)}; "
                     f"expected {_side(expected, name_b, first.first_sample, first.first_tick, first.first_neuron)}.")
    return "\n".join(lines)


def assert_spikes_match(actual, expected, *, min_f1: Optional[float] = None, min_recall: Optional[float] = None,
                        max_lag: int = 0, max_mismatch: Optional[float] = None,
                        populations: Optional[Sequence[str]] = None, ticks: Optional[int] = None,
                        network: Optional[Network] = None) -> List[PopulationMatch]:
    """Fail unless every compared population of ``actual`` agrees with ``expected`` (the
    reference) within the tolerance, at some lag within ``+-max_lag`` ticks (``actual`` later
    by the lag): spike F1 at least ``min_f1``, recall (the share of ``expected``'s spikes
    ``actual`` reproduces) at least ``min_recall``, and, kept for old tests, at most
    ``max_mismatch`` of the cells differing. No tolerance given: identical spikes.

    ``actual`` / ``expected``: anything :func:`as_recording` reads. The runs must have the
    same samples, ticks and populations (inputs left out), unless ``ticks=N`` (compare the
    first N ticks) or ``populations=[...]`` say what to compare. ``network``: breaks ties of
    the first divergence by depth (default: ``expected``'s population order). Returns the
    per-population matches (:class:`PopulationMatch`)."""
    __tracebackhide__ = True
    tolerance = Tolerance.of(min_f1, min_recall, max_mismatch)
    if int(max_lag) != max_lag or max_lag < 0:
        raise ValueError(f"max_lag must be an integer >= 0, got {max_lag!r}")
    a, b = as_recording(actual, "actual"), as_recording(expected, "expected")
    matches = spike_matches(a, b, int(max_lag), populations, ticks)
    if any(tolerance.broken(m.agreement) for m in matches):
        raise AssertionError(mismatch_message(matches, a, b, tolerance, network))
    return matches
