"""Self-contained HTML reports, with the same content as JSON beside them.

A :class:`Report` collects headings, text, tables and matplotlib figures and writes
one HTML file (figures embedded as base64 PNG, inline CSS, no external assets) and
a ``.json`` file of the same blocks next to it (figures there carry their caption
and the numbers they plot, not the image). Both writes are atomic.

The figure functions below each return a :class:`matplotlib.figure.Figure` drawn
with the Agg canvas; they never touch pyplot's global state.
"""
from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .metrics import aligned
from emu.spike_io import atomic_write, dumps_json

MATCH_COLOR = "0.15"
MISMATCH_COLOR = "tab:red"


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _shifted(x: np.ndarray, lag: int) -> np.ndarray:
    """``y[t] = x[t - lag]``, False where ``t - lag`` is outside the recording."""
    y = np.zeros_like(x)
    t = x.shape[0]
    if abs(lag) < t:
        if lag >= 0:
            y[lag:] = x[: t - lag]
        else:
            y[: t + lag] = x[-lag:]
    return y


def raster_figure(
    a: np.ndarray, b: np.ndarray, label_a: str = "A", label_b: str = "B", lag: int = 0, title: str = ""
) -> Figure:
    """A's and B's (T, N) rasters side by side; spikes without a partner at ``lag`` in red.

    A spike of A at ``t`` has a partner when B spikes at ``t - lag`` (lag convention of
    :mod:`validate.metrics`), and the other way round for B's spikes.
    """
    matched_a = a & _shifted(b, lag)
    matched_b = b & _shifted(a, -lag)
    fig = _figure(11, 4)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, raster, matched, label in ((axes[0], a, matched_a, label_a), (axes[1], b, matched_b, label_b)):
        for mask, color, size in ((raster & matched, MATCH_COLOR, 12), (raster & ~matched, MISMATCH_COLOR, 18)):
            t, n = np.nonzero(mask)
            ax.scatter(t, n, s=size, marker="|", color=color, linewidths=1)
        ax.set_title(f"{label}: {int(raster.sum())} spikes, {int((raster & ~matched).sum())} unmatched")
        ax.set_xlabel("tick")
        ax.set_xlim(-0.5, raster.shape[0] - 0.5)
        ax.set_ylim(-0.5, raster.shape[1] - 0.5)
    axes[0].set_ylabel("neuron")
    fig.suptitle(title or f"spike rasters (red: no partner at lag {lag:+d})")
    return fig


def mismatch_bars(
    populations: Sequence[str],
    count_a: Sequence[int],
    count_b: Sequence[int],
    mismatches: Sequence[int],
    label_a: str = "A",
    label_b: str = "B",
) -> Figure:
    """Per population: spike counts of A and B and the number of mismatching (tick, neuron) cells."""
    x = np.arange(len(populations))
    width = 0.27
    fig = _figure(max(5, 1.3 * len(populations) + 2), 3.5)
    ax = fig.subplots()
    ax.bar(x - width, count_a, width, label=f"spikes {label_a}", color="tab:blue")
    ax.bar(x, count_b, width, label=f"spikes {label_b}", color="tab:green")
    ax.bar(x + width, mismatches, width, label="mismatches", color=MISMATCH_COLOR)
    ax.set_xticks(x, populations)
    ax.set_ylabel("count")
    ax.legend()
    ax.set_title("spikes and mismatches per population")
    return fig


def lag_figure(lags: Sequence[int], totals: Sequence[int], best: int | None = None) -> Figure:
    """Exact coincidences as a function of lag (lag L: A at t with B at t - L), best lag marked."""
    fig = _figure(6, 3.5)
    ax = fig.subplots()
    ax.bar(lags, totals, color="tab:blue")
    if best is not None:
        ax.bar([best], [totals[list(lags).index(best)]], color="tab:orange", label=f"best lag {best:+d}")
        ax.legend()
    ax.set_xlabel("lag L (A lags B by L ticks)")
    ax.set_ylabel("coincidences")
    ax.set_xticks(list(lags))
    ax.set_title("coincidences by lag")
    return fig


def divergence_heatmap(a: np.ndarray, b: np.ndarray, bin_ticks: int | None = None, lag: int = 0) -> Figure:
    """Neuron x time-bin counts of ``|A[t] - B[t - lag]|`` (only ticks where both exist).

    ``bin_ticks`` defaults to about T / 100 ticks per bin.
    """
    t_len, n = a.shape
    a_part, b_part, start = aligned(a, b, lag)
    diff = a_part != b_part
    bin_ticks = bin_ticks or max(1, t_len // 100)
    n_bins = max(1, -(-diff.shape[0] // bin_ticks))
    padded = np.zeros((n_bins * bin_ticks, n), dtype=np.int64)
    padded[: diff.shape[0]] = diff
    counts = padded.reshape(n_bins, bin_ticks, n).sum(axis=1).T
    fig = _figure(10, max(3, min(8, 0.08 * n + 2)))
    ax = fig.subplots()
    image = ax.imshow(
        counts,
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        cmap="Reds",
        extent=(start - 0.5, start + n_bins * bin_ticks - 0.5, -0.5, n - 0.5),
    )
    fig.colorbar(image, ax=ax, label=f"mismatches per {bin_ticks} ticks")
    ax.set_xlabel("tick (of A)")
    ax.set_ylabel("neuron")
    ax.set_title(f"where A and B differ (lag {lag:+d})")
    return fig


def waterfall_chart(
    factors: Sequence[str], values: Sequence[float], title: str = "", total_label: str = "total"
) -> Figure:
    """A waterfall: each factor's value stacked on the running sum from 0, then the total bar.

    For gap attribution (e.g. how much of an accuracy gap each modelling difference explains).
    """
    if len(factors) != len(values):
        raise ValueError(f"{len(factors)} factors but {len(values)} values")
    values = np.asarray(values, dtype=np.float64)
    ends = np.cumsum(values)
    starts = ends - values
    fig = _figure(max(5, 0.9 * len(factors) + 2.5), 3.8)
    ax = fig.subplots()
    x = np.arange(len(factors) + 1)
    colors = ["tab:green" if v >= 0 else MISMATCH_COLOR for v in values] + ["tab:blue"]
    heights = np.append(values, ends[-1] if values.size else 0.0)
    bottoms = np.append(starts, 0.0)
    ax.bar(x, heights, bottom=bottoms, color=colors)
    for xi, top, value in zip(x, bottoms + heights, heights):
        ax.annotate(f"{value:+.3g}", (xi, top), ha="center", va="bottom" if value >= 0 else "top", fontsize=8)
    ax.axhline(0, color="0.5", linewidth=0.8)
    ax.use_sticky_edges = False  # bar bases would pin the y limits to the bars
    ax.margins(y=0.12)
    ax.set_xticks(x, list(factors) + [total_label], rotation=30, ha="right")
    ax.set_title(title or "waterfall")
    return fig


def _png_base64(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _cell(value: Any) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


_CSS = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f0f0f0; }
figure { margin: 1em 0; }
figcaption { font-size: 0.9em; color: #555; }
img { max-width: 100%; }
"""


class Report:
    """An ordered list of blocks (heading, text, table, figure) written as HTML plus JSON."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._blocks: list[dict[str, Any]] = []

    def add_heading(self, text: str, level: int = 2) -> None:
        """A heading, ``level`` 1 to 6."""
        if not 1 <= level <= 6:
            raise ValueError(f"heading level must be 1..6, got {level}")
        self._blocks.append({"type": "heading", "text": text, "level": level})

    def add_text(self, text: str) -> None:
        """A paragraph of plain text (escaped in HTML)."""
        self._blocks.append({"type": "text", "text": text})

    def add_table(
        self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, caption: str = ""
    ) -> None:
        """A table of JSON-able rows; ``columns`` defaults to the keys of the first row."""
        columns = list(columns if columns is not None else (rows[0].keys() if rows else []))
        self._blocks.append(
            {"type": "table", "caption": caption, "columns": columns, "rows": [[r.get(c) for c in columns] for r in rows]}
        )

    def add_figure(self, fig: Figure, caption: str = "", data: Any = None) -> None:
        """A figure, rendered to PNG now; ``data`` (JSON-able) are the numbers it shows, for the JSON."""
        self._blocks.append({"type": "figure", "caption": caption, "data": data, "png": _png_base64(fig)})

    def extend(self, other: "Report") -> None:
        """Append every block of ``other`` (its title becomes a heading)."""
        self.add_heading(other.title)
        self._blocks.extend(other._blocks)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data (figures without their image)."""
        blocks = [{k: v for k, v in b.items() if k != "png"} for b in self._blocks]
        return {"title": self.title, "blocks": blocks}

    def to_html(self) -> str:
        """The report as one self-contained HTML page."""
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        for b in self._blocks:
            if b["type"] == "heading":
                parts.append(f"<h{b['level']}>{html.escape(b['text'])}</h{b['level']}>")
            elif b["type"] == "text":
                parts.append(f"<p>{html.escape(b['text'])}</p>")
            elif b["type"] == "table":
                caption = f"<caption>{html.escape(b['caption'])}</caption>" if b["caption"] else ""
                head = "".join(f"<th>{html.escape(str(c))}</th>" for c in b["columns"])
                body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in b["rows"])
                parts.append(f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            else:
                alt = html.escape(b["caption"] or "figure", quote=True)
                parts.append(
                    f'<figure><img alt="{alt}" src="data:image/png;base64,{b["png"]}">'
                    f"<figcaption>{html.escape(b['caption'])}</figcaption></figure>"
                )
        parts.append("</body></html>")
        return "\n".join(parts)

    def write(self, path: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``path`` (HTML) and the JSON beside it (same name, ``.json``); returns both paths."""
        path = Path(path)
        json_path = path.with_suffix(".json")
        if json_path == path:
            raise ValueError(f"{path}: the HTML report needs a name not ending in .json (its JSON goes beside it)")
        atomic_write(path, self.to_html())
        atomic_write(json_path, dumps_json(self.to_dict(), source=str(json_path), indent=1))
        return path, json_path
