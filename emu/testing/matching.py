"""Spike-by-spike matching of two runs for users' tests, and the settings of a test's run.

:func:`assert_spikes_match` compares two runs population by population and, when they
differ by more than allowed, fails with where they first part (population, neuron,
tick, each side's spike and voltage there) and the mismatch rate of every population.
Light to import (no torch): the snapshot fixture uses it too.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import nir
import numpy as np

from emu.engine import Emulator
from emu.inputs import normalize_inputs
from emu.nir_import import from_nir, read_nir
from emu.profile import SemanticsProfile
from emu.settings import Settings, load_profile_file, resolve
from emu.spike_io import load_recording
from emu.spikes import Recording
from emu.timing import align
from validate.compare import pair_populations
from validate.conversion_warnings import python_warning, warn_zeroed_weights
from validate.localize import as_rasters

ProfileLike = Union[str, os.PathLike, SemanticsProfile]


def as_recording(run: Any, where: str) -> Recording:
    """A run as a :class:`Recording`: a Recording (an emulator result is one), a file the
    validator reads (.json, .npz, .npy, .pkl) or a mapping population -> (T, N) / (B, T, N) raster."""
    if isinstance(run, Recording):
        return run
    if isinstance(run, (str, os.PathLike)):
        return load_recording(Path(run))
    if isinstance(run, Mapping):
        return Recording.from_rasters(as_rasters(run, where), source=where)
    raise TypeError(f"{where}: expected a Recording, a recording file or a mapping population -> raster, "
                    f"got {type(run).__name__}")


@dataclass
class PopulationMatch:
    """One population of one sample at the lag (``actual`` later by ``lag`` ticks) that fits best."""

    population: str
    sample: int
    lag: int
    mismatches: int
    cells: int
    first_tick: Optional[int]  # in ``expected``'s ticks
    first_neuron: Optional[int]

    @property
    def rate(self) -> float:
        return self.mismatches / self.cells if self.cells else 0.0


def _best_lag(pair, sample: int, max_lag: int) -> PopulationMatch:
    best = None
    for lag in sorted(range(-max_lag, max_lag + 1), key=abs):  # ties: the smallest |lag|
        a, b = align(pair.a, pair.b, lag)
        diff = a != b
        m = int(diff.sum())
        if best is None or m < best.mismatches:
            ticks = np.flatnonzero(diff.any(axis=1))
            t = int(ticks[0]) if ticks.size else None
            best = PopulationMatch(pair.name, sample, lag, m, int(diff.size),
                                   None if t is None else t + max(-lag, 0),
                                   None if t is None else int(np.flatnonzero(diff[t])[0]))
    return best


def spike_matches(actual: Recording, expected: Recording, max_lag: int = 0,
                  populations: Optional[Sequence[str]] = None) -> list:
    """Every (sample, population) of the two runs at its best lag in ``-max_lag..max_lag``;
    input populations are left out (identical by construction)."""
    if actual.batch != expected.batch:
        raise AssertionError(f"actual has {actual.batch} sample(s), expected {expected.batch}")
    out = []
    for s in range(actual.batch):
        pairs, _ = pair_populations(actual, expected, populations, sample=s)
        out += [_best_lag(p, s, max_lag) for p in pairs if not p.is_input]
    return out


def _side(rec: Recording, pop: str, sample: int, tick: int, neuron: int) -> str:
    if tick is None or not 0 <= tick < rec.ticks:
        return "no tick there"
    spiked = bool(rec.raster(pop, sample)[tick, neuron])
    text = "spiked" if spiked else "no spike"
    if pop in rec.v:
        text += f", v = {float(rec.v[pop][sample, tick, neuron]):.6g}"
    return text


def mismatch_message(matches: list, actual: Recording, expected: Recording, max_mismatch: float) -> str:
    """Where the runs first part, then every population's mismatch rate (the failure message)."""
    failing = [m for m in matches if m.rate > max_mismatch]
    first = min(failing, key=lambda m: (m.first_tick, m.sample))
    t_actual = first.first_tick + first.lag
    lines = [f"spikes differ beyond max_mismatch={max_mismatch:g} (fraction of cells) in "
             f"{len({m.population for m in failing})} population(s). First divergence: population "
             f"{first.population!r}, neuron {first.first_neuron}, tick {first.first_tick} of sample {first.sample}"
             + (f" (actual's tick {t_actual}, lag {first.lag:+d})" if first.lag else "")
             + f": actual {_side(actual, first.population, first.sample, t_actual, first.first_neuron)}; expected "
             f"{_side(expected, first.population, first.sample, first.first_tick, first.first_neuron)}."]
    for m in matches:
        mark = "FAIL" if m.rate > max_mismatch else "ok"
        lines.append(f"  {mark:>4} {m.population} (sample {m.sample}): {100 * m.rate:.3f} % of cells "
                     f"({m.mismatches:,} of {m.cells:,}) at lag {m.lag:+d}")
    return "\n".join(lines)


def assert_spikes_match(actual, expected, *, max_lag: int = 0, max_mismatch: float = 0.0,
                        populations: Optional[Sequence[str]] = None) -> list:
    """Fail unless every population of ``actual`` matches ``expected`` to ``max_mismatch`` (a
    fraction of its (tick, neuron) cells, 0 = identical) at some lag within ``+-max_lag``
    ticks (``actual`` later by the lag). Both may be anything :func:`as_recording` reads.
    Returns the per-population matches (:class:`PopulationMatch`)."""
    __tracebackhide__ = True
    if not 0 <= max_mismatch <= 1:
        raise ValueError(f"max_mismatch is a fraction of cells in [0, 1], got {max_mismatch!r}")
    if int(max_lag) != max_lag or max_lag < 0:
        raise ValueError(f"max_lag must be an integer >= 0, got {max_lag!r}")
    a, b = as_recording(actual, "actual"), as_recording(expected, "expected")
    matches = spike_matches(a, b, int(max_lag), populations)
    if any(m.rate > max_mismatch for m in matches):
        raise AssertionError(mismatch_message(matches, a, b, max_mismatch))
    return matches


def settings_for(graph: nir.NIRGraph, dt: Optional[float], profile: ProfileLike = "chip",
                 source: str = "the model", **conversion) -> Settings:
    """The run's settings: ``conversion`` options (``weight_scale``, ``scale_percentile``,
    ``conn_delay``, ``integrator``, ``reset``, any profile field) and ``dt`` over the graph's
    metadata; ``profile``: a preset name, a :class:`SemanticsProfile` or a calibrated profile file."""
    flags = dict(conversion, dt=dt)
    if isinstance(profile, SemanticsProfile):
        settings = resolve(flags, graph, source=source)
        return dataclasses.replace(settings, profile=profile)
    if isinstance(profile, os.PathLike) or (isinstance(profile, str) and profile.endswith(".json")):
        return resolve(flags, graph, profile_file=load_profile_file(profile), source=source)
    return resolve(flags, graph, preset=profile, source=source)


def read_model(model) -> nir.NIRGraph:
    """A NIR graph, or the path of one."""
    return model if isinstance(model, nir.NIRGraph) else read_nir(model)


@dataclass
class ChipRun:
    """A test's run on the emulated chip and what it was made from."""

    graph: nir.NIRGraph
    settings: Settings
    rasters: dict  # the input populations' (B, T, N) 0/1 rasters
    run: Recording


def chip_run(model, inputs, dt: Optional[float] = None, profile: ProfileLike = "chip", ticks: Optional[int] = None,
             record_v: bool = False, **conversion) -> ChipRun:
    """``model`` (a NIR graph or its path) on the emulated chip (see :func:`run_chip`)."""
    graph = read_model(model)
    settings = settings_for(graph, dt, profile, str(model) if not isinstance(model, nir.NIRGraph) else "the model",
                            **conversion)
    network = from_nir(graph, settings.conversion)
    rasters, ticks = normalize_inputs(network, inputs, ticks)
    warn_zeroed_weights(network, settings.profile, say=python_warning)
    return ChipRun(graph, settings, rasters, Emulator(network, settings.profile)(rasters, ticks=ticks,
                                                                                 record_v=record_v))


def run_chip(model, inputs, *, dt: Optional[float] = None, profile: ProfileLike = "chip", ticks: Optional[int] = None,
             record_v: bool = False, **conversion) -> Recording:
    """``model`` (a NIR graph or its path) on the emulated chip: ``inputs`` (T, N) or (B, T, ...)
    0/1, or a dict per input population; ``dt``, ``profile`` and ``conversion`` options as
    :func:`settings_for`. Runs ``ticks`` ticks (default: the input's length)."""
    return chip_run(model, inputs, dt, profile, ticks, record_v, **conversion).run
