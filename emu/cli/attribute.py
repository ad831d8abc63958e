"""``s2emu attribute``: the waterfall of where accuracy is lost between the float model and the chip."""
from __future__ import annotations

import sys

from emu.cli.fast import fast_samples
from emu.cli.files import check_outputs, made_with
from emu.outputs import OutputSet
from emu.cli.options import model_from_args
from emu.cli.samples import event_file_labels, input_files, read_labels, read_samples
from emu.parallel import check_scheduler
from emu.profile import SemanticsProfile
from emu.spike_io import dumps_json
from validate.attribution import attribute
from validate.conversion_warnings import warn_zeroed_weights
from validate.float_reference import FloatReference
from validate.float_runs import float_runs_in_background


def main(args) -> int:
    check_outputs(args.out, report=args.report)
    check_scheduler(args.scheduler)
    graph, settings, network = model_from_args(args)
    target = settings.profile
    source = SemanticsProfile.snntorch(reset_mode=args.float_reset or target.reset_mode)
    files = input_files(args.inputs, exclude=args.labels)
    samples = read_samples(files, network, settings.conversion.dt, args.ticks)
    labels = read_labels(args.labels) if args.labels is not None else event_file_labels(files)
    if args.labels is None and labels is not None:
        print("note: labels from the DVS Gesture file names (LABEL.npy)", file=sys.stderr)
    samples, labels = fast_samples(samples, labels)
    reference = FloatReference(graph, settings.float.dt, settings.float.integrator, source.reset_mode,
                               source.reset_timing)
    # the float run of every sample, once (by batches where that gives the same bits; from the disk
    # cache when a command ran it before on the same model, settings and inputs), computed while
    # the emulator runs the configurations
    float_run = float_runs_in_background(reference, samples)
    att = attribute(network, samples, labels, source=source, target=target, output=args.output_population,
                    pad=not args.no_pad, include_fixed=args.fixed, reference=float_run,
                    chunk=args.chunk, scheduler=args.scheduler)
    rep = att.report(f"Where accuracy is lost: {args.model.name}, snnTorch float -> {args.profile} profile")
    summary = att.to_dict()
    warn_zeroed_weights(network, target, summary=summary, report=rep)
    with OutputSet("attribute", made_with(args)) as outputs:
        outputs.mark(rep)
        rep.write(outputs.path(args.report))
        if args.out is not None:
            outputs.write(args.out, dumps_json(dict(summary, output_set=outputs.stamp), source=str(args.out), indent=1))
    print(att.finding())
    print("wrote " + ", ".join(map(str, outputs.written)))
    return 0
