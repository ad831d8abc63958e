"""The samples of ``--inputs`` (validate, attribute): input files or a folder of them, DVS Gesture
event files as the demo reads them, and class labels."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from emu.apps.gesture.event_files import FRAME_SHAPE, find_event_files, is_event_file, label_of, read_event_file
from emu.cli.files import CommandFileError, read_network_input
from emu.inputs import normalize_inputs
from emu.network import Network
from emu.phases import phase

INPUT_SUFFIXES = (".json", ".npy", ".npz")


def input_files(path: Path, exclude: Optional[Path] = None) -> List[Path]:
    """The input files a path names: DVS Gesture event files (a file, user, split or set folder
    in tonic's layout: :func:`~emu.apps.gesture.event_files.find_event_files`), else itself, or a
    folder's .json/.npy/.npz files sorted by name."""
    events = find_event_files(path)
    if events:
        return events
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in INPUT_SUFFIXES
                       and (exclude is None or f.resolve() != exclude.resolve()))
        if not files:
            raise CommandFileError(f"{path}: no input files (.json, .npy, .npz, or DVS Gesture event files in "
                                   f"userNN_LIGHTING/LABEL.npy folders) in this folder")
        return files
    if not path.exists():
        raise CommandFileError(f"{path}: no such input file or folder")
    return [path]


def read_samples(files: List[Path], network: Network, dt: float, ticks: Optional[int], progress=None) -> list:
    """Every sample of every file, as ``{input population: (1, T, N)}`` in file order."""
    return named_samples(files, network, dt, ticks, progress)[0]


def named_samples(files: List[Path], network: Network, dt: float, ticks: Optional[int],
                  progress=None) -> Tuple[list, List[str]]:
    """(:func:`read_samples`, each sample's name: its file's, ``NAME[b]`` for sample b of a batch file).

    A DVS Gesture event file is one sample of ``ticks`` ticks (default: the demo's 300), framed
    as ``s2emu demo --data`` frames it; its name is ``userNN_LIGHTING/LABEL.npy``."""
    with phase("data"):
        return _named_samples(files, network, dt, ticks, progress)


def _named_samples(files, network, dt, ticks, progress) -> Tuple[list, List[str]]:
    events = [f for f in files if is_event_file(f)]
    frames = _frame_input(network, events[0]) if events else None  # before any file is read
    items = tqdm(files, desc="reading inputs", unit="file") if (
        progress if progress is not None else len(files) > 5) else files
    samples, names = [], []
    for f in items:
        if is_event_file(f):
            rasters, _ = normalize_inputs(network, {frames: read_event_file(f, dt, ticks)[None]})
            names.append(f"{f.parent.name}/{f.name}")
            samples.append(rasters)
            continue
        rasters, _, _ = read_network_input(f, network, dt, ticks)
        batch = next(iter(rasters.values())).shape[0]
        samples += [{k: r[b:b + 1] for k, r in rasters.items()} for b in range(batch)]
        names += [f.name] if batch == 1 else [f"{f.name}[{b}]" for b in range(batch)]
    return samples, names


def _frame_input(network: Network, path: Path) -> str:
    """The input population DVS Gesture frames feed: the one input, shaped (2, 32, 32)."""
    shapes = {n: tuple(network.populations[n].shape) for n in network.inputs}
    if len(shapes) != 1 or next(iter(shapes.values())) != FRAME_SHAPE:
        raise CommandFileError(f"{path}: a DVS Gesture event file becomes {FRAME_SHAPE} frames (the demo's "
                               f"Downsample to 32 x 32); the model's inputs are {shapes}")
    return next(iter(shapes))


def event_file_labels(files: List[Path]) -> Optional[np.ndarray]:
    """The classes of DVS Gesture event files (their names), or None unless every file is one."""
    if not files or not all(is_event_file(f) for f in files):
        return None
    return np.array([label_of(f) for f in files], np.int64)


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
