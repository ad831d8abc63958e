"""Regenerate the bundled example (emu/examples/): a small DVS-style conv net and an event stream.

    python scripts/make_example.py

Deterministic (seeded). The files are small enough to ship with the package.
"""
from pathlib import Path

import nir
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "emu" / "examples"


def main():
    rng = np.random.default_rng(2026)
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
    # a blob circling the sensor for 200 ms: ON events ahead of it, OFF behind, plus noise
    ts = np.arange(0, 200_000, 250)
    angle = 2 * np.pi * ts / 100_000
    cx, cy = 8 + 5 * np.cos(angle), 8 + 5 * np.sin(angle)
    x = np.clip(np.round(cx + rng.normal(0, 1.2, ts.size)), 0, 15).astype(int)
    y = np.clip(np.round(cy + rng.normal(0, 1.2, ts.size)), 0, 15).astype(int)
    p = (rng.random(ts.size) < 0.5).astype(int)
    noise = rng.random(ts.size) < 0.1
    x[noise], y[noise] = rng.integers(0, 16, noise.sum()), rng.integers(0, 16, noise.sum())
    np.savez_compressed(OUT / "circle_events.npz", x=x, y=y, p=p, t=ts)


if __name__ == "__main__":
    main()
