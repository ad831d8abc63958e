"""One validation: two runs of a network compared population by population, localized, reported."""
from __future__ import annotations

from typing import Dict

from emu.network import Network
from emu.spikes import Recording

from .compare import CompareError, pair_populations, summarize
from .localize import localize
from .report import Report, divergence_heatmap, mismatch_bars, raster_figure

MAX_RASTER_FIGURES = 12


def compare_runs(report: Report, network: Network, a: Recording, b: Recording, label_a: str, label_b: str,
                populations, profile, shifts: Dict[str, int], max_lag: int) -> dict:
    """Compare runs A and B of ``network`` (A lagging B by ``shifts`` ticks per population): add the
    comparison to ``report`` (localization of the first difference, a table, mismatch bars,
    rasters and divergence maps per population) and return its summary."""
    pairs, notes = pair_populations(a, b, populations)
    lag_span = max_lag + max([0] + [shifts.get(p.name, 0) for p in pairs])
    summary = summarize(a, b, pairs, notes, max_lag=lag_span)
    unknown = [p.name for p in pairs if p.name not in network.populations]
    if unknown:
        raise CompareError(f"{b.source}: population {unknown[0]!r} is not in the model "
                           f"(it has {', '.join(network.populations)})")
    side_a = Recording.from_rasters({p.name: p.a for p in pairs}, v={p.name: p.v_a for p in pairs if p.v_a is not None},
                                    source=a.source)
    side_b = Recording.from_rasters({p.name: p.b for p in pairs}, v={p.name: p.v_b for p in pairs if p.v_b is not None},
                                    source=b.source)
    loc = localize(side_a, side_b, network, profile=profile, shift={p.name: shifts.get(p.name, 0) for p in pairs},
                   labels=(label_a, label_b))
    report.add_heading(f"{label_a} vs {label_b}")
    for note in notes:
        report.add_text(f"Note: {note}")
    report.add_text(loc.sentence())
    rows = []
    for p in pairs:
        s = summary["populations"][p.name]
        lag = shifts.get(p.name, 0)
        n_cells = max(0, p.a.shape[0] - lag)
        mism = int((p.a[lag:lag + n_cells] != p.b[:n_cells]).sum())
        rows.append({"population": p.name, "neurons": p.a.shape[1], f"spikes {label_a}": int(p.a.sum()),
                     f"spikes {label_b}": int(p.b.sum()), "expected lag": lag, "best lag": s["best_lag"],
                     "mismatches (aligned)": mism,
                     "first difference (aligned)": loc.first_ticks.get(p.name)})
    report.add_table(rows, caption=f"per population; {label_a} lags {label_b} by the expected lag (latency)")
    hidden = ("first_ticks", "compared", "labels", "sentence")
    report.add_table([{k: (str(v) if isinstance(v, (list, dict, tuple)) else v)
                       for k, v in loc.to_dict().items() if k not in hidden}],
                     caption="localization of the first difference")
    report.add_figure(mismatch_bars([r["population"] for r in rows], [r[f"spikes {label_a}"] for r in rows],
                                    [r[f"spikes {label_b}"] for r in rows], [r["mismatches (aligned)"] for r in rows],
                                    label_a, label_b),
                      f"{label_a} vs {label_b}: spikes and mismatching cells (aligned) per population", data=rows)
    shown = [p for p in pairs if network.populations[p.name].model != "input"]
    for p in shown[:MAX_RASTER_FIGURES]:
        lag = shifts.get(p.name, 0)
        report.add_heading(f"{p.name}: {label_a} vs {label_b}", level=3)
        report.add_figure(raster_figure(p.a, p.b, label_a, label_b, lag,
                                        f"{p.name}: red = no partner at lag {lag:+d}"),
                          f"{p.name}: rasters side by side ({label_a} lags by {lag})")
        report.add_figure(divergence_heatmap(p.a, p.b, lag=lag), f"{p.name}: where they differ (lag {lag:+d})")
    if len(shown) > MAX_RASTER_FIGURES:
        report.add_text(f"Rasters of {len(shown) - MAX_RASTER_FIGURES} more populations are left out.")
    total = sum(r["mismatches (aligned)"] for r in rows)
    return dict(rows=rows, mismatches=total, spikes_a=sum(r[f"spikes {label_a}"] for r in rows),
                spikes_b=sum(r[f"spikes {label_b}"] for r in rows), localization=loc.to_dict(), compare=summary)
