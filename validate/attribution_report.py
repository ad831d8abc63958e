"""The HTML report of an attribution (:class:`validate.attribution_result.Attribution`): the finding,
the drop with its uncertainty and the samples that flip, each factor's share (Shapley values,
the same in any order), per population the spike agreement, and every configuration run."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .figures import agreement_bars, waterfall
from .report import Report, percent

if TYPE_CHECKING:
    from .attribution_result import Attribution


def attribution_report(att: "Attribution", title: str, rate_chart: bool = True, settings: bool = True) -> Report:
    """The report (module doc); ``rate_chart``: also chart each population's spike agreement;
    ``settings``: end with the settings (a report that embeds this one gives its own)."""
    rep = Report(title, att.finding())
    src, tgt = att.source, att.target
    tp, sp = tgt.pooled, src.pooled
    rep.add_table([{"": "float (source profile)", att.metric: percent(src.accuracy), "spike F1": sp.f1,
                    "recall": percent(sp.recall), "precision": percent(sp.precision), "rate ratio": 1.0,
                    "mean output margin": float(att.margins(src).mean()) if att.n_samples else None,
                    "mismatching cells": 0},
                   {"": att.target_label, att.metric: percent(tgt.accuracy), "spike F1": tp.f1,
                    "recall": percent(tp.recall), "precision": percent(tp.precision), "rate ratio": tp.rate_ratio,
                    "mean output margin": float(att.margins(tgt).mean()) if att.n_samples else None,
                    "mismatching cells": tp.mismatching_cells}],
                  caption=f"{att.n_samples} samples. Spike F1, recall (share of the float run's spikes the run "
                          f"reproduces) and precision over every neuron population after latency alignment; rate "
                          f"ratio: spikes of the run over the float run's; output margin: the true class's spike count "
                          f"minus the largest other, per sample")
    paired = att.paired
    lo, hi = paired.interval
    rep.add_heading("Is the drop real?")
    rep.add_table([{"samples": paired.n, "both right": paired.correct_a - paired.lost,
                    "lost (float right only)": paired.lost, "gained (chip right only)": paired.gained,
                    "both wrong": paired.n - paired.correct_a - paired.gained,
                    "drop (points)": 100 * paired.drop, "95 % interval (points)": f"{100 * lo:+.1f} to {100 * hi:+.1f}",
                    "exact McNemar p": paired.p_value,
                    "verdict": "significant" if paired.significant else f"not significant on {paired.n} samples"}],
                  caption=f"the float run and the {att.target_label} on the same samples, paired (truth: "
                          f"{'the labels' if att.labels_given else 'the float prediction'})")
    flips = att.flips()
    if flips:
        rep.add_table([{"sample": f.sample, "flip": "lost" if f.lost else "gained", "truth": f.label,
                        "float says": f.float_class, f"{att.target_label} says": f.target_class,
                        "carried by": ", ".join(att.label_of(k) for k in f.cause) or "interacting factors",
                        **{k: round(v, 3) for k, v in f.shares.items()}} for f in flips],
                      caption=f"every sample that flips ({len(flips)}), and each factor's Shapley share of it (1 = "
                              f"all of a lost sample, -1 = all of a gained one)", folded=len(flips) > 12)
    if att.factors:
        rep.add_heading("Each factor's share (Shapley values: the same in any order of the factors)")
        labels = [f.label for f in att.factors]
        exact = "" if att.exact else " (estimated from random orders: too many factors for exact values)"
        for measure, unit, scale, what in (("accuracy", "points", 100.0, f"{att.metric} lost"),
                                           ("margin", "spikes per sample", 1.0, "output margin lost"),
                                           ("spikes", "of spike F1", 1.0, "spike F1 lost")):
            phi = att.shapley(measure)
            values = [scale * phi[k] for k in att.keys]
            rep.add_figure(waterfall(labels, values, f"{what} per factor{exact}", unit, att.target_label),
                           f"{what} from float to {att.target_label}, split by Shapley value (positive bars lose); "
                           f"the hover gives each factor's own share", data=dict(zip(labels, values)))
        rep.add_table(att.rows(), caption="per factor: Shapley share, the factor alone, leave-one-out (the chip "
                                          "without it) and the interaction (Shapley minus alone)")
    rep.add_heading("Per population")
    pops = att.population_rows()
    if rate_chart:
        rep.add_figure(agreement_bars([r["population"] for r in pops],
                                      [tgt.agreement[p] for p in att.populations], att.target_label, "float",
                                      f"{att.target_label} vs float per population"),
                       "spike F1, recall and precision per population, and both sides' firing rates (counts in "
                       "the hover)", data=pops)
    rep.add_table([dict(r, **{k: percent(r[k]) for k in ("recall", "precision")},
                        **{"mismatch rate": percent(r["mismatch rate"], 2)}) for r in pops],
                  caption="the target against the float run; 'F1 lost: factor': the factor's Shapley share of the "
                          "population's spike F1 lost")
    rep.add_table([{"configuration": c.name, "switched": ", ".join(c.switched) or "-",
                    att.metric: percent(c.accuracy), "spike F1": c.pooled.f1, "recall": percent(c.pooled.recall),
                    "rate ratio": c.pooled.rate_ratio, "mismatching cells": c.total_mismatch,
                    "spikes": c.pooled.spikes_a} for c in att.configs.values()],
                  caption=f"every configuration run ({len(att.configs)})", folded=True)
    truth = "labels given" if att.labels_given else "no labels: agreement with the float prediction"
    if settings:
        rep.add_settings(dict(att.settings, samples=att.n_samples, classes=f"argmax of the spike counts of "
                              f"{att.output!r} (ties to the lowest index)", truth=truth))
    return rep
