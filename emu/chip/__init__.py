"""On-chip round trip: run a NIR model on SpiNNaker2 with the same options the emulator used.

Three pieces, used by ``s2emu chip-script``, ``s2emu chip-run`` and ``s2emu validate --chip``:

* :func:`write_chip_script` writes a self-contained Python script for the host
  attached to the board. It embeds the NIR file (zlib + base64, checked against
  its sha256 before the run) and the input spikes as the emulator binned them
  (``{population: {neuron: [ticks]}}``), converts with py-spinnaker2's
  ``s2_nir.from_nir`` under a ``ConversionConfig`` that carries our
  :class:`~emu.nir_import.ConversionOptions`, runs ``N`` ticks on
  ``hardware.SpiNNaker2Chip(eth_ip=...)`` (``--eth-ip`` on the script's command
  line) or on py-spinnaker2's brian2 backend, and saves spikes and voltages of
  every population with a *manifest*.
* :func:`check_manifest` / :func:`load_chip_recording` refuse a recording that was
  made from another model file, another input file, other options or another
  tick count (:class:`ManifestMismatch` names every field that differs).
* :func:`run_on_backend` does the same run in this process when py-spinnaker2 is
  importable here (:class:`ChipBackendUnavailable` with the install
  instructions otherwise).

Modules: :mod:`.host` (the self-contained functions a script embeds and
:func:`run_on_backend` calls in-process), :mod:`.manifest` (what a recording was
made from, checked), :mod:`.budget` (THE memory model: ``s2emu fit``, warnings,
the sweep's memory cost), :mod:`.job` (a run prepared: conversion, binned input,
checks; the in-process backend) and :mod:`.script` (the generated script).

**Mapping of the options** (py-spinnaker2 branch ``py-spinnaker2_nir``,
``spinnaker2/s2_nir.py``: ``ConversionConfig(dt, output_record, conn_delay,
scale_weights, integrator, reset)``, ``IntegratorMethod.FORWARD`` /
``EXPONENTIAL``, ``ResetMethod.SUBTRACT`` / ``ZERO``):

=====================  =====================================================
ours                   theirs
=====================  =====================================================
dt                     ``dt``
integrator             ``integrator`` = ``IntegratorMethod.FORWARD`` / ``EXPONENTIAL``
reset (subtract/zero)  ``reset`` = ``ResetMethod.SUBTRACT`` / ``ZERO``
conn_delay             ``conn_delay``
weight_scale None      ``scale_weights=False``
weight_scale "auto"    ``scale_weights=True`` (their rule is 127 / max|W| per population,
                       so only with weight_max 127 and no scale_percentile)
any other scaling      ``scale_weights=False`` and the NIR graph is pre-scaled on the host
                       by our per-population w_scale: weights and biases of the weight
                       nodes into a population, its v_threshold and v_leak (this is what
                       the NIR paper's SpiNNaker2 script does by hand; the chip units are
                       the same up to float rounding of the products)
record                 ``output_record``, and ``Population.record`` of every non-input
                       population (their converter records only populations that feed
                       a NIR Output node)
=====================  =====================================================

:func:`fit_warnings` estimates, before a run, what will not fit a chip (memory
model in :mod:`.budget`).
"""
from emu.chip.budget import ChipBudget, chip_model_of, fit_table, fit_warnings, format_fit_table
from emu.chip.host import INSTALL_HINT, host_code_sha256, host_source
from emu.chip.job import ChipBackendUnavailable, ChipJob, prepare_chip_job, run_on_backend
from emu.chip.manifest import ChipScriptError, ManifestMismatch, check_manifest, chip_options, load_chip_recording
from emu.chip.script import render_chip_script, write_chip_script

__all__ = ["INSTALL_HINT", "ChipBackendUnavailable", "ChipBudget", "ChipJob", "ChipScriptError", "ManifestMismatch",
           "check_manifest", "chip_model_of", "chip_options", "fit_table", "fit_warnings", "format_fit_table",
           "host_code_sha256", "host_source", "load_chip_recording", "prepare_chip_job", "render_chip_script",
           "run_on_backend", "write_chip_script"]
