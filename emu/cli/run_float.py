"""``s2emu run --backend snntorch``: the float reference (the NIR graph as snnTorch runs it), written
as ``s2emu run`` writes the emulator's runs (:mod:`emu.cli.run`)."""
from __future__ import annotations

import dataclasses
import time

from emu.cli.files import check_outputs
from emu.cli.options import settings_from_args
from emu.cli.run import finish, parse_record
from emu.inputs import InputError
from emu.nir_import import read_nir
from emu.spike_io import read_input
from validate.float_reference import FloatReference


def main(args) -> int:
    record = parse_record(args)
    check_outputs(args.out)
    if args.sensitivity:
        raise InputError("--sensitivity reruns the emulator: use it with --backend emulator")
    graph = read_nir(args.model)
    settings = settings_from_args(args, graph)
    model = FloatReference(graph, **dataclasses.asdict(settings.float))
    inputs, info = read_input(args.input, {n: model.shapes[n] for n in model.inputs}, dt=settings.float.dt,
                              ticks=args.ticks)
    what = (f"float reference (snnTorch, {settings.float.integrator}, {settings.float.reset} reset, "
            f"{settings.float.reset_timing.replace('_', ' ')})")
    t0 = time.perf_counter()
    result = model(inputs, ticks=args.ticks, record_v="v" in record)
    return finish(args, result, info, settings, record, what, time.perf_counter() - t0, {})
