"""The NIR node of each layer of a chain, and the factors folded into weight nodes
(:mod:`emu.export` doc: the mapping)."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import nir
import numpy as np
import snntorch as snn
import torch
from torch import nn

from emu.export.chain import NEURONS, POOLS, RECURRENT, ExportError, Layer, SumPool2d, kind_of


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _per_neuron(name: str, what: str, value, shape: Tuple[int, ...]) -> np.ndarray:
    value = _array(torch.as_tensor(value)).astype(np.float64)
    try:
        return np.broadcast_to(value, shape).copy()
    except ValueError:
        raise ExportError(f"module {name!r}: {what} has shape {value.shape}, which does not fit the layer's "
                          f"shape {shape}") from None


def _tau(name: str, what: str, decay: np.ndarray, dt: float) -> np.ndarray:
    """tau with ``1 - dt/tau == decay`` (FORWARD), checked to give ``decay`` back in float32."""
    tau = dt / (1.0 - decay)
    if not np.array_equal((1.0 - dt / tau).astype(np.float32), decay.astype(np.float32)):
        worst = decay.reshape(-1)[np.argmax((1.0 - dt / tau).astype(np.float32).reshape(-1)
                                            != decay.astype(np.float32).reshape(-1))]
        raise ExportError(f"module {name!r}: {what} = {worst:.8g} does not survive tau = dt / (1 - {what}) at "
                          f"float32 precision (use 0 or a larger value)")
    return tau


def _check_neuron(name: str, m: nn.Module) -> None:
    why = None
    if m.reset_mechanism not in ("subtract", "zero"):
        why = f"reset_mechanism={m.reset_mechanism!r}: NIR neurons always reset (use 'subtract' or 'zero')"
    elif m.inhibition:
        why = "inhibition=True has no NIR equivalent"
    elif m.state_quant:
        why = "state_quant has no NIR equivalent"
    elif isinstance(m, snn.RLeaky) and m.reset_mechanism == "zero":
        why = ("RLeaky's zero reset drops the input of the step after a spike (Leaky's keeps it): no NIR LIF does "
               "that; use reset_mechanism='subtract'")
    elif isinstance(m, snn.RSynaptic) and not m.reset_delay:
        why = ("RSynaptic(reset_delay=False) crashes in snnTorch 1.0 (it resets from an unset state); "
               "use reset_delay=True")
    elif torch.as_tensor(m.graded_spikes_factor).numel() != 1:
        why = "a per-neuron graded_spikes_factor has no NIR equivalent"
    else:
        probe = torch.tensor([-1.0, -1e-30, 0.0, 1e-30, 1.0])
        try:
            fires = m.spike_grad(probe)
        except Exception as exc:  # a user's surrogate
            fires = exc
        if not (isinstance(fires, torch.Tensor) and torch.equal(fires.float(), (probe > 0).float())):
            why = "its spike_grad does not fire as the Heaviside step (mem > threshold)"
    if why:
        raise ExportError(f"module {name!r} ({type(m).__name__}): {why}")


def neuron_node(name: str, m: nn.Module, shape: Tuple[int, ...], dt: float) -> nir.NIRNode:
    """The NIR neuron of a snnTorch Leaky / RLeaky (LIF, IF when beta = 1) or Synaptic / RSynaptic (CubaLIF)."""
    _check_neuron(name, m)
    beta = _per_neuron(name, "beta", m.beta.clamp(0, 1), shape)
    threshold = _per_neuron(name, "threshold", m.threshold, shape)
    zeros = np.zeros(shape)
    meta = {"reset": m.reset_mechanism, "reset_delay": bool(m.reset_delay), "dt": float(dt)}
    if isinstance(m, (snn.Synaptic, snn.RSynaptic)):
        alpha = _per_neuron(name, "alpha", m.alpha.clamp(0, 1), shape)
        for what, decay in (("alpha", alpha), ("beta", beta)):
            if np.any(decay >= 1):
                raise ExportError(f"module {name!r}: {what} = 1 (no decay) has no NIR CubaLIF (tau would be infinite)")
        tau_syn, tau_mem = _tau(name, "alpha", alpha, dt), _tau(name, "beta", beta, dt)
        return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=zeros, v_threshold=threshold,
                           v_reset=zeros.copy(), w_in=tau_syn / dt, metadata=meta)
    if np.all(beta == 1):
        return nir.IF(r=np.ones(shape), v_threshold=threshold, v_reset=zeros, metadata=meta)
    if np.any(beta == 1):
        raise ExportError(f"module {name!r}: beta = 1 for some neurons but not all: one NIR node is an IF or a LIF")
    tau = _tau(name, "beta", beta, dt)
    return nir.LIF(tau=tau, r=tau / dt, v_leak=zeros, v_threshold=threshold, v_reset=zeros.copy(), metadata=meta)


def _conv_padding(name: str, conv: nn.Conv2d):
    if conv.padding_mode != "zeros":
        raise ExportError(f"module {name!r}: padding_mode={conv.padding_mode!r}; NIR pads with zeros")
    if conv.padding == "valid":
        return (0, 0)
    if conv.padding == "same":
        total = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size)]
        if any(t % 2 for t in total):
            raise ExportError(f"module {name!r}: padding='same' with kernel {conv.kernel_size} pads unevenly; "
                              f"NIR's Conv2d pads both sides alike")
        return tuple(t // 2 for t in total)
    return conv.padding


def conv_node(name: str, conv: nn.Conv2d, in_shape: Tuple[int, ...]) -> nir.Conv2d:
    bias = np.zeros(conv.out_channels, np.float32) if conv.bias is None else _array(conv.bias)
    return nir.Conv2d(input_shape=in_shape[1:], weight=_array(conv.weight), stride=conv.stride,
                      padding=_conv_padding(name, conv), dilation=conv.dilation, groups=conv.groups, bias=bias)


def _pool_node(lay: Layer) -> Tuple[nir.SumPool2d, float]:
    """The SumPool2d of an AvgPool2d / SumPool2d and the divisor to fold into the weights."""
    m = lay.module
    if isinstance(m, SumPool2d):
        k = m.kernel_size
        return nir.SumPool2d(kernel_size=np.array([k, k]), stride=np.array([k, k]), padding=np.array([0, 0])), 1.0
    two = lambda v: tuple(int(x) for x in np.broadcast_to(np.asarray(v).reshape(-1), 2))  # noqa: E731
    k, s, p = two(m.kernel_size), two(m.stride if m.stride else m.kernel_size), two(m.padding)
    floor = tuple((lay.in_shape[1 + i] + 2 * p[i] - k[i]) // s[i] + 1 for i in range(2))
    if tuple(lay.out_shape[1:]) != floor:
        raise ExportError(f"module {lay.name!r}: ceil_mode pools partial windows; NIR's SumPool2d does not")
    if any(p) and not m.count_include_pad and m.divisor_override is None:
        raise ExportError(f"module {lay.name!r}: count_include_pad=False divides border windows by fewer cells")
    node = nir.SumPool2d(kernel_size=np.array(k), stride=np.array(s), padding=np.array(p))
    return node, float(m.divisor_override or k[0] * k[1])


def recurrent_node(lay: Layer) -> nir.NIRNode:
    """RLeaky's / RSynaptic's recurrent connection as a weight node (neuron -> node -> neuron)."""
    m, shape = lay.module, lay.out_shape
    if m.all_to_all:
        rec = m.recurrent
        if isinstance(rec, nn.Conv2d):
            return conv_node(f"{lay.name}.recurrent", rec, shape)
        return nir.Linear(weight=_array(rec.weight)) if rec.bias is None else \
            nir.Affine(weight=_array(rec.weight), bias=_array(rec.bias))
    v = _array(torch.as_tensor(m.V))
    if len(shape) == 1:
        return nir.Linear(weight=np.diag(np.broadcast_to(v, shape)).astype(v.dtype))
    per_channel = np.broadcast_to(v, shape)
    if not np.all(per_channel == per_channel[:, :1, :1]):
        raise ExportError(f"module {lay.name!r}: a one-to-one V that varies within a channel has no NIR weight node "
                          f"for a (C, H, W) layer")
    w = np.zeros((shape[0], shape[0], 1, 1), v.dtype)
    w[np.arange(shape[0]), np.arange(shape[0]), 0, 0] = per_channel[:, 0, 0]
    return nir.Conv2d(input_shape=shape[1:], weight=w, stride=1, padding=0, dilation=1, groups=1,
                      bias=np.zeros(shape[0], v.dtype))


def layer_node(lay: Layer, dt: float) -> Optional[nir.NIRNode]:
    m, kind = lay.module, kind_of(lay.module)
    if issubclass(kind, NEURONS):
        return neuron_node(lay.name, m, lay.in_shape, dt)
    if issubclass(kind, (nn.Conv2d,) + POOLS) and len(lay.in_shape) != 3:
        raise ExportError(f"module {lay.name!r}: takes a {lay.in_shape} input; NIR's 2-d layers take (C, H, W) "
                          f"with a batch axis before it")
    if issubclass(kind, nn.Conv2d):
        return conv_node(lay.name, m, lay.in_shape)
    if issubclass(kind, nn.Linear):
        if len(lay.in_shape) != 1:
            raise ExportError(f"module {lay.name!r}: a Linear on a {lay.in_shape} input acts on its last axis only; "
                              f"put an nn.Flatten before it")
        return nir.Linear(weight=_array(m.weight)) if m.bias is None else \
            nir.Affine(weight=_array(m.weight), bias=_array(m.bias))
    if issubclass(kind, nn.Flatten):
        end = m.end_dim - 1 if m.end_dim > 0 else m.end_dim
        return nir.Flatten(input_type={"input": np.array(lay.in_shape)},
                           start_dim=m.start_dim - 1 if m.start_dim > 0 else m.start_dim, end_dim=end)
    if issubclass(kind, POOLS):
        return _pool_node(lay)[0]
    return None  # Dropout, Identity: nothing at inference


def fold_scales(chain: List[Tuple[Layer, nir.NIRNode]], nodes: Dict[str, nir.NIRNode]) -> None:
    """Divide by each AvgPool2d's divisor and multiply by each graded spike factor the weight
    node they act through (:mod:`emu.export`); exact where the factor is a power of two."""
    is_weight = lambda i: isinstance(chain[i][1], (nir.Linear, nir.Affine, nir.Conv2d))  # noqa: E731
    is_neuron = lambda i: isinstance(chain[i][0].module, NEURONS)  # noqa: E731

    def scan(i, step):
        j = i + step
        while 0 <= j < len(chain) and not is_neuron(j):
            if is_weight(j):
                return j
            j += step
        return None

    for i, (lay, node) in enumerate(chain):
        if isinstance(lay.module, POOLS):
            divisor = _pool_node(lay)[1]
            if divisor == 1:
                continue
            after, before = scan(i, 1), scan(i, -1)
            if after is None and before is None:
                raise ExportError(f"module {lay.name!r}: an AvgPool2d needs a Linear or Conv2d between the same "
                                  f"spiking layers to fold its 1/{divisor:g} into")
            target = chain[after if after is not None else before][1]
            target.weight = (target.weight / divisor).astype(target.weight.dtype)
            if after is None and getattr(target, "bias", None) is not None:
                target.bias = (target.bias / divisor).astype(target.bias.dtype)
        elif is_neuron(i):
            factor = float(torch.as_tensor(lay.module.graded_spikes_factor).reshape(-1)[0])
            if factor == 1:
                continue
            targets = [chain[j][1] for j in [scan(i, 1)] if j is not None]
            if isinstance(lay.module, RECURRENT):
                targets.append(nodes[f"{lay.name}.recurrent"])
            for target in targets:
                target.weight = (target.weight * factor).astype(target.weight.dtype)
