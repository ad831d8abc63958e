"""The sweep's grid of points and its results file (JSON lines, appended, resumable)."""
from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import List, Sequence

import numpy as np

METHODS = ("ptq", "qat")
ROUNDINGS = ("truncate", "nearest", "stochastic")


def grid(weight_bits: Sequence[int], membrane_bits: Sequence[int], roundings: Sequence[str],
         methods: Sequence[str] = ("ptq",)) -> List[dict]:
    return [dict(method=m, weight_bits=int(w), membrane_bits=int(b), rounding=r)
            for m, w, b, r in itertools.product(methods, weight_bits, membrane_bits, roundings)]


def point_key(point: dict) -> str:
    return f"{point['method']}/w{point['weight_bits']}/m{point['membrane_bits']}/{point['rounding']}"


def read_results(path) -> List[dict]:
    """Complete JSON lines of a results file; a torn last line (killed mid-write) is dropped."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def repair(path: Path) -> None:
    """Rewrite the file without a torn last line (temp file + os.replace), so appends start clean."""
    if not path.exists():
        return
    text = path.read_text()
    if not text or text.endswith("\n"):
        return
    rows = read_results(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)


def append_result(path, row: dict) -> None:
    line = json.dumps(row, default=json_default) + "\n"
    with open(path, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def json_default(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serializable: {type(x).__name__}")


def latest(rows: Sequence[dict]) -> List[dict]:
    """One row per key: the ok one if any, else the last error."""
    by = {}
    for r in rows:
        k = r.get("key")
        if k not in by or r.get("status") == "ok" or by[k].get("status") != "ok":
            by[k] = r
    return list(by.values())
