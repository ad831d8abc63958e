"""Files the commands take and write: output checks before any work, input folders, labels."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from emu.errors import UserError
from emu.inputs import normalize_inputs
from emu.network import Network
from emu.spike_io import read_input

INPUT_SUFFIXES = (".json", ".npy", ".npz")


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


def check_output_folder(folder: Path) -> None:
    """Refuse, before any work, an output folder that cannot be made or written."""
    existing = next(p for p in [folder, *folder.parents] if p.exists())
    if not existing.is_dir():
        raise CommandFileError(f"{folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CommandFileError(f"{folder}: {existing} is not writable")


def input_files(path: Path, exclude: Optional[Path] = None) -> List[Path]:
    """The input files a path names: itself, or a folder's .json/.npy/.npz files sorted by name."""
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in INPUT_SUFFIXES
                       and (exclude is None or f.resolve() != exclude.resolve()))
        if not files:
            raise CommandFileError(f"{path}: no input files (.json, .npy, .npz) in this folder")
        return files
    if not path.exists():
        raise CommandFileError(f"{path}: no such input file or folder")
    return [path]


def read_samples(files: List[Path], network: Network, dt: float, ticks: Optional[int], progress=None) -> list:
    """Every sample of every file, as ``{input population: (1, T, N)}`` in file order."""
    return named_samples(files, network, dt, ticks, progress)[0]


def named_samples(files: List[Path], network: Network, dt: float, ticks: Optional[int],
                  progress=None) -> Tuple[list, List[str]]:
    """(:func:`read_samples`, each sample's name: its file's, ``NAME[b]`` for sample b of a batch file)."""
    items = files
    if progress if progress is not None else len(files) > 5:
        from tqdm import tqdm

        items = tqdm(files, desc="reading inputs", unit="file")
    samples, names = [], []
    for f in items:
        inputs, _ = read_input(f, network, dt=dt, ticks=ticks)
        rasters, _ = normalize_inputs(network, inputs, ticks)
        batch = next(iter(rasters.values())).shape[0]
        samples += [{k: r[b:b + 1] for k, r in rasters.items()} for b in range(batch)]
        names += [f.name] if batch == 1 else [f"{f.name}[{b}]" for b in range(batch)]
    return samples, names


def read_labels(path: Path) -> np.ndarray:
    """Integer class labels from .npy, JSON (a list, or {"labels": [...]}) or text/CSV."""
    if not path.is_file():
        raise CommandFileError(f"{path}: no such labels file")
    try:
        if path.suffix.lower() == ".npy":
            labels = np.load(path, allow_pickle=False)
        elif path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            labels = np.asarray(data["labels"] if isinstance(data, dict) else data)
        else:
            text = path.read_text().replace(",", " ").split()
            labels = np.array([float(x) for x in text])
    except (ValueError, KeyError, TypeError) as exc:
        raise CommandFileError(f"{path}: unreadable labels ({type(exc).__name__}: {exc})") from None
    labels = np.asarray(labels).reshape(-1) if np.ndim(labels) == 2 and 1 in np.shape(labels) else labels
    if labels.ndim != 1 or labels.dtype.kind not in "iuf" or (
            labels.dtype.kind == "f" and not np.all(labels == np.round(labels))):
        raise CommandFileError(f"{path}: labels must be a list of integer class indices, got shape "
                               f"{labels.shape} of {labels.dtype}")
    return labels.astype(np.int64)
