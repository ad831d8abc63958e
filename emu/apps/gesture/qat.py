"""Quantization-aware training: the chip's weight quantizer in the forward pass.

Every Conv2d / Linear weight of a model is replaced (a ``torch.nn.utils.parametrize``
parametrization) by its fake-quantized value: per layer, scale = wmax / max|W|
(or a percentile of |W|, as the paper's PTQ), integer = truncation toward zero
(the chip converter's cast; ``nearest`` as an option), clipped to [-wmax, wmax],
divided by the scale again. Gradients pass straight through (``w + (q - w).detach()``).
In the gesture network every population has exactly one incoming weight layer,
so the per-layer scale is the converter's per-population scale.

A small torch implementation rather than brevitas: brevitas is not a dependency
here, and what the chip does is this one quantizer; its per-layer scale must be
exactly the converter's (max or percentile of |W| of the layer), which brevitas'
learned or running-statistics scales are not.

After training, :func:`export_integer` gives the chip-ready NIR graph: integer
weights in [-wmax, wmax], exactly the integers the training saw, and thresholds
multiplied by each layer's scale, so it converts with no further scaling.
"""
from __future__ import annotations

from typing import Iterator, Optional, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from emu.apps.gesture.export import to_nir
from emu.apps.gesture.ptq import populations, rescale_population
from emu.numerics import round_weights, weight_max


class ChipWeightQuant(nn.Module):
    """Fake quantization of a weight tensor as the chip's converter quantizes it."""

    def __init__(self, bits: int = 8, percentile: Optional[float] = None, rounding: str = "truncate"):
        super().__init__()
        if rounding not in ("truncate", "nearest"):
            raise ValueError(f"rounding must be 'truncate' or 'nearest', got {rounding!r}")
        self.wmax = weight_max(bits)
        self.percentile = percentile
        self.rounding = rounding

    def scale(self, w: torch.Tensor) -> torch.Tensor:
        mag = w.detach().abs().flatten().double()
        top = mag.max() if self.percentile is None else torch.quantile(mag, self.percentile / 100)
        # a true float64 division, as the converter's numpy (torch's int / tensor is
        # reciprocal-then-multiply, which rounds differently)
        return torch.tensor(float(self.wmax), dtype=torch.float64) / top.clamp_min(1e-30)

    def integers(self, w: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(``w`` times the scale, rounded but not yet clipped, in float64; the scale)."""
        scale = self.scale(w)
        x = w.detach().double() * scale
        return torch.from_numpy(round_weights(x.numpy(), self.rounding)), scale

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        rounded, scale = self.integers(w)
        q = (rounded.clamp(-self.wmax, self.wmax) / scale).to(w.dtype)
        return w + (q - w).detach()  # straight-through gradient


def quantization_aware(model: nn.Module, bits: int = 8, percentile: Optional[float] = None,
                       rounding: str = "truncate") -> nn.Module:
    """Put :class:`ChipWeightQuant` on every Conv2d / Linear weight of ``model`` (in place)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and not parametrize.is_parametrized(module, "weight"):
            parametrize.register_parametrization(module, "weight", ChipWeightQuant(bits, percentile, rounding))
    return model


def _quantized_layers(model: nn.Module) -> Iterator[Tuple[str, ChipWeightQuant, torch.Tensor]]:
    """(layer name as the NIR graph names it, its quantizer, its trained float weight) per quantized layer."""
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            weight = module.parametrizations.weight
            yield name.split(".")[-1], weight[0], weight.original.detach()


def integer_weights(model: nn.Module) -> dict:
    """Per quantized layer name: the integers its forward pass uses."""
    out = {}
    for name, quant, w in _quantized_layers(model):
        rounded, _ = quant.integers(w)
        out[name] = rounded.clamp(-quant.wmax, quant.wmax).numpy()
    return out


def export_integer(model, dt: float = 1e-3):
    """The chip-ready NIR graph of a QAT gesture model and a report of its scales.

    Each quantized layer's weight becomes the integers its forward pass uses
    (:func:`integer_weights`, within ±wmax of its bit width), and the bias of that
    layer and the voltages of the LIF it feeds are multiplied by the layer's scale
    (:func:`emu.apps.gesture.ptq.rescale_population`): the graph then converts with
    ``weight_scale=None``. The report is :func:`emu.apps.gesture.ptq.quantize`'s shape:
    ``n_clipped`` and per population ``w_scale``, ``weight_max``, ``inputs``,
    ``n_weights``, ``n_clipped``."""
    graph = to_nir(model, dt=dt)
    layers = {name: (quant, w) for name, quant, w in _quantized_layers(model)}
    report = {"n_clipped": 0, "populations": {}}
    for lif_name, inputs in populations(graph).items():
        for name in inputs:
            if name not in layers:
                raise ValueError(f"layer {name!r} is not quantization-aware (see quantization_aware)")
            quant, w = layers[name]
            rounded, scale = quant.integers(w)
            node = graph.nodes[name]
            node.weight = rounded.clamp(-quant.wmax, quant.wmax).numpy().astype(np.asarray(node.weight).dtype)
            rescale_population(graph, lif_name, [name], float(scale))
            n_clipped = int((rounded.abs() > quant.wmax).sum())
            report["populations"][lif_name] = {"w_scale": float(scale), "weight_max": quant.wmax, "inputs": [name],
                                               "n_weights": int(rounded.numel()), "n_clipped": n_clipped}
            report["n_clipped"] += n_clipped
    return graph, report
