"""Where a job's wall time goes, phase by phase (data, build, emulator, float reference, ...).

A command's work is a few phases; :func:`phase` times one. Phases nest, and each second
goes to the innermost phase open at that moment in its thread (the emulator's runs inside an
attribution count as ``emulator``, the attribution's own counting as ``attribution``), so the
phases of the thread that runs the command add up to at most the wall time. A phase in another
thread (the float reference computed while the emulator runs) is counted as ``NAME
(background)``: its seconds overlap the others'.
``benchmarks/bench_jobs.py`` sets ``S2EMU_PHASES=FILE`` and reads the totals that
:func:`write` puts there when the process ends; without that variable nothing is written
and a phase costs two clock reads.
"""
from __future__ import annotations

import atexit
import json
import os
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Dict, Iterator, List

ENV = "S2EMU_PHASES"

_totals: Dict[str, float] = defaultdict(float)
_counts: Dict[str, int] = defaultdict(int)
_threads = threading.local()  # .stack: [name, start of its own current stretch] of this thread
_owner = threading.main_thread()
_lock = threading.Lock()


def _add(name: str, seconds: float, calls: int = 0) -> None:
    if threading.current_thread() is not _owner:
        name += " (background)"
    with _lock:
        _totals[name] += seconds
        _counts[name] += calls


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the enclosed work as ``name`` (module doc)."""
    stack: List[list] = _threads.__dict__.setdefault("stack", [])
    now = time.perf_counter()
    if stack:  # the enclosing phase pauses
        outer = stack[-1]
        _add(outer[0], now - outer[1])
    stack.append([name, now])
    try:
        yield
    finally:
        end = time.perf_counter()
        inner = stack.pop()
        _add(inner[0], end - inner[1], 1)
        if stack:
            stack[-1][1] = end


def totals() -> Dict[str, float]:
    """Seconds per phase so far."""
    with _lock:
        return dict(_totals)


def write(path: str) -> None:
    """The totals and how often each phase ran, as JSON."""
    with open(path, "w") as f:
        with _lock:
            calls = dict(_counts)
        json.dump(dict(seconds=totals(), calls=calls), f, indent=1)


if os.environ.get(ENV):
    atexit.register(write, os.environ[ENV])
