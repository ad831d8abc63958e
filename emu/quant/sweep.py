"""``s2emu fit`` and ``s2emu sweep``: chip memory of a model, and a precision grid on the emulator.

A sweep point is (method, weight_bits, membrane_bits, rounding). Methods:

* ``ptq``: the float model converted with ``weight_max = 2**(weight_bits-1) - 1``
  (per-population scale: ``weight_scale="auto"`` with ``scale_percentile``);
* ``qat``: per weight-bit count W, once, in the parent process before the points
  are dispatched: the float model loaded into snnTorch
  (:func:`emu.gesture.export.from_nir`), wrapped by
  :func:`emu.quant.qat.quantization_aware` with W bits, the same percentile as
  ptq's scale (so both clip the same tail of |W|) and the profile's weight
  rounding (truncation), fine-tuned by :func:`emu.gesture.train.train` on a
  training split and exported by :func:`emu.quant.qat.export_integer` to an
  integer graph ``RESULTS.jsonl.qat/wW.nir`` (written atomically; a resumed sweep
  reuses it and does not retrain: delete it to retrain). Its points convert that
  graph with no scaling (``weight_scale=None``: the weights are the chip's
  integers, the thresholds already multiplied by each layer's scale), so with 0
  epochs a qat point is its ptq point. Training data: ``--train-data ROOT`` (its
  training split) or ``--train-synthetic N`` (the seed-0 synthetic training
  split, as ``s2emu train``; the ``--synthetic`` test samples are another seed's
  test split); ``--qat-epochs`` (2), ``--qat-lr``; one torch thread. A failed
  training makes that W's points ``status: error`` rows (retrained on resume).

Each point's network runs under ``SemanticsProfile.fixed(weight_bits,
membrane_bits, membrane_frac_bits, fixed_rounding, weight_overflow="saturate")``
and records:

* ``accuracy``: class = argmax spike count of the output population (the last
  population in topological order, or ``--output``);
* ``spike_mismatch``: fraction of (sample, tick, neuron) cells of every
  non-input population that differ from the float reference, the float model
  (for qat too) under ``SemanticsProfile.float64(weight_bits=None)`` (same timing,
  float weights, float64 membrane); ``agreement``: predictions equal to the float run's;
* ``clipped_weights`` (saturated by ``weight_overflow="saturate"``) and
  ``membrane_saturations`` (per population, from the run's metadata);
* memory: ``weight_bytes`` = stored synapses x weight_bits / 8 (dense: non-zero
  quantized weights; conv: the kernel, stored once), ``state_bytes`` = neurons x
  membrane_bits / 8 (x2 for current-based neurons), ``memory_bytes`` = their sum;
* energy proxy ``synaptic_events``: per sample, the sum over projections of
  pre-synaptic spikes x mean fan-out (stored synapses / pre neurons).

``membrane_frac_bits`` is ``membrane_bits - int_bits`` where ``int_bits`` holds
twice the largest threshold in chip units with sign (``--frac-bits`` overrides).

Results go to a JSONL file, one complete line per point, appended with flush +
fsync; a point already there with ``status: ok`` is skipped (resume); a point
that raises is recorded with ``status: error`` and its message (re-run on the
next resume). Points run on local worker processes (default 2) or, with
``--scheduler ADDRESS``, on a dask.distributed cluster (optional extra
``[sweep]``).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np

from emu.numerics import weight_max

METHODS = ("ptq", "qat")
ROUNDINGS = ("truncate", "nearest", "stochastic")


# --------------------------------------------------------------------------------------------
# grid, keys, results file
# --------------------------------------------------------------------------------------------


def grid(weight_bits: Sequence[int], membrane_bits: Sequence[int], roundings: Sequence[str],
         methods: Sequence[str] = ("ptq",)) -> List[dict]:
    return [dict(method=m, weight_bits=int(w), membrane_bits=int(b), rounding=r)
            for m, w, b, r in itertools.product(methods, weight_bits, membrane_bits, roundings)]


def point_key(point: dict) -> str:
    return f"{point['method']}/w{point['weight_bits']}/m{point['membrane_bits']}/{point['rounding']}"


def read_results(path) -> List[dict]:
    """Complete JSON lines of a results file; a torn last line (killed mid-write) is dropped."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _repair(path: Path) -> None:
    """Rewrite the file without a torn last line (temp file + os.replace), so appends start clean."""
    if not path.exists():
        return
    text = path.read_text()
    if not text or text.endswith("\n"):
        return
    rows = read_results(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)


def append_result(path, row: dict) -> None:
    line = json.dumps(row, default=_json_default) + "\n"
    with open(path, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def _json_default(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serializable: {type(x).__name__}")


# --------------------------------------------------------------------------------------------
# one point
# --------------------------------------------------------------------------------------------


def frac_bits_for(network, membrane_bits: int, override: Optional[int] = None) -> int:
    if override is not None:
        return int(min(override, membrane_bits - 1))
    thr = [np.abs(p.threshold[np.isfinite(p.threshold)]).max(initial=0.0) for p in network.populations.values()]
    top = max([1.0] + [float(t) for t in thr])
    int_bits = int(math.ceil(math.log2(2 * top))) + 1  # sign + twice the largest threshold
    return int(max(0, min(membrane_bits - 1, membrane_bits - int_bits)))


def stored_synapses(network, profile) -> Dict[str, int]:
    """Stored synapses per projection label: non-zero quantized dense weights, the conv kernel."""
    from emu.numerics import quantize_weights

    out = {}
    for pr in network.projections:
        q, _ = quantize_weights(pr.weight, profile.with_(weight_overflow="saturate"), pr.label)
        out[pr.label] = int(q.size) if pr.kind == "conv2d" else int(np.count_nonzero(q))
    return out


def memory_of(network, profile) -> dict:
    syn = stored_synapses(network, profile)
    wbits = profile.weight_bits or 64
    weight_bytes = sum(math.ceil(s * wbits / 8) for s in syn.values())
    state_bytes = 0
    for p in network.populations.values():
        if p.model != "input":
            words = 2 if p.model == "cuba_lif" else 1
            state_bytes += math.ceil(p.size * words * profile.membrane_bits / 8)
    return dict(weight_bytes=int(weight_bytes), state_bytes=int(state_bytes),
                memory_bytes=int(weight_bytes + state_bytes), synapses=int(sum(syn.values())))


def synaptic_events(network, result, profile) -> float:
    """Energy proxy: mean over samples of sum_projections pre spikes x mean fan-out."""
    from emu.numerics import quantize_weights

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
        if task.get("fail_keys") and row["key"] in task["fail_keys"]:  # test hook
            raise RuntimeError(f"requested failure of {row['key']}")
        row.update(_evaluate(task))
        row["status"] = "ok"
    except Exception as exc:  # noqa: BLE001  (a point's failure is a result, not a crash of the sweep)
        row.update(status="error", error=f"{type(exc).__name__}: {exc}",
                   traceback=traceback.format_exc(limit=5))
    row["seconds"] = round(time.perf_counter() - t0, 3)
    return row


def _evaluate(task: dict) -> dict:
    from emu.engine import Emulator
    from emu.nir_import import ConversionOptions, from_nir, read_nir
    from emu.profile import SemanticsProfile

    point = task["point"]
    if point["method"] not in METHODS:
        raise ValueError(f"unknown method {point['method']!r}; available: {METHODS}")
    wb, mb = int(point["weight_bits"]), int(point["membrane_bits"])
    options = ConversionOptions(**dict(task["options"], weight_max=weight_max(wb)))
    network = from_nir(read_nir(task["model"]), options)
    frac = frac_bits_for(network, mb, task.get("frac_bits"))
    profile = SemanticsProfile.fixed(weight_bits=wb, membrane_bits=mb, membrane_frac_bits=frac,
                                     fixed_rounding=point["rounding"], weight_overflow="saturate",
                                     seed=int(task.get("seed", 0)))
    inputs, labels, ticks = task["inputs"], np.asarray(task["labels"]), int(task["ticks"])
    result = Emulator(network, profile)(inputs, ticks=ticks)
    out = output_of(network, task.get("output"))
    counts = np.stack([result.raster(out)[b].sum(axis=0) for b in range(result.batch)])
    pred = np.argmax(counts, axis=1)
    ref = _unpack(task["reference"], task["reference_shapes"])
    diff = cells = 0
    per_pop = {}
    for name, r in ref.items():
        mine = result.raster(name)
        d = int((mine != r).sum())
        per_pop[name] = d / r.size
        diff += d
        cells += r.size
    ref_pred = np.argmax(ref[out].sum(axis=1), axis=1)
    row = dict(accuracy=float(np.mean(pred == labels)), agreement=float(np.mean(pred == ref_pred)),
               spike_mismatch=diff / max(cells, 1), spike_mismatch_per_population=per_pop,
               membrane_frac_bits=frac, clipped_weights=int(sum(result.meta["clipped_weights"].values())),
               membrane_saturations=dict(result.meta["saturations"]),
               output_spikes=int(counts.sum()), synaptic_events=synaptic_events(network, result, profile),
               samples=int(len(labels)), ticks=ticks)
    row.update(memory_of(network, profile))
    return row


def float_reference(model, options: dict, inputs, ticks: int):
    """Rasters of every non-input population under float64 with float weights (packed bits, shapes)."""
    from emu.engine import Emulator
    from emu.nir_import import ConversionOptions, from_nir, read_nir
    from emu.profile import SemanticsProfile

    network = from_nir(read_nir(model), ConversionOptions(**options))
    result = Emulator(network, SemanticsProfile.float64(weight_bits=None))(inputs, ticks=ticks)
    packed, shapes = {}, {}
    for name, p in network.populations.items():
        if p.model == "input":
            continue
        r = result.raster(name)
        packed[name], shapes[name] = np.packbits(r.ravel()), r.shape
    out = output_of(network)
    return packed, shapes, network, out


# --------------------------------------------------------------------------------------------
# qat: fine-tuned integer graphs, one per weight-bit count
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class QatTraining:
    """How the qat method fine-tunes. ``train_set()`` gives the training samples,
    ``(frames (T, 2, 32, 32), label)`` as :func:`emu.gesture.data.load_dvsgesture`;
    it is called once, and only when some weight-bit count has no trained graph yet."""

    train_set: Callable[[], object]
    epochs: int = 2
    lr: float = 1e-3
    batch_size: int = 16
    seed: int = 0
    threads: int = 1  # tiny per-step tensors: one torch thread (see emu.gesture.train.train)
    data: str = ""  # what the training samples are (recorded with the trained graph)

    def recipe(self, percentile: Optional[float]) -> dict:
        """Everything that decides the trained graph: a saved graph is reused only for the same."""
        return dict(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, seed=self.seed, data=self.data,
                    percentile=percentile)


def qat_dir(out) -> Path:
    """Where the qat method of the results file ``out`` keeps its graphs (and synthetic training data)."""
    return Path(str(out) + ".qat")


def qat_model_path(out, weight_bits: int) -> Path:
    """The trained integer graph of the qat method for ``weight_bits``."""
    return qat_dir(out) / f"w{int(weight_bits)}.nir"


def conversion_of(point: dict, model, options: dict, out) -> dict:
    """``model`` and conversion ``options`` of a point: ptq converts the float model with the
    automatic (percentile) scale, qat its trained integer graph unscaled."""
    if point["method"] == "qat":
        return dict(model=str(qat_model_path(out, point["weight_bits"])),
                    options=dict(options, weight_scale=None, scale_percentile=None))
    return dict(model=str(model), options=options)


def _lif_dt(graph) -> float:
    """The tick the float graph's LIF parameters are written for, as emu.gesture.export reads it."""
    import nir

    lif = next(n for n in graph.nodes.values() if isinstance(n, nir.LIF))
    return float(lif.metadata.get("dt", graph.metadata.get("dt")))


def train_qat(model, weight_bits: int, percentile: Optional[float], samples, training: QatTraining, path,
              log: Callable[[str], None] = lambda s: None) -> List[dict]:
    """Fine-tune the float NIR ``model`` with ``weight_bits``-bit chip weights on ``samples``;
    write its integer graph to ``path`` (temp file, then rename) after the scales and
    the history in ``path`` with suffix ``.json``; return the history."""
    import nir

    from emu.gesture import train as gesture
    from emu.gesture.export import from_nir as trainable
    from emu.nir_import import read_nir
    from emu.profile import SemanticsProfile
    from emu.quant.qat import export_integer, quantization_aware

    graph = read_nir(model)
    net = quantization_aware(trainable(graph), bits=weight_bits, percentile=percentile,
                             rounding=SemanticsProfile.fixed().weight_rounding)
    log(f"qat w{weight_bits}: fine-tuning {training.epochs} epoch(s) on {len(samples)} samples ...")
    began = time.perf_counter()
    history = gesture.train(net, samples, epochs=training.epochs, batch_size=training.batch_size, lr=training.lr,
                            seed=training.seed, progress=False, threads=training.threads)
    integer, scales = export_integer(net, dt=_lif_dt(graph))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(dict(scales, recipe=training.recipe(percentile), history=history),
                                                    indent=1))
    tmp = path.with_name(path.name + ".tmp")
    nir.write(str(tmp), integer)
    os.replace(tmp, path)
    trained = (f"loss {history[-1]['loss']:.4f}, train accuracy {history[-1]['train_acc']:.3f}" if history
               else "no epochs")
    log(f"qat w{weight_bits}: {trained}, {time.perf_counter() - began:.0f} s -> {path}")
    return history


def train_missing_qat(model, weight_bits: Iterable[int], out, options: dict, training: Optional[QatTraining],
                      log: Callable[[str], None] = lambda s: None) -> Dict[int, dict]:
    """Train the qat graph of every weight-bit count in ``weight_bits`` that has none next
    to ``out`` yet; return the failures, ``{weight_bits: {"error", "traceback"}}``."""
    wanted = sorted({int(w) for w in weight_bits})
    if training is not None:
        _check_recipes([qat_model_path(out, w) for w in wanted], training.recipe(options.get("scale_percentile")))
    missing = [w for w in wanted if not qat_model_path(out, w).exists()]
    if missing and training is None:
        raise SweepError("the qat method needs training data: --train-data ROOT or --train-synthetic N")
    failures, samples = {}, None
    for w in missing:
        try:
            samples = training.train_set() if samples is None else samples
            train_qat(model, w, options.get("scale_percentile"), samples, training, qat_model_path(out, w), log)
        except Exception as exc:  # noqa: BLE001  (a failed training fails its points, not the sweep)
            failures[w] = dict(error=f"qat training failed: {type(exc).__name__}: {exc}",
                               traceback=traceback.format_exc(limit=5))
            log(f"qat w{w}: FAILED {failures[w]['error']}")
    return failures


def _check_recipes(paths, recipe: dict) -> None:
    """Refuse to reuse a saved qat graph trained otherwise than ``recipe`` asks (its
    points in the results file would silently mix two trainings)."""
    for path in paths:
        info = path.with_suffix(".json")
        if not path.exists() or not info.exists():
            continue
        saved = json.loads(info.read_text()).get("recipe", {})
        differ = {k: (saved.get(k), v) for k, v in recipe.items() if saved.get(k) != v}
        if differ:
            what = ", ".join(f"{k}: saved {a!r}, asked {b!r}" for k, (a, b) in differ.items())
            raise SweepError(f"{path} was trained differently ({what}); use another --out, or delete {path} and "
                             f"its qat rows from the results to retrain")


# --------------------------------------------------------------------------------------------
# the sweep
# --------------------------------------------------------------------------------------------


def pareto_front(rows: Sequence[dict], acc: str = "accuracy", cost: str = "memory_bytes") -> List[dict]:
    """Non-dominated rows: no other row has accuracy >= and cost <= with one of them strict."""
    ok = [r for r in rows if r.get("status", "ok") == "ok"]
    front = []
    for r in ok:
        dominated = any(o[acc] >= r[acc] and o[cost] <= r[cost] and (o[acc] > r[acc] or o[cost] < r[cost])
                        for o in ok)
        if not dominated:
            front.append(r)
    return sorted(front, key=lambda r: r[cost])


def choose(rows: Sequence[dict], tolerance: float = 0.01) -> Optional[dict]:
    """The cheapest point within ``tolerance`` (absolute accuracy) of the best; ties: higher accuracy."""
    ok = [r for r in rows if r.get("status", "ok") == "ok"]
    if not ok:
        return None
    best = max(r["accuracy"] for r in ok)
    near = [r for r in ok if r["accuracy"] >= best - tolerance - 1e-12]
    return min(near, key=lambda r: (r["memory_bytes"], -r["accuracy"]))


def _local_map(fn, tasks, workers: int):
    if workers <= 0:
        for t in tasks:
            yield fn(t)
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed
    import multiprocessing as mp

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(fn, t): t for t in tasks}
        for f in as_completed(futures):
            try:
                yield f.result()
            except Exception as exc:  # noqa: BLE001  (a worker died: record it, go on)
                p = futures[f]["point"]
                yield dict(p, key=point_key(p), status="error", error=f"worker failed: {type(exc).__name__}: {exc}")


def _dask_map(fn, tasks, address: str):
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise SweepError('--scheduler needs dask.distributed: pip install "spinnaker2-emu[sweep]" '
                         '(or pip install "dask[distributed]")') from None
    with Client(address) as client:
        futures = client.map(fn, tasks, pure=False)
        keys = {f.key: t for f, t in zip(futures, tasks)}
        for f in as_completed(futures):
            try:
                yield f.result()
            except Exception as exc:  # noqa: BLE001
                p = keys[f.key]["point"]
                yield dict(p, key=point_key(p), status="error", error=f"dask task failed: {type(exc).__name__}: {exc}")


class SweepError(RuntimeError):
    """A sweep cannot start (missing optional dependency, bad grid)."""


def run_sweep(model, inputs: np.ndarray, labels: np.ndarray, points: Sequence[dict], out, *,
              options: dict, ticks: Optional[int] = None, workers: int = 2, scheduler: Optional[str] = None,
              frac_bits: Optional[int] = None, output: Optional[str] = None, seed: int = 0,
              qat: Optional[QatTraining] = None, evaluate: Callable[[dict], dict] = evaluate_point,
              fail_keys: Iterable[str] = (), log: Callable[[str], None] = lambda s: None) -> List[dict]:
    """Evaluate the ``points`` not yet ``ok`` in ``out``; return every row of ``out`` afterwards.

    ``options``: conversion options of the ptq method (qat: see :func:`conversion_of`;
    its percentile is ``options["scale_percentile"]``). ``qat``: the training of the
    qat method, needed when a qat point's weight-bit count has no trained graph
    (:func:`train_missing_qat`). ``workers``: local worker processes (0: in this
    process). ``scheduler``: a dask.distributed scheduler address instead.
    ``evaluate`` must be picklable (module-level) for worker processes.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _repair(out)
    done = {r["key"] for r in read_results(out) if r.get("status") == "ok"}
    todo = [p for p in points if point_key(p) not in done]
    log(f"{len(points)} points, {len(points) - len(todo)} already in {out}, {len(todo)} to run")
    if todo:
        inputs = np.asarray(inputs)
        from emu.nir_import import ConversionOptions, from_nir, read_nir
        from emu.timing import depth

        failures = train_missing_qat(model, [p["weight_bits"] for p in todo if p["method"] == "qat"], out, options,
                                     qat, log)
        untrained = [p for p in todo if p["method"] == "qat" and p["weight_bits"] in failures]
        for p in untrained:
            _record(out, dict(p, key=point_key(p), status="error", **failures[p["weight_bits"]]), log)
        todo = [p for p in todo if p not in untrained]
        # the chip answers depth ticks after its input: run that many extra silent ticks
        run_ticks = (ticks or inputs.shape[1]) + depth(from_nir(read_nir(model), ConversionOptions(**options)))
        packed, shapes, _, _ = float_reference(model, options, inputs, run_ticks)
        tasks = [dict(point=p, **conversion_of(p, model, options, out), inputs=inputs, labels=np.asarray(labels),
                      ticks=run_ticks, reference=packed, reference_shapes=shapes, frac_bits=frac_bits,
                      output=output, seed=seed, fail_keys=sorted(fail_keys)) for p in todo]
        results = _dask_map(evaluate, tasks, scheduler) if scheduler else _local_map(evaluate, tasks, workers)
        for row in results:
            _record(out, row, log)
    return read_results(out)


def _record(out, row: dict, log: Callable[[str], None]) -> None:
    append_result(out, row)
    if row.get("status") == "ok":
        log(f"  {row['key']}: accuracy {row['accuracy']:.3f}, mismatch {row['spike_mismatch']:.4f}, "
            f"memory {row['memory_bytes']} B, clipped {row['clipped_weights']}, {row['seconds']} s")
    else:
        log(f"  {row['key']}: FAILED {row.get('error')}")


def latest(rows: Sequence[dict]) -> List[dict]:
    """One row per key: the ok one if any, else the last error."""
    by = {}
    for r in rows:
        k = r.get("key")
        if k not in by or r.get("status") == "ok" or by[k].get("status") != "ok":
            by[k] = r
    return list(by.values())


def pareto_figure(rows, front, chosen):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ok = [r for r in rows if r.get("status") == "ok"]
    ax.scatter([r["memory_bytes"] / 1024 for r in ok], [r["accuracy"] for r in ok], c="0.6", label="grid points")
    ax.plot([r["memory_bytes"] / 1024 for r in front], [r["accuracy"] for r in front], "o-", c="tab:blue",
            label="Pareto front")
    if chosen:
        ax.scatter([chosen["memory_bytes"] / 1024], [chosen["accuracy"]], s=160, facecolors="none",
                   edgecolors="tab:red", linewidths=2, label=f"chosen: {chosen['key']}")
    for r in front:
        ax.annotate(r["key"].split("/", 1)[1], (r["memory_bytes"] / 1024, r["accuracy"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("memory (weights + neuron state), kB")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    return fig


def write_report(rows, path, title="Quantization sweep on the emulated SpiNNaker2", tolerance=0.01, note=""):
    from validate.report import Report

    rows = latest(rows)
    front, chosen = pareto_front(rows), choose(rows, tolerance)
    rep = Report(title)
    if note:
        rep.add_text(note)
    if chosen:
        rep.add_text(f"Chosen point (cheapest within {tolerance:.0%} of the best accuracy): {chosen['key']}, "
                     f"accuracy {chosen['accuracy']:.3f}, memory {chosen['memory_bytes']} B.")
    cols = ("key", "status", "accuracy", "agreement", "spike_mismatch", "memory_bytes", "weight_bytes",
            "state_bytes", "synaptic_events", "clipped_weights", "membrane_frac_bits", "seconds", "error")
    table = [{c: (json.dumps(r.get(c)) if isinstance(r.get(c), dict) else r.get(c)) for c in cols} for r in rows]
    rep.add_heading("Pareto front (accuracy vs memory)")
    rep.add_figure(pareto_figure(rows, front, chosen), caption="accuracy vs memory; non-dominated points joined",
                   data=[{k: r[k] for k in ("key", "accuracy", "memory_bytes")} for r in front])
    rep.add_table([{c: r.get(c) for c in ("key", "accuracy", "memory_bytes", "spike_mismatch")} for r in front],
                  caption="Pareto front")
    rep.add_heading("All points")
    rep.add_table(table)
    return rep.write(path)


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def _ints(text):
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(allowed: Sequence[str], what: str):
    """An argparse type: a comma-separated list of names out of ``allowed``."""
    def parse(text):
        vals = [x.strip() for x in text.split(",") if x.strip()]
        bad = [v for v in vals if v not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {what} {bad}; choose from {allowed}")
        return vals
    return parse


def _options(args) -> dict:
    """Conversion options of the ptq method (the qat method derives its own, see conversion_of)."""
    from emu.cli import conversion_from_args

    opts = dataclasses.asdict(conversion_from_args(argparse.Namespace(**dict(vars(args), weight_bits=None))))
    opts.update(weight_scale="auto", scale_percentile=args.scale_percentile or 99.9)
    opts.pop("weight_max")
    return opts


def load_data(args):
    """(inputs (B, T, ...) bool, labels) from --data (DVSGesture root or .npz inputs/labels) or --synthetic N."""
    if args.data and str(args.data).endswith(".npz"):
        z = np.load(args.data)
        x, y = z["inputs"].astype(bool), z["labels"]
        if args.ticks:
            x = x[:, : args.ticks]
        return x, y
    from emu.demo import load_test_set

    ticks = args.ticks or 300
    per_class = 1 if args.data else max(1, math.ceil(args.synthetic / 11))
    work = Path(str(args.out) + ".data")
    x, y = load_test_set(str(args.data) if args.data else None, work, per_class, ticks)
    if args.synthetic:
        x, y = x[: args.synthetic], y[: args.synthetic]
    return x, y


def load_train_set(root, synthetic: Optional[int], ticks: int, work: Path):
    """Training samples of the qat method: ROOT's training split, or the first ``synthetic``
    samples of a synthetic training split written under ``work`` (seed 0, as ``s2emu train``;
    the test samples of --synthetic are seed 2026's test split)."""
    from torch.utils.data import Subset

    from emu.gesture.data import N_CLASSES, SynthConfig, load_dvsgesture, write_synthetic_dataset

    if synthetic:
        root = work / f"train-synthetic{synthetic}"
        if not (root / "DVSGesture").exists():
            write_synthetic_dataset(root, n_train_per_class=math.ceil(synthetic / N_CLASSES), n_test_per_class=0,
                                    config=SynthConfig(duration_ms=max(ticks, 300)))
    samples = load_dvsgesture(root, train=True, ticks=ticks)
    return Subset(samples, range(synthetic)) if synthetic else samples


def qat_training(args, ticks: int) -> Optional[QatTraining]:
    """The qat method's training as the command line says, on samples of the test data's ``ticks``."""
    if "qat" not in args.method:
        return None
    samples = functools.partial(load_train_set, args.train_data, args.train_synthetic, ticks, qat_dir(args.out))
    data = f"{args.train_data} (train split)" if args.train_data else f"synthetic {args.train_synthetic}"
    return QatTraining(samples, epochs=args.qat_epochs, lr=args.qat_lr, data=data)


def _sweep(args) -> int:
    if not args.data and not args.synthetic:
        print("s2emu sweep: error: give --data ROOT|FILE.npz or --synthetic N", file=sys.stderr)
        return 2
    if "qat" in args.method and not (args.train_data or args.train_synthetic):
        print("s2emu sweep: error: --method qat fine-tunes on training data: give --train-data ROOT or "
              "--train-synthetic N", file=sys.stderr)
        return 2
    x, y = load_data(args)
    points = grid(args.weight_bits, args.membrane_bits, args.rounding, args.method)
    log = lambda s: print(s, flush=True)  # noqa: E731
    log(f"{len(y)} samples x {x.shape[1]} ticks; model {args.model}")
    try:
        rows = run_sweep(args.model, x.reshape(x.shape[0], x.shape[1], -1), y, points, args.out,
                         options=_options(args), workers=args.workers, scheduler=args.scheduler,
                         frac_bits=args.frac_bits, output=args.output, seed=args.seed or 0,
                         qat=qat_training(args, x.shape[1]), log=log)
    except SweepError as exc:
        print(f"s2emu sweep: error: {exc}", file=sys.stderr)
        return 2
    keys = {point_key(p) for p in points}
    rows = [r for r in latest(rows) if r.get("key") in keys]
    chosen = choose(rows, args.tolerance)
    front = pareto_front(rows)
    log("Pareto front: " + ", ".join(f"{r['key']} ({r['accuracy']:.3f}, {r['memory_bytes']} B)" for r in front))
    if chosen:
        log(f"chosen: {chosen['key']} accuracy {chosen['accuracy']:.3f}, memory {chosen['memory_bytes']} B")
    failed = [r for r in rows if r.get("status") != "ok"]
    if failed:
        log(f"{len(failed)} point(s) failed: " + "; ".join(f"{r['key']}: {r.get('error')}" for r in failed))
    if args.report:
        html, _ = write_report(rows, args.report, tolerance=args.tolerance,
                               note=f"model {args.model}; {len(y)} samples x {x.shape[1]} ticks; results {args.out}")
        log(f"report: {html}")
    return 0


def _fit(args) -> int:
    from emu.cli import conversion_from_args
    from emu.nir_import import from_nir
    from emu.profile import SemanticsProfile
    from emu.quant.memory import fit_table, format_fit_table

    record = [r.strip() for r in args.record.split(",") if r.strip()]
    if not set(record) <= {"spikes", "v"} or "spikes" not in record:
        print(f"s2emu fit: error: --record takes spikes or spikes,v, got {args.record!r}", file=sys.stderr)
        return 2
    network = from_nir(args.model, conversion_from_args(args))
    profile = SemanticsProfile.chip(**({"weight_bits": args.weight_bits} if args.weight_bits else {}))
    table = fit_table(network, args.ticks, profile, record=record, max_atoms_per_core=dict(args.max_atoms))
    print(json.dumps(table, indent=1) if args.json else format_fit_table(table))
    return 0


def register(sub) -> None:
    from emu.chip import _atoms
    from emu.cli import add_conversion_args

    f = sub.add_parser("fit", help="per-population chip memory: synapses, state, recording, PEs, chips, max ticks",
                       description="Memory of MODEL on SpiNNaker2 PEs (emu.chip.ChipBudget model): bytes of synapse "
                                   "rows, neuron state and recording per population, PEs and chips needed, and the "
                                   "longest run whose recording fits.")
    f.add_argument("model", type=Path, help="NIR file")
    f.add_argument("--ticks", type=int, help="ticks to run (recording bytes and whether it fits)")
    f.add_argument("--record", default="spikes", help="spikes or spikes,v")
    f.add_argument("--weight-bits", type=int, help="weight bits incl. sign (default 8)")
    f.add_argument("--max-atoms", type=_atoms, action="append", default=[], metavar="POP=N",
                   help="neurons per PE of a population; repeatable")
    f.add_argument("--json", action="store_true", help="print the table as JSON")
    add_conversion_args(f)
    f.set_defaults(handler=_fit)

    s = sub.add_parser("sweep", help="precision grid (method x weight bits x membrane bits x rounding) on the "
                                     "emulator",
                       description=__doc__.split("\n\n")[0])
    s.add_argument("model", type=Path, help="float NIR file")
    d = s.add_mutually_exclusive_group()
    d.add_argument("--data", help="DVSGesture root (its test split) or an .npz with inputs (B,T,...) and labels")
    d.add_argument("--synthetic", type=int, help="N synthetic DVS-gesture test samples")
    s.add_argument("--ticks", type=int, help="ticks per sample (default: input length; 300 for gesture data)")
    s.add_argument("--weight-bits", type=_ints, default=[8, 6, 4])
    s.add_argument("--membrane-bits", type=_ints, default=[16, 24, 32])
    s.add_argument("--rounding", type=_names(ROUNDINGS, "rounding"), default=list(ROUNDINGS))
    s.add_argument("--method", type=_names(METHODS, "method"), default=["ptq"],
                   help="ptq (post-training scale) and/or qat (fine-tuned with chip weights), e.g. ptq,qat")
    t = s.add_mutually_exclusive_group()
    t.add_argument("--train-data", help="qat: DVSGesture root whose training split fine-tunes the model")
    t.add_argument("--train-synthetic", type=int, metavar="N", help="qat: fine-tune on N synthetic training samples")
    s.add_argument("--qat-epochs", type=int, default=2, help="qat: fine-tuning epochs per weight-bit count (2)")
    s.add_argument("--qat-lr", type=float, default=1e-3, help="qat: Adam learning rate of the fine-tuning (1e-3)")
    s.add_argument("--frac-bits", type=int, help="membrane fraction bits (default: from the largest threshold)")
    s.add_argument("--output", help="output population (default: the last one)")
    s.add_argument("--seed", type=int, help="seed of stochastic rounding")
    s.add_argument("--tolerance", type=float, default=0.01, help="accuracy tolerance of the chosen point (0.01)")
    s.add_argument("--workers", type=int, default=2, help="local worker processes (0: in this process)")
    s.add_argument("--scheduler", help="dask.distributed scheduler address (optional extra [sweep])")
    s.add_argument("--out", required=True, type=Path, help="RESULTS.jsonl (appended; existing points skipped)")
    s.add_argument("--report", type=Path, help="REPORT.html")
    add_conversion_args(s)
    s.set_defaults(handler=_sweep)


def weight_error(w: np.ndarray, bits: int, rounding: str = "truncate") -> dict:
    """Reconstruction error of PTQ weights: scale ``wmax / max|w|``, integer weights, back to float.

    Returns ``mean`` and ``max`` absolute error and ``bound`` (1/scale for
    truncation, 0.5/scale for nearest), the worst case a grid of that step allows.
    """
    from emu.numerics import quantize_weights
    from emu.profile import SemanticsProfile

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
