"""Spike recordings: one data type, and readers and writers for the layouts a run gives back.

A :class:`Recording` holds, per population, a (T, N) boolean spike raster (tick x
neuron) and optionally a (T, N) float voltage trace. :func:`load_recording` reads:

* **JSON, emulator layout**::

      {"populations": {NAME: {"size": N,                     # optional
                              "spikes": {"0": [ticks...], ...},
                              "v": {"0": [one value per tick], ...}}},   # optional
       "meta": {"ticks": T, ...}}                                        # optional

  A voltage value ``null`` stands for "not recorded" (NaN).
* **py-spinnaker2 spike dicts**, from JSON or pickle: ``{neuron: [ticks]}`` (one
  population without a name) or ``{population: {neuron: [ticks]}}``. In JSON the
  neuron keys are strings (``"3"``); in pickles they may be ints. A pickle may
  also hold the emulator layout above as a dict, or a (T, N) raster array.
* **NPZ**, the layout :func:`save_recording` writes: an array ``<pop>/spikes``
  ((T, N) 0/1 raster) per population, optionally ``<pop>/v`` ((T, N) float, NaN
  where not recorded), and optionally ``meta`` (a 0-d string holding JSON).
* **NPY**: one plain (T, N) 0/1 raster (bool, int or float 0.0/1.0), such as the
  braille recordings in ``shared/golden/``.

Sources that carry no population name (a flat ``{neuron: [ticks]}`` dict, a raster)
give one population called :data:`UNNAMED`, unless ``population=`` names it.

The number of ticks T comes from ``ticks=``, else from the meta (``ticks``,
``n_ticks`` or ``run_ticks``), else from the largest tick + 1 (and the longest
voltage trace). The number of neurons N comes from ``sizes=``, else from the
population's ``size``, else from the largest neuron index + 1.

Every problem raises :class:`RecordingError` with a message that starts with the
file name and names the offending field. Pickle files run code when loaded:
read only pickles you trust.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emu.io import atomic_write  # noqa: F401  (re-exported: one atomic writer for the project)

UNNAMED = "unnamed"
"""Population name given to sources without one (a raster, a flat spike dict)."""

TICK_META_KEYS = ("ticks", "n_ticks", "run_ticks")
"""Meta keys that give the number of ticks, in order of preference."""

SPIKES_SUFFIX = "/spikes"
VOLTAGE_SUFFIX = "/v"
META_ARRAY = "meta"

_JSON_SUFFIXES = (".json",)
_NPZ_SUFFIXES = (".npz",)
_NPY_SUFFIXES = (".npy",)
_PICKLE_SUFFIXES = (".pkl", ".pickle")
_EMULATOR_KEYS = ("populations", "meta")
_POPULATION_KEYS = ("size", "spikes", "v")


class RecordingError(ValueError):
    """A recording cannot be read or is inconsistent; the message names the file and the field."""


@dataclass
class Recording:
    """Spikes (and optionally voltages) of one run, per population.

    ``spikes``: population name -> (T, N) bool raster, the same T for every
    population. ``v``: population name -> (T, N) float64 voltages (NaN where not
    recorded), only for populations whose voltages were recorded. ``meta``: free
    JSON-able information about the run. ``source``: the file it came from (used
    in error messages). Rasters given as 0/1 numbers are converted to bool.
    """

    spikes: dict[str, np.ndarray]
    v: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    source: str = "<memory>"

    def __post_init__(self) -> None:
        if not self.spikes:
            raise RecordingError(f"{self.source}: empty recording: no populations")
        self.spikes = {
            name: as_raster(r, f"{self.source}: population {name!r} spikes") for name, r in self.spikes.items()
        }
        lengths = {name: r.shape[0] for name, r in self.spikes.items()}
        if len(set(lengths.values())) > 1:
            raise RecordingError(f"{self.source}: populations have different numbers of ticks: {lengths}")
        voltages = {}
        for name, v in self.v.items():
            if name not in self.spikes:
                raise RecordingError(f"{self.source}: v: population {name!r} has voltages but no spikes entry")
            arr = np.asarray(v, dtype=np.float64)
            if arr.shape != self.spikes[name].shape:
                raise RecordingError(
                    f"{self.source}: population {name!r} v: shape {arr.shape}, "
                    f"expected {self.spikes[name].shape} like its spikes"
                )
            voltages[name] = arr
        self.v = voltages

    @property
    def ticks(self) -> int:
        """Number of ticks T (rows of every raster)."""
        return next(iter(self.spikes.values())).shape[0]

    @property
    def populations(self) -> list[str]:
        """Population names, in stored order."""
        return list(self.spikes)

    @property
    def sizes(self) -> dict[str, int]:
        """Population name -> number of neurons N."""
        return {name: r.shape[1] for name, r in self.spikes.items()}

    @property
    def unnamed(self) -> bool:
        """True for a single population that came without a name (see :data:`UNNAMED`)."""
        return self.populations == [UNNAMED]


def as_raster(arr: Any, where: str) -> np.ndarray:
    """Check that ``arr`` is a non-empty (T, N) array of 0/1 values and return it as bool.

    ``where`` starts the error message (file and field).
    """
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise RecordingError(f"{where}: raster must be 2-D (ticks, neurons), got shape {arr.shape}")
    if arr.size == 0:
        raise RecordingError(f"{where}: empty recording: raster shape {arr.shape}")
    if arr.dtype == bool:
        return arr.copy()
    if arr.dtype.kind not in "iuf":
        raise RecordingError(f"{where}: raster must hold 0/1 numbers, got dtype {arr.dtype}")
    bad = ~((arr == 0) | (arr == 1))
    if bad.any():
        t, n = np.argwhere(bad)[0]
        raise RecordingError(
            f"{where}: raster values must be 0 or 1, got {arr[t, n].item()!r} at tick {t}, neuron {n} "
            f"({int(bad.sum())} such values)"
        )
    return arr != 0


def load_recording(
    path: str | os.PathLike,
    population: str | None = None,
    ticks: int | None = None,
    sizes: int | Mapping[str, int] | None = None,
) -> Recording:
    """Read a recording from ``path`` (.json, .npz, .npy, .pkl/.pickle; layouts in the module doc).

    ``population``: keep only that population (for sources with names), or the name
    to give the single population of a source without one. ``ticks``: the number
    of ticks T. ``sizes``: neurons per population, one int for a single population.
    """
    path = Path(path)
    source = str(path)
    suffix = path.suffix.lower()
    if suffix in _JSON_SUFFIXES:
        obj = _read(path, lambda f: json.load(f), "JSON")
        return _from_object(obj, source, population, ticks, sizes)
    if suffix in _PICKLE_SUFFIXES:
        obj = _read(path, lambda f: pickle.load(f), "pickle")
        return _from_object(obj, source, population, ticks, sizes)
    if suffix in _NPY_SUFFIXES:
        arr = _read(path, lambda f: np.load(f, allow_pickle=False), "NPY")
        return _from_raster(arr, source, population, ticks, sizes)
    if suffix in _NPZ_SUFFIXES:
        arrays = _read(path, _read_npz, "NPZ")
        return _from_npz(arrays, source, population, ticks, sizes)
    known = _JSON_SUFFIXES + _NPZ_SUFFIXES + _NPY_SUFFIXES + _PICKLE_SUFFIXES
    raise RecordingError(f"{source}: unknown format (file extension {suffix!r}; expected one of {', '.join(known)})")


def recording_from_spike_dict(
    spikes: Mapping,
    v: Mapping | None = None,
    ticks: int | None = None,
    sizes: int | Mapping[str, int] | None = None,
    meta: Mapping | None = None,
    population: str | None = None,
    source: str = "<dict>",
) -> Recording:
    """Build a recording from py-spinnaker2 style dicts, as a chip run returns them.

    ``spikes``: ``{neuron: [ticks]}`` (one population without a name) or
    ``{population: {neuron: [ticks]}}``. ``v``: voltages in the same nesting,
    ``{neuron: [one value per tick]}``. ``meta`` may give the number of ticks
    (see :data:`TICK_META_KEYS`); ``ticks``, ``sizes`` and ``population`` are as
    in :func:`load_recording`.
    """
    if not isinstance(spikes, Mapping):
        raise RecordingError(f"{source}: unknown format: expected a dict of spikes, got {type(spikes).__name__}")
    nested = _is_nested(spikes, source, "spikes")
    if v is not None and not isinstance(v, Mapping):
        raise RecordingError(f"{source}: v: expected a dict, got {type(v).__name__}")
    if nested:
        v = v or {}
        unknown = sorted(set(map(str, v)) - set(map(str, spikes)))
        if unknown:
            raise RecordingError(f"{source}: v: populations {unknown} have voltages but no spikes")
        pops = {str(name): (s, v.get(name), None) for name, s in spikes.items()}
    else:
        pops = {UNNAMED: (spikes, v, None)}
    return _from_events(pops, dict(meta or {}), source, not nested, population, ticks, sizes)


def save_recording(rec: Recording, path: str | os.PathLike) -> None:
    """Write ``rec`` to ``path`` (.json emulator layout or .npz layout of the module doc), atomically.

    The meta written carries ``ticks`` = T, so a silent tail of the run survives
    the round trip; JSON stores every neuron (empty tick lists included) and its
    ``size``.
    """
    path = Path(path)
    meta = {**rec.meta, "ticks": rec.ticks}
    suffix = path.suffix.lower()
    if suffix in _JSON_SUFFIXES:
        populations = {}
        for name, raster in rec.spikes.items():
            entry: dict[str, Any] = {"size": raster.shape[1], "spikes": _ticks_by_neuron(raster)}
            if name in rec.v:
                entry["v"] = _voltages_by_neuron(rec.v[name])
            populations[name] = entry
        data = dumps_json({"populations": populations, "meta": meta}, source=str(path))
    elif suffix in _NPZ_SUFFIXES:
        arrays = {name + SPIKES_SUFFIX: r for name, r in rec.spikes.items()}
        arrays.update({name + VOLTAGE_SUFFIX: v for name, v in rec.v.items()})
        arrays[META_ARRAY] = np.array(dumps_json(meta, source=str(path)))
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        data = buf.getvalue()
    else:
        raise RecordingError(f"{path}: cannot save: unknown format {suffix!r} (expected .json or .npz)")
    atomic_write(path, data)


def dumps_json(obj: Any, source: str = "<json>", indent: int | None = None) -> str:
    """Strict ``json.dumps`` (no NaN) that also accepts numpy scalars and arrays.

    Anything else that JSON cannot hold raises a RecordingError naming ``source``.
    """

    def default(o: Any) -> Any:
        if isinstance(o, (np.generic, np.ndarray)):
            return o.tolist()
        raise TypeError(f"{type(o).__name__} is not JSON-serialisable")

    try:
        return json.dumps(obj, default=default, indent=indent, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise RecordingError(f"{source}: cannot write JSON: {e}") from None


# --- reading -----------------------------------------------------------------------------


def _read(path: Path, reader, kind: str):
    """Open ``path`` and apply ``reader`` to the binary file; any failure becomes a RecordingError."""
    try:
        with open(path, "rb") as f:
            return reader(f)
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such file") from None
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError, UnicodeDecodeError) as e:
        raise RecordingError(f"{path}: cannot read as {kind} (unreadable or truncated file): {e}") from None
    except Exception as e:  # unpickling can raise nearly anything (missing classes, ...)
        raise RecordingError(f"{path}: cannot read as {kind}: {type(e).__name__}: {e}") from None


def _read_npz(f) -> dict[str, np.ndarray]:
    with np.load(f, allow_pickle=False) as z:
        return {name: z[name] for name in z.files}


def _from_object(obj: Any, source: str, population, ticks, sizes) -> Recording:
    """A decoded JSON / pickle object in any supported layout."""
    if isinstance(obj, np.ndarray):
        return _from_raster(obj, source, population, ticks, sizes)
    if not isinstance(obj, Mapping):
        raise RecordingError(f"{source}: unknown format: top level is a {type(obj).__name__}, expected a dict")
    if not _is_emulator_layout(obj):
        return recording_from_spike_dict(obj, ticks=ticks, sizes=sizes, population=population, source=source)
    unknown = [k for k in obj if k not in _EMULATOR_KEYS]
    if unknown:
        raise RecordingError(f"{source}: unknown field {unknown[0]!r} (expected {', '.join(_EMULATOR_KEYS)})")
    meta = obj.get("meta", {})
    if not isinstance(meta, Mapping):
        raise RecordingError(f"{source}: meta: expected a dict, got {type(meta).__name__}")
    pops = {}
    for name, entry in obj["populations"].items():
        where = f"{source}: populations.{name}"
        bad = [k for k in entry if k not in _POPULATION_KEYS]
        if bad:
            raise RecordingError(f"{where}: unknown field {bad[0]!r} (expected {', '.join(_POPULATION_KEYS)})")
        if "spikes" not in entry:
            raise RecordingError(f"{where}: missing field 'spikes'")
        for key in ("spikes", "v"):
            if not isinstance(entry.get(key, {}), Mapping):
                raise RecordingError(f"{where}.{key}: expected a dict of neuron -> list")
        size = entry.get("size")
        if size is not None:
            size = _positive_int(size, f"{where}.size")
        pops[str(name)] = (entry["spikes"], entry.get("v"), size)
    return _from_events(pops, dict(meta), source, False, population, ticks, sizes)


def _is_emulator_layout(obj: Mapping) -> bool:
    """The emulator layout: ``populations`` maps names to dicts (a py-spinnaker2 neuron dict maps to lists)."""
    pops = obj.get("populations")
    return isinstance(pops, Mapping) and all(isinstance(e, Mapping) for e in pops.values())


def _is_nested(spikes: Mapping, source: str, what: str) -> bool:
    """True for ``{population: {neuron: ticks}}``, False for ``{neuron: ticks}``."""
    if not spikes:
        raise RecordingError(f"{source}: empty recording: {what} dict has no entries")
    kinds = {isinstance(val, Mapping) for val in spikes.values()}
    if len(kinds) > 1:
        raise RecordingError(
            f"{source}: unknown format: {what} mixes dicts (populations) and lists (neurons) as values"
        )
    return kinds.pop()


def _from_raster(arr: np.ndarray, source: str, population, ticks, sizes) -> Recording:
    name = population or UNNAMED
    raster = as_raster(arr, source)
    _expect_shape(raster, source, name, ticks, sizes)
    return Recording(spikes={name: raster}, source=source)


def _from_npz(arrays: dict[str, np.ndarray], source: str, population, ticks, sizes) -> Recording:
    meta: dict = {}
    spikes: dict[str, np.ndarray] = {}
    voltages: dict[str, np.ndarray] = {}
    for key, arr in arrays.items():
        if key == META_ARRAY:
            try:
                meta = json.loads(str(arr[()]))
            except (ValueError, IndexError) as e:
                raise RecordingError(f"{source}: meta: not a JSON string: {e}") from None
            if not isinstance(meta, dict):
                raise RecordingError(f"{source}: meta: expected a JSON object")
        elif key.endswith(SPIKES_SUFFIX) and len(key) > len(SPIKES_SUFFIX):
            name = key[: -len(SPIKES_SUFFIX)]
            spikes[name] = as_raster(arr, f"{source}: {key}")
        elif key.endswith(VOLTAGE_SUFFIX) and len(key) > len(VOLTAGE_SUFFIX):
            if arr.dtype.kind not in "iuf":
                raise RecordingError(f"{source}: {key}: voltages must be numbers, got dtype {arr.dtype}")
            voltages[key[: -len(VOLTAGE_SUFFIX)]] = arr
        else:
            raise RecordingError(
                f"{source}: unknown format: array {key!r} (expected '<population>{SPIKES_SUFFIX}', "
                f"'<population>{VOLTAGE_SUFFIX}' or '{META_ARRAY}')"
            )
    if not spikes:
        raise RecordingError(f"{source}: empty recording: no '<population>{SPIKES_SUFFIX}' array")
    if population is not None:
        spikes = {population: _select(spikes, population, source)}
        voltages = {k: val for k, val in voltages.items() if k == population}
    meta_ticks = _meta_ticks(meta, source)
    for name, raster in spikes.items():
        if ticks is None:
            _expect_shape(raster, source, name, meta_ticks, sizes, len(spikes), "meta")
        else:
            _expect_shape(raster, source, name, ticks, sizes, len(spikes))
    return Recording(spikes=spikes, v=voltages, meta=meta, source=source)


def _select(pops: Mapping[str, Any], population: str, source: str):
    if population not in pops:
        raise RecordingError(
            f"{source}: unknown population {population!r} requested (the file has: {', '.join(map(repr, pops))})"
        )
    return pops[population]


def _expect_shape(
    raster: np.ndarray, source: str, name: str, ticks, sizes, n_populations: int = 1, origin: str = "ticks="
) -> None:
    """Check a raster's shape against the number of ticks (from ``origin``) and ``sizes=``."""
    if ticks is not None and raster.shape[0] != ticks:
        raise RecordingError(
            f"{source}: population {name!r}: the raster has {raster.shape[0]} ticks, expected {ticks} (from {origin})"
        )
    size = _size_for(sizes, name, n_populations, source)
    if size is not None and raster.shape[1] != size:
        raise RecordingError(f"{source}: sizes: population {name!r} has {raster.shape[1]} neurons, expected {size}")


def _size_for(sizes, name: str, n_populations: int, source: str) -> int | None:
    if sizes is None:
        return None
    if isinstance(sizes, Mapping):
        return None if name not in sizes else _positive_int(sizes[name], f"{source}: sizes[{name!r}]")
    if n_populations != 1:
        raise RecordingError(f"{source}: sizes: one number given but the recording has {n_populations} populations")
    return _positive_int(sizes, f"{source}: sizes")


def _meta_ticks(meta: Mapping, source: str) -> int | None:
    for key in TICK_META_KEYS:
        if key in meta:
            return _positive_int(meta[key], f"{source}: meta.{key}")
    return None


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise RecordingError(f"{where}: expected a positive integer, got {value!r}")
    return int(value)


def _neuron_index(key: Any, where: str) -> int:
    """A neuron key: an int, or a string holding one (JSON object keys are strings)."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        index = int(key)
    elif isinstance(key, str) and key.strip().lstrip("+-").isdigit():
        index = int(key)
    else:
        raise RecordingError(f"{where}: non-integer neuron key {key!r}")
    if index < 0:
        raise RecordingError(f"{where}: negative neuron index {index}")
    return index


def _tick_array(ticks: Any, where: str) -> np.ndarray:
    """One neuron's spike ticks as a 1-D int64 array: integers >= 0, each at most once."""
    arr = np.asarray(ticks)
    if arr.ndim != 1:
        raise RecordingError(f"{where}: expected a list of ticks, got {type(ticks).__name__} of shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise RecordingError(f"{where}: ticks must be integers, got {arr[:5].tolist()}")
    arr = arr.astype(np.int64)
    if arr.min() < 0:
        raise RecordingError(f"{where}: negative tick {int(arr.min())}")
    if np.unique(arr).size != arr.size:
        raise RecordingError(f"{where}: a tick is listed twice (a neuron spikes at most once per tick)")
    return arr


def _voltage_array(values: Any, where: str) -> np.ndarray:
    """One neuron's voltage trace; ``None`` (JSON null) is NaN (not recorded)."""
    try:
        arr = np.asarray([np.nan if x is None else x for x in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise RecordingError(f"{where}: expected a list of numbers (one per tick)") from None
    return arr


@dataclass
class _Events:
    """One population parsed from a dict: neuron -> ticks and neuron -> voltages (None: not recorded)."""

    ticks: dict[int, np.ndarray]
    v: dict[int, np.ndarray] | None
    size: int | None

    def max_index(self) -> int:
        return max(list(self.ticks) + list(self.v or {}), default=-1)

    def max_tick(self) -> int:
        return max((int(t.max()) for t in self.ticks.values() if t.size), default=-1)


def _parse_population(spikes: Mapping, v: Mapping | None, size: int | None, prefix: str) -> _Events:
    """``prefix`` starts every error message: the file, and the population when it has a name."""
    ticks = {}
    for key, tl in spikes.items():
        neuron = _neuron_index(key, f"{prefix}spikes")
        ticks[neuron] = _tick_array(tl, f"{prefix}spikes[{key!r}]")
    if v is None:
        return _Events(ticks, None, size)
    if not isinstance(v, Mapping):
        raise RecordingError(f"{prefix}v: expected a dict of neuron -> values, got {type(v).__name__}")
    volts = {}
    for key, vl in v.items():
        neuron = _neuron_index(key, f"{prefix}v")
        volts[neuron] = _voltage_array(vl, f"{prefix}v[{key!r}]")
    return _Events(ticks, volts, size)


def _from_events(
    pops: dict[str, tuple[Mapping, Mapping, int | None]],
    meta: dict,
    source: str,
    unnamed: bool,
    population: str | None,
    ticks: int | None,
    sizes,
) -> Recording:
    """Turn parsed neuron -> ticks dicts into rasters, checking ticks and neuron indices."""
    if not pops:
        raise RecordingError(f"{source}: empty recording: no populations")
    prefix = {name: f"{source}: " if unnamed else f"{source}: population {name!r}: " for name in pops}
    events = {name: _parse_population(s, v, size, prefix[name]) for name, (s, v, size) in pops.items()}

    # T is one number for the whole run, whichever population is kept.
    if ticks is not None:
        n_ticks, origin = _positive_int(ticks, f"{source}: ticks"), "ticks="
    elif (meta_ticks := _meta_ticks(meta, source)) is not None:
        n_ticks, origin = meta_ticks, "meta"
    else:
        longest_v = max((len(a) for e in events.values() for a in (e.v or {}).values()), default=0)
        n_ticks, origin = max(max(e.max_tick() for e in events.values()) + 1, longest_v), "data"
        if n_ticks == 0:
            raise RecordingError(
                f"{source}: empty recording: no spikes and no voltages, so the number of ticks is unknown "
                f"(pass ticks= or set meta['ticks'])"
            )

    if population is not None:
        if unnamed:
            events, prefix = {population: events[UNNAMED]}, {population: prefix[UNNAMED]}
        else:
            events = {population: _select(events, population, source)}

    spikes, voltages = {}, {}
    for name, ev in events.items():
        w = prefix[name]
        size = _size_for(sizes, name, len(events), source)
        if size is None:
            size = ev.size if ev.size is not None else ev.max_index() + 1
        if size == 0:
            raise RecordingError(f"{w}empty recording: no neurons (pass sizes=)")
        if ev.max_index() >= size:
            raise RecordingError(f"{w}neuron {ev.max_index()} >= size {size}")
        if ev.max_tick() >= n_ticks:
            neuron = next(n for n, t in ev.ticks.items() if t.size and t.max() == ev.max_tick())
            raise RecordingError(
                f"{w}spikes['{neuron}']: tick {ev.max_tick()} >= ticks {n_ticks} (number of ticks from {origin})"
            )
        raster = np.zeros((n_ticks, size), dtype=bool)
        if ev.ticks:
            neurons = np.concatenate([np.full(t.size, n) for n, t in ev.ticks.items()]).astype(np.int64)
            raster[np.concatenate(list(ev.ticks.values())), neurons] = True
        spikes[name] = raster
        if ev.v is not None:
            volts = np.full((n_ticks, size), np.nan)
            for n, trace in ev.v.items():
                if trace.size != n_ticks:
                    raise RecordingError(
                        f"{w}v['{n}']: {trace.size} values, expected one per tick ({n_ticks}, from {origin})"
                    )
                volts[:, n] = trace
            voltages[name] = volts
    return Recording(spikes=spikes, v=voltages, meta=meta, source=source)


# --- writing -----------------------------------------------------------------------------


def _ticks_by_neuron(raster: np.ndarray) -> dict[str, list[int]]:
    neurons, ticks = np.nonzero(raster.T)  # sorted by neuron, then tick
    split = np.split(ticks, np.cumsum(np.bincount(neurons, minlength=raster.shape[1]))[:-1])
    return {str(n): t.tolist() for n, t in enumerate(split)}


def _voltages_by_neuron(v: np.ndarray) -> dict[str, list[float | None]]:
    out = {}
    for n in range(v.shape[1]):
        col = v[:, n]
        if np.isnan(col).all():
            continue
        out[str(n)] = [None if np.isnan(x) else x for x in col.tolist()]
    return out
