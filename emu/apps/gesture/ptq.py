"""Paper-style post-training quantization of a NIR graph to int8 weights.

For every LIF population, over all weight nodes (Conv2d / Linear / Affine) that
feed it (one in the paper's chain)::

    w_scale = 127 / percentile(|W|, p)            (p = 99.9 by default; 100 = max|W|)
    W_int   = trunc(W * w_scale)                  (toward zero, as the chip's
                                                   astype(int8); or nearest with
                                                   halves to even, np.rint)
    W_int   = clip(W_int, -127, 127)              (clipped weights are counted and
                                                   reported, never wrapped)

Rounding and clipping are :func:`emu.numerics.quantize`'s.
    v_threshold, v_leak, v_reset, bias  *=  w_scale

Scaling every voltage-like quantity by the weights' factor leaves the dynamics
unchanged (the chip converter's automatic weight scaling does the same with
p = 100), so the only change is the rounding and clipping of the weights. The
quantized graph stores the integer weights in the original float dtype and adds
``"w_scale"`` to each LIF node's metadata (``v_quantized = w_scale * v_float``).
``tau``, ``r`` and therefore ``alpha`` are untouched.
"""
from __future__ import annotations

import copy
from typing import Callable, Dict, List, Sequence

import nir
import numpy as np

from emu.numerics import quantize as quantize_integers, weight_max

from .export import chain

WEIGHT_NODES = (nir.Conv2d, nir.Linear, nir.Affine)
NEURON_NODES = (nir.LIF, nir.IF, nir.CubaLIF, nir.LI, nir.CubaLI)
WEIGHT_BITS = 8
MAX_WEIGHT = weight_max(WEIGHT_BITS)
#: this module's rounding names -> emu.numerics modes (PTQ's nearest rounds halves to even)
ROUNDING = {"trunc": "truncate", "nearest": "nearest_even"}
DEFAULT_PERCENTILES = (99.0, 99.5, 99.9, 99.99, 100.0)


def populations(graph: nir.NIRGraph) -> Dict[str, List[str]]:
    """LIF node name -> names of the weight nodes feeding it, for a chain graph.

    Raises ``ValueError`` for two weight nodes in a row (the chip converter
    rejects them too) and for a weight node that feeds no LIF.
    """
    feeds: Dict[str, List[str]] = {}
    pending: List[str] = []
    for name in chain(graph):
        node = graph.nodes[name]
        if isinstance(node, WEIGHT_NODES):
            if pending:
                raise ValueError(f"two weight layers in a row: {pending[-1]!r} -> {name!r}")
            pending.append(name)
        elif isinstance(node, NEURON_NODES):
            if not isinstance(node, nir.LIF):
                raise TypeError(f"node {name!r}: {type(node).__name__} is not supported (LIF only)")
            feeds[name], pending = pending, []
    if pending:
        raise ValueError(f"weight node {pending[0]!r} feeds no LIF population")
    return feeds


def quantize(graph: nir.NIRGraph, percentile: float = 99.9, rounding: str = "trunc"):
    """Quantize ``graph``'s weights to integers in [-127, 127]; return
    ``(quantized graph, report)``. The input graph is not modified.

    The report is a JSON-ready dict: ``percentile``, ``rounding``, ``n_clipped``
    (total) and per population ``w_scale``, ``abs_weight_percentile``, ``inputs``,
    ``n_weights``, ``n_clipped``.
    """
    if rounding not in ROUNDING:
        raise ValueError(f"rounding must be one of {sorted(ROUNDING)}, got {rounding!r}")
    quantized = copy.deepcopy(graph)
    report = {"percentile": float(percentile), "rounding": rounding, "n_clipped": 0, "populations": {}}
    for lif_name, inputs in populations(graph).items():
        weights = [quantized.nodes[name].weight for name in inputs]
        magnitudes = np.concatenate([np.abs(np.asarray(w, dtype=np.float64)).ravel() for w in weights])
        reference = float(np.percentile(magnitudes, percentile)) if magnitudes.size else 0.0
        if reference == 0:
            raise ValueError(f"population {lif_name!r}: the {percentile} percentile of |W| is 0; no scale")
        w_scale = MAX_WEIGHT / reference
        n_clipped = 0
        for name in inputs:
            node = quantized.nodes[name]
            q, clipped = quantize_integers(np.asarray(node.weight, dtype=np.float64) * w_scale, WEIGHT_BITS,
                                           ROUNDING[rounding], overflow="saturate", label=name)
            n_clipped += clipped
            node.weight = q.astype(np.asarray(node.weight).dtype)
        rescale_population(quantized, lif_name, inputs, w_scale)
        report["populations"][lif_name] = {
            "w_scale": w_scale, "abs_weight_percentile": reference, "inputs": list(inputs),
            "n_weights": int(magnitudes.size), "n_clipped": n_clipped}
        report["n_clipped"] += n_clipped
    return quantized, report


def rescale_population(graph: nir.NIRGraph, lif_name: str, inputs: Sequence[str], w_scale: float) -> None:
    """Multiply the biases of the weight nodes ``inputs`` and the voltages of the LIF
    ``lif_name`` by ``w_scale`` (in place) and note it in the LIF's metadata; the
    weights themselves are the caller's."""
    for name in inputs:
        node = graph.nodes[name]
        if not isinstance(node, nir.Linear):
            node.bias = np.asarray(node.bias) * w_scale
    lif = graph.nodes[lif_name]
    lif.v_threshold = lif.v_threshold * w_scale
    lif.v_leak = lif.v_leak * w_scale
    lif.v_reset = lif.v_reset * w_scale
    lif.metadata = {**lif.metadata, "w_scale": w_scale}


def choose_percentile(graph: nir.NIRGraph, score: Callable[[nir.NIRGraph], float],
                      percentiles: Sequence[float] = DEFAULT_PERCENTILES, rounding: str = "trunc") -> dict:
    """Quantize with each percentile, score each quantized graph with ``score``
    (higher is better, e.g. the accuracy on calibration data) and keep the
    best; the earliest percentile in the list wins a tie.

    Returns ``{"percentile", "graph", "report", "scores": {percentile: score}}``.
    """
    best = None
    scores = {}
    for p in percentiles:
        quantized, report = quantize(graph, p, rounding)
        scores[float(p)] = float(score(quantized))
        if best is None or scores[float(p)] > best[0]:
            best = (scores[float(p)], p, quantized, report)
    _, p, quantized, report = best
    return {"percentile": float(p), "graph": quantized, "report": report, "scores": scores}
