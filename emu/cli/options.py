"""Command-line flags -> :func:`emu.settings.resolve` (flag > profile file > graph metadata > default)."""
from __future__ import annotations

import sys
from typing import Optional

from emu.nir_import import from_nir, read_nir
from emu.settings import Settings, load_profile_file, resolve

#: profile flags and the SemanticsProfile field each sets
PROFILE_FLAGS = (("reset", "reset"), ("reset_timing", "reset_timing"), ("weight_bits", "weight_bits"),
                 ("weight_rounding", "weight_rounding"), ("membrane_bits", "membrane_bits"),
                 ("frac_bits", "membrane_frac_bits"), ("rounding", "fixed_rounding"), ("seed", "seed"),
                 ("arithmetic", "arithmetic"), ("spike_condition", "spike_condition"),
                 ("synaptic_latency", "synaptic_latency"), ("cuba_current", "cuba_current"),
                 ("bias_path", "bias_path"), ("decay_storage", "decay_storage"))


def flags_from_args(args) -> dict:
    """The semantic values the user set on the command line (unset ones are None)."""
    get = lambda name: getattr(args, name, None)  # noqa: E731
    flags = dict(dt=get("dt"), integrator=get("integrator"), conn_delay=get("conn_delay"),
                 weight_scale="auto" if get("auto_scale") else get("scale"),
                 scale_percentile=get("scale_percentile"), allow_unsupported=get("allow_unsupported") or None,
                 weight_overflow="saturate" if get("saturate_weights") else None)
    flags.update({field: get(flag) for flag, field in PROFILE_FLAGS})
    return flags


def profile_file_from_args(args) -> Optional[dict]:
    """The calibrated profile file given with ``--profile-file``, loaded once per command (None
    without one); a profile that did not reproduce its recording is said on stderr, once."""
    path = getattr(args, "profile_file", None)
    if path is None:
        return None
    if getattr(args, "_profile_file", None) is None:
        args._profile_file = load_profile_file(path)
        calibration = args._profile_file.get("calibration") or {}
        if calibration and not calibration["exact"]:
            missed = calibration.get("mismatching_cells")
            print(f"warning: {path}: this profile is not exact: no profile s2emu calibrate searched reproduced the "
                  f"board's recording (the closest, this one, missed "
                  f"{'some' if missed is None else format(missed, ',')} spike cells), so runs under it are not a "
                  f"calibrated prediction of that board", file=sys.stderr)
    return args._profile_file


def settings_from_args(args, graph, preset: Optional[str] = None, **overrides) -> Settings:
    """The run's settings: the flags of ``args`` (and ``overrides``) over a ``--profile-file``
    over ``graph``'s metadata."""
    flags = dict(flags_from_args(args), **overrides)
    return resolve(flags, graph, profile_file=profile_file_from_args(args),
                   preset=preset or getattr(args, "profile", None) or "chip", source=str(args.model))


def model_from_args(args):
    """(NIR graph, settings, converted network) of ``args.model`` under the command's flags."""
    graph = read_nir(args.model)
    settings = settings_from_args(args, graph)
    return graph, settings, from_nir(graph, settings.conversion)
