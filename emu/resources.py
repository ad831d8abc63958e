"""Host resources a command will need, checked before anything is allocated.

Every large allocation of a run is a product of sizes a user chooses: ticks x neurons
(input rasters, recorded voltages, the spike buffers), lags x neurons (the ring buffer of
delayed input), neurons (a conversion's parameter arrays). :func:`check_memory` compares
an estimate with the memory this machine has available now and refuses, in one line,
what would not fit, instead of a ``MemoryError`` traceback, or a machine swapped to a
standstill and its process killed. :data:`MAX_LAG` and :data:`MAX_TICKS` bound the
numbers themselves.
"""
from __future__ import annotations

import os
from typing import Optional

from emu.errors import UserError

#: the longest run: tick numbers and per-tick counts of a recording are int32 where they are stored
MAX_TICKS = 2**31 - 1
#: the longest delay of a connection, synaptic latency and extra delay together (a ring buffer slot per tick)
MAX_LAG = 2**16
#: bytes per neuron of a converted population (its parameter arrays and the converter's temporaries)
CONVERSION_BYTES_PER_NEURON = 160


class ResourceError(UserError):
    """A run, comparison or conversion that would need more memory than this machine has, or a
    size beyond what the emulator represents (the message says which and how much)."""


def available_bytes() -> int:
    """Memory available to a new allocation now (Linux ``MemAvailable``; else free physical pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 1 << 62  # unknown: never refuse


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PiB"


def check_memory(need: float, what: str, fix: str = "") -> None:
    """Refuse ``what`` (e.g. ``"a run of 2,000,000,000 ticks x 37 neurons"``) when it needs
    ``need`` bytes, more than :func:`available_bytes`; ``fix`` says what to change."""
    have = available_bytes()
    if need > have:
        raise ResourceError(f"{what} needs about {human(need)} of memory, more than the {human(have)} available on "
                            f"this machine" + (f": {fix}" if fix else ""))


def check_ticks(ticks: Optional[int], where: str = "ticks") -> None:
    """Refuse a tick count the emulator cannot represent (before any memory estimate)."""
    if ticks is not None and ticks > MAX_TICKS:
        raise ResourceError(f"{where}: {ticks:,} ticks is more than the {MAX_TICKS:,} a run can have")


def check_lag(lag: int, where: str) -> None:
    """Refuse a connection delay (latency + extra delay) longer than :data:`MAX_LAG` ticks."""
    if lag > MAX_LAG:
        raise ResourceError(f"{where}: a delay of {lag:,} ticks is more than the {MAX_LAG:,} a connection can have")


def run_bytes(batch: int, ticks: int, neurons: int, input_neurons: int, recorded_neurons: int = 0,
              state_bytes: int = 8, max_lag: int = 1, threads: int = 1) -> int:
    """Memory of an emulator run: the input rasters (a byte per input neuron and tick), the
    recorded voltages, a tick's spike count per sample, the spike buffer of one chunk of samples
    (the engine runs 16 per thread at a time; one int32 per spike, a 32nd of the cells as the
    engine sizes it first) and each thread's ring buffer of delayed input."""
    cells = batch * ticks
    chunk = min(batch, 16 * max(threads, os.cpu_count() or 1))
    spikes = chunk * ticks * max(1, neurons // 32) * 4
    ring = threads * (max_lag + 1) * neurons * state_bytes
    return int(cells * input_neurons + cells * recorded_neurons * state_bytes + cells * 8 + spikes + ring)


def check_run(batch: int, ticks: int, neurons: int, input_neurons: int, recorded_neurons: int = 0,
              state_bytes: int = 8, max_lag: int = 1, threads: int = 1, what: str = "the run") -> None:
    """:func:`check_ticks`, then :func:`check_memory` of :func:`run_bytes`."""
    check_ticks(ticks)
    need = run_bytes(batch, ticks, neurons, input_neurons, recorded_neurons, state_bytes, max_lag, threads)
    check_memory(need, f"{what} ({batch:,} sample(s) x {ticks:,} ticks x {neurons:,} neurons"
                       + (f", voltages of {recorded_neurons:,}" if recorded_neurons else "") + ")",
                 "run fewer ticks or samples" + (", or record fewer voltages" if recorded_neurons else ""))
