"""``s2emu calibrate``: the semantics a board follows, from one of its recordings (:mod:`validate.calibration`)."""
from __future__ import annotations

from emu.cli.files import CommandFileError, check_outputs
from emu.cli.options import flags_from_args
from emu.inputs import normalize_inputs
from emu.nir_import import from_nir, read_nir
from emu.settings import resolve
from emu.spike_io import atomic_write, dumps_json, load_recording, read_input
from validate.calibration import calibrate
from validate.calibration_report import calibration_report


def main(args) -> int:
    check_outputs(args.out, report=args.report)
    if args.out.suffix.lower() != ".json":
        raise CommandFileError(f"{args.out}: the calibrated profile is written as JSON: name it .json")
    graph = read_nir(args.model)
    fixed = {k: v for k, v in flags_from_args(args).items() if v is not None}
    base = resolve(fixed, graph, source=str(args.model))  # dt given or in the graph, before any work
    network = from_nir(graph, base.conversion)
    chip = load_recording(args.chip, population=args.population)
    ticks = args.ticks or chip.ticks
    if ticks > chip.ticks:
        raise CommandFileError(f"{args.chip}: the recording has {chip.ticks} ticks, --ticks asks for {ticks}")
    inputs, _ = read_input(args.input, network, dt=base.conversion.dt)
    rasters, _ = normalize_inputs(network, inputs)
    batch = next(iter(rasters.values())).shape[0]
    if not 0 <= args.sample < batch:
        raise CommandFileError(f"--sample {args.sample}: {args.input} has {batch} sample(s)")
    one = {k: r[args.sample:args.sample + 1, :ticks] for k, r in rasters.items()}
    cal = calibrate(graph, one, chip, fixed, ticks=ticks, source=str(args.model))
    profile = cal.profile_file()
    profile["made_from"] = dict(model=str(args.model), input=str(args.input), chip=str(args.chip), ticks=ticks,
                                sample=args.sample)
    atomic_write(args.out, dumps_json(profile, source=str(args.out), indent=1))
    written = [args.out]
    if args.report is not None:
        report = calibration_report(cal, f"Calibration of {args.model.name} from {args.chip.name}")
        written += list(report.write(args.report))
    print(cal.finding())
    for flag, hint in profile["suggestions"].items():
        print(f"  to settle {flag}: {hint}")
    print(f"{cal.runs} runs; wrote " + ", ".join(map(str, written)))
    return 0
