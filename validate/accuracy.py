"""The user's model and the emulated chip on the same samples, aligned and classified one way.

:func:`chip_vs_float` runs the float reference (the NIR graph as snnTorch runs it) and
the emulator (the converted network under the chip profile) on the same inputs. The
chip answers one tick per connection later, so it runs that many extra silent ticks
and its spikes are shifted back by each population's latency
(:func:`emu.timing.latency_shifts`): tick ``t`` of both runs then pairs. Both runs
are classified by :func:`validate.metrics.predicted_classes` on the output population.
"""
from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Dict, Optional

import nir
import numpy as np

from emu.engine import Emulator
from emu.inputs import normalize_inputs
from emu.network import Network
from emu.parallel import in_background
from emu.nir_import import from_nir
from emu.profile import SemanticsProfile
from emu.settings import Settings
from emu.spikes import Recording
from emu.timing import depth as timing_depth
from emu.timing import latency_shifts

from .float_reference import FloatReference
from .float_runs import float_run
from .metrics import predicted_classes


def chip_shifts(network: Network, profile: SemanticsProfile) -> Dict[str, int]:
    """Per neuron population, how many ticks the chip answers later than the float model."""
    shifts = latency_shifts(network, profile, SemanticsProfile.snntorch(), reference_delays=False)
    return {n: s for n, s in shifts.items() if network.populations[n].model != "input"}


@dataclass
class ChipVsFloat:
    """Both runs of every sample: ``float_run`` (the float reference) and ``chip_run`` (the
    emulator, shifted back by ``shifts`` and cut to the input's ticks); ``output`` is the
    population that classifies; ``seconds``: float, load (conversion and kernels), chip."""

    network: Network
    settings: Settings
    float_run: Recording
    chip_run: Recording
    shifts: Dict[str, int]
    output: str
    seconds: Dict[str, float] = field(default_factory=dict)

    @property
    def float_classes(self) -> np.ndarray:
        return predicted_classes(self.float_run.raster(self.output))

    @property
    def chip_classes(self) -> np.ndarray:
        return predicted_classes(self.chip_run.raster(self.output))

    def accuracies(self, labels) -> tuple:
        """(float accuracy, chip accuracy) against ``labels``."""
        labels = np.asarray(labels)
        return float(np.mean(self.float_classes == labels)), float(np.mean(self.chip_classes == labels))


def chip_vs_float(graph: nir.NIRGraph, settings: Settings, inputs, output: Optional[str] = None,
                  progress: Optional[bool] = None, emulator: Optional[Emulator] = None,
                  float_rec: Optional["Future[Recording]"] = None) -> ChipVsFloat:
    """Run ``graph`` as the user's float model and on the emulated chip (module doc).
    ``inputs``: what the emulator takes ((B, T, ...) for one input population, or a dict).
    ``emulator``: one already built for ``settings`` (its compiled kernels are reused).
    ``float_rec``: the float run of these inputs under ``settings.float`` already under way
    (:func:`background_float_run`: the caller runs the emulator meanwhile), instead of
    running it here first."""
    t0 = time.perf_counter()
    if emulator is None:
        emulator = Emulator(from_nir(graph, settings.conversion), settings.profile)
    network = emulator.network
    rasters, ticks = normalize_inputs(network, inputs)
    t_build = time.perf_counter() - t0
    # here, in this thread, unless the caller has it under way: a library call leaves no thread behind
    here = float_run(FloatReference(graph, **dataclasses.asdict(settings.float)), rasters, ticks, progress=progress) \
        if float_rec is None else None
    t0 = time.perf_counter()
    emulator({k: r[:1, :1] for k, r in rasters.items()})  # compiled on first use (numba's disk cache after)
    t_load = t_build + time.perf_counter() - t0
    t0 = time.perf_counter()
    result = emulator(rasters, ticks=ticks + timing_depth(network, settings.profile.synaptic_latency),
                      progress=progress)
    t_chip = time.perf_counter() - t0
    float_rec = here if here is not None else float_rec.result()
    t_float = float_rec.meta["seconds"]
    shifts = chip_shifts(network, settings.profile)
    order = [n for n in network.order() if n in shifts]
    return ChipVsFloat(network, settings, float_rec, result.shifted(shifts, ticks), shifts, output or order[-1],
                       dict(float=t_float, load=t_load, chip=t_chip))


def background_float_run(graph: nir.NIRGraph, settings: Settings, rasters, ticks: int,
                         progress: Optional[bool] = None) -> "Future[Recording]":
    """The float run of ``rasters`` under ``settings.float`` (from the disk cache when it has it),
    started on a thread of its own: the caller runs the emulator meanwhile."""
    reference = FloatReference(graph, **dataclasses.asdict(settings.float))
    return in_background(float_run, reference, rasters, ticks, progress=progress)
