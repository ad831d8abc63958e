"""The semantics profile: every arithmetic and timing choice of a run, by name.

A :class:`~emu.network.Network` says *what* is computed; a ``SemanticsProfile``
says *how* (the Lava process / process-model split). Each field is one factor the
validator can switch on its own; the defaults are the SpiNNaker2 chip's
(``docs/semantics.md``). Presets: :meth:`SemanticsProfile.chip`,
:meth:`~SemanticsProfile.brian2`, :meth:`~SemanticsProfile.float64`,
:meth:`~SemanticsProfile.fixed` and :meth:`~SemanticsProfile.snntorch`.
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Literal, Optional

from emu.errors import UserError
from emu.numerics import ROUNDINGS, weight_max
from emu.resources import MAX_LAG

Arithmetic = Literal["chip", "brian2", "float64", "fixed"]

_CHOICES = {
    "arithmetic": ("chip", "brian2", "float64", "fixed"),
    "reset_mode": ("zero", "subtract"),
    "reset_timing": ("same_tick", "next_tick"),
    "spike_condition": (">", ">="),
    "weight_rounding": ROUNDINGS,
    "weight_overflow": ("error", "saturate"),
    "cuba_current": ("this_tick", "last_tick"),
    "bias_path": ("membrane", "synaptic"),
    "decay_storage": ("arithmetic", "float32"),
    "fixed_rounding": ("truncate", "nearest", "stochastic"),
}


class ProfileError(UserError):
    """A semantics profile option has a value the emulator does not know."""


@dataclass(frozen=True)
class SemanticsProfile:
    """How a network is computed. Defaults reproduce the SpiNNaker2 chip.

    arithmetic
        ``chip``: membrane, currents and parameters in float32 (the PE's ARM
        Cortex-M4F). ``brian2``: float64 state with float32-rounded parameters, as
        py-spinnaker2's brian2 reference backend (matches the golden trace to
        1e-15). ``float64``: everything float64 (ideal). ``fixed``: membrane and
        synaptic current as signed ``membrane_bits``-bit words with
        ``membrane_frac_bits`` fraction bits, saturating (counted per population),
        decays as ``coef_frac_bits``-bit fixed-point coefficients, products
        rounded by ``fixed_rounding``.
    reset_mode
        ``subtract`` (v -= threshold; the NIR converter's default) or ``zero``
        (v = v_reset, 0 on the chip).
    reset_timing
        ``same_tick``: the chip resets in the tick of the spike and records the
        post-reset voltage. ``next_tick``: snnTorch ``Leaky(reset_delay=True)``:
        the reset of tick t is applied at t+1 (zero reset then keeps that tick's
        input); the recorded voltage is the pre-reset value.
    spike_condition
        ``>`` (chip: strictly above threshold) or ``>=``.
    synaptic_latency
        Ticks every connection adds before its extra delay: 1 on the chip, 0 for
        snnTorch's same-step propagation (recurrent edges always take at least 1).
    weight_bits
        Bits of a sign-magnitude integer weight, sign included: range
        +-(2**(weight_bits-1) - 1). 8 -> [-127, 127] (``lif_no_delay``,
        ``lif_conv2d``); 5 -> [-15, 15] (``lif``: 4-bit magnitude + sign). ``None`` keeps float weights
        (no quantization; float32 under chip/brian2 arithmetic).
    weight_rounding
        ``truncate`` (toward zero, as ``astype(int8)``; default), ``nearest``
        (halves away from zero) or ``nearest_even`` (halves to even, ``np.rint``);
        see :mod:`emu.numerics`. Open for dense weights on the chip.
    weight_overflow
        ``error``: weights beyond the range after scaling raise, with counts.
        ``saturate``: clip them and report the count in the run metadata. Never wrap.
    cuba_current
        CubaLIF: whether the membrane integrates this tick's synaptic current
        (default; open, see ``docs/semantics.md``) or last tick's.
    bias_path
        CubaLIF: ``membrane`` (the chip converter: the bias's steady state is added to
        the membrane every tick from tick 0) or ``synaptic`` (NIR and snnTorch: the
        bias drives the synaptic current every tick, ``syn = (alpha_syn * syn +
        inputs) + syn_bias``).
    decay_storage
        How decays are held before the arithmetic uses them: ``arithmetic`` (its
        parameter type) or ``float32`` first (snnTorch stores ``beta`` as a float32
        tensor, so a trained model's decay is ``float32(beta)``).
    seed
        Seed of stochastic rounding (a counter-based hash of seed, neuron and
        tick, so batch order never changes the result).
    """

    arithmetic: Arithmetic = "chip"
    reset_mode: Literal["zero", "subtract"] = "subtract"
    reset_timing: Literal["same_tick", "next_tick"] = "same_tick"
    spike_condition: Literal[">", ">="] = ">"
    synaptic_latency: int = 1
    weight_bits: Optional[int] = 8
    weight_rounding: Literal["truncate", "nearest", "nearest_even"] = "truncate"
    weight_overflow: Literal["error", "saturate"] = "error"
    cuba_current: Literal["this_tick", "last_tick"] = "this_tick"
    bias_path: Literal["membrane", "synaptic"] = "membrane"
    decay_storage: Literal["arithmetic", "float32"] = "arithmetic"
    membrane_bits: int = 32
    membrane_frac_bits: int = 8
    coef_frac_bits: int = 16
    fixed_rounding: Literal["truncate", "nearest", "stochastic"] = "nearest"
    seed: int = 0

    def __post_init__(self):
        for field, allowed in _CHOICES.items():
            value = getattr(self, field)
            if value not in allowed:
                raise ProfileError(
                    f"profile option {field}={value!r} is not one of {', '.join(map(repr, allowed))}"
                )
        for name in ("synaptic_latency", "weight_bits", "membrane_bits", "membrane_frac_bits", "coef_frac_bits", "seed"):
            value = getattr(self, name)
            if not (value is None and name == "weight_bits") and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
                raise ProfileError(f"profile option {name}={value!r} must be an integer")
        if not 0 <= self.synaptic_latency <= MAX_LAG:
            raise ProfileError(f"profile option synaptic_latency={self.synaptic_latency!r} must be an int in 0..{MAX_LAG}")
        if self.weight_bits is not None and not (2 <= self.weight_bits <= 16):
            raise ProfileError(f"profile option weight_bits={self.weight_bits!r} must be None or 2..16")
        if not (8 <= self.membrane_bits <= 32):
            raise ProfileError(f"profile option membrane_bits={self.membrane_bits!r} must be 8..32")
        if not (0 <= self.membrane_frac_bits < self.membrane_bits):
            raise ProfileError(
                f"profile option membrane_frac_bits={self.membrane_frac_bits!r} must be 0..membrane_bits-1"
            )
        # products of a coefficient and a membrane word must stay exact in float64
        if not (1 <= self.coef_frac_bits <= 20):
            raise ProfileError(f"profile option coef_frac_bits={self.coef_frac_bits!r} must be 1..20")

    @property
    def weight_max(self) -> Optional[int]:
        """Largest integer weight magnitude: 127 for 8 bits, 15 for 5 (4-bit magnitude + sign)."""
        return weight_max(self.weight_bits)

    def with_(self, **changes) -> "SemanticsProfile":
        """A copy with some options changed (switch one factor at a time)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> dict:
        return dataclasses.asdict(self)

    # presets -------------------------------------------------------------
    @classmethod
    def chip(cls, **changes) -> "SemanticsProfile":
        """The SpiNNaker2 chip: float32, same-tick reset, 1-tick latency, int8 weights."""
        return cls(**changes)

    @classmethod
    def brian2(cls, **changes) -> "SemanticsProfile":
        """py-spinnaker2's brian2 backend: float64 state, float32 parameters."""
        return cls(arithmetic="brian2", **changes)

    @classmethod
    def float64(cls, **changes) -> "SemanticsProfile":
        """Chip timing and integer weights, ideal float64 arithmetic."""
        return cls(arithmetic="float64", **changes)

    @classmethod
    def fixed(cls, **changes) -> "SemanticsProfile":
        """Fixed-point membrane (Q-SpiNN style); see the class docstring."""
        return cls(arithmetic="fixed", **changes)

    @classmethod
    def snntorch(cls, **changes) -> "SemanticsProfile":
        """snnTorch float semantics, as the float reference (:mod:`validate.float_reference`)
        runs the NIR graph: no latency, delayed reset, float weights, float64 state with
        float32 decays, the bias through the synaptic current."""
        base = dict(arithmetic="float64", reset_timing="next_tick", synaptic_latency=0, weight_bits=None,
                    bias_path="synaptic", decay_storage="float32")
        base.update(changes)
        return cls(**base)

    PRESETS = ("chip", "brian2", "float64", "fixed", "snntorch")

    @classmethod
    def preset(cls, name: str, **changes) -> "SemanticsProfile":
        if name not in cls.PRESETS:
            raise ProfileError(f"unknown profile {name!r}; choose one of {', '.join(cls.PRESETS)}")
        return getattr(cls, name)(**changes)
