"""The engine's loops against what this machine allows: each run with every byte in L1,
timed, and the neuron pass's instructions counted in its compiled code.

* :func:`l1_ns_per_vector_add`: the scatter's footprint loop
  (:func:`emu.engine.kernels._add_footprints`) at random places of a 4 KiB buffer;
* :func:`neuron_pass_bound`: the neuron pass of a uniform population
  (:func:`emu.engine.kernels._update_fire_uniform`: :func:`emu.engine.intrinsics.lif64`,
  8 neurons per vector step, and the spike extraction of each 64) over 1024 neurons
  (4 KiB of membranes, 2 KiB of int16 drives), silent as a silent input leaves it;
  its loop's instructions per 8 neurons, counted in the compiled assembly; the clock,
  measured by a chain of dependent multiply-xors (4 cycles each: ``imul`` 3, ``xor`` 1
  on every current x86 core); and its instruction bound: the cycles the core needs to
  issue that loop, ``max(vector instructions / VECTOR_PER_CYCLE, instructions /
  ISSUE_PER_CYCLE)`` per 8 neurons, with this project's machine's limits (AMD Zen 5:
  8 instructions dispatched and 4 vector operations per cycle; a Zen 4 or an Intel
  Golden Cove core dispatches 6, and the latter has 3 vector ports). The L1 run shows
  the same loop reaching the bound (within the clock measurement's few percent) when
  nothing waits for memory or a branch.

``bench_dvs_network.py`` prints the paper network's pass and scatter as fractions of
these, so that a regression shows as a ratio measured in the same run.
"""
from __future__ import annotations

import heapq
import re
import time
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from numba import njit

from emu.engine.intrinsics import LIF_LANES
from emu.engine.kernels import _add_footprints, _update_fire_uniform

ISSUE_PER_CYCLE = 8
VECTOR_PER_CYCLE = 4
L1_NEURONS = 1024


@njit(cache=True)
def _footprints(dst, w, spikes, places, reps):
    # the engine's own footprint loop: 3 rows of 3 int16 vectors, 240 elements apart
    for _ in range(reps):
        _add_footprints(dst, 0, spikes, len(spikes), 0, places, w, 3, 240, 48, 3, 16)


def fastest(run, repeats: int) -> float:
    """CPU seconds of the fastest of ``repeats`` calls of ``run()``."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        run()
        best = min(best, time.process_time() - t0)
    return best


def l1_ns_per_vector_add(repeats: int = 5) -> float:
    """ns per int16 vector add (16 lanes) with every byte in L1: the engine's footprint loop
    (3 rows of 3 vectors, 240 elements apart, as conv2 of the paper network) at random
    places of a 4 KiB buffer, the fastest of ``repeats`` runs."""
    rng = np.random.default_rng(0)
    dst = np.zeros(2048, np.int16)
    w = rng.integers(-1, 2, 144).astype(np.int8)  # small: the sums stay in range
    # (first element, weight offset) per pre neuron, as the engine's pre_rows
    places = np.stack([rng.integers(0, 2048 - 3 * 240, 1024) // 16 * 16, np.zeros(1024, np.int64)], axis=1)
    spikes = np.arange(len(places))
    _footprints(dst, w, spikes, places, 1)
    reps = 200
    return fastest(lambda: _footprints(dst, w, spikes, places, reps), repeats) / (reps * len(places) * 9) * 1e9


@njit(cache=False)  # compiled in every run: numba shows no assembly of a function loaded from its cache
def _neuron_pass(buf, v, alpha, thr, fire_thr, ioff, vreset, subtract, out, reps):
    # the engine's own pass over a uniform population, `reps` times; the reset mode an
    # argument, as in the engine's kernel (a constant would be compiled away)
    n = 0
    for _ in range(reps):
        n += _update_fire_uniform(0, len(v), buf, 0, v, alpha, thr, fire_thr, ioff, vreset, subtract, out)
    return n


def _chain(x, n):
    for i in range(n):
        x = (x * 0x9E3779B97F4A7C15) ^ i  # a multiplier no lea computes: imul, then xor
    return x


_chain = njit(cache=True)(_chain)


def clock_ghz(repeats: int = 5) -> float:
    """This core's clock, from the fastest run of a chain of dependent multiply-xors (4 cycles each)."""
    n = 20_000_000
    _chain(np.int64(1), 10)
    return 4 * n / fastest(lambda: _chain(np.int64(1), n), repeats) / 1e9


def _blocks(asm: str):
    """The basic blocks of x86 assembly (AT&T, as numba prints it): ``(label, [(mnemonic,
    operand)], successors)``, split at labels and after jumps."""
    blocks, label, body = [], None, []
    for line in asm.splitlines():
        m = re.match(r"^([.\w$]+):", line)
        if m or (body and body[-1][0].startswith("j")):
            blocks.append((label, body))
            label, body = (m.group(1) if m else None), []
        if not m and line.startswith("\t") and not line.lstrip().startswith((".", "#")):
            parts = line.split()
            body.append((parts[0], parts[1] if len(parts) > 1 else ""))
    blocks.append((label, body))
    at = {lab: i for i, (lab, _) in enumerate(blocks) if lab}
    out = []
    for i, (lab, body) in enumerate(blocks):
        last = body[-1] if body else ("", "")
        succ = [at[last[1]]] if last[0].startswith("j") and last[1] in at else []
        if last[0] != "jmp" and not last[0].startswith("ret") and i + 1 < len(blocks):
            succ.append(i + 1)
        out.append((lab, body, succ))
    return out


def loop_instructions(asm: str) -> Optional[Tuple[float, float]]:
    """(instructions, vector instructions) per vector step (one vector compare) of the loop
    holding the first vector compare of ``asm``, on the fewest instructions one iteration
    can take through it (a silent step skips the rare path of many spikes; of two
    alternatives the shorter): a floor, as an instruction bound is. Vector instructions
    are the AVX ones (``v...``) and mask-register moves (``k...``). None where no loop
    holds a vector compare."""
    blocks = _blocks(asm)
    start = next((i for i, (_, body, _) in enumerate(blocks) if any(m.startswith("vcmp") for m, _ in body)), None)
    if start is None:
        return None
    size = [len(body) for _, body, _ in blocks]
    # the fewest instructions from the start block's end back to its start (Dijkstra)
    best, prev, todo = {start: 0}, {}, [(0, start)]
    while todo:
        d, i = heapq.heappop(todo)
        if d > best.get(i, np.inf):
            continue
        for j in blocks[i][2]:
            dj = d + size[i]
            if j == start and dj < best.get(("back",), np.inf):
                best[("back",)], prev[("back",)] = dj, i
            elif j != start and dj < best.get(j, np.inf):
                best[j], prev[j] = dj, i
                heapq.heappush(todo, (dj, j))
    if ("back",) not in best:
        return None
    path, i = [], prev[("back",)]
    while True:
        path.append(i)
        if i == start:
            break
        i = prev[i]
    body = [ins for i in path for ins in blocks[i][1]]
    steps = sum(m.startswith("vcmp") for m, _ in body)
    return len(body) / steps, sum(m.startswith(("v", "k")) for m, _ in body) / steps


@dataclass
class NeuronPassBound:
    """The neuron pass's loop per 8 neurons (one vector step): instructions, vector
    instructions, the cycles the core needs to issue them, the clock, and the same loop's
    time with every byte in L1."""

    instructions: float
    vector: float
    clock_ghz: float
    l1_ns_per_neuron: float

    @property
    def bound_cycles(self) -> float:
        """Cycles per vector step (8 neurons) at the core's issue limits."""
        return max(self.vector / VECTOR_PER_CYCLE, self.instructions / ISSUE_PER_CYCLE)

    @property
    def bound_ns_per_neuron(self) -> float:
        return self.bound_cycles / LIF_LANES / self.clock_ghz

    def cycles_per_step(self, ns_per_neuron: float) -> float:
        return ns_per_neuron * LIF_LANES * self.clock_ghz


def neuron_pass_bound(repeats: int = 5) -> Optional[NeuronPassBound]:
    """The neuron pass against its instruction bound (see the module docstring); None where
    the compiled loop is not found (not x86)."""
    n, reps = L1_NEURONS, 20_000
    full = lambda x: np.full(n, x, np.float32)  # noqa: E731
    args = (np.zeros(n, np.int16), full(0.0), full(0.93), full(1e30), full(1e30), full(0.0), full(0.0), True,
            np.zeros(n + 8, np.int64))
    _neuron_pass(*args, 1)
    counted = loop_instructions(_neuron_pass.inspect_asm(_neuron_pass.signatures[0]))
    if counted is None:
        return None
    l1 = fastest(lambda: _neuron_pass(*args, reps), repeats) / (reps * n) * 1e9
    return NeuronPassBound(counted[0], counted[1], clock_ghz(repeats), l1)
