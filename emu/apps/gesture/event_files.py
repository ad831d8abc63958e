"""DVS Gesture event files as samples of a command's ``--inputs``.

The files are those tonic's ``DVSGesture`` reads (``ROOT/DVSGesture/ibmGestureTest/
userNN_LIGHTING/LABEL.npy``: an (N, 4) array of x, y, p, t in milliseconds on the 128 x 128
sensor), as ``s2emu demo`` writes its synthetic test split and as the real set comes. They
are found by their layout, labelled by their names and read into spike frames by the
demo's own pipeline (:func:`~emu.apps.gesture.data.event_transform`,
:class:`~emu.apps.gesture.data.FrameWindow`), so a command given these files sees the
spikes ``s2emu demo --data ROOT`` sees.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
from numpy.lib.recfunctions import unstructured_to_structured

from .data import _LABEL_FILE, _USER_DIR, EVENT_DTYPE, FRAME_SIZE, FrameWindow, check_event_file, check_layout, \
    event_transform

#: the split a set's root stands for, as ``s2emu demo --data ROOT`` reads it
TEST_SPLIT = "ibmGestureTest"
#: the frames every file becomes: polarity x height x width after the demo's Downsample
FRAME_SHAPE = (2, FRAME_SIZE, FRAME_SIZE)
#: ticks per sample when none are asked for: the demo's (and the paper's) window
DEFAULT_TICKS = FrameWindow.ticks


def is_event_file(path: Path) -> bool:
    """Whether ``path`` is named as a DVS Gesture event file: ``userNN_LIGHTING/LABEL.npy``."""
    return bool(_LABEL_FILE.match(path.name) and _USER_DIR.match(path.parent.name))


def find_event_files(path: Path) -> List[Path]:
    """The DVS Gesture event files ``path`` names, by user folder and label; [] when it names none.

    ``path``: one file (``userNN_LIGHTING/LABEL.npy``), a user folder, a split folder
    (its user folders), or a set's root (``ROOT`` or ``ROOT/DVSGesture``: its test split,
    as ``s2emu demo --data ROOT`` reads it). A split folder is checked as tonic's reader
    needs it (:func:`~emu.apps.gesture.data.check_layout`).
    """
    if path.is_file():
        return [path] if is_event_file(path) else []
    if not path.is_dir():
        return []
    for base in (path / "DVSGesture", path):
        if (base / TEST_SPLIT).is_dir():
            path = base / TEST_SPLIT
            break
    if _USER_DIR.match(path.name):
        users = [path]
    else:
        users = sorted(d for d in path.iterdir() if d.is_dir() and _USER_DIR.match(d.name))
        if users:
            check_layout(path)
    return [f for user in users for f in sorted((f for f in user.iterdir() if is_event_file(f)), key=label_of)]


def label_of(path: Path) -> int:
    """The class of an event file: its name (``3.npy``: class 3)."""
    return int(path.stem)


def read_event_file(path: Path, dt: float, ticks: Optional[int] = None) -> np.ndarray:
    """(ticks, 2, 32, 32) bool spike frames of one event file, read as tonic's ``DVSGesture``
    reads it (t from ms to us) and framed by the demo's pipeline with ticks of ``dt`` seconds
    (Denoise, Downsample 128 -> 32, ToFrame; cut or padded to ``ticks``, default
    :data:`DEFAULT_TICKS`; counts clipped to spikes)."""
    check_event_file(path)
    table = np.load(path, allow_pickle=False).astype(np.int64)
    table[:, 3] *= 1000
    events = unstructured_to_structured(table, EVENT_DTYPE)
    frames = event_transform(dt_us=round(dt * 1e6, 3))(events)
    return FrameWindow(ticks=ticks or DEFAULT_TICKS)(frames) > 0
