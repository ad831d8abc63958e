"""``s2emu calibrate``: the semantics a board follows, from one of its recordings (:mod:`validate.calibration`)."""
from __future__ import annotations

import sys

from emu.cli.files import CommandFileError, check_outputs, made_with, read_network_input
from emu.cli.options import flags_from_args
from emu.nir_import import from_nir, read_nir
from emu.settings import resolve
from emu.outputs import OutputSet
from emu.spike_io import dumps_json, load_recording
from validate.calibration import calibrate
from validate.calibration_report import calibration_report
from validate.conversion_warnings import warn_zeroed_weights

#: the exit status when no searched profile reproduces the recording (the closest is written,
#: marked "exact": false; documented in the command's help)
NOT_REPRODUCED = 4


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
    rasters, _, _ = read_network_input(args.input, network, base.conversion.dt)
    batch = next(iter(rasters.values())).shape[0]
    if not 0 <= args.sample < batch:
        raise CommandFileError(f"--sample {args.sample}: {args.input} has {batch} sample(s)")
    one = {k: r[args.sample:args.sample + 1, :ticks] for k, r in rasters.items()}
    cal = calibrate(graph, one, chip, fixed, ticks=ticks, source=str(args.model))
    profile = cal.profile_file()
    profile["made_from"] = dict(model=str(args.model), input=str(args.input), chip=str(args.chip), ticks=ticks,
                                sample=args.sample)
    report = calibration_report(cal, f"Calibration of {args.model.name} from {args.chip.name}") \
        if args.report is not None else None
    warn_zeroed_weights(from_nir(graph, cal.settings.conversion), cal.settings.profile, summary=profile,
                        report=report)
    with OutputSet("calibrate", made_with(args)) as outputs:
        profile["output_set"] = outputs.stamp
        outputs.write(args.out, dumps_json(profile, source=str(args.out), indent=1))
        if report is not None:
            outputs.mark(report)
            report.write(outputs.path(args.report))
    written = outputs.written
    print(cal.finding())
    for flag, hint in profile["suggestions"].items():
        print(f"  to settle {flag}: {hint}")
    print(f"{cal.runs} runs; wrote " + ", ".join(map(str, written)))
    if not cal.exact:
        print(f"s2emu calibrate: no searched profile reproduces {args.chip}; {args.out} holds the closest, marked "
              f"\"exact\": false (commands given it say so); exit status {NOT_REPRODUCED}", file=sys.stderr)
        return NOT_REPRODUCED
    return 0
