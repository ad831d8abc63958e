"""``s2emu demo``: the DVS-gesture pipeline end to end on built-in data (:mod:`emu.apps.demo`)."""
from __future__ import annotations

from pathlib import Path

from emu.apps.demo import MODEL, run_demo
from emu.cli.files import check_output_folder
from emu.cli.options import profile_file_from_args
from emu.parallel import check_scheduler


def main(args) -> int:
    check_output_folder(Path(args.out))
    check_scheduler(args.scheduler)
    profile_file_from_args(args)  # a bad or inexact profile file is said before any work
    run_demo(data=args.data, model=args.model or MODEL, per_class=args.per_class, ticks=args.ticks,
             percentile=args.percentile, out=args.out, profile_file=args.profile_file, scheduler=args.scheduler)
    return 0
