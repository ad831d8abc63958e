"""Where two runs of one network on identical inputs first differ, and whether it started there.

:func:`localize` takes the spikes of two runs (A and B) and the network, and names
the first difference in time: the population whose spikes differ earliest (ties: the
shallower population, earlier in topological order; :func:`first_in_time`), the tick,
sample and neuron of that difference, and a verdict:

``entered``
    the inputs of that population (the spikes of every population projecting to
    it, recurrent and skip projections included) were still equal at every tick
    that can reach it by that tick (pre tick ``s <= t - lag`` of the projection):
    the difference arose in this population (its weights, parameters or
    arithmetic).
``inherited``
    some input population already differed at a tick that reaches it; the
    sources are listed (possible with back edges: a later population feeding an
    earlier one).
``unknown``
    the recorded inputs are equal, but some input population is missing from a
    run (e.g. a chip recording of the output layer only).
``input``
    an input population itself differs: the runs were not on identical inputs.

Alignment: runs with different synaptic latency (chip vs snnTorch) are compared
after shifting A back by ``shift[population]`` ticks (A at ``t + shift`` pairs
with B at ``t``; :func:`emu.timing.latency_shifts` computes the shifts); ticks are then
reported in B's time base, and A's tick is ``tick + shift``. The reach of a
projection is its lag in ticks (:func:`emu.timing.projection_lags`): from the profile both
runs share, or by default latency 0 (each projection's extra delay; recurrent
ones at least 1), the conservative choice that counts more input ticks as
possible causes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
from numba import njit

from emu.errors import UserError
from emu.network import Network
from emu.profile import SemanticsProfile
from emu.spikes import Recording, as_spike_raster
from emu.timing import align, projection_lags


class LocalizeError(UserError):
    """Two runs that cannot be localized against each other (populations, shapes)."""


KINDS = ("entered", "inherited", "unknown", "input")


@dataclass
class Localization:
    """The result of :func:`localize`. ``identical``: no population differs (then the rest is None).

    ``tick`` is in B's time base (A's tick is ``tick_a``); ``neuron`` is the NIR flat
    index, ``neuron_index`` the same in the population's shape; ``a_spiked`` tells
    which run has the spike. ``sources``: for ``inherited``, each input population
    that already differed (its first differing tick and neuron, and the lag of its
    projection). ``unchecked``: input populations missing from a run.
    ``first_ticks``: every differing population -> its first differing tick.
    ``earliest``: ``population`` and ``tick`` again (the earliest difference in any population).
    ``voltage_first_diff``: first tick where the neuron's recorded voltages differ,
    when both runs recorded them.
    """

    identical: bool
    population: Optional[str] = None
    neuron: Optional[int] = None
    neuron_index: Optional[Tuple[int, ...]] = None
    tick: Optional[int] = None
    tick_a: Optional[int] = None
    sample: Optional[int] = None
    kind: Optional[str] = None
    a_spiked: Optional[bool] = None
    sources: List[Dict[str, Any]] = field(default_factory=list)
    unchecked: List[str] = field(default_factory=list)
    first_ticks: Dict[str, int] = field(default_factory=dict)
    earliest: Optional[Dict[str, Any]] = None
    voltage_first_diff: Optional[int] = None
    compared: List[str] = field(default_factory=list)
    labels: Tuple[str, str] = ("A", "B")

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["finding"] = self.finding()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Localization":
        """The localization :meth:`to_dict` wrote."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for key in ("neuron_index", "labels"):
            if kw.get(key) is not None:
                kw[key] = tuple(kw[key])
        return cls(**kw)

    def finding(self) -> str:
        """One plain-language statement of the result."""
        a, b = self.labels
        if self.identical:
            return f"{a} and {b} spike identically in every compared population ({', '.join(self.compared)})."
        where = f"neuron {self.neuron}" + (f" {self.neuron_index}" if self.neuron_index and len(self.neuron_index) > 1
                                           else "")
        who = f"{a} spiked and {b} did not" if self.a_spiked else f"{b} spiked and {a} did not"
        tick = f"tick {self.tick}" + (f" ({a}'s tick {self.tick_a})" if self.tick_a != self.tick else "")
        head = (f"First difference: population {self.population!r}, {where}, {tick} of sample {self.sample} "
                f"({who}).")
        if self.kind == "input":
            return head + " It is an input population: the two runs did not get identical inputs."
        if self.kind == "entered":
            return head + " It entered there: the spikes reaching it were still equal up to that tick."
        if self.kind == "unknown":
            return head + (f" Its recorded inputs were equal, but {', '.join(map(repr, self.unchecked))} "
                           f"{'is' if len(self.unchecked) == 1 else 'are'} not in both runs, so it may have "
                           f"entered there or been inherited.")
        src = "; ".join(f"{s['population']!r} (first differs at tick {s['tick']}, neuron {s['neuron']})"
                        for s in self.sources)
        return head + f" It was inherited from {src}."


def first_in_time(first_ticks: Mapping[str, int], network: Network) -> str:
    """THE rule for "first": of the populations that differ (``first_ticks``: each one's first
    differing tick), the one whose difference comes earliest; ties go to the shallower
    population, the earlier in topological order (a population before those it feeds).
    So the first difference is never inherited through a projection of 1 tick or more."""
    rank = {n: i for i, n in enumerate(network.order())}
    return min(first_ticks, key=lambda n: (first_ticks[n], rank.get(n, len(rank))))


def as_rasters(run: Any, where: str = "run") -> Dict[str, np.ndarray]:
    """Spikes of a run as ``{population: (B, T, N) bool}``.

    ``run``: a :class:`emu.spikes.Recording`, or a mapping of population -> (T, N) or
    (B, T, N) 0/1 arrays.
    """
    if isinstance(run, Recording):
        return run.rasters()
    if not isinstance(run, Mapping):
        raise LocalizeError(f"{where}: expected a Recording or mapping population -> raster, "
                            f"got {type(run).__name__}")
    out = {}
    for name, r in run.items():
        arr = np.asarray(r)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise LocalizeError(f"{where}: population {name!r}: raster of shape {np.shape(r)}, expected (T, N) or "
                                f"(B, T, N)")
        out[name] = as_spike_raster(arr, f"{where}: population {name!r}", ndim=3)
    return out


def _recording(run: Any, where: str) -> Recording:
    """A run as a :class:`Recording` (rasters are checked by :func:`as_rasters` first)."""
    return run if isinstance(run, Recording) else Recording.from_rasters(as_rasters(run, where))


@dataclass
class _Differences:
    """The cells where A (shifted back) and B of one population differ, sparse: sorted keys
    ``(sample * length + tick) * neurons + neuron`` over the ticks both have, and whether A
    is the side that spiked in each."""

    keys: np.ndarray
    a_spiked: np.ndarray
    length: int
    neurons: int
    shift: int

    @classmethod
    def of(cls, a: Recording, b: Recording, name: str, shift: int) -> "_Differences":
        length = max(0, min(a.ticks - shift, b.ticks))  # as emu.timing.align pairs them
        keys, from_a = _symmetric_difference(a.spike_keys(name, shift, length), b.spike_keys(name, 0, length))
        return cls(keys, from_a, length, a.sizes[name], shift)

    @property
    def ticks(self) -> np.ndarray:
        return (self.keys // self.neurons) % max(1, self.length)

    @property
    def first_tick(self) -> Optional[int]:
        return int(self.ticks.min()) if self.keys.size else None

    def first_at(self, tick: int) -> Tuple[int, int, bool]:
        """(sample, neuron, whether A spiked) of the first difference at ``tick``: the lowest sample
        differing then, its lowest neuron."""
        at = np.flatnonzero(self.ticks == tick)[0]  # keys are in (sample, tick, neuron) order
        return int(self.keys[at] // self.neurons // self.length), int(self.keys[at] % self.neurons), \
            bool(self.a_spiked[at])

    def first_in_sample(self, sample: int, last_tick: int) -> Optional[Tuple[int, int]]:
        """(tick, neuron) of ``sample``'s first difference at or before ``last_tick``, or None."""
        lo = np.searchsorted(self.keys, sample * self.length * self.neurons)
        hi = np.searchsorted(self.keys, (sample * self.length + min(last_tick, self.length - 1) + 1) * self.neurons)
        if hi <= lo:
            return None
        k = int(self.keys[lo])
        return (k // self.neurons) % self.length, k % self.neurons


@njit(cache=True)
def _symmetric_difference(a: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The values in exactly one of two sorted arrays of distinct values, sorted, and whether each
    comes from ``a`` (one merge pass)."""
    out = np.empty(a.size + b.size, np.int64)
    from_a = np.empty(a.size + b.size, np.bool_)
    i = j = n = 0
    while i < a.size or j < b.size:
        if j >= b.size or (i < a.size and a[i] < b[j]):
            out[n], from_a[n] = a[i], True
            n, i = n + 1, i + 1
        elif i >= a.size or b[j] < a[i]:
            out[n], from_a[n] = b[j], False
            n, j = n + 1, j + 1
        else:
            i, j = i + 1, j + 1
    return out[:n], from_a[:n]


def _voltages(run: Any) -> Dict[str, np.ndarray]:
    v = getattr(run, "v", None)
    if not isinstance(v, Mapping):
        return {}
    return {n: (np.asarray(x)[None] if np.ndim(x) == 2 else np.asarray(x)) for n, x in v.items()}


def _sample_number(a: Any, b: Any, index: int) -> int:
    """The sample's number in the user's data: a one-sample recording cut out by
    :meth:`Recording.sample` keeps its number in ``meta["sample"]``."""
    for run in (a, b):
        meta = getattr(run, "meta", None)
        if isinstance(meta, Mapping) and meta.get("sample") is not None and getattr(run, "batch", 0) == 1:
            return int(meta["sample"]) + index
    return index


def localize(a: Any, b: Any, network: Network, profile: Optional[SemanticsProfile] = None,
             shift: Optional[Mapping[str, int]] = None, lags: Optional[List[int]] = None,
             labels: Tuple[str, str] = ("A", "B")) -> Localization:
    """Localize the first difference between runs ``a`` and ``b`` of ``network`` (see the module doc).

    ``profile``: the profile both runs share, for the projections' reach (or give
    ``lags``, one per projection); ``shift``: ticks A lags B per population.
    Populations recorded in only one run are skipped (inputs are then assumed
    equal); every name must be a population of the network.
    """
    ra, rb = _recording(a, labels[0]), _recording(b, labels[1])
    pops = network.populations
    for label, r in ((labels[0], ra), (labels[1], rb)):
        unknown = [n for n in r.populations if n not in pops]
        if unknown:
            raise LocalizeError(f"{label}: unknown population {unknown[0]!r}; the network has {list(pops)}")
    shift = dict(shift or {})
    unknown = [n for n in shift if n not in pops]
    if unknown:
        raise LocalizeError(f"shift names unknown population {unknown[0]!r}")
    if lags is None:  # without a profile, latency 0: the smallest lag any profile gives
        lags = projection_lags(network, profile.synaptic_latency if profile is not None else 0)
    lags = list(lags)
    if len(lags) != len(network.projections):
        raise LocalizeError(f"{len(lags)} lags for {len(network.projections)} projections")
    order = network.order()
    common = [n for n in order if n in ra.shapes and n in rb.shapes]
    if not common:
        raise LocalizeError(f"{labels[0]} ({', '.join(ra.populations)}) and {labels[1]} ({', '.join(rb.populations)}) "
                            f"have no population in common")
    if ra.batch != rb.batch:
        raise LocalizeError(f"population {common[0]!r}: {labels[0]} has {ra.batch} samples, {labels[1]} {rb.batch}")
    diffs = {}
    for name in common:
        for label, r in ((labels[0], ra), (labels[1], rb)):
            if r.sizes[name] != pops[name].size:
                raise LocalizeError(f"{label}: population {name!r} has {r.sizes[name]} neurons, the network "
                                    f"{pops[name].size}")
        s = int(shift.get(name, 0))
        if s < 0:
            raise LocalizeError(f"shift of population {name!r} must be >= 0 (A lags B), got {s}")
        diffs[name] = _Differences.of(ra, rb, name, s)
    first = {n: d.first_tick for n, d in diffs.items() if d.first_tick is not None}
    if not first:
        return Localization(True, compared=common, labels=labels)
    name = first_in_time(first, network)
    d, t = diffs[name], first[name]
    sample, neuron, a_spiked = d.first_at(t)
    s = d.shift
    loc = Localization(
        False, population=name, neuron=neuron,
        neuron_index=tuple(int(i) for i in np.unravel_index(neuron, pops[name].shape)),
        tick=t, tick_a=t + s, sample=_sample_number(a, b, sample), a_spiked=a_spiked,
        first_ticks=first, compared=common, labels=labels,
    )
    loc.earliest = dict(population=name, tick=t)
    if pops[name].model == "input":
        loc.kind = "input"
    else:
        for j, pr in enumerate(network.projections):
            if pr.post != name:
                continue
            pre, lag = pr.pre, lags[j]
            if pre not in diffs:
                if pops[pre].model != "input" and pre not in loc.unchecked:
                    loc.unchecked.append(pre)
                continue
            reach = t - lag  # pre ticks 0..reach can reach tick t
            if reach < 0:
                continue
            hit = diffs[pre].first_in_sample(sample, reach)
            if hit is not None and not any(src["population"] == pre for src in loc.sources):
                loc.sources.append(dict(population=pre, tick=hit[0], neuron=hit[1], projection=pr.label, lag=lag))
        loc.kind = "inherited" if loc.sources else ("unknown" if loc.unchecked else "entered")
    va, vb = _voltages(a).get(name), _voltages(b).get(name)
    if va is not None and vb is not None and va.shape[0] == ra.batch and vb.shape[0] == rb.batch:
        x, y = align(va, vb, s, axis=1)
        u, w = x[sample, :, neuron], y[sample, :, neuron]
        differ = np.flatnonzero((u != w) & ~(np.isnan(u) & np.isnan(w)))  # NaN: not recorded on both
        loc.voltage_first_diff = int(differ[0]) if differ.size else None
    return loc
