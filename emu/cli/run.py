"""``s2emu run``: emulate a NIR model on input spikes (or run it through py-spinnaker2)."""
from __future__ import annotations

import sys
import time

from emu.chip import run_on_backend
from emu.cli.options import conversion_from_args, profile_from_args
from emu.engine import Emulator
from emu.inputs import InputError
from emu.nir_import import from_nir
from emu.spike_io import read_input, write_output


def main(args) -> int:
    record = {r.strip() for r in args.record.split(",") if r.strip()}
    if not record <= {"spikes", "v"}:
        raise InputError(f"--record takes spikes and/or v, got {args.record!r}")
    if args.backend != "emulator":
        return _on_backend(args, record)
    network = from_nir(args.model, conversion_from_args(args))
    profile = profile_from_args(args)
    inputs, info = read_input(args.input, network, dt=args.dt, ticks=args.ticks)
    if info.get("merged_same_tick_events"):
        print(f"note: {info['merged_same_tick_events']} events fell on a pixel that already spiked in that tick "
              f"and were merged (one spike per neuron per tick)", file=sys.stderr)
    t0 = time.perf_counter()
    result = Emulator(network, profile)(inputs, ticks=args.ticks, record_v="v" in record)
    elapsed = time.perf_counter() - t0
    result.meta["input"] = dict(info, file=str(args.input))
    out = write_output(result, args.out)
    counts = ", ".join(f"{n}: {int(result.spike_counts(n).sum())}" for n in result.populations)
    print(f"ran {result.ticks} ticks x {result.batch} sample(s) in {elapsed:.2f} s ({args.profile} profile); "
          f"spikes {counts}; wrote {out}")
    return 0


def _on_backend(args, record) -> int:
    """The same run through py-spinnaker2 (its brian2 backend, or a board): optional extra."""
    if args.ticks is None:
        raise InputError(f"--backend {args.backend} needs --ticks")
    rec = run_on_backend(args.model, args.input, args.ticks, conversion_from_args(args), backend=args.backend,
                         eth_ip=args.eth_ip, reset=args.reset, record=sorted(record), out=args.out,
                         profile=profile_from_args(args),
                         warn=lambda line: print(f"warning: {line}", file=sys.stderr))
    print(f"ran {rec.ticks} ticks on py-spinnaker2 ({args.backend}); wrote {args.out}")
    return 0
