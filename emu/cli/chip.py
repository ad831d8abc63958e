"""``s2emu chip-script`` and ``s2emu chip-run``: the same experiment on a SpiNNaker2 board."""
from __future__ import annotations

import dataclasses

from emu.chip import prepare_chip_job, run_on_backend, write_chip_script
from emu.cli.files import check_outputs
from emu.cli.options import profile_file_from_args, settings_from_args
from emu.cli.parser import CHIP_WEIGHTS
from emu.nir_import import read_nir
from emu.outputs import OutputSet
from emu.numerics import weight_max
from validate.conversion_warnings import print_warning, warn


def main(args) -> int:
    check_outputs(args.out)
    bits = CHIP_WEIGHTS[args.chip_weights]
    settings = settings_from_args(args, read_nir(args.model), preset="chip", weight_bits=bits)
    # automatic scaling aims at the chip model's weight range
    options = dataclasses.replace(settings.conversion, weight_max=weight_max(bits))
    reset = settings.profile.reset_mode
    pfile = profile_file_from_args(args)
    identity = pfile["profile_file"] if pfile else None
    if args.command == "chip-run":
        with OutputSet("chip-run") as outputs:
            rec = run_on_backend(args.model, args.input, args.ticks, options, backend=args.backend,
                                 eth_ip=args.eth_ip, reset=reset, record=args.record.split(","), sample=args.sample,
                                 out=outputs.path(args.out), max_atoms_per_core=dict(args.max_atoms),
                                 profile=settings.profile, warn=print_warning, profile_file=identity)
        counts = ", ".join(f"{n}: {int(rec.spike_counts(n).sum())}" for n in rec.populations)
        print(f"ran {rec.ticks} ticks on {args.backend}; spikes {counts}; wrote {args.out}")
        return 0
    job = prepare_chip_job(args.model, args.input, args.ticks, options, reset=reset, record=args.record.split(","),
                           sample=args.sample, profile=settings.profile, max_atoms_per_core=dict(args.max_atoms),
                           profile_file=identity)
    warn(job.warnings)  # the chip's constraints, zeroed weights among them (emu.chip.budget.fit_warnings)
    with OutputSet("chip-script") as outputs:
        write_chip_script(job, outputs.path(args.out), sys_tick_in_s=args.sys_tick_in_s)
    path = args.out
    print(f"wrote {path} ({job.ticks} ticks, {sum(len(t) for d in job.input_spikes.values() for t in d.values())} "
          f"input spikes embedded). On the machine attached to the board: python {path.name} --eth-ip <IP> "
          f"--out chip.json; then compare with s2emu validate --chip chip.json")
    return 0
