"""ONE spike container, :class:`Recording`, and the small conversions around it.

Every run (the emulator, the float reference, a chip board, py-spinnaker2's brian2
backend), every recording file and every input is held the same way: per sample,
the population-global index of every spike, tick after tick, plus how many
spikes came up to and including each tick (compact: a 6,000-tick gesture keeps a
few thousand integers, not a 47-million-cell raster). Population ``k``'s neuron
``i`` (NIR flat order) has global index ``offset[k] + i``; offsets follow the
populations' order.

Conversions, one verb each (tonic style): :meth:`Recording.from_rasters` /
:meth:`Recording.raster` (0/1 rasters), :meth:`Recording.from_events` /
:meth:`Recording.events` ((tick, neuron) pairs), :meth:`Recording.spike_dict`
(py-spinnaker2's ``{neuron: [ticks]}``; the reverse is :mod:`emu.spike_dicts`),
:meth:`Recording.sample`, :meth:`Recording.select`, :meth:`Recording.shifted`.
:func:`as_spike_raster` is THE check that an array holds 0/1 spikes. Files are
read and written by :mod:`emu.spike_io`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from numba import njit

from emu import kernel_cache
from emu.errors import UserError

kernel_cache.install()  # before the compiled functions below: the package's cache locators take them

UNNAMED = "unnamed"
"""Population name given to sources without one (a raster, a flat spike dict)."""


@njit(cache=True, nogil=True)
def _population_at(starts: np.ndarray, g: int) -> int:
    """The last population whose global indices start at or below ``g`` (``starts`` ascending,
    a handful of them: a scan from the end, cheaper than a binary search's call)."""
    p = starts.size - 1
    while p > 0 and starts[p] > g:
        p -= 1
    return p


@njit(cache=True, nogil=True)
def _keys_by_population(neurons: np.ndarray, tick_end: np.ndarray, starts: np.ndarray, sizes: np.ndarray,
                        take: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Spikes ``neurons`` (global indices, in (sample, tick) order; ``tick_end[b, t]``: sample b's
    spikes up to and including tick t) as one sorted key ``(sample * T + t) * N + n`` each, grouped
    by population: (keys, bounds), population k's keys being ``keys[bounds[k]:bounds[k + 1]]``;
    only populations with ``take[k]`` (the others get no keys).

    A tick's spikes come in runs of one population (the engine records population after
    population), so the population is looked up only where a run ends; each pass keeps the
    current population's count in a register, not in memory."""
    n_pop = starts.size
    big = np.iinfo(np.int64).max
    per = np.zeros(n_pop, np.int64)
    p, lo, hi, run = 0, big, big, 0  # no population yet: the first spike looks one up
    for j in range(neurons.size):
        g = np.int64(neurons[j])
        if g < lo or g >= hi:
            if lo != big:
                per[p] += run
            p = _population_at(starts, g)
            lo, hi, run = starts[p], starts[p] + sizes[p], 0
        run += 1
    if lo != big:
        per[p] += run
    bounds = np.zeros(n_pop + 1, np.int64)
    for k in range(n_pop):
        bounds[k + 1] = bounds[k] + (per[k] if take[k] else 0)
    keys = np.empty(bounds[n_pop], np.int64)
    fill = bounds[:-1].copy()
    n_batch, n_ticks = tick_end.shape
    j = 0
    p, lo, hi, size, first, at, keep = 0, big, big, 1, 0, 0, False
    for b in range(n_batch):
        done = 0
        for t in range(n_ticks):
            base = b * n_ticks + t
            for _ in range(tick_end[b, t] - done):
                g = np.int64(neurons[j])
                j += 1
                if g < lo or g >= hi:
                    if keep:
                        fill[p] = at
                    p = _population_at(starts, g)
                    lo, size, keep = starts[p], sizes[p], take[p]
                    hi, first, at = lo + size, bounds[p], fill[p]
                if not keep:
                    continue
                key = base * size + g - lo
                # insertion into this cell's run (spikes of one tick may come in any neuron order)
                i = at
                while i > first and keys[i - 1] > key:
                    keys[i] = keys[i - 1]
                    i -= 1
                keys[i] = key
                at += 1
            done = tick_end[b, t]
    return keys, bounds


@njit(cache=True, nogil=True)
def _window_keys(full: np.ndarray, lo: np.ndarray, hi: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``full[lo[r]:hi[r]] + delta[r]`` of every row r, one after the other (a window of each
    sample's keys, renumbered)."""
    total = 0
    for r in range(lo.size):
        total += hi[r] - lo[r]
    out = np.empty(total, np.int64)
    k = 0
    for r in range(lo.size):
        d = delta[r]
        for j in range(lo[r], hi[r]):
            out[k] = full[j] + d
            k += 1
    return out


class RecordingError(UserError):
    """Spike data that cannot be read or is inconsistent; the message names the file and the field."""


def as_spike_raster(arr: Any, where: str, ndim: Optional[int] = 2) -> np.ndarray:
    """``arr`` as a bool array after checking that it holds only 0/1 values (any numeric
    dtype) and, unless ``ndim`` is None, that it has ``ndim`` axes and is not empty.

    ``where`` starts the error message (file and field). Returns a copy.
    """
    arr = np.asarray(arr)
    if ndim is not None and arr.ndim != ndim:
        axes = "(ticks, neurons)" if ndim == 2 else f"{ndim} axes"
        raise RecordingError(f"{where}: raster must be {ndim}-D {axes}, got shape {arr.shape}")
    if ndim is not None and arr.size == 0:
        raise RecordingError(f"{where}: empty recording: raster shape {arr.shape}")
    if arr.dtype == bool:
        return arr.copy()
    if arr.dtype.kind not in "iuf":
        raise RecordingError(f"{where}: raster must hold 0/1 numbers, got dtype {arr.dtype}")
    bad = ~((arr == 0) | (arr == 1))
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise RecordingError(f"{where}: raster values must be 0 or 1, got {arr[at].item()!r} at index {at} "
                             f"({int(bad.sum())} such values)")
    return arr != 0


def _shape(value) -> Tuple[int, ...]:
    return tuple(int(s) for s in np.atleast_1d(value))


@dataclass
class Recording:
    """Spikes (and voltages where recorded) of named populations over ``ticks`` ticks.

    ``shapes``: population -> neuron shape, in order (the order fixes the global
    neuron indices). ``neurons[b]``: sample b's spikes as global neuron indices,
    tick after tick; ``tick_end[b][t]``: how many of them fall at or before tick t.
    ``v``: population -> (B, T, N) voltages (NaN where not recorded; chip units for
    the emulator). ``meta``: JSON-able facts about the run. ``source``: where it
    came from (used in messages).
    """

    shapes: Dict[str, Tuple[int, ...]]
    ticks: int
    neurons: List[np.ndarray]
    tick_end: List[np.ndarray]
    v: Dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    source: str = "<memory>"

    def __post_init__(self) -> None:
        if not self.shapes:
            raise RecordingError(f"{self.source}: empty recording: no populations")
        self.shapes = {str(k): _shape(s) for k, s in self.shapes.items()}
        self.ticks = int(self.ticks)
        if len(self.neurons) != len(self.tick_end):
            raise RecordingError(f"{self.source}: {len(self.neurons)} spike lists for {len(self.tick_end)} samples")
        for name, v in self.v.items():
            want = (self.batch, self.ticks, self.sizes.get(name, -1))
            if name not in self.shapes:
                raise RecordingError(f"{self.source}: v: population {name!r} has voltages but no spikes entry")
            if np.shape(v) != want:
                raise RecordingError(f"{self.source}: population {name!r} v: shape {np.shape(v)}, expected {want} "
                                     f"(samples, ticks, neurons)")

    # what it holds ----------------------------------------------------------------------
    @property
    def populations(self) -> List[str]:
        return list(self.shapes)

    @property
    def sizes(self) -> Dict[str, int]:
        return {n: int(np.prod(s)) for n, s in self.shapes.items()}

    @property
    def offsets(self) -> Dict[str, int]:
        """Global index of each population's neuron 0."""
        sizes = list(self.sizes.values())
        return dict(zip(self.shapes, np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()))

    @property
    def batch(self) -> int:
        return len(self.neurons)

    @property
    def unnamed(self) -> bool:
        """True for a single population that came without a name (see :data:`UNNAMED`)."""
        return self.populations == [UNNAMED]

    def _span(self, pop: str) -> Tuple[int, int]:
        if pop not in self.shapes:
            raise KeyError(f"no population {pop!r} in {self.source}; populations: {self.populations}")
        return self.offsets[pop], self.sizes[pop]

    # conversions out ----------------------------------------------------------------------
    def events(self, sample: int = 0) -> Tuple[np.ndarray, np.ndarray]:
        """(ticks, global neurons) of one sample's spikes, in tick order."""
        counts = np.diff(self.tick_end[sample], prepend=0)
        return np.repeat(np.arange(self.ticks), counts), self.neurons[sample]

    def raster(self, pop: str, sample: Optional[int] = None) -> np.ndarray:
        """(B, T, N) bool spikes of a population, or (T, N) of one ``sample``."""
        lo, n = self._span(pop)
        samples = range(self.batch) if sample is None else [sample]
        out = np.zeros((len(samples), self.ticks, n), bool)
        for i, b in enumerate(samples):
            tk, nr = self.events(b)
            sel = (nr >= lo) & (nr < lo + n)
            out[i, tk[sel], nr[sel] - lo] = True
        return out if sample is None else out[0]

    def spike_keys(self, pop: str, shift: int = 0, ticks: Optional[int] = None,
                   samples: Optional[Sequence[int]] = None) -> np.ndarray:
        """The cells of ``raster(pop)[samples, shift:shift + ticks]`` that hold a spike, as sorted
        int64 keys ``(i * ticks + t) * N + n`` (``i``: position in ``samples``, default every
        sample; ``ticks`` defaults to what is left after ``shift``): the sparse form of the raster,
        for counting spikes two runs share without building either raster. The whole run of every
        sample is the recording's own array, not a copy: not to be changed."""
        _, n = self._span(pop)
        shift = int(shift)
        if shift < 0:
            raise ValueError(f"shift must be >= 0, got {shift}")
        ticks = self.ticks - shift if ticks is None else int(ticks)
        t0, t1 = shift, min(self.ticks, shift + ticks)  # the recorded ticks kept
        rows = np.arange(self.batch) if samples is None else np.asarray(samples, np.int64).reshape(-1)
        if t1 <= t0 or not rows.size:
            return np.zeros(0, np.int64)
        full = self._population_keys(pop)  # (sample * T + t) * N + n over the whole run, sorted
        if samples is None and t0 == 0 and ticks == self.ticks:
            return full  # the whole run: the recording's own keys (not to be changed)
        base = (rows * self.ticks + t0) * n
        lo = np.searchsorted(full, base)
        hi = np.searchsorted(full, (rows * self.ticks + t1) * n)
        return _window_keys(full, lo, hi, np.arange(rows.size, dtype=np.int64) * ticks * n - base)

    def __getstate__(self) -> dict:
        """Pickled without the keys :meth:`_population_keys` worked out (the receiver works them out)."""
        return {k: v for k, v in self.__dict__.items() if k != "_keys"}

    def _population_keys(self, pop: str) -> np.ndarray:
        """Every spike of ``pop`` as a sorted key ``(sample * T + t) * N + n`` (kept: not to be changed; not
        flagged read-only either, which would make numba compile every kernel taking keys again); worked
        out once for every population not yet asked for (a recording's spikes are not changed
        after it is made), the network's input populations only when one of them is asked for
        (comparisons are of the neurons' spikes; the input is often most of the spikes)."""
        cache = self.__dict__.setdefault("_keys", {})
        if pop not in cache:
            names = list(self.shapes)
            inputs = set(self.meta.get("inputs") or ())
            take = np.array([m not in cache and (m == pop or m not in inputs) for m in names])
            # one copy of the lists, 32-bit where the indices fit (the kernel takes either width)
            wide = sum(self.sizes.values()) > np.iinfo(np.int32).max
            nr = np.concatenate(self.neurons, dtype=np.int64 if wide else np.int32, casting="same_kind") \
                if self.batch else np.zeros(0, np.int32)
            tick_end = np.stack(self.tick_end).astype(np.int64, copy=False) if self.batch \
                else np.zeros((0, self.ticks), np.int64)
            starts = np.array([self.offsets[m] for m in names], np.int64)
            sizes = np.array([self.sizes[m] for m in names], np.int64)
            flat, bounds = _keys_by_population(nr, tick_end, starts, sizes, take)
            for k, m in enumerate(names):
                if take[k]:
                    cache[m] = flat[bounds[k]:bounds[k + 1]]
        return cache[pop]

    def rasters(self, sample: Optional[int] = None) -> Dict[str, np.ndarray]:
        """Every population's :meth:`raster`."""
        return {name: self.raster(name, sample) for name in self.shapes}

    def spike_counts(self, pop: str) -> np.ndarray:
        """(B,) number of spikes of a population per sample."""
        lo, n = self._span(pop)
        return np.array([int(((nr >= lo) & (nr < lo + n)).sum()) for nr in self.neurons], np.int64)

    def spike_dict(self, pop: str, sample: int = 0) -> Dict[int, List[int]]:
        """py-spinnaker2's form ``{neuron: [ticks]}`` of one population and sample (every neuron listed)."""
        lo, n = self._span(pop)
        tk, nr = self.events(sample)
        sel = (nr >= lo) & (nr < lo + n)
        out: Dict[int, List[int]] = {i: [] for i in range(n)}
        for t, i in zip(tk[sel].tolist(), (nr[sel] - lo).tolist()):
            out[i].append(t)
        return out

    # conversions to another recording -----------------------------------------------------
    def sample(self, b: int) -> "Recording":
        """Sample ``b`` alone (batch 1), with ``meta["sample"] = b``."""
        if not 0 <= b < self.batch:
            raise RecordingError(f"{self.source}: sample {b} is out of range: it has {self.batch} sample(s)")
        return Recording(dict(self.shapes), self.ticks, [self.neurons[b]], [self.tick_end[b]],
                         {n: v[b:b + 1] for n, v in self.v.items()}, dict(self.meta, sample=b), self.source)

    def select(self, populations: Sequence[str]) -> "Recording":
        """Only ``populations`` (in the order given)."""
        missing = [p for p in populations if p not in self.shapes]
        if missing:
            raise RecordingError(f"{self.source}: unknown population {missing[0]!r} requested (it has: "
                                 f"{', '.join(map(repr, self.populations))})")
        return Recording.from_rasters({p: self.raster(p) for p in populations}, shapes={p: self.shapes[p] for p in
                                      populations}, v={p: v for p, v in self.v.items() if p in populations},
                                      meta=dict(self.meta), source=self.source)

    def shifted(self, shifts: Mapping[str, int], ticks: Optional[int] = None) -> "Recording":
        """Each population's ticks moved back by ``shifts[population]`` (tick ``t + s`` becomes
        ``t``; what falls before tick 0 is dropped), cut to ``ticks`` (default: all that is left
        of the most shifted population)."""
        ticks = self.ticks - max([int(s) for s in shifts.values()] + [0]) if ticks is None else int(ticks)
        names = list(self.shapes)
        starts = np.array([self.offsets[n] for n in names], np.int64)
        back = np.array([int(shifts.get(n, 0)) for n in names], np.int64)
        total = int(sum(self.sizes.values()))
        events = []
        for b in range(self.batch):  # spike by spike: no raster is built
            tk, nr = self.events(b)
            nr = nr.astype(np.int64)
            t = tk - back[np.searchsorted(starts, nr, side="right") - 1]
            keep = (t >= 0) & (t < ticks)
            order = np.sort(t[keep] * total + nr[keep])  # within a tick in neuron order, as from_rasters gives
            events.append((order // total, order % total))
        volts = {}
        for name, v in self.v.items():
            s = int(shifts.get(name, 0))
            v = np.asarray(v, np.float64)[:, s:s + ticks]
            volts[name] = np.pad(v, ((0, 0), (0, ticks - v.shape[1]), (0, 0)), constant_values=np.nan)
        return Recording.from_events(self.shapes, ticks, events, v=volts, meta=dict(self.meta, shifts=dict(shifts)),
                                     source=self.source)

    # conversions in -----------------------------------------------------------------------
    @classmethod
    def stack(cls, recordings: Sequence["Recording"], source: str = "<memory>") -> "Recording":
        """One recording of every sample of ``recordings`` (of the same populations), in order,
        as long as the longest: a shorter one is silent after its end (and its voltages NaN)."""
        if not recordings:
            raise RecordingError(f"{source}: no recordings to stack")
        shapes = recordings[0].shapes
        for r in recordings[1:]:
            if r.shapes != shapes:
                raise RecordingError(f"{source}: recordings of different populations cannot be stacked: "
                                     f"{r.source} has {r.sizes}, {recordings[0].source} {recordings[0].sizes}")
        ticks = max(r.ticks for r in recordings)
        neurons = [n for r in recordings for n in r.neurons]
        tick_end = [np.pad(e, (0, ticks - r.ticks), mode="edge") if r.ticks else np.zeros(ticks, np.int64)
                    for r in recordings for e in r.tick_end]
        volts = {}
        for name in {n for r in recordings for n in r.v}:
            parts = [np.full((r.batch, ticks, r.sizes[name]), np.nan) for r in recordings]
            for part, r in zip(parts, recordings):
                if name in r.v:
                    part[:, :r.ticks] = r.v[name]
            volts[name] = np.concatenate(parts)
        return cls(dict(shapes), ticks, neurons, tick_end, volts, dict(recordings[0].meta), source)

    @classmethod
    def from_events(cls, shapes: Mapping[str, Any], ticks: int, events: Iterable[Tuple[Any, Any]],
                    v: Optional[Mapping[str, np.ndarray]] = None, meta: Optional[dict] = None,
                    source: str = "<memory>") -> "Recording":
        """From per-sample (ticks, global neurons) arrays, in any order."""
        neurons, tick_end = [], []
        for tk, nr in events:
            tk, nr = np.asarray(tk, np.int64), np.asarray(nr)
            srt = np.argsort(tk, kind="stable")
            neurons.append(nr[srt].astype(np.int32))
            tick_end.append(np.cumsum(np.bincount(tk, minlength=int(ticks))[:int(ticks)]))
        return cls(dict(shapes), ticks, neurons, tick_end, dict(v or {}), dict(meta or {}), source)

    @classmethod
    def from_rasters(cls, rasters: Mapping[str, Any], shapes: Optional[Mapping[str, Any]] = None,
                     v: Optional[Mapping[str, Any]] = None, meta: Optional[dict] = None,
                     source: str = "<memory>") -> "Recording":
        """From 0/1 rasters ``{population: (T, N) or (B, T, N)}`` (all of one batch and length) and
        voltages of the same shapes. ``shapes``: neuron shapes (default ``(N,)``)."""
        if not rasters:
            raise RecordingError(f"{source}: empty recording: no populations")
        arrs = {}
        for name, r in rasters.items():
            a = np.asarray(r)
            a = as_spike_raster(a[None] if a.ndim == 2 else a, f"{source}: population {name!r} spikes", ndim=3)
            arrs[str(name)] = a
        for axis, what in ((0, "samples"), (1, "ticks")):
            sizes = {n: a.shape[axis] for n, a in arrs.items()}
            if len(set(sizes.values())) > 1:
                raise RecordingError(f"{source}: populations have different numbers of {what}: {sizes}")
        dims = {n: a.shape[:2] for n, a in arrs.items()}
        batch, ticks = next(iter(dims.values()))
        shapes = {n: _shape((shapes or {}).get(n, a.shape[2])) for n, a in arrs.items()}
        for n, a in arrs.items():
            if int(np.prod(shapes[n])) != a.shape[2]:
                raise RecordingError(f"{source}: population {n!r}: shape {shapes[n]} for {a.shape[2]} neurons")
        offsets = np.concatenate([[0], np.cumsum([a.shape[2] for a in arrs.values()])[:-1]]).astype(np.int64)
        events = []
        for b in range(batch):
            parts = [np.nonzero(a[b]) for a in arrs.values()]
            tk = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
            nr = np.concatenate([p[1] + off for p, off in zip(parts, offsets)]) if parts else np.zeros(0, np.int64)
            events.append((tk, nr))
        volts = {}
        for name, x in (v or {}).items():
            arr = np.asarray(x)
            volts[str(name)] = arr[None] if arr.ndim == 2 else arr
        return cls.from_events(shapes, ticks, events, volts, meta, source)
