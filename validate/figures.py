"""The figures of the reports, as plotly figures: rates before counts, rasters with the
mismatches coloured, membrane traces where two runs part, waterfalls, Pareto fronts.

Every function returns a ``plotly.graph_objects.Figure`` (hover gives neuron, tick
and value; zoom and pan come with plotly). Colours: spikes both runs have in grey,
spikes only A has in red, only B in blue.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from emu.timing import align

BOTH, ONLY_A, ONLY_B = "#8a8a8a", "#d62728", "#1f77b4"
_LEGEND_TOP = dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0)
_MARGIN = dict(l=60, r=20, t=80, b=50)  # the title above the legend, not under it


def _layout(fig: go.Figure, title: str, height: int = 360, **kw) -> go.Figure:
    """Title, size, margins and legend; the look (plotly's template) is the page's
    (:data:`validate.report.TEMPLATE`)."""
    fig.update_layout(title=dict(text=title, x=0, xanchor="left", font=dict(size=14)), height=height,
                      margin=_MARGIN, legend=_LEGEND_TOP, **kw)
    return fig


def sample_bars(samples: Sequence[int], values: Sequence[float], names: Sequence[str], title: str,
                value_label: str = "spike F1") -> go.Figure:
    """One bar per sample (by number), 0..1; the hover names the sample's input."""
    fig = go.Figure(go.Bar(x=[str(s) for s in samples], y=list(values), marker_color="#444444",
                           customdata=list(names),
                           hovertemplate="sample %{x} (%{customdata}): " + value_label + " %{y:.3f}<extra></extra>"))
    fig.update_xaxes(title="sample", type="category")
    fig.update_yaxes(title=value_label, range=[0, 1.05])
    return _layout(fig, title, height=300, showlegend=False)


def raster_overlay(layers: Mapping[str, tuple], label_a: str, label_b: str, title: str,
                   max_points: int = 60_000) -> go.Figure:
    """Two runs' (T, N) rasters of each layer on one plot: spikes both have (grey), only in A (red),
    only in B (blue); a menu selects the layer. A is already aligned to B (tick t pairs with t)."""
    fig = go.Figure()
    buttons = []
    per_layer = []
    for i, (name, (a, b)) in enumerate(layers.items()):
        a, b = np.asarray(a, bool), np.asarray(b, bool)
        traces = []
        for mask, color, label, size in ((a & b, BOTH, "both", 4), (a & ~b, ONLY_A, f"only {label_a}", 6),
                                         (~a & b, ONLY_B, f"only {label_b}", 6)):
            t, n = np.nonzero(mask)
            if t.size > max_points:  # a thinned view; the counts in the legend stay exact
                keep = np.random.default_rng(0).choice(t.size, max_points, replace=False)
                t, n = t[np.sort(keep)], n[np.sort(keep)]
            traces.append(go.Scattergl(x=t, y=n, mode="markers", visible=i == 0,
                                       marker=dict(color=color, size=size, symbol="line-ns-open", line_width=1.5),
                                       name=f"{label} ({int(mask.sum()):,})",
                                       hovertemplate=f"{name}: neuron %{{y}}, tick %{{x}} ({label})<extra></extra>"))
        per_layer.append(len(traces))
        for tr in traces:
            fig.add_trace(tr)
    start = np.cumsum([0] + per_layer)
    for i, name in enumerate(layers):
        visible = [False] * len(fig.data)
        for k in range(start[i], start[i + 1]):
            visible[k] = True
        buttons.append(dict(label=name, method="update", args=[{"visible": visible}]))
    if len(layers) > 1:
        fig.update_layout(updatemenus=[dict(buttons=buttons, direction="down", x=1.0, xanchor="right", y=1.18,
                                            yanchor="top", showactive=True)])
    fig.update_xaxes(title="tick")
    fig.update_yaxes(title="neuron", tickformat="d")
    return _layout(fig, title, height=420)


def voltage_traces(traces: Sequence[Mapping], tick: int, title: str, threshold: Optional[float] = None,
                   window: int = 30, part_tick: Optional[int] = None, near: int = 5) -> go.Figure:
    """Membrane traces of one neuron around ``tick`` (where the spikes part), one line per run:
    each trace a mapping with ``label``, ``v`` (per tick), ``spikes`` (0/1 per tick) and
    ``color``; the threshold as a dashed line, each run's spikes as markers, the spikes'
    parting tick and (``part_tick``) the values' parting tick marked. The y-range shows the
    threshold and the values within ``near`` ticks of the divergence; a button shows the full range."""
    fig = go.Figure()
    length = max(len(t["v"]) for t in traces)
    lo, hi = max(0, tick - window), min(length, tick + window // 2 + 1)
    ticks = np.arange(lo, hi)
    close = []
    for tr in traces:
        v = np.asarray(tr["v"], float)[lo:hi]
        fig.add_trace(go.Scatter(x=ticks[:len(v)], y=v, mode="lines+markers", name=tr["label"],
                                 line=dict(color=tr["color"], shape="hv"), marker=dict(size=4),
                                 hovertemplate=f"{tr['label']}: tick %{{x}}, v %{{y:.6g}}<extra></extra>"))
        first = min(tick, part_tick if part_tick is not None else tick)
        close.append(np.asarray(tr["v"], float)[max(0, first - near):tick + near + 1])
        s = np.flatnonzero(np.asarray(tr["spikes"], bool)[lo:hi])
        if s.size:
            top = np.nanmax(v) if np.isfinite(np.nanmax(v)) else 1.0
            fig.add_trace(go.Scatter(x=ticks[s], y=np.full(s.size, top), mode="markers", showlegend=True,
                                     marker=dict(symbol="triangle-down", size=11, color=tr["color"]),
                                     name=f"{tr['label']} spikes",
                                     hovertemplate=f"{tr['label']} spikes at tick %{{x}}<extra></extra>"))
    if threshold is not None and np.isfinite(threshold):
        fig.add_hline(y=threshold, line_dash="dash", line_color="#444", annotation_text="threshold",
                      annotation_position="top left")
    fig.add_vline(x=tick, line_color="#d62728", line_width=1, annotation_text=f"spikes part: {tick}",
                  annotation_position="top right")
    if part_tick is not None and part_tick != tick:
        fig.add_vline(x=part_tick, line_color="#ff7f0e", line_width=1, line_dash="dot",
                      annotation_text=f"values part: {part_tick}", annotation_position="bottom right")
    values = np.concatenate([c[np.isfinite(c)] for c in close] + [np.array([threshold] if threshold is not None
                                                                           and np.isfinite(threshold) else [])])
    zoom = None
    if values.size:
        low, high = float(values.min()), float(values.max())
        pad = 0.15 * (high - low) if high > low else 0.05 * max(1e-12, abs(high))
        zoom = [low - pad, high + pad]
    fig.update_xaxes(title="tick", tickformat="d")
    fig.update_yaxes(title="membrane", range=zoom)
    if zoom is not None:
        fig.update_layout(updatemenus=[dict(type="buttons", direction="left", x=1.0, xanchor="right", y=1.2,
                                            yanchor="top", showactive=True, buttons=[
                                                dict(label="near the divergence", method="relayout",
                                                     args=[{"yaxis.range": zoom, "yaxis.autorange": False}]),
                                                dict(label="full range", method="relayout",
                                                     args=[{"yaxis.autorange": True}])])])
    return _layout(fig, title, height=400)


def lag_profile(lags: Sequence[int], totals: Sequence[int], best: int, title: str) -> go.Figure:
    """Exact coincidences as a function of lag (lag L: A at t with B at t - L), the best lag marked."""
    colors = [ONLY_A if lag == best else ONLY_B for lag in lags]
    fig = go.Figure(go.Bar(x=list(lags), y=list(totals), marker_color=colors,
                           hovertemplate="lag %{x:+d}: %{y:,} coincidences<extra></extra>"))
    fig.update_xaxes(title="lag L (A lags B by L ticks)", tickformat="+d", dtick=1)
    fig.update_yaxes(title="coincidences", rangemode="tozero")
    return _layout(fig, title, height=300, showlegend=False)


def integer_ticks(top: int, most: int = 6) -> list:
    """At most ``most`` distinct integer ticks from 0 to ``top`` (a colour bar of counts never
    repeats a label)."""
    top = max(1, int(top))
    return sorted({int(round(v)) for v in np.linspace(0, top, min(top, most - 1) + 1)})


def divergence_map(a: np.ndarray, b: np.ndarray, lag: int, title: str, bins: int = 100,
                   max_rows: int = 300, label_a: str = "A") -> go.Figure:
    """Where A (tick t) and B (tick t - lag) differ: mismatches per neuron and time bin. Only
    the neurons that differ get a row (up to ``max_rows``; beyond, neurons are grouped into
    ``max_rows`` equal ranges); a population without mismatches is an empty (white) map."""
    a_part, b_part = align(np.asarray(a, bool), np.asarray(b, bool), lag)
    start = max(0, lag)
    diff = (a_part != b_part).astype(np.int64)
    width = max(1, -(-diff.shape[0] // bins))
    n_bins = max(1, -(-diff.shape[0] // width))
    padded = np.zeros((n_bins * width, diff.shape[1]), np.int64)
    padded[: diff.shape[0]] = diff
    counts = padded.reshape(n_bins, width, -1).sum(axis=1).T  # (neurons, time bins)
    rows = np.flatnonzero(counts.any(axis=1))
    if rows.size <= max_rows:
        z, labels = counts[rows], [str(n) for n in rows]
    else:  # too many to list: equal neuron ranges
        group = -(-counts.shape[0] // max_rows)
        n_groups = -(-counts.shape[0] // group)
        grouped = np.zeros((n_groups * group, counts.shape[1]), np.int64)
        grouped[: counts.shape[0]] = counts
        z = grouped.reshape(n_groups, group, -1).sum(axis=1)
        labels = [f"{g * group}-{min(counts.shape[0], (g + 1) * group) - 1}" for g in range(n_groups)]
    top = int(z.max(initial=0))
    z = z.astype(np.uint16 if top < 2 ** 16 else np.uint32)  # compact in the page
    x = start + np.arange(n_bins) * width
    fig = go.Figure(go.Heatmap(z=z, x=x, y=labels, zmin=0, zmax=max(1, top), colorscale="Reds",
                               colorbar=dict(title=f"mismatches per {width} tick{'s' if width > 1 else ''}",
                                             tickmode="array", tickvals=integer_ticks(top)),
                               hovertemplate="neuron %{y}, ticks %{x}+: %{z} mismatches<extra></extra>"))
    fig.update_xaxes(title=f"tick of {label_a}", tickformat="d")
    fig.update_yaxes(title=f"neuron ({len(rows):,} of {counts.shape[0]:,} differ)", type="category", nticks=40)
    return _layout(fig, title, height=min(600, 160 + max(4, 400 // max(1, len(labels))) * max(1, len(labels))))


def waterfall(labels: Sequence[str], values: Sequence[float], title: str, unit: str, total_label: str) -> go.Figure:
    """Each factor's own share stacked on the running sum from 0, then the total; the hover gives
    the share itself (never the running sum). Values smaller than 1e-9 in magnitude are exactly
    0 (float noise of differences of equal values)."""
    values = [0.0 if abs(v) < 1e-9 else float(v) for v in values]
    total = sum(values)
    fig = go.Figure(go.Waterfall(x=list(labels) + [total_label], y=values + [total],
                                 measure=["relative"] * len(values) + ["total"],
                                 text=[f"{v:+.3g}" for v in values] + [f"{total:+.3g}"], textposition="outside",
                                 customdata=[[v, "share"] for v in values] + [[total, "total"]],
                                 increasing=dict(marker_color=ONLY_A), decreasing=dict(marker_color="#2ca02c"),
                                 totals=dict(marker_color=ONLY_B),
                                 hovertemplate="%{x}: %{customdata[0]:+.4g} " + unit + " (%{customdata[1]})"
                                               "<extra></extra>"))
    span = max([abs(v) for v in np.cumsum(values)] + [abs(v) for v in values] + [0.0])
    fig.update_yaxes(title=unit, range=[-1, 1] if span == 0 else None, zeroline=True)
    fig.update_xaxes(automargin=True)
    return _layout(fig, title, height=380, showlegend=False)


def agreement_bars(names: Sequence[str], agreements: Sequence, label_a: str, label_b: str, title: str) -> go.Figure:
    """Per population, left: spike F1, recall and precision of A against B (0..1); right: both
    sides' firing rates (spikes per neuron per tick). A silent side shows as F1 0 and a rate of 0."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("spike agreement", "firing rate"), horizontal_spacing=0.1)
    names = list(names)
    counts = np.array([[a.matched, a.spikes_a, a.spikes_b] for a in agreements], dtype=np.int64).reshape(-1, 3)
    for what, color, values in (("F1", "#444444", [a.f1 for a in agreements]),
                                ("recall", ONLY_B, [a.recall for a in agreements]),
                                ("precision", ONLY_A, [a.precision for a in agreements])):
        fig.add_trace(go.Bar(x=names, y=[np.nan if v is None else v for v in values], name=what, marker_color=color,
                             text=["n/a" if v is None else f"{v:.2f}" for v in values], textposition="outside",
                             customdata=counts, legendgroup="agreement",
                             hovertemplate=f"%{{x}}: {what} %{{y:.3f}}<br>%{{customdata[0]:,}} spikes matched of "
                                           f"{label_a} %{{customdata[1]:,}} / {label_b} %{{customdata[2]:,}}"
                                           f"<extra></extra>"), row=1, col=1)
    for label, color, key in ((label_a, ONLY_A, "rate_a"), (label_b, ONLY_B, "rate_b")):
        fig.add_trace(go.Bar(x=names, y=[getattr(a, key) for a in agreements], name=f"rate {label}",
                             marker_color=color, opacity=0.6, legendgroup="rate",
                             hovertemplate=f"%{{x}}: {label} %{{y:.4g}} spikes per neuron per tick<extra></extra>"),
                      row=1, col=2)
    fig.update_yaxes(range=[0, 1.15], title="0 (none) .. 1 (identical)", row=1, col=1)
    fig.update_yaxes(title="spikes per neuron per tick", rangemode="tozero", exponentformat="power", row=1, col=2)
    _layout(fig, title, height=360, barmode="group")
    fig.update_layout(legend=dict(orientation="v", yanchor="top", y=1.0, xanchor="left", x=1.01),
                      margin=dict(_MARGIN, r=150))
    return fig


def pareto(rows: Sequence[Mapping], front: Sequence[Mapping], chosen: Optional[Mapping], title: str,
           baseline: Optional[float] = None) -> go.Figure:
    """Accuracy against memory of every sweep point (hover names the point), the Pareto front
    joined, the chosen point circled and the float model's accuracy as a line."""
    ok = [r for r in rows if r.get("status", "ok") == "ok"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[r["memory_bytes"] / 1024 for r in ok], y=[100 * r["accuracy"] for r in ok],
                             mode="markers", marker=dict(color="#9a9a9a", size=8), name="grid points",
                             text=[r["key"] for r in ok],
                             hovertemplate="%{text}<br>%{x:.1f} kB, %{y:.1f} %<extra></extra>"))
    fig.add_trace(go.Scatter(x=[r["memory_bytes"] / 1024 for r in front], y=[100 * r["accuracy"] for r in front],
                             mode="lines+markers", marker=dict(color=ONLY_B, size=9), name="Pareto front",
                             text=[r["key"] for r in front],
                             hovertemplate="%{text}<br>%{x:.1f} kB, %{y:.1f} %<extra></extra>"))
    if chosen:
        fig.add_trace(go.Scatter(x=[chosen["memory_bytes"] / 1024], y=[100 * chosen["accuracy"]], mode="markers",
                                 marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(color=ONLY_A, width=2.5)),
                                 name=f"chosen: {chosen['key']}", hoverinfo="skip"))
    if baseline is not None:
        fig.add_hline(y=100 * baseline, line_dash="dash", line_color="#2ca02c",
                      annotation_text=f"float model {100 * baseline:.1f} %", annotation_position="bottom right")
    fig.update_xaxes(title="memory on the chip (synapses + state, all PEs), kB")
    fig.update_yaxes(title="accuracy, %")
    return _layout(fig, title, height=420)


def option_values(per_value: Mapping[str, Mapping[str, Mapping]], chosen: Mapping[str, object], title: str,
                  by_voltage: bool = False) -> go.Figure:
    """Per option, each value's distance from the recording with every other option at the chosen
    profile: the largest voltage error in units of the threshold (``by_voltage``, log scale; the
    mismatching cells as labels) or the mismatching cells. Grey: reproduces the recording, red:
    does not; the chosen value outlined."""
    fig = go.Figure()
    for option, rows in per_value.items():
        names = [f"{option}={value}" for value in rows]
        cells = [r["mismatching_cells"] for r in rows.values()]
        errors = [r["max_v_error"] for r in rows.values()]
        y = [max(e, 1e-17) for e in errors] if by_voltage else [max(c, 0.5) for c in cells]
        fig.add_trace(go.Bar(x=names, y=y, customdata=np.c_[cells, errors],
                             text=[f"{c:,}" if c else "" for c in cells] if by_voltage else None,
                             textposition="outside",
                             marker=dict(color=[BOTH if r["exact"] else ONLY_A for r in rows.values()],
                                         line=dict(color="#222", width=[2.5 if str(chosen.get(option)) == value
                                                                        else 0 for value in rows])),
                             name=option, showlegend=False,
                             hovertemplate="%{x}: %{customdata[0]:,} mismatching cells, voltage error "
                                           "%{customdata[1]:.2e} of the threshold<extra></extra>"))
    fig.update_yaxes(type="log", exponentformat="power", title="voltage error / threshold" if by_voltage
                     else "mismatching cells (0 shown as 0.5)")
    fig.update_xaxes(tickangle=-35, automargin=True)
    return _layout(fig, title, height=440)
