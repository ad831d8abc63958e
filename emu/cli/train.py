"""``s2emu train``: train the DVS-gesture paper network (:mod:`emu.apps.gesture.train`)."""
from __future__ import annotations

from pathlib import Path

from emu.apps.gesture.train import run
from emu.cli.files import check_output_folder, check_outputs


def main(args) -> int:
    check_output_folder(Path(args.root))
    check_outputs(*(Path(p) for p in (args.nir, args.checkpoint) if p))
    run(args.root, synthetic=args.synthetic, epochs=args.epochs, ticks=args.ticks, batch_size=args.batch_size,
        lr=args.lr, loss=args.loss, seed=args.seed, checkpoint=args.checkpoint, resume=not args.no_resume,
        nir_path=args.nir, threads=args.threads, progress=not args.quiet, qat_bits=args.qat_bits,
        qat_percentile=args.qat_percentile, resume_anyway=args.resume_anyway)
    return 0
