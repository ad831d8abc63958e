"""The sweep's answer: the Pareto front of accuracy against memory, the chosen point, a report."""
from __future__ import annotations

import json
from typing import List, Optional, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from validate.report import Report

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


def pareto_figure(rows, front, chosen):
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ok = [r for r in rows if r.get("status") == "ok"]
    ax.scatter([r["memory_bytes"] / 1024 for r in ok], [r["accuracy"] for r in ok], c="0.6", label="grid points")
    ax.plot([r["memory_bytes"] / 1024 for r in front], [r["accuracy"] for r in front], "o-", c="tab:blue",
            label="Pareto front")
    if chosen:
        ax.scatter([chosen["memory_bytes"] / 1024], [chosen["accuracy"]], s=160, facecolors="none",
                   edgecolors="tab:red", linewidths=2, label=f"chosen: {chosen['key']}")
    for r in front:
        ax.annotate(r["key"].split("/", 1)[1], (r["memory_bytes"] / 1024, r["accuracy"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("memory (weights + neuron state), kB")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    return fig


def write_report(rows, path, title="Quantization sweep on the emulated SpiNNaker2", tolerance=0.01, note=""):
    rows = latest(rows)
    front, chosen = pareto_front(rows), choose(rows, tolerance)
    rep = Report(title)
    if note:
        rep.add_text(note)
    if chosen:
        rep.add_text(f"Chosen point (cheapest within {tolerance:.0%} of the best accuracy): {chosen['key']}, "
                     f"accuracy {chosen['accuracy']:.3f}, memory {chosen['memory_bytes']} B.")
    cols = ("key", "status", "accuracy", "agreement", "spike_mismatch", "memory_bytes", "weight_bytes",
            "state_bytes", "synaptic_events", "clipped_weights", "membrane_frac_bits", "seconds", "error")
    table = [{c: (json.dumps(r.get(c)) if isinstance(r.get(c), dict) else r.get(c)) for c in cols} for r in rows]
    rep.add_heading("Pareto front (accuracy vs memory)")
    rep.add_figure(pareto_figure(rows, front, chosen), caption="accuracy vs memory; non-dominated points joined",
                   data=[{k: r[k] for k in ("key", "accuracy", "memory_bytes")} for r in front])
    rep.add_table([{c: r.get(c) for c in ("key", "accuracy", "memory_bytes", "spike_mismatch")} for r in front],
                  caption="Pareto front")
    rep.add_heading("All points")
    rep.add_table(table)
    return rep.write(path)
