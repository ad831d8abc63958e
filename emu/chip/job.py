"""A chip run's job: the model converted as the emulator converts it, the input binned, the
chip's constraints checked and warnings collected; and the same run in this process
through py-spinnaker2 when it is installed here (its brian2 backend or a board).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from emu.chip.budget import ChipBudget, fit_warnings
from emu.chip.host import INSTALL_HINT, build_manifest, host_code_sha256, run_with_spinnaker2, save_chip_recording, \
    spikes_digest
from emu.chip.manifest import ChipScriptError, chip_options, generator, sha256_file
from emu.inputs import normalize_inputs
from emu.errors import UserError
from emu.network import Network
from emu.nir_import import ConversionOptions, from_nir
from emu.numerics import weight_bits
from emu.profile import SemanticsProfile
from emu.spike_dicts import from_spike_dict
from emu.spike_io import read_input

RECORD_CHOICES = ("spikes", "spikes,v")


class ChipBackendUnavailable(UserError):
    """py-spinnaker2 (or the backend it needs) cannot be imported here; the message says how to get it."""


@dataclass
class ChipJob:
    """Everything a chip run is made from: model, binned input, options, tick count, warnings."""

    model_path: Path
    model_sha256: str
    input_file: Optional[str]
    input_sha256: Optional[str]
    input_spikes: Dict[str, Dict[str, List[int]]]
    input_spikes_sha256: str
    sample: int
    options: dict
    ticks: int
    record: List[str]
    network: Network
    prescale: Optional[Dict[str, float]]
    max_atoms_per_core: Dict[str, int]
    warnings: List[str]
    #: the calibrated profile file the emulator side uses (path, sha256): recorded in the manifest,
    #: not applied to the board, whose semantics cannot be chosen
    profile_file: Optional[Dict[str, str]] = None


def _prescale_for(network: Network, options: dict) -> Optional[Dict[str, float]]:
    """Per-population weight scales to apply to the graph when ConversionConfig cannot express ours."""
    scale = options["weight_scale"]
    if scale is None or isinstance(scale, (int, float)):
        return None  # nothing, or one number the host applies to every population
    if options["weight_max"] == 127 and options.get("scale_percentile") is None:
        return None  # scale_weights=True is exactly this rule
    per_pop = (network.meta.get("conversion") or {}).get("weight_scale_per_population") or {}
    return {n: float(s) for n, s in per_pop.items() if network.populations[n].model != "input"}


def prepare_chip_job(model_path, input, ticks: int, options: Optional[ConversionOptions] = None,
                     reset: str = "subtract", record: Sequence[str] = ("spikes",), sample: int = 0,
                     profile: Optional[SemanticsProfile] = None, budget: Optional[ChipBudget] = None,
                     max_atoms_per_core: Optional[Mapping[str, int]] = None,
                     profile_file: Optional[Mapping[str, str]] = None) -> ChipJob:
    """Convert the model as the emulator does, bin the input, check chip constraints, collect warnings.

    ``input``: an input file (anything :func:`emu.io.read_input` reads) or
    rasters ``{input population: (T, N)}`` (then the manifest has no input hash).
    Raises :class:`ChipScriptError` for what cannot run on the chip.
    """
    options = options or ConversionOptions()
    opts = chip_options(options, reset)
    record = list(record)
    if record not in (["spikes"], ["spikes", "v"]):
        raise ChipScriptError(f"record must be spikes or spikes,v (spikes are always recorded), got {','.join(record)}")
    ticks = int(ticks)
    if ticks <= 0:
        raise ChipScriptError(f"ticks must be > 0, got {ticks}")
    model_path = Path(model_path)
    network = from_nir(model_path, options)
    options = dataclasses.replace(options, dt=network.dt)  # the graph's dt where options left it to it
    opts = chip_options(options, reset)
    conversion = network.meta.get("conversion") or {}
    if conversion.get("unsupported"):
        raise ChipScriptError(f"{model_path}: the chip converter rejects this graph ({'; '.join(conversion['unsupported'])});"
                              f" --allow-unsupported only emulates it")
    li = [n for n, p in network.populations.items() if p.model == "li"]
    if li:
        raise ChipScriptError(f"{model_path}: populations {li} are nir.LI nodes; py-spinnaker2's converter supports "
                              f"LIF, IF and CubaLIF only")
    prescale = _prescale_for(network, opts)
    if prescale:
        posts_of: Dict[str, set] = {}
        for pr in network.projections:  # projection names are the weight node's, or "<weight>-><post>"
            posts_of.setdefault(pr.name.split("->")[0], set()).add(pr.post)
        for wname, posts in posts_of.items():
            factors = {prescale.get(p, 1.0) for p in posts}
            if len(factors) > 1:
                raise ChipScriptError(f"{model_path}: weight node {wname!r} feeds {sorted(posts)} with different weight "
                                      f"scales {sorted(factors)}; py-spinnaker2 cannot express that scaling")
    if isinstance(input, (str, Path)):
        input_path = Path(input)
        rasters, _ = read_input(input_path, network, dt=options.dt, ticks=ticks)
        input_file, input_sha = input_path.name, sha256_file(input_path)
    else:
        rasters, input_file, input_sha = input, None, None
    rasters, _ = normalize_inputs(network, rasters, ticks)
    batch = next(iter(rasters.values())).shape[0]
    if not 0 <= sample < batch:
        raise ChipScriptError(f"sample {sample} is out of range: the input has {batch} sample(s)")
    input_spikes = {}
    for name, r in rasters.items():
        t, k = np.nonzero(r[sample])
        per = {}
        for tick, neuron in zip(t.tolist(), k.tolist()):
            per.setdefault(str(neuron), []).append(tick)
        input_spikes[name] = {key: sorted(v) for key, v in sorted(per.items(), key=lambda kv: int(kv[0]))}
    atoms = {str(k): int(v) for k, v in (max_atoms_per_core or {}).items()}
    if profile is None:  # the integer range auto scaling aims at (weight_max = 2**(bits-1) - 1)
        profile = SemanticsProfile.chip(weight_bits=weight_bits(options.weight_max))
    warnings = fit_warnings(network, ticks, profile, record=record, budget=budget, max_atoms_per_core=atoms,
                            input_rasters={k: v[sample] for k, v in rasters.items()})
    no_delay = sorted(n for n, m in (conversion.get("chip_models") or {}).items() if m.endswith("no_delay"))
    if options.conn_delay and no_delay:
        warnings.append(f"conn_delay={options.conn_delay} (the converter's default) with {no_delay} on model "
                        f"*_no_delay: these models have no extra delay on the chip (docs/semantics.md), so it may not apply it "
                        f"while the emulator does (one tick of lag per connection); py-spinnaker2's NIR examples use "
                        f"--conn-delay 0")
    return ChipJob(model_path=model_path, model_sha256=sha256_file(model_path), input_file=input_file,
                   input_sha256=input_sha, input_spikes=input_spikes, input_spikes_sha256=spikes_digest(input_spikes),
                   sample=int(sample), options=opts, ticks=ticks, record=record, network=network, prescale=prescale,
                   max_atoms_per_core=atoms, warnings=warnings,
                   profile_file=dict(profile_file) if profile_file else None)




# --------------------------------------------------------------------------------------------
# in-process backend
# --------------------------------------------------------------------------------------------


def _import_spinnaker2():
    try:
        import spinnaker2  # noqa: F401
    except ImportError as exc:
        raise ChipBackendUnavailable(f"{INSTALL_HINT} ({type(exc).__name__}: {exc})") from None


def run_on_backend(model_path, input, ticks: int, options: Optional[ConversionOptions] = None,
                   backend: str = "brian2", eth_ip: Optional[str] = None, *, reset: str = "subtract",
                   record: Sequence[str] = ("spikes",), sample: int = 0, out=None,
                   max_atoms_per_core: Optional[Mapping[str, int]] = None, run_kwargs: Optional[dict] = None,
                   profile: Optional[SemanticsProfile] = None, warn=None,
                   profile_file: Optional[Mapping[str, str]] = None):
    """Run the model with py-spinnaker2 in this process; returns a :class:`emu.spikes.Recording`.

    ``backend``: ``brian2`` (py-spinnaker2's brian2 simulation) or ``chip``
    (needs ``eth_ip``). The run uses the same host code as a generated script
    (:func:`run_with_spinnaker2`) and its recording carries the same manifest;
    ``out`` (.json) saves it with :func:`save_chip_recording`. ``warn`` gets each
    :func:`fit_warnings` line (default: ignored). Raises
    :class:`ChipBackendUnavailable` when py-spinnaker2 (or what the backend
    needs) cannot be imported, with the install instructions.
    """
    if backend not in ("brian2", "chip"):
        raise ChipScriptError(f"backend must be 'brian2' or 'chip', got {backend!r}")
    if backend == "chip" and not eth_ip:
        raise ChipScriptError("the chip backend needs the board's IP address (--eth-ip)")
    if out is not None and not str(out).lower().endswith(".json"):
        raise ChipScriptError(f"{out}: a chip recording is saved as .json")
    job = prepare_chip_job(model_path, input, ticks, options, reset, record, sample, profile=profile,
                           max_atoms_per_core=max_atoms_per_core, profile_file=profile_file)
    for line in job.warnings:
        if warn:
            warn(line)
    _import_spinnaker2()
    try:
        spikes, voltages, info = run_with_spinnaker2(job.model_path, job.input_spikes, job.ticks, job.options,
                                                     job.record, backend, eth_ip, job.prescale,
                                                     job.max_atoms_per_core, run_kwargs)
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root in ("spinnaker2", "brian2"):
            hint = INSTALL_HINT if root == "spinnaker2" else "the brian2 backend needs brian2: pip install brian2"
            raise ChipBackendUnavailable(f"cannot import {exc.name}: {hint}") from None
        raise
    info["input_sample"] = job.sample
    info["emulator_profile_file"] = job.profile_file
    manifest = build_manifest(job.model_path.name, job.model_sha256, job.input_file, job.input_sha256,
                              job.input_spikes_sha256, job.options, job.ticks, info,
                              generator("chip-run"), host_code_sha256())
    if out is not None:
        save_chip_recording(spikes, voltages, manifest, out, job.ticks)
    sizes = {n: s for n, s in manifest["population_sizes"].items() if n in spikes}
    meta = {"ticks": job.ticks, "source": f"spinnaker2 {backend} run", "manifest": manifest,
            "inputs": list(manifest.get("input_populations") or [])}
    return from_spike_dict({k: {str(n): t for n, t in d.items()} for k, d in spikes.items()},
                                     v={k: {str(n): t for n, t in d.items()} for k, d in voltages.items()},
                                     ticks=job.ticks, sizes=sizes, meta=meta, source=str(out or f"{backend} run"))


