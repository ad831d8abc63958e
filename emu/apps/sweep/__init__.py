"""``s2emu sweep``: a precision grid of a float model on the emulator.

A sweep point is (method, weight_bits, membrane_bits, rounding). Methods:

* ``ptq``: the float model converted with ``weight_max = 2**(weight_bits-1) - 1``
  (per-population scale: ``weight_scale="auto"`` with ``scale_percentile``);
* ``qat``: per weight-bit count W, once, in the parent process before the points
  are dispatched: the float model loaded into snnTorch
  (:func:`emu.apps.gesture.export.from_nir`), wrapped by
  :func:`emu.apps.gesture.qat.quantization_aware` with W bits, the same percentile as
  ptq's scale (so both clip the same tail of |W|) and the profile's weight
  rounding (truncation), fine-tuned by :func:`emu.apps.gesture.train.train` on a
  training split and exported by :func:`emu.apps.gesture.qat.export_integer` to an
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
``[sweep]``), both through :func:`emu.parallel.parallel_map`, the mapper that
``attribute``, ``validate --inputs`` and ``demo`` use for their batches of samples;
a point whose worker dies is an ``error`` row. A missing dask or an unreachable
scheduler is a one-line error before any point runs.
"""
from .points import evaluate_point, weight_error
from .qat import QatTraining, SweepError, qat_model_path
from .report import choose, pareto_front, write_report
from .results import METHODS, ROUNDINGS, grid, latest, point_key, read_results
from .runner import load_data, run_sweep

__all__ = ["METHODS", "ROUNDINGS", "QatTraining", "SweepError", "choose", "evaluate_point", "grid", "latest",
           "load_data", "pareto_front", "point_key", "qat_model_path", "read_results", "run_sweep", "weight_error",
           "write_report"]
