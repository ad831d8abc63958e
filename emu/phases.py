"""Where a job's wall time goes, phase by phase (data, build, emulator, float reference, ...).

A command's work is a few phases; :func:`phase` times one, in the thread that runs the
command. Phases nest, and each second goes to the innermost phase open at that moment
(the emulator's runs inside an attribution count as ``emulator``, the attribution's own
counting as ``attribution``), so the phases add up to at most the wall time.
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
_stack: List[list] = []  # [name, start of its own current stretch]
_owner = threading.main_thread()


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the enclosed work as ``name`` (module doc); other threads' phases are not counted."""
    if threading.current_thread() is not _owner:
        yield
        return
    now = time.perf_counter()
    if _stack:  # the enclosing phase pauses
        outer = _stack[-1]
        _totals[outer[0]] += now - outer[1]
    _stack.append([name, now])
    try:
        yield
    finally:
        end = time.perf_counter()
        inner = _stack.pop()
        _totals[inner[0]] += end - inner[1]
        _counts[inner[0]] += 1
        if _stack:
            _stack[-1][1] = end


def totals() -> Dict[str, float]:
    """Seconds per phase so far."""
    return dict(_totals)


def write(path: str) -> None:
    """The totals and how often each phase ran, as JSON."""
    with open(path, "w") as f:
        json.dump(dict(seconds=totals(), calls=dict(_counts)), f, indent=1)


if os.environ.get(ENV):
    atexit.register(write, os.environ[ENV])
