"""Self-contained HTML reports that open with the answer, with the same content as JSON beside them.

Every report starts with its **finding**: one computed sentence that says what was
found (stored as ``finding`` in the JSON beside it), then the numbers that back it
(a short table), then sections for looking closer. Figures are plotly figures:
zoom, pan and hover for (neuron, tick, v); the plotly library is embedded once per
report, so the file works offline and fetches nothing. The JSON holds the blocks
with each figure's caption and the numbers it plots, not the drawing.

Both files are written atomically.
"""
from __future__ import annotations

import functools
import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from emu.phases import phase
from emu.spike_io import atomic_write, dumps_json

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1320px; margin: 1.2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.45em; margin: 0.2em 0 0.5em; }
h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.0em; }
.finding { font-size: 1.2em; line-height: 1.45; background: #f3f7fc; border-left: 5px solid #2a6db0;
           padding: 0.7em 1em; margin: 0.4em 0 1em; }
.note { color: #555; font-size: 0.92em; }
.warning { background: #fff4e5; border-left: 5px solid #e08a00; padding: 0.4em 0.8em; margin: 0.3em 0; }
.scroll { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.55em; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; }
td.text, th.text { text-align: left; }
td.wrap { white-space: normal; overflow-wrap: anywhere; max-width: 70em; }
caption { caption-side: top; text-align: left; color: #555; font-size: 0.92em; padding-bottom: 0.2em; }
.figure { margin: 0.6em 0 1.2em; }
.figure .plot { width: 100%; }
.caption { font-size: 0.9em; color: #555; }
details { margin: 0.6em 0; } summary { cursor: pointer; color: #2a6db0; }
"""

#: plotly options of every figure: no logo, no link to plotly's cloud
_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["sendDataToCloud"]}


#: every figure's look, given once per page to each figure that sets none (applied to each
#: figure in Python instead, plotly copies and checks the whole template, 10-15 ms a figure)
TEMPLATE = "plotly_white"


@functools.lru_cache(maxsize=1)
def _default_template() -> dict:
    """The template plotly gives a figure that names none, as JSON."""
    import plotly.graph_objects as go

    return json.loads(go.Figure().to_json())["layout"].get("template")


@functools.lru_cache(maxsize=1)
def _template() -> dict:
    """:data:`TEMPLATE` as plotly's JSON."""
    import plotly.graph_objects as go

    return json.loads(go.Figure(layout=dict(template=TEMPLATE)).to_json())["layout"]["template"]


def percent(x: Optional[float], digits: int = 1) -> str:
    """A fraction as a percentage string ("n/a" for None or NaN)."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "n/a"
    return f"{100 * x:.{digits}f} %"


def _cell(value: Any) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.4g}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return html.escape(str(value))


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


class Report:
    """An ordered list of blocks (finding, heading, text, table, figure, details) written as HTML plus JSON."""

    def __init__(self, title: str, finding: str = "") -> None:
        self.title = title
        self.finding = finding
        self.warnings: list[str] = []
        self._blocks: list[dict[str, Any]] = []

    # blocks -------------------------------------------------------------------------------
    def add_heading(self, text: str, level: int = 2) -> None:
        if not 1 <= level <= 6:
            raise ValueError(f"heading level must be 1..6, got {level}")
        self._blocks.append({"type": "heading", "text": text, "level": level})

    def add_warning(self, text: str) -> None:
        """A warning, shown right under the finding wherever it is added (and listed in the JSON)."""
        if text not in self.warnings:
            self.warnings.append(text)

    def add_text(self, text: str, note: bool = False) -> None:
        """A paragraph of plain text (escaped in HTML); ``note``: in small grey print."""
        self._blocks.append({"type": "text", "text": text, "note": note})

    def add_table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                  caption: str = "", folded: bool = False) -> None:
        """A table of JSON-able rows; ``columns`` defaults to the keys of the first row;
        ``folded``: in a section the reader opens (the caption is its summary)."""
        columns = list(columns if columns is not None else (rows[0].keys() if rows else []))
        self._blocks.append({"type": "table", "caption": caption, "columns": columns, "folded": folded,
                             "rows": [[r.get(c) for c in columns] for r in rows]})

    def add_settings(self, settings: Mapping[str, Any], caption: str = "settings") -> None:
        """A mapping (nested ones flattened as ``a.b``) as a two-column table, in a folded section."""
        flat: dict[str, Any] = {}

        def walk(prefix, value):
            if isinstance(value, Mapping):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else str(k), v)
            else:
                flat[prefix] = value if isinstance(value, (int, float, str, bool, type(None))) else json.dumps(
                    value, default=str)

        walk("", settings)
        self._blocks.append({"type": "settings", "caption": caption, "items": flat})

    def add_figure(self, figure, caption: str = "", data: Any = None, height: Optional[int] = None) -> None:
        """A plotly figure; ``data`` (JSON-able) are the numbers it shows, for the JSON."""
        spec = json.loads(figure.to_json())
        if spec.get("layout", {}).get("template") == _default_template():
            del spec["layout"]["template"]  # the page's template applies (to_html)
        if height:
            spec.setdefault("layout", {})["height"] = height
        self._blocks.append({"type": "figure", "caption": caption, "data": data, "spec": spec})

    def extend(self, other: "Report", heading: Optional[str] = None) -> None:
        """Append every block of ``other`` under a heading (its title by default) and its finding."""
        self.add_heading(heading or other.title)
        if other.finding:
            self.add_text(other.finding)
        for w in other.warnings:
            self.add_warning(w)
        self._blocks.extend(other._blocks)

    # output -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data (figures as caption and data, without their drawing)."""
        blocks = [{k: v for k, v in b.items() if k != "spec"} for b in self._blocks]
        return {"title": self.title, "finding": self.finding, "warnings": list(self.warnings), "blocks": blocks}

    def to_html(self) -> str:
        """The report as one self-contained HTML page (plotly embedded once, nothing fetched)."""
        from plotly.offline import get_plotlyjs

        parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                 f"<title>{html.escape(self.title)}</title><style>{_CSS}</style>"]
        figures = [b for b in self._blocks if b["type"] == "figure"]
        if figures:
            parts.append(f"<script>{get_plotlyjs()}</script>")
            parts.append(f"<script>var s2emuTemplate={json.dumps(_template())};</script>")
        parts += ["</head><body>", f"<h1>{html.escape(self.title)}</h1>"]
        if self.finding:
            parts.append(f'<p class="finding" id="finding">{html.escape(self.finding)}</p>')
        for w in self.warnings:
            parts.append(f'<p class="warning">Warning: {html.escape(w)}</p>')
        n_fig = 0
        for b in self._blocks:
            kind = b["type"]
            if kind == "heading":
                parts.append(f"<h{b['level']}>{html.escape(b['text'])}</h{b['level']}>")
            elif kind == "text":
                cls = ' class="note"' if b.get("note") else ""
                parts.append(f"<p{cls}>{html.escape(b['text'])}</p>")
            elif kind == "table" and b.get("folded"):
                parts.append(f"<details><summary>{html.escape(b['caption'])}</summary>"
                             f"{self._table_html(dict(b, caption=''))}</details>")
            elif kind == "table":
                parts.append(self._table_html(b))
            elif kind == "settings":
                rows = "".join(f'<tr><th class="text">{html.escape(k)}</th><td class="text wrap">{_cell(v)}</td></tr>'
                               for k, v in b["items"].items())
                parts.append(f"<details><summary>{html.escape(b['caption'])}</summary><div class=\"scroll\">"
                             f"<table><tbody>{rows}</tbody></table></div></details>")
            else:
                n_fig += 1
                div = f"fig{n_fig}"
                spec = json.dumps(b["spec"]).replace("</", "<\\/")
                parts.append(f'<div class="figure"><div class="plot" id="{div}"></div>'
                             f'<div class="caption">{html.escape(b["caption"])}</div></div>'
                             f"<script>(function(){{var s={spec};if(!s.layout.template){{s.layout.template="
                             f"s2emuTemplate;}}Plotly.newPlot('{div}',s.data,s.layout,"
                             f"{json.dumps(_CONFIG)});}})();</script>")
        parts.append("</body></html>")
        return "\n".join(parts)

    @staticmethod
    def _table_html(b: dict) -> str:
        caption = f"<caption>{html.escape(b['caption'])}</caption>" if b["caption"] else ""
        text_cols = [all(_is_text(row[i]) or row[i] is None for row in b["rows"]) and b["rows"]
                     for i in range(len(b["columns"]))]
        cls = [' class="text"' if t else "" for t in text_cols]
        head = "".join(f"<th{c}>{html.escape(str(col))}</th>" for col, c in zip(b["columns"], cls))
        body = "".join("<tr>" + "".join(f"<td{c}>{_cell(v)}</td>" for v, c in zip(row, cls)) + "</tr>"
                       for row in b["rows"])
        return f'<div class="scroll"><table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'

    def write(self, path: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``path`` (HTML) and the JSON beside it (same name, ``.json``); returns both paths."""
        path = Path(path)
        json_path = path.with_suffix(".json")
        if json_path == path:
            raise ValueError(f"{path}: the HTML report needs a name not ending in .json (its JSON goes beside it)")
        with phase("report"):
            atomic_write(path, self.to_html())
            atomic_write(json_path, dumps_json(self.to_dict(), source=str(json_path), indent=1))
        return path, json_path
