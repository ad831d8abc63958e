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

**Shared host code.** The functions that run on the host (:func:`run_with_spinnaker2`,
:func:`save_chip_recording`, :func:`build_manifest`, :func:`spikes_digest`,
:func:`spinnaker2_version`) are self-contained (standard library, numpy and nir,
imported inside them). The generated script *embeds their source* with
``inspect.getsource`` at generation time; it never imports spinnaker2-emu, so
the host needs only python, numpy, nir and py-spinnaker2. The manifest carries
``host_code_sha256`` (sha256 of the embedded source) to say which version ran.
:func:`run_on_backend` calls the very same functions in-process.

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
model in :class:`ChipBudget`).
"""
from __future__ import annotations

import argparse
import base64
import dataclasses
import datetime
import hashlib
import inspect
import json
import math
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from emu.network import Network
from emu.nir_import import ConversionOptions
from emu.numerics import weight_bits, weight_max
from emu.profile import SemanticsProfile

INSTALL_HINT = (
    "py-spinnaker2 (import spinnaker2) is not installed here. It is not on PyPI: get it from "
    "https://gitlab.com/spinnaker2/py-spinnaker2 (NIR support is on branch py-spinnaker2_nir): "
    "git clone -b py-spinnaker2_nir https://gitlab.com/spinnaker2/py-spinnaker2.git && "
    "pip install -e py-spinnaker2 . The chip backend also needs the board's host software described "
    "in its README; the brian2 backend needs brian2 (pip install brian2). Without it, "
    "`s2emu chip-script` writes a script to run on the machine that has it."
)

OPTION_FIELDS = ("dt", "integrator", "weight_scale", "weight_max", "scale_percentile", "conn_delay", "reset")
"""The options a chip run is made with (ConversionOptions fields that change the run, and the reset).
``allow_unsupported`` is left out: a graph that needs it cannot run on the chip at all."""

AUTO_ONLY_FIELDS = ("weight_max", "scale_percentile")
"""Options that matter only with ``weight_scale="auto"`` (compared only then)."""

RECORD_CHOICES = ("spikes", "spikes,v")
MANIFEST_FORMAT = "spinnaker2-emu chip manifest 1"


class ChipBackendUnavailable(RuntimeError):
    """py-spinnaker2 (or the backend it needs) cannot be imported here; the message says how to get it."""


class ManifestMismatch(ValueError):
    """A chip recording was made from another model, input, options or tick count.

    ``fields`` lists what differs, e.g. ``["model hash", "option dt", "ticks"]``.
    """

    def __init__(self, message: str, fields: Sequence[str] = ()):
        super().__init__(message)
        self.fields = list(fields)


class ChipScriptError(ValueError):
    """A model, input or option that cannot make a chip run (the message names it)."""


# --------------------------------------------------------------------------------------------
# host-side code: self-contained functions, embedded verbatim in generated scripts
# --------------------------------------------------------------------------------------------


def spikes_digest(spikes):
    """sha256 of a ``{population: {neuron: [ticks]}}`` dict in a canonical JSON form."""
    import hashlib
    import json

    canon = {str(p): {str(int(n)): sorted(int(t) for t in tk) for n, tk in d.items()} for p, d in spikes.items()}
    text = json.dumps(canon, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def spinnaker2_version():
    """Version of the importable py-spinnaker2, with the git commit of an editable clone when there is one."""
    import importlib.metadata as md
    import os
    import subprocess

    import spinnaker2

    version = None
    for dist in ("spinnaker2", "py-spinnaker2", "py_spinnaker2"):
        try:
            version = md.version(dist)
            break
        except md.PackageNotFoundError:
            continue
    version = version or getattr(spinnaker2, "__version__", None) or "unknown"
    where = getattr(spinnaker2, "__file__", None)
    if where:
        pkg = os.path.dirname(os.path.abspath(where))
        try:
            def git(*a):
                return subprocess.run(["git", "-C", pkg, *a], capture_output=True, text=True, timeout=10).stdout.strip()

            top = git("rev-parse", "--show-toplevel")
            # only the clone py-spinnaker2 lives in, not a repository that happens to contain a venv
            if top and os.path.realpath(top) == os.path.realpath(os.path.dirname(pkg)):
                version += f" (git {git('rev-parse', '--abbrev-ref', 'HEAD')} {git('rev-parse', 'HEAD')[:12]})"
        except (OSError, subprocess.SubprocessError):
            pass
    return version


def run_with_spinnaker2(model_path, input_spikes, ticks, options, record=("spikes",), backend="chip",
                        eth_ip=None, prescale=None, max_atoms_per_core=None, run_kwargs=None):
    """Convert ``model_path`` with py-spinnaker2 and run it for ``ticks`` ticks.

    ``input_spikes``: ``{input population: {neuron: [ticks]}}``. ``options``: the
    dict of :data:`OPTION_FIELDS`. ``prescale``: ``{population: w_scale}`` applied
    to the NIR graph when ``ConversionConfig`` cannot express our scaling (a
    number ``weight_scale`` needs none: every population gets it). ``backend``:
    ``chip`` (``hardware.SpiNNaker2Chip(eth_ip=...)``) or ``brian2``.

    Returns ``(spikes, voltages, info)``: ``{population: {neuron: [ticks]}}``
    (input populations as given), ``{population: {neuron: [one value per
    tick]}}`` (chip units) and what was run (the ConversionConfig as given,
    population sizes, py-spinnaker2 version). Raises ModuleNotFoundError when
    py-spinnaker2 (or brian2 for that backend) is missing.
    """
    import datetime

    import nir
    import numpy as np
    from spinnaker2 import s2_nir

    record = [r for r in record]
    if "spikes" not in record or not set(record) <= {"spikes", "v"}:
        raise ValueError(f"record must be ['spikes'] or ['spikes', 'v'], got {record}")
    if backend not in ("chip", "brian2"):
        raise ValueError(f"backend must be 'chip' or 'brian2', got {backend!r}")
    if backend == "chip" and not eth_ip:
        raise ValueError("the chip backend needs the board's IP address (eth_ip / --eth-ip)")
    for name in ("ConversionConfig", "IntegratorMethod", "ResetMethod", "from_nir"):
        if not hasattr(s2_nir, name):
            raise RuntimeError(f"this py-spinnaker2 has no spinnaker2.s2_nir.{name}; install the branch "
                               f"py-spinnaker2_nir of https://gitlab.com/spinnaker2/py-spinnaker2")
    try:
        graph = nir.read(str(model_path), type_check=False)
    except TypeError:  # older nir without type_check
        graph = nir.read(str(model_path))
    try:  # as py-spinnaker2's NIR examples do: make sure every node has its shapes
        graph.infer_types()
        inferred = "ok"
    except Exception as exc:  # noqa: BLE001  (nir raises many types; the stored shapes are used then)
        inferred = f"failed ({type(exc).__name__}: {exc}); stored shapes used"

    scale = options["weight_scale"]
    native_auto = scale == "auto" and not prescale
    if isinstance(scale, (int, float)) and not isinstance(scale, bool) and not prescale:
        prescale = {n: float(scale) for n, node in graph.nodes.items() if isinstance(node, (nir.LIF, nir.IF, nir.CubaLIF))}
    if prescale:
        weight_types = (nir.Affine, nir.Linear, nir.Conv2d)
        for name, node in graph.nodes.items():
            if not isinstance(node, weight_types):
                continue
            posts, stack = set(), [b for a, b in graph.edges if a == name]
            while stack:  # through Flatten nodes to the populations this weight node feeds
                b = stack.pop()
                if isinstance(graph.nodes[b], nir.Flatten):
                    stack.extend(c for a, c in graph.edges if a == b)
                else:
                    posts.add(b)
            factors = {float(prescale.get(p, 1.0)) for p in posts}
            if len(factors) > 1:
                raise ValueError(f"weight node {name!r} feeds populations {sorted(posts)} with different weight "
                                 f"scales {sorted(factors)}; this scaling cannot be expressed on py-spinnaker2")
            s = factors.pop() if factors else 1.0
            if s != 1.0:
                node.weight = np.asarray(node.weight) * s
                if getattr(node, "bias", None) is not None:
                    node.bias = np.asarray(node.bias) * s
        for name, s in prescale.items():
            node = graph.nodes[name]
            node.v_threshold = np.asarray(node.v_threshold) * float(s)
            if getattr(node, "v_leak", None) is not None:
                node.v_leak = np.asarray(node.v_leak) * float(s)

    wanted = dict(
        dt=float(options["dt"]),
        output_record=list(record),
        conn_delay=int(options["conn_delay"]),
        scale_weights=bool(native_auto),
        integrator=(s2_nir.IntegratorMethod.FORWARD if options["integrator"] == "forward"
                    else s2_nir.IntegratorMethod.EXPONENTIAL),
        reset=s2_nir.ResetMethod.ZERO if options["reset"] == "zero" else s2_nir.ResetMethod.SUBTRACT,
    )
    try:
        cfg = s2_nir.ConversionConfig(**wanted)
    except TypeError as exc:
        raise RuntimeError(f"this py-spinnaker2's s2_nir.ConversionConfig does not take the fields "
                           f"{sorted(wanted)} ({exc}); use the branch py-spinnaker2_nir") from None
    net, inp, outp = s2_nir.from_nir(graph, cfg)

    inputs = {}
    for pop in inp:
        given = input_spikes.get(pop.name)
        if given is None and len(inp) == 1 and len(input_spikes) == 1:
            given = next(iter(input_spikes.values()))
        if given is None:
            raise ValueError(f"no input spikes for input population {pop.name!r} (given: {sorted(input_spikes)})")
        spikes = {i: [] for i in range(int(pop.size))}
        for k, tk in given.items():
            spikes[int(k)] = sorted(int(t) for t in tk)
        pop.params = spikes
        inputs[pop.name] = spikes
    is_input = lambda pop: any(pop is p for p in inp)  # noqa: E731
    names = [pop.name for pop in net.populations]
    unknown = sorted(set(max_atoms_per_core or {}) - set(names))
    if unknown:
        raise ValueError(f"max_atoms_per_core names unknown populations {unknown}; populations: {names}")
    for pop in net.populations:
        if not is_input(pop):
            pop.record = list(record)
        if pop.name in (max_atoms_per_core or {}):
            pop.set_max_atoms_per_core(int(max_atoms_per_core[pop.name]))

    if backend == "chip":
        from spinnaker2 import hardware

        hw = hardware.SpiNNaker2Chip(eth_ip=eth_ip)
    else:
        from spinnaker2 import brian2_sim

        hw = brian2_sim.Brian2Backend()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    hw.run(net, int(ticks), **(run_kwargs or {}))
    finished = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")

    spikes_out, voltages_out = dict(inputs), {}
    for pop in net.populations:
        if is_input(pop):
            continue
        spikes_out[pop.name] = {int(k): [int(t) for t in tk] for k, tk in pop.get_spikes().items()}
        if "v" in record:
            voltages_out[pop.name] = {int(k): [float(x) for x in vs] for k, vs in pop.get_voltages().items()}
    info = dict(
        backend=backend,
        eth_ip=eth_ip if backend == "chip" else None,
        s2_conversion_config={k: getattr(v, "value", v) for k, v in wanted.items()},
        prescaled_populations={k: float(v) for k, v in (prescale or {}).items()} or None,
        population_sizes={pop.name: int(pop.size) for pop in net.populations},
        input_populations=[pop.name for pop in inp],
        max_atoms_per_core=dict(max_atoms_per_core or {}) or None,
        run_kwargs=dict(run_kwargs or {}),
        infer_types=inferred,
        record=list(record),
        started_utc=started,
        finished_utc=finished,
        py_spinnaker2_version=spinnaker2_version(),
    )
    return spikes_out, voltages_out, info


def build_manifest(model_file, model_sha256, input_file, input_sha256, input_spikes_sha256, options, ticks,
                   info, generator, host_code_sha256):
    """The manifest saved under ``meta["manifest"]`` of a chip recording (see :func:`check_manifest`)."""
    import platform

    manifest = dict(
        format="spinnaker2-emu chip manifest 1",
        model_file=model_file,
        model_sha256=model_sha256,
        input_file=input_file,
        input_sha256=input_sha256,
        input_spikes_sha256=input_spikes_sha256,
        options=dict(options),
        ticks=int(ticks),
        generator=generator,
        host_code_sha256=host_code_sha256,
        python=platform.python_version(),
    )
    manifest.update(info)
    return manifest


def save_chip_recording(spikes_by_pop, voltages_by_pop, manifest, path, ticks):
    """Write a chip run in the emulator's JSON layout that ``emu.spike_io.load_recording`` reads.

    ``spikes_by_pop``: ``{population: {neuron: [ticks]}}`` as ``get_spikes()``
    returns it; ``voltages_by_pop``: ``{population: {neuron: [one value per
    tick]}}`` as ``get_voltages()`` returns it (non-finite values are stored as
    null, read back as NaN); ``manifest``: saved as ``meta["manifest"]`` (its
    ``population_sizes`` give the neuron counts, else the largest index + 1);
    ``ticks``: the ticks run, saved as ``meta["ticks"]``. Every neuron gets an
    entry (silent ones an empty list). Written atomically (temporary file, then
    rename). Standard library only: generated chip scripts embed this source.
    """
    import json
    import math
    import os
    import tempfile

    path = os.fspath(path)
    if not path.lower().endswith(".json"):
        raise ValueError(f"{path}: a chip recording is saved as .json")
    voltages_by_pop = voltages_by_pop or {}
    orphans = sorted(set(voltages_by_pop) - set(spikes_by_pop))
    if orphans:
        raise ValueError(f"voltages of populations {orphans} come without their spikes")
    sizes = dict((manifest or {}).get("population_sizes") or {})
    populations = {}
    for name, spikes in spikes_by_pop.items():
        volts = voltages_by_pop.get(name)
        indices = [int(k) for k in spikes] + [int(k) for k in (volts or {})]
        size = int(sizes.get(name, max(indices, default=-1) + 1))
        entry = {"size": size, "spikes": {str(i): [] for i in range(size)}}
        for k, tk in spikes.items():
            entry["spikes"][str(int(k))] = sorted(int(t) for t in tk)
        if volts is not None:
            entry["v"] = {str(int(k)): [float(x) if math.isfinite(float(x)) else None for x in vs]
                          for k, vs in sorted(volts.items(), key=lambda kv: int(kv[0]))}
        populations[str(name)] = entry
    meta = {"ticks": int(ticks), "source": "spinnaker2 " + str((manifest or {}).get("backend", "chip")) + " run",
            "manifest": manifest}
    text = json.dumps({"populations": populations, "meta": meta}, allow_nan=False)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


HOST_FUNCTIONS = (spikes_digest, spinnaker2_version, run_with_spinnaker2, build_manifest, save_chip_recording)
"""What a generated script embeds (in this order), via ``inspect.getsource``."""


def host_source() -> str:
    """The source of :data:`HOST_FUNCTIONS`, as generated scripts embed it."""
    return "\n\n".join(inspect.getsource(f).rstrip() + "\n" for f in HOST_FUNCTIONS)


def host_code_sha256() -> str:
    return hashlib.sha256(host_source().encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# options and manifests (project side)
# --------------------------------------------------------------------------------------------


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def chip_options(options: Union[ConversionOptions, Mapping, None] = None, reset: Optional[str] = "subtract") -> dict:
    """Our options as stored in a manifest: the :data:`OPTION_FIELDS` of ``options`` plus ``reset``.

    ``options`` may be a :class:`ConversionOptions` or a mapping (a manifest's
    ``options``); ``reset=None`` leaves the reset out (unless the mapping has it).
    """
    if options is None:
        options = ConversionOptions()
    src = dataclasses.asdict(options) if isinstance(options, ConversionOptions) else dict(options)
    out = {k: src[k] for k in OPTION_FIELDS if k in src}
    if reset is not None:
        if reset not in ("subtract", "zero"):
            raise ChipScriptError(f"reset must be 'subtract' or 'zero', got {reset!r}")
        out["reset"] = reset
    return out


def _short(h) -> str:
    return f"{h[:12]}…" if isinstance(h, str) and len(h) > 12 else repr(h)


def check_manifest(recording_meta: Mapping, model_path=None, input_path=None,
                   options: Union[ConversionOptions, Mapping, None] = None, ticks: Optional[int] = None,
                   reset: Optional[str] = None, sample: Optional[int] = None, source: str = "chip recording") -> dict:
    """Check that a chip recording was made from this model, input, options and tick count.

    ``recording_meta``: the recording's meta (its ``"manifest"`` is checked).
    ``model_path`` / ``input_path``: files whose sha256 must match; ``options``:
    a :class:`ConversionOptions` or a mapping of :data:`OPTION_FIELDS`;
    ``reset``: compared too when given (``ConversionOptions`` has no reset);
    ``ticks``: compared with the manifest and with ``meta["ticks"]``; ``sample``:
    the sample of a batched input file that was run. ``None`` skips a check. ``weight_max`` and ``scale_percentile`` are compared only when
    either side scales with ``"auto"``. Raises :class:`ManifestMismatch` naming
    every field that differs; returns the manifest.
    """
    manifest = (recording_meta or {}).get("manifest")
    if not isinstance(manifest, Mapping):
        raise ManifestMismatch(f"{source}: no manifest (meta['manifest']): it was not written by a chip script "
                               f"or s2emu chip-run, so what it was run with is unknown", ["manifest"])
    problems, fields = [], []

    def differ(field_name, text):
        fields.append(field_name)
        problems.append(f"{field_name}: {text}")

    for what, path, key, file_key in (("model", model_path, "model_sha256", "model_file"),
                                      ("input", input_path, "input_sha256", "input_file")):
        if path is None:
            continue
        actual = sha256_file(path)
        if manifest.get(key) != actual:
            differ(f"{what} hash", f"the recording was made from {what} {manifest.get(file_key)!r} with sha256 "
                                   f"{_short(manifest.get(key))}, but {path} has sha256 {_short(actual)}")
    if options is not None or reset is not None:
        expected = chip_options(options, reset=reset) if options is not None else {"reset": reset}
        recorded = dict(manifest.get("options") or {})
        auto = "auto" in (expected.get("weight_scale"), recorded.get("weight_scale"))
        for k, v in expected.items():
            if k in AUTO_ONLY_FIELDS and not auto:
                continue
            if k not in recorded:
                differ(f"option {k}", f"the recording does not say (expected {v!r})")
            elif recorded[k] != v:
                differ(f"option {k}", f"the recording was made with {k}={recorded[k]!r}, expected {v!r}")
    if ticks is not None:
        for where, value in (("manifest", manifest.get("ticks")), ("recording", (recording_meta or {}).get("ticks"))):
            if value is not None and value != int(ticks):
                differ("ticks", f"the {where} has {value} ticks, expected {int(ticks)}")
                break
    if sample is not None and manifest.get("input_sample", 0) != int(sample):
        differ("input sample", f"the recording ran sample {manifest.get('input_sample', 0)} of the input, "
                               f"expected sample {int(sample)}")
    if problems:
        raise ManifestMismatch(f"{source} does not match what it is compared with: " + "; ".join(problems), fields)
    return dict(manifest)


def load_chip_recording(path, model_path=None, input_path=None,
                        options: Union[ConversionOptions, Mapping, None] = None, ticks: Optional[int] = None,
                        reset: Optional[str] = None, sample: Optional[int] = None):
    """Load a chip recording (:func:`emu.spike_io.load_recording`) and :func:`check_manifest` it."""
    from emu.spike_io import load_recording

    rec = load_recording(path)
    check_manifest(rec.meta, model_path, input_path, options, ticks, reset=reset, sample=sample, source=str(path))
    return rec


# --------------------------------------------------------------------------------------------
# fit warnings
# --------------------------------------------------------------------------------------------


def _default_neurons_per_pe():
    return {"spike_list": 250, "lif_no_delay": 250, "lif": 250, "lif_conv2d": 250, "lif_curr_exp_no_delay": 250}


@dataclass(frozen=True)
class ChipBudget:
    """A simple memory model of one SpiNNaker2 processing element (PE), for warnings only.

    Each PE has ``sram_bytes`` (about 128 kB) of SRAM. ``reserved_bytes`` go to
    program code, stack and buffers (an estimate). The rest holds, for the
    neurons placed on the PE:

    * neuron state: ``neuron_state_bytes`` per neuron (membrane, threshold,
      decay, bias, ... as 32-bit words);
    * synapses: ``synapse_bytes`` (one 32-bit word) per stored (non-zero after
      quantization) dense synapse into the PE's neurons, times pool*pool when a
      SumPool2d is folded in; a conv kernel once per PE at 1 byte per weight;
    * input spikes of a ``spike_list`` source: one 32-bit word per spike plus one
      per tick (an estimate of the spike-list layout);
    * recording, for every tick of the run: spikes at 1 bit per neuron (rounded up
      to 32-bit words) and, when voltages are recorded, ``voltage_bytes`` per
      neuron.

    A population larger than its model's neurons-per-PE limit
    (``max_neurons_per_pe``, 250 by default, changed per population with
    py-spinnaker2's ``set_max_atoms_per_core``) is split over several PEs; a
    chip has ``pes_per_chip`` PEs. These numbers are estimates of the firmware's
    layout, not its exact figures: the warnings say when a run is likely not to
    fit (the SpiNNaker2 DVS-gesture work could record only about 600 ticks on
    chip, for this reason).
    """

    sram_bytes: int = 128 * 1024
    reserved_bytes: int = 32 * 1024
    neuron_state_bytes: int = 32
    synapse_bytes: int = 4
    voltage_bytes: int = 4
    pes_per_chip: int = 152
    max_neurons_per_pe: Mapping[str, int] = field(default_factory=_default_neurons_per_pe)
    default_neurons_per_pe: int = 250

    @property
    def usable_bytes(self) -> int:
        return self.sram_bytes - self.reserved_bytes


def chip_model_of(network: Network, name: str) -> str:
    """The py-spinnaker2 neuron model a population becomes (from the conversion, else by its kind)."""
    pop = network.populations[name]
    if pop.model == "input":
        return "spike_list"
    known = (network.meta.get("conversion") or {}).get("chip_models") or {}
    if name in known:
        return known[name]
    if pop.model == "cuba_lif":
        return "lif_curr_exp_no_delay"
    if any(pr.post == name and pr.kind == "conv2d" for pr in network.projections):
        return "lif_conv2d"
    return "lif_no_delay"


def _kb(n) -> str:
    return f"{n / 1024:.1f} kB"


def fit_warnings(network: Network, ticks: int, profile: Optional[SemanticsProfile] = None, *,
                 record: Sequence[str] = ("spikes",), budget: Optional[ChipBudget] = None,
                 max_atoms_per_core: Optional[Mapping[str, int]] = None,
                 input_rasters: Optional[Mapping[str, np.ndarray]] = None) -> List[str]:
    """Warnings about a run of ``ticks`` ticks that will probably not fit a SpiNNaker2 chip.

    Checks, with the memory model of :class:`ChipBudget`: populations split over
    several PEs (how many), more PEs than a chip has, synapses + state that
    overflow one PE, recordings (``record``: spikes, and v when listed) longer
    than what fits beside them (how many ticks fit), input spike lists that do
    not fit (when ``input_rasters`` are given), and weights outside the integer
    range of the neuron model (``profile.weight_bits``; default int8
    [-127, 127] of ``lif_no_delay`` / ``lif_conv2d``, 4 bits [-15, 15] for the
    ``lif`` model with delays) or that all round to 0. An empty list: nothing
    to warn about.
    """
    from emu.numerics import round_weights
    from emu.quant.memory import fit_table

    budget = budget or ChipBudget()
    profile = profile or SemanticsProfile.chip()
    record = set(record)
    table = fit_table(network, ticks, profile, record=record, budget=budget, max_atoms_per_core=max_atoms_per_core)
    rows = {r["population"]: r for r in table["rows"]}
    out: List[str] = []
    for name, r in rows.items():
        if r["pes"] > 1:  # then neurons_per_pe is the per-PE limit
            out.append(f"population {name!r} ({r['neurons']} neurons, {r['model']}) is larger than "
                       f"{r['neurons_per_pe']} neurons per PE: it is split over {r['pes']} PEs")
    if table["total_pes"] > budget.pes_per_chip:
        out.append(f"the network needs about {table['total_pes']} PEs, but a SpiNNaker2 chip has "
                   f"{budget.pes_per_chip}")

    # weights ---------------------------------------------------------------------------
    for pr in network.projections:
        model = chip_model_of(network, pr.post)
        wmax = profile.weight_max if profile.weight_bits is not None else (15 if model == "lif" else 127)
        kind = {127: f"int8 weights of {model}", 15: "4-bit magnitude + sign weights of the lif model with delays"
                }.get(wmax, f"{weight_bits(wmax)}-bit weights")
        w = pr.weight
        q = round_weights(w, profile.weight_rounding)
        over = int((np.abs(q) > wmax).sum())
        if over:
            out.append(f"projection {pr.label}: {over} of {w.size} weights are outside [-{wmax}, {wmax}] "
                       f"({kind}) after scaling (largest |w| = {float(np.abs(w).max()):.6g}); the chip converter's "
                       f"integer cast would wrap them: use --auto-scale or a smaller --scale")
        elif np.any(w != 0) and not np.any(q != 0):
            out.append(f"projection {pr.label}: every weight rounds to 0 on the chip (largest |w| = "
                       f"{float(np.abs(w).max()):.6g} after scaling): use --auto-scale or a --scale")

    # memory per PE (emu.quant.memory.fit_table) ------------------------------------------
    for name, pop in network.populations.items():
        r = rows[name]
        model, n = r["model"], r["neurons_per_pe"]
        if pop.model == "input":
            if input_rasters is None or name not in input_rasters:
                continue
            raster = np.asarray(input_rasters[name]).reshape(-1, pop.size)
            counts = raster.sum(axis=0)
            worst = max(int(np.add.reduceat(counts, np.arange(0, pop.size, n)).max()), 0) if pop.size else 0
            need = 4 * worst + 4 * int(ticks)
            if need > budget.usable_bytes:
                out.append(f"input population {name!r}: its spike list needs about {_kb(need)} on one PE "
                           f"({worst} spikes on its busiest PE of {n} neurons over {ticks} ticks), more than the "
                           f"{_kb(budget.usable_bytes)} there: fewer ticks or fewer input neurons per PE")
            continue
        syn, state, free, per_tick = r["synapse_bytes"], r["state_bytes"], r["free_bytes"], r["record_bytes_per_tick"]
        what = "spikes and voltages" if "v" in record else "spikes"
        avg_syn = syn / max(n, 1)
        per_neuron_tick = 1 / 8 + (budget.voltage_bytes if "v" in record else 0)
        fit_n = int(budget.usable_bytes // (budget.neuron_state_bytes + avg_syn + int(ticks) * per_neuron_tick))
        fit_n = min(fit_n, n - 1)
        hint = (f"about {fit_n} neurons per PE would fit (set_max_atoms_per_core / --max-atoms {name}={fit_n}, "
                f"{math.ceil(pop.size / fit_n)} PEs)" if fit_n >= 1 else
                "not even one neuron per PE holds that recording")
        if free <= 0:
            out.append(f"population {name!r} ({model}): synapses ({_kb(syn)}) and neuron state ({_kb(state)}) of its "
                       f"{n} neurons per PE exceed the {_kb(budget.usable_bytes)} a PE has for them; {hint}")
            continue
        fit = r["max_ticks"]
        if int(ticks) > fit:
            out.append(f"population {name!r} ({model}): recording {what} for {ticks} ticks needs "
                       f"{_kb(per_tick * int(ticks))} per PE ({n} neurons), but only about {_kb(free)} are left beside "
                       f"synapses and state: about {fit} ticks fit (the SpiNNaker2 DVS-gesture work could record "
                       f"only about 600 ticks on chip for this reason); record fewer ticks"
                       f"{' or no voltages' if 'v' in record else ''}, or {hint}")
    return out


# --------------------------------------------------------------------------------------------
# preparing a run (project side)
# --------------------------------------------------------------------------------------------


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
                     max_atoms_per_core: Optional[Mapping[str, int]] = None) -> ChipJob:
    """Convert the model as the emulator does, bin the input, check chip constraints, collect warnings.

    ``input``: an input file (anything :func:`emu.io.read_input` reads) or
    rasters ``{input population: (T, N)}`` (then the manifest has no input hash).
    Raises :class:`ChipScriptError` for what cannot run on the chip.
    """
    from emu.engine import normalize_inputs
    from emu.spike_io import read_input
    from emu.nir_import import from_nir

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
    unknown = sorted(set(atoms) - set(network.populations))
    if unknown:
        raise ChipScriptError(f"--max-atoms names unknown populations {unknown}; populations: {list(network.populations)}")
    if profile is None:  # the integer range auto scaling aims at (weight_max = 2**(bits-1) - 1)
        profile = SemanticsProfile.chip(weight_bits=weight_bits(options.weight_max))
    warnings = fit_warnings(network, ticks, profile, record=record, budget=budget, max_atoms_per_core=atoms,
                            input_rasters={k: v[sample] for k, v in rasters.items()})
    no_delay = sorted(n for n, m in (conversion.get("chip_models") or {}).items() if m.endswith("no_delay"))
    if options.conn_delay and no_delay:
        warnings.append(f"conn_delay={options.conn_delay} (the converter's default) with {no_delay} on model "
                        f"*_no_delay: SPINNAKER2.md §1 gives these models no extra delay, so the chip may not apply it "
                        f"while the emulator does (one tick of lag per connection); py-spinnaker2's NIR examples use "
                        f"--conn-delay 0")
    return ChipJob(model_path=model_path, model_sha256=sha256_file(model_path), input_file=input_file,
                   input_sha256=input_sha, input_spikes=input_spikes, input_spikes_sha256=spikes_digest(input_spikes),
                   sample=int(sample), options=opts, ticks=ticks, record=record, network=network, prescale=prescale,
                   max_atoms_per_core=atoms, warnings=warnings)


# --------------------------------------------------------------------------------------------
# the generated script
# --------------------------------------------------------------------------------------------


def _generator() -> str:
    try:
        from importlib.metadata import version

        v = version("spinnaker2-emu")
    except Exception:  # noqa: BLE001  (not installed: a source checkout)
        v = "source checkout"
    return f"spinnaker2-emu {v} (s2emu chip-script)"


def _wrapped_literal(text: str, width: int = 100) -> str:
    if not text:
        return '""'
    return "(\n" + "\n".join(f'    "{text[i:i + width]}"' for i in range(0, len(text), width)) + "\n)"


def _pack(data: bytes) -> str:
    return base64.b64encode(zlib.compress(data, 9)).decode("ascii")


def render_chip_script(job: ChipJob, sys_tick_in_s: Optional[float] = None, default_out: Optional[str] = None,
                       script_name: str = "run_on_chip.py") -> str:
    """The text of the script (see :func:`write_chip_script`)."""
    model_bytes = job.model_path.read_bytes()
    input_json = json.dumps(job.input_spikes, sort_keys=True, separators=(",", ":")).encode("utf-8")
    default_out = default_out or f"{job.model_path.stem}_chip.json"
    sizes = {n: p.size for n, p in job.network.populations.items()}
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    src = host_source()
    opts_line = ", ".join(f"{k}={v!r}" for k, v in job.options.items())
    header = f'''#!/usr/bin/env python3
# Run a NIR model on SpiNNaker2 and save the recording for `s2emu validate --chip`.
#
# Generated by {_generator()} on {created}.
# model: {job.model_path.name!r} sha256 {job.model_sha256}
# input: {job.input_file!r} sha256 {job.input_sha256}
# ticks: {job.ticks}; record: {",".join(job.record)}
# conversion options: {opts_line}
#
# Needs python 3, numpy, nir and py-spinnaker2 (not spinnaker2-emu). py-spinnaker2 is not on
# PyPI: git clone -b py-spinnaker2_nir https://gitlab.com/spinnaker2/py-spinnaker2.git &&
# pip install -e py-spinnaker2
#
#   python {{script}} --eth-ip 192.168.1.25 [--out {default_out}]     # on the chip
#   python {{script}} --backend brian2                                # py-spinnaker2's brian2 backend
#   python {{script}} --dry-run                                       # check the embedded data only
#
# The functions below `# --- shared host code` are spinnaker2-emu's emu/chip.py functions,
# embedded verbatim with inspect.getsource (sha256 in HOST_CODE_SHA256); edit nothing here:
# regenerate with `s2emu chip-script` instead.
'''.replace("{script}", script_name)
    body = f'''from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import tempfile
import zlib

MODEL_FILE = {job.model_path.name!r}
MODEL_SHA256 = {job.model_sha256!r}
INPUT_FILE = {job.input_file!r}
INPUT_SHA256 = {job.input_sha256!r}
INPUT_SPIKES_SHA256 = {job.input_spikes_sha256!r}
INPUT_SAMPLE = {job.sample!r}
TICKS = {job.ticks!r}
OPTIONS = {job.options!r}
RECORD = {job.record!r}
POPULATION_SIZES = {sizes!r}
PRESCALE = {job.prescale!r}
MAX_ATOMS_PER_CORE = {job.max_atoms_per_core!r}
SYS_TICK_IN_S = {sys_tick_in_s!r}
DEFAULT_OUT = {default_out!r}
GENERATOR = {_generator()!r}
HOST_CODE_SHA256 = {host_code_sha256()!r}
INSTALL_HINT = {INSTALL_HINT!r}

# zlib + base64 of the NIR file, byte for byte
MODEL_DATA = {_wrapped_literal(_pack(model_bytes))}

# zlib + base64 of the input spikes as the emulator binned them: {{population: {{neuron: [ticks]}}}}
INPUT_DATA = {_wrapped_literal(_pack(input_json))}


# --- shared host code (emu/chip.py) ---------------------------------------------------------
{src}
# --- end of shared host code ----------------------------------------------------------------


def _unpack(data):
    return zlib.decompress(base64.b64decode(data))


def main(argv=None):
    ap = argparse.ArgumentParser(description=f"Run {{MODEL_FILE}} for {{TICKS}} ticks on SpiNNaker2 and save spikes"
                                             f" (and voltages) with a manifest for s2emu validate --chip.")
    ap.add_argument("--eth-ip", help="IP address of the SpiNNaker2 board (needed by --backend chip)")
    ap.add_argument("--backend", choices=("chip", "brian2"), default="chip",
                    help="chip (default) or py-spinnaker2's brian2 simulation")
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"recording to write (.json, default {{DEFAULT_OUT}})")
    ap.add_argument("--sys-tick-in-s", type=float, default=SYS_TICK_IN_S,
                    help="wall-clock length of one tick on the chip (py-spinnaker2's default when not given)")
    ap.add_argument("--dry-run", action="store_true", help="check the embedded model and input, print the plan, stop")
    args = ap.parse_args(argv)
    if args.backend == "chip" and not args.eth_ip and not args.dry_run:
        ap.error("--eth-ip is required for --backend chip (or use --backend brian2)")
    if not args.out.lower().endswith(".json"):
        ap.error("--out must end in .json")
    model_bytes = _unpack(MODEL_DATA)
    if hashlib.sha256(model_bytes).hexdigest() != MODEL_SHA256:
        print("error: the embedded model does not match its sha256; regenerate this script", file=sys.stderr)
        return 2
    input_spikes = json.loads(_unpack(INPUT_DATA).decode("utf-8"))
    if spikes_digest(input_spikes) != INPUT_SPIKES_SHA256:
        print("error: the embedded input spikes do not match their sha256; regenerate this script", file=sys.stderr)
        return 2
    n_in = sum(len(t) for d in input_spikes.values() for t in d.values())
    print(f"model {{MODEL_FILE}} ({{len(model_bytes)}} bytes), {{n_in}} input spikes, {{TICKS}} ticks, "
          f"options {{OPTIONS}}, record {{RECORD}}, backend {{args.backend}}")
    if args.dry_run:
        return 0
    run_kwargs = {{}} if args.sys_tick_in_s is None else {{"sys_tick_in_s": args.sys_tick_in_s}}
    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, MODEL_FILE)
        with open(model_path, "wb") as f:
            f.write(model_bytes)
        try:
            spikes, voltages, info = run_with_spinnaker2(
                model_path, input_spikes, TICKS, OPTIONS, RECORD, backend=args.backend, eth_ip=args.eth_ip,
                prescale=PRESCALE, max_atoms_per_core=MAX_ATOMS_PER_CORE, run_kwargs=run_kwargs)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            print(f"error: cannot import {{exc.name or exc}}", file=sys.stderr)
            if missing == "spinnaker2":
                print(INSTALL_HINT, file=sys.stderr)
            return 2
    info["input_sample"] = INPUT_SAMPLE
    manifest = build_manifest(MODEL_FILE, MODEL_SHA256, INPUT_FILE, INPUT_SHA256, INPUT_SPIKES_SHA256, OPTIONS,
                              TICKS, info, GENERATOR, HOST_CODE_SHA256)
    save_chip_recording(spikes, voltages, manifest, args.out, TICKS)
    for name, size in POPULATION_SIZES.items():
        got = info["population_sizes"].get(name)
        if got != size:
            print(f"warning: population {{name!r}} has {{got}} neurons in py-spinnaker2 but {{size}} in the emulator",
                  file=sys.stderr)
    counts = ", ".join(f"{{p}}: {{sum(len(t) for t in s.values())}}" for p, s in spikes.items())
    print(f"ran {{TICKS}} ticks on {{args.backend}} (py-spinnaker2 {{info['py_spinnaker2_version']}}); spikes {{counts}}; "
          f"wrote {{args.out}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''
    return header + body


def write_chip_script(job: ChipJob, out, sys_tick_in_s: Optional[float] = None,
                      default_out: Optional[str] = None) -> Path:
    """Write the host script for ``job`` to ``out`` (atomically, executable); returns the path.

    The script embeds the model, the binned input spikes, the options, the tick
    count and the shared host code (module doc); its command line takes
    ``--eth-ip``, ``--backend chip|brian2``, ``--out``, ``--sys-tick-in-s`` and
    ``--dry-run``.
    """
    from emu.spike_io import atomic_write

    out = Path(out)
    if out.suffix != ".py":
        raise ChipScriptError(f"{out}: the script's name must end in .py")
    text = render_chip_script(job, sys_tick_in_s, default_out, out.name)
    compile(text, str(out), "exec")  # never write a script that does not parse
    atomic_write(out, text)
    out.chmod(out.stat().st_mode | 0o111)
    return out


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
                   profile: Optional[SemanticsProfile] = None, warn=None):
    """Run the model with py-spinnaker2 in this process; returns a :class:`emu.spikes.Recording`.

    ``backend``: ``brian2`` (py-spinnaker2's brian2 simulation) or ``chip``
    (needs ``eth_ip``). The run uses the same host code as a generated script
    (:func:`run_with_spinnaker2`) and its recording carries the same manifest;
    ``out`` (.json) saves it with :func:`save_chip_recording`. ``warn`` gets each
    :func:`fit_warnings` line (default: ignored). Raises
    :class:`ChipBackendUnavailable` when py-spinnaker2 (or what the backend
    needs) cannot be imported, with the install instructions.
    """
    from emu.spike_dicts import from_spike_dict as recording_from_spike_dict

    if backend not in ("brian2", "chip"):
        raise ChipScriptError(f"backend must be 'brian2' or 'chip', got {backend!r}")
    if backend == "chip" and not eth_ip:
        raise ChipScriptError("the chip backend needs the board's IP address (--eth-ip)")
    if out is not None and not str(out).lower().endswith(".json"):
        raise ChipScriptError(f"{out}: a chip recording is saved as .json")
    job = prepare_chip_job(model_path, input, ticks, options, reset, record, sample, profile=profile,
                           max_atoms_per_core=max_atoms_per_core)
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
    manifest = build_manifest(job.model_path.name, job.model_sha256, job.input_file, job.input_sha256,
                              job.input_spikes_sha256, job.options, job.ticks, info,
                              _generator().replace("chip-script", "chip-run"), host_code_sha256())
    if out is not None:
        save_chip_recording(spikes, voltages, manifest, out, job.ticks)
    sizes = {n: s for n, s in manifest["population_sizes"].items() if n in spikes}
    meta = {"ticks": job.ticks, "source": f"spinnaker2 {backend} run", "manifest": manifest}
    return recording_from_spike_dict({k: {str(n): t for n, t in d.items()} for k, d in spikes.items()},
                                     v={k: {str(n): t for n, t in d.items()} for k, d in voltages.items()},
                                     ticks=job.ticks, sizes=sizes, meta=meta, source=str(out or f"{backend} run"))


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _atoms(text: str):
    name, sep, n = text.rpartition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected POPULATION=N, got {text!r}")
    return name, _positive_int(n)


def _add_chip_args(p: argparse.ArgumentParser) -> None:
    from emu.cli import add_conversion_args

    p.add_argument("model", type=Path, help="NIR file")
    p.add_argument("--input", required=True, type=Path, help="spike JSON, raster .npy/.npz or events (x,y,p,t)")
    p.add_argument("--ticks", required=True, type=_positive_int, help="ticks to run on the chip")
    p.add_argument("--record", choices=RECORD_CHOICES, default="spikes",
                   help="spikes, or spikes,v (voltages cost 4 bytes per neuron per tick of PE memory)")
    p.add_argument("--reset", choices=("subtract", "zero"), default="subtract",
                   help="ConversionConfig.reset: ResetMethod.SUBTRACT (default) or ZERO")
    p.add_argument("--sample", type=int, default=0, help="which sample of a batched input to run (0)")
    p.add_argument("--max-atoms", type=_atoms, action="append", default=[], metavar="POP=N",
                   help="neurons per PE of a population (py-spinnaker2 set_max_atoms_per_core); repeatable")
    p.add_argument("--chip-weights", choices=tuple(CHIP_WEIGHTS), default="int8",
                   help="integer weights of the chip model: int8 [-127, 127] (lif_no_delay, lif_conv2d; default) or "
                        "4bit [-15, 15] (lif with delays); --auto-scale aims at that range")
    add_conversion_args(p)


CHIP_WEIGHTS = {"int8": weight_max(8), "4bit": weight_max(5)}
"""--chip-weights: the largest integer weight magnitude of each choice."""


def _options_from_args(args):
    from emu.cli import conversion_from_args

    wmax = CHIP_WEIGHTS[args.chip_weights]
    options = dataclasses.replace(conversion_from_args(args), weight_max=wmax)
    return options, SemanticsProfile.chip(weight_bits=weight_bits(wmax))


def _job_from_args(args) -> ChipJob:
    options, profile = _options_from_args(args)
    return prepare_chip_job(args.model, args.input, args.ticks, options, reset=args.reset,
                            record=args.record.split(","), sample=args.sample, profile=profile,
                            max_atoms_per_core=dict(args.max_atoms))


def _chip_script(args) -> int:
    try:
        job = _job_from_args(args)
        for line in job.warnings:
            print(f"warning: {line}", file=sys.stderr)
        path = write_chip_script(job, args.out, sys_tick_in_s=args.sys_tick_in_s)
    except ChipScriptError as exc:
        print(f"s2emu chip-script: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({job.ticks} ticks, {sum(len(t) for d in job.input_spikes.values() for t in d.values())} "
          f"input spikes embedded). On the machine attached to the board: python {path.name} --eth-ip <IP> "
          f"--out chip.json; then compare with s2emu validate --chip chip.json")
    return 0


def _chip_run(args) -> int:
    def warn(line):
        print(f"warning: {line}", file=sys.stderr)

    try:
        options, profile = _options_from_args(args)
        rec = run_on_backend(args.model, args.input, args.ticks, options, backend=args.backend,
                             eth_ip=args.eth_ip, reset=args.reset, record=args.record.split(","), sample=args.sample,
                             out=args.out, max_atoms_per_core=dict(args.max_atoms), profile=profile, warn=warn)
    except (ChipBackendUnavailable, ChipScriptError) as exc:
        print(f"s2emu chip-run: error: {exc}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{n}: {int(rec.spike_counts(n).sum())}" for n in rec.populations)
    print(f"ran {rec.ticks} ticks on {args.backend}; spikes {counts}; wrote {args.out}")
    return 0


def register(subparsers) -> None:
    """Add ``chip-script`` and ``chip-run`` to the ``s2emu`` command line."""
    p = subparsers.add_parser(
        "chip-script", help="write a script that runs MODEL on a SpiNNaker2 board with these options",
        description="Write a self-contained script (model, input spikes, options and tick count embedded) for the "
                    "host attached to a SpiNNaker2 board. It runs py-spinnaker2 and saves spikes/voltages with a "
                    "manifest that s2emu validate --chip checks. Fit warnings go to stderr.")
    _add_chip_args(p)
    p.add_argument("--sys-tick-in-s", type=float, help="wall-clock tick length baked into the script "
                                                      "(py-spinnaker2's default when not given)")
    p.add_argument("--out", required=True, type=Path, help="the script to write (run_on_chip.py)")
    p.set_defaults(handler=_chip_script)

    q = subparsers.add_parser(
        "chip-run", help="run MODEL with py-spinnaker2 here (brian2 backend or a board), save with a manifest",
        description="Run MODEL.nir through py-spinnaker2 in this process and save the recording with a manifest "
                    "(the same host code and manifest as a chip-script script). Needs py-spinnaker2, which is not on "
                    "PyPI: git clone -b py-spinnaker2_nir https://gitlab.com/spinnaker2/py-spinnaker2.git && "
                    "pip install -e py-spinnaker2 (the brian2 backend also needs brian2). Exits 2 when it is missing.")
    _add_chip_args(q)
    q.add_argument("--backend", choices=("brian2", "chip"), default="brian2",
                   help="py-spinnaker2's brian2 simulation (default) or the chip (needs --eth-ip)")
    q.add_argument("--eth-ip", help="IP address of the SpiNNaker2 board")
    q.add_argument("--out", required=True, type=Path, help="OUT.json")
    q.set_defaults(handler=_chip_run)
