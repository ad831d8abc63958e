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
from emu.nir_import import from_nir, read_nir
from emu.profile import SemanticsProfile
from emu.settings import Settings, resolve
from emu.spike_io import atomic_write
from emu.timing import depth as timing_depth
from emu.timing import latency_shifts
from validate.attribution import attribute
from validate.float_reference import FloatReference
from validate.metrics import predicted_classes
from validate.report import Report, mismatch_bars, raster_figure

MODEL = Path(__file__).parents[1] / "models" / "gesture_float.nir"
DEMO_SEED = 2026  # the shipped model was trained on seed 0: the demo's test samples are new


def demo_settings(graph, percentile: float, source: str = "the model") -> Settings:
    """How the demo runs the float model on the chip: the paper's PTQ as converter options
    (per-population scale from a percentile of |W|, int8, no extra delay), weights above the
    scale clipped and counted as PTQ does; dt, integrator and reset from the graph's metadata."""
    return resolve(dict(weight_scale="auto", scale_percentile=percentile, conn_delay=0, weight_overflow="saturate"),
                   graph, preset="chip", source=source)


def load_test_set(data, out: Path, per_class: int, ticks: int):
    """(frames (N, T, 2, 32, 32) bool, labels) from the real set or a synthetic test split."""
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


def run_float(graph, settings: Settings, frames: np.ndarray):
    """The float reference's run, and the spikes of every LIF layer, (N, T, neurons) each."""
    run = FloatReference(graph, **dataclasses.asdict(settings.float))(frames)
    return run, {n: run.raster(n) for n in run.v}  # the neuron layers: those with a membrane


def aligned_chip_spikes(result, network, profile: SemanticsProfile, ticks: int) -> dict:
    """Every neuron layer's chip spikes (N, ticks, neurons), shifted back by its depth
    (one tick per connection) so that tick t lines up with snnTorch's tick t; and
    the shifts."""
    shifts = latency_shifts(network, profile, SemanticsProfile.snntorch(), reference_delays=False)
    layers = [n for n in shifts if network.populations[n].model != "input"]
    return {n: result.raster(n)[:, shifts[n]:shifts[n] + ticks] for n in layers}, {n: shifts[n] for n in layers}


def layer_mismatch(float_spikes: dict, chip_spikes: dict, shifts: dict) -> list:
    """Per layer: spike counts and mismatching cells of float vs aligned chip spikes."""
    rows = []
    for name, ref in float_spikes.items():
        chip = chip_spikes[name]
        rows.append(dict(population=name, depth=shifts[name], float_spikes=int(ref.sum()), chip_spikes=int(chip.sum()),
                         mismatching_cells=int((chip != ref).sum()),
                         mismatch_rate=float((chip != ref).mean())))
    return rows


def run_demo(data=None, model=MODEL, per_class: int = 3, ticks: int = 300, percentile: float = 99.9,
             out="s2emu-demo") -> dict:
    """The demo (module doc); prints as it goes, writes the report and summary into ``out``
    and returns the summary."""
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frames, labels = load_test_set(data, out, per_class, ticks)
    graph = read_nir(model)
    print(f"{len(labels)} test samples x {frames.shape[1]} ticks; model {model}")

    settings = demo_settings(graph, percentile, str(model))
    t0 = time.perf_counter()
    float_run, float_spikes = run_float(graph, settings, frames)
    out_name = list(float_spikes)[-1]
    float_pred = predicted_classes(float_spikes[out_name])
    t_float = time.perf_counter() - t0

    network = from_nir(graph, settings.conversion)
    chip_profile = settings.profile
    depth = timing_depth(network, chip_profile.synaptic_latency)
    t0 = time.perf_counter()
    emulator = Emulator(network, chip_profile)
    inputs = frames.reshape(len(frames), frames.shape[1], -1)
    emulator(inputs[:1, :1])  # the kernels: compiled on first use (numba's disk cache after), loaded
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    # the chip answers one tick per connection later: run that many extra silent ticks
    result = emulator(inputs, ticks=frames.shape[1] + depth, progress=True)
    t_chip = time.perf_counter() - t0
    chip_spikes, shifts = aligned_chip_spikes(result, network, chip_profile, frames.shape[1])
    mism = layer_mismatch(float_spikes, chip_spikes, shifts)
    chip_pred = predicted_classes(chip_spikes[out_name])
    acc_float, acc_chip = float(np.mean(float_pred == labels)), float(np.mean(chip_pred == labels))

    print(f"accuracy: snnTorch float {acc_float:.1%}, emulated SpiNNaker2 (int8 PTQ, chip profile) {acc_chip:.1%} "
          f"(chance {1 / 11:.1%}); predictions agree on {np.mean(float_pred == chip_pred):.1%} of samples")
    print(f"time: snnTorch {t_float:.2f} s, emulator {t_chip:.2f} s (before it: {t_load:.1f} s to convert the "
          f"network and compile the kernels, or load them from numba's cache after the first run)")
    for r in mism:
        print(f"  {r['population']:>6}: float {r['float_spikes']:>7} spikes, chip {r['chip_spikes']:>7}, "
              f"mismatching cells {r['mismatch_rate']:.2%}")
    att = attribute(network, frames.reshape(len(frames), frames.shape[1], -1), labels, target=chip_profile,
                    reference=float_run,
                    output=out_name, progress=True)
    print(att.sentence())

    chip_graph_path = out / "gesture_chip_int8.nir"
    _write_chip_model(graph, percentile, chip_graph_path)
    report = Report("SpiNNaker2 emulator demo: DVS gestures, snnTorch float vs emulated chip")
    report.add_text(f"{len(labels)} test samples x {frames.shape[1]} ticks, model {model}. Chip: int8 PTQ "
                    f"({percentile}th percentile of |W| per population, truncation), chip semantics profile. "
                    f"Chip-ready model written to {chip_graph_path.name}.")
    report.add_table([dict(run="snnTorch float", accuracy=acc_float, seconds=t_float),
                      dict(run="emulated SpiNNaker2", accuracy=acc_chip, seconds=t_chip)], caption="accuracy")
    report.add_heading("Per-layer spike mismatch")
    report.add_table(mism)
    report.add_figure(mismatch_bars([r["population"] for r in mism], [r["float_spikes"] for r in mism],
                                    [r["chip_spikes"] for r in mism], [r["mismatching_cells"] for r in mism],
                                    label_a="float", label_b="chip"), caption="spikes and mismatching cells per layer")
    report.add_figure(raster_figure(float_spikes["lif4"][0], chip_spikes["lif4"][0],
                                    label_a="snnTorch float", label_b="chip (aligned)", title="lif4, sample 0"))
    report.extend(att.report())
    html, js = report.write(out / "demo_report.html")
    summary = dict(samples=len(labels), ticks=int(frames.shape[1]), accuracy_float=acc_float, accuracy_chip=acc_chip,
                   agreement=float(np.mean(float_pred == chip_pred)), layers=mism, attribution=att.to_dict())
    atomic_write(out / "demo_summary.json", json.dumps(summary, default=float))
    print(f"report: {html.resolve()}  ({time.perf_counter() - t_start:.0f} s in all)")
    return summary


def _write_chip_model(graph, percentile: float, path: Path) -> None:
    """The chip-ready artifact: NIR with integer weights and scaled thresholds, plus the scales as JSON."""
    q, report = quantize(graph, percentile=percentile)
    nir.write(str(path), q)
    path.with_suffix(".json").write_text(json.dumps(report, indent=1, default=float))
