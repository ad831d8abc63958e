"""``s2emu validate``: the emulator against a chip recording and/or the float reference, on one
sample (``--input``), or against the float reference on every sample of a folder (``--inputs``,
:mod:`validate.dataset`)."""
from __future__ import annotations

import dataclasses
import sys

from emu.chip import check_manifest
from emu.cli.fast import fast_samples
from emu.cli.files import CommandFileError, check_outputs, made_with, read_network_input
from emu.cli.options import model_from_args
from emu.cli.samples import input_files, named_samples
from emu.engine import Emulator
from emu.parallel import check_scheduler
from emu.profile import SemanticsProfile
from emu.outputs import OutputSet
from emu.spike_io import dumps_json, load_recording
from emu.timing import latency_shifts
from validate.dataset import closer_look, validate_samples
from validate.conversion_warnings import warn_zeroed_weights
from validate.float_reference import FloatReference
from validate.cause import divergence_causes
from validate.localize import Localization
from validate.report import Report
from validate.traces import Voltages, emulator_voltages, float_voltages
from validate.validation import compare_runs, runs_sentence


def _one(result, source: str, sample: int):
    """The run of one sample as a recording that keeps the sample's number in the input."""
    rec = result.sample(0)
    rec.source, rec.meta["sample"] = source, sample
    return rec


def main(args) -> int:
    if args.inputs is not None:
        return _many(args)
    if args.scheduler is not None:
        raise CommandFileError("--scheduler runs the samples of --inputs DIR; --input validates one sample here")
    if args.sample is None:
        args.sample = 0
    check_outputs(args.out, report=args.report)
    graph, settings, network = model_from_args(args)
    profile = settings.profile
    rasters, info, ticks = read_network_input(args.input, network, settings.conversion.dt, args.ticks)
    batch = next(iter(rasters.values())).shape[0]
    if not 0 <= args.sample < batch:
        raise CommandFileError(f"--sample {args.sample}: the input has {batch} sample(s)")
    one = {k: r[args.sample:args.sample + 1] for k, r in rasters.items()}
    emu_rec = _one(Emulator(network, profile)(one, ticks=ticks, record_v=True), f"emulator ({args.profile} profile)",
                   args.sample)
    use_snntorch = args.snntorch or args.chip is None
    report = Report(f"Validation of {args.model.name}: input {args.input.name}, sample {args.sample}, {ticks} ticks, "
                    f"{args.profile} profile")
    if args.chip is None and not args.snntorch:
        report.add_text("No --chip recording given: compared with the float reference.", note=True)
    summary = dict(model=str(args.model), input=str(args.input), sample=args.sample, ticks=ticks,
                   profile=profile.describe(), settings=settings.sources, comparisons={})
    warn_zeroed_weights(network, profile, summary=summary, report=report)
    chip = None
    parts = []
    if args.chip is not None:
        chip = load_recording(args.chip)
        if "manifest" in chip.meta:
            # a recording from s2emu chip-script / chip-run: refuse it unless it was
            # made from this model, input, conversion and tick count
            check_manifest(chip.meta, args.model, args.input, settings.conversion, ticks,
                           reset=profile.reset_mode, sample=args.sample, source=str(args.chip))
            report.add_text(f"Chip recording {args.chip.name}: manifest matches model, input, options and ticks.")
        else:
            report.add_text(f"Chip recording {args.chip.name} has no manifest: not checked against model and input.")
        comp = compare_runs(report, network, emu_rec, chip, "emulator", "chip", args.populations, profile,
                            {n: 0 for n in network.populations}, args.max_lag,
                            voltages={"A": emulator_voltages(profile), "B": Voltages("chip", "same_tick",
                                                                                     profile.reset_mode)})
        summary["comparisons"]["emulator_vs_chip"] = comp
        parts.append(chip_sentence(comp, args.profile))
    if use_snntorch:
        ref_profile = SemanticsProfile.snntorch(reset_mode=profile.reset_mode)
        sn_rec = _one(FloatReference(graph, **dataclasses.asdict(settings.float))(one, ticks=ticks),
                      "float reference (snnTorch)", args.sample)
        shifts = latency_shifts(network, profile, ref_profile, reference_delays=False)
        report.add_text(f"Float reference: the NIR graph as snnTorch runs it ({settings.float.integrator} "
                        f"integrator, {settings.float.reset} reset, {settings.float.reset_timing.replace('_', ' ')}; "
                        f"no latency or delays; voltages in NIR units). The emulator's populations lag it by "
                        f"{shifts} ticks; comparisons shift them back.", note=True)
        comp = compare_runs(report, network, emu_rec, sn_rec, "emulator", "float reference", None, None, shifts,
                            args.max_lag, voltages={"A": emulator_voltages(profile),
                                                    "B": float_voltages(settings.float)})
        loc = Localization.from_dict(comp["localization"])
        cause = None
        if not loc.identical:
            cause = divergence_causes(network, profile, one, sn_rec.select([r["population"] for r in comp["rows"]]),
                                      loc, ref_profile, label_b="the float model")
            comp["cause"] = cause.to_dict()
        summary["comparisons"]["emulator_vs_snntorch"] = comp
        parts.append(float_sentence(comp, cause))
    report.finding = " ".join(parts)
    report.add_settings(dict(model=str(args.model), input=str(args.input), sample=args.sample, ticks=ticks,
                             profile=profile.describe(), conversion=network.meta.get("conversion", {}),
                             sources=settings.sources))
    summary["finding"] = report.finding
    written = _write(args, report, summary)
    if chip is not None and "manifest" not in chip.meta:
        print(f"note: {args.chip} has no manifest (not written by s2emu chip-script / chip-run): not checked "
              f"against this model, input and options", file=sys.stderr)
    print(report.finding)
    print("wrote " + ", ".join(map(str, written)))
    return 0


def _many(args) -> int:
    """--inputs: every sample alone against the float reference, pooled into one report."""
    if args.chip is not None:
        raise CommandFileError("--chip is the recording of one sample: give it with --input FILE, not --inputs")
    if args.sample is not None:
        raise CommandFileError("--sample picks one sample of --input; --inputs validates every sample")
    check_outputs(args.out, report=args.report)
    check_scheduler(args.scheduler)
    graph, settings, network = model_from_args(args)
    profile = settings.profile
    files = input_files(args.inputs)
    samples, names = fast_samples(*named_samples(files, network, settings.conversion.dt, args.ticks))
    emulator = Emulator(network, profile)
    reference = FloatReference(graph, **dataclasses.asdict(settings.float))
    source = f"emulator ({args.profile} profile)"
    result = validate_samples(emulator, reference, samples, names, max_lag=args.max_lag, scheduler=args.scheduler,
                              emulator_source=source)
    report = result.report(f"Validation of {args.model.name} on {len(samples)} samples ({args.inputs.name}): "
                           f"emulator ({args.profile} profile) vs float reference")
    noted: dict = {}
    warn_zeroed_weights(network, profile, summary=noted, report=report)
    closer_look(report, result, emulator, reference, samples, args.max_lag, source)
    report.add_settings(dict(model=str(args.model), inputs=str(args.inputs), samples=len(samples), ticks=args.ticks,
                             profile=profile.describe(), conversion=network.meta.get("conversion", {}),
                             float_reference=dataclasses.asdict(settings.float), sources=settings.sources))
    summary = dict(model=str(args.model), inputs=str(args.inputs), files=[str(f) for f in files], ticks=args.ticks,
                   profile=profile.describe(), sources=settings.sources, **result.to_dict(), **noted)
    written = _write(args, report, summary)
    print(result.finding())
    print("wrote " + ", ".join(map(str, written)))
    return 0


def _write(args, report, summary: dict) -> list:
    """The report (and ``--out``'s summary) as one output set; the files written."""
    with OutputSet("validate", made_with(args)) as outputs:
        outputs.mark(report)
        report.write(outputs.path(args.report))
        if args.out is not None:
            outputs.write(args.out, dumps_json(dict(summary, output_set=outputs.stamp), source=str(args.out), indent=1))
    return outputs.written


def chip_sentence(comp: dict, profile: str) -> str:
    """The chip comparison in words, and what to do when the emulator does not reproduce it."""
    loc = comp["localization"]
    if loc["identical"]:
        return f"The emulator ({profile} profile) reproduces the chip recording spike for spike."
    return (f"Against the chip recording: {runs_sentence(comp)} The board does not follow the {profile} profile "
            f"here: `s2emu calibrate` finds the profile that reproduces it.")


def float_sentence(comp: dict, cause) -> str:
    """The float comparison in words, with the cause of its first divergence and where to go next."""
    if comp["localization"]["identical"]:
        return "Against the float model (snnTorch): the emulator spikes identically."
    return (f"Against the float model (snnTorch): {runs_sentence(comp)} {cause.finding()} For what this costs in "
            f"accuracy over many samples: `s2emu attribute`.")
