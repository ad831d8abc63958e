"""The sweep's grid of points and its results file (JSON lines, appended, resumable).

Every row carries the sweep's ``settings`` (format version, model and data hashes, ticks,
conversion options, fraction bits, output population, seed, the qat recipe) and their
``settings_key``. A resume reuses a row only when its settings are the ones asked for;
a file made with other settings is refused with the differences, never mixed.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import List, Mapping, Sequence

import numpy as np

from emu.errors import UserError
from emu.outputs import atomic_write
from emu.schema import SWEEP_ROW, check_file

FORMAT = "s2emu-sweep"
VERSION = 2  # 2: rows carry the spike agreement (F1 first) and each sample's prediction

METHODS = ("ptq", "qat")
ROUNDINGS = ("truncate", "nearest", "stochastic")


def grid(weight_bits: Sequence[int], membrane_bits: Sequence[int], roundings: Sequence[str],
         methods: Sequence[str] = ("ptq",)) -> List[dict]:
    return [dict(method=m, weight_bits=int(w), membrane_bits=int(b), rounding=r)
            for m, w, b, r in itertools.product(methods, weight_bits, membrane_bits, roundings)]


def point_key(point: dict) -> str:
    return f"{point['method']}/w{point['weight_bits']}/m{point['membrane_bits']}/{point['rounding']}"


def read_results(path) -> List[dict]:
    """The rows of a results file, each checked against :data:`emu.schema.SWEEP_ROW`; a torn last
    line (a process killed mid-write) is dropped; any other line that is not a row is a
    :class:`ResultsFileError` naming the file and line."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResultsFileError(f"{path}: not a sweep results file (JSON lines): not UTF-8 text at byte "
                               f"{exc.start}") from None
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    lines = text.splitlines()
    torn = bool(text) and not text.endswith("\n")
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            if torn and i == len(lines):
                continue
            raise ResultsFileError(f"{path}: line {i}: not a JSON row of a sweep results file") from None
        check_file(row, SWEEP_ROW, f"{path}: line {i}", ResultsFileError)
        out.append(row)
    return out


def repair(path: Path) -> None:
    """Rewrite the file without a torn last line (temp file + os.replace), so appends start clean."""
    if not path.exists():
        return
    text = path.read_bytes()
    if not text or text.endswith(b"\n"):
        return
    rows = read_results(path)
    atomic_write(path, "".join(json.dumps(r, default=json_default) + "\n" for r in rows))


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


class ResultsMismatch(UserError):
    """A results file made with other settings than a resume asks for (the message lists them)."""


class ResultsFileError(UserError):
    """A results file that is not one (binary, not JSON lines, a row of the wrong shape)."""


def digest(*arrays) -> str:
    """sha256 of arrays' shapes, dtypes and bytes."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def settings_key(settings: Mapping) -> str:
    """A short hash of the settings (canonical JSON)."""
    text = json.dumps(settings, sort_keys=True, default=json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_resume(rows: Sequence[dict], settings: Mapping, out) -> None:
    """Refuse a results file whose rows were made with other ``settings`` (or another format)."""
    key = settings_key(settings)
    for r in rows:
        if r.get("settings_key") == key:
            continue
        theirs = r.get("settings") or {}
        if theirs.get("format") != FORMAT or theirs.get("version") != VERSION:
            raise ResultsMismatch(f"{out}: row {r.get('key')!r} was not written by this version of s2emu sweep "
                                  f"(format {theirs.get('format')!r} version {theirs.get('version')!r}); use another "
                                  f"--out")
        a, b = _flat(theirs), _flat(settings)
        differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        what = "; ".join(f"{k}: {_short(a.get(k))} there, {_short(b.get(k))} now" for k in differ)
        raise ResultsMismatch(f"{out} holds results made with other settings ({what}); use another --out, or delete "
                              f"it to start afresh")


def _flat(settings: Mapping, prefix: str = "") -> dict:
    """Nested settings as ``{"options.dt": ..., ...}``, so a difference names the field."""
    out = {}
    for k, v in settings.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True, default=json_default)
    return text if len(text) <= 60 else text[:57] + "..."
