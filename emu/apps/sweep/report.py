"""The sweep's answer: the Pareto front of accuracy against memory, the chosen point, a report."""
from __future__ import annotations

from typing import List, Optional, Sequence

from validate.conversion_warnings import warn
from validate.figures import pareto
from validate.paired import PairedAccuracy, paired_accuracy
from validate.report import Report, percent

from .results import latest


def pareto_front(rows: Sequence[dict], acc: str = "accuracy", cost: str = "memory_bytes") -> List[dict]:
    """Non-dominated rows: no other row has accuracy >= and cost <= with one of them strict."""
    ok = [r for r in rows if r.get("status", "ok") == "ok"]
    front = []
    for r in ok:
        dominated = any(o[acc] >= r[acc] and o[cost] <= r[cost] and (o[acc] > r[acc] or o[cost] < r[cost])
                        for o in ok)
        if not dominated:
            front.append(r)
    return sorted(front, key=lambda r: r[cost])


def choose(rows: Sequence[dict], tolerance: float = 0.01) -> Optional[dict]:
    """The cheapest point within ``tolerance`` (absolute accuracy) of the best; ties: higher accuracy."""
    ok = [r for r in rows if r.get("status", "ok") == "ok"]
    if not ok:
        return None
    best = max(r["accuracy"] for r in ok)
    near = [r for r in ok if r["accuracy"] >= best - tolerance - 1e-12]
    return min(near, key=lambda r: (r["memory_bytes"], -r["accuracy"]))


def write_report(rows, path, title="Quantization sweep on the emulated SpiNNaker2", tolerance=0.01, note=""):
    """The sweep's report: the chosen point first, with how many samples separate it from the best;
    the Pareto front (hover names each point, the float-weight accuracy as a line), the front and
    every point as tables (scrollable): accuracy, then spike F1 against the float-weight run."""
    rows = latest(rows)
    front, chosen = pareto_front(rows), choose(rows, tolerance)
    ok = [r for r in rows if r.get("status") == "ok"]
    baseline = ok[0].get("unquantized_accuracy") if ok else None
    rep = Report(title, sweep_finding(ok, chosen, tolerance, baseline, len(rows) - len(ok)))
    if note:
        rep.add_text(note, note=True)
    warn([f"{r['key']}: {line}" for r in rows for line in r.get("warnings", [])], report=rep, say=None)
    best = max(ok, key=lambda r: (r["accuracy"], -r["memory_bytes"])) if ok else None
    if ok:
        rep.add_figure(pareto(rows, front, chosen, "accuracy against chip memory", baseline),
                       "every grid point (hover for its key); the non-dominated ones joined; the chosen one circled; "
                       "dashed: the same network with float weights (float64, chip timing)",
                       data=[{k: r[k] for k in ("key", "accuracy", "memory_bytes")} for r in front])
        rep.add_table([_point_row(r, best) for r in front], caption="Pareto front; 'vs best': samples this point "
                      f"gets wrong and the best point ({best['key']}) right, and the reverse, with the exact McNemar p")
    rep.add_heading("All points")
    rep.add_table([_point_row(r, best) if r.get("status") == "ok" else
                   {"key": r["key"], "status": r.get("status"), "error": r.get("error")} for r in rows],
                  columns=list(_point_row(ok[0], best)) + ["error"] if ok else None,
                  caption="every grid point: accuracy, the spike agreement with the float-weight run (F1 first; a "
                          "silent point reads F1 0), memory, clipped weights and membrane saturations")
    if ok:
        rep.add_settings(ok[0].get("settings") or {}, caption="the sweep's settings (the same for every row)")
    return rep.write(path)


def _point_row(r: dict, best: Optional[dict]) -> dict:
    vs = versus(r, best) if best is not None and r is not best else None
    return {"key": r["key"], "status": r.get("status", "ok"), "accuracy": percent(r["accuracy"]),
            "spike F1": r.get("spike_f1"), "recall": percent(r.get("spike_recall")),
            "rate ratio": r.get("spike_rate_ratio"), "agreement with float weights": percent(r.get("agreement")),
            "vs best (lost / gained)": f"{vs.lost} / {vs.gained}" if vs else None,
            "p vs best": vs.p_value if vs else None, "memory (kB)": r["memory_bytes"] / 1024,
            "clipped weights": r.get("clipped_weights"),
            "membrane saturations": int(sum((r.get("membrane_saturations") or {}).values())),
            "spike mismatch": percent(r.get("spike_mismatch"), 2), "synaptic events": r.get("synaptic_events"),
            "membrane frac bits": r.get("membrane_frac_bits"), "seconds": r.get("seconds")}


def versus(row: dict, other: dict) -> Optional[PairedAccuracy]:
    """``other`` (A) and ``row`` (B) on the same samples, paired: who is right where (``lost``:
    samples ``row`` gets wrong and ``other`` right). None for rows without per-sample results."""
    a, b = other.get("correct"), row.get("correct")
    if a is None or b is None or len(a) != len(b):
        return None
    return paired_accuracy(a, b, [1] * len(a))


def sweep_finding(ok, chosen, tolerance: float, baseline, failed: int) -> str:
    """The sweep's answer in one sentence: the cheapest point within ``tolerance`` of the best, how
    many samples separate the two and whether that is more than chance, and its spike F1."""
    if not chosen:
        return f"No grid point ran ({failed} failed): see the table of all points."
    best = max(ok, key=lambda r: (r["accuracy"], -r["memory_bytes"]))
    biggest = max(r["memory_bytes"] for r in ok)
    best_f1 = "" if chosen is best else f" (best point {best['spike_f1']:.3f})"
    text = (f"{chosen['key']} is the cheapest point within {100 * tolerance:.1f} points of the best accuracy: "
            f"{percent(chosen['accuracy'])} (best {percent(best['accuracy'])}"
            f"{f', float weights {percent(baseline)}' if baseline is not None else ''}) with "
            f"{chosen['memory_bytes'] / 1024:.1f} kB of chip memory, {percent(chosen['memory_bytes'] / biggest)} of the "
            f"largest point; spike F1 {chosen['spike_f1']:.3f} against the float-weight run{best_f1}.")
    return text + _separation(ok, chosen, best, tolerance) + (f" {failed} point(s) failed." if failed else "")


def _separation(ok, chosen, best, tolerance: float) -> str:
    """How sure the choice is: the samples between the chosen and the best point, and between the
    chosen point and the cheaper points the tolerance turned away."""
    n = int(chosen.get("samples") or 0)
    parts = []
    if chosen is not best:
        vs = versus(chosen, best)
        if vs is not None:
            parts.append(f"against the best point ({best['key']}) it differs on {vs.lost + vs.gained} sample(s) "
                         f"(loses {vs.lost}, gains {vs.gained}; exact McNemar p = {vs.p_value:.2g})")
    cheaper = [r for r in ok if r["memory_bytes"] < chosen["memory_bytes"]]
    if cheaper:
        nearest = max(cheaper, key=lambda r: (r["accuracy"], -r["memory_bytes"]))
        vs = versus(nearest, chosen)
        if vs is not None:
            verdict = "not significant" if not vs.significant else "significant"
            parts.append(f"the cheapest point it beats, {nearest['key']} ({percent(nearest['accuracy'])}), "
                         f"differs from it on {vs.lost + vs.gained} sample(s) (p = {vs.p_value:.2g}, {verdict} on "
                         f"{n} samples)")
    if not parts:
        return ""
    vs_best = versus(chosen, best) if chosen is not best else None
    unsure = any("not significant" in p for p in parts) or (vs_best is not None and not vs_best.significant)
    more = f" On {n} samples the accuracies do not separate these points; more samples would." if unsure else ""
    return " Uncertainty: " + "; ".join(parts) + "." + more
