"""Membrane traces of one neuron on both sides of a comparison, drawn like with like.

Runs record a membrane at different moments of the tick: the chip and the emulator's chip
profile after the reset of that tick's spike (same-tick reset), snnTorch's default
(``reset_delay=True``, the emulator's ``next_tick``) before it, the reset taking effect
the next tick. Drawn as recorded, the two lines part one tick before the spikes do, for
no reason but the recording. :func:`after_reset` puts a trace recorded before the reset
where the same-tick reset leaves it (``v - threshold`` for subtract, 0 for zero: the
chip ignores NIR's ``v_reset``), so both lines show the membrane after the reset, in
NIR units. :func:`membrane_figure` then draws them around the divergence: the y-range
around the threshold and the values near it (the full range one click away), the tick
where the values first part marked, and the tick where the spikes part.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from emu.network import Network
from emu.timing import align

from .figures import ONLY_A, ONLY_B, voltage_traces

RESET_TIMINGS = ("same_tick", "next_tick")


@dataclass(frozen=True)
class Voltages:
    """How one side of a comparison recorded membranes: ``units`` ``"chip"`` (times the population's
    scale, as the emulator and the chip hold them) or ``"nir"`` (the float reference's);
    ``reset_timing``: ``"same_tick"`` records after the reset of a spike's tick, ``"next_tick"``
    before it; ``reset_mode``: ``"subtract"`` or ``"zero"``."""

    units: str = "chip"
    reset_timing: str = "same_tick"
    reset_mode: str = "subtract"


def emulator_voltages(profile) -> Voltages:
    """How the emulator records under ``profile`` (a :class:`~emu.profile.SemanticsProfile`): chip units."""
    return Voltages("chip", profile.reset_timing, profile.reset_mode)


def float_voltages(settings) -> Voltages:
    """How the float reference records under ``settings`` (:class:`emu.settings.FloatSettings`, or the
    :class:`~validate.float_reference.FloatReference` itself: both have ``reset`` and ``reset_timing``)."""
    return Voltages("nir", settings.reset_timing, settings.reset)


def after_reset(v: np.ndarray, spikes: np.ndarray, threshold: float, side: Voltages) -> np.ndarray:
    """``v`` (per tick, NIR units) as a same-tick reset leaves it (module doc)."""
    v = np.asarray(v, np.float64)
    if side.reset_timing == "same_tick":
        return v
    s = np.asarray(spikes, bool)[:len(v)]
    if side.reset_mode == "zero":
        return np.where(s, 0.0, v)
    return v - threshold * s


#: two traces "part" where they differ by more than this share of the threshold (quantized
#: weights make them differ by less from the first tick on)
PART_TOLERANCE = 0.01


def first_parting(u: np.ndarray, w: np.ndarray, threshold: float, start: int = 0) -> Optional[int]:
    """The first tick from ``start`` where two traces (both recorded; NaN: not recorded) differ by
    more than :data:`PART_TOLERANCE` of the threshold, or None."""
    n = min(len(u), len(w))
    u, w = np.asarray(u[:n], np.float64), np.asarray(w[:n], np.float64)
    tol = PART_TOLERANCE * (abs(threshold) if np.isfinite(threshold) and threshold else 1.0)
    differ = (np.abs(u - w) > tol) & ~(np.isnan(u) | np.isnan(w))
    at = np.flatnonzero(differ[start:])
    return int(at[0]) + start if at.size else None


def membrane_figure(network: Network, pop: str, neuron: Optional[int], tick: int, shift: int,
                    spikes: Tuple[np.ndarray, np.ndarray], volts: Tuple[Optional[np.ndarray], Optional[np.ndarray]],
                    labels: Tuple[str, str], sides: Mapping[str, Voltages], title: str):
    """(figure, neuron, tick where the values part) of one neuron's membranes on both sides around
    ``tick`` (B's time; A lags B by ``shift``); ``neuron`` None: the first that differs at ``tick``.
    ``spikes``/``volts``: (T, N) of A and B; None where a side recorded no voltages."""
    if neuron is None:
        xa, yb = align(spikes[0], spikes[1], shift)
        differ = np.flatnonzero(xa[tick] != yb[tick]) if tick < len(xa) else []
        if not len(differ):
            return None
        neuron = int(differ[0])
    p = network.populations[pop]
    scale = float(p.scale[neuron])
    threshold = float(p.threshold[neuron] / scale)
    traces, kept = [], []
    for side, label, raster, v, color, lag in (("A", labels[0], spikes[0], volts[0], ONLY_A, shift),
                                              ("B", labels[1], spikes[1], volts[1], ONLY_B, 0)):
        if v is None:
            continue
        how = sides.get(side, Voltages())
        nir_v = np.asarray(v[lag:, neuron], np.float64) / (scale if how.units == "chip" else 1.0)
        s = raster[lag:, neuron]
        post = after_reset(nir_v, s, threshold, how)
        traces.append(dict(label=label, v=post, spikes=s, color=color))
        kept.append(post)
    if not traces:
        return None
    parts = first_parting(kept[0], kept[1], threshold) if len(kept) == 2 else None
    fig = voltage_traces(traces, tick, f"{title}: {pop} neuron {neuron} around tick {tick} (after reset, NIR units)",
                         threshold, part_tick=parts)
    return fig, neuron, parts


def trace_caption(pop: str, neuron: int, labels: Sequence[str], parts: Optional[int], tick: int) -> str:
    """The caption of :func:`membrane_figure`: what is drawn and where the lines part."""
    where = (f"the values part (by more than {100 * PART_TOLERANCE:g} % of the threshold) at tick {parts}" +
             (f", the spikes at tick {tick}" if parts != tick else ", where the spikes part too")) \
        if parts is not None else f"the spikes part at tick {tick}"
    return (f"membrane of {pop} neuron {neuron} on both sides ({labels[0]} and {labels[1]}), each after the reset of "
            f"its tick, in NIR units; threshold dashed, spikes as triangles; {where}. The view is zoomed around the "
            f"threshold near the divergence: 'full range' shows the whole trace")
