"""Why one sample's runs part where they do: switch each factor back to the float model's
value, one at a time, and see what becomes of the first divergence.

The emulator's profile and the float reference differ in a few semantic factors
(:func:`validate.factors.default_factors`: latency, reset timing, weights, arithmetic, ...).
For the first divergence of one sample (:func:`validate.localize.localize`: the earliest
tick over all populations), :func:`divergence_causes` reruns that sample once per factor
with the emulator's profile minus that factor (cheap: one sample) and compares it with the
same float run: the divergence **disappears** (the runs then spike identically), **moves
later**, **moves earlier** or **stays**. A factor whose switch removes or delays the
divergence is its cause; when none does alone, the factors act together and
``s2emu attribute`` (many samples, every coalition) gives their shares.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Mapping, Optional

from emu.engine import Emulator
from emu.network import Network
from emu.profile import SemanticsProfile
from emu.spikes import Recording
from emu.timing import latency_shifts

from .factors import Factor, configuration, default_factors, without_delays
from .localize import Localization, localize
from .metrics import SpikeAgreement, agreement, pooled

EFFECTS = ("disappears", "moves later", "moves earlier", "moves", "stays")


@dataclass(frozen=True)
class Switch:
    """The sample rerun with one factor back at the float model's value: where the runs then
    first part (``population``/``tick``, None when identical) and their spike agreement."""

    factor: Factor
    identical: bool
    population: Optional[str]
    tick: Optional[int]
    agreement: SpikeAgreement
    effect: str

    def describe(self, label_b: str) -> str:
        what = self.factor.label
        if self.identical:
            return f"{what}: with {label_b}'s value the runs spike identically"
        where = f"{self.population!r} tick {self.tick}"
        if self.effect == "stays":
            return f"{what}: switched back, the divergence stays ({where})"
        return f"{what}: switched back, the divergence {self.effect} ({where})"


@dataclass
class DivergenceCause:
    """Every factor's switch for the first divergence ``first`` of one sample (module doc)."""

    first: Localization
    switches: List[Switch]
    label_b: str = "the float model"

    @property
    def causes(self) -> List[Switch]:
        """The switches that remove the divergence, else those that move it later."""
        gone = [s for s in self.switches if s.effect == "disappears"]
        return gone or [s for s in self.switches if s.effect == "moves later"]

    def finding(self) -> str:
        """One sentence: which factor the divergence comes from, by its switch."""
        if self.first.identical:
            return "Nothing to explain: the runs spike identically."
        if not self.switches:
            return "No semantic factor separates the two profiles: the divergence comes from the model conversion."
        causes = self.causes
        if causes:
            names = " and ".join(s.factor.label for s in causes)
            if all(s.identical for s in causes):
                tail = "the runs then spike identically"
            else:
                tail = "the runs then first part later, at " + ", ".join(
                    f"{s.population!r} tick {s.tick}" + ("" if len(causes) == 1 else f" ({s.factor.key})")
                    for s in causes)
            return (f"Cause: {names}. With {self.label_b}'s value (one factor switched back at a time), this "
                    f"divergence goes away; {tail}.")
        moved = [s for s in self.switches if s.effect != "stays"]
        detail = "; ".join(s.describe(self.label_b) for s in moved) if moved else "each switch leaves it where it is"
        return (f"No single factor removes it when switched back to {self.label_b}'s value ({detail}): the factors "
                f"act together; `s2emu attribute` gives their shares over many samples.")

    def to_dict(self) -> dict:
        return dict(finding=self.finding(),
                    switches=[dict(factor=s.factor.key, label=s.factor.label, effect=s.effect,
                                   identical=s.identical, population=s.population, tick=s.tick,
                                   spike_f1=s.agreement.f1) for s in self.switches])


def _effect(first: Localization, loc: Localization) -> str:
    if loc.identical:
        return "disappears"
    if loc.tick > first.tick:
        return "moves later"
    if loc.tick < first.tick:
        return "moves earlier"
    return "stays" if loc.population == first.population else "moves"


def divergence_causes(network: Network, profile: SemanticsProfile, one: Mapping[str, object], reference: Recording,
                      first: Localization, float_profile: Optional[SemanticsProfile] = None,
                      populations: Optional[List[str]] = None, label_b: str = "the float model") -> DivergenceCause:
    """Rerun sample ``one`` (the emulator's input rasters, batch 1) once per factor between
    ``float_profile`` (default: snnTorch's, with the emulator's reset mode) and ``profile``,
    with that factor at the float value, and localize each run against ``reference`` (the
    float reference's recording of that sample). ``first``: the divergence to explain."""
    float_profile = float_profile or SemanticsProfile.snntorch(reset_mode=profile.reset_mode)
    factors = default_factors(float_profile, profile, network)
    keys = [f.key for f in factors]
    ticks = reference.ticks
    pops = populations or [n for n in reference.populations if n in network.populations]
    switches = []
    for f in factors:
        cfg = configuration(float_profile, factors, [k for k in keys if k != f.key])
        net = network if cfg.delays else without_delays(network)
        shifts = latency_shifts(network, cfg.profile, float_profile, reference_delays=False, delays=cfg.delays)
        # the run as long as the response takes, shifted back by its latency: tick t pairs with the float's t
        extra = max([0] + list(shifts.values()))
        run = Emulator(net, cfg.profile)(dict(one), ticks=ticks + extra).shifted(shifts, ticks).sample(0)
        run.meta["sample"] = reference.meta.get("sample", 0)
        mine, theirs = run.select(pops), reference.select(pops)
        loc = localize(mine, theirs, network)
        counted = [p for p in pops if network.populations[p].model != "input"] or pops
        total = pooled(agreement(mine.raster(p, 0), theirs.raster(p, 0)) for p in counted)
        switches.append(Switch(f, loc.identical, loc.population, loc.tick, total, _effect(first, loc)))
    return DivergenceCause(first, switches, label_b)
