"""The sweep's answer: the Pareto front of accuracy against memory, the chosen point, a report."""
from __future__ import annotations

import json
from typing import List, Optional, Sequence

from validate.conversion_warnings import warn
from validate.figures import pareto
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
    """The sweep's report: the chosen point first, the Pareto front (hover names each point, the
    float-weight accuracy as a line), the front and every point as tables (scrollable)."""
    rows = latest(rows)
    front, chosen = pareto_front(rows), choose(rows, tolerance)
    ok = [r for r in rows if r.get("status") == "ok"]
    baseline = ok[0].get("unquantized_accuracy") if ok else None
    rep = Report(title, sweep_finding(ok, chosen, tolerance, baseline, len(rows) - len(ok)))
    if note:
        rep.add_text(note, note=True)
    warn([f"{r['key']}: {line}" for r in rows for line in r.get("warnings", [])], report=rep, say=None)
    if ok:
        rep.add_figure(pareto(rows, front, chosen, "accuracy against chip memory", baseline),
                       "every grid point (hover for its key); the non-dominated ones joined; the chosen one circled; "
                       "dashed: the same network with float weights (float64, chip timing)",
                       data=[{k: r[k] for k in ("key", "accuracy", "memory_bytes")} for r in front])
        rep.add_table([{"key": r["key"], "accuracy": percent(r["accuracy"]), "memory (kB)": r["memory_bytes"] / 1024,
                        "spike mismatch": percent(r["spike_mismatch"], 2)} for r in front], caption="Pareto front")
    cols = ("key", "status", "accuracy", "agreement", "spike_mismatch", "memory_bytes", "synaptic_events",
            "clipped_weights", "membrane_frac_bits", "seconds", "error")
    rep.add_heading("All points")
    rep.add_table([{c: (json.dumps(r.get(c)) if isinstance(r.get(c), dict) else r.get(c)) for c in cols}
                   for r in rows])
    if ok:
        rep.add_settings(ok[0].get("settings") or {}, caption="the sweep's settings (the same for every row)")
    return rep.write(path)


def sweep_finding(ok, chosen, tolerance: float, baseline, failed: int) -> str:
    """The sweep's answer in one sentence: the cheapest point within ``tolerance`` of the best."""
    if not chosen:
        return f"No grid point ran ({failed} failed): see the table of all points."
    best = max(r["accuracy"] for r in ok)
    biggest = max(r["memory_bytes"] for r in ok)
    text = (f"{chosen['key']} is the cheapest point within {100 * tolerance:.1f} points of the best accuracy: "
            f"{percent(chosen['accuracy'])} (best {percent(best)}"
            f"{f', float weights {percent(baseline)}' if baseline is not None else ''}) with "
            f"{chosen['memory_bytes'] / 1024:.1f} kB of chip memory, {percent(chosen['memory_bytes'] / biggest)} of the "
            f"largest point.")
    return text + (f" {failed} point(s) failed." if failed else "")
