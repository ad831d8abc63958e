"""``s2emu run``: emulate a NIR model on input spikes, or run it through py-spinnaker2, and write
what it did (``--backend snntorch``, the float reference, is :mod:`emu.cli.run_float`: only it
imports torch)."""
from __future__ import annotations

import sys
import time

from emu.chip import run_on_backend
from emu.cli.files import check_outputs, read_network_input
from emu.cli.options import flags_from_args, profile_file_from_args, settings_from_args
from emu.engine import Emulator
from emu.inputs import InputError, normalize_inputs
from emu.nir_import import from_nir, read_nir
from emu.outputs import OutputSet
from emu.spike_io import write_output
from validate.calibration import sensitivity
from validate.conversion_warnings import print_warning as warn
from validate.conversion_warnings import warn_zeroed_weights


def parse_record(args) -> set:
    record = {r.strip() for r in args.record.split(",") if r.strip()}
    if not record <= {"spikes", "v"}:
        raise InputError(f"--record takes spikes and/or v, got {args.record!r}")
    return record


def main(args) -> int:
    record = parse_record(args)
    check_outputs(args.out)
    if args.sensitivity and args.backend != "emulator":
        raise InputError("--sensitivity reruns the emulator: use it with --backend emulator")
    graph = read_nir(args.model)
    settings = settings_from_args(args, graph)
    if args.backend in ("brian2", "chip"):
        return _on_backend(args, settings, record)
    network = from_nir(graph, settings.conversion)
    inputs, info, _ = read_network_input(args.input, network, settings.conversion.dt, args.ticks)
    emulator = Emulator(network, settings.profile)
    what = f"{args.profile} profile" + (f", {args.profile_file}" if args.profile_file else "")
    t0 = time.perf_counter()
    result = emulator(inputs, ticks=args.ticks, record_v="v" in record)
    elapsed = time.perf_counter() - t0
    warn_zeroed_weights(network, settings.profile, summary=result.meta)
    extra = {"sensitivity": _sensitivity(args, graph, network, inputs, result)} if args.sensitivity else {}
    return finish(args, result, info, settings, record, what, elapsed, extra)


def finish(args, result, info, settings, record, what: str, elapsed: float, extra: dict) -> int:
    """Write the run (its meta: the input, where each setting came from, ``extra``) and say what ran."""
    if info.get("merged_same_tick_events"):
        print(f"note: {info['merged_same_tick_events']} events fell on a pixel that already spiked in that tick "
              f"and were merged (one spike per neuron per tick)", file=sys.stderr)
    if "v" not in record:
        result.v = {}
    result.meta.update(input=dict(info, file=str(args.input)), settings=settings.sources, **extra)
    with OutputSet("run") as outputs:
        write_output(result, outputs.path(args.out))
    out = args.out
    counts = ", ".join(f"{n}: {int(result.spike_counts(n).sum())}" for n in result.populations)
    print(f"ran {result.ticks} ticks x {result.batch} sample(s) in {elapsed:.2f} s ({what}); spikes {counts}; "
          f"wrote {out}")
    return 0


def _sensitivity(args, graph, network, inputs, result) -> dict:
    """Which open options (docs/semantics.md) would change these spikes; printed and returned."""
    rasters, _ = normalize_inputs(network, inputs, result.ticks)
    found = sensitivity(graph, flags_from_args(args), rasters, result, preset=args.profile or "chip",
                        profile_file=profile_file_from_args(args), source=str(args.model))
    moving = {flag: values for flag, values in found.items() if values}
    for flag, values in moving.items():
        said = ", ".join(f"{v} changes {cells:,} spike cells" for v, cells in values.items())
        print(f"depends on {flag} (not proven by data, not set here): {said}")
    still = [flag for flag, values in found.items() if not values]
    if still:
        print(f"does not depend on {', '.join(still)}: no other value changes these spikes")
    if not found:
        print("sensitivity: every option not proven by data is set (flags, profile file or the graph's metadata)")
    if moving:
        print("calibrate the board (s2emu calibrate) or set these options to make the result certain")
    return found


def _on_backend(args, settings, record) -> int:
    """The same run through py-spinnaker2 (its brian2 backend, or a board): optional extra."""
    if args.ticks is None:
        raise InputError(f"--backend {args.backend} needs --ticks")
    rec = run_on_backend(args.model, args.input, args.ticks, settings.conversion, backend=args.backend,
                         eth_ip=args.eth_ip, reset=settings.profile.reset_mode, record=sorted(record), out=args.out,
                         profile=settings.profile, warn=warn)
    print(f"ran {rec.ticks} ticks on py-spinnaker2 ({args.backend}); wrote {args.out}")
    return 0
