"""Where accuracy is lost between snnTorch and the chip: one semantic factor at a time (a waterfall).

Start from snnTorch's float semantics (``SemanticsProfile.snntorch()``: latency 0,
delayed reset, float64, float weights) and switch the factors that separate it
from the chip (``SemanticsProfile.chip()``) one at a time, in this order:

1. ``latency``: synaptic latency 0 -> 1 tick per connection, plus the projections'
   extra delays (snnTorch has none, the NIR converter adds one by default). A
   population at depth d then answers d (+ delays) ticks later; every comparison
   is made after shifting it back (:func:`emu.timing.latency_shifts`), and
   with ``pad=True`` such runs get that many extra silent ticks so that nothing of
   the response is cut off. What remains is the real effect: recurrent loops
   with a longer lag, skip paths of other lengths, bias integrating before the
   delayed input arrives.
2. ``reset_timing``: next-tick (snnTorch ``reset_delay=True``) -> same-tick reset.
3. ``reset_mode``: only when the float model's reset differs from the chip's.
4. ``spike_condition`` / ``cuba_current``: only when they differ.
5. ``weights``: integer weights (bits, rounding, overflow) instead of float ones.
6. ``arithmetic``: float64 -> the chip's float32 (or the target's arithmetic).
7. optionally ``fixed``: a fixed-point membrane beyond the chip (``include_fixed``).

For every configuration the emulator runs all samples; against the float run it
counts mismatching (sample, tick, neuron) spike cells per population, and the
predicted class (argmax of the output population's spike counts, ties to the
lowest index) gives an accuracy (with labels) or the agreement with the float
prediction (without). Each factor's contribution is reported **cumulatively**
(switching factors on in order: differences between successive steps, summing to
the total) and **leave-one-out** (the chip minus the chip without that factor:
what removing it alone would recover; these need not sum to the total when
factors interact). :meth:`Attribution.sentence` writes the summary users want,
e.g. "of the 0.6 % drop, 0.4 % comes from reset timing".

The source is the float reference's profile (``SemanticsProfile.snntorch()``: decays
stored as float32 as snnTorch holds ``beta``, the bias through the synaptic current);
the ``bias_path`` factor is what the chip converter's folding of a CubaLIF bias into
the membrane costs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from emu.engine import Emulator
from emu.inputs import normalize_inputs
from emu.network import Network
from emu.parallel import parallel_map
from emu.profile import SemanticsProfile
from emu.spikes import Recording
from emu.timing import align, latency_shifts

from .factors import AttributionError, Configuration, Factor, configuration, default_factors, without_delays
from .metrics import predicted_classes
from .figures import rate_bars, waterfall
from .report import Report, percent


@dataclass
class ConfigResult:
    """What one configuration did on all samples, measured against the source run."""

    name: str
    switched: Tuple[str, ...]
    profile: Dict[str, Any]
    delays: bool
    shifts: Dict[str, int]
    mismatches: Dict[str, int]
    spikes: Dict[str, int]
    cells: Dict[str, int]
    predictions: np.ndarray
    accuracy: float = float("nan")

    @property
    def total_mismatch(self) -> int:
        return int(sum(self.mismatches.values()))

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["predictions"] = self.predictions.tolist()
        d["total_mismatch"] = self.total_mismatch
        return d


def _groups(inputs, network: Network) -> Tuple[List[Tuple[np.ndarray, Dict[str, np.ndarray]]], int]:
    """Samples as batches of equal length: ``[(sample indices, {input: (b, T, N)})]`` and the sample count."""
    if isinstance(inputs, (list, tuple)):
        items = [normalize_inputs(network, x)[0] for x in inputs]
        by_len: Dict[int, List[int]] = {}
        for i, x in enumerate(items):
            if next(iter(x.values())).shape[0] != 1:
                raise AttributionError(f"sample {i}: give one sample per list item (got a batch of "
                                       f"{next(iter(x.values())).shape[0]})")
            by_len.setdefault(next(iter(x.values())).shape[1], []).append(i)
        groups = [(np.array(idx), {k: np.concatenate([items[i][k] for i in idx]) for k in items[idx[0]]})
                  for _, idx in sorted(by_len.items())]
        return groups, len(items)
    rasters, _ = normalize_inputs(network, inputs)
    n = next(iter(rasters.values())).shape[0]
    return [(np.arange(n), rasters)], n


@dataclass
class Attribution:
    """Results of :func:`attribute`: the source run, the cumulative steps, and leave-one-out runs."""

    factors: List[Factor]
    source: ConfigResult
    steps: List[ConfigResult]
    leave_one_out: List[ConfigResult]
    alone: List[ConfigResult]
    populations: List[str]
    output: str
    n_samples: int
    labels_given: bool
    settings: Dict[str, Any] = field(default_factory=dict)
    #: the float reference (real snnTorch) against the source profile: cells that differ per population
    #: (0 when the emulator's float profile is the user's model); None when no reference ran
    reference_mismatches: Optional[Dict[str, int]] = None

    @property
    def target(self) -> ConfigResult:
        return self.steps[-1] if self.steps else self.source

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

    def rows(self) -> List[Dict[str, Any]]:
        """One row per factor: cumulative and leave-one-out contributions to accuracy drop and mismatch."""
        rows = []
        total_m = self.target.total_mismatch
        cells = max(1, sum(self.target.cells.values()))
        prev = self.source
        for i, f in enumerate(self.factors):
            step, loo = self.steps[i], self.leave_one_out[i]
            dm = step.total_mismatch - prev.total_mismatch
            da = prev.accuracy - step.accuracy
            lm = total_m - loo.total_mismatch
            la = loo.accuracy - self.target.accuracy
            # signed changes (a factor can remove mismatch again), never shares of a total above 100 %
            row = {
                "factor": f.label,
                "key": f.key,
                f"{self.metric} after": step.accuracy,
                "drop added (pp)": 100 * da,
                "mismatch rate after": step.total_mismatch / cells,
                "mismatching cells added": dm,
                "leave-one-out drop (pp)": 100 * la,
                "leave-one-out cells": lm,
            }
            if self.alone:
                row["alone mismatch"] = self.alone[i].total_mismatch
                row["alone drop (pp)"] = 100 * (self.source.accuracy - self.alone[i].accuracy)
            rows.append(row)
            prev = step
        return rows

    def population_rows(self) -> List[Dict[str, Any]]:
        """Per population: the mismatch each factor adds cumulatively (and the total)."""
        rows = []
        for pop in self.populations:
            row = {"population": pop, "float spikes": self.source.spikes[pop]}
            prev = self.source
            for f, step in zip(self.factors, self.steps):
                row[f.key] = step.mismatches[pop] - prev.mismatches[pop]
                prev = step
            row["total mismatch"] = self.target.mismatches[pop]
            rows.append(row)
        return rows

    def contributions(self) -> List[tuple]:
        """(factor, accuracy lost, mismatching cells added) per factor, cumulative in waterfall order."""
        out, prev = [], self.source
        for f, step in zip(self.factors, self.steps):
            out.append((f, prev.accuracy - step.accuracy, step.total_mismatch - prev.total_mismatch))
            prev = step
        return out

    def finding(self) -> str:
        """The answer in one sentence: how much accuracy is lost and which factor it comes from;
        or, when none is lost, how much the spikes differ and where from."""
        metric, src, tgt = self.metric, self.source.accuracy, self.target.accuracy
        drop = src - tgt
        head = (f"{self.target_label.capitalize()} {metric} {percent(tgt)} vs float {percent(src)} on "
                f"{self.n_samples} sample{'s' if self.n_samples != 1 else ''}")
        if not self.factors:
            return f"{head}: the two profiles do not differ in any factor that can change this network."
        parts = self.contributions()
        cells = sum(self.target.cells.values())
        mism = self.target.total_mismatch
        spikes = f"spikes differ in {percent(mism / cells if cells else 0.0, 2)} of (sample, tick, neuron) cells"
        if abs(drop) < 1e-12:
            movers = sorted([p for p in parts if p[2] > 0], key=lambda p: -p[2])
            why = f", most from {movers[0][0].label}" if movers else ""
            text = f"{head}: no {metric} is lost; {spikes}{why}."
        else:
            big = sorted([p for p in parts if abs(p[1]) > 1e-12], key=lambda p: -abs(p[1]))
            lost = [p for p in big if p[1] > 0]
            gained = [p for p in big if p[1] < 0]
            word = "drop" if drop > 0 else "gain"
            if drop > 0 and len(lost) == 1 and not gained:
                why = f"comes from {lost[0][0].label}"
            else:
                said = [f"{100 * d:.1f} points from {f.label}" for f, d, _ in lost]
                said += [f"{f.label} recovers {100 * -d:.1f}" for f, d, _ in gained]
                why = "splits as " + _join(said)
            text = f"{head}: the {100 * abs(drop):.1f}-point {word} {why}; {spikes}."
        if self.reference_mismatches and any(self.reference_mismatches.values()):
            n = sum(self.reference_mismatches.values())
            text += (f" Note: the float reference (snnTorch) and the emulator's float profile differ in {n:,} cells, "
                     f"so the float side itself is not exact.")
        return text

    def to_dict(self) -> Dict[str, Any]:
        return {
            "finding": self.finding(),
            "metric": self.metric,
            "n_samples": self.n_samples,
            "output": self.output,
            "populations": self.populations,
            "settings": self.settings,
            "reference_mismatches": self.reference_mismatches,
            "factors": [dataclasses.asdict(f) for f in self.factors],
            "source": self.source.to_dict(),
            "steps": [s.to_dict() for s in self.steps],
            "leave_one_out": [s.to_dict() for s in self.leave_one_out],
            "alone": [s.to_dict() for s in self.alone],
            "rows": self.rows(),
            "population_rows": self.population_rows(),
        }

    def report(self, title: str = "Where accuracy is lost: float model -> SpiNNaker2 chip",
               rate_chart: bool = True) -> Report:
        """The waterfall report: the finding, the numbers behind it, waterfalls of accuracy and of
        spike mismatch, per-factor and per-population tables of rates (and, with ``rate_chart``,
        a chart of the rates), the settings."""
        rep = Report(title, self.finding())
        cells = sum(self.target.cells.values())
        rep.add_table([{"": "float (source profile)", self.metric: percent(self.source.accuracy),
                        "mismatching cells": 0, "mismatch rate": percent(0.0, 2)},
                       {"": self.target_label, self.metric: percent(self.target.accuracy),
                        "mismatching cells": self.target.total_mismatch,
                        "mismatch rate": percent(self.target.total_mismatch / cells if cells else 0.0, 2)}],
                      caption=f"{self.n_samples} samples; mismatch = (sample, tick, neuron) cells whose spike differs "
                              f"from the float run after latency alignment")
        for note in self.settings.get("notes", []):
            rep.add_text(f"Note: {note}", note=True)
        parts = self.contributions()
        if parts:
            labels = [f.label for f, _, _ in parts]
            rep.add_heading("Waterfall")
            rep.add_figure(waterfall(labels, [100 * d for _, d, _ in parts],
                                     f"{self.metric} lost per factor, switched on one after the other",
                                     "points", self.target_label),
                           f"{self.metric} from float ({percent(self.source.accuracy)}) to {self.target_label} "
                           f"({percent(self.target.accuracy)}); positive bars lose accuracy",
                           data={label: 100 * d for label, (_, d, _) in zip(labels, parts)})
            rep.add_figure(waterfall(labels, [100 * m / cells if cells else 0.0 for _, _, m in parts],
                                     "spike mismatch added per factor", "% of cells", self.target_label),
                           "mismatching cells against the float run, in % of all cells, factor by factor",
                           data={label: m for label, (_, _, m) in zip(labels, parts)})
        rep.add_heading("Factors")
        rep.add_table(self.rows(), caption="cumulative (switching factors on in order) and leave-one-out (chip "
                                           "without the factor) contributions")
        rep.add_heading("Per population")
        pops = self.populations
        rates = [self.target.mismatches[p] / max(1, self.target.cells[p]) for p in pops]
        if rate_chart:
            rep.add_figure(rate_bars(pops, rates, [self.target.mismatches[p] for p in pops],
                                     [self.target.cells[p] for p in pops],
                                     f"{self.target_label} vs float: mismatching cells per population"),
                           "mismatch rate per population (counts in the hover)", data=self.population_rows())
        rep.add_table(self.population_rows(), caption="mismatching cells each factor adds, per population")
        configs = [self.source] + self.steps + self.leave_one_out + self.alone
        rep.add_table([{"configuration": c.name, "switched": ", ".join(c.switched) or "-",
                        self.metric: percent(c.accuracy), "mismatch rate": percent(
                            c.total_mismatch / max(1, sum(c.cells.values())), 2),
                        "mismatching cells": c.total_mismatch, "spikes": int(sum(c.spikes.values()))}
                       for c in configs], caption="every configuration run")
        truth = "labels given" if self.labels_given else "no labels: agreement with the float prediction"
        rep.add_settings(dict(self.settings, samples=self.n_samples, classes=f"argmax of the spike counts of "
                              f"{self.output!r} (ties to the lowest index)", truth=truth))
        return rep


def _reference_rasters(reference, rasters, idx, ticks: int, populations) -> Dict[str, np.ndarray]:
    """The float reference's spikes of samples ``idx`` over ``ticks`` ticks (silence after its end)."""
    if not isinstance(reference, Recording):
        run = reference(rasters, ticks=ticks)
        return {p: run.raster(p) for p in populations}
    out = {}
    for p in populations:
        r = reference.raster(p)[idx, :ticks]
        out[p] = np.pad(r, ((0, 0), (0, ticks - r.shape[1]), (0, 0)))
    return out


def chunk_counts(task: Dict[str, Any], shared: Dict[str, Any]) -> Dict[str, Any]:
    """Every configuration (``shared["emulators"]``, the source first) on one batch of samples
    (``task``: their indices ``idx`` and ``rasters``), counted against the source run: per
    configuration the mismatching cells, cells and spikes per population and each sample's
    predicted class; and the float reference's mismatches against the source, when there is
    one. A module-level function: :func:`emu.parallel.parallel_map` runs it anywhere."""
    idx, rasters = task["idx"], task["rasters"]
    populations, reference = shared["populations"], shared["reference"]
    ticks = next(iter(rasters.values())).shape[1]
    counts, base, ref_mism = [], None, None
    for emulator, sh in zip(shared["emulators"], shared["shifts"]):
        extra = max(0, max(sh.values())) if shared["pad"] else 0
        res = emulator(rasters, ticks=ticks + extra)
        if base is None:  # the source: the others are measured against its run
            base = {p: res.raster(p) for p in populations}
            if reference is not None:
                ref = _reference_rasters(reference, rasters, idx, ticks + extra, populations)
                ref_mism = {p: int((r != base[p]).sum()) for p, r in ref.items()}
        c = dict(mismatches={}, cells={}, spikes={}, predictions=None)
        counts.append(c)
        for p in populations:
            cfg, src = align(res.raster(p), base[p], sh[p], axis=1)
            c["mismatches"][p], c["cells"][p], c["spikes"][p] = int((cfg != src).sum()), int(cfg.size), int(cfg.sum())
            if p == shared["output"]:
                c["predictions"] = predicted_classes(cfg)
    return dict(idx=idx, counts=counts, reference=ref_mism)


def _run_chunks(chunks, shared, n_samples: int, progress, workers: int, scheduler: Optional[str]):
    """:func:`chunk_counts` of every batch, here or on ``workers`` processes or a dask cluster,
    added up in order: (per configuration: totals and predictions, reference mismatches)."""
    populations = shared["populations"]
    acc = [dict(mismatches={p: 0 for p in populations}, spikes={p: 0 for p in populations},
                cells={p: 0 for p in populations}, predictions=np.full(n_samples, -1, np.int64))
           for _ in shared["emulators"]]
    ref_mism = {p: 0 for p in populations} if shared["reference"] is not None else None
    total = len(chunks) * len(acc)
    bar = None
    if progress if progress is not None else total > 4:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="attribution", unit="run")
    for part in parallel_map(chunk_counts, chunks, shared=shared, workers=workers, scheduler=scheduler):
        for a, c in zip(acc, part["counts"]):
            for what in ("mismatches", "cells", "spikes"):
                for p, n in c[what].items():
                    a[what][p] += n
            a["predictions"][part["idx"]] = c["predictions"]
        for p, n in (part["reference"] or {}).items():
            ref_mism[p] += n
        if bar is not None:
            bar.update(len(part["counts"]))
    if bar is not None:
        bar.close()
    return acc, ref_mism


def _join(items: List[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def attribute(network: Network, inputs, labels: Optional[Sequence[int]] = None,
              source: Optional[SemanticsProfile] = None, target: Optional[SemanticsProfile] = None,
              factors: Optional[Sequence[Factor]] = None, output: Optional[str] = None, pad: bool = True,
              include_fixed: bool = False, alone: bool = False, reference=None,
              chunk: int = 64, progress: Optional[bool] = None, workers: int = 0,
              scheduler: Optional[str] = None) -> Attribution:
    """Run the waterfall (module doc) over ``inputs`` and return an :class:`Attribution`.

    ``inputs``: a batch as the emulator takes it ((B, T, N) or a dict), or a list
    of single samples (may differ in length). ``labels``: one class per sample, or
    None. ``source`` / ``target``: the float and chip profiles (defaults
    ``snntorch()`` and ``chip()``). ``output``: the population whose spike counts
    classify (default: the last in topological order). ``pad``: give latency-shifted
    runs extra silent ticks so that aligned windows are complete. ``alone``: also
    run each factor switched on alone from the source. ``reference``: the float
    reference (a :class:`validate.float_reference.FloatReference`, run on the same
    samples, or its :class:`~emu.spikes.Recording` of every sample in order), checked
    against the source profile (``reference_mismatches``). ``chunk``: samples per batch,
    the unit of work; ``workers`` local processes or a dask ``scheduler`` address run the
    batches (:func:`emu.parallel.parallel_map`), gathered in order: the same numbers as in
    this process (the float reference runs the same batches; the emulator's samples never
    depend on each other).
    """
    network.validate()
    source = source or SemanticsProfile.snntorch()
    target = target or SemanticsProfile.chip()
    factors = list(factors) if factors is not None else default_factors(source, target, network, include_fixed)
    order = network.order()
    populations = [n for n in order if network.populations[n].model != "input"]
    output = output or (populations[-1] if populations else None)
    if output not in network.populations or network.populations[output].model == "input":
        raise AttributionError(f"output population {output!r} is not a neuron population of the network "
                               f"(populations: {populations})")
    groups, n_samples = _groups(inputs, network)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != n_samples:
            raise AttributionError(f"{labels.shape[0] if labels.ndim == 1 else labels.shape} labels for {n_samples} "
                                   f"samples: give one label per sample")
        if not np.issubdtype(labels.dtype, np.integer):
            try:
                as_float = labels.astype(float)
            except (TypeError, ValueError):
                raise AttributionError(f"labels must be integer class indices, got {labels.dtype}") from None
            if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
                raise AttributionError("labels must be integer class indices")
            labels = as_float.astype(np.int64)
        n_out = network.populations[output].size
        if labels.size and (labels.min() < 0 or labels.max() >= n_out):
            raise AttributionError(f"labels must be class indices 0..{n_out - 1} (the {n_out} neurons of "
                                   f"{output!r}), got {int(labels.min())}..{int(labels.max())}")
    nets = {False: without_delays(network), True: network}

    src_cfg = configuration(source, factors, (), "float (source)")
    keys = [f.key for f in factors]
    steps = [configuration(source, factors, keys[:i + 1], f"+ {f.key}") for i, f in enumerate(factors)]
    target_label = "chip + fixed point" if any(f.key == "fixed" for f in factors) else "chip"
    if steps:
        steps[-1] = dataclasses.replace(steps[-1], name=f"{target_label} (target)")
    loo = [configuration(source, factors, [k for k in keys if k != f.key], f"chip - {f.key}") for f in factors]
    solo = [configuration(source, factors, [f.key], f"float + {f.key} only") for f in factors] if alone else []
    unique: Dict[Any, Configuration] = {}
    for c in [src_cfg] + steps + loo + solo:
        unique.setdefault(c.key, c)
    shifts = {k: latency_shifts(network, c.profile, source, reference_delays=False, delays=c.delays)
              for k, c in unique.items()}
    chunks = [dict(idx=idx[s:s + chunk], rasters={n: r[s:s + chunk] for n, r in rasters.items()})
              for idx, rasters in groups for s in range(0, len(idx), chunk)]
    # the source first (the first key of unique): every other configuration is measured against its run
    shared = dict(emulators=[Emulator(nets[c.delays], c.profile) for c in unique.values()],
                  shifts=[shifts[k] for k in unique], populations=populations, output=output, pad=pad,
                  reference=reference)
    totals, ref_mism = _run_chunks(chunks, shared, n_samples, progress, workers, scheduler)
    acc = dict(zip(unique, totals))
    src_pred = acc[src_cfg.key]["predictions"]

    def result(c: Configuration) -> ConfigResult:
        a = acc[c.key]
        pred = a["predictions"]
        truth = labels if labels is not None else src_pred
        accuracy = float(np.mean(pred == truth)) if n_samples else float("nan")
        return ConfigResult(c.name, c.switched, c.profile.describe(), c.delays, shifts[c.key], dict(a["mismatches"]),
                            dict(a["spikes"]), dict(a["cells"]), pred.copy(), accuracy)

    settings = dict(source=source.describe(), target=target.describe(), target_label=target_label, pad=pad,
                    output=output)
    return Attribution(factors, result(src_cfg), [result(c) for c in steps], [result(c) for c in loo],
                       [result(c) for c in solo], populations, output, n_samples, labels is not None, settings,
                       ref_mism)
