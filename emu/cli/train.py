"""``s2emu train``: train the DVS-gesture paper network (:mod:`emu.apps.gesture.train`)."""
from __future__ import annotations

from emu.apps.gesture.train import run


def main(args) -> int:
    run(args.root, synthetic=args.synthetic, epochs=args.epochs, ticks=args.ticks, batch_size=args.batch_size,
        lr=args.lr, loss=args.loss, seed=args.seed, checkpoint=args.checkpoint, resume=not args.no_resume,
        nir_path=args.nir, threads=args.threads, progress=not args.quiet, qat_bits=args.qat_bits,
        qat_percentile=args.qat_percentile)
    return 0
