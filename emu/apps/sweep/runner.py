"""Running a sweep: the points not yet done, on local worker processes or a dask cluster."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np

from emu.apps.demo import load_test_set
from emu.nir_import import ConversionOptions, from_nir, read_nir
from emu.parallel import parallel_map
from emu.timing import depth
from validate.conversion_warnings import warn

from emu.chip.manifest import sha256_file
from emu.outputs import exclusive, kept
from emu.schema import SWEEP_DATA, check_file

from .points import evaluate_point, output_of, unquantized_run
from .qat import QatTraining, SweepError, conversion_of, train_missing_qat

from .results import FORMAT, VERSION, append_result, check_resume, digest, point_key, read_results, repair, \
    settings_key


def _failed(task: dict, message: str) -> dict:
    """The row of a point whose worker process or dask task failed: recorded, the sweep goes on."""
    p = task["point"]
    return dict(p, key=point_key(p), status="error", error=message)


def run_sweep(model, inputs: np.ndarray, labels: np.ndarray, points: Sequence[dict], out, *,
              options: dict, ticks: Optional[int] = None, workers: int = 2, scheduler: Optional[str] = None,
              frac_bits: Optional[int] = None, output: Optional[str] = None, seed: int = 0,
              qat: Optional[QatTraining] = None, evaluate: Callable[[dict], dict] = evaluate_point,
              log: Callable[[str], None] = lambda s: None, base_profile: Optional[dict] = None) -> List[dict]:
    """Evaluate the ``points`` not yet ``ok`` in ``out``; return every row of ``out`` afterwards.

    ``options``: conversion options of the ptq method (qat: see :func:`conversion_of`;
    its percentile is ``options["scale_percentile"]``). ``qat``: the training of the
    qat method, needed when a qat point's weight-bit count has no trained graph
    (:func:`train_missing_qat`). ``workers``: local worker processes (0: in this
    process). ``scheduler``: a dask.distributed scheduler address instead. ``base_profile``: a
    calibrated profile's fields that every point varies (:func:`~.points.point_profile`).
    ``evaluate`` must be picklable (module-level) for worker processes.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(out):
        return _run_locked(model, inputs, labels, points, out, options, ticks, workers, scheduler, frac_bits, output,
                           seed, qat, evaluate, log, base_profile)


def _run_locked(model, inputs, labels, points, out: Path, options, ticks, workers, scheduler, frac_bits, output, seed,
                qat, evaluate, log, base_profile) -> List[dict]:
    """:func:`run_sweep` while this process alone writes ``out``."""
    repair(out)
    inputs, labels = np.asarray(inputs), np.asarray(labels)
    settings = sweep_settings(model, inputs, labels, ticks, options, frac_bits, output, seed,
                              qat.recipe(options.get("scale_percentile")) if qat is not None else None, base_profile)
    rows = read_results(out)
    check_resume(rows, settings, out)
    done = {r["key"] for r in rows if r.get("status") == "ok"}
    todo = [p for p in points if point_key(p) not in done]
    log(f"{len(points)} points, {len(points) - len(todo)} already in {out}, {len(todo)} to run")
    stamp = dict(settings=settings, settings_key=settings_key(settings))
    appended = [0]
    if todo:
        failures = train_missing_qat(model, [p["weight_bits"] for p in todo if p["method"] == "qat"], out, options,
                                     qat, log)
        untrained = [p for p in todo if p["method"] == "qat" and p["weight_bits"] in failures]
        for p in untrained:
            _record(out, dict(p, key=point_key(p), status="error", **failures[p["weight_bits"]], **stamp), log, appended)
        todo = [p for p in todo if p not in untrained]
        # the chip answers depth ticks after its input: run that many extra silent ticks
        network = from_nir(read_nir(model), ConversionOptions(**options))
        check_labels(labels, network, output, model)
        run_ticks = (ticks or inputs.shape[1]) + depth(network)
        packed, shapes, _, _ = unquantized_run(model, options, inputs, run_ticks, base_profile)
        tasks = [dict(point=p, **conversion_of(p, model, options, out), inputs=inputs, labels=labels,
                      ticks=run_ticks, reference=packed, reference_shapes=shapes, frac_bits=frac_bits,
                      output=output, seed=seed, base_profile=base_profile) for p in todo]
        for row in parallel_map(evaluate, tasks, workers=workers, scheduler=scheduler, ordered=False,
                                on_error=_failed):
            _record(out, dict(row, **stamp), log, appended)
    return read_results(out)


def sweep_settings(model, inputs, labels, ticks, options, frac_bits, output, seed, qat_recipe,
                   base_profile=None) -> dict:
    """Everything that decides a sweep row besides its point (module doc of :mod:`.results`); a
    calibrated base profile (with its file and hash) only when there is one."""
    settings = dict(format=FORMAT, version=VERSION, model_sha256=sha256_file(model),
                    data_sha256=digest(inputs, labels), samples=int(len(labels)), ticks=int(ticks or inputs.shape[1]),
                    options=dict(sorted(options.items())), frac_bits=frac_bits, output=output, seed=int(seed),
                    qat=qat_recipe)
    if base_profile:
        settings["base_profile"] = dict(sorted(base_profile.items()))
    return settings


def check_labels(labels: np.ndarray, network, output: Optional[str], source) -> None:
    """Every label a class the output population can answer (one neuron per class)."""
    try:
        classes = network.populations[output_of(network, output)].size
    except KeyError as exc:
        raise SweepError(f"--output {output}: {exc.args[0]}") from None
    bad = labels[(labels < 0) | (labels >= classes)]
    if bad.size:
        raise SweepError(f"label {int(bad[0])}: {source} classifies {classes} classes (0..{classes - 1}) by its "
                         f"output population's spike counts; {bad.size} label(s) are outside")


def _record(out, row: dict, log: Callable[[str], None], appended: List[int]) -> None:
    append_result(out, row)
    appended[0] += 1
    kept(out, f"holds every finished point ({appended[0]} new; run again to resume)")
    warn([f"{row['key']}: {line}" for line in row.get("warnings", [])])
    if row.get("status") == "ok":
        log(f"  {row['key']}: accuracy {row['accuracy']:.3f}, spike F1 {row['spike_f1']:.3f}, "
            f"memory {row['memory_bytes']} B, clipped {row['clipped_weights']}, {row['seconds']} s")
    else:
        log(f"  {row['key']}: FAILED {row.get('error')}")


def load_data(data, synthetic: Optional[int], ticks: Optional[int], out):
    """(inputs (B, T, ...) bool, labels) from ``data`` (a DVSGesture root, or an .npz with arrays
    inputs and labels) or ``synthetic`` DVS-gesture test samples written beside the results ``out``."""
    if data and str(data).endswith(".npz"):
        try:
            with open(data, "rb") as f, np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as exc:  # noqa: BLE001  (zipfile and numpy's header parser raise many types)
            raise SweepError(f"{data}: not a readable .npz of inputs and labels ({type(exc).__name__}: {exc})") from None
        check_file(arrays, SWEEP_DATA, str(data), SweepError)
        x, y = arrays["inputs"], arrays["labels"]
        if x.dtype != bool and not np.isin(x, (0, 1)).all():
            raise SweepError(f"{data}: inputs: spikes must be 0 or 1")
        x = x.astype(bool)
        if ticks:
            x = x[:, :ticks]
        return x, y.astype(np.int64)
    per_class = 1 if data else max(1, math.ceil(synthetic / 11))
    work = Path(str(out) + ".data")
    x, y = load_test_set(str(data) if data else None, work, per_class, ticks or 300)
    if synthetic:
        x, y = x[:synthetic], y[:synthetic]
    return x, y
