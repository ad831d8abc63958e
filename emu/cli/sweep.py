"""``s2emu sweep``: a precision grid on the emulator (:mod:`emu.apps.sweep`)."""
from __future__ import annotations

import dataclasses
import functools
import sys

from emu.apps.sweep import choose, grid, latest, load_data, pareto_front, point_key, run_sweep, write_report
from emu.apps.sweep.qat import QatTraining, SweepError, load_train_set, qat_dir
from emu.cli.files import check_outputs, made_with
from emu.cli.options import settings_from_args
from emu.nir_import import read_nir
from emu.outputs import OutputSet, exclusive
from emu.parallel import check_scheduler
from emu.profile import ProfileError, SemanticsProfile


def _options(args) -> dict:
    """Conversion options of the ptq method (the qat method derives its own, see conversion_of):
    the flags' over a --profile-file's, always scaled per population (its percentile: the flag's,
    else the profile file's, else 99.9)."""
    # only the conversion is read here: the profile is each point's (_base_profile), and the grid's
    # lists are not one profile's values
    settings = settings_from_args(args, read_nir(args.model), preset="chip", weight_bits=None, membrane_bits=None,
                                  fixed_rounding=None, weight_scale="auto")
    opts = dataclasses.asdict(settings.conversion)
    opts.update(weight_scale="auto", scale_percentile=settings.conversion.scale_percentile or 99.9)
    opts.pop("weight_max")  # each point sets its own
    return opts


def _base_profile(args):
    """With --profile-file: the calibrated profile every grid point varies (its bits, rounding and
    arithmetic are the point's), else None (the chip's)."""
    if args.profile_file is None:
        return None
    settings = settings_from_args(args, read_nir(args.model), preset="chip", weight_bits=None, membrane_bits=None,
                                  fixed_rounding=None)  # the grid's lists: each point sets its own
    return dict(settings.profile.describe(), profile_file=settings.sources.get("profile_file"))


def _qat_training(args, ticks: int):
    """The qat method's training as the command line says, on samples of the test data's ``ticks``."""
    if "qat" not in args.method:
        return None
    samples = functools.partial(load_train_set, args.train_data, args.train_synthetic, ticks, qat_dir(args.out))
    data = f"{args.train_data} (train split)" if args.train_data else f"synthetic {args.train_synthetic}"
    return QatTraining(samples, epochs=args.qat_epochs, lr=args.qat_lr, data=data)


def check_grid(points) -> None:
    """Refuse, before any work, an empty grid or bit counts no point can run with."""
    if not points:
        raise SweepError("the grid is empty: give at least one value to --weight-bits, --membrane-bits, --rounding "
                         "and --method")
    for p in points:
        try:
            SemanticsProfile.fixed(weight_bits=p["weight_bits"], membrane_bits=p["membrane_bits"],
                                   membrane_frac_bits=0)
        except ProfileError as exc:
            flag = "--weight-bits" if "weight_bits" in str(exc) else "--membrane-bits"
            value = p["weight_bits"] if flag == "--weight-bits" else p["membrane_bits"]
            raise SweepError(f"{flag} {value}: {str(exc).replace('profile option ', '')}") from None


#: exit status when some grid points failed (all failed: 2, as any error)
SOME_FAILED = 1


def main(args) -> int:
    check_outputs(args.out, report=args.report)
    check_scheduler(args.scheduler)
    if not args.data and not args.synthetic:
        raise SweepError("give --data ROOT|FILE.npz or --synthetic N")
    if "qat" in args.method and not (args.train_data or args.train_synthetic):
        raise SweepError("--method qat fine-tunes on training data: give --train-data ROOT or --train-synthetic N")
    points = grid(args.weight_bits, args.membrane_bits, args.rounding, args.method)
    check_grid(points)
    with exclusive(args.out), OutputSet("sweep", made_with(args)) as outputs:  # one writer of the results and its report
        return _sweep(args, points, outputs)


def _sweep(args, points, outputs: OutputSet) -> int:
    x, y = load_data(args.data, args.synthetic, args.ticks, args.out)
    log = lambda s: print(s, flush=True)  # noqa: E731
    log(f"{len(y)} samples x {x.shape[1]} ticks; model {args.model}")
    rows = run_sweep(args.model, x.reshape(x.shape[0], x.shape[1], -1), y, points, args.out,
                     options=_options(args), workers=args.workers, scheduler=args.scheduler,
                     frac_bits=args.frac_bits, output=args.output, seed=args.seed or 0,
                     qat=_qat_training(args, x.shape[1]), log=log, base_profile=_base_profile(args))
    keys = {point_key(p) for p in points}
    rows = [r for r in latest(rows) if r.get("key") in keys]
    chosen = choose(rows, args.tolerance)
    front = pareto_front(rows)
    log("Pareto front: " + ", ".join(f"{r['key']} ({r['accuracy']:.3f}, {r['memory_bytes']} B)" for r in front))
    if chosen:
        log(f"chosen: {chosen['key']} accuracy {chosen['accuracy']:.3f}, memory {chosen['memory_bytes']} B")
    failed = [r for r in rows if r.get("status") != "ok"]
    if failed:
        log(f"{len(failed)} point(s) failed: " + "; ".join(f"{r['key']}: {r.get('error')}" for r in failed))
    if args.report:
        write_report(rows, outputs.path(args.report), tolerance=args.tolerance,
                     note=f"model {args.model}; {len(y)} samples x {x.shape[1]} ticks; results {args.out}")
        log(f"report: {args.report}")
    if failed:
        status = 2 if len(failed) == len(rows) else SOME_FAILED
        print(f"s2emu sweep: {len(failed)} of {len(rows)} point(s) failed (their rows in {args.out} say why); exit "
              f"status {status}", file=sys.stderr)
        return status
    return 0
