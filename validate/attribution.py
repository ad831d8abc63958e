"""Where accuracy is lost between snnTorch and the chip: one semantic factor at a time (a waterfall).

Start from snnTorch's float semantics (``SemanticsProfile.snntorch()``: latency 0,
delayed reset, float64, float weights) and switch the factors that separate it
from the chip (``SemanticsProfile.chip()``) one at a time, in this order:

1. ``latency``: synaptic latency 0 -> 1 tick per connection, plus the projections'
   extra delays (snnTorch has none, the NIR converter adds one by default). A
   population at depth d then answers d (+ delays) ticks later; every comparison
   is made after shifting it back (:func:`emu.timing.latency_shifts`), and
   with ``pad=True`` such runs get that many extra silent ticks so that nothing of
   the response is cut off. What remains is the real effect: recurrent loops
   with a longer lag, skip paths of other lengths, bias integrating before the
   delayed input arrives.
2. ``reset_timing``: next-tick (snnTorch ``reset_delay=True``) -> same-tick reset.
3. ``reset_mode``: only when the float model's reset differs from the chip's.
4. ``spike_condition`` / ``cuba_current``: only when they differ.
5. ``weights``: integer weights (bits, rounding, overflow) instead of float ones.
6. ``arithmetic``: float64 -> the chip's float32 (or the target's arithmetic).
7. optionally ``fixed``: a fixed-point membrane beyond the chip (``include_fixed``).

For every coalition of factors (all ``2**k`` of them for up to
:data:`validate.shapley.MAX_EXACT` factors) the emulator runs all samples; against the
float run it counts, per population, the spikes of both and the (sample, tick, neuron)
cells where both spike (:class:`validate.metrics.SpikeAgreement`), and the output
population's spike counts per sample, whose argmax (ties to the lowest index) is the
predicted class: an accuracy (with labels) or the agreement with the float prediction
(without). :class:`validate.attribution_result.Attribution` turns them into each
factor's Shapley share of the accuracy, output margin and spike F1 lost (the same in any
order of the factors), the samples that flip with the factor that carries each, and
an exact test of whether the drop is more than chance on this many samples.

The source is the float reference's profile (``SemanticsProfile.snntorch()``: decays
stored as float32 as snnTorch holds ``beta``, the bias through the synaptic current);
the ``bias_path`` factor is what the chip converter's folding of a CubaLIF bias into
the membrane costs.
"""
from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np

from emu.engine import Emulator
from emu.inputs import normalize_inputs
from emu.network import Network
from emu.parallel import parallel_map
from emu.phases import phase
from emu.profile import SemanticsProfile
from emu.spikes import Recording
from emu.timing import latency_shifts

from .attribution_result import Attribution, ConfigResult, FlippedSample
from .factors import AttributionError, Configuration, Factor, configuration, default_factors, without_delays
from .metrics import SpikeAgreement, agreement_of_keys, classes_from_counts
from .shapley import coalitions

__all__ = ["Attribution", "ConfigResult", "FlippedSample", "attribute", "chunk_counts"]


def _groups(inputs, network: Network) -> Tuple[List[Tuple[np.ndarray, Dict[str, np.ndarray]]], int]:
    """Samples as batches of equal length: ``[(sample indices, {input: (b, T, N)})]`` and the sample count."""
    if isinstance(inputs, (list, tuple)):
        items = [normalize_inputs(network, x)[0] for x in inputs]
        by_len: Dict[int, List[int]] = {}
        for i, x in enumerate(items):
            if next(iter(x.values())).shape[0] != 1:
                raise AttributionError(f"sample {i}: give one sample per list item (got a batch of "
                                       f"{next(iter(x.values())).shape[0]})")
            by_len.setdefault(next(iter(x.values())).shape[1], []).append(i)
        groups = [(np.array(idx), {k: np.concatenate([items[i][k] for i in idx]) for k in items[idx[0]]})
                  for _, idx in sorted(by_len.items())]
        return groups, len(items)
    rasters, _ = normalize_inputs(network, inputs)
    n = next(iter(rasters.values())).shape[0]
    return [(np.arange(n), rasters)], n


def chunk_counts(task: Dict[str, Any], shared: Dict[str, Any]) -> Dict[str, Any]:
    """Every configuration (``shared["emulators"]``, the source first) on one batch of samples
    (``task``: their indices ``idx`` and ``rasters``), counted against the source run: per
    configuration and population (A's spikes, the source's, both, cells) over the ticks both
    have after the latency shift, and the output population's spike counts per sample; and
    the float reference against the source, when there is one. Spikes are compared as sorted
    cell keys (:meth:`emu.spikes.Recording.spike_keys`), never as rasters. A module-level
    function: :func:`emu.parallel.parallel_map` runs it anywhere."""
    with phase("attribution"):
        return _chunk_counts(task, shared)


def _chunk_counts(task: Dict[str, Any], shared: Dict[str, Any]) -> Dict[str, Any]:
    idx, rasters = task["idx"], task["rasters"]
    populations, reference, output = shared["populations"], shared["reference"], shared["output"]
    ticks = next(iter(rasters.values())).shape[1]
    batch = len(idx)
    counts, base, ref_counts = [], None, None
    base_keys: Dict[Tuple[str, int], np.ndarray] = {}
    padded: Dict[int, Dict[str, np.ndarray]] = {}  # the input with its silent ticks, once per length
    for emulator, sh in zip(shared["emulators"], shared["shifts"]):
        extra = max(0, max(sh.values())) if shared["pad"] else 0
        if extra not in padded:
            padded[extra] = {k: np.pad(r, ((0, 0), (0, extra), (0, 0))) for k, r in rasters.items()}
        res = emulator(padded[extra], progress=False)  # the attribution bar counts the runs
        if base is None:  # the source: the others are measured against its run
            base = res
            source_keys = {p: base.spike_keys(p, 0, ticks) for p in populations}
            base_keys.update({(p, ticks): keys for p, keys in source_keys.items()})
            if reference is not None:
                ref = reference(rasters, ticks=ticks) if not isinstance(reference, Recording) else reference
                pick = None if not isinstance(reference, Recording) else idx
                ref_counts = _reference_counts(ref, pick, source_keys, ticks)
        c: Dict[str, Any] = dict(agreement={}, output_counts=None)
        for p in populations:
            n = emulator.network.populations[p].size
            length = min(ticks + extra - sh[p], ticks)  # the ticks both runs have after the shift
            if (p, length) not in base_keys:
                base_keys[p, length] = base.spike_keys(p, 0, length)
            mine = res.spike_keys(p, sh[p], length)
            a = agreement_of_keys(mine, base_keys[p, length], batch * length * n)
            c["agreement"][p] = (a.spikes_a, a.spikes_b, a.matched, a.cells)
            if p == output:
                sample = mine // (length * n) if length > 0 else mine
                c["output_counts"] = np.bincount(sample * n + mine % n, minlength=batch * n).reshape(batch, n)
        counts.append(c)
    # a reference still being computed (a Future) is counted when it is there (_run_chunks)
    return dict(idx=idx, counts=counts, reference=ref_counts, ticks=ticks,
                source_keys=source_keys if shared["pending"] is not None else None)


def _reference_counts(ref: Recording, pick, source_keys: Dict[str, np.ndarray], ticks: int) -> Dict[str, tuple]:
    """Per population (the float reference's spikes, the source's, both, cells) over ``ticks``
    ticks: ``ref``'s samples ``pick`` (None: all) against the source run's keys."""
    out = {}
    for p, mine in source_keys.items():
        keys = ref.spike_keys(p, 0, ticks, pick)
        n_cells = (len(pick) if pick is not None else ref.batch) * ticks * ref.sizes[p]
        a = agreement_of_keys(keys, mine, n_cells)
        out[p] = (a.spikes_a, a.spikes_b, a.matched, a.cells)
    return out


def _run_chunks(chunks, shared, n_samples: int, progress, workers: int, scheduler: Optional[str]):
    """:func:`chunk_counts` of every batch, here or on ``workers`` processes or a dask cluster,
    added up in order: per configuration the agreements per population and the output counts
    per sample; and the reference's agreement per population (None without one)."""
    populations = shared["populations"]
    n_out = shared["n_out"]
    acc = [dict(agreement={p: SpikeAgreement(0, 0, 0, 0) for p in populations},
                output_counts=np.zeros((n_samples, n_out), np.int64)) for _ in shared["emulators"]]
    pending = shared["pending"]  # the reference as a Future: its agreement counted at the end
    ref = {p: SpikeAgreement(0, 0, 0, 0) for p in populations} \
        if shared["reference"] is not None or pending is not None else None
    kept = []
    total = len(chunks) * len(acc)
    bar = None
    if progress if progress is not None else total > 4:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="attribution", unit="run")
    for part in parallel_map(chunk_counts, chunks, shared=shared, workers=workers, scheduler=scheduler):
        for a, c in zip(acc, part["counts"]):
            for p, n in c["agreement"].items():
                a["agreement"][p] = a["agreement"][p] + SpikeAgreement(*n)
            a["output_counts"][part["idx"]] = c["output_counts"]
        for p, n in (part["reference"] or {}).items():
            ref[p] = ref[p] + SpikeAgreement(*n)
        if pending is not None:
            kept.append((part["idx"], part["source_keys"], part["ticks"]))
        if bar is not None:
            bar.update(len(part["counts"]))
    if bar is not None:
        bar.close()
    if pending is not None:
        run = pending.result()
        for idx, keys, ticks in kept:
            for p, n in _reference_counts(run, idx, keys, ticks).items():
                ref[p] = ref[p] + SpikeAgreement(*n)
    return acc, ref


def attribute(network: Network, inputs, labels: Optional[Sequence[int]] = None,
              source: Optional[SemanticsProfile] = None, target: Optional[SemanticsProfile] = None,
              factors: Optional[Sequence[Factor]] = None, output: Optional[str] = None, pad: bool = True,
              include_fixed: bool = False, reference=None,
              chunk: int = 64, progress: Optional[bool] = None, workers: int = 0,
              scheduler: Optional[str] = None) -> Attribution:
    """Run every coalition of the factors (module doc) over ``inputs``; return an :class:`Attribution`.

    ``inputs``: a batch as the emulator takes it ((B, T, N) or a dict), or a list
    of single samples (may differ in length). ``labels``: one class per sample, or
    None. ``source`` / ``target``: the float and chip profiles (defaults
    ``snntorch()`` and ``chip()``). ``output``: the population whose spike counts
    classify (default: the last in topological order). ``pad``: give latency-shifted
    runs extra silent ticks so that aligned windows are complete. ``reference``: the float
    reference (a :class:`validate.float_reference.FloatReference`, run on the same
    samples, or its :class:`~emu.spikes.Recording` of every sample in order, or a
    :class:`concurrent.futures.Future` of that recording, still being computed while the
    emulator runs: its agreement is counted when it is there), checked against the source
    profile (``reference_agreement``). ``chunk``: samples per batch,
    the unit of work; ``workers`` local processes or a dask ``scheduler`` address run the
    batches (:func:`emu.parallel.parallel_map`), gathered in order: the same numbers as in
    this process (the float reference runs the same batches; the emulator's samples never
    depend on each other).
    """
    network.validate()
    source = source or SemanticsProfile.snntorch()
    target = target or SemanticsProfile.chip()
    factors = list(factors) if factors is not None else default_factors(source, target, network, include_fixed)
    order = network.order()
    populations = [n for n in order if network.populations[n].model != "input"]
    output = output or (populations[-1] if populations else None)
    if output not in network.populations or network.populations[output].model == "input":
        raise AttributionError(f"output population {output!r} is not a neuron population of the network "
                               f"(populations: {populations})")
    groups, n_samples = _groups(inputs, network)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != n_samples:
            raise AttributionError(f"{labels.shape[0] if labels.ndim == 1 else labels.shape} labels for {n_samples} "
                                   f"samples: give one label per sample")
        if not np.issubdtype(labels.dtype, np.integer):
            try:
                as_float = labels.astype(float)
            except (TypeError, ValueError):
                raise AttributionError(f"labels must be integer class indices, got {labels.dtype}") from None
            if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
                raise AttributionError("labels must be integer class indices")
            labels = as_float.astype(np.int64)
        n_out = network.populations[output].size
        if labels.size and (labels.min() < 0 or labels.max() >= n_out):
            raise AttributionError(f"labels must be class indices 0..{n_out - 1} (the {n_out} neurons of "
                                   f"{output!r}), got {int(labels.min())}..{int(labels.max())}")
    nets = {False: without_delays(network), True: network}

    keys = [f.key for f in factors]
    target_label = "chip + fixed point" if any(f.key == "fixed" for f in factors) else "chip"

    def name(switched: FrozenSet[str]) -> str:
        if not switched:
            return "float (source)"
        if len(switched) == len(keys):
            return f"{target_label} (target)"
        return "float + " + " + ".join(k for k in keys if k in switched)

    wanted = {s: configuration(source, factors, s, name(s)) for s in coalitions(keys)}
    unique: Dict[Any, Configuration] = {}
    for c in wanted.values():
        unique.setdefault(c.key, c)
    shifts = {k: latency_shifts(network, c.profile, source, reference_delays=False, delays=c.delays)
              for k, c in unique.items()}
    chunks = [dict(idx=idx[s:s + chunk], rasters={n: r[s:s + chunk] for n, r in rasters.items()})
              for idx, rasters in groups for s in range(0, len(idx), chunk)]
    # the source first (the first key of unique): every other configuration is measured against its run
    pending = reference if isinstance(reference, Future) else None
    if pending is not None and (workers or scheduler):
        reference, pending = pending.result(), None  # other processes get the recording itself
    shared = dict(emulators=[Emulator(nets[c.delays], c.profile) for c in unique.values()],
                  shifts=[shifts[k] for k in unique], populations=populations, output=output, pad=pad,
                  reference=None if pending is not None else reference, pending=pending,
                  n_out=network.populations[output].size)
    totals, ref_agreement = _run_chunks(chunks, shared, n_samples, progress, workers, scheduler)
    acc = dict(zip(unique, totals))
    source_counts = acc[wanted[frozenset()].key]["output_counts"]
    truth = labels if labels is not None else classes_from_counts(source_counts)

    def result(c: Configuration) -> ConfigResult:
        a = acc[c.key]
        pred = classes_from_counts(a["output_counts"])
        accuracy = float(np.mean(pred == truth)) if n_samples else float("nan")
        return ConfigResult(c.name, c.switched, c.profile.describe(), c.delays, shifts[c.key], dict(a["agreement"]),
                            a["output_counts"].copy(), pred, accuracy)

    settings = dict(source=source.describe(), target=target.describe(), target_label=target_label, pad=pad,
                    output=output)
    return Attribution(factors, {s: result(c) for s, c in wanted.items()}, populations, output, n_samples,
                       labels, list(range(n_samples)), settings, ref_agreement)
