"""Regenerate the bundled examples (emu/examples/, described in its README.md):

    python scripts/make_examples.py

* ``conv_net.nir``: a small DVS-style conv net (random weights; metadata dt = 1 ms);
* ``circle_events.npz``: a 200 ms event stream (x, y, p, t in microseconds) of a blob circling
  its 16 x 16 sensor, and ``spikes.json``: the same stream binned to 1 ms ticks as a
  py-spinnaker2 spike dict ``{neuron: [ticks]}``;
* ``chip_recording.json``: a chip-style recording of ``conv_net.nir`` on ``spikes.json`` (every
  population's spikes, the output's voltages, a manifest) made by the emulator under
  :data:`BOARD` -- a stand-in for a board, not a board's measurement;
* ``gestures/``: 11 synthetic DVS-gesture test samples (one per class, seed
  :data:`GESTURE_SEED`, unseen by the shipped model) through the demo's tonic pipeline, each
  a (300, 2048) 0/1 raster, and ``gesture_labels.npy`` their classes in file order.

Deterministic (seeded); about 200 kB in all.
"""
import json
from pathlib import Path

import nir
import numpy as np

from emu.apps.gesture.data import CLASSES, FrameWindow, SynthConfig, event_transform, generate_events
from emu.chip.host import build_manifest, host_code_sha256, save_chip_recording
from emu.chip.job import prepare_chip_job
from emu.chip.manifest import generator
from emu.engine import Emulator
from emu.inputs import normalize_inputs
from emu.nir_import import from_nir, read_nir
from emu.settings import resolve
from emu.spike_dicts import ticks_by_neuron, voltages_by_neuron
from emu.spike_io import atomic_write, bin_events, read_input

OUT = Path(__file__).resolve().parents[1] / "emu" / "examples"
#: the semantics the chip-style recording is made under: the chip profile and the README's
#: conversion, except that weights are rounded to nearest (the chip profile truncates), so that
#: ``s2emu calibrate`` has something to find
BOARD = dict(weight_scale="auto", conn_delay=0, weight_rounding="nearest")
GESTURE_SEED = 26  # the shipped model was trained on seed 0, the demo tests on 2026
GESTURE_TICKS = 300


def conv_net(rng) -> None:
    shape = (4, 8, 8)
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2, 16, 16])}),
            "conv1": nir.Conv2d(input_shape=(16, 16), weight=rng.normal(0.3, 0.5, (4, 2, 3, 3)), stride=2, padding=1,
                                dilation=1, groups=1, bias=np.zeros(4)),
            "lif1": nir.LIF(tau=np.full(shape, 0.02), r=np.full(shape, 20.0), v_leak=np.zeros(shape),
                            v_threshold=np.full(shape, 1.0), v_reset=np.zeros(shape)),
            "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            "flat": nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0),
            "fc": nir.Linear(weight=rng.normal(-0.05, 0.4, (10, 64))),
            "lif2": nir.LIF(tau=np.full(10, 0.02), r=np.full(10, 20.0), v_leak=np.zeros(10),
                            v_threshold=np.full(10, 1.0), v_reset=np.zeros(10)),
            "output": nir.Output(output_type={"output": np.array([10])}),
        },
        edges=[("input", "conv1"), ("conv1", "lif1"), ("lif1", "pool"), ("pool", "flat"), ("flat", "fc"),
               ("fc", "lif2"), ("lif2", "output")],
        # the tick the parameters are written for: commands need no --dt
        metadata={"dt": 1e-3},
        type_check=False,
    )
    nir.write(str(OUT / "conv_net.nir"), graph)


def circle_events(rng) -> dict:
    """A blob circling the sensor for 200 ms: ON events ahead of it, OFF behind, plus noise."""
    ts = np.arange(0, 200_000, 250)
    angle = 2 * np.pi * ts / 100_000
    cx, cy = 8 + 5 * np.cos(angle), 8 + 5 * np.sin(angle)
    x = np.clip(np.round(cx + rng.normal(0, 1.2, ts.size)), 0, 15).astype(int)
    y = np.clip(np.round(cy + rng.normal(0, 1.2, ts.size)), 0, 15).astype(int)
    p = (rng.random(ts.size) < 0.5).astype(int)
    noise = rng.random(ts.size) < 0.1
    x[noise], y[noise] = rng.integers(0, 16, noise.sum()), rng.integers(0, 16, noise.sum())
    events = dict(x=x, y=y, p=p, t=ts)
    np.savez_compressed(OUT / "circle_events.npz", **events)
    return events


def spike_dict(events: dict) -> None:
    raster, _ = bin_events(events, (2, 16, 16), 1e-3)
    atomic_write(OUT / "spikes.json", json.dumps(ticks_by_neuron(raster.reshape(len(raster), -1)),
                                                 separators=(",", ":")))


def chip_recording() -> None:
    """The emulator's run of conv_net on spikes.json under :data:`BOARD`, saved as a chip run is
    (py-spinnaker2's host code, ``emu.chip.host``), with a manifest of what it was made from."""
    model, spikes = OUT / "conv_net.nir", OUT / "spikes.json"
    settings = resolve(BOARD, read_nir(model), preset="chip", source=str(model))
    network = from_nir(model, settings.conversion)
    rasters, ticks = normalize_inputs(network, read_input(spikes, network, dt=settings.conversion.dt)[0])
    job = prepare_chip_job(model, spikes, ticks, settings.conversion, reset=settings.profile.reset_mode,
                           record=("spikes", "v"), profile=settings.profile)
    run = Emulator(network, settings.profile)(rasters, ticks=ticks, record_v=True).sample(0)
    output = network.order()[-1]
    spikes_by_pop = {n: ticks_by_neuron(run.raster(n, 0)) for n in network.populations}
    voltages = {output: voltages_by_neuron(np.asarray(run.v[output][0], np.float64))}
    info = dict(backend="emulator, not a board (scripts/make_examples.py): chip profile, weight_rounding=nearest",
                population_sizes={n: int(p.size) for n, p in network.populations.items()},
                input_populations=list(network.inputs), record=["spikes", "v"], input_sample=0)
    manifest = build_manifest(model.name, job.model_sha256, job.input_file, job.input_sha256,
                              job.input_spikes_sha256, job.options, ticks, info, generator("make_examples"),
                              host_code_sha256())
    save_chip_recording(spikes_by_pop, voltages, manifest, OUT / "chip_recording.json", ticks)


def gestures() -> None:
    """One synthetic test gesture per class, read as ``s2emu demo`` reads its data (tonic's
    Denoise, Downsample 128 -> 32, ToFrame 1 ms; cut to 300 ticks, counts clipped to spikes)."""
    folder = OUT / "gestures"
    folder.mkdir(exist_ok=True)
    transform, window = event_transform(), FrameWindow(ticks=GESTURE_TICKS)
    labels = []
    for label in range(len(CLASSES)):
        events = generate_events(label, (GESTURE_SEED, label), SynthConfig(duration_ms=GESTURE_TICKS))
        frames = window(transform(events)) > 0
        np.savez_compressed(folder / f"{label:02d}.npz", frames.reshape(GESTURE_TICKS, -1))
        labels.append(label)
    np.save(OUT / "gesture_labels.npy", np.array(labels, np.int64))


def main():
    rng = np.random.default_rng(2026)
    conv_net(rng)
    spike_dict(circle_events(rng))
    chip_recording()
    gestures()


if __name__ == "__main__":
    main()
