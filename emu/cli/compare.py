"""``s2emu compare``: two recordings spike by spike."""
from __future__ import annotations

from emu.cli.files import CommandFileError, check_outputs, made_with
from emu.outputs import OutputSet
from emu.spike_io import dumps_json, load_recording
from validate.compare import build_report, pair_populations, summarize


def main(args) -> int:
    check_outputs(args.out, report=args.report)
    a, b = load_recording(args.a), load_recording(args.b)
    longest = max(a.ticks, b.ticks)
    for flag, value in (("--max-lag", args.max_lag), ("--window", args.window)):
        if value > longest:
            raise CommandFileError(f"{flag} {value}: more ticks than the recordings have ({longest}); no spikes pair "
                                   f"that far apart: give at most {longest}")
    pairs, notes = pair_populations(a, b, args.populations)
    summary = summarize(a, b, pairs, notes, args.max_lag, args.window, args.tau, args.q)
    with OutputSet("compare", made_with(args)) as outputs:
        summary["output_set"] = outputs.stamp
        outputs.write(args.out, dumps_json(summary, source=str(args.out), indent=1))
        if args.report is not None:
            report = build_report(summary, pairs)
            outputs.mark(report)
            report.write(outputs.path(args.report))
    written = outputs.written
    c = summary["coincidences"]
    print(f"A: {summary['spike_counts']['a']} spikes, B: {summary['spike_counts']['b']} spikes, "
          f"{summary['ticks_compared']} ticks; best lag {summary['best_lag']:+d} with {c['best_lag']} "
          f"coincidences ({c['lag_0']} at lag 0)")
    for note in notes:
        print(f"note: {note}")
    print("wrote " + ", ".join(map(str, written)))
    return 0
