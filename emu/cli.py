"""``s2emu``: the command line. Each subcommand registers itself with ``register(subparsers)``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from emu.numerics import WeightRangeError, weight_max
from emu.engine import InputError
from emu.spike_io import InputFileError
from emu.network import NetworkError
from emu.nir_import import ConversionOptions, NIRImportError
from emu.profile import ProfileError, SemanticsProfile

#: errors that are the user's input, printed as one line instead of a traceback
USER_ERRORS = (NIRImportError, InputFileError, InputError, WeightRangeError, NetworkError, ProfileError,
               FileNotFoundError, KeyError)


def add_conversion_args(p: argparse.ArgumentParser) -> None:
    """The chip converter's options (SPINNAKER2.md §3), shared by every command that converts NIR."""
    g = p.add_argument_group("conversion (py-spinnaker2 converter rules)")
    g.add_argument("--dt", type=float, default=1.0, help="tick length in seconds (converter default 1.0)")
    scale = g.add_mutually_exclusive_group()
    scale.add_argument("--scale", type=float, help="multiply weights, thresholds and biases by X")
    scale.add_argument("--auto-scale", action="store_true", help="per population: weight_max / max|W|")
    g.add_argument("--scale-percentile", type=float, help="with --auto-scale: a percentile of |W| instead of max")
    g.add_argument("--integrator", choices=("forward", "exponential"), default="exponential")
    g.add_argument("--conn-delay", type=int, default=1, help="extra delay of every connection (converter default 1)")
    g.add_argument("--allow-unsupported", action="store_true",
                   help="emulate graph shapes the chip converter rejects (not a chip prediction then)")


def add_profile_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("semantics profile")
    g.add_argument("--profile", choices=SemanticsProfile.PRESETS, default="chip")
    g.add_argument("--reset", choices=("zero", "subtract"), default="subtract")
    g.add_argument("--reset-timing", choices=("same_tick", "next_tick"))
    g.add_argument("--weight-bits", type=int, help="weight bits incl. sign (8: [-127,127]; 5: [-15,15], the 4-bit+sign lif model)")
    g.add_argument("--weight-rounding", choices=("truncate", "nearest"))
    g.add_argument("--saturate-weights", action="store_true", help="clip out-of-range weights instead of failing")
    g.add_argument("--membrane-bits", type=int, help="fixed profile: membrane word bits")
    g.add_argument("--frac-bits", type=int, help="fixed profile: membrane fraction bits")
    g.add_argument("--rounding", choices=("truncate", "nearest", "stochastic"), help="fixed profile: product rounding")
    g.add_argument("--seed", type=int, help="seed of stochastic rounding")


def conversion_from_args(args) -> ConversionOptions:
    scale = "auto" if args.auto_scale else args.scale
    wmax = weight_max(getattr(args, "weight_bits", None) or 8)
    return ConversionOptions(dt=args.dt, integrator=args.integrator, weight_scale=scale, weight_max=wmax,
                             scale_percentile=args.scale_percentile, conn_delay=args.conn_delay,
                             allow_unsupported=args.allow_unsupported)


def profile_from_args(args) -> SemanticsProfile:
    changes = dict(reset_mode=args.reset)
    for opt, field in (("reset_timing", "reset_timing"), ("weight_bits", "weight_bits"),
                       ("weight_rounding", "weight_rounding"), ("membrane_bits", "membrane_bits"),
                       ("frac_bits", "membrane_frac_bits"), ("rounding", "fixed_rounding"), ("seed", "seed")):
        if getattr(args, opt) is not None:
            changes[field] = getattr(args, opt)
    if args.saturate_weights:
        changes["weight_overflow"] = "saturate"
    return SemanticsProfile.preset(args.profile, **changes)


def _run(args) -> int:
    from emu.engine import Emulator
    from emu.spike_io import read_input, write_output
    from emu.nir_import import from_nir

    record = {r.strip() for r in args.record.split(",") if r.strip()}
    if not record <= {"spikes", "v"}:
        raise InputError(f"--record takes spikes and/or v, got {args.record!r}")
    if args.backend != "emulator":
        return _run_on_backend(args, record)
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


def _run_on_backend(args, record) -> int:
    """The same run through py-spinnaker2 (its brian2 backend, or a board): optional extra."""
    from emu.chip import ChipBackendUnavailable, ChipScriptError, run_on_backend

    if args.ticks is None:
        raise InputError(f"--backend {args.backend} needs --ticks")
    try:
        rec = run_on_backend(args.model, args.input, args.ticks, conversion_from_args(args), backend=args.backend,
                             eth_ip=args.eth_ip, reset=args.reset, record=sorted(record), out=args.out,
                             profile=profile_from_args(args), warn=lambda line: print(f"warning: {line}",
                                                                                    file=sys.stderr))
    except (ChipBackendUnavailable, ChipScriptError) as exc:
        print(f"s2emu run: error: {exc}", file=sys.stderr)
        return 2
    print(f"ran {rec.ticks} ticks on py-spinnaker2 ({args.backend}); wrote {args.out}")
    return 0


def register_run(sub) -> None:
    p = sub.add_parser("run", help="emulate a NIR model on input spikes, write spikes/voltages",
                       description="Emulate MODEL.nir as SpiNNaker2 would run it.")
    p.add_argument("model", type=Path, help="NIR file")
    p.add_argument("--input", required=True, type=Path, help="spike JSON, raster .npy/.npz or events (x,y,p,t)")
    p.add_argument("--ticks", type=int, help="ticks to run (default: input length)")
    p.add_argument("--record", default="spikes", help="spikes,v")
    p.add_argument("--out", required=True, type=Path, help="OUT.json or OUT.npz")
    p.add_argument("--backend", choices=("emulator", "brian2", "chip"), default="emulator",
                   help="emulator (default), or py-spinnaker2's brian2 backend / a board (optional extra [chip])")
    p.add_argument("--eth-ip", help="with --backend chip: the board's IP address")
    add_conversion_args(p)
    add_profile_args(p)
    p.set_defaults(handler=_run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2emu", description="Bit-accurate SpiNNaker2 emulator and validator.")
    sub = parser.add_subparsers(dest="command", required=True)
    register_run(sub)
    for module in ("emu.demo", "emu.gesture.train", "validate.commands", "validate.validate_commands", "emu.chip",
                   "emu.quant.sweep"):
        try:
            mod = __import__(module, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except USER_ERRORS as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"s2emu {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
