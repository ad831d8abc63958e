"""py-spinnaker2's spike dicts <-> :class:`~emu.spikes.Recording`.

A chip run gives back, per population, ``{neuron: [ticks]}`` and (when recorded)
``{neuron: [one voltage per tick]}``; JSON turns the neuron keys into strings
(``"3"``), pickles may keep ints. :func:`from_spike_dict` reads either form, one
population without a name (``{neuron: [ticks]}``) or nested ``{population:
{neuron: [ticks]}}``, and checks every key and tick, naming the field;
:func:`ticks_by_neuron` / :func:`voltages_by_neuron` write them.

The number of ticks T comes from ``ticks=``, else from the meta (``ticks``,
``n_ticks`` or ``run_ticks``), else from the largest tick + 1 (and the longest
voltage trace). The number of neurons N comes from ``sizes=``, else from the
population's ``size``, else from the largest neuron index + 1.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from emu.resources import check_memory, check_ticks
from emu.spikes import UNNAMED, Recording, RecordingError

TICK_META_KEYS = ("ticks", "n_ticks", "run_ticks")
"""Meta keys that give the number of ticks, in order of preference."""


def from_spike_dict(
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
    in :func:`emu.spike_io.load_recording`.
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
    return from_populations(pops, dict(meta or {}), source, not nested, population, ticks, sizes)


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


def select(pops: Mapping[str, Any], population: str, source: str):
    if population not in pops:
        raise RecordingError(
            f"{source}: unknown population {population!r} requested (the file has: {', '.join(map(repr, pops))})"
        )
    return pops[population]


def size_for(sizes, name: str, n_populations: int, source: str) -> int | None:
    if sizes is None:
        return None
    if isinstance(sizes, Mapping):
        return None if name not in sizes else positive_int(sizes[name], f"{source}: sizes[{name!r}]")
    if n_populations != 1:
        raise RecordingError(f"{source}: sizes: one number given but the recording has {n_populations} populations")
    return positive_int(sizes, f"{source}: sizes")


def meta_ticks(meta: Mapping, source: str) -> int | None:
    for key in TICK_META_KEYS:
        if key in meta:
            return positive_int(meta[key], f"{source}: meta.{key}")
    return None


def positive_int(value: Any, where: str) -> int:
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
    try:
        arr = np.asarray(ticks)
    except (ValueError, TypeError):
        raise RecordingError(f"{where}: expected a list of ticks, got {type(ticks).__name__}") from None
    if arr.ndim != 1:
        raise RecordingError(f"{where}: expected a list of ticks, got {type(ticks).__name__} of shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)) \
            and np.all(np.abs(arr) < 2.0**62):
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


def from_populations(
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
        n_ticks, origin = positive_int(ticks, f"{source}: ticks"), "ticks="
    elif (meta_ticks_ := meta_ticks(meta, source)) is not None:
        n_ticks, origin = meta_ticks_, "meta"
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
            events = {population: select(events, population, source)}

    check_ticks(n_ticks, f"{source}: ticks (from {origin})")
    spikes, voltages = {}, {}
    for name, ev in events.items():
        w = prefix[name]
        size = size_for(sizes, name, len(events), source)
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
        check_memory(n_ticks * size * (9 if ev.v is not None else 1),
                     f"{w}a raster of {n_ticks:,} ticks (from {origin}) x {size:,} neurons")
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
    return Recording.from_rasters(spikes, v=voltages, meta=meta, source=source)


def ticks_by_neuron(raster: np.ndarray) -> dict[str, list[int]]:
    neurons, ticks = np.nonzero(raster.T)  # sorted by neuron, then tick
    split = np.split(ticks, np.cumsum(np.bincount(neurons, minlength=raster.shape[1]))[:-1])
    return {str(n): t.tolist() for n, t in enumerate(split)}


def voltages_by_neuron(v: np.ndarray) -> dict[str, list[float | None]]:
    out = {}
    for n in range(v.shape[1]):
        col = v[:, n]
        if np.isnan(col).all():
            continue
        out[str(n)] = [None if np.isnan(x) else x for x in col.tolist()]
    return out
