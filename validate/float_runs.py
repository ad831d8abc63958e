"""The float reference's run of a set of samples, computed once and reused.

The float reference is the slowest part of every job (the user's model stepped by snnTorch
modules); the emulator is a small fraction of it. So a command computes it once
(:func:`float_runs`: each sample's spikes, by batches of samples of one length where a
sample's spikes do not depend on the batch it runs in, else one by one), and a later
command on the same model, settings and inputs reads it back from disk.

The disk cache is keyed by a hash of everything that decides the run: the graph's content
(every node's type and arrays, the edges, the metadata), the reference's settings (dt,
integrator, reset, reset timing, dtypes), the input spikes, the ticks, and the code
(this package's float-reference sources, torch's, snnTorch's and numpy's versions). An
entry also stores that recipe and is used only when it matches exactly; anything else
runs again and replaces it. Entries are written atomically (``emu.spike_io.save_recording``),
live in ``$S2EMU_CACHE_DIR`` (default ``$XDG_CACHE_HOME/spinnaker2-emu/float-runs``), the
oldest removed beyond :data:`MAX_BYTES`; ``S2EMU_NO_CACHE=1`` turns the cache off.
Voltages are never cached (they are asked for one sample at a time).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import nir
import numpy as np
import snntorch
import torch

from emu.errors import UserError
from emu.parallel import in_background
from emu.phases import phase
from emu.spike_io import load_recording, save_recording
from emu.spikes import Recording

#: the cache keeps at most this many bytes; the least recently used entries go first
MAX_BYTES = 2 * 1024 ** 3
_SOURCES = ("float_reference.py", "float_links.py", "float_steps.py", "float_runs.py")


def cache_dir() -> Optional[Path]:
    """Where entries live (None: the cache is off)."""
    if os.environ.get("S2EMU_NO_CACHE"):
        return None
    root = os.environ.get("S2EMU_CACHE_DIR")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spinnaker2-emu" / "float-runs"


def _array_bytes(h, value) -> None:
    arr = np.asarray(value)
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(np.ascontiguousarray(arr).tobytes() if arr.dtype != object else repr(value).encode())


def graph_digest(graph: nir.NIRGraph) -> str:
    """sha256 of a NIR graph's content: node types and fields (arrays by dtype, shape and bytes),
    edges and metadata, in a fixed order."""
    h = hashlib.sha256()
    for name in sorted(graph.nodes):
        node = graph.nodes[name]
        h.update(f"{name}:{type(node).__name__}".encode())
        for f in sorted(vars(node)):
            value = getattr(node, f)
            h.update(f.encode())
            if isinstance(value, (dict, str, type(None))):
                h.update(json.dumps(value, sort_keys=True, default=repr).encode())
            else:
                _array_bytes(h, value)
    h.update(json.dumps(sorted(map(list, graph.edges))).encode())
    h.update(json.dumps(graph.metadata or {}, sort_keys=True, default=repr).encode())
    return h.hexdigest()


def _code_digest() -> str:
    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in _SOURCES:
        h.update((here / name).read_bytes())
    h.update(f"torch {torch.__version__} snntorch {snntorch.__version__} numpy {np.__version__}".encode())
    return h.hexdigest()


def recipe(reference, rasters: Mapping[str, np.ndarray], ticks: int) -> Dict[str, object]:
    """Everything that decides the float run of ``rasters`` (the cache's key, before hashing)."""
    h = hashlib.sha256()
    for name in sorted(rasters):
        h.update(name.encode())
        _array_bytes(h, np.packbits(np.asarray(rasters[name], bool), axis=-1))
        h.update(str(np.shape(rasters[name])).encode())
    return dict(graph=graph_digest(reference.graph), dt=reference.dt, integrator=reference.integrator,
                reset=reference.reset, reset_timing=reference.reset_timing, dtype=str(reference.dtype),
                decay_dtype=str(reference.decay_dtype), inputs=h.hexdigest(), ticks=int(ticks), code=_code_digest())


def _key(rec: Dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(rec, sort_keys=True).encode()).hexdigest()[:32]


def _load(path: Path, want: Dict[str, object]) -> Optional[Recording]:
    try:
        run = load_recording(path)
    except (UserError, OSError, ValueError):
        return None  # damaged or unreadable: run again (and replace it)
    if run.meta.get("float_run_recipe") != want:
        return None
    os.utime(path)  # recently used: pruned last
    return run


def _prune(root: Path, keep: int = MAX_BYTES) -> None:
    entries = sorted(root.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    total = 0
    for p in entries:
        total += p.stat().st_size
        if total > keep:
            p.unlink(missing_ok=True)


def float_run(reference, rasters: Mapping[str, np.ndarray], ticks: int, progress: Optional[bool] = None) -> Recording:
    """The float reference's spikes on ``rasters`` ({input: (B, T, ...)}) for ``ticks`` ticks,
    from the disk cache when an entry with this exact recipe is there (module doc);
    ``meta["seconds"]``: what getting it took here."""
    root = cache_dir()
    want = recipe(reference, rasters, ticks) if root is not None else None
    path = root / f"{_key(want)}.npz" if root is not None else None
    t0 = time.perf_counter()
    if path is not None and path.exists():
        run = _load(path, want)
        if run is not None:
            run.source = "float reference (snnTorch)"
            run.meta["from_cache"] = str(path)
            run.meta["seconds"] = time.perf_counter() - t0
            return run
    with phase("float reference"):
        run = reference(dict(rasters), ticks=ticks, progress=progress, record_v=False)
    if path is not None:
        run.meta["float_run_recipe"] = want
        try:
            save_recording(run, path)
            _prune(root)
        except (UserError, OSError):
            pass  # a cache that cannot be written is no cache, not an error
    run.meta["seconds"] = time.perf_counter() - t0  # this process's time, never the entry's
    return run


def float_runs(reference, samples: Sequence[Mapping[str, np.ndarray]], progress: Optional[bool] = None
               ) -> List[Recording]:
    """Each sample's float run ({input: (1, T, ...)}, lengths may differ) as a one-sample
    recording: the samples of one length in one batch when the reference's spikes do not
    depend on the batch (every link's sums exact), else one by one, each batch through the
    disk cache (:func:`float_run`)."""
    out: List[Optional[Recording]] = [None] * len(samples)
    if not getattr(reference, "batch_independent", False):
        for i, one in enumerate(samples):
            out[i] = float_run(reference, one, _ticks(one), progress=False)
        return out
    groups: Dict[int, List[int]] = {}
    for i, one in enumerate(samples):
        groups.setdefault(_ticks(one), []).append(i)
    for ticks, idx in sorted(groups.items()):
        batch = {k: np.concatenate([samples[i][k] for i in idx]) for k in samples[idx[0]]}
        run = float_run(reference, batch, ticks, progress)
        for j, i in enumerate(idx):
            out[i] = run.sample(j)
    return out


def float_runs_in_background(reference, samples: Sequence[Mapping[str, np.ndarray]]) -> "Future[Recording]":
    """:func:`float_runs` of ``samples`` stacked into one recording, computed on a thread of its
    own (:func:`emu.parallel.in_background`) while the caller runs the emulator (torch and
    the float links' compiled scatter release the GIL)."""
    return in_background(lambda: Recording.stack(float_runs(reference, samples)))


def _ticks(one: Mapping[str, np.ndarray]) -> int:
    return int(np.shape(next(iter(one.values())))[1])

