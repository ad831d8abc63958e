"""What a network takes as input: 0/1 rasters per input population, checked and normalized.

Inputs are 0/1 spike rasters per input population, shaped (T, N) or (B, T, N)
(trailing axes may be the population's shape, e.g. (B, T, 2, 32, 32)), or a
:class:`~emu.spikes.Recording` holding the input populations. A single array feeds
a network with one input population. The emulator, the float reference, the chip
script and the validator all take inputs through :func:`normalize_inputs`.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Union

import numpy as np

from emu.errors import UserError
from emu.network import Network
from emu.resources import check_run
from emu.spikes import Recording, as_spike_raster


class InputError(UserError):
    """Input spikes do not fit the network (shape, values, ticks)."""


Inputs = Union[np.ndarray, Dict[str, np.ndarray], Recording]


def input_shapes(network: Network) -> Dict[str, tuple]:
    """The input populations of a network and their neuron shapes, in order."""
    return {n: network.populations[n].shape for n in network.inputs}


def normalize_inputs(network: Union[Network, Mapping[str, tuple]], inputs: Inputs, ticks: Optional[int] = None):
    """Input rasters as ``{population: (B, T, N) bool}`` and the tick count.

    ``network``: a :class:`Network`, or its input populations' shapes. Rasters shorter
    than ``ticks`` are padded with silence; longer ones are an error (nothing is
    silently dropped).
    """
    shapes = input_shapes(network) if isinstance(network, Network) else dict(network)
    names = list(shapes)
    if isinstance(inputs, Recording):
        inputs = {n: inputs.raster(n) for n in inputs.populations if n in names}
    if not isinstance(inputs, dict):
        if len(names) != 1:
            raise InputError(f"network has {len(names)} input populations {names}: pass a dict name -> raster")
        inputs = {names[0]: inputs}
    unknown = set(inputs) - set(names)
    if unknown:
        raise InputError(f"inputs for unknown population(s) {sorted(unknown)}; input populations are {names}")
    missing = set(names) - set(inputs)
    if missing:
        raise InputError(f"no input given for population(s) {sorted(missing)}")
    out, batch, length = {}, None, None
    for name, arr in inputs.items():
        a = np.asarray(arr)
        shape = tuple(shapes[name])
        size = int(np.prod(shape))
        if a.shape[-len(shape):] == shape and a.ndim in (len(shape) + 1, len(shape) + 2):
            a = a.reshape(a.shape[: a.ndim - len(shape)] + (size,))
        if a.ndim == 2:
            a = a[None]
        if a.ndim != 3 or a.shape[2] != size:
            raise InputError(
                f"input {name!r}: raster of shape {np.shape(arr)} does not fit population shape {shape} "
                f"(expected (T, {size}) or (B, T, {size}) or trailing axes {shape})"
            )
        if a.dtype != bool:
            a = as_spike_raster(a, f"input {name!r}", ndim=None)
        if batch not in (None, a.shape[0]) or length not in (None, a.shape[1]):
            raise InputError(f"input {name!r}: batch/tick axes {a.shape[:2]} differ from other inputs ({batch}, {length})")
        batch, length = a.shape[0], a.shape[1]
        out[name] = a
    ticks = length if ticks is None else int(ticks)
    if ticks < 0:
        raise InputError(f"ticks must be >= 0, got {ticks}")
    if length > ticks:
        extra = sum(int(a[:, ticks:].sum()) for a in out.values())
        if extra:
            raise InputError(f"inputs have {extra} spikes at or after tick {ticks}; run more ticks or cut the input")
    if isinstance(network, Network):  # the run's inputs, recording and buffers, before any is allocated
        check_run(batch, ticks, sum(p.size for p in network.populations.values()),
                  sum(a.shape[2] for a in out.values()))
    for name, a in out.items():
        if length < ticks:
            a = np.concatenate([a, np.zeros((a.shape[0], ticks - length, a.shape[2]), bool)], axis=1)
        out[name] = a[:, :ticks]
    return out, ticks


