"""snnTorch <-> NIR for the DVS-gesture conv nets (:class:`~emu.apps.gesture.model.SpikingSequential`).

Parameter mapping (``snn.Leaky`` -> ``nir.LIF``, :func:`emu.export.neuron_node`), chosen for the SpiNNaker2
converter's FORWARD integrator (docs/semantics.md, converter rules: ``alpha = 1 - dt/tau``,
``r_factor = r*dt/tau``, ``threshold = v_threshold / r_factor``, weights not
multiplied by ``dt/tau``)::

    tau = dt / (1 - beta)     ->  alpha = 1 - dt/tau = beta
    r   = tau / dt            ->  r_factor = r*dt/tau = 1
    v_threshold = threshold   ->  chip threshold = snnTorch threshold
    v_leak = 0, v_reset = 0   (NIR requires v_reset; the reset mode is in metadata)

Every LIF node carries ``metadata={"reset": "subtract" | "zero", "reset_delay":
bool, "dt": dt}`` (``reset_delay`` is snnTorch's: a spike's reset lands one step
later) and its parameters are per neuron, shaped like the layer (C, H, W) or (N,).
The graph's metadata holds ``dt``, ``integrator = "forward"`` (the one under which
``tau = dt / (1 - beta)`` gives ``alpha = beta``) and the reset when all layers share it. Weights keep their float32 values; a
bias-free layer gets NIR's mandatory Conv2d bias as zeros (and plain ``Linear``),
and the importer turns an all-zero bias back into no bias. Sum pooling is
``nir.SumPool2d`` (kernel == stride, no padding), flatten is ``nir.Flatten`` over
all non-batch dimensions.

We write our own exporter because snnTorch's ``export_to_nir`` does not export this network
(``docs/peers.md``).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Tuple

import nir
import numpy as np
import snntorch as snn
import torch
from torch import nn

from emu.export import SumPool2d, to_graph, trace_chain

from .model import SpikingSequential, leaky

DEFAULT_DT = 1e-3  # the chip's hardware tick and the paper's 1 ms frame bins


def to_nir(model: SpikingSequential, dt: float = DEFAULT_DT) -> nir.NIRGraph:
    """Export a :class:`SpikingSequential` of Conv2d / Linear / SumPool2d / Flatten /
    ``snn.Leaky`` layers to a ``nir.NIRGraph`` (nodes named like the layers): the
    project's exporter of any snnTorch chain (:mod:`emu.export`), resets per layer."""
    return to_graph(trace_chain(model.layers, torch.zeros(1, *model.input_shape)), dt)


def chain(graph: nir.NIRGraph) -> List[str]:
    """Node names of a feed-forward chain graph from its Input to its Output node."""
    successors: Dict[str, List[str]] = {name: [] for name in graph.nodes}
    for src, dst in graph.edges:
        successors[src].append(dst)
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise ValueError(f"expected one Input node, found {inputs}")
    order = inputs
    while not isinstance(graph.nodes[order[-1]], nir.Output):
        nxt = successors[order[-1]]
        if len(nxt) != 1 or nxt[0] in order:
            raise ValueError(f"not a feed-forward chain at node {order[-1]!r}: successors {nxt}")
        order.append(nxt[0])
    if len(order) != len(graph.nodes):
        raise ValueError(f"nodes off the Input-Output chain: {sorted(set(graph.nodes) - set(order))}")
    return order


def _uniform(values: np.ndarray):
    """A Python float when all values are equal (snnTorch's scalar parameters), else a tensor."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.flat[0]) if np.all(values == values.flat[0]) else torch.tensor(values, dtype=torch.float32)


def _leaky_from_lif(name: str, node: nir.LIF, graph_dt) -> snn.Leaky:
    dt = node.metadata.get("dt", graph_dt)
    if dt is None:
        raise ValueError(f"LIF {name!r}: no dt in its or the graph's metadata")
    dt = float(dt)
    if np.any(node.v_leak != 0):
        raise ValueError(f"LIF {name!r}: v_leak != 0 has no snn.Leaky equivalent")
    if not np.allclose(node.r * dt / node.tau, 1.0, rtol=1e-9, atol=0):
        raise ValueError(f"LIF {name!r}: r * dt / tau must be 1 (the input is not scaled), "
                         f"got {np.unique(node.r * dt / node.tau)}")
    reset = str(node.metadata.get("reset", "subtract"))
    return leaky(beta=_uniform(1.0 - dt / node.tau), threshold=_uniform(node.v_threshold),
                 reset_mechanism=reset, reset_delay=bool(node.metadata.get("reset_delay", True)))


def _ints(values) -> Tuple[int, ...]:
    return tuple(int(v) for v in np.atleast_1d(values))


def from_nir(graph: nir.NIRGraph) -> SpikingSequential:
    """Import a chain graph of Conv2d / Linear / Affine / SumPool2d / Flatten / LIF nodes
    (as :func:`to_nir` writes them) back into a :class:`SpikingSequential`.

    LIF nodes need ``r * dt / tau == 1`` and ``v_leak == 0``; ``dt`` comes from the
    node's metadata, else the graph's. A missing ``reset`` means subtract (the chip
    converter's default), a missing ``reset_delay`` means True (snnTorch's).
    """
    order = chain(graph)
    graph_dt = graph.metadata.get("dt")
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    for name in order[1:-1]:
        node = graph.nodes[name]
        if isinstance(node, nir.Conv2d):
            if isinstance(node.padding, str):
                raise ValueError(f"Conv2d {name!r}: padding {node.padding!r} is not supported")
            out_ch, in_per_group = node.weight.shape[:2]
            has_bias = bool(np.any(node.bias != 0))
            layer = nn.Conv2d(in_per_group * int(node.groups), out_ch, node.weight.shape[2:],
                              stride=_ints(node.stride), padding=_ints(node.padding),
                              dilation=_ints(node.dilation), groups=int(node.groups), bias=has_bias)
        elif isinstance(node, (nir.Linear, nir.Affine)):
            has_bias = isinstance(node, nir.Affine) and bool(np.any(node.bias != 0))
            layer = nn.Linear(node.weight.shape[1], node.weight.shape[0], bias=has_bias)
        elif isinstance(node, nir.SumPool2d):
            kernel, stride = _ints(node.kernel_size), _ints(node.stride)
            if len(set(kernel)) != 1 or kernel != stride or any(_ints(node.padding)):
                raise ValueError(f"SumPool2d {name!r}: needs a square kernel == stride and no padding")
            layer = SumPool2d(kernel[0])
        elif isinstance(node, nir.Flatten):
            start, end = int(node.start_dim), int(node.end_dim)
            layer = nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)
        elif isinstance(node, nir.LIF):
            layer = _leaky_from_lif(name, node, graph_dt)
        else:
            raise TypeError(f"node {name!r}: {type(node).__name__} is not supported by the importer")
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            with torch.no_grad():
                layer.weight.copy_(torch.as_tensor(np.asarray(node.weight, dtype=np.float32)))
                if has_bias:
                    layer.bias.copy_(torch.as_tensor(np.asarray(node.bias, dtype=np.float32)))
        layers[name] = layer
    input_shape = _ints(graph.nodes[order[0]].input_type["input"])
    return SpikingSequential(layers, input_shape)
