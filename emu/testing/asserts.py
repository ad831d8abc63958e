"""The chip's accuracy against the user's float model, as a test assertion.

:func:`assert_accuracy_within` runs the user's float model (the float reference) and the
emulated chip on labelled samples and fails, with the attribution's finding, when the
chip loses more than ``max_drop`` accuracy.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from emu.inputs import normalize_inputs
from validate.accuracy import ChipVsFloat, chip_vs_float
from validate.attribution import attribute
from validate.conversion_warnings import python_warning, warn_zeroed_weights

from .runs import ProfileLike, check_keywords, model_source, read_model, settings_for

ACCURACY_KEYWORDS = ("dt", "max_drop", "profile")


def assert_accuracy_within(model, inputs, labels, *, dt: Optional[float], max_drop: float,
                           profile: ProfileLike = "chip", **conversion) -> ChipVsFloat:
    """Fail when the emulated chip's accuracy on (``inputs``, ``labels``) is more than ``max_drop``
    (a fraction: 0.01 = one point) below the float model's; the message is the attribution's
    finding (which semantic factor costs how much). ``model``: a NIR graph or its path;
    ``inputs``: (B, T, ...) 0/1 for one input population, or a dict; ``dt``: seconds per tick
    (None: the graph's metadata); ``conversion``: as :func:`emu.testing.run_chip` (an unknown
    keyword is a ``TypeError``). Returns both runs (:class:`validate.accuracy.ChipVsFloat`)."""
    __tracebackhide__ = True
    check_keywords("assert_accuracy_within", conversion, ACCURACY_KEYWORDS)
    if not 0 <= max_drop <= 1:
        raise ValueError(f"max_drop is a fraction of accuracy in [0, 1], got {max_drop!r}")
    graph = read_model(model)
    settings = settings_for(graph, dt, profile, model_source(model), **conversion)
    runs = chip_vs_float(graph, settings, inputs, progress=False)
    warn_zeroed_weights(runs.network, settings.profile, say=python_warning)
    acc_float, acc_chip = runs.accuracies(labels)
    if acc_float - acc_chip > max_drop + 1e-12:
        rasters, _ = normalize_inputs(runs.network, inputs)
        att = attribute(runs.network, rasters, np.asarray(labels), target=settings.profile,
                        reference=runs.float_run, output=runs.output, progress=False)
        raise AssertionError(f"chip accuracy {100 * acc_chip:.1f} % is {100 * (acc_float - acc_chip):.1f} points below "
                             f"the float model's {100 * acc_float:.1f} % (max_drop {100 * max_drop:.1f} points). "
                             f"{att.finding()}")
    return runs
