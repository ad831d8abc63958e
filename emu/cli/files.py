"""Files the commands write: checked before any work (the samples of ``--inputs``: :mod:`emu.cli.samples`)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from emu.errors import UserError
from emu.inputs import InputError, normalize_inputs
from emu.network import Network
from emu.spike_io import read_input


class CommandFileError(UserError):
    """An input or output path a command cannot use (the message names it)."""


def check_outputs(*paths: Optional[Path], report: Optional[Path] = None) -> None:
    """Refuse, before any work, outputs that could not be written: a missing or read-only
    folder, an HTML report named .json, or an output that is also the JSON beside the report."""
    for path in [p for p in paths if p is not None] + ([report] if report is not None else []):
        folder = path.parent
        if not folder.is_dir():
            raise CommandFileError(f"{path}: the folder {folder} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise CommandFileError(f"{path}: the folder {folder} is not writable")
        if path.is_dir():
            raise CommandFileError(f"{path}: is a folder, not a file name")
    if report is not None:
        if report.suffix.lower() == ".json":
            raise CommandFileError(f"{report}: --report needs an .html name (its JSON goes beside it)")
        for path in paths:
            if path is not None and path.resolve() == report.with_suffix(".json").resolve():
                raise CommandFileError(f"{path}: --out is also the JSON that goes beside --report {report}")


#: arguments that decide where and how a command runs, not what it writes
NOT_CONTENT = ("out", "report", "scheduler", "workers", "threads", "quiet", "command", "handler_module",
               "handler_by_backend", "_profile_file")


def made_with(args) -> dict:
    """What a command's outputs are made with: every argument but :data:`NOT_CONTENT`, as JSON values."""
    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v if v is None or isinstance(v, (bool, int, float, str)) else str(v)

    return {k: plain(v) for k, v in sorted(vars(args).items()) if k not in NOT_CONTENT}


def read_network_input(path: Path, network: Network, dt: float, ticks: Optional[int] = None):
    """(rasters ``{input population: (B, T, N)}``, what was read, ticks) of an input file for
    ``network``; an input that does not fit the network is an error naming the file."""
    inputs, info = read_input(path, network, dt=dt, ticks=ticks)
    try:
        rasters, ticks = normalize_inputs(network, inputs, ticks)
    except InputError as exc:
        raise exc.prefixed(f"{path}: ", InputError) from None
    return rasters, info, ticks


def check_output_folder(folder: Path) -> None:
    """Refuse, before any work, an output folder that cannot be made or written."""
    existing = next(p for p in [folder, *folder.parents] if p.exists())
    if not existing.is_dir():
        raise CommandFileError(f"{folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CommandFileError(f"{folder}: {existing} is not writable")
