"""Command-line options -> the core's conversion options and semantics profile."""
from __future__ import annotations

from typing import Optional

from emu.nir_import import ConversionOptions
from emu.numerics import weight_max
from emu.profile import SemanticsProfile


def conversion_from_args(args, weight_bits: Optional[int] = None) -> ConversionOptions:
    """The conversion options; automatic scaling aims at ``weight_bits`` (default: ``--weight-bits``, else 8)."""
    scale = "auto" if args.auto_scale else args.scale
    wmax = weight_max(weight_bits or getattr(args, "weight_bits", None) or 8)
    return ConversionOptions(dt=args.dt, integrator=args.integrator, weight_scale=scale, weight_max=wmax,
                             scale_percentile=args.scale_percentile, conn_delay=args.conn_delay,
                             allow_unsupported=args.allow_unsupported)


def profile_from_args(args) -> SemanticsProfile:
    changes = dict(reset_mode=args.reset)
    for opt, field in (("reset_timing", "reset_timing"), ("weight_bits", "weight_bits"),
                       ("weight_rounding", "weight_rounding"), ("membrane_bits", "membrane_bits"),
                       ("frac_bits", "membrane_frac_bits"), ("rounding", "fixed_rounding"), ("seed", "seed")):
        if getattr(args, opt) is not None:
            changes[field] = getattr(args, opt)
    if args.saturate_weights:
        changes["weight_overflow"] = "saturate"
    return SemanticsProfile.preset(args.profile, **changes)
