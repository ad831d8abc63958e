"""A user's snnTorch model -> NIR: :func:`from_snntorch` (``s2emu export``).

The model is an ``nn.Sequential``, or any module whose forward is a chain of its
layers: ``Linear``, ``Conv2d``, ``AvgPool2d``, ``Flatten`` (``Dropout`` and
``Identity`` pass through), :class:`SumPool2d` and snnTorch's ``Leaky``,
``Synaptic``, ``RLeaky`` and ``RSynaptic``. :func:`trace_chain` runs the model once on
the example input with a hook on every layer and accepts it only when each layer takes
exactly what the one before gave (a forward over many time steps repeats the chain
per step); anything else, an operation between layers included, is an
:class:`ExportError` naming the module by its qualified name.

Mapping (the integrator is FORWARD, written in the graph's metadata), so that the
NIR equations stepped by ``a = 1 - dt/tau`` are snnTorch's ``mem = beta*mem + input``::

    Leaky / RLeaky        LIF      tau = dt/(1-beta), r = tau/dt (r*dt/tau = 1), v_threshold = threshold
    beta = 1 everywhere   IF       r = 1
    Synaptic / RSynaptic  CubaLIF  tau_syn = dt/(1-alpha), tau_mem = dt/(1-beta), w_in = tau_syn/dt,
                                   r = tau_mem/dt
    RLeaky's recurrent    a weight node on the edge neuron -> neuron (Affine/Linear, Conv2d; V of
                          one_to_one as a diagonal Linear, or a 1x1 Conv2d when V is per channel)
    AvgPool2d             SumPool2d, its divisor folded into the nearest weight node of the same
                          path (the weights after it, else the weights and bias before it)
    graded spikes         the factor folded into the weights the spikes feed

Beta and alpha are clamped to [0, 1] as snnTorch does, per neuron or scalar; every
decay's float32 value is checked to come back exactly (``float32(1 - dt/tau) ==
beta``), the precision snnTorch and the float reference keep decays in. Every neuron
node carries ``metadata={"reset", "reset_delay", "dt"}``, the graph ``{"dt",
"integrator": "forward", "reset"}``. :func:`from_snntorch` demands one reset mechanism
and one ``reset_delay`` for the whole net (the emulator and the float reference run
one); :func:`to_graph` alone also writes mixed ones (the gesture exporter's).

Refused: any other module (``nn.ReLU``, ``Lapicque``, ...), ``reset_mechanism="none"``
(NIR neurons always reset), ``inhibition``, ``state_quant``, a ``spike_grad`` whose
forward is not the Heaviside step, RLeaky's zero reset (it drops the input of the step
after a spike; Leaky's keeps it), ``RSynaptic(reset_delay=False)`` (snnTorch 1.0
crashes on it), layers after the last spiking layer, a flattened batch axis.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import nir
import numpy as np
import torch
from torch import nn

from emu.export.chain import NEURONS, PASS_THROUGH, RECURRENT, ExportError, Layer, SumPool2d, kind_of, trace_chain
from emu.export.nodes import fold_scales, layer_node, neuron_node, recurrent_node

__all__ = ["ExportError", "Layer", "SumPool2d", "from_snntorch", "neuron_node", "to_graph", "trace_chain",
           "write_nir"]


def from_snntorch(module: nn.Module, example_input: torch.Tensor, *, dt: float) -> nir.NIRGraph:
    """The NIR graph of ``module`` (module doc). ``example_input``: what ``module(example_input)``
    takes, batch axis first (for an ``nn.Sequential``: one time step); ``dt``: the tick in
    seconds. Node names are the modules' qualified names."""
    layers = trace_chain(module, example_input)
    neurons = [lay for lay in layers if isinstance(lay.module, NEURONS)]
    for what in ("reset_mechanism", "reset_delay"):
        first = neurons[0] if neurons else None
        for lay in neurons[1:]:
            if getattr(lay.module, what) != getattr(first.module, what):
                raise ExportError(f"module {lay.name!r}: {what}={getattr(lay.module, what)!r} but {first.name!r} has "
                                  f"{getattr(first.module, what)!r}; the emulator and the float reference run one "
                                  f"{what} per net")
    return to_graph(layers, dt)


def to_graph(layers: Sequence[Layer], dt: float) -> nir.NIRGraph:
    """The NIR graph of a traced chain (module doc); resets may differ between layers."""
    try:
        seconds = float(dt)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0) or isinstance(dt, bool):
        raise ExportError(f"dt must be a finite number of seconds > 0, got {dt!r}")
    dt = seconds
    neurons = [i for i, lay in enumerate(layers) if isinstance(lay.module, NEURONS)]
    if not neurons:
        raise ExportError("the model has no spiking layer (snntorch Leaky, Synaptic, RLeaky, RSynaptic)")
    after = [lay for lay in layers[neurons[-1] + 1:] if not isinstance(lay.module, PASS_THROUGH)]
    if after:
        raise ExportError(f"module {after[0].name!r} ({kind_of(after[0].module).__name__}): comes after the last "
                          f"spiking layer; a NIR graph for the chip ends in a spiking layer")
    taken = {lay.name for lay in layers}
    io = {end: next(n for n in [end] + [f"{end}_{i}" for i in range(len(layers) + 1)] if n not in taken)
          for end in ("input", "output")}
    nodes: Dict[str, nir.NIRNode] = {io["input"]: nir.Input(input_type=np.array(layers[0].in_shape))}
    edges: List[Tuple[str, str]] = []
    chain: List[Tuple[Layer, nir.NIRNode]] = []
    previous = io["input"]
    for lay in layers:
        node = layer_node(lay, dt)
        if node is None:
            continue
        nodes[lay.name] = node
        edges.append((previous, lay.name))
        chain.append((lay, node))
        if isinstance(lay.module, RECURRENT):
            rec = f"{lay.name}.recurrent"
            nodes[rec] = recurrent_node(lay)
            edges += [(lay.name, rec), (rec, lay.name)]
        previous = lay.name
    nodes[io["output"]] = nir.Output(output_type=np.array(layers[-1].out_shape))
    edges.append((previous, io["output"]))
    fold_scales(chain, nodes)
    resets = {n.metadata["reset"] for n in nodes.values() if isinstance(n, (nir.LIF, nir.IF, nir.CubaLIF))}
    meta = {"dt": dt, "integrator": "forward"}
    if len(resets) == 1:
        meta["reset"] = resets.pop()
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def write_nir(graph: nir.NIRGraph, path: Union[str, os.PathLike]) -> None:
    """``nir.write`` through a temporary file in the same folder: an interrupted write leaves no half file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        nir.write(str(tmp), graph)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
