"""Numbers as a profile's arithmetic holds them: parameter rounding, weight quantization.

Shared by the numba engine and the numpy reference, so both start from the same
bits; the dynamics are then computed independently by each.

Fixed-point representation (``arithmetic="fixed"``): membrane, synaptic current,
threshold, bias and reset are integers counting LSBs of ``2**-membrane_frac_bits``;
decays are integers counting ``2**-coef_frac_bits``. They are stored in float64,
which holds every such integer and every product exactly (|v| < 2**31,
coefficients < 2**21, so products stay below 2**53).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emu.network import Population
from emu.profile import SemanticsProfile

ROUNDING_CODES = {"none": 0, "truncate": 1, "nearest": 2, "stochastic": 3}


class WeightRangeError(ValueError):
    """Weights beyond the profile's integer range after scaling (never wrapped)."""


@dataclass(frozen=True)
class Numerics:
    """What a profile's arithmetic means for storage and rounding."""

    state_dtype: type
    param_dtype: type
    fixed: bool
    lsb: float  # state units per chip unit (2**frac for fixed, else 1)
    coef_one: float  # decay units per 1.0 (2**coef_frac_bits for fixed, else 1)
    rounding: int  # ROUNDING_CODES of the decay products
    sat_lo: float
    sat_hi: float

    @classmethod
    def of(cls, profile: SemanticsProfile) -> "Numerics":
        a = profile.arithmetic
        if a == "fixed":
            return cls(
                np.float64, np.float64, True, 2.0**profile.membrane_frac_bits, 2.0**profile.coef_frac_bits,
                ROUNDING_CODES[profile.fixed_rounding],
                -(2.0 ** (profile.membrane_bits - 1)), 2.0 ** (profile.membrane_bits - 1) - 1,
            )
        state = np.float32 if a == "chip" else np.float64
        param = np.float64 if a == "float64" else np.float32
        return cls(state, param, False, 1.0, 1.0, ROUNDING_CODES["none"], -np.inf, np.inf)

    def value(self, x, coef: bool = False) -> np.ndarray:
        """Parameters as this arithmetic holds them, in the state dtype."""
        x = np.asarray(x, dtype=np.float64)
        if self.fixed:
            one = self.coef_one if coef else self.lsb
            with np.errstate(invalid="ignore"):
                # infinite thresholds (LI, inputs) stay infinite
                return np.where(np.isfinite(x), np.floor(x * one + 0.5), x)
        return x.astype(self.param_dtype).astype(self.state_dtype)

    def neuron_params(self, pop: Population) -> dict:
        """alpha, alpha_syn, threshold, i_offset, v_reset of a population."""
        n = pop.size
        return dict(
            alpha=self.value(pop.alpha, coef=True),
            alpha_syn=self.value(pop.alpha_syn if pop.alpha_syn is not None else np.zeros(n), coef=True),
            threshold=self.value(pop.threshold),
            i_offset=self.value(pop.i_offset),
            v_reset=self.value(pop.v_reset),
        )

    def weight_units(self, w: np.ndarray) -> np.ndarray:
        """Quantized weights as added to the input buffer (state dtype, LSBs for fixed)."""
        if self.fixed:
            return np.asarray(w, np.float64) * self.lsb
        return np.asarray(w).astype(self.param_dtype).astype(self.state_dtype)


def round_weights(w: np.ndarray, rounding: str) -> np.ndarray:
    """Weights on the integer grid, not yet range-checked: ``truncate`` toward zero
    (as ``astype(int8)``) or ``nearest`` with halves away from zero."""
    w = np.asarray(w, dtype=np.float64)
    if rounding == "truncate":
        return np.trunc(w)
    return np.sign(w) * np.floor(np.abs(w) + 0.5)


def quantize_weights(w: np.ndarray, profile: SemanticsProfile, label: str = "weights"):
    """Integer weights under ``profile.weight_bits`` / ``weight_rounding``.

    Returns ``(weights, n_clipped)``. Out-of-range values raise
    :class:`WeightRangeError` (``weight_overflow="error"``) or are clipped and
    counted (``"saturate"``); they are never wrapped as ``astype(int8)`` would.
    """
    w = np.asarray(w, dtype=np.float64)
    wmax = profile.weight_max
    if wmax is None:
        return w.copy(), 0
    q = round_weights(w, profile.weight_rounding)
    over = np.abs(q) > wmax
    n_over = int(over.sum())
    if n_over and profile.weight_overflow == "error":
        worst = float(np.abs(w).max())
        raise WeightRangeError(
            f"{label}: {n_over} of {w.size} weights are outside [-{wmax}, {wmax}] for weight_bits="
            f"{profile.weight_bits} after scaling (largest |w| = {worst:.6g}); lower the weight scale, "
            f"or use weight_overflow='saturate' to clip them (they are never wrapped)"
        )
    return np.clip(q, -wmax, wmax), n_over
