"""Host-side code: self-contained functions that run on the machine attached to the board.

A generated chip script embeds their source verbatim (``inspect.getsource``, see
:func:`host_source`); it never imports spinnaker2-emu, so the host needs only
python, numpy, nir and py-spinnaker2. Each function imports what it uses inside
itself (standard library, numpy, nir, spinnaker2). The manifest carries
:func:`host_code_sha256`, which says which version ran. :func:`emu.chip.job.run_on_backend`
calls the very same functions in-process.
"""
from __future__ import annotations

import hashlib
import inspect

INSTALL_HINT = (
    "py-spinnaker2 (import spinnaker2) is not installed here. It is not on PyPI: get it from "
    "https://gitlab.com/spinnaker2/py-spinnaker2 (NIR support is on branch py-spinnaker2_nir): "
    "git clone -b py-spinnaker2_nir https://gitlab.com/spinnaker2/py-spinnaker2.git && "
    "pip install -e py-spinnaker2 . The chip backend also needs the board's host software described "
    "in its README; the brian2 backend needs brian2 (pip install brian2). Without it, "
    "`s2emu chip-script` writes a script to run on the machine that has it."
)
MANIFEST_FORMAT = "spinnaker2-emu chip manifest 1"


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


def read_graph_for_spinnaker2(model_path):
    """The NIR graph as py-spinnaker2's examples read it, and whether its shapes could be inferred."""
    import nir

    try:
        graph = nir.read(str(model_path), type_check=False)
    except TypeError:  # older nir without type_check
        graph = nir.read(str(model_path))
    try:  # as py-spinnaker2's NIR examples do: make sure every node has its shapes
        graph.infer_types()
        return graph, "ok"
    except Exception as exc:  # noqa: BLE001  (nir raises many types; the stored shapes are used then)
        return graph, f"failed ({type(exc).__name__}: {exc}); stored shapes used"


def prescale_graph(graph, prescale):
    """Multiply, in place, the weights and biases of the weight nodes into each population and the
    population's v_threshold and v_leak by ``prescale[population]``: our per-population weight
    scale where ``ConversionConfig`` cannot express it (what the NIR paper's script does by hand)."""
    import nir
    import numpy as np

    for name, node in graph.nodes.items():
        if not isinstance(node, (nir.Affine, nir.Linear, nir.Conv2d)):
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


def spinnaker2_conversion(options, record, native_auto):
    """py-spinnaker2's ``ConversionConfig`` for our options: (the config, its fields as given)."""
    from spinnaker2 import s2_nir

    for name in ("ConversionConfig", "IntegratorMethod", "ResetMethod", "from_nir"):
        if not hasattr(s2_nir, name):
            raise RuntimeError(f"this py-spinnaker2 has no spinnaker2.s2_nir.{name}; install the branch "
                               f"py-spinnaker2_nir of https://gitlab.com/spinnaker2/py-spinnaker2")
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
        return s2_nir.ConversionConfig(**wanted), wanted
    except TypeError as exc:
        raise RuntimeError(f"this py-spinnaker2's s2_nir.ConversionConfig does not take the fields "
                           f"{sorted(wanted)} ({exc}); use the branch py-spinnaker2_nir") from None


def prepare_populations(net, inp, input_spikes, record, max_atoms_per_core):
    """Give py-spinnaker2's input populations their spikes, record every other population,
    set neurons per core; returns the input spikes as given to each input population."""
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
    names = [pop.name for pop in net.populations]
    unknown = sorted(set(max_atoms_per_core or {}) - set(names))
    if unknown:
        raise ValueError(f"max_atoms_per_core names unknown populations {unknown}; populations: {names}")
    for pop in net.populations:
        if not any(pop is p for p in inp):
            pop.record = list(record)
        if pop.name in (max_atoms_per_core or {}):
            pop.set_max_atoms_per_core(int(max_atoms_per_core[pop.name]))
    return inputs


def run_with_spinnaker2(model_path, input_spikes, ticks, options, record=("spikes",), backend="chip",
                        eth_ip=None, prescale=None, max_atoms_per_core=None, run_kwargs=None):
    """Convert ``model_path`` with py-spinnaker2 and run it for ``ticks`` ticks.

    ``input_spikes``: ``{input population: {neuron: [ticks]}}``. ``options``: the
    dict of ``emu.chip.manifest.OPTION_FIELDS``. ``prescale``: ``{population: w_scale}``
    applied to the NIR graph when ``ConversionConfig`` cannot express our scaling (a
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
    from spinnaker2 import s2_nir

    record = [r for r in record]
    if "spikes" not in record or not set(record) <= {"spikes", "v"}:
        raise ValueError(f"record must be ['spikes'] or ['spikes', 'v'], got {record}")
    if backend not in ("chip", "brian2"):
        raise ValueError(f"backend must be 'chip' or 'brian2', got {backend!r}")
    if backend == "chip" and not eth_ip:
        raise ValueError("the chip backend needs the board's IP address (eth_ip / --eth-ip)")
    graph, inferred = read_graph_for_spinnaker2(model_path)
    scale = options["weight_scale"]
    native_auto = scale == "auto" and not prescale
    if isinstance(scale, (int, float)) and not isinstance(scale, bool) and not prescale:
        prescale = {n: float(scale) for n, node in graph.nodes.items() if isinstance(node, (nir.LIF, nir.IF, nir.CubaLIF))}
    if prescale:
        prescale_graph(graph, prescale)
    cfg, wanted = spinnaker2_conversion(options, record, native_auto)
    net, inp, outp = s2_nir.from_nir(graph, cfg)
    inputs = prepare_populations(net, inp, input_spikes, record, max_atoms_per_core)
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
        if pop.name in inputs:
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
            "manifest": manifest, "inputs": list((manifest or {}).get("input_populations") or [])}
    # the format of emu.spike_io (version 1)
    text = json.dumps({"format": "s2emu-recording", "version": 1, "populations": populations, "meta": meta},
                      allow_nan=False)
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


HOST_FUNCTIONS = (spikes_digest, spinnaker2_version, read_graph_for_spinnaker2, prescale_graph, spinnaker2_conversion,
                  prepare_populations, run_with_spinnaker2, build_manifest, save_chip_recording)
"""What a generated script embeds (in this order), via ``inspect.getsource``."""


def host_source() -> str:
    """The source of :data:`HOST_FUNCTIONS`, as generated scripts embed it."""
    return "\n\n".join(inspect.getsource(f).rstrip() + "\n" for f in HOST_FUNCTIONS)


def host_code_sha256() -> str:
    return hashlib.sha256(host_source().encode("utf-8")).hexdigest()

