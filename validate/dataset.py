"""Validation over a set of samples: each sample alone, then pooled.

Each sample runs on its own (batch 1) in the emulator and in the float reference and is
compared as ``s2emu validate --input`` compares one sample
(:func:`validate.validation.measure_runs`: the emulator shifted back by its latency, per
population mismatching cells, the first divergence localized); its numbers are that
command's on that sample. Pooled over all samples: the mismatching cells of every
population, each sample's first divergence (and in which population they start), and
how many samples spike identically. The samples run here, on local worker processes or
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
from emu.profile import SemanticsProfile
from emu.timing import latency_shifts

from .figures import rate_bars
from .report import Report, percent
from .validation import compare_runs, measure_runs

LABELS = ("emulator", "float reference")


def _runs(shared: Dict[str, Any], i: int, one: Dict[str, np.ndarray], record_v: bool):
    """(emulator, float reference) recordings of sample ``i`` (``one``: its rasters, batch 1)."""
    ticks = next(iter(one.values())).shape[1]
    emu = shared["emulator"](one, ticks=ticks, record_v=record_v).sample(0)
    emu.source, emu.meta["sample"] = shared["emulator_source"], i
    ref = shared["reference"](one, ticks=ticks, record_v=record_v).sample(0)
    ref.source, ref.meta["sample"] = "float reference (snnTorch)", i
    return emu, ref


def validate_sample(task: Dict[str, Any], shared: Dict[str, Any]) -> Dict[str, Any]:
    """One sample (``task``: its number ``sample``, ``name`` and ``rasters``) validated alone
    against the float reference: a JSON-able row. Module-level: runs on any worker."""
    i, one = task["sample"], task["rasters"]
    emu, ref = _runs(shared, i, one, record_v=False)
    m = measure_runs(shared["network"], emu, ref, *LABELS, None, None, shared["shifts"], shared["max_lag"])
    loc = m["loc"]
    pops = {r["population"]: {"mismatching cells": r["mismatching cells"], "cells": r["cells"],
                              f"spikes {LABELS[0]}": r[f"spikes {LABELS[0]}"],
                              f"spikes {LABELS[1]}": r[f"spikes {LABELS[1]}"],
                              "first difference": r["first difference"]} for r in m["counted"]}
    first = None if loc.identical else dict(population=loc.population, neuron=loc.neuron, tick=loc.tick,
                                            kind=loc.kind, a_spiked=loc.a_spiked)
    return dict(sample=i, name=task["name"], ticks=int(next(iter(one.values())).shape[1]),
                identical=bool(loc.identical), mismatches=m["mismatches"], cells=m["cells"],
                mismatch_rate=m["mismatches"] / m["cells"] if m["cells"] else 0.0, populations=pops,
                first_divergence=first, finding=m["finding"])


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
        """Per population, over all samples: mismatching cells, cells, rate, spikes of both
        sides, the samples where it differs and those whose first divergence is in it."""
        starts = Counter(s["first_divergence"]["population"] for s in self.samples if s["first_divergence"])
        rows = []
        for p in self.populations:
            got = [s["populations"][p] for s in self.samples if p in s["populations"]]
            mism, cells = sum(g["mismatching cells"] for g in got), sum(g["cells"] for g in got)
            rows.append({"population": p, "mismatching cells": mism, "cells": cells,
                         "mismatch rate": mism / cells if cells else 0.0,
                         **{f"spikes {x}": sum(g[f"spikes {x}"] for g in got) for x in LABELS},
                         "samples differing": sum(g["mismatching cells"] > 0 for g in got),
                         "first divergences": starts.get(p, 0)})
        return rows

    def first_divergences(self) -> List[Dict[str, Any]]:
        """The first divergence of every sample that differs, in sample order."""
        return [dict(sample=s["sample"], name=s["name"], **s["first_divergence"]) for s in self.samples
                if s["first_divergence"]]

    def earliest(self) -> Optional[Dict[str, Any]]:
        """The first divergence that comes first in time (ties: the lower sample), or None."""
        firsts = self.first_divergences()
        return min(firsts, key=lambda d: (d["tick"], d["sample"])) if firsts else None

    def finding(self) -> str:
        """The pool in one sentence: identical samples, the cells that differ and where most, where
        the first divergences start and the earliest of them."""
        n, same = len(self.samples), self.identical
        rows = self.population_rows()
        mism, cells = sum(r["mismatching cells"] for r in rows), sum(r["cells"] for r in rows)
        a, b = LABELS
        if same == n:
            return (f"The {a} and the {b} spike identically on all {n} sample{'s' if n != 1 else ''} "
                    f"({cells:,} cells in {', '.join(self.populations)}).")
        worst = max(rows, key=lambda r: (r["mismatch rate"], r["mismatching cells"]))
        starts = sorted((r for r in rows if r["first divergences"]), key=lambda r: -r["first divergences"])
        where = ", ".join(f"{r['population']!r} in {r['first divergences']} sample"
                          f"{'s' if r['first divergences'] != 1 else ''}" for r in starts)
        e = self.earliest()
        return (f"The {a} and the {b} spike identically on {same} of {n} samples; pooled they differ in "
                f"{percent(mism / cells if cells else 0.0, 2)} of cells ({mism:,} of {cells:,}), most in "
                f"{worst['population']!r} ({percent(worst['mismatch rate'], 2)}). First divergences start in "
                f"{where}; the earliest: sample {e['sample']} ({e['name']}), population {e['population']!r}, "
                f"neuron {e['neuron']}, tick {e['tick']}.")

    def to_dict(self) -> Dict[str, Any]:
        return dict(finding=self.finding(), n_samples=len(self.samples), identical_samples=self.identical,
                    populations=self.population_rows(), first_divergences=self.first_divergences(),
                    samples=self.samples, settings=self.settings)

    def report(self, title: str) -> Report:
        """The finding, the pooled rates per population, every sample's rate and first divergence."""
        rep = Report(title, self.finding())
        rows = self.population_rows()
        rep.add_table([dict(r, **{"mismatch rate": percent(r["mismatch rate"], 2)}) for r in rows],
                      caption=f"{len(self.samples)} samples, each run alone; mismatching (sample, tick, neuron) cells "
                              f"after shifting the {LABELS[0]} back by its latency")
        rep.add_figure(rate_bars([r["population"] for r in rows], [r["mismatch rate"] for r in rows],
                                 [r["mismatching cells"] for r in rows], [r["cells"] for r in rows],
                                 f"{LABELS[0]} vs {LABELS[1]}, all samples: mismatching cells per population"),
                       "mismatch rate per population over all samples (counts in the hover)", data=rows)
        rep.add_heading("Per sample")
        rep.add_figure(rate_bars([f"{s['sample']}" for s in self.samples], [s["mismatch_rate"] for s in self.samples],
                                 [s["mismatches"] for s in self.samples], [s["cells"] for s in self.samples],
                                 "mismatching cells per sample"),
                       "mismatch rate of each sample (by number; counts in the hover)",
                       data=[dict(sample=s["sample"], name=s["name"], mismatches=s["mismatches"], cells=s["cells"])
                             for s in self.samples])
        rep.add_table([_sample_row(s) for s in self.samples], caption="every sample: its mismatch and first divergence")
        return rep


def _sample_row(s: Dict[str, Any]) -> Dict[str, Any]:
    d = s["first_divergence"] or {}
    return {"sample": s["sample"], "input": s["name"], "ticks": s["ticks"], "identical": s["identical"],
            "mismatching cells": s["mismatches"], "mismatch rate": percent(s["mismatch_rate"], 2),
            "first difference": d.get("population"), "neuron": d.get("neuron"), "tick": d.get("tick"),
            "kind": d.get("kind")}


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
    tasks = [dict(sample=i, name=n, rasters=one) for i, (n, one) in enumerate(zip(names, samples))]
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
                 units={"A": "chip", "B": "nir"}, where=f", sample {k}")
    return k
