"""``s2emu compare``: two recordings spike by spike."""
from __future__ import annotations

from emu.cli.files import check_outputs
from emu.spike_io import atomic_write, dumps_json, load_recording
from validate.compare import build_report, pair_populations, summarize


def main(args) -> int:
    check_outputs(args.out, report=args.report)
    a, b = load_recording(args.a), load_recording(args.b)
    pairs, notes = pair_populations(a, b, args.populations)
    summary = summarize(a, b, pairs, notes, args.max_lag, args.window, args.tau, args.q)
    atomic_write(args.out, dumps_json(summary, source=str(args.out), indent=1))
    written = [args.out]
    if args.report is not None:
        written += build_report(summary, pairs).write(args.report)
    c = summary["coincidences"]
    print(f"A: {summary['spike_counts']['a']} spikes, B: {summary['spike_counts']['b']} spikes, "
          f"{summary['ticks_compared']} ticks; best lag {summary['best_lag']:+d} with {c['best_lag']} "
          f"coincidences ({c['lag_0']} at lag 0)")
    for note in notes:
        print(f"note: {note}")
    print("wrote " + ", ".join(map(str, written)))
    return 0
