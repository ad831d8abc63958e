"""Hypothesis strategies for users' property tests: spike rasters, event streams and random
chip-convertible NIR graphs.

    from hypothesis import given
    from emu.testing.strategies import nir_graphs, spike_rasters

    @given(nir_graphs(), spike_rasters(12, 50))
    def test_something(graph, raster): ...

:func:`nir_graphs` draws only graphs the chip converter accepts (``emu.nir_import.from_nir``
with ``conn_delay=0``): dense chains of LIF / IF / CubaLIF layers, conv + sum-pool
stacks into a dense head, recurrent CubaLIF layers (a Linear from the layer to itself),
with or without biases. Their graph metadata carries ``dt``. Weights are multiples of
1/8, so sums of a few hundred of them are exact in float32 and float64 alike.
Needs hypothesis (``pip install "spinnaker2-emu[testing]"``).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import nir
import numpy as np
from hypothesis import strategies as st

DT = 1e-3


@st.composite
def spike_rasters(draw, n_neurons: int, ticks: int, density: Tuple[float, float] = (0.05, 0.2),
                  batch: Optional[int] = None):
    """A (ticks, n_neurons) 0/1 bool raster ((batch, ticks, n_neurons) with ``batch``), each
    cell on with a probability drawn from ``density``."""
    seed = draw(st.integers(0, 2**32 - 1))
    rate = draw(st.floats(*density))
    shape = (ticks, n_neurons) if batch is None else (batch, ticks, n_neurons)
    return np.random.default_rng(seed).random(shape) < rate


@st.composite
def event_streams(draw, sensor_size: Tuple[int, int, int] = (32, 32, 2), duration_us: int = 100_000,
                  max_events: int = 2000):
    """Events as tonic has them: a structured array with fields x, y, p, t (t in microseconds,
    sorted, within ``duration_us``), on a sensor of (width, height, polarities)."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(0, max_events))
    rng = np.random.default_rng(seed)
    w, h, p = sensor_size
    ev = np.zeros(n, dtype=[("x", "<i8"), ("y", "<i8"), ("p", "<i8"), ("t", "<i8")])
    ev["x"], ev["y"], ev["p"] = rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, p, n)
    ev["t"] = np.sort(rng.integers(0, duration_us, n))
    return ev


def _dyadic(rng, shape, scale: float) -> np.ndarray:
    return np.round(rng.normal(0.0, scale, size=shape) * 8) / 8


def _neuron(draw, rng, kind: str, shape: Sequence[int], dt: float):
    """A LIF / IF / CubaLIF node of ``shape`` with thresholds of order 1."""
    n = int(np.prod(shape))
    full = lambda x: np.full(tuple(shape), float(x)) if np.ndim(x) == 0 else np.asarray(x).reshape(shape)  # noqa
    tau = draw(st.sampled_from((2e-3, 5e-3, 10e-3)))
    vth = full(draw(st.sampled_from((0.5, 1.0, 2.0))))
    if kind == "if":
        return nir.IF(r=full(1.0), v_threshold=vth, v_reset=full(0.0))
    if kind == "cuba":
        tau_syn = draw(st.sampled_from((2e-3, 5e-3)))
        return nir.CubaLIF(tau_mem=full(tau), tau_syn=full(tau_syn), r=full(tau / dt), v_leak=full(0.0),
                           v_threshold=vth, v_reset=full(0.0), w_in=full(tau_syn / dt))
    leak = full(rng.uniform(0.0, 0.5, n).round(2)) if draw(st.booleans()) else full(0.0)
    return nir.LIF(tau=full(tau), r=full(tau / dt), v_leak=leak, v_threshold=vth, v_reset=full(0.0))


@st.composite
def nir_graphs(draw, dense: bool = True, conv: bool = True, recurrent: bool = True, bias: Optional[bool] = None,
               max_layers: int = 3, dt: float = DT):
    """A random NIR graph the chip converter accepts (module doc). ``dense`` / ``conv`` /
    ``recurrent``: which shapes may be drawn; ``bias``: always, never, or either (None)."""
    shapes = [s for s, ok in (("dense", dense), ("conv", conv)) if ok]
    if not shapes:
        raise ValueError("nir_graphs: allow dense or conv graphs")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    biased = draw(st.booleans()) if bias is None else bias
    nodes, edges = {}, []
    prev, shape = "input", None
    if draw(st.sampled_from(shapes)) == "conv":
        shape = (draw(st.integers(1, 2)), draw(st.integers(6, 10)), draw(st.integers(6, 10)))
        nodes["input"] = nir.Input(input_type=np.array(shape))
        for i in range(draw(st.integers(1, 2))):
            if min(shape[1:]) >= 4 and draw(st.booleans()):  # sum pooling before the next weights
                nodes[f"pool{i}"] = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                                  padding=np.array([0, 0]))
                edges.append((prev, f"pool{i}"))
                prev, shape = f"pool{i}", (shape[0], shape[1] // 2, shape[2] // 2)
            k, c_out = draw(st.integers(1, min(3, *shape[1:]))), draw(st.integers(1, 4))
            stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, k - 1))
            w = _dyadic(rng, (c_out, shape[0], k, k), 0.8)
            b = _dyadic(rng, (c_out,), 0.2) if biased else np.zeros(c_out)
            nodes[f"conv{i}"] = nir.Conv2d(input_shape=shape[1:], weight=w, stride=stride, padding=pad, dilation=1,
                                           groups=1, bias=b)
            shape = (c_out, (shape[1] + 2 * pad - k) // stride + 1, (shape[2] + 2 * pad - k) // stride + 1)
            edges.append((prev, f"conv{i}"))
            nodes[f"lif{i}"] = _neuron(draw, rng, draw(st.sampled_from(("lif", "if"))), shape, dt)
            edges.append((f"conv{i}", f"lif{i}"))
            prev = f"lif{i}"
        nodes["flat"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
        edges.append((prev, "flat"))
        prev, n_prev = "flat", int(np.prod(shape))
    else:
        n_prev = draw(st.integers(2, 16))
        nodes["input"] = nir.Input(input_type=np.array([n_prev]))
    for i in range(draw(st.integers(1, max_layers))):
        n = draw(st.integers(1, 12))
        w = _dyadic(rng, (n, n_prev), 1.0)
        nodes[f"fc{i}"] = (nir.Affine(weight=w, bias=_dyadic(rng, (n,), 0.2)) if biased
                           else nir.Linear(weight=w))
        edges.append((prev, f"fc{i}"))
        kind = draw(st.sampled_from(("lif", "if", "cuba")))
        nodes[f"n{i}"] = _neuron(draw, rng, kind, (n,), dt)
        edges.append((f"fc{i}", f"n{i}"))
        if recurrent and kind == "cuba" and draw(st.booleans()):
            nodes[f"rec{i}"] = nir.Linear(weight=_dyadic(rng, (n, n), 0.5))
            edges += [(f"n{i}", f"rec{i}"), (f"rec{i}", f"n{i}")]
        prev, n_prev = f"n{i}", n
    nodes["output"] = nir.Output(output_type=np.array([n_prev]))
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt}, type_check=False)
