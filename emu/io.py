"""Input spike files in, run results out.

Inputs (``read_input``):
* JSON, py-spinnaker2 style ``{"<neuron>": [ticks, ...]}`` for the single input
  population, ``{"<population>": {"<neuron>": [ticks]}}``, or the NIR-paper layout
  ``{"input_spike_ticks": {...}, "n_input_ticks": N}``;
* ``.npy`` / ``.npz`` 0/1 rasters (T, N), (B, T, N) or (T, *shape); in ``.npz``
  one array per input population name (or a single array for a single input);
* event arrays with fields x, y, p, t (t in microseconds, tonic's layout) in
  ``.npy`` (structured) or ``.npz`` (arrays ``x``, ``y``, ``p``, ``t``), binned to
  ticks of ``dt`` with tonic's ``ToFrame``. Several events of one pixel in one
  tick make one spike; how many were merged is reported, never hidden.

Outputs (``write_output``): the recording layouts of :mod:`validate.recordings`
(JSON ``{"populations": {name: {"spikes": {neuron: [ticks]}, "v": ...}}, "meta"}``
or ``.npz`` with ``<population>/spikes`` and ``<population>/v``), written atomically.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from emu.engine import RunResult
from emu.network import Network


class InputFileError(ValueError):
    """An input spike file that cannot be read; the message names file and field."""


def read_input(path, network: Network, dt: Optional[float] = None, ticks: Optional[int] = None
               ) -> Tuple[Dict[str, np.ndarray], dict]:
    """Rasters ``{input population: (T, N) or (B, T, N) bool}`` and info about the reading."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such input file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            with open(path) as f:
                data = json.load(f)
            return _from_spike_dict(path, data, network, ticks), {"format": "spike-dict json"}
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
            if arr.dtype.names:
                return _from_events(path, {k: arr[k] for k in arr.dtype.names}, network, dt, ticks)
            return _single(path, network, arr), {"format": "raster npy"}
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            if {"x", "y", "p", "t"} <= set(arrays):
                return _from_events(path, arrays, network, dt, ticks)
            if len(arrays) == 1 and next(iter(arrays)) not in network.populations:
                return _single(path, network, next(iter(arrays.values()))), {"format": "raster npz"}
            unknown = sorted(set(arrays) - set(network.inputs))
            if unknown:
                raise InputFileError(f"{path}: arrays {unknown} name no input population (inputs: {network.inputs})")
            return {k: _check_raster(path, k, v) for k, v in arrays.items()}, {"format": "raster npz"}
    except InputFileError:
        raise
    except (ValueError, OSError, EOFError, KeyError) as exc:
        raise InputFileError(f"{path}: unreadable input file ({type(exc).__name__}: {exc})") from None
    raise InputFileError(f"{path}: unknown input format {suffix!r} (use .json, .npy or .npz)")


def _check_raster(path, field, arr) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype != bool and not np.all((arr == 0) | (arr == 1)):
        raise InputFileError(f"{path}: field {field}: rasters must hold 0/1 values")
    return arr.astype(bool)


def _single(path, network, arr):
    if len(network.inputs) != 1:
        raise InputFileError(f"{path}: one raster for a network with inputs {network.inputs}; store one per name")
    return {network.inputs[0]: _check_raster(path, "raster", arr)}


def _from_spike_dict(path, data, network: Network, ticks) -> Dict[str, np.ndarray]:
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: expected a JSON object, got {type(data).__name__}")
    if "input_spike_ticks" in data:
        ticks = ticks or data.get("n_input_ticks")
        data = data["input_spike_ticks"]
    if data and all(k in network.populations for k in data):
        per_pop = data
    elif len(network.inputs) == 1:
        per_pop = {network.inputs[0]: data}
    else:
        raise InputFileError(f"{path}: keys {sorted(data)[:5]} are not input population names {network.inputs}")
    out = {}
    for name, spikes in per_pop.items():
        if network.populations[name].model != "input":
            raise InputFileError(f"{path}: population {name!r} is not an input population")
        out[name] = spike_dict_to_raster(spikes, network.populations[name].size, ticks, f"{path}: {name}")
    length = max(r.shape[0] for r in out.values())
    return {k: np.pad(r, ((0, length - r.shape[0]), (0, 0))) for k, r in out.items()}


def spike_dict_to_raster(spikes: dict, size: int, ticks: Optional[int] = None, where: str = "") -> np.ndarray:
    """``{neuron: [ticks]}`` -> (T, size) bool; T = ``ticks`` or last tick + 1.

    Parsed and checked by the validator's reader (one parser for chip recordings
    and input files); its errors become :class:`InputFileError`.
    """
    from validate.recordings import RecordingError, recording_from_spike_dict

    if not isinstance(spikes, dict):
        raise InputFileError(f"{where}: expected {{neuron: [ticks]}}, got {type(spikes).__name__}")
    try:
        rec = recording_from_spike_dict(spikes, ticks=ticks, sizes=size, source=where)
    except RecordingError as exc:
        raise InputFileError(str(exc)) from None
    return next(iter(rec.spikes.values()))


def _from_events(path, ev, network: Network, dt, ticks):
    """Bin (x, y, p, t[us]) events into (T, P, H, W) frames with tonic, 1 spike max per tick."""
    import tonic.transforms as T

    if dt is None:
        raise InputFileError(f"{path}: event input needs the tick length (--dt) to bin events")
    if len(network.inputs) != 1:
        raise InputFileError(f"{path}: event input needs a network with one input population")
    pop = network.populations[network.inputs[0]]
    if len(pop.shape) != 3:
        raise InputFileError(f"{path}: event input needs a (polarity, H, W) input population, got {pop.shape}")
    n_pol, h, w = pop.shape
    events = np.zeros(len(ev["t"]), dtype=[("x", "<i8"), ("y", "<i8"), ("p", "<i8"), ("t", "<i8")])
    for f in "xypt":
        events[f] = ev[f]
    for f, top in (("x", w), ("y", h), ("p", n_pol)):
        bad = (events[f] < 0) | (events[f] >= top)
        if bad.any():
            raise InputFileError(f"{path}: field {f}: {int(bad.sum())} events outside [0, {top}) for input shape "
                                 f"{pop.shape}")
    if len(events) and events["t"].min() < 0:
        raise InputFileError(f"{path}: field t: negative timestamps")
    window = dt * 1e6
    n_ticks = ticks or (int(events["t"].max() // window) + 1 if len(events) else 0)
    late = int((events["t"] >= n_ticks * window).sum())
    if late:
        raise InputFileError(f"{path}: {late} events after tick {n_ticks}; run more ticks")
    # tick 0 starts at t = 0 (tonic would start at the first event) and the last,
    # incomplete window is kept (tonic would drop it)
    to_frame = T.ToFrame(sensor_size=(w, h, n_pol), time_window=window, start_time=0, end_time=n_ticks * window,
                         include_incomplete=True)
    frames = to_frame(events) if len(events) else np.zeros((0,))
    raster = np.zeros((n_ticks, n_pol, h, w), bool)
    raster[: len(frames)] = np.asarray(frames)[:n_ticks] > 0
    merged = int(len(events) - raster.sum())
    return {pop.name: raster.reshape(n_ticks, -1)}, {"format": "events", "events": len(events),
                                                      "merged_same_tick_events": merged}


def write_output(result: RunResult, path, sample: int = 0) -> Path:
    """Write one sample's result as .json or .npz (the layouts of :mod:`validate.recordings`), atomically."""
    from validate.recordings import save_recording

    path = Path(path)
    if path.suffix.lower() not in (".json", ".npz"):
        raise InputFileError(f"{path}: output must end in .json or .npz")
    save_recording(result.to_recording(sample), path)
    return path


def atomic_write(path, data) -> None:
    """Write ``data`` (bytes or str) through a temporary file in the same folder and
    ``os.replace``: readers never see a half-written file."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read the process umask once, so written files get the usual permissions
