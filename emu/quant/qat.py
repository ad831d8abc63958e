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
weights and scaled thresholds, equal to the integers the training saw.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn.utils import parametrize


class ChipWeightQuant(nn.Module):
    """Fake quantization of a weight tensor as the chip's converter quantizes it."""

    def __init__(self, bits: int = 8, percentile: Optional[float] = None, rounding: str = "truncate"):
        super().__init__()
        if rounding not in ("truncate", "nearest"):
            raise ValueError(f"rounding must be 'truncate' or 'nearest', got {rounding!r}")
        self.wmax = 2 ** (bits - 1) - 1
        self.percentile = percentile
        self.rounding = rounding

    def scale(self, w: torch.Tensor) -> torch.Tensor:
        mag = w.detach().abs().flatten().double()
        top = mag.max() if self.percentile is None else torch.quantile(mag, self.percentile / 100)
        # a true float64 division, as the converter's numpy (torch's int / tensor is
        # reciprocal-then-multiply, which rounds differently)
        return torch.tensor(float(self.wmax), dtype=torch.float64) / top.clamp_min(1e-30)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        scale = self.scale(w)
        x = w.double() * scale
        q = torch.trunc(x) if self.rounding == "truncate" else torch.sign(x) * torch.floor(x.abs() + 0.5)
        q = (q.clamp(-self.wmax, self.wmax) / scale).to(w.dtype)
        return w + (q - w).detach()  # straight-through gradient


def quantization_aware(model: nn.Module, bits: int = 8, percentile: Optional[float] = None,
                       rounding: str = "truncate") -> nn.Module:
    """Put :class:`ChipWeightQuant` on every Conv2d / Linear weight of ``model`` (in place)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and not parametrize.is_parametrized(module, "weight"):
            parametrize.register_parametrization(module, "weight", ChipWeightQuant(bits, percentile, rounding))
    return model


def integer_weights(model: nn.Module) -> dict:
    """Per quantized layer name: the integers its forward pass uses."""
    out = {}
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            quant = module.parametrizations.weight[0]
            w = module.parametrizations.weight.original.detach()
            scale = quant.scale(w)
            x = w.double() * scale
            q = torch.trunc(x) if quant.rounding == "truncate" else torch.sign(x) * torch.floor(x.abs() + 0.5)
            out[name.split(".")[-1]] = q.clamp(-quant.wmax, quant.wmax).numpy()
    return out


def export_integer(model, dt: float = 1e-3):
    """The chip-ready NIR graph of a QAT gesture model: integer weights (exactly the
    training's), thresholds scaled alike; plus the PTQ-style report of scales.

    The fake-quantized float weights sit on the integer grid up to float rounding,
    so re-scaling them by max|W| and rounding to nearest recovers the integers."""
    from emu.gesture.export import to_nir
    from emu.gesture.ptq import quantize

    return quantize(to_nir(model, dt=dt), percentile=100.0, rounding="nearest")
