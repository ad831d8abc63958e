"""Snapshot tests of a model on the emulated chip: spikes stored beside the test, compared on every run.

A snapshot is a spike recording in the project's versioned format (``.npz``, written by
:func:`emu.spike_io.save_recording`) whose ``meta["snapshot"]`` holds what it was made
from: a digest of every NIR node field, of every input population, the settings
(conversion options and semantics profile) and the package version. On a mismatch the
failure names what changed since (model nodes, settings fields, or nothing: then the
toolchain changed what the chip does). Where snapshots live: :mod:`emu.testing.snapshot_paths`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import nir
import numpy as np

from emu.errors import UserError
from emu.schema import SNAPSHOT, check
from emu.spike_io import load_recording, save_recording
from emu.spikes import Recording

from .matching import Tolerance, mismatch_message, spike_matches
from .runs import ProfileLike, check_keywords, chip_run
from .snapshot_paths import SnapshotSession, snapshot_path

#: the flag that writes or refreshes snapshots (not --snapshot-update: syrupy and
#: pytest-snapshot own that one)
UPDATE_FLAG = "--s2emu-snapshot-update"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _value_digest(value: Any) -> str:
    if isinstance(value, np.ndarray) or np.isscalar(value):
        arr = np.ascontiguousarray(value)
        return _digest(str(arr.dtype).encode() + str(arr.shape).encode() + arr.tobytes())
    if isinstance(value, dict):
        return _digest(json.dumps({k: _value_digest(v) for k, v in sorted(value.items())}).encode())
    return _digest(repr(value).encode())


def model_digests(graph: nir.NIRGraph) -> Dict[str, str]:
    """``node.field`` -> digest for every field of every node, and ``edges``."""
    out = {}
    for name in sorted(graph.nodes):
        node = graph.nodes[name]
        out[f"{name}.type"] = _digest(type(node).__name__.encode())
        for f in dataclasses.fields(node):
            out[f"{name}.{f.name}"] = _value_digest(getattr(node, f.name))
    out["edges"] = _digest(repr(sorted(map(tuple, graph.edges))).encode())
    return out


def input_digests(rasters: Dict[str, np.ndarray]) -> Dict[str, str]:
    return {n: _value_digest(np.packbits(r, axis=-1)) + f"/{r.shape}" for n, r in rasters.items()}


def _package_version() -> str:
    try:
        return version("spinnaker2-emu")
    except PackageNotFoundError:
        return "unknown"


def _changes(old: Dict[str, Any], new: Dict[str, Any]) -> list:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k) != new.get(k)]


SNAPSHOT_KEYWORDS = ("dt", "profile", "name")


class ChipSnapshot:
    """The ``chip_snapshot`` fixture: call it with a model and inputs (module doc).

    ``test_id``: the test's classes and name as pytest gives them (a str: a test outside any
    class); ``nodeid``: its full id (for the command that writes the snapshot); ``session``:
    the pytest session's record of which test takes which snapshot."""

    def __init__(self, test_file: Path, test_id: Union[str, Sequence[str]], nodeid: str, update: bool,
                 session: Optional[SnapshotSession] = None):
        self.test_file, self.test_id, self.nodeid, self.update = Path(test_file), test_id, nodeid, update
        self.session = session if session is not None else SnapshotSession()
        self._used: set = set()

    def __call__(self, model, inputs, *, dt: Optional[float] = None, profile: ProfileLike = "chip",
                 name: Optional[str] = None, **conversion) -> Recording:
        """Run ``model`` (a NIR graph or its path) on ``inputs`` on the emulated chip and compare
        its spikes with the stored snapshot (or, with ``--s2emu-snapshot-update``, store them).
        ``name`` tells several snapshots of one test apart; ``conversion``: as
        :func:`emu.testing.run_chip` (an unknown keyword is a ``TypeError``). Returns the run."""
        __tracebackhide__ = True  # pytest shows the message, not this function
        check_keywords("chip_snapshot", conversion, SNAPSHOT_KEYWORDS)
        path = snapshot_path(self.test_file, self.test_id, name)
        if path in self._used:
            raise ValueError(f"{path.name}: this test already took that snapshot: give each call its own name=")
        self.session.take(path, self.nodeid)
        self._used.add(path)
        made = chip_run(model, inputs, dt, profile, **conversion)
        graph, settings, rasters, run = made.graph, made.settings, made.rasters, made.run
        made_from = dict(model=model_digests(graph), inputs=input_digests(rasters),
                         settings=json.loads(json.dumps(dict(conversion=dataclasses.asdict(settings.conversion),
                                                             profile=dataclasses.asdict(settings.profile)),
                                                        default=str)),
                         version=_package_version())
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            record = Recording(run.shapes, run.ticks, run.neurons, run.tick_end, {}, dict(snapshot=made_from),
                               str(path))
            save_recording(record, path)
            return run
        if not path.exists():
            raise AssertionError(f"no chip snapshot at {path}: create it with  pytest {self.nodeid} {UPDATE_FLAG}")
        stored, old = self._load(path)
        changed_inputs = _changes(old["inputs"], made_from["inputs"])
        if changed_inputs:
            raise AssertionError(f"{path.name}: the snapshot was taken on other inputs (population(s) "
                                 f"{', '.join(changed_inputs)} differ): update it with {UPDATE_FLAG} if that is "
                                 f"intended")
        try:
            matches = spike_matches(run, stored)
        except AssertionError as exc:  # other ticks or populations
            raise AssertionError(f"{path.name}: the chip's run changed shape: {exc}.\n"
                                 + self._what_changed(old, made_from)) from None
        exact = Tolerance.of()
        if any(exact.broken(m.agreement) for m in matches):
            raise AssertionError(f"{path.name}: the chip's spikes changed. "
                                 + mismatch_message(matches, run, stored, exact, made.network) + "\n"
                                 + self._what_changed(old, made_from))
        return run

    def _load(self, path: Path):
        """The stored run and what it was made from, or a failure that says how to re-create it."""
        __tracebackhide__ = True
        redo = f"re-create it with  pytest {self.nodeid} {UPDATE_FLAG}"
        try:
            stored = load_recording(path)
        except (UserError, OSError) as exc:
            raise AssertionError(f"{path}: the chip snapshot cannot be read ({exc}): {redo}") from None
        old = stored.meta.get("snapshot")
        if not isinstance(old, dict) or not all(isinstance(old.get(k), dict) for k in ("model", "inputs", "settings")):
            raise AssertionError(f"{path}: not a chip snapshot (its meta has no snapshot record of model, inputs and "
                                 f"settings): {redo}")
        try:
            check(old, SNAPSHOT.body, str(path), "meta.snapshot")  # its fields' types (emu.schema)
        except UserError as exc:
            raise AssertionError(f"{exc}: {redo}") from None
        return stored, old

    @staticmethod
    def _what_changed(old: Dict[str, Any], new: Dict[str, Any]) -> str:
        model = _changes(old.get("model", {}), new["model"])
        settings = []
        for part in ("conversion", "profile"):
            before, after = old.get("settings", {}).get(part, {}), new["settings"][part]
            settings += [f"{part}.{k} {before.get(k)!r} -> {after.get(k)!r}" for k in _changes(before, after)]
        said = []
        if model:
            said.append(f"model fields changed since the snapshot: {', '.join(model[:12])}"
                        + (f" (+{len(model) - 12} more)" if len(model) > 12 else ""))
        if settings:
            said.append("settings changed: " + "; ".join(settings))
        if not said:
            said.append(f"model, inputs and settings are those of the snapshot: the toolchain changed what the chip "
                        f"does (spinnaker2-emu {old.get('version')} -> {new['version']})")
        return "What changed: " + ". ".join(said) + f". If intended, update with {UPDATE_FLAG}."
