"""The layers of a user's model in the order its forward chains them (:func:`trace_chain`).

The model runs once on the example input with a forward hook on every layer (a snnTorch
neuron, a torch.nn layer or a leaf module; what a neuron holds inside, RLeaky's recurrent
Linear, belongs to it). It is a chain when each layer takes exactly the tensor the one
before gave (the first: the example input or a slice of it) and every time step calls
the same layers in the same order; anything else is an :class:`ExportError` naming the
module by its qualified name.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Tuple

import snntorch as snn
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from emu.errors import UserError

NEURONS = (snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic)
RECURRENT = (snn.RLeaky, snn.RSynaptic)


class ExportError(UserError):
    """A model that cannot become NIR; the message names the module (its qualified name) and why."""


class SumPool2d(nn.Module):
    """Sum pooling with kernel == stride, no padding: ``avg_pool2d * k * k``.

    Exactly the float sum when ``k * k`` is a power of two (the paper's k = 2): the
    division and the multiplication by 4 are then exact in binary floating point.
    """

    def __init__(self, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.kernel_size) * (self.kernel_size * self.kernel_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


WEIGHTS = (nn.Linear, nn.Conv2d)
POOLS = (nn.AvgPool2d, SumPool2d)
PASS_THROUGH = (nn.Dropout, nn.Identity)
CONVERTIBLE = NEURONS + WEIGHTS + POOLS + (nn.Flatten,) + PASS_THROUGH
_NAMES = "Linear, Conv2d, AvgPool2d, Flatten, Dropout, Identity, snntorch Leaky, Synaptic, RLeaky, RSynaptic"


@dataclass(frozen=True)
class Layer:
    """One module of the chain and the shapes of one sample it takes and gives (no batch axis)."""

    name: str
    module: nn.Module
    in_shape: Tuple[int, ...]
    out_shape: Tuple[int, ...]


@dataclass
class _Call:
    name: str
    module: nn.Module
    x: object
    y: object


def kind_of(module: nn.Module) -> type:
    """The module's class, before torch's parametrizations (e.g. fake quantization) wrap it."""
    return parametrize.type_before_parametrizations(module)


def _units(root: nn.Module) -> Dict[nn.Module, str]:
    """The modules the chain is made of: snnTorch neurons, torch.nn layers and leaves (not
    containers); what they hold inside (RLeaky's recurrent Linear) belongs to them."""
    units: Dict[nn.Module, str] = {}

    def visit(module: nn.Module, name: str):
        kind = kind_of(module)
        container = isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict))
        if isinstance(module, snn.SpikingNeuron) or not any(True for _ in module.children()) or (
                kind.__module__.startswith("torch.nn.") and not container):
            units.setdefault(module, name or kind.__name__)
            return
        for child_name, child in module.named_children():
            visit(child, f"{name}.{child_name}" if name else child_name)

    visit(root, "")
    return units


def _step_sequential(seq: nn.Sequential, x):
    """One step through a Sequential: each layer takes the spikes (first output) of the one before."""
    for layer in seq:
        x = _step_sequential(layer, x) if type(layer) is nn.Sequential else layer(x)
        x = x[0] if isinstance(x, tuple) else x
    return x


def trace_chain(module: nn.Module, example_input: torch.Tensor) -> List[Layer]:
    """The layers of ``module`` in the order its forward chains them (module doc); ``example_input``:
    what ``module(example_input)`` takes (an ``nn.Sequential`` is stepped once, each layer taking the
    spikes of the one before)."""
    if not isinstance(module, nn.Module):
        raise ExportError(f"the model must be a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(example_input, torch.Tensor):
        raise ExportError(f"the example input must be a torch.Tensor, got {type(example_input).__name__}")
    units = _units(module)
    calls: List[_Call] = []

    def hook(mod, args, kwargs, output):
        x = args[0] if args else next(iter(kwargs.values()), None)
        calls.append(_Call(units[mod], mod, x, output[0] if isinstance(output, tuple) else output))

    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in units]
    hidden = [(m, dict(m.named_buffers(recurse=False))) for m in module.modules() if isinstance(m, snn.SpikingNeuron)]
    try:
        with torch.no_grad():
            _step_sequential(module, example_input) if type(module) is nn.Sequential else module(example_input)
    except ExportError:
        raise
    except Exception as exc:  # the user's forward: name what failed, in one line
        bad = next((c for c in calls if kind_of(c.module) not in CONVERTIBLE), None)
        if bad is not None:
            raise ExportError(_unsupported(bad.name, bad.module)) from None
        raise ExportError(f"running the model on the example input {tuple(example_input.shape)} failed: "
                          f"{type(exc).__name__}: {' '.join(str(exc).split())}") from None
    finally:
        for h in handles:
            h.remove()
        for m, buffers in hidden:  # the run must not leave its hidden states behind
            for name, value in buffers.items():
                setattr(m, name, value)
    return _chain(calls, example_input)


def _unsupported(name: str, module: nn.Module) -> str:
    activation = module.__class__.__module__.startswith("torch.nn.modules.activation")
    hint = " (a non-spiking activation)" if activation else ""
    return f"module {name!r} ({kind_of(module).__name__}): cannot be converted to NIR{hint}; convertible: {_NAMES}"


def _chain(calls: List[_Call], example_input: torch.Tensor) -> List[Layer]:
    if not calls:
        raise ExportError("the model's forward called none of its layers")
    for c in calls:
        if kind_of(c.module) not in CONVERTIBLE:
            raise ExportError(_unsupported(c.name, c.module))
    names = [c.name for c in calls]
    counts = Counter(names)
    if len(set(counts.values())) > 1:
        most = max(counts, key=counts.get)
        raise ExportError(f"module {most!r}: the forward is not a chain of layers (it calls {most!r} {counts[most]} "
                          f"times, {min(counts, key=counts.get)!r} {min(counts.values())})")
    period = len(counts)
    if names != names[:period] * (len(names) // period):
        culprit = next(n for n, m in zip(names, names[:period] * len(names)) if n != m)
        raise ExportError(f"module {culprit!r}: the forward is not a chain of layers (the steps call the layers in "
                          f"different orders)")
    batch = None
    for i, c in enumerate(calls):
        if not isinstance(c.x, torch.Tensor) or not isinstance(c.y, torch.Tensor) or c.x.dim() < 2:
            raise ExportError(f"module {c.name!r}: takes {_describe(c.x)}; the chain's layers take tensors with a "
                              f"batch axis first")
        if i % period == 0:
            if c.x.untyped_storage().data_ptr() != example_input.untyped_storage().data_ptr():
                raise ExportError(f"module {c.name!r}: its input is not the example input or a slice of it (the "
                                  f"forward computes it, e.g. an encoding): give what the first layer takes as the "
                                  f"example input")
        elif c.x is not calls[i - 1].y:
            raise ExportError(f"module {c.name!r}: its input is not the output of {calls[i - 1].name!r} (the forward "
                              f"computes something between them, e.g. a reshape, a sum or torch.relu); only a chain "
                              f"of layers converts (nn.Flatten for a reshape)")
        batch = c.x.shape[0] if batch is None else batch
        if c.x.shape[0] != batch or c.y.dim() < 2 or c.y.shape[0] != batch:
            raise ExportError(f"module {c.name!r}: changes the batch axis ({tuple(c.x.shape)} -> {tuple(c.y.shape)}); "
                              f"the layers must keep the batch axis first")
    return [Layer(c.name, c.module, tuple(c.x.shape[1:]), tuple(c.y.shape[1:])) for c in calls[:period]]


def _describe(x) -> str:
    return f"a tensor of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
