"""``s2emu fit``: the chip memory of a model, per population (the model of :mod:`emu.chip.budget`),
and, when it does not fit, the ``--max-atoms`` split that does (:func:`emu.chip.budget.suggest_split`)."""
from __future__ import annotations

import json
import sys

from emu.chip import fit_table, format_fit_table
from emu.chip.budget import suggest_split
from emu.cli.options import settings_from_args
from emu.inputs import InputError
from emu.nir_import import from_nir, read_nir
from emu.resources import ResourceError
from validate.conversion_warnings import warn_zeroed_weights


#: the exit status of a model that does not fit (documented in the README)
NOT_FITTING = 3


def main(args) -> int:
    record = [r.strip() for r in args.record.split(",") if r.strip()]
    if not set(record) <= {"spikes", "v"} or "spikes" not in record:
        raise InputError(f"--record takes spikes or spikes,v, got {args.record!r}")
    graph = read_nir(args.model)
    settings = settings_from_args(args, graph, preset="chip")
    try:
        network = from_nir(graph, settings.conversion)
    except ResourceError as exc:  # too large to even convert here: far too large for a board
        print(f"s2emu fit: error: {exc}; the model does NOT fit (exit status {NOT_FITTING})", file=sys.stderr)
        return NOT_FITTING
    table = fit_table(network, args.ticks, settings.profile, record=record, max_atoms_per_core=dict(args.max_atoms))
    table["suggested_split"] = suggest_split(network, table, settings.profile, max_atoms_per_core=dict(args.max_atoms))
    warn_zeroed_weights(network, settings.profile, summary=table)
    print(json.dumps(table, indent=1) if args.json else format_fit_table(table))
    return 0 if table["fits"] else NOT_FITTING
