"""The ``validate`` and ``attribute`` subcommands of ``s2emu``.

``s2emu validate MODEL.nir --input FILE [--chip RECORDING] [--snntorch] --report REPORT.html``
    Emulates the model with the chip profile on one input sample and compares it
    spike by spike with a chip recording (``--chip``, any layout
    :func:`emu.spike_io.load_recording` reads) and/or the snnTorch float
    reference (``--snntorch``; implied when no ``--chip`` is given), each
    population shifted by its synaptic latency. The report (HTML plus JSON beside
    it) has per population the rasters side by side, mismatch bars, a divergence
    heat map and where the runs first differ (:func:`validate.localize.localize`).

``s2emu attribute MODEL.nir --inputs DIR_OR_FILE [--labels FILE] --report REPORT.html``
    The waterfall of :mod:`validate.attribution` over many samples: how much of
    the spike mismatch and of the accuracy drop each factor between snnTorch and
    the chip causes, with the sentence that sums it up.

Both take the converter's options (``emu.cli.add_conversion_args``) and the
chip profile's (``emu.cli.add_profile_args``). Bad input gives one line
``s2emu <command>: error: ...`` and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from emu.cli import add_conversion_args, add_profile_args, conversion_from_args, profile_from_args
from emu.engine import Emulator, normalize_inputs
from emu.network import Network
from emu.profile import SemanticsProfile

from .attribution import AttributionError, attribute
from .compare import CompareError, pair_populations, summarize
from .localize import LocalizeError, localize
from emu.timing import latency_shifts
from emu.spike_io import atomic_write, dumps_json, load_recording
from emu.spikes import Recording, RecordingError
from .report import Report, divergence_heatmap, mismatch_bars, raster_figure


class ValidateCommandError(ValueError):
    """Bad command-line input of ``validate`` / ``attribute`` (files, options)."""


def _errors() -> tuple:
    """Errors of the validator printed as one line (emu.cli.main prints its own USER_ERRORS).

    The snnTorch runner (and torch) is imported only when a command runs, not when
    ``s2emu`` builds its parser.
    """
    from .snntorch_runner import RunnerError

    from emu.chip import ManifestMismatch

    return (ValidateCommandError, RecordingError, CompareError, LocalizeError, RunnerError, AttributionError,
            ManifestMismatch, OSError)

INPUT_SUFFIXES = (".json", ".npy", ".npz")
MAX_RASTER_FIGURES = 12


def _fail(prog: str, exc: Exception) -> int:
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    print(f"s2emu {prog}: error: {msg}", file=sys.stderr)
    return 2


def _check_outputs(report: Path, out: Optional[Path]) -> None:
    for path in (report, out):
        if path is not None and not path.parent.is_dir():
            raise ValidateCommandError(f"{path}: the folder {path.parent} does not exist")
    if report.suffix.lower() == ".json":
        raise ValidateCommandError(f"{report}: --report needs an .html name (its JSON goes beside it)")
    if out is not None and out.resolve() == report.with_suffix(".json").resolve():
        raise ValidateCommandError(f"{out}: --out is also the JSON that goes beside --report {report}")


def register(subparsers) -> None:
    """Add ``validate`` and ``attribute`` to the ``s2emu`` subcommands."""
    p = subparsers.add_parser(
        "validate", help="emulate a NIR model and compare it spike by spike with a chip recording / snnTorch",
        description="Emulate MODEL.nir with the chip profile on one input sample and compare it with a chip "
                    "recording (--chip) and/or the snnTorch float reference (--snntorch, implied without --chip): "
                    "rasters, mismatches per population, divergence heat maps and where the runs first differ.")
    p.add_argument("model", type=Path, help="NIR file")
    p.add_argument("--input", required=True, type=Path, help="input spikes: JSON spike dict, raster .npy/.npz, events")
    p.add_argument("--chip", type=Path, metavar="RECORDING", help="chip recording (.json, .npz, .npy, .pkl)")
    p.add_argument("--snntorch", action="store_true", help="also run the snnTorch float reference")
    p.add_argument("--report", required=True, type=Path, metavar="REPORT.html", help="HTML report (+ JSON beside it)")
    p.add_argument("--out", type=Path, metavar="SUMMARY.json", help="also write the full summary as JSON")
    p.add_argument("--ticks", type=int, help="ticks to run (default: input length)")
    p.add_argument("--sample", type=int, default=0, help="which sample of a batch input to validate (0)")
    p.add_argument("--population", dest="populations", action="extend", nargs="+", metavar="NAME",
                   help="compare with the chip recording only these populations")
    p.add_argument("--max-lag", type=int, default=3, help="lags searched around the expected one (3)")
    add_conversion_args(p)
    add_profile_args(p)
    p.set_defaults(handler=run_validate)

    q = subparsers.add_parser(
        "attribute", help="waterfall: which semantic factor costs how much spike agreement and accuracy",
        description="Switch the factors between snnTorch float semantics and the chip (latency, reset timing, "
                    "reset mode, weight quantization, float32 arithmetic, optionally fixed point) one at a time "
                    "over many samples; report each factor's share of the spike mismatch and of the accuracy drop.")
    q.add_argument("model", type=Path, help="NIR file")
    q.add_argument("--inputs", required=True, type=Path, metavar="DIR_OR_FILE",
                   help="an input file (one sample or a batch) or a folder of them (.json, .npy, .npz; sorted by name)")
    q.add_argument("--labels", type=Path, metavar="FILE",
                   help="class labels, one per sample in order (.npy, .json list, or text/CSV of integers)")
    q.add_argument("--report", required=True, type=Path, metavar="REPORT.html", help="HTML report (+ JSON beside it)")
    q.add_argument("--out", type=Path, metavar="SUMMARY.json", help="also write the full attribution as JSON")
    q.add_argument("--ticks", type=int, help="ticks per sample (default: each input's length)")
    q.add_argument("--output-population", metavar="NAME", help="population whose spike counts classify (default: last)")
    q.add_argument("--float-reset", choices=("zero", "subtract"),
                   help="reset of the snnTorch model (default: the chip's --reset)")
    q.add_argument("--fixed", action="store_true", help="add a fixed-point membrane as a last factor")
    q.add_argument("--alone", action="store_true", help="also run each factor switched on alone")
    q.add_argument("--no-pad", action="store_true",
                   help="run latency-shifted configurations for the input length only (cut the late response)")
    add_conversion_args(q)
    add_profile_args(q)
    q.set_defaults(handler=run_attribute)


# validate ---------------------------------------------------------------------------
def run_validate(args: argparse.Namespace) -> int:
    errors = _errors()
    try:
        return _validate(args)
    except errors as exc:
        return _fail("validate", exc)


def _recording(result, source: str) -> Recording:
    rec = result.sample(0)
    rec.source = source
    return rec


def _validate(args) -> int:
    from emu.spike_io import read_input
    from emu.nir_import import from_nir

    _check_outputs(args.report, args.out)
    if args.max_lag < 0:
        raise ValidateCommandError(f"--max-lag must be >= 0, got {args.max_lag}")
    network = from_nir(args.model, conversion_from_args(args))
    profile = profile_from_args(args)
    inputs, info = read_input(args.input, network, dt=args.dt, ticks=args.ticks)
    rasters, ticks = normalize_inputs(network, inputs, args.ticks)
    batch = next(iter(rasters.values())).shape[0]
    if not 0 <= args.sample < batch:
        raise ValidateCommandError(f"--sample {args.sample}: the input has {batch} sample(s)")
    one = {k: r[args.sample:args.sample + 1] for k, r in rasters.items()}
    emu_run = Emulator(network, profile)(one, ticks=ticks, record_v=True)
    emu_rec = _recording(emu_run, f"emulator ({args.profile} profile)")
    use_snntorch = args.snntorch or args.chip is None
    report = Report(f"Validation of {args.model.name}")
    report.add_text(f"Model {args.model}, input {args.input} (sample {args.sample}, {ticks} ticks), profile "
                    f"{profile.describe()}, conversion {network.meta.get('conversion', {})}.")
    if args.chip is None and not args.snntorch:
        report.add_text("No --chip recording given: compared with the snnTorch float reference.")
    summary = dict(model=str(args.model), input=str(args.input), sample=args.sample, ticks=ticks,
                   profile=profile.describe(), comparisons={})
    lines = []
    if args.chip is not None:
        chip = load_recording(args.chip)
        if "manifest" in chip.meta:
            # a recording from s2emu chip-script / chip-run: refuse it unless it was
            # made from this model, input, conversion and tick count
            from emu.chip import check_manifest

            check_manifest(chip.meta, args.model, args.input, conversion_from_args(args), ticks,
                           reset=args.reset, sample=args.sample, source=str(args.chip))
            report.add_text(f"Chip recording {args.chip}: manifest matches model, input, options and ticks.")
        else:
            report.add_text(f"Chip recording {args.chip} has no manifest: not checked against model and input.")
        comp = _comparison(report, network, emu_rec, chip, "emulator", "chip", args.populations, profile,
                           {n: 0 for n in network.populations}, args.max_lag)
        summary["comparisons"]["emulator_vs_chip"] = comp
        lines.append(("emulator vs chip", comp))
    if use_snntorch:
        from .snntorch_runner import run_snntorch

        ref_profile = SemanticsProfile.snntorch(reset_mode=profile.reset_mode)
        sn_run = run_snntorch(network, one, ticks, reset=profile.reset_mode)
        sn_rec = _recording(sn_run, "snnTorch (float64)")
        shifts = latency_shifts(network, profile, ref_profile, reference_delays=False)
        report.add_text(f"snnTorch reference: {sn_run.meta['delays_ignored']} projection delays dropped (snnTorch "
                        f"has none); beta held as float32 as snnTorch does. The emulator's populations lag it by "
                        f"{shifts} ticks; comparisons shift them back.")
        comp = _comparison(report, network, emu_rec, sn_rec, "emulator", "snnTorch", None, None, shifts,
                           args.max_lag)
        summary["comparisons"]["emulator_vs_snntorch"] = comp
        lines.append(("emulator vs snnTorch", comp))
    written = list(report.write(args.report))
    if args.out is not None:
        atomic_write(args.out, dumps_json(summary, source=str(args.out), indent=1))
        written.append(args.out)
    if args.chip is not None and "manifest" not in chip.meta:
        print(f"note: {args.chip} has no manifest (not written by s2emu chip-script / chip-run): not checked "
              f"against this model, input and options")
    for title, comp in lines:
        print(f"{title}: {comp['mismatches']} mismatching cells after alignment "
              f"({comp['spikes_a']} vs {comp['spikes_b']} spikes). {comp['localization']['sentence']}")
    print("wrote " + ", ".join(map(str, written)))
    return 0


def _comparison(report: Report, network: Network, a: Recording, b: Recording, label_a: str, label_b: str,
                populations, profile, shifts: Dict[str, int], max_lag: int) -> dict:
    """Add one comparison (A vs B, A lagging by ``shifts``) to the report; return its summary."""
    pairs, notes = pair_populations(a, b, populations)
    lag_span = max_lag + max([0] + [shifts.get(p.name, 0) for p in pairs])
    summary = summarize(a, b, pairs, notes, max_lag=lag_span)
    unknown = [p.name for p in pairs if p.name not in network.populations]
    if unknown:
        raise CompareError(f"{b.source}: population {unknown[0]!r} is not in the model "
                           f"(it has {', '.join(network.populations)})")
    side_a = Recording.from_rasters({p.name: p.a for p in pairs}, v={p.name: p.v_a for p in pairs if p.v_a is not None},
                                    source=a.source)
    side_b = Recording.from_rasters({p.name: p.b for p in pairs}, v={p.name: p.v_b for p in pairs if p.v_b is not None},
                                    source=b.source)
    loc = localize(side_a, side_b, network, profile=profile, shift={p.name: shifts.get(p.name, 0) for p in pairs},
                   labels=(label_a, label_b))
    report.add_heading(f"{label_a} vs {label_b}")
    for note in notes:
        report.add_text(f"Note: {note}")
    report.add_text(loc.sentence())
    rows = []
    for p in pairs:
        s = summary["populations"][p.name]
        lag = shifts.get(p.name, 0)
        n_cells = max(0, p.a.shape[0] - lag)
        mism = int((p.a[lag:lag + n_cells] != p.b[:n_cells]).sum())
        rows.append({"population": p.name, "neurons": p.a.shape[1], f"spikes {label_a}": int(p.a.sum()),
                     f"spikes {label_b}": int(p.b.sum()), "expected lag": lag, "best lag": s["best_lag"],
                     "mismatches (aligned)": mism,
                     "first difference (aligned)": loc.first_ticks.get(p.name)})
    report.add_table(rows, caption=f"per population; {label_a} lags {label_b} by the expected lag (latency)")
    hidden = ("first_ticks", "compared", "labels", "sentence")
    report.add_table([{k: (str(v) if isinstance(v, (list, dict, tuple)) else v)
                       for k, v in loc.to_dict().items() if k not in hidden}],
                     caption="localization of the first difference")
    report.add_figure(mismatch_bars([r["population"] for r in rows], [r[f"spikes {label_a}"] for r in rows],
                                    [r[f"spikes {label_b}"] for r in rows], [r["mismatches (aligned)"] for r in rows],
                                    label_a, label_b),
                      f"{label_a} vs {label_b}: spikes and mismatching cells (aligned) per population", data=rows)
    shown = [p for p in pairs if network.populations[p.name].model != "input"]
    for p in shown[:MAX_RASTER_FIGURES]:
        lag = shifts.get(p.name, 0)
        report.add_heading(f"{p.name}: {label_a} vs {label_b}", level=3)
        report.add_figure(raster_figure(p.a, p.b, label_a, label_b, lag,
                                        f"{p.name}: red = no partner at lag {lag:+d}"),
                          f"{p.name}: rasters side by side ({label_a} lags by {lag})")
        report.add_figure(divergence_heatmap(p.a, p.b, lag=lag), f"{p.name}: where they differ (lag {lag:+d})")
    if len(shown) > MAX_RASTER_FIGURES:
        report.add_text(f"Rasters of {len(shown) - MAX_RASTER_FIGURES} more populations are left out.")
    total = sum(r["mismatches (aligned)"] for r in rows)
    return dict(rows=rows, mismatches=total, spikes_a=sum(r[f"spikes {label_a}"] for r in rows),
                spikes_b=sum(r[f"spikes {label_b}"] for r in rows), localization=loc.to_dict(), compare=summary)


# attribute --------------------------------------------------------------------------
def run_attribute(args: argparse.Namespace) -> int:
    errors = _errors()
    try:
        return _attribute(args)
    except errors as exc:
        return _fail("attribute", exc)


def input_files(path: Path, exclude: Optional[Path] = None) -> List[Path]:
    """The input files a path names: itself, or a folder's .json/.npy/.npz files sorted by name."""
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in INPUT_SUFFIXES
                       and (exclude is None or f.resolve() != exclude.resolve()))
        if not files:
            raise ValidateCommandError(f"{path}: no input files (.json, .npy, .npz) in this folder")
        return files
    if not path.exists():
        raise ValidateCommandError(f"{path}: no such input file or folder")
    return [path]


def read_samples(files: List[Path], network: Network, dt: float, ticks: Optional[int], progress=None) -> list:
    """Every sample of every file, as ``{input population: (1, T, N)}`` in file order."""
    from emu.spike_io import read_input

    items = files
    if progress if progress is not None else len(files) > 5:
        from tqdm import tqdm

        items = tqdm(files, desc="reading inputs", unit="file")
    samples = []
    for f in items:
        inputs, _ = read_input(f, network, dt=dt, ticks=ticks)
        rasters, _ = normalize_inputs(network, inputs, ticks)
        batch = next(iter(rasters.values())).shape[0]
        samples += [{k: r[b:b + 1] for k, r in rasters.items()} for b in range(batch)]
    return samples


def read_labels(path: Path) -> np.ndarray:
    """Integer class labels from .npy, JSON (a list, or {"labels": [...]}) or text/CSV."""
    if not path.is_file():
        raise ValidateCommandError(f"{path}: no such labels file")
    try:
        if path.suffix.lower() == ".npy":
            labels = np.load(path, allow_pickle=False)
        elif path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            labels = np.asarray(data["labels"] if isinstance(data, dict) else data)
        else:
            text = path.read_text().replace(",", " ").split()
            labels = np.array([float(x) for x in text])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidateCommandError(f"{path}: unreadable labels ({type(exc).__name__}: {exc})") from None
    labels = np.asarray(labels).reshape(-1) if np.ndim(labels) == 2 and 1 in np.shape(labels) else labels
    if labels.ndim != 1 or labels.dtype.kind not in "iuf" or (
            labels.dtype.kind == "f" and not np.all(labels == np.round(labels))):
        raise ValidateCommandError(f"{path}: labels must be a list of integer class indices, got shape "
                                   f"{labels.shape} of {labels.dtype}")
    return labels.astype(np.int64)


def _attribute(args) -> int:
    from emu.nir_import import from_nir

    _check_outputs(args.report, args.out)
    network = from_nir(args.model, conversion_from_args(args))
    target = profile_from_args(args)
    source = SemanticsProfile.snntorch(reset_mode=args.float_reset or target.reset_mode)
    files = input_files(args.inputs, exclude=args.labels)
    samples = read_samples(files, network, args.dt, args.ticks)
    labels = read_labels(args.labels) if args.labels is not None else None
    att = attribute(network, samples, labels, source=source, target=target, output=args.output_population,
                    pad=not args.no_pad, include_fixed=args.fixed, alone=args.alone)
    rep = att.report(f"Where accuracy is lost: {args.model.name}, snnTorch float -> {args.profile} profile")
    for note in att.settings.get("notes", []):
        print(f"note: {note}", file=sys.stderr)
    written = list(rep.write(args.report))
    if args.out is not None:
        atomic_write(args.out, dumps_json(att.to_dict(), source=str(args.out), indent=1))
        written.append(args.out)
    print(att.sentence())
    print("wrote " + ", ".join(map(str, written)))
    return 0
