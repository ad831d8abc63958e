"""``s2emu demo``: the DVS-gesture paper pipeline end to end, on built-in data.

1. test data: a synthetic DVS-gesture test split written in the real on-disk
   layout and read back through tonic (or the real set with ``--data``);
2. the shipped float model (``emu/models/gesture_float.nir``, trained on synthetic
   gestures by the command in ``emu/models/README.md``) run in snnTorch;
3. post-training quantization as in the paper (per-population scale from the
   99.9th percentile of |W|, int8, truncation), run on the emulated chip;
4. accuracy of both, per-layer spike mismatch (chip aligned by its one tick per
   connection), the top gap factors (validate.attribution), one HTML report.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import nir
import numpy as np
from tqdm import tqdm

from emu.apps.gesture.data import SynthConfig, ensure_synthetic_dataset, load_dvsgesture
from emu.apps.gesture.ptq import quantize
from emu.engine import Emulator
from emu.spikes import Recording
from emu.inputs import normalize_inputs
from emu.nir_import import from_nir, read_nir
from emu.phases import phase
from emu.settings import Settings, load_profile_file, resolve
from emu.outputs import OutputSet
from emu.timing import depth as timing_depth
from validate.accuracy import background_float_run, chip_vs_float
from validate.attribution import attribute
from validate.cause import divergence_causes
from validate.conversion_warnings import warn_zeroed_weights
from validate.float_reference import FloatReference
from validate.localize import Localization
from validate.figures import agreement_bars
from validate.metrics import SpikeAgreement, agreement_of_keys
from validate.report import Report, percent
from validate.traces import emulator_voltages, float_voltages
from validate.validation import compare_runs

MODEL = Path(__file__).parents[1] / "models" / "gesture_float.nir"
DEMO_SEED = 2026  # the shipped model was trained on seed 0: the demo's test samples are new
#: with a dask scheduler, the attribution's batches (a worker's unit of work) hold this many samples; its
#: numbers do not depend on it (the float side is the recorded float run, the emulator's samples independent)
CLUSTER_BATCH = 8


def demo_settings(graph, percentile: float, source: str = "the model", profile_file=None) -> Settings:
    """How the demo runs the float model on the chip: the paper's PTQ as converter options
    (per-population scale from a percentile of |W|, int8, no extra delay), weights above the
    scale clipped and counted as PTQ does; dt, integrator and reset from the graph's metadata;
    ``profile_file``: a calibrated profile (a path), the board's semantics under these options."""
    return resolve(dict(weight_scale="auto", scale_percentile=percentile, conn_delay=0, weight_overflow="saturate"),
                   graph, profile_file=load_profile_file(profile_file) if profile_file else None, preset="chip",
                   source=source)


def load_test_set(data, out: Path, per_class: int, ticks: int):
    """(frames (N, T, 2, 32, 32) bool, labels) from the real set or a synthetic test split."""
    with phase("data"):
        return _load_test_set(data, out, per_class, ticks)


def _load_test_set(data, out: Path, per_class: int, ticks: int):
    root = Path(data) if data else out / "data"
    if not data:
        ensure_synthetic_dataset(root, n_train_per_class=0, n_test_per_class=per_class, seed=DEMO_SEED,
                                 config=SynthConfig(duration_ms=max(ticks, 300)))
    dataset = load_dvsgesture(root, train=False, ticks=ticks, cache_dir=out / "cache")
    frames, labels = [], []
    for i in tqdm(range(len(dataset)), desc="reading events (tonic)", unit="sample"):
        x, y = dataset[i]
        frames.append(np.asarray(x) > 0)
        labels.append(int(y))
    return np.stack(frames), np.array(labels)


def layer_agreement(float_run: Recording, chip_run: Recording, shifts: dict) -> list:
    """Per layer: the aligned chip spikes against the float spikes (:class:`SpikeAgreement`, F1
    first), with the layer's depth in ticks; counted on the spike lists (no raster built)."""
    cells = {n: float_run.batch * float_run.ticks * float_run.sizes[n] for n in shifts}
    return [dict(population=n, depth=shifts[n],
                 **agreement_of_keys(chip_run.spike_keys(n), float_run.spike_keys(n), cells[n]).to_dict())
            for n in shifts]


def closest_look(att) -> int:
    """The sample to look at closely: the first that the chip loses (float right, chip wrong),
    else the first it gains, else the first whose prediction differs, else the one whose output
    spikes differ most."""
    flips = att.flips()
    for lost in (True, False):
        for f in flips:
            if f.lost == lost:
                return f.sample
    differ = np.flatnonzero(att.source.predictions != att.target.predictions)
    if differ.size:
        return int(differ[0])
    diff = np.abs(att.source.output_counts - att.target.output_counts).sum(axis=1)
    return int(np.argmax(diff))


def run_demo(data=None, model=MODEL, per_class: int = 3, ticks: int = 300, percentile: float = 99.9,
             out="s2emu-demo", profile_file=None, scheduler=None) -> dict:
    """The demo (module doc); prints as it goes, writes the report and summary into ``out``
    and returns the summary. ``scheduler``: a dask.distributed scheduler address that runs the
    attribution's configurations, in batches of samples (:data:`CLUSTER_BATCH`)."""
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frames, labels = load_test_set(data, out, per_class, ticks)
    graph = read_nir(model)
    print(f"{len(labels)} test samples x {frames.shape[1]} ticks; model {model}")

    settings = demo_settings(graph, percentile, str(model), profile_file)
    network = from_nir(graph, settings.conversion)
    emulator = Emulator(network, settings.profile)
    inputs = frames.reshape(len(frames), frames.shape[1], -1)
    # the float run goes on beside the attribution's emulator runs, which count it when it is there
    float_rec = background_float_run(graph, settings, *normalize_inputs(network, frames), progress=True)
    att = attribute(network, inputs, labels, target=settings.profile, reference=float_rec, progress=True,
                    chunk=CLUSTER_BATCH if scheduler else 64, scheduler=scheduler)
    runs = chip_vs_float(graph, settings, frames, output=att.output, progress=True, emulator=emulator,
                         float_rec=float_rec)
    shifts = runs.shifts
    layers = layer_agreement(runs.float_run, runs.chip_run, shifts)
    float_pred, chip_pred = runs.float_classes, runs.chip_classes
    t_float, t_load, t_chip = runs.seconds["float"], runs.seconds["load"], runs.seconds["chip"]
    chip_profile = settings.profile
    acc_float, acc_chip = runs.accuracies(labels)

    print(f"accuracy: snnTorch float {acc_float:.1%}, emulated SpiNNaker2 (int8 PTQ, chip profile) {acc_chip:.1%} "
          f"(chance {1 / 11:.1%}); predictions agree on {np.mean(float_pred == chip_pred):.1%} of samples")
    cached = " (read from the float-run cache: the same model, settings and inputs ran before)" \
        if runs.float_run.meta.get("from_cache") else ""
    print(f"time: snnTorch {t_float:.2f} s{cached}, emulator {t_chip:.2f} s (before it: {t_load:.1f} s to convert "
          f"the network and load the compiled kernels)")
    for r in layers:
        print(f"  {r['population']:>6}: spike F1 {r['f1']:.3f}, recall {r['recall'] or 0:.1%}, chip/float rate "
              f"{r['rate_ratio'] or 0:.2f}x ({r['spikes_a']:>7} chip spikes, {r['spikes_b']:>7} float)")
    print(att.finding())

    chip_graph_path = out / "gesture_chip_int8.nir"
    k = closest_look(att)
    report = Report("SpiNNaker2 emulator demo: DVS gestures, snnTorch float vs emulated chip")
    noted: dict = {}
    warn_zeroed_weights(network, chip_profile, summary=noted, report=report)
    report.add_table([dict(run="snnTorch float (the NIR model)" + (" (from the cache)" if cached else ""),
                           accuracy=percent(acc_float), seconds=round(t_float, 2)),
                      dict(run="emulated SpiNNaker2 (int8 PTQ)", accuracy=percent(acc_chip), seconds=round(t_chip, 3))],
                     caption=f"{len(labels)} test samples x {frames.shape[1]} ticks; predictions agree on "
                             f"{percent(float(np.mean(float_pred == chip_pred)))} of samples (chance {percent(1 / 11)})")
    report.add_text(f"Model {model.name}. Chip: int8 PTQ ({percentile}th percentile of |W| per population, "
                    f"truncation), chip semantics profile; chip-ready model written to {chip_graph_path.name}. The chip "
                    f"answers one tick per connection later; its spikes are shifted back by that depth "
                    f"({', '.join(f'{n} {s}' for n, s in shifts.items())}) before comparing.", note=True)
    report.add_heading("Per-layer spike agreement, all samples")
    report.add_figure(agreement_bars([r["population"] for r in layers], [SpikeAgreement.from_dict(r) for r in layers],
                                     "chip", "float", "chip vs float per layer"),
                      "spike F1, recall (share of the float spikes the chip reproduces) and precision per layer, and "
                      "both firing rates (counts in the hover)", data=layers)
    report.add_table([{"population": r["population"], "depth (ticks)": r["depth"], "spike F1": r["f1"],
                       "recall": percent(r["recall"]), "precision": percent(r["precision"]),
                       "rate chip (per neuron per tick)": r["rate_a"], "rate float": r["rate_b"],
                       "rate ratio": r["rate_ratio"], "spikes chip": r["spikes_a"], "spikes float": r["spikes_b"],
                       "mismatching cells": r["mismatching_cells"], "mismatch rate": percent(r["mismatch_rate"], 2)}
                      for r in layers])
    flip = next((f for f in att.flips() if f.sample == k), None)
    why = (f"{'lost' if flip.lost else 'gained'} by the chip, carried by "
           f"{' and '.join(att.label_of(c) for c in flip.cause) or 'interacting factors'}") if flip else \
        "no sample flips: the one whose output differs most"
    report.add_heading(f"Sample {k} up close (label {labels[k]}, float says {float_pred[k]}, chip says {chip_pred[k]}; "
                       f"{why})")
    closer = _sample_comparison(report, graph, settings, network, emulator, inputs[k:k + 1], k, shifts)
    report.extend(att.report(rate_chart=False, settings=False))  # the per-layer rates are at the top
    report.add_settings(dict(model=str(model), samples=len(labels), ticks=int(frames.shape[1]), percentile=percentile,
                             profile=chip_profile.describe(), conversion=network.meta.get("conversion", {}),
                             sources=settings.sources, attribution=att.settings))
    report.finding = f"{att.finding()} Sample {k} up close: {closer['sentence']}"
    summary = dict(finding=report.finding, samples=len(labels), ticks=int(frames.shape[1]), percentile=percentile,
                   accuracy_float=acc_float, accuracy_chip=acc_chip,
                   agreement=float(np.mean(float_pred == chip_pred)), layers=layers,
                   closest_look=dict(sample=k, **closer), attribution=att.to_dict(), **noted)
    html = out / "demo_report.html"
    made_with = dict(model=str(model), data=str(data) if data else f"synthetic, {per_class} per class",
                     ticks=int(frames.shape[1]), percentile=percentile,
                     profile_file=str(profile_file) if profile_file else None)
    with OutputSet("demo", made_with) as outputs:  # the chip model, report and summary: together or not at all
        _write_chip_model(graph, percentile, chip_graph_path, outputs)
        outputs.mark(report)
        report.write(outputs.path(html))
        summary["output_set"] = outputs.stamp
        outputs.write(out / "demo_summary.json", json.dumps(summary, default=float))
    print(f"report: {html.resolve()}  ({time.perf_counter() - t_start:.0f} s in all)")
    return summary


def _sample_comparison(report: Report, graph, settings: Settings, network, emulator, one, k: int,
                       shifts) -> dict:
    """Sample ``k`` (``one``) again with membranes recorded on both sides, compared into ``report``;
    the comparison's summary without its per-neuron tables."""
    ticks = one.shape[1]
    depth = timing_depth(network, settings.profile.synaptic_latency)
    chip = emulator(one, ticks=ticks + depth, record_v=True).shifted(shifts, ticks).sample(0)
    flt = FloatReference(graph, **dataclasses.asdict(settings.float))(one, record_v=True).sample(0)
    chip.source, chip.meta["sample"], flt.meta["sample"] = "emulated chip (shifted back by its latency)", k, k
    comp = compare_runs(report, network, chip, flt, "chip", "float", None, None, {n: 0 for n in network.populations},
                        max_lag=3, voltages={"A": emulator_voltages(settings.profile),
                                             "B": float_voltages(settings.float)}, where=f", sample {k}")
    out = {key: comp[key] for key in ("finding", "rows", "mismatches", "cells", "localization")}
    loc = Localization.from_dict(comp["localization"])
    if not loc.identical:
        rasters, _ = normalize_inputs(network, one)
        cause = divergence_causes(network, settings.profile, rasters, flt, loc, label_b="the float model")
        report.add_text(cause.finding())
        out["cause"] = cause.to_dict()
        where = (f"first difference in time at population {loc.population!r}, neuron {loc.neuron}, tick {loc.tick} "
                 f"({'the chip' if loc.a_spiked else 'the float model'} spiked). {cause.finding()}")
    else:
        where = "chip and float spike identically."
    out["sentence"] = where
    return out


def _write_chip_model(graph, percentile: float, path: Path, outputs: OutputSet) -> None:
    """The chip-ready artifact: NIR with integer weights and scaled thresholds, plus the scales as JSON
    (with the output set it belongs to)."""
    q, report = quantize(graph, percentile=percentile)
    outputs.produce(path, lambda staged: nir.write(str(staged), q))
    outputs.write(path.with_suffix(".json"), json.dumps(dict(report, output_set=outputs.stamp), indent=1,
                                                        default=float))
