"""``S2EMU_FAST=1``: the commands whose settings take minutes (training, the demo, a sweep) run a
short version of themselves, so that the README's commands run verbatim in the test suite
(``tests/test_readme.py``) in seconds. Only an environment variable turns it on, never a
flag a user would type; every value it lowers is said on stderr.
"""
from __future__ import annotations

import os
import sys
from typing import List, Mapping, Sequence, Tuple

VARIABLE = "S2EMU_FAST"

#: per command, the most each argument may be under S2EMU_FAST (its dest name -> cap)
CAPS: Mapping[str, Mapping[str, int]] = {
    "train": {"epochs": 1, "synthetic": 1, "ticks": 25},
    "sweep": {"synthetic": 4, "train_synthetic": 4, "qat_epochs": 1, "ticks": 30, "workers": 0},
    "demo": {"per_class": 1, "ticks": 60},
}
#: under S2EMU_FAST, the samples of ``--inputs`` (validate, attribute) that are kept: the first ones
SAMPLES = 3


def fast_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether S2EMU_FAST is set to anything but empty or 0."""
    return environ.get(VARIABLE, "") not in ("", "0")


def apply_fast(args, environ: Mapping[str, str] = os.environ) -> List[str]:
    """Lower ``args``' values to :data:`CAPS` of its command when S2EMU_FAST is on; returns one
    line per value lowered (``--epochs 12 -> 1``), nothing when it is off."""
    if not fast_enabled(environ):
        return []
    lowered = []
    for name, cap in CAPS.get(args.command, {}).items():
        value = getattr(args, name, None)
        if value is not None and value > cap:
            setattr(args, name, cap)
            lowered.append(f"--{name.replace('_', '-')} {value} -> {cap}")
    return [f"{VARIABLE}={environ[VARIABLE]}: " + ", ".join(lowered)] if lowered else []


def fast_samples(samples: Sequence, *aligned: Sequence, environ: Mapping[str, str] = os.environ) -> Tuple[list, ...]:
    """``samples`` and the lists ``aligned`` with them (names, labels), cut to their first
    :data:`SAMPLES` when S2EMU_FAST is on (said on stderr); unchanged when it is off."""
    lists = (list(samples), *aligned)
    if not fast_enabled(environ) or len(samples) <= SAMPLES:
        return lists
    print(f"{VARIABLE}={environ[VARIABLE]}: the first {SAMPLES} of {len(samples)} samples", file=sys.stderr)
    return tuple(None if a is None else a[:SAMPLES] for a in lists)
