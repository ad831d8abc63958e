"""Command-line subcommands of the validator, added to the main ``s2emu`` parser.

``emu.cli`` calls :func:`register` with its subparsers object; each subcommand
sets ``handler``, a function that takes the parsed arguments and returns the exit
code (0 success, 2 bad input, reported as one line ``s2emu compare: error: ...``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .compare import CompareError, build_report, pair_populations, summarize
from emu.spike_io import atomic_write, dumps_json, load_recording
from emu.spikes import RecordingError

PROG = "s2emu compare"


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``compare`` subcommand to ``subparsers``; returns its parser."""
    p = subparsers.add_parser(
        "compare",
        help="compare two spike recordings spike by spike",
        description=(
            "Compare spike recordings A and B (.json, .npz, .npy raster, .pkl): spike counts, "
            "coincidences by lag (lag L pairs A at tick t with B at t - L), best lag, distances, "
            "first divergence per neuron. Writes a JSON summary and optionally an HTML report "
            "(with its JSON beside it)."
        ),
    )
    p.add_argument("a", type=Path, help="recording A (e.g. the chip or the emulator)")
    p.add_argument("b", type=Path, help="recording B (e.g. the float reference)")
    p.add_argument("--max-lag", type=_non_negative_int, default=5, metavar="K", help="search lags -K..K (5)")
    p.add_argument("--window", type=_non_negative_int, default=1, metavar="W", help="coincidence window +-W ticks (1)")
    p.add_argument("--tau", type=_positive_float, default=5.0, help="van Rossum time constant in ticks (5)")
    p.add_argument("--q", type=_non_negative_float, default=0.5, help="Victor-Purpura cost per tick of shift (0.5)")
    p.add_argument(
        "--population",
        dest="populations",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="compare only these populations (default: all with the same name in A and B)",
    )
    p.add_argument("--out", type=Path, required=True, metavar="SUMMARY.json", help="where to write the summary")
    p.add_argument("--report", type=Path, metavar="REPORT.html", help="also write an HTML report (and REPORT.json)")
    p.set_defaults(handler=run_compare)
    return p


def run_compare(args: argparse.Namespace) -> int:
    """Handler of ``s2emu compare``: returns 0, or 2 after one error line on stderr."""
    problem = _output_problem(args.out, args.report)
    if problem:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 2
    try:
        a, b = load_recording(args.a), load_recording(args.b)
        pairs, notes = pair_populations(a, b, args.populations)
        summary = summarize(a, b, pairs, notes, args.max_lag, args.window, args.tau, args.q)
        atomic_write(args.out, dumps_json(summary, source=str(args.out), indent=1))
        written = [args.out]
        if args.report is not None:
            written += build_report(summary, pairs).write(args.report)
    except (RecordingError, CompareError, OSError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    c = summary["coincidences"]
    print(
        f"A: {summary['spike_counts']['a']} spikes, B: {summary['spike_counts']['b']} spikes, "
        f"{summary['ticks_compared']} ticks; best lag {summary['best_lag']:+d} with {c['best_lag']} "
        f"coincidences ({c['lag_0']} at lag 0)"
    )
    for note in notes:
        print(f"note: {note}")
    print("wrote " + ", ".join(map(str, written)))
    return 0


def _output_problem(out: Path, report: Path | None) -> str | None:
    """Why the outputs cannot be written (a missing folder, two outputs on one file), or None."""
    for path in (out, report):
        if path is not None and not path.parent.is_dir():
            return f"{path}: the folder {path.parent} does not exist"
    if report is not None:
        if report.suffix.lower() == ".json":
            return f"{report}: --report needs an .html name (its JSON goes beside it)"
        if report.with_suffix(".json").resolve() == out.resolve():
            return f"{out}: --out is also the JSON that goes beside --report {report}"
    return None
