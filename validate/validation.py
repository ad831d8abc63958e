"""One validation: two runs of a network compared population by population, localized, reported.

:func:`compare_runs` adds to a report, for runs A and B of one network (A lagging B by
``shifts`` ticks per population): the first divergence in words, a table and a chart
of the spike agreement per population (F1, recall, precision, both firing rates), the
membrane traces of the neuron where they first part (and of the worst population's first
differing neuron) on both sides around that tick, every population's rasters overlaid with the mismatches coloured, and where in
time each population differs. :func:`measure_runs` is its numbers without the report (what
:mod:`validate.dataset` computes for every sample of a set).
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional


from emu.network import Network
from emu.spikes import Recording
from emu.timing import align

from .compare import CompareError, pair_populations, summarize
from .figures import agreement_bars, divergence_map, raster_overlay
from .localize import Localization, localize
from .metrics import SpikeAgreement, agreement, pooled
from .report import Report, percent
from .traces import Voltages, membrane_figure, trace_caption


def measure_runs(network: Network, a: Recording, b: Recording, label_a: str, label_b: str, populations, profile,
                 shifts: Dict[str, int], max_lag: int, lags: bool = True) -> dict:
    """The numbers of :func:`compare_runs` without the report: the compared population pairs,
    notes, lag summary, localization, one row per population, the aligned rasters, and the
    totals (neuron populations only, unless only inputs were compared) with the finding.
    ``lags``: also search every lag and measure every neuron (the report's lag profile, best
    lags and per-neuron distances; ``summary`` and the rows' ``best lag`` are None without)."""
    pairs, notes = pair_populations(a, b, populations)
    lag_span = max_lag + max([0] + [shifts.get(p.name, 0) for p in pairs])
    summary = summarize(a, b, pairs, notes, max_lag=lag_span) if lags else None
    unknown = [p.name for p in pairs if p.name not in network.populations]
    if unknown:
        raise CompareError(f"{b.source}: population {unknown[0]!r} is not in the model "
                           f"(it has {', '.join(network.populations)})")
    side_a = Recording.from_rasters({p.name: p.a for p in pairs}, v={p.name: p.v_a for p in pairs if p.v_a is not None},
                                    meta=dict(a.meta), source=a.source)
    side_b = Recording.from_rasters({p.name: p.b for p in pairs}, v={p.name: p.v_b for p in pairs if p.v_b is not None},
                                    meta=dict(b.meta), source=b.source)
    loc = localize(side_a, side_b, network, profile=profile, shift={p.name: shifts.get(p.name, 0) for p in pairs},
                   labels=(label_a, label_b))
    rows, aligned = [], {}
    for p in pairs:
        s = shifts.get(p.name, 0)
        xa, yb = align(p.a, p.b, s)
        aligned[p.name] = (xa, yb)
        ag = agreement(xa, yb)
        rows.append({"population": p.name, "neurons": p.a.shape[1], "spike F1": ag.f1, "recall": ag.recall,
                     "precision": ag.precision, f"rate {label_a}": ag.rate_a, f"rate {label_b}": ag.rate_b,
                     "rate ratio": ag.rate_ratio, f"spikes {label_a}": ag.spikes_a, f"spikes {label_b}": ag.spikes_b,
                     "matched": ag.matched, "mismatching cells": ag.mismatching_cells, "cells": ag.cells,
                     "mismatch rate": ag.mismatch_rate, "expected lag": s,
                     "best lag": summary["populations"][p.name]["best_lag"] if summary else None,
                     "first difference": loc.first_ticks.get(p.name)})
    counted = [r for r in rows if network.populations[r["population"]].model != "input"] or rows
    total = pooled(row_agreement(r, label_a, label_b) for r in counted)
    finding = runs_finding(total, loc, label_a, label_b, any(shifts.get(p.name, 0) for p in pairs))
    return dict(pairs=pairs, notes=notes, summary=summary, loc=loc, rows=rows, aligned=aligned, counted=counted,
                agreement=total, mismatches=total.mismatching_cells, cells=total.cells, finding=finding)


def runs_finding(total: SpikeAgreement, loc: Localization, label_a: str, label_b: str, shifted: bool) -> str:
    """Two runs' comparison in words: their spike agreement over the neuron populations, then
    where they first part (:meth:`Localization.finding`)."""
    after = f", after shifting {label_a} back by its latency" if shifted else ""
    return (f"{label_a.capitalize()} vs {label_b}: {total.describe(f'the {label_a}', f'the {label_b}')} over the "
            f"neuron populations ({total.mismatching_cells:,} mismatching cells of {total.cells:,}{after}). "
            f"{loc.finding()}")


def row_agreement(row: dict, label_a: str, label_b: str) -> SpikeAgreement:
    """The :class:`SpikeAgreement` of one population row of :func:`measure_runs`."""
    return SpikeAgreement(row[f"spikes {label_a}"], row[f"spikes {label_b}"], row["matched"], row["cells"])


def compare_runs(report: Report, network: Network, a: Recording, b: Recording, label_a: str, label_b: str,
                 populations, profile, shifts: Dict[str, int], max_lag: int,
                 voltages: Optional[Mapping[str, Voltages]] = None, where: str = "") -> dict:
    """Compare runs A and B of ``network`` (module doc) into ``report``; return the summary with
    its ``finding``. ``voltages``: per side ("A", "B") how it recorded membranes
    (:class:`validate.traces.Voltages`: units, before or after the reset); traces are drawn
    after the reset, in NIR units. ``where``: added to the figures' titles (e.g. ", sample 4")."""
    m = measure_runs(network, a, b, label_a, label_b, populations, profile, shifts, max_lag)
    pairs, notes, summary, loc, rows, aligned = (m[k] for k in ("pairs", "notes", "summary", "loc", "rows", "aligned"))
    counted, total, cells, finding = m["counted"], m["mismatches"], m["cells"], m["finding"]
    report.add_heading(f"{label_a} vs {label_b}")
    report.add_text(finding)
    for note in notes:
        report.add_text(f"Note: {note}", note=True)
    report.add_table([percent_columns(r) for r in rows], columns=[c for c in rows[0] if c not in ("matched", "cells")],
                     caption=f"per population, spike agreement first (F1; recall: share of {label_b}'s spikes "
                             f"{label_a} reproduces; rates in spikes per neuron per tick); {label_a} lags {label_b} by "
                             f"the expected lag (latency), shifted back")
    report.add_figure(agreement_bars([r["population"] for r in counted],
                                     [row_agreement(r, label_a, label_b) for r in counted], label_a, label_b,
                                     f"{label_a} vs {label_b}{where} per population"),
                      "spike F1, recall and precision per population, and both firing rates (counts in the hover)",
                      data=rows)
    for title, pop, neuron, tick in _trace_targets(loc, rows):
        pair = next(p for p in pairs if p.name == pop)
        drawn = membrane_figure(network, pop, neuron, tick, shifts.get(pop, 0), (pair.a, pair.b), (pair.v_a, pair.v_b),
                                (label_a, label_b), voltages or {}, title)
        if drawn is not None:
            fig, neuron, parts = drawn
            report.add_figure(fig, trace_caption(pop, neuron, (label_a, label_b), parts, tick))
    shown = {p.name: aligned[p.name] for p in pairs if network.populations[p.name].model != "input"}
    if shown:
        report.add_figure(raster_overlay(shown, label_a, label_b, f"{label_a} vs {label_b}{where}: spikes (choose "
                                         f"the population)"),
                          f"grey: both spike; red: only {label_a}; blue: only {label_b} ({label_a} shifted back by its "
                          f"latency)")
    for p in pairs:
        if p.name in shown and any(r["population"] == p.name and r["mismatching cells"] for r in rows):
            report.add_figure(divergence_map(p.a, p.b, shifts.get(p.name, 0), f"{p.name}{where}: where they differ",
                                             label_a=label_a),
                              f"{p.name}: mismatches per neuron and time")
    return dict(finding=finding, rows=rows, agreement=m["agreement"].to_dict(), mismatches=total, cells=cells,
                spikes_a=sum(r[f"spikes {label_a}"] for r in rows), spikes_b=sum(r[f"spikes {label_b}"] for r in rows),
                localization=loc.to_dict(), compare=summary)


def runs_sentence(comp: dict) -> str:
    """A :func:`compare_runs` result in two short clauses: the spike agreement and the first
    difference in time, e.g. "spike F1 0.936 (...); first difference: population 'lif2', neuron 5,
    tick 3 (the emulator spiked, the float reference did not)."."""
    loc = Localization.from_dict(comp["localization"])
    a, b = loc.labels
    total = SpikeAgreement.from_dict(comp["agreement"])
    if loc.identical:
        return f"{a} and {b} spike identically ({total.spikes_b:,} spikes)."
    who = f"the {a} spiked, the {b} did not" if loc.a_spiked else f"the {b} spiked, the {a} did not"
    tick = f"tick {loc.tick}" + (f" (the {a}'s tick {loc.tick_a})" if loc.tick_a != loc.tick else "")
    return (f"{total.describe(f'the {a}', f'the {b}')}; first difference in time: population {loc.population!r}, "
            f"neuron {loc.neuron}, {tick}, where {who}.")


def percent_columns(row: dict) -> dict:
    """A row for a table: fractions of spikes and of cells as percentages (F1 and ratios stay numbers)."""
    out = dict(row)
    for key in ("recall", "precision"):
        if key in out:
            out[key] = percent(out[key])
    if "mismatch rate" in out:
        out["mismatch rate"] = percent(out["mismatch rate"], 2)
    return out


def _trace_targets(loc, rows):
    """(title, population, neuron, tick in B's time) of the traces to draw: the first divergence,
    and the first differing neuron of the worst population when that is another one."""
    if loc.identical:
        return []
    out = [("first divergence", loc.population, loc.neuron, loc.tick)]
    worst = min(rows, key=lambda r: r["spike F1"])
    if worst["population"] != loc.population and worst["first difference"] is not None:
        out.append(("worst population", worst["population"], None, worst["first difference"]))
    return out
