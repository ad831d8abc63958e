"""DVS-gesture data: a synthetic event generator, its on-disk writer and the reader.

Three parts, all in tonic's own terms (events as ``tonic.datasets.DVSGesture.dtype``:
fields ``x``, ``y`` (int16), ``p`` (bool), ``t`` (int64, microseconds), sensor
128 x 128 x 2):

* :func:`generate_events` draws one synthetic gesture: one or two bright blobs
  (hands) move along a class-specific trajectory in front of a static scene; a
  DVS pixel model emits an ON event each time a pixel's log intensity has risen by
  its contrast threshold since its last event and an OFF event each time it has
  fallen by it (so ON events lead a moving blob and OFF events trail it), plus
  uniform background-noise events. Speed, amplitude, position, blob size and
  brightness are jittered per sample, and thresholds per pixel; everything is drawn from a seeded
  ``numpy.random.Generator``, so a (seed, index) pair always gives the same events.
* :func:`write_synthetic_dataset` writes such samples in the layout that tonic's
  ``DVSGesture`` reads: ``ROOT/DVSGesture/ibmGestureTrain/userNN_LIGHTING/LABEL.npy``
  (and ``ibmGestureTest``), one sample per class per user/lighting folder, each file
  an ``(N, 4)`` integer array of columns x, y, p, t with t in **milliseconds**
  (tonic multiplies column 3 by 1000 when it loads a file).
* :func:`load_dvsgesture` reads such a folder (synthetic or the real preprocessed
  IBM DVS Gesture set) through tonic's ``DVSGesture`` class, applies the paper's
  transforms with tonic (``Denoise``, ``Downsample`` 128 -> 32, ``ToFrame`` with
  1 ms bins), caches the frames with tonic's ``DiskCachedDataset`` and then cuts
  every sample to a fixed number of ticks and clips counts to spikes.

Conventions of the synthetic scene: the subject faces the sensor, so the
subject's right hand appears on the image's left (small x); y grows downwards;
"clockwise" is clockwise as the image is displayed (y down).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import tonic
import tonic.transforms as tt
from tonic.cached_dataset import save_to_disk_cache

from emu.errors import UserError
from emu.outputs import atomic_write

from .denoise import Denoise

CLASSES: Tuple[str, ...] = tuple(tonic.datasets.DVSGesture.classes)
N_CLASSES = len(CLASSES)
SENSOR_SIZE: Tuple[int, int, int] = tuple(tonic.datasets.DVSGesture.sensor_size)
EVENT_DTYPE = tonic.datasets.DVSGesture.dtype
FRAME_SIZE = 32
LIGHTINGS = ("fluorescent", "fluorescent_led", "lab", "led", "natural")
FIRST_TRAIN_USER = 1  # the real set: users 1-23 train, 24-29 test
FIRST_TEST_USER = 24

_SPLIT_FOLDERS = {True: "ibmGestureTrain", False: "ibmGestureTest"}
_USER_DIR = re.compile(r"^user(\d+)_(.+)$")
_LABEL_FILE = re.compile(r"^(\d+)\.npy$")


class DatasetLayoutError(UserError):
    """A DVS-gesture folder or event file is not what tonic's reader expects."""


# --------------------------------------------------------------------------- #
# Synthetic generator
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class SynthConfig:
    """Parameters of the synthetic scene and sensor (all jitters are uniform)."""

    duration_ms: int = 600
    contrast: float = 0.2  # DVS log-intensity threshold
    contrast_mismatch: float = 0.05  # per-pixel relative std of the threshold
    noise_rate_hz: float = 0.2  # background events per pixel per second
    blob_sigma: Tuple[float, float] = (3.0, 5.0)  # Gaussian blob sigma range, pixels
    blob_brightness: Tuple[float, float] = (1.5, 3.0)  # peak / background
    speed_jitter: float = 0.25  # frequencies scaled by U(1 - j, 1 + j)
    amplitude_jitter: float = 0.2  # amplitudes scaled by U(1 - j, 1 + j)
    position_jitter: float = 8.0  # body centre offset U(-j, j) per axis, pixels


def _trajectories(label: int, t: np.ndarray, rng: np.random.Generator, cfg: SynthConfig) -> np.ndarray:
    """Blob centres, shape (n_blobs, len(t), 2) as (x, y) pixels, for one class."""
    cx, cy = 64.0 + rng.uniform(-cfg.position_jitter, cfg.position_jitter, size=2)
    speed = rng.uniform(1 - cfg.speed_jitter, 1 + cfg.speed_jitter)
    amp = rng.uniform(1 - cfg.amplitude_jitter, 1 + cfg.amplitude_jitter)
    phase = rng.uniform(0, 2 * np.pi)

    def osc(freq):  # phase of an oscillation at freq Hz (times speed jitter)
        return 2 * np.pi * freq * speed * t + phase

    def circle(x0, y0, radius, freq, direction):  # direction +1: clockwise on screen
        a = direction * osc(freq)
        return np.stack([x0 + radius * amp * np.cos(a), y0 + radius * amp * np.sin(a)], -1)

    def point(x, y):
        return np.stack(np.broadcast_arrays(x, y), -1)

    # the subject's right hand is on the image's left: side -1 (right) or +1 (left)
    if label == 0:  # hand clapping: two hands meet in front of the chest
        d = 4 + 18 * amp * (1 + np.cos(osc(2.0))) / 2
        blobs = [point(cx - d, cy + 8), point(cx + d, cy + 8)]
    elif label in (1, 2):  # hand wave: horizontal oscillation beside the head
        side = -1.0 if label == 1 else 1.0
        blobs = [point(cx + side * 28 + 12 * amp * np.sin(osc(2.0)), cy - 24)]
    elif label in (3, 4, 5, 6):  # arm circles: cw / ccw on one side
        side = -1.0 if label in (3, 4) else 1.0
        direction = 1.0 if label in (3, 5) else -1.0
        blobs = [circle(cx + side * 26, cy - 4, 18, 1.2, direction)]
    elif label == 7:  # arm roll: both forearms circle each other in front of the body
        direction = rng.choice([-1.0, 1.0])
        a = direction * osc(2.0)
        r = 9 * amp
        blobs = [point(cx + r * np.cos(a), cy + 6 + r * np.sin(a)),
                 point(cx - r * np.cos(a), cy + 6 - r * np.sin(a))]
    elif label == 8:  # air drums: alternating vertical strokes of both hands
        stroke = 8 * amp * np.sin(osc(3.0))
        blobs = [point(cx - 18, cy + 14 + stroke), point(cx + 18, cy + 14 - stroke)]
    elif label == 9:  # air guitar: fast strumming hand, slowly sliding fretting hand
        blobs = [point(cx + 8, cy + 16 + 10 * amp * np.sin(osc(4.0))),
                 point(cx - 30 + 4 * amp * np.sin(osc(0.5)), cy - 6)]
    elif label == 10:  # other: one or two hands on random smooth paths
        blobs = []
        for _ in range(rng.integers(1, 3)):
            pos = np.array([cx, cy]) + rng.uniform(-30, 30, size=2)
            path = np.zeros((len(t), 2)) + pos
            for _ in range(3):
                freq = rng.uniform(0.3, 2.0) * speed
                direction = rng.normal(size=2)
                direction *= rng.uniform(3, 12) / np.linalg.norm(direction)
                path += np.sin(2 * np.pi * freq * t[:, None] + rng.uniform(0, 2 * np.pi)) * direction
            blobs.append(path)
    else:
        raise ValueError(f"label must be in 0..{N_CLASSES - 1}, got {label}")
    return np.stack(blobs)


def generate_events(label: int, seed, config: SynthConfig = SynthConfig()) -> np.ndarray:
    """One synthetic gesture of class ``label`` as a time-sorted structured event array.

    ``seed`` is anything ``numpy.random.default_rng`` accepts (an int, a tuple of
    ints); the same seed and config always give the same events. Timestamps are
    whole milliseconds expressed in microseconds, so the array survives the
    millisecond file format unchanged.
    """
    rng = np.random.default_rng(seed)
    width, height, _ = SENSOR_SIZE
    t_s = np.arange(config.duration_ms) / 1000.0
    centres = _trajectories(label, t_s, rng, config)
    sigma = rng.uniform(*config.blob_sigma, size=len(centres))
    bright = rng.uniform(*config.blob_brightness, size=len(centres))
    threshold = config.contrast * np.clip(
        1 + config.contrast_mismatch * rng.standard_normal((height, width)), 0.5, None)
    xs, ys = np.arange(width), np.arange(height)

    def log_intensity(k):
        img = np.ones((height, width))
        for (bx, by), s, b in zip(centres[:, k], sigma, bright):
            gx = np.exp(-((xs - bx) ** 2) / (2 * s * s))
            gy = np.exp(-((ys - by) ** 2) / (2 * s * s))
            img += b * np.outer(gy, gx)
        return np.log(img)

    reference = log_intensity(0)
    chunks = []
    for k in range(1, config.duration_ms):
        change = log_intensity(k) - reference
        crossings = np.trunc(change / threshold)  # signed number of threshold crossings
        yy, xx = np.nonzero(crossings)
        if len(yy) == 0:
            continue
        n = crossings[yy, xx]
        reference[yy, xx] += n * threshold[yy, xx]
        reps = np.abs(n).astype(np.int64)
        chunks.append(np.stack([np.repeat(xx, reps), np.repeat(yy, reps),
                                np.repeat(n > 0, reps), np.full(reps.sum(), k)], -1))

    n_noise = rng.poisson(config.noise_rate_hz * width * height * config.duration_ms / 1000)
    chunks.append(np.stack([rng.integers(0, width, n_noise), rng.integers(0, height, n_noise),
                            rng.integers(0, 2, n_noise), rng.integers(0, config.duration_ms, n_noise)], -1))
    table = np.concatenate(chunks).astype(np.int64)
    table = table[np.argsort(table[:, 3], kind="stable")]
    events = np.empty(len(table), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["p"] = table[:, 0], table[:, 1], table[:, 2].astype(bool)
    events["t"] = table[:, 3] * 1000
    return events


# --------------------------------------------------------------------------- #
# Writer: tonic's on-disk layout
# --------------------------------------------------------------------------- #
def user_folders(n_folders: int, first_user: int) -> List[str]:
    """``userNN_LIGHTING`` names, cycling through the five lightings per user."""
    return [f"user{first_user + k // len(LIGHTINGS):02d}_{LIGHTINGS[k % len(LIGHTINGS)]}"
            for k in range(n_folders)]


def write_events(path, events: np.ndarray) -> None:
    """Write one sample as tonic's DVSGesture files hold it: (N, 4) int64, t in ms."""
    if np.any(events["t"] % 1000):
        raise ValueError(f"{path}: timestamps must be whole milliseconds (the file stores ms)")
    table = np.stack([events["x"], events["y"], events["p"], events["t"] // 1000], -1).astype(np.int64)
    buf = io.BytesIO()
    np.save(buf, table)
    atomic_write(path, buf.getvalue())  # a failed write (a full disk) names the file


#: written last into a synthetic set: what it was made with (a set without it is not reused)
MARKER = ".synthetic.json"


def write_synthetic_dataset(root, n_train_per_class: int = 4, n_test_per_class: int = 2,
                            seed: int = 0, config: SynthConfig = SynthConfig()) -> Path:
    """Write a synthetic DVS-gesture set under ``root`` in tonic's layout; return its folder.

    Each split gets ``n_*_per_class`` ``userNN_LIGHTING`` folders holding one sample of
    every class (``0.npy`` .. ``10.npy``), as the real set does. Sample
    ``(split, folder k, label)`` uses seed ``(seed, split, k, label)``. The set is
    written in a temporary folder beside ``root/DVSGesture`` and renamed into place
    with its :data:`MARKER`: an interrupted write leaves no half set behind.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = root / "DVSGesture"
    partial = Path(tempfile.mkdtemp(prefix=".DVSGesture.", suffix=".partial", dir=root))
    try:
        for split, (n, first_user) in enumerate([(n_train_per_class, FIRST_TRAIN_USER),
                                                 (n_test_per_class, FIRST_TEST_USER)]):
            train = split == 0
            for k, folder in enumerate(user_folders(n, first_user)):
                out = partial / _SPLIT_FOLDERS[train] / folder
                out.mkdir(parents=True, exist_ok=True)
                for label in range(N_CLASSES):
                    write_events(out / f"{label}.npy", generate_events(label, (seed, split, k, label), config))
        recipe = synthetic_recipe(n_train_per_class, n_test_per_class, seed, config)
        (partial / MARKER).write_text(json.dumps(recipe, sort_keys=True))
        if base.exists():
            shutil.rmtree(base)
        os.replace(partial, base)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return base


def synthetic_recipe(n_train_per_class: int, n_test_per_class: int, seed: int, config: SynthConfig) -> dict:
    """What a synthetic set is made with, as its marker stores it (JSON values)."""
    return json.loads(json.dumps(dict(n_train_per_class=n_train_per_class, n_test_per_class=n_test_per_class,
                                      seed=seed, config=dataclasses.asdict(config)), sort_keys=True))


def ensure_synthetic_dataset(root, n_train_per_class: int = 4, n_test_per_class: int = 2, seed: int = 0,
                             config: SynthConfig = SynthConfig(), log=print) -> Path:
    """A synthetic set under ``root`` made with exactly these settings: reused when its marker
    says so, written (again) when it is missing or was made otherwise. A ``DVSGesture``
    folder without a marker is not ours (real data, or left by an interrupted old writer):
    refused rather than reused or deleted."""
    base = Path(root) / "DVSGesture"
    recipe = synthetic_recipe(n_train_per_class, n_test_per_class, seed, config)
    if base.exists():
        marker = base / MARKER
        if not marker.is_file():
            raise DatasetLayoutError(f"{base}: a DVSGesture folder without {MARKER}: not a complete synthetic set "
                                     f"written by s2emu; delete it or choose another folder")
        if json.loads(marker.read_text()) == recipe:
            return base
        log(f"{base} was made with other settings: writing it again")
    else:
        log(f"writing a synthetic DVS-gesture set ({n_train_per_class} train, {n_test_per_class} test per class) "
            f"to {root} ...")
    return write_synthetic_dataset(root, n_train_per_class, n_test_per_class, seed, config)


# --------------------------------------------------------------------------- #
# Reader: through tonic's DVSGesture
# --------------------------------------------------------------------------- #
def check_layout(split_dir) -> None:
    """Raise :class:`DatasetLayoutError` naming the path unless ``split_dir`` is laid out
    as tonic's DVSGesture reader needs: ``userNN_LIGHTING`` folders holding ``LABEL.npy``."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DatasetLayoutError(
            f"{split_dir}: no such folder; expected ROOT/DVSGesture/{{ibmGestureTrain,ibmGestureTest}}"
            "/userNN_LIGHTING/LABEL.npy (this reader never downloads)")
    n_files = 0
    for entry in sorted(split_dir.iterdir()):
        if not entry.is_dir():
            continue
        if not _USER_DIR.match(entry.name):
            raise DatasetLayoutError(f"{entry}: folder name must be userNN_LIGHTING (e.g. user01_led)")
        for item in sorted(entry.iterdir()):
            if item.is_dir():
                raise DatasetLayoutError(f"{item}: nested folder; a user folder holds only LABEL.npy files")
            match = _LABEL_FILE.match(item.name)
            # tonic takes every name ending in "npy" and parses the label from it
            if item.name.endswith("npy") and not (match and int(match.group(1)) < N_CLASSES):
                raise DatasetLayoutError(f"{item}: event files must be named 0.npy .. {N_CLASSES - 1}.npy")
            n_files += bool(match)
    if n_files == 0:
        raise DatasetLayoutError(f"{split_dir}: no userNN_LIGHTING/LABEL.npy event files")


def check_event_file(path) -> None:
    """Raise :class:`DatasetLayoutError` naming ``path`` unless it holds a numeric
    ``(N, 4)`` array (x, y, p, t in ms) with x, y inside the 128 x 128 sensor."""
    try:
        table = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DatasetLayoutError(f"{path}: not a readable .npy file ({err})") from err
    if table.dtype.names is not None or table.dtype.kind not in "iuf" or table.ndim != 2 or table.shape[1] != 4:
        raise DatasetLayoutError(
            f"{path}: expected a numeric (N, 4) array of x, y, p, t[ms], got dtype {table.dtype} shape {table.shape}")
    width, height, _ = SENSOR_SIZE
    if len(table) and (table[:, 0].min() < 0 or table[:, 0].max() >= width
                       or table[:, 1].min() < 0 or table[:, 1].max() >= height):
        raise DatasetLayoutError(f"{path}: x or y outside the {width} x {height} sensor")


class DVSGesture(tonic.datasets.DVSGesture):
    """tonic's ``DVSGesture`` on a folder already on disk: never downloads.

    It keeps tonic's class name because tonic derives the data folder from it
    (``save_to/DVSGesture``).

    tonic decides whether to download in ``_check_exists`` (it looks for the
    ``.tar.gz`` archive and at least 100 ``.npy`` files). This subclass replaces only
    that check with :func:`check_layout`, which raises a clear error instead, and
    checks each file with :func:`check_event_file` before tonic's own
    ``__getitem__`` reads it. Listing and reading the files stay tonic's.
    """

    def _check_exists(self) -> bool:
        check_layout(Path(self.location_on_system) / self.folder_name)
        return True

    def __getitem__(self, index):
        check_event_file(self.data[index])
        return super().__getitem__(index)


def event_transform(denoise_us: Optional[float] = 10_000, dt_us: int = 1000) -> tt.Compose:
    """The paper's event pipeline with tonic: Denoise (tonic's rule, compiled:
    :mod:`.denoise`; skipped for ``None``),
    Downsample 128 -> 32, ToFrame with ``dt_us`` bins. Output: count frames
    (T, 2, 32, 32), int16, starting at the first event that survives Denoise."""
    steps = [] if denoise_us is None else [Denoise(filter_time=denoise_us)]  # tonic's, compiled
    steps += [tt.Downsample(sensor_size=SENSOR_SIZE, target_size=(FRAME_SIZE, FRAME_SIZE)),
              tt.ToFrame(sensor_size=(FRAME_SIZE, FRAME_SIZE, 2), time_window=dt_us)]
    return tt.Compose(steps)


@dataclass(frozen=True)
class FrameWindow:
    """Cut frames to exactly ``ticks`` steps (zero-padded at the end) as float32;
    ``spikes=True`` clips counts to 0/1, as the chip's input is spikes.

    Also accepts an event array that the tonic pipeline returned unframed because
    it became empty (tonic's ``Compose`` stops at an empty array): all zeros then.
    """

    ticks: int = 300
    spikes: bool = True

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        out = np.zeros((self.ticks, 2, FRAME_SIZE, FRAME_SIZE), dtype=np.float32)
        if frames.dtype.names is None:
            n = min(self.ticks, len(frames))
            out[:n] = frames[:n]
        return np.minimum(out, 1) if self.spikes else out


@dataclass
class GestureFrames:
    """``(frames, label)`` samples: ``source``'s count frames through ``window``."""

    source: object  # a DVSGesture with event_transform(), or its DiskCachedDataset
    window: FrameWindow

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index):
        frames, label = self.source[index]
        return self.window(frames), label


def load_dvsgesture(root, train: bool = True, ticks: int = 300, spikes: bool = True,
                    denoise_us: Optional[float] = 10_000, dt_us: int = 1000,
                    cache: bool = True, cache_dir=None) -> GestureFrames:
    """DVS-gesture samples from ``root`` (the folder holding ``DVSGesture/``) as
    ``(frames, label)`` with frames float32 of shape (ticks, 2, 32, 32): spikes
    (0/1) or, with ``spikes=False``, event counts per 1 ms bin (``dt_us``).

    With ``cache`` the tonic pipeline (:func:`event_transform`) runs once per
    sample: ``tonic.DiskCachedDataset`` keeps its full count frames in a folder
    named after the split, the transform parameters and the sample count, under
    ``cache_dir`` (default ``root/DVSGesture/cache``). The tick window and the clip
    to spikes (:class:`FrameWindow`) come after the cache, so another ``ticks``
    reuses it. tonic lists samples in the file system's walk order and the cache
    is keyed by index: clear it if the folder's content changes.
    """
    source = DVSGesture(str(root), train=train, transform=event_transform(denoise_us, dt_us))
    if cache:
        key = (f"{source.folder_name}_denoise{denoise_us}_dt{dt_us}_size{FRAME_SIZE}_n{len(source)}_"
               f"{files_digest(source.data)}")
        folder = Path(cache_dir) if cache_dir is not None else Path(root) / "DVSGesture" / "cache"
        source = AtomicDiskCache(source, cache_path=str(folder / key))
    return GestureFrames(source, FrameWindow(ticks=ticks, spikes=spikes))


def files_digest(paths) -> str:
    """A short hash of files' names, sizes and modification times: a cache of them is keyed by it,
    so a changed file is never served from a stale cache."""
    h = hashlib.sha256()
    for p in sorted(map(str, paths)):
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


class AtomicDiskCache(tonic.DiskCachedDataset):
    """tonic's disk cache of samples, written atomically: a sample's file appears whole or not at
    all (tonic writes it in place, and an interrupted write would be read back)."""

    def __getitem__(self, item):
        path = os.path.join(self.cache_path, f"{item}_0.hdf5")
        if not os.path.exists(path):
            data, targets = self.dataset[item]
            tmp = f"{path}.{os.getpid()}.tmp"
            try:
                save_to_disk_cache(data, targets, file_path=tmp, compress=self.compress)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return super().__getitem__(item)
