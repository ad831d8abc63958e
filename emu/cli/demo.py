"""``s2emu demo``: the DVS-gesture pipeline end to end on built-in data (:mod:`emu.apps.demo`)."""
from __future__ import annotations

from emu.apps.demo import MODEL, run_demo


def main(args) -> int:
    run_demo(data=args.data, model=args.model or MODEL, per_class=args.per_class, ticks=args.ticks,
             percentile=args.percentile, out=args.out)
    return 0
