"""A test's run on the emulated chip: its settings (with every keyword checked) and the run.

The kit's functions take the conversion and profile settings as keywords
(``conn_delay=0``, ``weight_rounding="nearest"``). :func:`emu.settings.resolve` reads the
names it knows and would ignore any other, so a misspelled one (``conn_dely=0``) would
run, or pin a snapshot, under settings the test did not mean: :func:`check_keywords`
turns it into a ``TypeError`` naming it, the nearest accepted name and all of them.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Union

import nir

from emu.engine import Emulator
from emu.inputs import normalize_inputs
from emu.network import Network
from emu.nir_import import from_nir, read_nir
from emu.profile import SemanticsProfile
from emu.settings import Settings, load_profile_file, resolve, setting_names
from emu.spikes import Recording
from validate.conversion_warnings import python_warning, warn_zeroed_weights

ProfileLike = Union[str, os.PathLike, SemanticsProfile]


def check_keywords(function: str, given: Mapping, own: Iterable[str] = ()) -> None:
    """Raise ``TypeError`` (Python's own wording, as a misspelled keyword of a plain function
    gets) when a name in ``given`` is neither one of ``own`` (the function's keywords) nor a
    setting :func:`emu.settings.resolve` reads."""
    accepted = sorted(set(own) | set(setting_names()))
    unknown = [k for k in given if k not in accepted]
    if unknown:
        near = difflib.get_close_matches(unknown[0], accepted, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise TypeError(f"{function}() got an unexpected keyword argument {unknown[0]!r}{hint}; it accepts "
                        f"{', '.join(accepted)}")


def settings_for(graph: nir.NIRGraph, dt: Optional[float], profile: ProfileLike = "chip",
                 source: str = "the model", **conversion) -> Settings:
    """The run's settings: ``conversion`` options (``weight_scale``, ``scale_percentile``,
    ``conn_delay``, ``integrator``, ``reset``, any profile field: :func:`emu.settings.setting_names`)
    and ``dt`` over the graph's metadata; ``profile``: a preset name, a :class:`SemanticsProfile`
    or a calibrated profile file."""
    check_keywords("settings_for", conversion)
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


def model_source(model) -> str:
    """How errors name the model: its path, or "the model" for a graph in memory."""
    return "the model" if isinstance(model, nir.NIRGraph) else str(model)


@dataclass
class ChipRun:
    """A test's run on the emulated chip and what it was made from."""

    graph: nir.NIRGraph
    settings: Settings
    network: Network
    rasters: dict  # the input populations' (B, T, N) 0/1 rasters
    run: Recording


def chip_run(model, inputs, dt: Optional[float] = None, profile: ProfileLike = "chip", ticks: Optional[int] = None,
             record_v: bool = False, **conversion) -> ChipRun:
    """``model`` (a NIR graph or its path) on the emulated chip (see :func:`run_chip`)."""
    graph = read_model(model)
    settings = settings_for(graph, dt, profile, model_source(model), **conversion)
    network = from_nir(graph, settings.conversion)
    rasters, ticks = normalize_inputs(network, inputs, ticks)
    warn_zeroed_weights(network, settings.profile, say=python_warning)
    run = Emulator(network, settings.profile)(rasters, ticks=ticks, record_v=record_v)
    return ChipRun(graph, settings, network, rasters, run)


RUN_CHIP_KEYWORDS = ("dt", "profile", "ticks", "record_v")


def run_chip(model, inputs, *, dt: Optional[float] = None, profile: ProfileLike = "chip", ticks: Optional[int] = None,
             record_v: bool = False, **conversion) -> Recording:
    """``model`` (a NIR graph or its path) on the emulated chip: ``inputs`` (T, N) or (B, T, ...)
    0/1, or a dict per input population; ``dt``, ``profile`` and ``conversion`` options as
    :func:`settings_for` (an unknown keyword is a ``TypeError``). Runs ``ticks`` ticks
    (default: the input's length)."""
    check_keywords("run_chip", conversion, RUN_CHIP_KEYWORDS)
    return chip_run(model, inputs, dt, profile, ticks, record_v, **conversion).run
