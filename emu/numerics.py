"""Numbers as the chip holds them: THE weight quantizer and the rounding of parameters.

Every path that turns float weights into integers calls :func:`quantize` (or
:func:`round_weights` when only the grid matters): the emulator, post-training
and quantization-aware training, the chip script's fit checks, ``s2emu fit`` and
the sweep. Each keeps its rounding mode explicit:

=================  ==============================================  =================================
mode               rule                                            used by (today)
=================  ==============================================  =================================
``truncate``       toward zero, as numpy's ``astype(int8)``         the chip converter's conv cast;
                                                                   emulator and QAT default
``nearest``        nearest integer, halves away from zero          profile option ``weight_rounding``
``nearest_even``   nearest integer, halves to even (``np.rint``)   PTQ's ``rounding="nearest"``
=================  ==============================================  =================================

How the chip rounds dense (``lif_no_delay``) weights on the host is open
(``docs/semantics.md``); calibration settles it from a recording.

Fixed-point representation (``arithmetic="fixed"``): membrane, synaptic current,
threshold, bias and reset are integers counting LSBs of ``2**-membrane_frac_bits``;
decays are integers counting ``2**-coef_frac_bits``. They are stored in float64,
which holds every such integer and every product exactly (|v| < 2**31,
coefficients < 2**21, so products stay below 2**53).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Tuple

import numpy as np

from emu.errors import UserError

if TYPE_CHECKING:  # numerics stands below both: it reads their fields only
    from emu.network import Population
    from emu.profile import SemanticsProfile

ROUNDINGS = ("truncate", "nearest", "nearest_even")
OVERFLOWS = ("error", "saturate")
#: how the kernels round fixed-point decay products (0: float arithmetic, no rounding)
ROUNDING_CODES = {"none": 0, "truncate": 1, "nearest": 2, "stochastic": 3}

_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xBF58476D1CE4E5B9)
_K3 = np.uint64(0x94D049BB133111EB)


class WeightRangeError(UserError):
    """Weights beyond the profile's integer range after scaling (never wrapped)."""


def weight_max(bits: Optional[int]) -> Optional[int]:
    """Largest magnitude of a sign-magnitude integer of ``bits`` bits, sign included:
    127 for 8 (int8 of ``lif_no_delay`` / ``lif_conv2d``), 15 for 5 (``lif``: 4-bit
    magnitude + sign). ``None`` (float weights) gives ``None``."""
    return None if bits is None else 2 ** (int(bits) - 1) - 1


def weight_bits(wmax: int) -> int:
    """The bit count whose :func:`weight_max` is ``wmax`` (127 -> 8, 15 -> 5)."""
    bits = int(wmax).bit_length() + 1
    if weight_max(bits) != wmax:
        raise ValueError(f"{wmax} is not 2**(bits-1) - 1 for any bit count")
    return bits


def round_weights(w: np.ndarray, rounding: str) -> np.ndarray:
    """Weights on the integer grid (float64), not yet range-checked; ``rounding`` is
    one of :data:`ROUNDINGS`."""
    w = np.asarray(w, dtype=np.float64)
    if rounding == "truncate":
        return np.trunc(w)
    if rounding == "nearest":
        return np.sign(w) * np.floor(np.abs(w) + 0.5)
    if rounding == "nearest_even":
        return np.rint(w)
    raise ValueError(f"weight rounding {rounding!r} is not one of {', '.join(ROUNDINGS)}")


def quantize(w: np.ndarray, bits: Optional[int], rounding: str, overflow: str = "error",
             label: str = "weights") -> Tuple[np.ndarray, int]:
    """Integer weights of ``bits`` bits (sign included), rounded by ``rounding``.

    Returns ``(weights as float64 integers, number clipped)``. Values beyond
    +-:func:`weight_max` raise :class:`WeightRangeError` (``overflow="error"``) or
    are clipped and counted (``"saturate"``); they are never wrapped, as
    ``astype(int8)`` would. ``bits=None`` keeps float weights (a copy).
    """
    w = np.asarray(w, dtype=np.float64)
    wmax = weight_max(bits)
    if wmax is None:
        return w.copy(), 0
    if overflow not in OVERFLOWS:
        raise ValueError(f"weight overflow {overflow!r} is not one of {', '.join(OVERFLOWS)}")
    q = round_weights(w, rounding)
    n_over = int(np.count_nonzero(np.abs(q) > wmax))
    if n_over and overflow == "error":
        worst = float(np.abs(w).max())
        said = (f"{label}: {n_over} of {w.size} weights are outside [-{wmax}, {wmax}] for {{}} after scaling "
                f"(largest |w| = {worst:.6g}); lower the weight scale, or use {{}} to clip them (they are never "
                f"wrapped)")
        raise WeightRangeError(said.format(f"weight_bits={bits}", "weight_overflow='saturate'"),
                               cli=said.format(f"--weight-bits {bits}", "--saturate-weights"))
    return np.clip(q, -wmax, wmax), n_over


def quantize_weights(w: np.ndarray, profile: "SemanticsProfile", label: str = "weights") -> Tuple[np.ndarray, int]:
    """:func:`quantize` with a profile's ``weight_bits``, ``weight_rounding`` and ``weight_overflow``."""
    return quantize(w, profile.weight_bits, profile.weight_rounding, profile.weight_overflow, label)


def zeroed_weight_notes(network, profile: "SemanticsProfile") -> list:
    """THE rule of zeroed weights: one sentence per projection whose integer weights lose more
    than half of its non-zero float weights to 0, the sign of a missing weight scale (with
    ``weight_scale=None`` and weights well below 1, almost every weight truncates to 0 and the
    network falls silent) or of too few weight bits. Commands say them through
    :func:`validate.conversion_warnings.warn_zeroed_weights`."""
    if profile.weight_bits is None:
        return []
    scaled = (network.meta.get("conversion") or {}).get("weight_scale") is not None
    hint = ("after scaling most of them are below one integer step: a larger scale (a lower --scale-percentile) or "
            "more --weight-bits keeps them" if scaled else "the weights may need scaling (--scale / --auto-scale)")
    notes = []
    for pr in network.projections:
        nonzero = pr.weight != 0
        q, _ = quantize(pr.weight, profile.weight_bits, profile.weight_rounding, "saturate")
        lost = int((q[nonzero] == 0).sum())
        if nonzero.any() and lost > nonzero.sum() / 2:
            notes.append(f"projection {pr.label}: {lost} of {int(nonzero.sum())} non-zero weights become 0 as "
                         f"{profile.weight_bits}-bit integers ({profile.weight_rounding}); {hint}")
    return notes


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
    float32_decays: bool = False  # decays rounded to float32 before the arithmetic holds them
    synaptic_bias: bool = False  # a CubaLIF's bias drives its synaptic current (else: folded into i_offset)

    @classmethod
    def of(cls, profile: "SemanticsProfile") -> "Numerics":
        a = profile.arithmetic
        choices = dict(float32_decays=profile.decay_storage == "float32", synaptic_bias=profile.bias_path == "synaptic")
        if a == "fixed":
            return cls(
                np.float64, np.float64, True, 2.0**profile.membrane_frac_bits, 2.0**profile.coef_frac_bits,
                ROUNDING_CODES[profile.fixed_rounding],
                -(2.0 ** (profile.membrane_bits - 1)), 2.0 ** (profile.membrane_bits - 1) - 1, **choices,
            )
        state = np.float32 if a == "chip" else np.float64
        param = np.float64 if a == "float64" else np.float32
        return cls(state, param, False, 1.0, 1.0, ROUNDING_CODES["none"], -np.inf, np.inf, **choices)

    def value(self, x, coef: bool = False) -> np.ndarray:
        """Parameters as this arithmetic holds them, in the state dtype."""
        x = np.asarray(x, dtype=np.float64)
        if coef and self.float32_decays:
            x = x.astype(np.float32).astype(np.float64)
        if self.fixed:
            one = self.coef_one if coef else self.lsb
            with np.errstate(invalid="ignore"):
                # infinite thresholds (LI, inputs) stay infinite
                return np.where(np.isfinite(x), np.floor(x * one + 0.5), x)
        return x.astype(self.param_dtype).astype(self.state_dtype)

    def neuron_params(self, pop: "Population") -> dict:
        """alpha, alpha_syn, threshold, i_offset, syn_bias, v_reset of a population, as the
        arithmetic holds them; the bias where ``bias_path`` puts it."""
        n = pop.size
        cuba = pop.model == "cuba_lif"
        i_offset, syn_bias = pop.i_offset, np.zeros(n)
        if cuba and self.synaptic_bias:
            i_offset, syn_bias = pop.i_offset - pop.bias_offset, pop.syn_bias
        return dict(
            alpha=self.value(pop.alpha, coef=True),
            alpha_syn=self.value(pop.alpha_syn if cuba else np.zeros(n), coef=True),
            threshold=self.value(pop.threshold),
            i_offset=self.value(i_offset),
            syn_bias=self.value(syn_bias),
            v_reset=self.value(pop.v_reset),
        )

    def weight_units(self, w: np.ndarray) -> np.ndarray:
        """Quantized weights as added to the input buffer (state dtype, LSBs for fixed)."""
        if self.fixed:
            return np.asarray(w, np.float64) * self.lsb
        return np.asarray(w).astype(self.param_dtype).astype(self.state_dtype)


def stochastic_bits(seed, neuron, tick, stream):
    """splitmix64 of (seed, neuron, tick, stream): the random bits of stochastic rounding.

    A counter-based hash, so a neuron's rounding at a tick never depends on batch
    order or threads. Works on numpy uint64 scalars and arrays alike; the kernels
    compile this very function.
    """
    z = np.uint64(seed) * _K1 + np.uint64(neuron) * _K2 + np.uint64(tick) * _K3 + np.uint64(stream)
    z = (z ^ (z >> np.uint64(30))) * _K2
    z = (z ^ (z >> np.uint64(27))) * _K3
    return z ^ (z >> np.uint64(31))
