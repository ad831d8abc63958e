"""What an attribution found (:func:`validate.attribution.attribute`): every configuration's
run measured against the float run, each factor's order-independent share, and the
uncertainty of the accuracy drop.

Three measures, each a loss from the float run (the empty coalition) to a configuration:

* ``accuracy``: points of accuracy (or of agreement with the float prediction) lost;
* ``margin``: output margin lost, in spikes per sample (the true class's spike count minus
  the largest other; :func:`validate.metrics.output_margins`), continuous, so it moves
  before a sample flips;
* ``spikes``: spike F1 lost over every neuron population (1 - F1 against the float run;
  :class:`validate.metrics.SpikeAgreement`): a silent chip loses all of it.

Each factor's share is its Shapley value (:mod:`validate.shapley`); "alone" is the loss of
that factor switched on by itself, "leave-one-out" what the chip recovers without it, and
the interaction the Shapley value minus "alone". The accuracy drop comes with the
samples that flip and an exact McNemar test (:mod:`validate.paired`); every flipping
sample is given the factor that carries it (its own per-sample Shapley shares).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

import numpy as np

from .attribution_report import attribution_report
from .factors import Factor
from .metrics import SpikeAgreement, output_margins, pooled
from .paired import PairedAccuracy, paired_accuracy
from .report import Report, percent
from .shapley import is_exact, shapley

MEASURES = ("accuracy", "margin", "spikes")


@dataclass
class ConfigResult:
    """One configuration's run on every sample, against the float (source) run: per population
    the :class:`SpikeAgreement` (A: this run, B: the float run), the output population's spike
    counts per sample (``output_counts``, (samples, classes)) and the predicted classes."""

    name: str
    switched: Tuple[str, ...]
    profile: Dict[str, Any]
    delays: bool
    shifts: Dict[str, int]
    agreement: Dict[str, SpikeAgreement]
    output_counts: np.ndarray
    predictions: np.ndarray
    accuracy: float = float("nan")

    @property
    def pooled(self) -> SpikeAgreement:
        return pooled(self.agreement.values())

    @property
    def mismatches(self) -> Dict[str, int]:
        return {p: a.mismatching_cells for p, a in self.agreement.items()}

    @property
    def spikes(self) -> Dict[str, int]:
        return {p: a.spikes_a for p, a in self.agreement.items()}

    @property
    def cells(self) -> Dict[str, int]:
        return {p: a.cells for p, a in self.agreement.items()}

    @property
    def total_mismatch(self) -> int:
        return int(sum(self.mismatches.values()))

    def to_dict(self) -> Dict[str, Any]:
        return dict(name=self.name, switched=list(self.switched), profile=self.profile, delays=self.delays,
                    shifts=self.shifts, accuracy=self.accuracy, spike_f1=self.pooled.f1,
                    agreement={p: a.to_dict() for p, a in self.agreement.items()}, mismatches=self.mismatches,
                    spikes=self.spikes, cells=self.cells, total_mismatch=self.total_mismatch,
                    predictions=self.predictions.tolist(), output_counts=self.output_counts.tolist())


@dataclass
class FlippedSample:
    """A sample the float model and the target classify differently well, and the factors that
    carry it (per-sample Shapley shares of its accuracy, summing to 1 when lost, -1 when gained)."""

    sample: int
    lost: bool
    label: int
    float_class: int
    target_class: int
    shares: Dict[str, float]

    @property
    def cause(self) -> List[str]:
        """The factor keys with the largest share (several when they share it equally)."""
        sign = 1 if self.lost else -1
        top = max(sign * v for v in self.shares.values())
        return [k for k, v in self.shares.items() if abs(sign * v - top) < 1e-9 and top > 1e-9]


@dataclass
class Attribution:
    """Every configuration of the factors (``configs``: switched factor keys -> its run; all of
    them when the factors are few enough for exact Shapley values) and what they add up to."""

    factors: List[Factor]
    configs: Dict[FrozenSet[str], ConfigResult]
    populations: List[str]
    output: str
    n_samples: int
    labels: Optional[np.ndarray]
    sample_ids: List[int]
    settings: Dict[str, Any] = field(default_factory=dict)
    #: the float reference (real snnTorch) against the source profile, per population; None: not run
    reference_agreement: Optional[Dict[str, SpikeAgreement]] = None

    # the configurations --------------------------------------------------------------------
    @property
    def keys(self) -> List[str]:
        return [f.key for f in self.factors]

    @property
    def source(self) -> ConfigResult:
        return self.configs[frozenset()]

    @property
    def target(self) -> ConfigResult:
        return self.configs[frozenset(self.keys)]

    @property
    def steps(self) -> List[ConfigResult]:
        """Factors switched on one after another, in the factors' order."""
        return [self.configs[frozenset(self.keys[:i + 1])] for i in range(len(self.keys))]

    @property
    def leave_one_out(self) -> List[ConfigResult]:
        return [self.configs[frozenset(self.keys) - {k}] for k in self.keys]

    @property
    def alone(self) -> List[ConfigResult]:
        return [self.configs[frozenset([k])] for k in self.keys]

    @property
    def labels_given(self) -> bool:
        return self.labels is not None

    @property
    def truth(self) -> np.ndarray:
        """The class each sample should get: its label, else the float run's prediction."""
        return self.labels if self.labels is not None else self.source.predictions

    @property
    def target_label(self) -> str:
        return self.settings.get("target_label", "chip")

    @property
    def metric(self) -> str:
        return "accuracy" if self.labels_given else "agreement with the float prediction"

    @property
    def drop(self) -> float:
        """Accuracy (or agreement) lost from the source to the target (a fraction)."""
        return self.source.accuracy - self.target.accuracy

    @property
    def exact(self) -> bool:
        return is_exact(self.keys)

    # measures ------------------------------------------------------------------------------
    def loss(self, measure: str, config: ConfigResult, population: Optional[str] = None):
        """What ``config`` loses against the float run by ``measure`` (:data:`MEASURES`)."""
        if measure == "accuracy":
            return self.source.accuracy - config.accuracy
        if measure == "margin":
            return float(np.mean(self.margins(self.source) - self.margins(config))) if self.n_samples else 0.0
        if measure == "spikes":
            agreement = config.agreement[population] if population else config.pooled
            return 1.0 - agreement.f1
        raise ValueError(f"unknown measure {measure!r}; measures are {MEASURES}")

    def margins(self, config: ConfigResult) -> np.ndarray:
        return output_margins(config.output_counts, self.truth)

    def shapley(self, measure: str, population: Optional[str] = None) -> Dict[str, float]:
        """Each factor's Shapley share of ``measure``'s loss (they sum to the target's loss)."""
        values = {s: self.loss(measure, c, population) for s, c in self.configs.items()}
        return {k: float(v) for k, v in shapley(self.keys, values).items()}

    @property
    def paired(self) -> PairedAccuracy:
        """The float run and the target, paired per sample (who is right where)."""
        return paired_accuracy(self.source.predictions, self.target.predictions, self.truth, self.sample_ids)

    def flips(self) -> List[FlippedSample]:
        """Every sample the float run and the target classify differently well, with its shares."""
        truth = self.truth
        right = {s: (c.predictions == truth).astype(np.float64) for s, c in self.configs.items()}
        per_sample = shapley(self.keys, {s: right[frozenset()] - r for s, r in right.items()})
        out = []
        src, tgt = self.source.predictions, self.target.predictions
        for i in np.flatnonzero(right[frozenset()] != right[frozenset(self.keys)]):
            out.append(FlippedSample(self.sample_ids[i], bool(right[frozenset()][i]), int(truth[i]), int(src[i]),
                                     int(tgt[i]), {k: float(np.asarray(v)[i]) for k, v in per_sample.items()}))
        return out

    def label_of(self, key: str) -> str:
        return next(f.label for f in self.factors if f.key == key)

    # tables --------------------------------------------------------------------------------
    def rows(self) -> List[Dict[str, Any]]:
        """One row per factor: Shapley shares of the three losses, alone, leave-one-out, the
        interaction, and how many flipping samples it carries."""
        phi = {m: self.shapley(m) for m in MEASURES}
        carried: Dict[str, int] = {}
        for f in self.flips():
            for k in f.cause:
                carried[k] = carried.get(k, 0) + 1
        rows = []
        for f, alone, loo in zip(self.factors, self.alone, self.leave_one_out):
            a = self.loss("accuracy", alone)
            rows.append({"factor": f.label, "key": f.key,
                         "accuracy lost (points, Shapley)": 100 * phi["accuracy"][f.key],
                         "alone (points)": 100 * a,
                         "leave-one-out (points)": 100 * (loo.accuracy - self.target.accuracy),
                         "interaction (points)": 100 * (phi["accuracy"][f.key] - a),
                         "flips carried": carried.get(f.key, 0),
                         "margin lost (spikes, Shapley)": phi["margin"][f.key],
                         "spike F1 lost (Shapley)": phi["spikes"][f.key],
                         "spike F1 lost alone": self.loss("spikes", alone)})
        return rows

    def population_rows(self) -> List[Dict[str, Any]]:
        """Per population: both sides' spikes and rates, the target's agreement with the float
        run, and each factor's Shapley share of its spike F1 lost."""
        rows = []
        for p in self.populations:
            a = self.target.agreement[p]
            row = {"population": p, "float spikes": a.spikes_b, f"{self.target_label} spikes": a.spikes_a,
                   "rate ratio": a.rate_ratio, "spike F1": a.f1, "recall": a.recall, "precision": a.precision,
                   "mismatching cells": a.mismatching_cells, "mismatch rate": a.mismatch_rate}
            for k, v in self.shapley("spikes", p).items():
                row[f"F1 lost: {k}"] = v
            rows.append(row)
        return rows

    # words ---------------------------------------------------------------------------------
    def finding(self) -> str:
        """The answer in one sentence: the accuracy drop, how many samples carry it and whether it is
        significant, each factor's share of it (Shapley: order-independent), and the spike agreement."""
        src, tgt = self.source.accuracy, self.target.accuracy
        n = self.n_samples
        head = (f"{self.target_label.capitalize()} {self.metric} {percent(tgt)} vs float {percent(src)} on "
                f"{n} sample{'s' if n != 1 else ''}")
        if not self.factors:
            return f"{head}: the two profiles do not differ in any factor that can change this network."
        spikes = self.target.pooled.describe(f"the {self.target_label}", "the float run")
        flips = self.flips()
        paired = self.paired
        drop = self.drop
        if not flips:
            margin = self.shapley("margin")
            lost = self.loss("margin", self.target)
            big = max(margin, key=lambda k: abs(margin[k]))
            why = (f"; the output margin {'drops' if lost > 0 else 'grows'} by {abs(lost):.2f} spikes per sample, "
                   f"most from {self.label_of(big)} ({margin[big]:+.2f})" if abs(lost) > 1e-12 else "")
            return f"{head}: no sample flips{why}. Spikes: {spikes}."
        word = "drop" if drop > 0 else ("gain" if drop < 0 else "change")
        phi = self.shapley("accuracy")
        shares = sorted((k for k in phi if abs(phi[k]) > 1e-12), key=lambda k: -abs(phi[k]))
        parts = [f"{self.label_of(k)} {100 * phi[k]:+.1f}" for k in shares]
        estimated = " (estimated)" if not self.exact else ""
        return (f"{head}: a {100 * abs(drop):.1f}-point {word}; {paired.describe()}. Points lost by factor "
                f"(Shapley{estimated}): {', '.join(parts) or 'none'}; {self._carried(flips)}. "
                f"Spikes: {spikes}.") + self._reference_note()

    def _carried(self, flips: List[FlippedSample]) -> str:
        """Which factors carry the flips, e.g. "sample 32 is lost by reset timing" or "flips carried
        by int8 weights: 7 samples; by reset timing and int8 weights: 1"."""
        def cause(f: FlippedSample) -> str:
            return " and ".join(self.label_of(k) for k in f.cause) or "interacting factors"

        if len(flips) == 1:
            f = flips[0]
            return f"sample {f.sample} is {'lost' if f.lost else 'gained'} by {cause(f)}"
        groups: Dict[str, int] = {}
        for f in flips:
            groups[cause(f)] = groups.get(cause(f), 0) + 1
        ranked = sorted(groups.items(), key=lambda kv: -kv[1])
        return "flips carried " + "; ".join(f"by {c}: {n} sample{'s' if n != 1 else ''}" for c, n in ranked)

    def _reference_note(self) -> str:
        if not self.reference_agreement:
            return ""
        n = sum(a.mismatching_cells for a in self.reference_agreement.values())
        if not n:
            return ""
        return (f" Note: the float reference (snnTorch) and the emulator's float profile differ in {n:,} cells, "
                f"so the float side itself is not exact.")

    def to_dict(self) -> Dict[str, Any]:
        return {
            "finding": self.finding(),
            "metric": self.metric,
            "n_samples": self.n_samples,
            "output": self.output,
            "populations": self.populations,
            "settings": self.settings,
            "exact_shapley": self.exact,
            "reference_agreement": ({p: a.to_dict() for p, a in self.reference_agreement.items()}
                                    if self.reference_agreement is not None else None),
            "factors": [dataclasses.asdict(f) for f in self.factors],
            "paired": self.paired.to_dict(),
            "shapley": {m: self.shapley(m) for m in MEASURES},
            "flips": [dataclasses.asdict(f) | {"cause": f.cause} for f in self.flips()],
            "source": self.source.to_dict(),
            "target": self.target.to_dict(),
            "steps": [s.to_dict() for s in self.steps],
            "configurations": [c.to_dict() for c in self.configs.values()],
            "rows": self.rows(),
            "population_rows": self.population_rows(),
        }

    def report(self, title: str = "Where accuracy is lost: float model -> SpiNNaker2 chip",
               rate_chart: bool = True, settings: bool = True) -> Report:
        """The HTML report (:func:`validate.attribution_report.attribution_report`)."""
        return attribution_report(self, title, rate_chart, settings)
