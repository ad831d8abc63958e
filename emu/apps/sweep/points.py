"""One sweep point: the float model converted at a precision, run on the emulator, measured
against the float reference; plus the figures each row records (module doc of :mod:`emu.apps.sweep`)."""
from __future__ import annotations

import math
import time
import traceback
from typing import Optional

import numpy as np

from emu.chip.budget import fit_table
from emu.engine import Emulator
from emu.nir_import import ConversionOptions, from_nir, read_nir
from emu.numerics import quantize_weights, weight_max
from emu.profile import SemanticsProfile
from validate.conversion_warnings import warn_zeroed_weights
from validate.metrics import agreement, pooled, predicted_classes

from .results import METHODS, point_key


def frac_bits_for(network, membrane_bits: int, override: Optional[int] = None) -> int:
    if override is not None:
        return int(min(override, membrane_bits - 1))
    thr = [np.abs(p.threshold[np.isfinite(p.threshold)]).max(initial=0.0) for p in network.populations.values()]
    top = max([1.0] + [float(t) for t in thr])
    int_bits = int(math.ceil(math.log2(2 * top))) + 1  # sign + twice the largest threshold
    return int(max(0, min(membrane_bits - 1, membrane_bits - int_bits)))


def synaptic_events(network, result, profile) -> float:
    """Energy proxy: mean over samples of sum_projections pre spikes x mean fan-out."""
    total = np.zeros(result.batch)
    for pr in network.projections:
        pre = network.populations[pr.pre]
        post = network.populations[pr.post]
        q, _ = quantize_weights(pr.weight, profile.with_(weight_overflow="saturate"), pr.label)
        if pr.kind == "conv2d":
            # every post neuron of a channel sees the kernel: dense-equivalent synapses
            per_channel = np.count_nonzero(q.reshape(q.shape[0], -1), axis=1)
            dense_equiv = float(per_channel.sum()) * post.size / q.shape[0]
        else:
            dense_equiv = float(np.count_nonzero(q)) * pr.pool ** 2
        total += result.spike_counts(pr.pre) * dense_equiv / pre.size
    return float(total.mean())


def output_of(network, output: Optional[str] = None) -> str:
    if output:
        if output not in network.populations:
            raise KeyError(f"no population {output!r}; populations: {list(network.populations)}")
        return output
    return [n for n in network.order() if network.populations[n].model != "input"][-1]


def _unpack(packed: dict, shapes: dict) -> dict:
    return {k: np.unpackbits(v, count=int(np.prod(shapes[k])))[: int(np.prod(shapes[k]))].reshape(shapes[k]).astype(bool)
            for k, v in packed.items()}


def evaluate_point(task: dict) -> dict:
    """Run one grid point; never raises (an error becomes a ``status: error`` row)."""
    point = task["point"]
    row = dict(point, key=point_key(point))
    t0 = time.perf_counter()
    try:
        row.update(_evaluate(task))
        row["status"] = "ok"
    except Exception as exc:  # noqa: BLE001  (a point's failure is a result, not a crash of the sweep)
        row.update(status="error", error=f"{type(exc).__name__}: {exc}",
                   traceback=traceback.format_exc(limit=5))
    row["seconds"] = round(time.perf_counter() - t0, 3)
    return row


def _evaluate(task: dict) -> dict:
    point = task["point"]
    if point["method"] not in METHODS:
        raise ValueError(f"unknown method {point['method']!r}; available: {METHODS}")
    wb, mb = int(point["weight_bits"]), int(point["membrane_bits"])
    options = ConversionOptions(**dict(task["options"], weight_max=weight_max(wb)))
    network = from_nir(read_nir(task["model"]), options)
    frac = frac_bits_for(network, mb, task.get("frac_bits"))
    profile = point_profile(task.get("base_profile"), arithmetic="fixed", weight_bits=wb, membrane_bits=mb,
                            membrane_frac_bits=frac, fixed_rounding=point["rounding"], weight_overflow="saturate",
                            seed=int(task.get("seed", 0)))
    inputs, labels, ticks = task["inputs"], np.asarray(task["labels"]), int(task["ticks"])
    result = Emulator(network, profile)(inputs, ticks=ticks)
    out = output_of(network, task.get("output"))
    out_spikes = result.raster(out)
    pred = predicted_classes(out_spikes)
    ref = _unpack(task["reference"], task["reference_shapes"])
    per_pop = {name: agreement(result.raster(name), r) for name, r in ref.items()}
    total = pooled(per_pop.values())
    ref_pred = predicted_classes(ref[out])
    row = dict(accuracy=float(np.mean(pred == labels)), agreement=float(np.mean(pred == ref_pred)),
               unquantized_accuracy=float(np.mean(ref_pred == labels)),
               predictions=pred.tolist(), correct=(pred == labels).astype(int).tolist(),
               spike_f1=total.f1, spike_recall=total.recall, spike_precision=total.precision,
               spike_rate_ratio=total.rate_ratio, spike_agreement=total.to_dict(),
               spike_f1_per_population={n: a.f1 for n, a in per_pop.items()},
               spike_mismatch=total.mismatch_rate,
               spike_mismatch_per_population={n: a.mismatch_rate for n, a in per_pop.items()},
               membrane_frac_bits=frac, clipped_weights=int(sum(result.meta["clipped_weights"].values())),
               membrane_saturations=dict(result.meta["saturations"]),
               output_spikes=int(out_spikes.sum()), synaptic_events=synaptic_events(network, result, profile),
               samples=int(len(labels)), ticks=ticks)
    table = fit_table(network, profile=profile)
    row.update(memory_bytes=table["memory_bytes"], memory_per_population={
        r["population"]: dict(synapse_bytes=r["synapse_bytes"], state_bytes=r["state_bytes"], pes=r["pes"],
                               total_bytes=r["total_bytes"]) for r in table["rows"]})
    warn_zeroed_weights(network, profile, summary=row, say=None)  # said by the parent as the row comes in
    return row


#: what a grid point sets itself; the rest of its profile is the chip's, or a calibrated base profile's
POINT_FIELDS = ("arithmetic", "weight_bits", "membrane_bits", "membrane_frac_bits", "fixed_rounding",
                "weight_overflow", "seed")


def point_profile(base: Optional[dict], **point) -> SemanticsProfile:
    """A grid point's profile: the base profile's fields (None: the chip's) under the point's own."""
    fields = {k: v for k, v in (base or {}).items() if k in SemanticsProfile.__dataclass_fields__
              and k not in POINT_FIELDS}
    return SemanticsProfile(**dict(fields, **point))


def unquantized_run(model, options: dict, inputs, ticks: int, base_profile: Optional[dict] = None):
    """Rasters of every non-input population under float64 with float weights and the chip's timing
    (or the base profile's) (packed bits, shapes): what each point's spike mismatch and agreement
    are measured against."""
    network = from_nir(read_nir(model), ConversionOptions(**options))
    result = Emulator(network, point_profile(base_profile, arithmetic="float64", weight_bits=None))(inputs,
                                                                                                  ticks=ticks)
    packed, shapes = {}, {}
    for name, p in network.populations.items():
        if p.model == "input":
            continue
        r = result.raster(name)
        packed[name], shapes[name] = np.packbits(r.ravel()), r.shape
    out = output_of(network)
    return packed, shapes, network, out


def weight_error(w: np.ndarray, bits: int, rounding: str = "truncate") -> dict:
    """Reconstruction error of PTQ weights: scale ``wmax / max|w|``, integer weights, back to float.

    Returns ``mean`` and ``max`` absolute error and ``bound`` (1/scale for
    truncation, 0.5/scale for nearest), the worst case a grid of that step allows.
    """
    w = np.asarray(w, np.float64)
    top = float(np.abs(w).max())
    if top == 0:
        return dict(mean=0.0, max=0.0, bound=0.0)
    wmax = weight_max(bits)
    scale = wmax / top
    x = w * wmax / top
    near = np.round(x)
    x = np.where(np.abs(x - near) <= 1e-9 * np.maximum(1.0, np.abs(x)), near, x)  # float noise, not a grid step
    q, _ = quantize_weights(x, SemanticsProfile.chip(weight_bits=bits, weight_rounding=rounding,
                                                             weight_overflow="saturate"))
    err = np.abs(w - q / scale)
    return dict(mean=float(err.mean()), max=float(err.max()), bound=(1.0 if rounding == "truncate" else 0.5) / scale)
