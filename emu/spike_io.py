"""Every spike file the project reads or writes: recordings, run outputs and inputs.

**Recordings** (:func:`load_recording`, :func:`save_recording`), one
:class:`~emu.spikes.Recording` per file:

* JSON, the emulator layout (one sample; format version 1, the version-0 files
  written before had no ``format`` / ``version`` keys)::

      {"format": "s2emu-recording", "version": 1,
       "populations": {NAME: {"size": N, "shape": [..],            # both optional
                              "spikes": {"0": [ticks...], ...},
                              "v": {"0": [one value per tick], ...}}},   # optional
       "meta": {"ticks": T, ...}}                                        # optional

  A voltage value ``null`` stands for "not recorded" (NaN).
* py-spinnaker2 spike dicts, from JSON or pickle (:mod:`emu.spike_dicts`). A
  pickle may also hold the emulator layout as a dict, or a (T, N) raster array.
* NPZ, compact and batch-aware (version 1): ``format``, ``version``, ``meta``
  (JSON with ``ticks``, ``shapes`` in population order), ``spikes/neurons``
  (every sample's global neuron indices, tick after tick), ``spikes/tick_end``
  ((B, T) cumulative counts per sample) and ``v/<population>`` ((B, T, N), NaN
  where not recorded). Version-0 files hold ``<population>/spikes`` (T, N)
  rasters, ``<population>/v`` and ``meta``.
* NPY: one plain (T, N) 0/1 raster (bool, int or float 0.0/1.0), such as the
  braille recordings in ``tests/data/``.

A reader accepts the versions it knows and refuses a newer one by name.

**Inputs** (:func:`read_input`): spike dicts as above, ``.npy`` / ``.npz`` 0/1
rasters (T, N), (B, T, N) or (T, *shape), and event arrays with fields x, y, p,
t (t in microseconds, tonic's layout) binned to ticks of ``dt`` (one spike per
pixel and tick; how many events were merged is reported, never hidden).

Every write is atomic (:func:`emu.outputs.atomic_write`: a temporary file in the same folder,
then ``os.replace``): readers never see a half-written file, and an interrupted run leaves none.

Pickle files run code when loaded: read only pickles you trust.
"""
from __future__ import annotations

import io
import json
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from emu import spike_dicts
from emu.errors import UserError
from emu.network import Network
from emu.resources import check_memory, check_ticks
from emu.schema import RECORDING, check_file, check_recording_arrays
from emu.outputs import atomic_write  # noqa: F401  (the one atomic write; its home is emu.outputs)
from emu.spikes import UNNAMED, Recording, RecordingError, as_spike_raster

FORMAT = "s2emu-recording"
VERSION = 1
KNOWN_VERSIONS = (0, 1)

_EMULATOR_KEYS = ("format", "version", "populations", "meta")
_LEGACY_SPIKES, _LEGACY_V, _META = "/spikes", "/v", "meta"


class InputFileError(UserError):
    """An input spike file that cannot be read; the message names file and field."""


# --- writing -------------------------------------------------------------------------------


def dumps_json(obj: Any, source: str = "<json>", indent: Optional[int] = None) -> str:
    """Strict ``json.dumps`` (no NaN) that also accepts numpy scalars and arrays; anything
    else JSON cannot hold raises a :class:`RecordingError` naming ``source``."""

    def default(o: Any) -> Any:
        if isinstance(o, (np.generic, np.ndarray)):
            return o.tolist()
        raise TypeError(f"{type(o).__name__} is not JSON-serialisable")

    try:
        return json.dumps(obj, default=default, indent=indent, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise RecordingError(f"{source}: cannot write JSON: {e}") from None


def save_recording(rec: Recording, path) -> Path:
    """Write ``rec`` to ``path`` (.json: one sample; .npz: any batch), atomically.

    The meta written carries ``ticks`` = T, so a silent tail of the run survives
    the round trip; JSON stores every neuron (empty tick lists included).
    """
    path = Path(path)
    meta = {**rec.meta, "ticks": rec.ticks}
    suffix = path.suffix.lower()
    if suffix == ".json":
        if rec.batch != 1:
            raise RecordingError(f"{path}: a JSON recording holds one sample, this one has {rec.batch}: "
                                 f"save one sample (rec.sample(b)) or use .npz")
        populations = {}
        for name in rec.populations:
            raster = rec.raster(name, 0)
            entry: Dict[str, Any] = {"size": raster.shape[1], "shape": list(rec.shapes[name]),
                                     "spikes": spike_dicts.ticks_by_neuron(raster)}
            if name in rec.v:
                entry["v"] = spike_dicts.voltages_by_neuron(np.asarray(rec.v[name][0], np.float64))
            populations[name] = entry
        data = dumps_json({"format": FORMAT, "version": VERSION, "populations": populations, "meta": meta},
                          source=str(path))
    elif suffix == ".npz":
        meta["shapes"] = {n: list(s) for n, s in rec.shapes.items()}
        arrays = {"format": np.array(FORMAT), "version": np.array(VERSION),
                  _META: np.array(dumps_json(meta, source=str(path))),
                  "spikes/neurons": np.concatenate(rec.neurons).astype(np.int32) if rec.batch else np.zeros(0, np.int32),
                  "spikes/tick_end": np.stack(rec.tick_end).astype(np.int64) if rec.batch else np.zeros((0, rec.ticks))}
        arrays.update({f"v/{n}": v for n, v in rec.v.items()})
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        data = buf.getvalue()
    else:
        raise RecordingError(f"{path}: cannot save: unknown format {suffix!r} (expected .json or .npz)")
    atomic_write(path, data)
    return path


def write_output(result: Recording, path, sample: int = 0) -> Path:
    """A run's output file: one sample as .json, or the whole batch as .npz."""
    path = Path(path)
    if path.suffix.lower() not in (".json", ".npz"):
        raise InputFileError(f"{path}: output must end in .json or .npz")
    return save_recording(result.sample(sample) if path.suffix.lower() == ".json" else result, path)


# --- reading recordings ---------------------------------------------------------------------


def load_recording(path, population: Optional[str] = None, ticks: Optional[int] = None, sizes=None) -> Recording:
    """Read a recording from ``path`` (.json, .npz, .npy, .pkl/.pickle; layouts in the module doc).

    ``population``: keep only that population (for sources with names), or the name
    to give the single population of a source without one. ``ticks``: the number
    of ticks T. ``sizes``: neurons per population, one int for a single population.
    """
    path = Path(path)
    source = str(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _from_object(_read(path, json.load, "JSON"), source, population, ticks, sizes)
    if suffix in (".pkl", ".pickle"):
        return _from_object(_read(path, pickle.load, "pickle"), source, population, ticks, sizes)
    if suffix == ".npy":
        arr = _read(path, lambda f: np.load(f, allow_pickle=False), "NPY")
        return _from_raster(arr, source, population, ticks, sizes)
    if suffix == ".npz":
        return _from_npz(_read(path, _read_npz, "NPZ"), source, population, ticks, sizes)
    raise RecordingError(f"{source}: unknown format (file extension {suffix!r}; expected one of .json, .npz, .npy, "
                         f".pkl, .pickle)")


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


def _read_npz(f) -> Dict[str, np.ndarray]:
    with np.load(f, allow_pickle=False) as z:
        return {name: z[name] for name in z.files}


def _from_object(obj: Any, source: str, population, ticks, sizes) -> Recording:
    """A decoded JSON / pickle object in any supported layout."""
    if isinstance(obj, np.ndarray):
        return _from_raster(obj, source, population, ticks, sizes)
    if not isinstance(obj, Mapping):
        raise RecordingError(f"{source}: unknown format: top level is a {type(obj).__name__}, expected a dict")
    if not _is_emulator_layout(obj):
        return spike_dicts.from_spike_dict(obj, ticks=ticks, sizes=sizes, population=population, source=source)
    unknown = [k for k in obj if k not in _EMULATOR_KEYS]
    if unknown:
        raise RecordingError(f"{source}: unknown field {unknown[0]!r} (expected {', '.join(_EMULATOR_KEYS)})")
    check_file(obj, RECORDING, source, RecordingError)  # version 0 files have no format and version keys
    meta = obj.get("meta", {})
    pops, shapes = {}, {}
    for name, entry in obj["populations"].items():
        pops[str(name)] = (entry["spikes"], entry.get("v"), entry.get("size"))
        if "shape" in entry:
            shapes[str(name)] = tuple(int(s) for s in entry["shape"])
    rec = spike_dicts.from_populations(pops, dict(meta), source, False, population, ticks, sizes)
    shapes = {n: s for n, s in shapes.items() if n in rec.shapes and int(np.prod(s)) == rec.sizes[n]}
    if shapes:
        rec.shapes = {n: shapes.get(n, s) for n, s in rec.shapes.items()}
    return rec


def _is_emulator_layout(obj: Mapping) -> bool:
    """The emulator layout: ``populations`` maps names to dicts (a py-spinnaker2 neuron dict maps to lists)."""
    pops = obj.get("populations")
    return isinstance(pops, Mapping) and all(isinstance(e, Mapping) for e in pops.values())


def _from_raster(arr: np.ndarray, source: str, population, ticks, sizes) -> Recording:
    name = population or UNNAMED
    raster = as_spike_raster(arr, source)
    _expect_shape(raster, source, name, ticks, sizes)
    return Recording.from_rasters({name: raster}, source=source)


def _npz_meta(arrays: Dict[str, np.ndarray], source: str) -> dict:
    if _META not in arrays:
        return {}
    try:
        meta = json.loads(str(arrays[_META][()]))
    except (ValueError, IndexError) as e:
        raise RecordingError(f"{source}: meta: not a JSON string: {e}") from None
    if not isinstance(meta, dict):
        raise RecordingError(f"{source}: meta: expected a JSON object")
    return meta


def _from_npz(arrays: Dict[str, np.ndarray], source: str, population, ticks, sizes) -> Recording:
    meta = _npz_meta(arrays, source)
    if "format" not in arrays:
        return _from_legacy_npz(arrays, meta, source, population, ticks, sizes)
    check_recording_arrays(arrays, meta, source, RecordingError)
    shapes = meta.pop("shapes")
    if not shapes:
        raise RecordingError(f"{source}: meta.shapes: missing (population -> shape)")
    for key in ("spikes/neurons", "spikes/tick_end"):
        if key not in arrays:
            raise RecordingError(f"{source}: missing array {key!r}")
    tick_end = np.asarray(arrays["spikes/tick_end"], np.int64)
    neurons = np.asarray(arrays["spikes/neurons"])
    n_ticks = spike_dicts.meta_ticks(meta, source)
    if tick_end.ndim != 2 or (n_ticks is not None and tick_end.shape[1] != n_ticks):
        raise RecordingError(f"{source}: spikes/tick_end: shape {tick_end.shape}, expected (samples, {n_ticks})")
    ends = np.cumsum(tick_end[:, -1]) if tick_end.size else np.zeros(len(tick_end), np.int64)
    counted = int(ends[-1]) if len(ends) else 0
    if len(neurons) != counted:
        raise RecordingError(f"{source}: spikes/neurons: {len(neurons)} spikes, tick_end counts {counted}")
    per = [neurons[e - k:e] for e, k in zip(ends, tick_end[:, -1])] if tick_end.size else [neurons[:0]] * len(tick_end)
    v = {k[2:]: arrays[k] for k in arrays if k.startswith("v/")}
    rec = Recording({str(n): tuple(s) for n, s in shapes.items()}, tick_end.shape[1], per, list(tick_end), v, meta,
                    source)
    total = sum(rec.sizes.values())
    if len(neurons) and (neurons.min() < 0 or neurons.max() >= total):
        raise RecordingError(f"{source}: spikes/neurons: index outside 0..{total - 1}")
    if population is not None:
        spike_dicts.select(rec.shapes, population, source)
        rec = rec.select([population])
    return rec


def _from_legacy_npz(arrays, meta, source: str, population, ticks, sizes) -> Recording:
    """Version 0: ``<population>/spikes`` (T, N) rasters, ``<population>/v``, ``meta``."""
    spikes: Dict[str, np.ndarray] = {}
    voltages: Dict[str, np.ndarray] = {}
    for key, arr in arrays.items():
        if key == _META:
            continue
        if key.endswith(_LEGACY_SPIKES) and len(key) > len(_LEGACY_SPIKES):
            spikes[key[: -len(_LEGACY_SPIKES)]] = as_spike_raster(arr, f"{source}: {key}")
        elif key.endswith(_LEGACY_V) and len(key) > len(_LEGACY_V):
            if arr.dtype.kind not in "iuf":
                raise RecordingError(f"{source}: {key}: voltages must be numbers, got dtype {arr.dtype}")
            voltages[key[: -len(_LEGACY_V)]] = np.asarray(arr, np.float64)
        else:
            raise RecordingError(f"{source}: unknown format: array {key!r} (expected '<population>{_LEGACY_SPIKES}', "
                                 f"'<population>{_LEGACY_V}' or '{_META}')")
    if not spikes:
        raise RecordingError(f"{source}: empty recording: no '<population>{_LEGACY_SPIKES}' array")
    if population is not None:
        spikes = {population: spike_dicts.select(spikes, population, source)}
        voltages = {k: val for k, val in voltages.items() if k == population}
    for name, raster in spikes.items():
        if ticks is None:
            _expect_shape(raster, source, name, spike_dicts.meta_ticks(meta, source), sizes, len(spikes), "meta")
        else:
            _expect_shape(raster, source, name, ticks, sizes, len(spikes))
    return Recording.from_rasters(spikes, v=voltages, meta=meta, source=source)


def _expect_shape(raster: np.ndarray, source: str, name: str, ticks, sizes, n_populations: int = 1,
                  origin: str = "ticks=") -> None:
    """Check a raster's shape against the number of ticks (from ``origin``) and ``sizes=``."""
    if ticks is not None and raster.shape[0] != ticks:
        raise RecordingError(f"{source}: population {name!r}: the raster has {raster.shape[0]} ticks, expected "
                             f"{ticks} (from {origin})")
    size = spike_dicts.size_for(sizes, name, n_populations, source)
    if size is not None and raster.shape[1] != size:
        raise RecordingError(f"{source}: sizes: population {name!r} has {raster.shape[1]} neurons, expected {size}")


# --- reading inputs -------------------------------------------------------------------------


def read_input(path, inputs: Union[Network, Mapping[str, Tuple[int, ...]]], dt: Optional[float] = None,
               ticks: Optional[int] = None) -> Tuple[Dict[str, np.ndarray], dict]:
    """Input rasters ``{input population: (T, N) or (B, T, N) bool}`` from a file, and what was read.

    ``inputs``: a network, or its input populations and their shapes (in order).
    ``dt`` (seconds) bins event files; ``ticks`` sets T where the file does not.
    """
    if isinstance(inputs, Network):
        inputs = {n: inputs.populations[n].shape for n in inputs.inputs}
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such input file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = _load_input(path, json.load)
            return _from_spike_dict_input(path, data, inputs, ticks), {"format": "spike-dict json"}
        if suffix == ".npy":
            arr = _load_input(path, lambda f: np.load(f, allow_pickle=False))
            if arr.dtype.names:
                return _from_event_fields(path, {k: arr[k] for k in arr.dtype.names}, inputs, dt, ticks)
            return _single(path, inputs, arr), {"format": "raster npy"}
        if suffix == ".npz":
            arrays = _load_input(path, _read_npz)
            if set(arrays) & {"x", "y", "p", "t"}:
                return _from_event_fields(path, arrays, inputs, dt, ticks)
            if len(arrays) == 1 and next(iter(arrays)) not in inputs:
                return _single(path, inputs, next(iter(arrays.values()))), {"format": "raster npz"}
            unknown = sorted(set(arrays) - set(inputs))
            if unknown:
                raise InputFileError(f"{path}: arrays {unknown} name no input population (inputs: {list(inputs)}; "
                                     f"an event file needs the fields x, y, p, t)")
            return {k: _raster(path, k, v) for k, v in arrays.items()}, {"format": "raster npz"}
    except UserError as exc:  # a recording's, a resource's: said as this file's
        raise exc if isinstance(exc, InputFileError) else exc.prefixed("", InputFileError) from None
    except (ValueError, OSError, EOFError, KeyError, RecursionError) as exc:
        raise InputFileError(f"{path}: unreadable input file ({type(exc).__name__}: {exc})") from None
    raise InputFileError(f"{path}: unknown input format {suffix!r} (use .json, .npy or .npz)")


def _load_input(path: Path, reader):
    """``reader`` applied to the open file; any failure to decode it is the file's (numpy's header parser,
    json and zipfile raise many types for a damaged file)."""
    try:
        with open(path, "rb") as f:
            return reader(f)
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(f"{path}: unreadable input file ({type(exc).__name__}: {' '.join(str(exc).split())})") \
            from None


def _raster(path, field, arr) -> np.ndarray:
    return as_spike_raster(arr, f"{path}: field {field}", ndim=None)


def _single(path, inputs, arr):
    if len(inputs) != 1:
        raise InputFileError(f"{path}: one raster for a network with inputs {list(inputs)}; store one per name")
    return {next(iter(inputs)): _raster(path, "raster", arr)}


def _from_spike_dict_input(path, data, inputs: Mapping[str, Tuple[int, ...]], ticks) -> Dict[str, np.ndarray]:
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: expected a JSON object, got {type(data).__name__}")
    if "input_spike_ticks" in data:  # the NIR paper's layout
        ticks = ticks or data.get("n_input_ticks")
        data = data["input_spike_ticks"]
    if data and all(isinstance(v, Mapping) for v in data.values()):
        unknown = sorted(set(data) - set(inputs))
        if unknown:
            raise InputFileError(f"{path}: keys {unknown[:5]} are not input population names {list(inputs)}")
        per_pop = data
    elif len(inputs) == 1:
        per_pop = {next(iter(inputs)): data}
    else:
        raise InputFileError(f"{path}: a flat {{neuron: [ticks]}} dict for a network with inputs {list(inputs)}; "
                             f"nest one per input population")
    out = {}
    for name, spikes in per_pop.items():
        size = int(np.prod(inputs[name]))
        rec = spike_dicts.from_spike_dict(spikes, ticks=ticks, sizes=size, population=name, source=f"{path}: {name}")
        out[name] = rec.raster(name, 0)
    length = max(r.shape[0] for r in out.values())
    return {k: np.pad(r, ((0, length - r.shape[0]), (0, 0))) for k, r in out.items()}


def _from_event_fields(path, ev, inputs: Mapping[str, Tuple[int, ...]], dt, ticks):
    """Bin (x, y, p, t[us]) events into (T, P*H*W) rasters with tonic, one spike per pixel and tick."""
    missing = [f for f in "xypt" if f not in ev]
    if missing:
        raise InputFileError(f"{path}: event input needs the fields x, y, p, t; field {missing[0]} is missing")
    if dt is None:
        raise InputFileError(f"{path}: event input needs the tick length (--dt) to bin events")
    if len(inputs) != 1:
        raise InputFileError(f"{path}: event input needs a network with one input population")
    name, shape = next(iter(inputs.items()))
    if len(shape) != 3:
        raise InputFileError(f"{path}: event input needs a (polarity, H, W) input population, got {shape}")
    lengths = {f: np.size(ev[f]) for f in "xypt"}
    if len(set(lengths.values())) != 1:
        raise InputFileError(f"{path}: fields x, y, p, t have different lengths {lengths}")
    raster, merged = bin_events(ev, shape, dt, ticks, where=str(path))
    return {name: raster.reshape(raster.shape[0], -1)}, {"format": "events", "events": int(lengths["t"]),
                                                         "merged_same_tick_events": merged}


def bin_events(ev: Mapping[str, np.ndarray], shape: Tuple[int, int, int], dt: float, ticks: Optional[int] = None,
               where: str = "events") -> Tuple[np.ndarray, int]:
    """(T, P, H, W) bool frames of events with fields x, y, p, t (microseconds), ticks of ``dt``
    seconds from t = 0 (tonic's ``ToFrame``); returns the frames and how many events fell on a
    pixel that already spiked in that tick (one spike per neuron per tick)."""
    import tonic.transforms as T

    n_pol, h, w = shape
    events = np.zeros(np.size(ev["t"]), dtype=[("x", "<i8"), ("y", "<i8"), ("p", "<i8"), ("t", "<i8")])
    for f in "xypt":
        values = np.asarray(ev[f]).reshape(-1)
        if values.dtype.kind not in "biuf":
            raise InputFileError(f"{where}: field {f}: expected numbers, got {values.dtype}")
        if values.dtype.kind == "f":
            bad = ~np.isfinite(values)
            if bad.any():
                raise InputFileError(f"{where}: field {f}: {int(bad.sum())} events with a value that is not a finite "
                                     f"number (NaN or infinite)")
            if np.any(np.abs(values) >= 2.0**62):
                raise InputFileError(f"{where}: field {f}: values beyond the 64-bit integer range")
        events[f] = values
    for f, top in (("x", w), ("y", h), ("p", n_pol)):
        bad = (events[f] < 0) | (events[f] >= top)
        if bad.any():
            raise InputFileError(f"{where}: field {f}: {int(bad.sum())} events outside [0, {top}) for input shape "
                                 f"{tuple(shape)}")
    if len(events) and events["t"].min() < 0:
        raise InputFileError(f"{where}: field t: negative timestamps")
    window = dt * 1e6
    n_ticks = ticks if ticks is not None else (int(events["t"].max() // window) + 1 if len(events) else 0)
    check_ticks(n_ticks, f"{where}: ticks (from the last event at t = {int(events['t'].max()) if len(events) else 0} "
                         f"us)")
    check_memory(n_ticks * n_pol * h * w, f"{where}: {n_ticks:,} ticks of {n_pol * h * w:,} input neurons",
                 "give fewer ticks (--ticks) or a longer tick (--dt)")
    if n_ticks == 0:
        raise InputFileError(f"{where}: no events, so the number of ticks is unknown: give --ticks")
    late = int((events["t"] >= n_ticks * window).sum())
    if late:
        raise InputFileError(f"{where}: {late} events after tick {n_ticks}; run more ticks")
    # tick 0 starts at t = 0 (tonic would start at the first event) and the last,
    # incomplete window is kept (tonic would drop it)
    to_frame = T.ToFrame(sensor_size=(w, h, n_pol), time_window=window, start_time=0, end_time=n_ticks * window,
                         include_incomplete=True)
    raster = np.zeros((n_ticks, n_pol, h, w), bool)
    if len(events):
        frames = np.asarray(to_frame(events))
        raster[: len(frames)] = frames[:n_ticks] > 0
    return raster, int(len(events) - raster.sum())
