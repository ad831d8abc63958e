"""Validation over a set of samples: each sample alone, then pooled.

Each sample runs on its own (batch 1) in the emulator and in the float reference and is
compared as ``s2emu validate --input`` compares one sample
(:func:`validate.validation.measure_runs`: the emulator shifted back by its latency, per
population the spike agreement, the first divergence in time localized); its numbers are
that command's on that sample. Pooled over all samples: every population's spike
agreement (F1, recall, precision, both rates; counts added over samples), each sample's
first divergence (and in which population they start), and how many samples spike
identically. The samples run here, on local worker processes or
on a dask.distributed cluster (:func:`emu.parallel.parallel_map`), gathered in order:
the same numbers wherever they ran.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from emu.engine import Emulator
from emu.parallel import parallel_map
from emu.phases import phase
from emu.profile import SemanticsProfile
from emu.spikes import Recording
from emu.timing import latency_shifts

from .figures import agreement_bars, sample_bars
from .float_runs import float_runs
from .localize import localize
from .metrics import SpikeAgreement, agreement_of_keys, pooled
from .report import Report, percent
from .traces import emulator_voltages, float_voltages
from .validation import compare_runs, percent_columns, runs_finding

LABELS = ("emulator", "float reference")


def _runs(shared: Dict[str, Any], i: int, one: Dict[str, np.ndarray], record_v: bool,
          ref: Optional[Recording] = None):
    """(emulator, float reference) recordings of sample ``i`` (``one``: its rasters, batch 1);
    ``ref``: the float run of that sample when it was computed before."""
    ticks = next(iter(one.values())).shape[1]
    emu = shared["emulator"](one, ticks=ticks, record_v=record_v).sample(0)
    emu.source, emu.meta["sample"] = shared["emulator_source"], i
    if ref is None:
        with phase("float reference"):
            ref = shared["reference"](one, ticks=ticks, record_v=record_v).sample(0)
    ref.source, ref.meta["sample"] = "float reference (snnTorch)", i
    return emu, ref


def validate_sample(task: Dict[str, Any], shared: Dict[str, Any]) -> Dict[str, Any]:
    """One sample (``task``: its number ``sample``, ``name`` and ``rasters``) validated alone
    against the float reference: a JSON-able row. Module-level: runs on any worker."""
    i, one = task["sample"], task["rasters"]
    emu, ref = _runs(shared, i, one, record_v=False, ref=task.get("reference_run"))
    with phase("validation"):
        return _measured(task, shared, emu, ref)


def _measured(task, shared, emu: Recording, ref: Recording) -> Dict[str, Any]:
    """The row of one sample, as :func:`~validate.validation.measure_runs` measures it but on the
    spike lists (no raster is built): per population the agreement over the ticks both runs have
    after the emulator's latency, and the first divergence localized."""
    i, one = task["sample"], task["rasters"]
    network, shifts = shared["network"], shared["shifts"]
    names = [n for n in network.order() if n in emu.shapes and n in ref.shapes]
    loc = localize(emu, ref, network, shift={n: shifts.get(n, 0) for n in names}, labels=LABELS)
    pops = {}
    for n in names:
        if network.populations[n].model == "input":
            continue
        s = shifts.get(n, 0)
        length = max(0, min(emu.ticks - s, ref.ticks))
        a = agreement_of_keys(emu.spike_keys(n, s, length), ref.spike_keys(n, 0, length), length * emu.sizes[n])
        pops[n] = {f"spikes {LABELS[0]}": a.spikes_a, f"spikes {LABELS[1]}": a.spikes_b, "matched": a.matched,
                   "cells": a.cells, "mismatching cells": a.mismatching_cells, "first difference": loc.first_ticks.get(n)}
    total = pooled(_agreement(g) for g in pops.values())
    first = None if loc.identical else dict(population=loc.population, neuron=loc.neuron, tick=loc.tick,
                                            kind=loc.kind, a_spiked=loc.a_spiked)
    return dict(sample=i, name=task["name"], ticks=int(next(iter(one.values())).shape[1]),
                identical=bool(loc.identical), spike_f1=total.f1, agreement=total.to_dict(),
                mismatches=total.mismatching_cells, cells=total.cells, mismatch_rate=total.mismatch_rate,
                populations=pops, first_divergence=first,
                finding=runs_finding(total, loc, *LABELS, any(shifts.get(n, 0) for n in names)))


def _agreement(counts: Dict[str, Any]) -> SpikeAgreement:
    return SpikeAgreement(counts[f"spikes {LABELS[0]}"], counts[f"spikes {LABELS[1]}"], counts["matched"],
                          counts["cells"])


@dataclass
class DatasetValidation:
    """Every sample's row (:func:`validate_sample`) and what they add up to."""

    samples: List[Dict[str, Any]]
    populations: List[str]
    settings: Dict[str, Any] = field(default_factory=dict)

    @property
    def identical(self) -> int:
        return sum(s["identical"] for s in self.samples)

    def population_rows(self) -> List[Dict[str, Any]]:
        """Per population, over all samples: the pooled spike agreement (F1 first, both rates),
        mismatching cells, the samples where it differs and those whose first divergence is in it."""
        starts = Counter(s["first_divergence"]["population"] for s in self.samples if s["first_divergence"])
        rows = []
        for p in self.populations:
            got = [s["populations"][p] for s in self.samples if p in s["populations"]]
            a = pooled(_agreement(g) for g in got)
            rows.append({"population": p, "spike F1": a.f1, "recall": a.recall, "precision": a.precision,
                         f"rate {LABELS[0]}": a.rate_a, f"rate {LABELS[1]}": a.rate_b, "rate ratio": a.rate_ratio,
                         **{f"spikes {x}": sum(g[f"spikes {x}"] for g in got) for x in LABELS},
                         "matched": a.matched, "mismatching cells": a.mismatching_cells, "cells": a.cells,
                         "mismatch rate": a.mismatch_rate,
                         "samples differing": sum(g["mismatching cells"] > 0 for g in got),
                         "first divergences": starts.get(p, 0)})
        return rows

    def agreement(self) -> SpikeAgreement:
        """Every neuron population of every sample pooled."""
        return pooled(_agreement(g) for s in self.samples for g in s["populations"].values())

    def first_divergences(self) -> List[Dict[str, Any]]:
        """The first divergence of every sample that differs, in sample order."""
        return [dict(sample=s["sample"], name=s["name"], **s["first_divergence"]) for s in self.samples
                if s["first_divergence"]]

    def earliest(self) -> Optional[Dict[str, Any]]:
        """The first divergence that comes first in time (ties: the lower sample), or None."""
        firsts = self.first_divergences()
        return min(firsts, key=lambda d: (d["tick"], d["sample"])) if firsts else None

    def finding(self) -> str:
        """The pool in one sentence: identical samples, the pooled spike agreement and the population
        where it is lowest, where the first divergences (by time) start and the earliest of them."""
        n, same = len(self.samples), self.identical
        rows = self.population_rows()
        total = self.agreement()
        a, b = LABELS
        if same == n:
            return (f"The {a} and the {b} spike identically on all {n} sample{'s' if n != 1 else ''} "
                    f"({total.spikes_b:,} spikes in {', '.join(self.populations)}).")
        worst = min(rows, key=lambda r: (r["spike F1"], -r["mismatching cells"]))
        starts = sorted((r for r in rows if r["first divergences"]), key=lambda r: -r["first divergences"])
        where = ", ".join(f"{r['population']!r} in {r['first divergences']} sample"
                          f"{'s' if r['first divergences'] != 1 else ''}" for r in starts)
        e = self.earliest()
        lowest = (f"; lowest in {worst['population']!r} (F1 {worst['spike F1']:.3f})" if len(rows) > 1 else "")
        return (f"The {a} and the {b} spike identically on {same} of {n} samples; pooled, "
                f"{total.describe(f'the {a}', f'the {b}')}{lowest}. First divergences (the earliest tick of each sample) start in "
                f"{where}; the earliest: sample {e['sample']} ({e['name']}), population {e['population']!r}, "
                f"neuron {e['neuron']}, tick {e['tick']}.")

    def to_dict(self) -> Dict[str, Any]:
        return dict(finding=self.finding(), n_samples=len(self.samples), identical_samples=self.identical,
                    populations=self.population_rows(), first_divergences=self.first_divergences(),
                    samples=self.samples, settings=self.settings)

    def report(self, title: str) -> Report:
        """The finding, the pooled agreement per population, every sample's F1 and first divergence."""
        rep = Report(title, self.finding())
        rows = self.population_rows()
        rep.add_table([percent_columns(r) for r in rows],
                      caption=f"{len(self.samples)} samples, each run alone, after shifting the {LABELS[0]} back by "
                              f"its latency; spike F1 first (recall: share of the {LABELS[1]}'s spikes the "
                              f"{LABELS[0]} reproduces; rates in spikes per neuron per tick)")
        rep.add_figure(agreement_bars([r["population"] for r in rows], [_agreement(r) for r in rows], *LABELS,
                                      f"{LABELS[0]} vs {LABELS[1]}, all samples, per population"),
                       "spike F1, recall and precision per population over all samples, and both firing rates "
                       "(counts in the hover)", data=rows)
        rep.add_heading("Per sample")
        rep.add_figure(sample_bars([s["sample"] for s in self.samples], [s["spike_f1"] for s in self.samples],
                                   [s["name"] for s in self.samples], "spike F1 per sample"),
                       "spike F1 of each sample, all neuron populations (hover: its input)",
                       data=[dict(sample=s["sample"], name=s["name"], spike_f1=s["spike_f1"]) for s in self.samples])
        rep.add_table([_sample_row(s) for s in self.samples],
                      caption="every sample: its spike agreement and first divergence (earliest tick over all "
                              "populations)")
        return rep


def _sample_row(s: Dict[str, Any]) -> Dict[str, Any]:
    d = s["first_divergence"] or {}
    a = s["agreement"]
    return {"sample": s["sample"], "input": s["name"], "ticks": s["ticks"], "identical": s["identical"],
            "spike F1": a["f1"], "recall": percent(a["recall"]), "rate ratio": a["rate_ratio"],
            "mismatching cells": s["mismatches"], "first difference": d.get("population"), "neuron": d.get("neuron"),
            "tick": d.get("tick"), "kind": d.get("kind")}


def validate_samples(emulator: Emulator, reference, samples: Sequence[Dict[str, Any]],
                     names: Optional[Sequence[str]] = None, max_lag: int = 3, workers: int = 0,
                     scheduler: Optional[str] = None, emulator_source: str = "emulator") -> DatasetValidation:
    """Validate every sample (``{input population: (1, T, ...)}``, lengths may differ) of the
    ``emulator``'s network under its profile against ``reference`` (a
    :class:`~validate.float_reference.FloatReference` of the same model), one by one (module
    doc); ``names``: what each sample is (e.g. its file); ``workers`` local processes or a
    dask ``scheduler`` address run them (the emulator and the reference go to each once)."""
    network = emulator.network
    names = list(names) if names is not None else [f"sample {i}" for i in range(len(samples))]
    shared = _shared(emulator, reference, max_lag, emulator_source)
    runs = float_runs(reference, samples)  # once, by batches where that gives the same bits; cached on disk
    tasks = [dict(sample=i, name=n, rasters=one, reference_run=run)
             for i, (n, one, run) in enumerate(zip(names, samples, runs))]
    rows = list(parallel_map(validate_sample, tasks, shared=shared, workers=workers, scheduler=scheduler))
    populations = [n for n in network.order() if network.populations[n].model != "input"]
    return DatasetValidation(rows, populations, dict(shifts=shared["shifts"], max_lag=max_lag))


def _shared(emulator: Emulator, reference, max_lag: int, emulator_source: str) -> Dict[str, Any]:
    """What every sample's task needs; the shifts: the emulator's latency behind the float model."""
    profile = emulator.profile
    shifts = latency_shifts(emulator.network, profile, SemanticsProfile.snntorch(reset_mode=profile.reset_mode),
                            reference_delays=False)
    return dict(network=emulator.network, emulator=emulator, reference=reference, max_lag=max_lag,
                emulator_source=emulator_source, shifts=shifts)


def closer_look(report: Report, result: DatasetValidation, emulator: Emulator, reference,
                samples: Sequence[Dict[str, Any]], max_lag: int = 3,
                emulator_source: str = "emulator") -> Optional[int]:
    """The sample whose first divergence comes first (:meth:`DatasetValidation.earliest`) again,
    membranes recorded on both sides, compared into ``report`` as ``s2emu validate --input``
    shows one sample; returns its number (None: every sample is identical)."""
    e = result.earliest()
    if e is None:
        return None
    k = e["sample"]
    shared = _shared(emulator, reference, max_lag, emulator_source)
    emu, ref = _runs(shared, k, samples[k], record_v=True)
    report.add_heading(f"Sample {k} up close ({e['name']}): the earliest first divergence")
    compare_runs(report, emulator.network, emu, ref, *LABELS, None, None, result.settings["shifts"], max_lag,
                 voltages={"A": emulator_voltages(emulator.profile), "B": float_voltages(reference)},
                 where=f", sample {k}")
    return k
