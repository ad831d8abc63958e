"""One validation: two runs of a network compared population by population, localized, reported.

:func:`compare_runs` adds to a report, for runs A and B of one network (A lagging B by
``shifts`` ticks per population): the first divergence in words, a table and a chart
of mismatch rates per population, the membrane traces of the neuron where they first
part (and of the worst population's first differing neuron) on both sides around that
tick, every population's rasters overlaid with the mismatches coloured, and where in
time each population differs. :func:`measure_runs` is its numbers without the report (what
:mod:`validate.dataset` computes for every sample of a set).
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional

import numpy as np

from emu.network import Network
from emu.spikes import Recording
from emu.timing import align

from .compare import CompareError, pair_populations, summarize
from .figures import ONLY_A, ONLY_B, divergence_map, rate_bars, raster_overlay, voltage_traces
from .localize import localize
from .report import Report, percent


def measure_runs(network: Network, a: Recording, b: Recording, label_a: str, label_b: str, populations, profile,
                 shifts: Dict[str, int], max_lag: int) -> dict:
    """The numbers of :func:`compare_runs` without the report: the compared population pairs,
    notes, lag summary, localization, one row per population, the aligned rasters, and the
    totals (neuron populations only, unless only inputs were compared) with the finding."""
    pairs, notes = pair_populations(a, b, populations)
    lag_span = max_lag + max([0] + [shifts.get(p.name, 0) for p in pairs])
    summary = summarize(a, b, pairs, notes, max_lag=lag_span)
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
        rows.append({"population": p.name, "neurons": p.a.shape[1],
                     "mismatch rate": (xa != yb).mean() if xa.size else 0.0,
                     "mismatching cells": int((xa != yb).sum()), "cells": int(xa.size),
                     f"spikes {label_a}": int(p.a.sum()), f"spikes {label_b}": int(p.b.sum()),
                     "expected lag": s, "best lag": summary["populations"][p.name]["best_lag"],
                     "first difference": loc.first_ticks.get(p.name)})
    counted = [r for r in rows if network.populations[r["population"]].model != "input"] or rows
    total, cells = sum(r["mismatching cells"] for r in counted), sum(r["cells"] for r in counted)
    shifted = f", after shifting {label_a} back by its latency" if any(shifts.get(p.name, 0) for p in pairs) else ""
    finding = (f"{label_a} and {label_b} differ in {percent(total / cells if cells else 0.0, 2)} of cells "
               f"({total:,} of {cells:,}{shifted}). {loc.finding()}")
    return dict(pairs=pairs, notes=notes, summary=summary, loc=loc, rows=rows, aligned=aligned, counted=counted,
                mismatches=total, cells=cells, finding=finding)


def compare_runs(report: Report, network: Network, a: Recording, b: Recording, label_a: str, label_b: str,
                 populations, profile, shifts: Dict[str, int], max_lag: int,
                 units: Optional[Mapping[str, str]] = None, where: str = "") -> dict:
    """Compare runs A and B of ``network`` (module doc) into ``report``; return the summary with
    its ``finding``. ``units``: per side ("A", "B") ``"chip"`` (voltages times the population's
    scale, as the emulator and the chip hold them) or ``"nir"`` (the float reference's);
    traces are drawn in NIR units. ``where``: added to the figures' titles (e.g. ", sample 4")."""
    m = measure_runs(network, a, b, label_a, label_b, populations, profile, shifts, max_lag)
    pairs, notes, summary, loc, rows, aligned = (m[k] for k in ("pairs", "notes", "summary", "loc", "rows", "aligned"))
    counted, total, cells, finding = m["counted"], m["mismatches"], m["cells"], m["finding"]
    report.add_heading(f"{label_a} vs {label_b}")
    report.add_text(finding)
    for note in notes:
        report.add_text(f"Note: {note}", note=True)
    report.add_table([dict(r, **{"mismatch rate": percent(r["mismatch rate"], 2)}) for r in rows],
                     caption=f"per population; {label_a} lags {label_b} by the expected lag (latency), shifted back")
    report.add_figure(rate_bars([r["population"] for r in counted], [r["mismatch rate"] for r in counted],
                                [r["mismatching cells"] for r in counted], [r["cells"] for r in counted],
                                f"{label_a} vs {label_b}{where}: mismatching cells per population"),
                      "mismatch rate per population (counts in the hover)", data=rows)
    for title, pop, neuron, tick in _trace_targets(loc, rows):
        drawn = _trace_figure(network, pairs, pop, neuron, tick, shifts.get(pop, 0), label_a, label_b, units or {},
                              title)
        if drawn is not None:
            fig, neuron = drawn
            report.add_figure(fig, f"membrane of {pop} neuron {neuron} on both sides (NIR units), threshold dashed, "
                                   f"spikes as triangles, the tick of the difference marked")
    shown = {p.name: aligned[p.name] for p in pairs if network.populations[p.name].model != "input"}
    if shown:
        report.add_figure(raster_overlay(shown, label_a, label_b, f"{label_a} vs {label_b}{where}: spikes (choose "
                                         f"the population)"),
                          f"grey: both spike; red: only {label_a}; blue: only {label_b} ({label_a} shifted back by its "
                          f"latency)")
    for p in pairs:
        if p.name in shown and any(r["population"] == p.name and r["mismatching cells"] for r in rows):
            report.add_figure(divergence_map(p.a, p.b, shifts.get(p.name, 0), f"{p.name}{where}: where they differ"),
                              f"{p.name}: mismatches per neuron and time")
    return dict(finding=finding, rows=rows, mismatches=total, cells=cells,
                spikes_a=sum(r[f"spikes {label_a}"] for r in rows), spikes_b=sum(r[f"spikes {label_b}"] for r in rows),
                localization=loc.to_dict(), compare=summary)


def _trace_targets(loc, rows):
    """(title, population, neuron, tick in B's time) of the traces to draw: the first divergence,
    and the first differing neuron of the worst population when that is another one."""
    if loc.identical:
        return []
    out = [("first divergence", loc.population, loc.neuron, loc.tick)]
    worst = max(rows, key=lambda r: r["mismatch rate"])
    if worst["population"] != loc.population and worst["first difference"] is not None:
        out.append(("worst population", worst["population"], None, worst["first difference"]))
    return out


def _trace_figure(network, pairs, pop, neuron, tick, shift, label_a, label_b, units, title):
    """(figure, neuron) of the membranes around ``tick``; ``neuron`` None: the first that differs then."""
    pair = next(p for p in pairs if p.name == pop)
    if neuron is None:  # the first neuron that differs at that tick
        xa, yb = align(pair.a, pair.b, shift)
        differ = np.flatnonzero(xa[tick] != yb[tick]) if tick < len(xa) else []
        if not len(differ):
            return None
        neuron = int(differ[0])
    scale = network.populations[pop].scale[neuron]
    traces = []
    for side, label, raster, v, color, lag in (("A", label_a, pair.a, pair.v_a, ONLY_A, shift),
                                              ("B", label_b, pair.b, pair.v_b, ONLY_B, 0)):
        if v is None:
            continue
        volts = v[lag:, neuron] / (scale if units.get(side, "chip") == "chip" else 1.0)
        traces.append(dict(label=label, v=volts, spikes=raster[lag:, neuron], color=color))
    if not traces:
        return None
    pop_obj = network.populations[pop]
    threshold = float(pop_obj.threshold[neuron] / scale)
    return voltage_traces(traces, tick, f"{title}: {pop} neuron {neuron} around tick {tick}", threshold), neuron
