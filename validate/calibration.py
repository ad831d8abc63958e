"""Which semantics a board follows: the emulator over the options the data may settle, against
a recording of the board.

:data:`~validate.calibration_options.OPTIONS` lists every semantic or conversion option
whose value on the board is not proven by data for every network (``docs/semantics.md``
gives each one's status). :func:`calibrate` searches them, layer by layer in topological
order: for the first recorded population it runs every combination of the options that
can change it or any population whose spikes reach it (recorded or not: a hidden layer's
CubaLIF current shows in the output layer), on the network cut after that population
(when no later population feeds back into it), keeps the combinations that reproduce the
recording there exactly (or the closest), and goes on to the next recorded population
with the options that first matter there. Options proven by data (latency, reset timing)
keep their proven value unless nothing reproduces the recording with it. Each remaining
option is then tried one value at a time around the best profile: an option is
**pinned** when every other value breaks the match, **undetermined** when another value
reproduces the recording too (the data never exercised it), **unseen** when it changes
only populations whose spikes reach no recorded one, and **inert** when it cannot change
this network at all. Latency and connection delay add up on every connection: when the
recording shows only their sum, their pins rest on the latency-1 prior (proven by data on
other recordings), and the result says so.

The profile file (:meth:`Calibration.profile_file`) carries the semantics found and the
conversion they were found under (dt, weight scale or percentile, connection delay,
integrator; the reset is the profile's ``reset_mode``), and whether it is exact.

"Exact" means identical spikes and, where the recording has voltages, every voltage
within :data:`V_TOL` of the population's threshold; exact candidates are ranked by
their largest voltage error, so float32 against float64 state (about 1e-7 of the
threshold apart) is decided by the data, and reported, rather than by the tolerance.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import nir
import numpy as np

from emu.engine import Emulator
from emu.errors import UserError
from emu.network import Network
from emu.nir_import import NIRImportError, from_nir
from emu.settings import Settings, resolve
from emu.spikes import Recording

from .calibration_options import OPTION, OPTIONS, Option, populations_changed, reaching, relevant

__all__ = ["OPTION", "OPTIONS", "Calibration", "CalibrationError", "Option", "calibrate", "check_recording",
           "prefix", "relevant", "sensitivity"]


class CalibrationError(UserError):
    """A recording that cannot be calibrated against (populations, sizes, ticks)."""


#: voltages match when within this fraction of the population's largest |threshold|
V_TOL = 1e-5
#: exact candidates kept per layer (ranked by voltage error)
BEAM = 24
#: a voltage error this many times smaller than every alternative's decides between exact candidates
DECISIVE = 100.0


@dataclass
class Score:
    """How one candidate profile compares with the recording, per compared population."""

    mismatches: Dict[str, int]
    v_error: Dict[str, float]  # largest |v_emulator - v_recorded| / the tolerance's scale (threshold)
    cells: Dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.mismatches.values())

    @property
    def worst_v(self) -> float:
        return max(self.v_error.values(), default=0.0)

    @property
    def exact(self) -> bool:
        return self.total == 0 and self.worst_v <= V_TOL

    def rank(self) -> tuple:
        return (self.total, self.worst_v)


@dataclass
class Candidate:
    assignment: Dict[str, Any]
    score: Score

    def to_dict(self) -> Dict[str, Any]:
        return dict(options=dict(self.assignment), exact=self.score.exact, mismatching_cells=self.score.total,
                    max_v_error=self.score.worst_v, per_population=dict(self.score.mismatches))


@dataclass
class Calibration:
    """The result of :func:`calibrate` (module doc)."""

    best: Candidate
    candidates: List[Candidate]
    settings: Settings
    fixed: Dict[str, Any]
    pinned: List[str]
    undetermined: List[str]
    inert: List[str]
    per_value: Dict[str, Dict[str, Dict[str, Any]]]  # option -> value -> {mismatching_cells, max_v_error, exact}
    populations: List[str]
    runs: int
    notes: List[str] = field(default_factory=list)
    alternatives: Dict[str, List[str]] = field(default_factory=dict)  # option -> other values that fit as well
    forced: List[str] = field(default_factory=list)  # options whose other values the converter refuses here
    unseen: Dict[str, List[str]] = field(default_factory=dict)  # option -> the unrecorded populations it changes
    #: pinned options whose pin rests on the latency prior (only latency + conn_delay shows), and why
    on_prior: Dict[str, str] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return self.best.score.exact

    def finding(self) -> str:
        """The answer in one sentence: which profile reproduces the recording, what is pinned, what is not."""
        opts = ", ".join(f"{k} {v}" for k, v in self.best.assignment.items())
        if self.exact:
            head = f"The recording is reproduced exactly (spikes identical{self._v_clause()}) with {opts}."
        else:
            head = (f"No searched profile reproduces the recording; the closest ({opts}) differs in "
                    f"{self.best.score.total:,} cells.")
        pinned = f" The data pins {', '.join(self.pinned)}." if self.pinned else " The data pins no option."
        open_ = [f"{f} ({' or '.join([str(self.best.assignment[f])] + self.alternatives.get(f, []))})"
                 for f in self.unexercised]
        rest = f" Left open by this recording: {', '.join(open_)}." if open_ else ""
        if self.on_prior:
            rest += f" {next(iter(self.on_prior.values()))}."
        if self.forced:
            rest += (f" The converter accepts only one value for this model: "
                     f"{', '.join(f'{f} {self.best.assignment[f]}' for f in self.forced)}.")
        for flag, pops in self.unseen.items():
            rest += (f" Not seen by this recording: {flag} (it changes only {', '.join(pops)}, whose spikes reach no "
                     f"recorded population).")
        if self.inert:
            rest += f" Cannot change this model: {', '.join(self.inert)}."
        return head + pinned + rest

    @property
    def unexercised(self) -> List[str]:
        """Undetermined options that could change the recorded populations, had the input exercised them."""
        return [f for f in self.undetermined if f not in self.inert and f not in self.unseen]

    def _v_clause(self) -> str:
        if not self.best.score.v_error:
            return "; no voltages recorded"
        return f", voltages within {self.best.score.worst_v:.1e} of the threshold"

    def conversion(self) -> Dict[str, Any]:
        """The conversion the profile was found under: a command given the profile file converts the
        same way (below its own flags)."""
        conv = self.settings.conversion
        return dict(dt=conv.dt, integrator=conv.integrator, conn_delay=conv.conn_delay,
                    weight_scale=conv.weight_scale, scale_percentile=conv.scale_percentile)

    def profile_file(self) -> Dict[str, Any]:
        """The JSON written by ``s2emu calibrate --out`` (also a ``--profile-file``)."""
        suggestions = {f: OPTION[f].exercise for f in self.unexercised}
        suggestions.update({f: f"record {' and '.join(pops)}" for f, pops in self.unseen.items()})
        return dict(format="s2emu-profile", version=1, exact=self.exact, mismatching_cells=self.best.score.total,
                    profile=self.settings.profile.describe(), conversion=self.conversion(), fixed=self.fixed,
                    pinned=self.pinned, rests_on_prior=self.on_prior, undetermined=self.undetermined,
                    inert=self.inert, unseen=self.unseen, forced=self.forced, alternatives=self.alternatives,
                    suggestions=suggestions, candidates=[c.to_dict() for c in self.candidates],
                    per_value=self.per_value, populations=self.populations, runs=self.runs, notes=self.notes,
                    finding=self.finding())


class _Runner:
    """Runs candidate assignments of the graph on the recorded input, compares with the recording."""

    def __init__(self, graph: nir.NIRGraph, fixed: Mapping[str, Any], inputs, chip: Recording, ticks: int,
                 source: str, preset: str = "chip", profile_file: Optional[Mapping[str, Any]] = None):
        self.graph, self.fixed, self.chip, self.ticks, self.source = graph, dict(fixed), chip, ticks, source
        self.inputs, self.preset, self.profile_file = inputs, preset, profile_file
        self._networks: Dict[str, Network] = {}
        self._scores: Dict[tuple, Optional[Score]] = {}
        self.runs = 0
        self.refused: Dict[str, str] = {}  # conversions the converter refuses, and why

    def settings(self, assignment: Mapping[str, Any]) -> Settings:
        return resolve(dict(self.fixed, **assignment), self.graph, profile_file=self.profile_file,
                       preset=self.preset, source=self.source)

    def network(self, settings: Settings) -> Network:
        key = repr(settings.conversion)
        if key not in self._networks:
            self._networks[key] = from_nir(self.graph, settings.conversion)
        return self._networks[key]

    def score(self, assignment: Mapping[str, Any], upto: Optional[int] = None) -> Optional[Score]:
        """Run ``assignment`` on the network cut after the ``upto``-th compared population (all: None);
        None when the converter refuses the model under it (e.g. a conv with an extra delay)."""
        key = (tuple(sorted(assignment.items(), key=lambda kv: kv[0])), upto)
        if key not in self._scores:
            self._scores[key] = self._score(assignment, upto)
        return self._scores[key]

    def _score(self, assignment: Mapping[str, Any], upto: Optional[int]) -> Optional[Score]:
        settings = self.settings(assignment)
        try:
            full = self.network(settings)
        except NIRImportError as exc:
            self.refused.setdefault(repr(settings.conversion), str(exc))
            return None
        compared = [n for n in full.order() if n in self.chip.shapes and full.populations[n].model != "input"]
        names = compared if upto is None else compared[:upto + 1]
        net = prefix(full, names[-1])
        rasters = {k: v for k, v in self.inputs.items() if k in net.populations}
        with_v = [n for n in names if n in self.chip.v]
        run = Emulator(net, settings.profile)(rasters, ticks=self.ticks, record_v=with_v)
        self.runs += 1
        mism, verr, cells = {}, {}, {}
        for n in names:
            a, b = run.raster(n), self.chip.raster(n)[:, : self.ticks]
            mism[n], cells[n] = int((a != b).sum()), int(a.size)
            if n in with_v:
                va, vb = run.v[n], np.asarray(self.chip.v[n][:, : self.ticks], np.float64)
                both = np.isfinite(vb)
                scale = max(1e-30, float(np.abs(full.populations[n].threshold).max()))
                verr[n] = float(np.abs(va[both] - vb[both]).max(initial=0.0)) / scale
        return Score(mism, verr, cells)


def option_source(settings: Settings, option: Option) -> str:
    """Where the run's value of ``option`` came from (flag, profile file, graph metadata, default)."""
    return settings.sources.get("reset_mode" if option.flag == "reset" else option.flag, "default")


def sensitivity(graph: nir.NIRGraph, flags: Mapping[str, Any], inputs: Mapping[str, np.ndarray], baseline: Recording,
                preset: str = "chip", profile_file: Optional[Mapping[str, Any]] = None,
                source: str = "the model") -> Dict[str, Dict[str, int]]:
    """For each option not proven by data whose value no flag, profile file or graph states: the
    spike cells (all samples) each of its other values would change in ``baseline`` (the run
    under ``flags``). An empty mapping for an option: no other value changes these spikes."""
    flags = {k: v for k, v in dict(flags).items() if v is not None}
    runner = _Runner(graph, flags, inputs, Recording.from_rasters(baseline.rasters(), source=baseline.source),
                     baseline.ticks, source, preset, profile_file)
    settings = runner.settings({})
    network = runner.network(settings)
    layers = [n for n in network.order() if network.populations[n].model != "input"]
    out = {}
    for o in OPTIONS:
        if o.proven or option_source(settings, o) != "default" \
                or not any(relevant(o, network, p) for p in layers):
            continue
        current = _current(settings, o)
        out[o.flag] = {str(v): runner.score({o.flag: v}).total for v in o.values if v != current}
        out[o.flag] = {v: cells for v, cells in out[o.flag].items() if cells}
    return out


def _current(settings: Settings, option: Option) -> Any:
    if option.flag in ("integrator", "conn_delay"):
        return getattr(settings.conversion, option.flag)
    return getattr(settings.profile, "reset_mode" if option.flag == "reset" else option.flag)


def prefix(network: Network, last: str) -> Network:
    """``network`` cut after population ``last`` (topological order), or all of it when a later
    population feeds back into the kept ones."""
    order = network.order()
    keep = set(order[: order.index(last) + 1])
    if any(pr.post in keep and pr.pre not in keep for pr in network.projections):
        return network
    cut = Network(dt=network.dt, meta=dict(network.meta))
    for name in order:
        if name in keep:
            cut.add(network.populations[name])
    for pr in network.projections:
        if pr.pre in keep and pr.post in keep:
            cut.add(pr)
    return cut


def _canonical(assignment: Dict[str, Any], fixed: Mapping[str, Any]) -> Dict[str, Any]:
    """Values that cannot matter under the others are set to their first value (dedupe): how
    decays are stored matters only under float64 state (float32 and brian2 hold them as float32)."""
    a = dict(assignment)
    arithmetic = a.get("arithmetic", fixed.get("arithmetic", "chip"))
    if "decay_storage" in a and arithmetic != "float64":
        a["decay_storage"] = OPTION["decay_storage"].values[0]
    return a


def _search(runner: _Runner, network: Network, searched: Sequence[Option], layers: Sequence[str],
            start: Dict[str, Any], progress) -> Tuple[List[Candidate], List[str]]:
    """Layer by layer (module doc); returns the candidates ranked, and the options decided."""
    beam = [Candidate(dict(start), None)]
    decided: List[str] = list(start)
    for k, pop in enumerate(layers):
        reach = sorted(reaching(network, pop))
        new = [o for o in searched if o.flag not in decided and populations_changed(o, network, reach)]
        decided += [o.flag for o in new]
        seen, scored = set(), []
        for cand in beam:
            for combo in itertools.product(*(o.values for o in new)):
                a = _canonical(dict(cand.assignment, **{o.flag: v for o, v in zip(new, combo)}), runner.fixed)
                key = tuple(sorted(a.items(), key=lambda kv: kv[0]))
                if key in seen:
                    continue
                seen.add(key)
                score = runner.score(a, k)
                progress.update(1)
                if score is not None:
                    scored.append(Candidate(a, score))
        if not scored:
            raise CalibrationError(f"the converter refuses the model under every searched option: "
                                   f"{next(iter(runner.refused.values()), 'no candidate')}")
        exact = [c for c in scored if c.score.exact]
        beam = sorted(exact or scored, key=lambda c: c.score.rank())[:BEAM]
    return beam, decided


def calibrate(graph: nir.NIRGraph, inputs: Mapping[str, np.ndarray], chip: Recording,
              fixed: Optional[Mapping[str, Any]] = None, ticks: Optional[int] = None, source: str = "the model",
              progress: Optional[bool] = None) -> Calibration:
    """Search the options of :data:`OPTIONS` not in ``fixed`` (flags as :func:`emu.settings.resolve`
    takes them) for the profile that reproduces ``chip`` on ``inputs`` ((1, T, N) per input
    population); see the module doc."""
    from tqdm import tqdm

    fixed = {k: v for k, v in dict(fixed or {}).items() if v is not None}
    runner = _Runner(graph, fixed, inputs, chip, ticks or chip.ticks, source)
    # the model's structure (what each option can change): converted even where the chip converter
    # would refuse the default options (a conv under the default extra delay)
    network = runner.network(runner.settings({"allow_unsupported": True}))
    layers = check_recording(network, chip)
    searched = [o for o in OPTIONS if o.flag not in fixed]
    reach = sorted(set().union(*(reaching(network, pop) for pop in layers)))
    inert = [o.flag for o in searched if not populations_changed(o, network, [])]
    unseen = {o.flag: populations_changed(o, network, []) for o in searched
              if o.flag not in inert and not populations_changed(o, network, reach)}
    searched = [o for o in searched if o.flag not in inert and o.flag not in unseen]
    with tqdm(desc="calibrating", unit="run", disable=progress is False, leave=False) as bar:
        proven = {o.flag: o.values[0] for o in searched if o.proven}
        beam, decided = _search(runner, network, searched, layers, proven, bar)
        notes = []
        if proven and not beam[0].score.exact:  # what data proved elsewhere does not hold here: search it too
            beam, decided = _search(runner, network, searched, layers, {}, bar)
            notes.append(f"nothing reproduced the recording with {', '.join(proven)} at their proven values, "
                         f"so they were searched too")
        best = beam[0]
        notes += list(dict.fromkeys(f"the converter refuses {why.split(': ', 1)[-1]}"
                                    for why in runner.refused.values()))
        searched_here = [o for o in searched if o.flag in decided]
        per_value, alternatives, inert_here, forced = _one_at_a_time(runner, best, beam, searched_here, bar)
        pinned = [o.flag for o in searched_here if o.flag not in alternatives and o.flag not in inert_here + forced]
        on_prior = _latency_split(runner, best, pinned, bar)
    settings = runner.settings(best.assignment)
    inert += inert_here  # cannot change this network (under the best profile): the data cannot tell either
    return Calibration(best, beam, settings, fixed, pinned, list(alternatives) + list(unseen) + inert, inert,
                       per_value, layers, runner.runs, notes, alternatives, forced, unseen, on_prior)


def _latency_split(runner: _Runner, best: Candidate, pinned: Sequence[str], bar) -> Dict[str, str]:
    """When the data pins both the synaptic latency and the connection delay but another split of
    their sum reproduces the recording as well, the pins rest on the latency prior: each of the
    two, with the sentence that says so (empty otherwise)."""
    if not {"synaptic_latency", "conn_delay"} <= set(pinned):
        return {}
    latency, delay = best.assignment["synaptic_latency"], best.assignment["conn_delay"]
    full = runner.score(best.assignment)
    for other in OPTION["synaptic_latency"].values:
        other_delay = latency + delay - other
        if other == latency or other_delay not in OPTION["conn_delay"].values:
            continue
        score = runner.score(dict(best.assignment, synaptic_latency=other, conn_delay=other_delay))
        bar.update(1)
        if score is not None and _as_good(score.exact, score.total, score.worst_v, full):
            why = (f"The pins of synaptic_latency {latency} and conn_delay {delay} rest on the latency-{latency} "
                   f"prior (proven by data on other recordings, docs/semantics.md): this recording shows only their "
                   f"sum, {latency + delay} ticks per connection (synaptic_latency {other} with conn_delay "
                   f"{other_delay} reproduces it as well)")
            return {"synaptic_latency": why, "conn_delay": why}
    return {}


def _one_at_a_time(runner: _Runner, best: Candidate, beam: Sequence[Candidate], options: Sequence[Option], bar):
    """Each option's other values around ``best`` on the whole network (the mismatch per value),
    and the values that reproduce the recording as well as the best: those found so, and those
    of the other candidates that do (options interact: float64 state with float32 decays can
    equal brian2's). An option without such values is pinned; one whose values all compute the
    same under the best profile cannot change the model (inert)."""
    per_value, alternatives, inert, forced = {}, {}, [], []
    full = runner.score(best.assignment)
    rivals = [c for c in beam if c is not best and _as_good(c.score.exact, c.score.total, c.score.worst_v, full)]
    for o in options:
        rows, variants, refused = {}, set(), 0
        for value in o.values:
            a = _canonical(dict(best.assignment, **{o.flag: value}), runner.fixed)
            variants.add(tuple(sorted(a.items())))
            s = full if a == best.assignment else runner.score(a)
            bar.update(1)
            if s is None:  # the converter refuses this value for this model
                refused += 1
                continue
            rows[str(value)] = dict(mismatching_cells=s.total, max_v_error=s.worst_v, exact=s.exact)
        per_value[o.flag] = rows
        chosen = str(best.assignment[o.flag])
        same = {v for v, r in rows.items()
                if v != chosen and _as_good(r["exact"], r["mismatching_cells"], r["max_v_error"], full)}
        same |= {str(c.assignment[o.flag]) for c in rivals if str(c.assignment[o.flag]) != chosen}
        if refused == len(o.values) - 1:
            forced.append(o.flag)
        elif len(variants) == 1:
            inert.append(o.flag)
        elif same:
            alternatives[o.flag] = [v for v in map(str, o.values) if v in same]
    return per_value, alternatives, inert, forced


def _as_good(exact: bool, cells: int, v_error: float, best: Score) -> bool:
    """Whether a run reproduces the recording as well as the best: as exact (or, when the best is
    not exact, as many mismatches), and a voltage error within :data:`DECISIVE` times the best's."""
    if best.exact:
        return exact and (not best.v_error or v_error <= DECISIVE * max(best.worst_v, 1e-300))
    return cells == best.total and v_error <= DECISIVE * max(best.worst_v, 1e-300)


def check_recording(network: Network, chip: Recording) -> List[str]:
    """The network's populations the recording holds, in order; one clear error when it does
    not belong to this network."""
    names = [n for n in chip.populations]
    unknown = [n for n in names if n not in network.populations]
    if unknown:
        raise CalibrationError(f"{chip.source}: population {unknown[0]!r} is not in the model (it has "
                               f"{', '.join(network.populations)}): a recording of another model?")
    for n in names:
        if chip.sizes[n] != network.populations[n].size:
            raise CalibrationError(f"{chip.source}: population {n!r} has {chip.sizes[n]} neurons, the model "
                                   f"{network.populations[n].size}: a recording of another model or size?")
    if chip.batch != 1:
        raise CalibrationError(f"{chip.source}: {chip.batch} samples; calibrate takes one (the sample that ran)")
    if chip.ticks < 1:
        raise CalibrationError(f"{chip.source}: the recording has no ticks")
    layers = [n for n in network.order() if n in names and network.populations[n].model != "input"]
    if not layers:
        raise CalibrationError(f"{chip.source}: records no neuron population of the model (only "
                               f"{', '.join(names)})")
    return layers
