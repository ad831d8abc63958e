"""``s2emu fit``: the chip memory of a model, per population (the model of :mod:`emu.chip.budget`)."""
from __future__ import annotations

import json

from emu.chip import fit_table, format_fit_table
from emu.cli.options import conversion_from_args
from emu.inputs import InputError
from emu.nir_import import from_nir
from emu.profile import SemanticsProfile


def main(args) -> int:
    record = [r.strip() for r in args.record.split(",") if r.strip()]
    if not set(record) <= {"spikes", "v"} or "spikes" not in record:
        raise InputError(f"--record takes spikes or spikes,v, got {args.record!r}")
    network = from_nir(args.model, conversion_from_args(args))
    profile = SemanticsProfile.chip(**({"weight_bits": args.weight_bits} if args.weight_bits else {}))
    table = fit_table(network, args.ticks, profile, record=record, max_atoms_per_core=dict(args.max_atoms))
    print(json.dumps(table, indent=1) if args.json else format_fit_table(table))
    return 0
