"""Compare two recordings spike by spike: a JSON-able summary and an HTML report.

Populations are paired by name. A recording with a single population without a
name (a plain raster, a flat ``{neuron: [ticks]}`` dict) pairs with the single
population of the other recording (after ``populations`` selection). Populations
present on one side only are left out, with a note in the summary. Paired
populations must have the same number of neurons; when the recordings have
different numbers of ticks, the common first ticks are compared and the summary
says so.

Lags follow :mod:`validate.metrics`: lag ``L`` pairs A's tick ``t`` with B's tick
``t - L`` (``L > 0``: A lags B).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from dataclasses import dataclass
from typing import Any

import numpy as np

from emu.timing import align

from . import metrics
from emu.errors import UserError
from emu.spikes import Recording
from .figures import agreement_bars, divergence_map, lag_profile, raster_overlay
from .report import Report, percent

MAX_REPORT_ROWS = 200
"""At most this many per-neuron rows go into the HTML report (the summary has them all)."""


class CompareError(UserError):
    """Two recordings cannot be compared (shapes, populations); the message names both files."""


@dataclass
class PopulationPair:
    """One population of A and its partner in B, cut to the common ticks."""

    name: str
    a: np.ndarray
    b: np.ndarray
    v_a: np.ndarray | None = None
    v_b: np.ndarray | None = None
    is_input: bool = False  # an input population: identical by construction, left out of the totals


def pair_populations(
    a: Recording, b: Recording, populations: Sequence[str] | None = None, sample: int = 0
) -> tuple[list[PopulationPair], list[str]]:
    """Pair A's populations with B's (see module doc), one ``sample`` of each; returns the pairs
    and notes for the summary."""
    both = f"{a.source} and {b.source}"
    names_a = _selected(a, populations)
    names_b = _selected(b, populations)
    notes = []
    if a.unnamed or b.unnamed:
        if len(names_a) != 1 or len(names_b) != 1:
            many = b if a.unnamed else a
            raise CompareError(
                f"{both}: a single unnamed raster pairs with one population, but {many.source} has "
                f"{', '.join(map(repr, _selected(many, populations)))}: choose one (populations= / --population)"
            )
        matches = [(names_a[0], names_b[0], names_b[0] if a.unnamed else names_a[0])]
    else:
        common = [n for n in names_a if n in names_b]
        if not common:
            raise CompareError(
                f"{both}: no population name in common (A: {', '.join(names_a)}; B: {', '.join(names_b)})"
            )
        for side, names, other in (("A", names_a, names_b), ("B", names_b, names_a)):
            notes += [f"population {n!r} is only in {side}: not compared" for n in names if n not in other]
        matches = [(n, n, n) for n in common]

    ticks = min(a.ticks, b.ticks)
    if a.ticks != b.ticks:
        notes.append(f"A has {a.ticks} ticks and B {b.ticks}: compared on the first {ticks} ticks only")
    pairs = []
    for name_a, name_b, name in matches:
        ra, rb = a.raster(name_a, sample), b.raster(name_b, sample)
        if ra.shape[1] != rb.shape[1]:
            raise CompareError(
                f"{both}: population {name!r} has {ra.shape[1]} neurons in {a.source} "
                f"but {rb.shape[1]} in {b.source}"
            )
        va, vb = (np.asarray(r.v[n][sample], np.float64) if n in r.v else None for r, n in ((a, name_a), (b, name_b)))
        is_input = name_a in (a.meta.get("inputs") or ()) or name_b in (b.meta.get("inputs") or ())
        pairs.append(
            PopulationPair(
                name,
                ra[:ticks],
                rb[:ticks],
                None if va is None else va[:ticks],
                None if vb is None else vb[:ticks],
                is_input,
            )
        )
    return pairs, notes


def _selected(rec: Recording, populations: Sequence[str] | None) -> list[str]:
    """The populations of ``rec`` to compare: all, or those requested (an unnamed one always)."""
    if populations is None or rec.unnamed:
        return rec.populations
    missing = [p for p in populations if p not in rec.shapes]
    if missing:
        raise CompareError(
            f"{rec.source}: unknown population {missing[0]!r} requested (it has: {', '.join(rec.populations)})"
        )
    return list(populations)


def compare(
    a: Recording,
    b: Recording,
    max_lag: int = 5,
    window: int = 1,
    populations: Sequence[str] | None = None,
    tau: float = 5.0,
    q: float = 0.5,
) -> dict[str, Any]:
    """Compare recording A with B; returns a JSON-able summary.

    ``max_lag``: lags ``-max_lag..max_lag`` are searched; ``window``: ``+-window``
    ticks for windowed coincidences; ``populations``: names to compare (default all
    shared); ``tau``: van Rossum time constant in ticks; ``q``: Victor-Purpura cost
    per tick of shift. See :func:`summarize` for the keys.
    """
    pairs, notes = pair_populations(a, b, populations)
    return summarize(a, b, pairs, notes, max_lag, window, tau, q)


def summarize(
    a: Recording,
    b: Recording,
    pairs: Sequence[PopulationPair],
    notes: Sequence[str] = (),
    max_lag: int = 5,
    window: int = 1,
    tau: float = 5.0,
    q: float = 0.5,
) -> dict[str, Any]:
    """The summary of paired populations.

    Top level (all populations together, input populations left out when the
    recordings name them in ``meta["inputs"]``: their spikes are identical by
    construction): ``finding`` (the answer in one sentence), ``agreement`` (the
    :class:`validate.metrics.SpikeAgreement` at the best lag, B the reference: F1, recall,
    precision, rates), ``spike_counts`` {"a", "b"},
    ``coincidences_by_lag`` {"<lag>": count}, ``best_lag`` (most coincidences; ties
    to the smallest |lag|, then the smaller), ``coincidences`` (exact and windowed,
    at lag 0 and at the best lag), ``mismatches_lag0`` (cells where A != B),
    ``first_divergence`` (tick of A, at lag 0 and the best lag; null = never),
    ``per_neuron`` (rows of :func:`validate.metrics.per_neuron_table` with a
    ``population`` column, each at its population's best lag). ``populations``:
    name -> the same keys for that population alone (without ``per_neuron``), plus
    ``neurons``, ``van_rossum_best_lag`` (``sqrt`` of the sum of squares over
    neurons), ``victor_purpura_best_lag`` (sum over neurons) and, when both record
    voltages, ``voltage`` (largest |v_a - v_b| and the first tick it is non-zero).
    Also ``a``, ``b`` (file, ticks, population sizes), ``ticks_compared``,
    ``settings`` and ``notes``.
    """
    if max_lag < 0 or window < 0 or tau <= 0 or q < 0:
        raise CompareError(
            f"need max_lag >= 0, window >= 0, tau > 0 and q >= 0; got {max_lag}, {window}, {tau} and {q}"
        )
    summary: dict[str, Any] = {
        "a": _describe(a),
        "b": _describe(b),
        "ticks_compared": int(pairs[0].a.shape[0]),
        "settings": {"max_lag": max_lag, "window": window, "tau": tau, "q": q},
        "notes": list(notes),
    }
    counted = [p for p in pairs if not p.is_input] or list(pairs)
    summary["inputs_left_out"] = [p.name for p in pairs if p.is_input and len(counted) < len(pairs)]
    summary.update(_lag_summary(counted, max_lag, window))
    summary["cells"] = int(sum(p.a.size for p in counted))
    summary["per_neuron"] = []
    summary["populations"] = {}
    for pair in pairs:
        section = _lag_summary([pair], max_lag, window)
        rows = metrics.per_neuron_table(pair.a, pair.b, section["best_lag"], window, tau, q)
        section["neurons"] = pair.a.shape[1]
        section["van_rossum_best_lag"] = float(np.sqrt(sum(r["van_rossum_at_lag"] ** 2 for r in rows)))
        section["victor_purpura_best_lag"] = float(sum(r["victor_purpura_at_lag"] for r in rows))
        if pair.v_a is not None and pair.v_b is not None:
            section["voltage"] = _voltage_summary(pair.v_a, pair.v_b)
        summary["populations"][pair.name] = section
        summary["per_neuron"] += [{"population": pair.name, **r} for r in rows]
    summary["finding"] = compare_finding(summary)
    return summary


def compare_finding(summary: dict[str, Any]) -> str:
    """The answer of a comparison in one sentence: the spike agreement at the best lag, where it
    is lowest, and where the runs first part."""
    a, b = summary["spike_counts"]["a"], summary["spike_counts"]["b"]
    best, coinc = summary["best_lag"], summary["coincidences"]["best_lag"]
    first = summary["first_divergence"]["best_lag"]
    if a == b == coinc:
        return (f"A and B spike identically ({a:,} spikes){'' if best == 0 else f' once A is shifted by {best:+d} tick(s)'}"
                f" in every compared population.")
    total = metrics.SpikeAgreement.from_dict(summary["agreement"])
    at = "" if best == 0 else f" once A is shifted by {best:+d} tick(s) (the best lag)"
    where = f"; they first part at tick {first} of A" if first is not None else ""
    sections = summary["populations"]
    worst = ""
    if len(sections) > 1:
        name, sec = min(sections.items(), key=lambda kv: kv[1]["agreement"]["f1"])
        worst = f"; lowest in population {name!r} (F1 {sec['agreement']['f1']:.3f})"
    return f"{total.describe('A', 'B')}{at}{worst}{where}."


def _describe(rec: Recording) -> dict[str, Any]:
    return {"source": rec.source, "ticks": rec.ticks, "populations": rec.sizes}


def _tick_or_none(tick: int) -> int | None:
    return None if tick < 0 else tick


def _lag_summary(pairs: Sequence[PopulationPair], max_lag: int, window: int) -> dict[str, Any]:
    """Counts, lag profile, best lag, coincidences and first divergence over ``pairs`` together."""
    lags = np.arange(-max_lag, max_lag + 1)
    totals = sum(metrics.coincidences_by_lag(p.a, p.b, max_lag)[1].sum(axis=1) for p in pairs)
    best = metrics.best_lag(lags, totals)
    first = {lag: [metrics.first_divergence_overall(p.a, p.b, lag) for p in pairs] for lag in (0, best)}
    return {
        "agreement": metrics.pooled(metrics.agreement(*align(p.a, p.b, best)) for p in pairs).to_dict(),
        "spike_counts": {"a": int(sum(p.a.sum() for p in pairs)), "b": int(sum(p.b.sum() for p in pairs))},
        "coincidences_by_lag": {str(int(lag)): int(c) for lag, c in zip(lags, totals)},
        "best_lag": best,
        "coincidences": {
            "lag_0": int(totals[max_lag]),
            "best_lag": int(totals[max_lag + best]),
            "window_lag_0": int(sum(metrics.windowed_coincidences(p.a, p.b, window).sum() for p in pairs)),
            "window_best_lag": int(sum(metrics.windowed_coincidences(p.a, p.b, window, best).sum() for p in pairs)),
        },
        "mismatches_lag0": int(sum((p.a != p.b).sum() for p in pairs)),
        "first_divergence": {
            "lag_0": _tick_or_none(min((t for t in first[0] if t >= 0), default=-1)),
            "best_lag": _tick_or_none(min((t for t in first[best] if t >= 0), default=-1)),
        },
    }


def _voltage_summary(va: np.ndarray, vb: np.ndarray) -> dict[str, Any]:
    """Largest |va - vb| over cells recorded on both sides, and the first tick where they differ."""
    diff = np.abs(va - vb)
    recorded = ~np.isnan(diff)
    if not recorded.any():
        return {"cells_compared": 0, "max_abs_diff": None, "first_tick_differs": None}
    differs = np.flatnonzero((diff > 0).any(axis=1))  # NaN > 0 is False
    return {
        "cells_compared": int(recorded.sum()),
        "max_abs_diff": float(diff[recorded].max()),
        "first_tick_differs": int(differs[0]) if differs.size else None,
    }


def build_report(summary: dict[str, Any], pairs: Sequence[PopulationPair]) -> Report:
    """An HTML report of a :func:`summarize` result: the finding, the mismatch rate per
    population, the lag profile, every population's rasters overlaid (mismatches coloured) and
    divergence map, and the neurons that differ."""
    a, b = summary["a"]["source"], summary["b"]["source"]
    report = Report(f"Spike comparison: {Path(a).name} vs {Path(b).name}", summary["finding"])
    sections = summary["populations"]
    lag = summary["best_lag"]
    overview = [{"population": name, "neurons": sec["neurons"], "best lag": sec["best_lag"],
                 "spike F1": sec["agreement"]["f1"], "recall": percent(sec["agreement"]["recall"]),
                 "precision": percent(sec["agreement"]["precision"]), "rate A": sec["agreement"]["rate_a"],
                 "rate B": sec["agreement"]["rate_b"], "rate ratio": sec["agreement"]["rate_ratio"],
                 "spikes A": sec["spike_counts"]["a"], "spikes B": sec["spike_counts"]["b"],
                 "mismatching cells (best lag)": sec["agreement"]["mismatching_cells"],
                 "first divergence (best lag)": sec["first_divergence"]["best_lag"],
                 "van Rossum": sec["van_rossum_best_lag"], "Victor-Purpura": sec["victor_purpura_best_lag"]}
                for name, sec in sections.items()]
    report.add_table(overview, caption="per population, at its best lag: spike agreement first (recall: share of B's "
                                       "spikes A reproduces; rates in spikes per neuron per tick), then distances")
    for note in summary["notes"]:
        report.add_text(f"Note: {note}", note=True)
    if summary["inputs_left_out"]:
        report.add_text(f"Input populations {', '.join(summary['inputs_left_out'])} are left out of the totals "
                        f"(identical by construction).", note=True)
    report.add_figure(agreement_bars(list(sections), [metrics.SpikeAgreement.from_dict(s["agreement"])
                                                      for s in sections.values()], "A", "B",
                                     "A vs B per population, each at its best lag"),
                      "spike F1, recall and precision per population, and both firing rates (counts in the hover)",
                      data=overview)
    lags = [int(k) for k in summary["coincidences_by_lag"]]
    report.add_figure(lag_profile(lags, list(summary["coincidences_by_lag"].values()), lag,
                                  f"coincidences by lag; best lag {lag:+d}"),
                      "exact coincidences of A and B as A is shifted", data=summary["coincidences_by_lag"])
    report.add_heading("Rasters, A shifted by the best lag")
    layers = {p.name: _shifted_pair(p.a, p.b, sections[p.name]["best_lag"]) for p in pairs}
    report.add_figure(raster_overlay(layers, "A", "B", "spikes of A and B (choose the population)"),
                      "grey: both spike; red: only A; blue: only B (A shifted back by its population's best lag)")
    for p in pairs:
        sec = sections[p.name]
        if sec["mismatches_lag0"] or sec["best_lag"]:
            report.add_figure(divergence_map(p.a, p.b, sec["best_lag"], label_a="A", title=f"{p.name}: where A and B differ "
                                             f"(lag {sec['best_lag']:+d})"), f"{p.name}: mismatches per neuron and time")
        rows = [r for r in summary["per_neuron"] if r["population"] == p.name and r["first_divergence_at_lag"] is not None]
        if rows:
            caption = f"{p.name}: neurons that differ at the best lag ({len(rows)})"
            if len(rows) > MAX_REPORT_ROWS:
                caption += f", first {MAX_REPORT_ROWS} shown (all are in the summary JSON)"
            report.add_table([{k: v for k, v in r.items() if k != "population"} for r in rows[:MAX_REPORT_ROWS]],
                             caption=caption)
    report.add_settings(dict(summary["settings"], a=a, b=b, ticks_compared=summary["ticks_compared"]))
    return report


def _shifted_pair(a: np.ndarray, b: np.ndarray, lag: int):
    """A's tick t + lag against B's tick t, both cut to the ticks they share."""
    return align(a, b, lag)
