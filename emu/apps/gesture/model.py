"""The DVS-gesture network of the SpiNNaker2 paper in snnTorch (docs/semantics.md).

Input 2 x 32 x 32 spike frames; Conv 2->16 k5 s2 p1, LIF; Conv 16->16 k3 p1, LIF,
SumPool 2; Conv 16->8 k3 p1, LIF, SumPool 2; Flatten (72); Linear 72->256, LIF;
Linear 256->11, LIF. No bias anywhere. LIF = ``snntorch.Leaky`` with beta 0.93,
threshold 1, subtract reset, fast-sigmoid surrogate gradient.

:class:`SpikingSequential` runs any such feed-forward stack of torch layers and
``snn.Leaky`` neurons over time; the NIR importer (:mod:`emu.apps.gesture.export`) builds
one back from a graph, with the same layer names, so state dicts compare directly.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Tuple

import snntorch as snn
import torch
from snntorch import surrogate
from torch import nn

from emu.export import SumPool2d
from validate.metrics import predicted_classes

BETA = 0.93
THRESHOLD = 1.0
INPUT_SHAPE = (2, 32, 32)
N_CLASSES = 11


def leaky(beta: float = BETA, threshold: float = THRESHOLD, reset_mechanism: str = "subtract",
          reset_delay: bool = True) -> snn.Leaky:
    """The paper's neuron: ``snn.Leaky`` with a fast-sigmoid surrogate (slope 25)."""
    return snn.Leaky(beta=beta, threshold=threshold, reset_mechanism=reset_mechanism,
                     reset_delay=reset_delay, spike_grad=surrogate.fast_sigmoid())


class SpikingSequential(nn.Module):
    """Feed-forward layers run step by step over time.

    ``layers`` is an ordered mapping of names to torch layers and ``snn.Leaky``
    neurons; ``input_shape`` is one time step of one sample, e.g. (2, 32, 32).
    """

    def __init__(self, layers: "OrderedDict[str, nn.Module]", input_shape: Tuple[int, ...]):
        super().__init__()
        self.layers = nn.Sequential(layers)
        self.input_shape = tuple(int(n) for n in input_shape)

    def forward(self, x: torch.Tensor, record: bool = False):
        """Run ``x`` of shape (T, B, *input_shape) through time.

        Returns the last layer's spikes (T, B, n_out); with ``record=True`` also a dict
        ``{neuron layer name: {"spk": (T, B, ...), "mem": (T, B, ...)}}``. The
        membrane is snnTorch's: with ``reset_delay=True`` a step's subtract reset is
        applied at the next step, so a spiking step records the pre-reset value.
        """
        neurons = [m for m in self.layers if isinstance(m, snn.Leaky)]
        for neuron in neurons:
            neuron.reset_mem()
        trace: Dict[str, Dict[str, list]] = {name: {"spk": [], "mem": []}
                                             for name, m in self.layers.named_children()
                                             if isinstance(m, snn.Leaky)}
        out = []
        for step in x:
            h = step
            for name, layer in self.layers.named_children():
                if isinstance(layer, snn.Leaky):
                    h, mem = layer(h)
                    if record:
                        trace[name]["spk"].append(h)
                        trace[name]["mem"].append(mem)
                else:
                    h = layer(h)
            out.append(h)
        spikes = torch.stack(out)
        if not record:
            return spikes
        return spikes, {name: {k: torch.stack(v) for k, v in d.items()} for name, d in trace.items()}


def gesture_net(beta: float = BETA, threshold: float = THRESHOLD, init_gain: float = 3.0) -> SpikingSequential:
    """The paper's DVS-gesture network, no bias, randomly initialised.

    Weights are PyTorch's default initialisation times ``init_gain``. With the
    default init (gain 1) sparse 1 ms spike frames leave every layer after the
    first silent, so the surrogate gradients of the later layers start near zero
    and training on them barely moves; gain 3 gives every layer some activity.
    """
    net = SpikingSequential(OrderedDict([
        ("conv1", nn.Conv2d(2, 16, 5, stride=2, padding=1, bias=False)),
        ("lif1", leaky(beta, threshold)),
        ("conv2", nn.Conv2d(16, 16, 3, padding=1, bias=False)),
        ("lif2", leaky(beta, threshold)),
        ("pool2", SumPool2d(2)),
        ("conv3", nn.Conv2d(16, 8, 3, padding=1, bias=False)),
        ("lif3", leaky(beta, threshold)),
        ("pool3", SumPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(72, 256, bias=False)),
        ("lif4", leaky(beta, threshold)),
        ("fc2", nn.Linear(256, N_CLASSES, bias=False)),
        ("lif5", leaky(beta, threshold)),
    ]), INPUT_SHAPE)
    with torch.no_grad():
        for weight in net.parameters():
            weight.mul_(init_gain)
    return net


def predict(spikes: torch.Tensor) -> torch.Tensor:
    """Class per sample from output spikes (T, B, n_out), by :func:`validate.metrics.predicted_classes`."""
    return torch.as_tensor(predicted_classes(spikes.detach(), tick_axis=0))
