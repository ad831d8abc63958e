"""The semantic factors between the float model and the chip, and the profiles made of them.

A :class:`Factor` is one semantic difference (its profile fields, and whether it brings
the projections' delays back); :func:`default_factors` lists those between two
profiles in the waterfall order of :mod:`validate.attribution`; :func:`configuration`
is the source profile with some of them switched on.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple


from emu.errors import UserError
from emu.network import Network
from emu.neuron import inert_fields
from emu.profile import SemanticsProfile


class AttributionError(UserError):
    """Bad attribution inputs (labels, output population, factors)."""


FACTOR_FIELDS = {
    "latency": ("synaptic_latency",),
    "reset_timing": ("reset_timing",),
    "reset_mode": ("reset_mode",),
    "spike_condition": ("spike_condition",),
    "cuba_current": ("cuba_current",),
    "bias_path": ("bias_path",),
    "weights": ("weight_bits", "weight_rounding", "weight_overflow"),
    "arithmetic": ("arithmetic", "decay_storage", "membrane_bits", "membrane_frac_bits", "coef_frac_bits",
                   "fixed_rounding", "seed"),
}


FIXED_FIELDS = ("membrane_bits", "membrane_frac_bits", "coef_frac_bits", "fixed_rounding", "seed")


@dataclass(frozen=True)
class Factor:
    """One semantic difference: the profile fields it sets, and whether it brings the delays back."""

    key: str
    label: str
    changes: Tuple[Tuple[str, Any], ...]
    delays: bool = False


def _arith_label(p: SemanticsProfile) -> str:
    if p.arithmetic == "fixed":
        return (f"fixed-point arithmetic (Q{p.membrane_bits - p.membrane_frac_bits}.{p.membrane_frac_bits}, "
                f"{p.fixed_rounding})")
    return {"chip": "float32 arithmetic", "brian2": "float32 parameters (brian2)",
            "float64": "float64 arithmetic"}[p.arithmetic]


def default_factors(source: SemanticsProfile, target: SemanticsProfile, network: Optional[Network] = None,
                    include_fixed: bool = False, source_delays: bool = False) -> List[Factor]:
    """The factors between ``source`` and ``target`` in the waterfall order (module doc).

    A factor appears when its fields differ (``latency`` also when the network
    has delays the source drops) and, given a network, can change its runs
    (:func:`emu.neuron.inert_fields`); ``include_fixed`` appends a fixed-point
    membrane (the target's fixed-point fields) after the target's arithmetic.
    """
    has_delays = network is not None and any(pr.delay for pr in network.projections)
    inert = inert_fields(network) if network is not None else set()
    out = []
    for key, fields in FACTOR_FIELDS.items():
        changes = tuple((f, getattr(target, f)) for f in fields
                        if getattr(source, f) != getattr(target, f) and f not in inert)
        delays = key == "latency" and has_delays and not source_delays
        if not changes and not delays:
            continue
        if key == "latency":
            label = f"synaptic latency ({source.synaptic_latency} -> {target.synaptic_latency}" + (
                " + delays)" if delays else ")")
            if not changes:
                changes = (("synaptic_latency", target.synaptic_latency),)
        elif key == "reset_timing":
            label = f"reset timing ({source.reset_timing.replace('_', ' ')} -> {target.reset_timing.replace('_', ' ')})"
        elif key == "reset_mode":
            label = f"reset mode ({source.reset_mode} -> {target.reset_mode})"
        elif key == "spike_condition":
            label = f"spike condition ({source.spike_condition} -> {target.spike_condition})"
        elif key == "cuba_current":
            label = f"CubaLIF current ({source.cuba_current} -> {target.cuba_current})"
        elif key == "bias_path":
            label = f"bias path ({source.bias_path} -> {target.bias_path}: the converter's bias folding)"
        elif key == "weights":
            label = ("float weights" if target.weight_bits is None
                     else f"int{target.weight_bits} weights ({target.weight_rounding})")
        else:
            label = _arith_label(target)
        out.append(Factor(key, label, changes, delays))
    if include_fixed and target.arithmetic != "fixed":
        fixed = target.with_(arithmetic="fixed")
        out.append(Factor("fixed", f"{_arith_label(fixed)} (beyond the chip)",
                          (("arithmetic", "fixed"),) + tuple((f, getattr(fixed, f)) for f in FIXED_FIELDS)))
    return out


@dataclass(frozen=True)
class Configuration:
    """A profile made of the source with some factors switched on (in the factors' order)."""

    name: str
    switched: Tuple[str, ...]
    profile: SemanticsProfile
    delays: bool

    @property
    def key(self):
        return (self.profile, self.delays)


def configuration(source: SemanticsProfile, factors: Sequence[Factor], switched, name: str = "",
                  source_delays: bool = False) -> Configuration:
    """The source profile with the factors whose keys are in ``switched`` applied, in factor order."""
    switched = set(switched)
    unknown = switched - {f.key for f in factors}
    if unknown:
        raise AttributionError(f"unknown factor(s) {sorted(unknown)}; factors are {[f.key for f in factors]}")
    profile, delays = source, source_delays
    on = []
    for f in factors:
        if f.key in switched:
            profile = profile.with_(**dict(f.changes))
            delays = delays or f.delays
            on.append(f.key)
    return Configuration(name or ("+".join(on) or "source"), tuple(on), profile, delays)


def without_delays(network: Network) -> Network:
    """The network with every projection's extra delay set to 0 (an snnTorch model has none)."""
    return Network(dict(network.populations), [dataclasses.replace(pr, delay=0) for pr in network.projections],
                   network.dt, dict(network.meta))
