"""Signal handlers for one block of code, the previous ones back after it (one home for the
set-and-restore that Ctrl-C handling needs in the CLI, the output sets and the worker pools)."""
from __future__ import annotations

import contextlib
import signal
from typing import Iterator, Sequence


@contextlib.contextmanager
def handled(handler, signals: Sequence[int] = (signal.SIGINT,)) -> Iterator[bool]:
    """``handler`` (a function or ``signal.SIG_IGN``) for ``signals`` inside the block; yields
    whether it was set: Python sets handlers only in the main thread, and elsewhere the block
    runs with the process's handlers (signals are delivered to the main thread anyway)."""
    try:
        old = {s: signal.signal(s, handler) for s in signals}
    except ValueError:  # not the main thread
        yield False
        return
    try:
        yield True
    finally:
        for s, previous in old.items():
            signal.signal(s, previous)
