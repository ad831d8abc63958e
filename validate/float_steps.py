"""How the float reference steps its populations: a chunk of ticks at a time, a whole
feed-forward population at a time.

The populations fall into groups, the strongly connected components of the link graph,
taken in topological order (:func:`step_groups`). A group of one population that does
not project to itself is feed-forward: every link into it comes from an earlier group,
whose spikes for the whole chunk are known, so its current for the chunk is computed at
once (:class:`~validate.float_links.LinkCurrent`), and its snnTorch module then steps
only the elementwise recurrence, tick after tick. A recurrent group (a back edge, a
self-projection, and everything on a cycle with them) steps tick by tick, its members in
the graph's order, each summing its links' currents, those from inside the group
computed from this or the previous tick's spikes, exactly as a tick-by-tick stepper.

Every current is the sum of its links in the links' order (``0 + p1 + p2 ...``), times
the population's gain, plus its offset, as in the module doc of
:mod:`validate.float_reference`: the same float64 operations in the same order (inside
an exact link's sum any order, see :mod:`validate.float_links`), so the same bits
whether a tick or a chunk is computed at once.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import snntorch as snn
import torch

from .float_links import NONE, Chunk, Link

#: a chunk of ticks holds about this many bytes of spikes and currents (ticks x samples x
#: neurons: 1 byte a spike, 8 a current)
CHUNK_BYTES = 64 << 20


@contextlib.contextmanager
def torch_threads(n: int):
    """torch's intra-op threads set to ``n`` for a block, the caller's setting restored after it."""
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@dataclass(frozen=True)
class Group:
    """Populations that step together: one feed-forward population, or a recurrent component."""

    members: Tuple[str, ...]
    recurrent: bool


def step_groups(order: Sequence[str], inputs: Sequence[str], links: Sequence[Link]) -> List[Group]:
    """The non-input populations as strongly connected components of ``links`` (Tarjan's,
    iterative), each ordered as ``order``, the components in topological order."""
    pos = {n: i for i, n in enumerate(order)}
    nodes = [n for n in order if n not in inputs]
    succ: Dict[str, List[str]] = {n: [] for n in nodes}
    for lk in links:
        if lk.pre in succ:
            succ[lk.pre].append(lk.post)
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack = set()
    components: List[List[str]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(succ[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        n = stack.pop()
                        on_stack.discard(n)
                        comp.append(n)
                        if n == node:
                            break
                    components.append(sorted(comp, key=pos.__getitem__))
    components.sort(key=lambda c: pos[c[0]])
    group_of = {n: i for i, c in enumerate(components) for n in c}
    selfish = {lk.pre for lk in links if lk.pre == lk.post}
    for lk in links:  # the graph's order is topological: a link between groups goes forward, in the same tick
        if lk.pre in group_of and group_of[lk.pre] != group_of[lk.post]:
            assert group_of[lk.pre] < group_of[lk.post] and lk.lag == 0, lk
    return [Group(tuple(c), len(c) > 1 or c[0] in selfish) for c in components]


def _step(module: torch.nn.Module, cur: torch.Tensor, state):
    """One snnTorch step: (spikes, new state, membrane)."""
    if isinstance(module, snn.Synaptic):
        spk, syn, mem = module(cur, *state)
        return spk, (syn, mem), mem
    spk, mem = module(cur, state)
    return spk, mem, mem


class Run:
    """One run of a :class:`~validate.float_reference.FloatReference` over a batch: state,
    spikes (as events, chunk by chunk) and membranes."""

    def __init__(self, model, rasters: Dict[str, np.ndarray], ticks: int, batch: int,
                 neuron: Dict[str, torch.nn.Module], volts: Dict[str, np.ndarray],
                 advance: Callable[[int], None] = lambda ticks: None):
        """``neuron``: each population's snnTorch module; ``volts``: where membranes go,
        (batch, ticks, neurons) per population, or empty; ``advance(k)``: told after every k ticks."""
        self.m, self.rasters, self.ticks, self.batch = model, rasters, ticks, batch
        self.neuron, self.volts, self.advance = neuron, volts, advance
        dtype = model.dtype
        zeros = lambda n: torch.zeros((batch,) + model.shapes[n], dtype=dtype)  # noqa: E731
        self.state = {n: (zeros(n), zeros(n)) if isinstance(m, snn.Synaptic) else zeros(n)
                      for n, m in self.neuron.items()}
        self.now = {n: zeros(n) for g in model.groups if g.recurrent for n in g.members}
        self.into = {n: [lc for lc in model.currents if lc.link.post == n] for n in self.neuron}
        flat = lambda x, n: np.ascontiguousarray(  # noqa: E731
            np.broadcast_to(x.double().numpy(), model.shapes[n]).reshape(-1))
        self.finish = {n: (flat(model._gain[n], n), NONE if model._offset[n] is None else flat(model._offset[n], n))
                       for n in self.neuron}
        sizes = [int(np.prod(model.shapes[n])) for n in model.order]
        self.total = max(sum(sizes), 1)  # neurons in all: a spike's key is (sample, tick, global neuron)
        self.offset = dict(zip(model.order, np.cumsum([0] + sizes[:-1]).tolist()))
        self.keys: List[np.ndarray] = []
        # an input read tick by tick (by an inexact link) is read from the whole run's raster in
        # dtype, as a tick-by-tick stepper holds it
        read = {lc.link.pre for lc in model.currents if not lc.exact}
        self.whole = {n: torch.as_tensor(rasters[n], dtype=dtype).reshape((batch, ticks) + model.shapes[n])
                      for n in model.inputs if n in read}
        per_tick = batch * model.n_neurons \
            + 24 * batch * max(int(np.prod(s)) for s in model.shapes.values())
        self.chunk = int(max(1, min(ticks, CHUNK_BYTES // per_tick)))

    def all(self) -> None:
        for t0 in range(0, self.ticks, self.chunk):
            tc = min(self.chunk, self.ticks - t0)
            chunks: Dict[str, Chunk] = {}
            for n in self.m.inputs:
                x = np.ascontiguousarray(self.rasters[n][:, t0:t0 + tc].swapaxes(0, 1))
                train = torch.from_numpy(x).reshape((tc, self.batch) + self.m.shapes[n])
                whole = self.whole.get(n)
                chunks[n] = self._chunk(train, (lambda t, w=whole, t0=t0: w[:, t0 + t]) if whole is not None else None)
            for group in self.m.groups:
                (self._recurrent if group.recurrent else self._feed_forward)(group, t0, tc, chunks)
            for n, chunk in chunks.items():
                rows, cols = chunk.events
                sample, tick = rows % self.batch, rows // self.batch + t0
                self.keys.append((sample * self.ticks + tick) * self.total + self.offset[n] + cols)
            self.advance(tc)

    def _chunk(self, train: torch.Tensor, tick=None) -> Chunk:
        """A chunk's (ticks, batch, ...) spikes with their events; ``tick(t)`` by default a new
        tensor of tick t's spikes, as a stepper's ``spikes.to(dtype)``."""
        flat = np.flatnonzero(train.numpy())  # 1-D: several times faster than a 2-D nonzero
        events = np.divmod(flat, flat.dtype.type(train[0, 0].numel()))
        return Chunk(train, events, tick or (lambda t: train[t].to(self.m.dtype)))

    def _finish(self, n: str, cur: torch.Tensor) -> torch.Tensor:
        """``cur * gain (+ offset)``, in place (``cur`` is this step's own)."""
        cur.mul_(self.m._gain[n])
        if self.m._offset[n] is not None:
            cur.add_(self.m._offset[n])
        return cur

    def _record(self, n: str, t: int, spk: torch.Tensor, mem: torch.Tensor, out: torch.Tensor) -> None:
        out.copy_(spk)
        if self.volts:
            torch.from_numpy(self.volts[n][:, t]).copy_(mem.reshape(self.batch, -1))

    def _current(self, n: str, tc: int, chunks: Dict[str, Chunk]) -> torch.Tensor:
        """Population ``n``'s current for the chunk: ``(0 + p1 + p2 ...) * gain (+ offset)``."""
        links, dtype = self.into[n], self.m.dtype
        if len(links) == 1 and links[0].matrix is not None and dtype == torch.float64:
            return links[0](chunks[links[0].link.pre], dtype, *self.finish[n])  # all in one pass
        cur = None
        for lc in links:
            term = lc(chunks[lc.link.pre], dtype)
            if cur is None:  # 0 + p1: a matrix's sum is never -0.0, torch's may be
                cur = term if lc.matrix is not None else term.add_(0.0)
            else:
                cur += term
        return self._finish(n, cur if cur is not None else torch.zeros((tc, self.batch) + self.m.shapes[n],
                                                                        dtype=dtype))

    def _feed_forward(self, group: Group, t0: int, tc: int, chunks: Dict[str, Chunk]) -> None:
        """A feed-forward population: its current for the chunk at once, then its module tick by tick."""
        n = group.members[0]
        cur = self._current(n, tc, chunks)
        out = torch.empty((tc, self.batch) + self.m.shapes[n], dtype=torch.bool)
        module, state = self.neuron[n], self.state[n]
        for t in range(tc):
            spk, state, mem = _step(module, cur[t], state)
            self._record(n, t0 + t, spk, mem, out[t])
        self.state[n] = state
        chunks[n] = self._chunk(out)

    def _recurrent(self, group: Group, t0: int, tc: int, chunks: Dict[str, Chunk]) -> None:
        dtype, inside = self.m.dtype, set(group.members)
        outside = {id(lc): lc(chunks[lc.link.pre], dtype)
                   for n in group.members for lc in self.into[n] if lc.link.pre not in inside}
        outs = {n: torch.empty((tc, self.batch) + self.m.shapes[n], dtype=torch.bool) for n in group.members}
        for t in range(tc):
            last = dict(self.now)  # a back edge reads the previous step's spikes
            for n in group.members:
                cur = torch.zeros((self.batch,) + self.m.shapes[n], dtype=dtype)
                for lc in self.into[n]:
                    if lc.link.pre in inside:
                        cur = cur + lc.path(last[lc.link.pre] if lc.link.lag else self.now[lc.link.pre])
                    else:
                        cur = cur + outside[id(lc)][t]
                spk, self.state[n], mem = _step(self.neuron[n], self._finish(n, cur), self.state[n])
                self.now[n] = spk.to(dtype)
                self._record(n, t0 + t, spk, mem, outs[n][t])
        for n in group.members:
            chunks[n] = self._chunk(outs[n])

    def sample_events(self) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Per sample: (tick, global neuron) of every spike, by tick then neuron (the order of
        :meth:`emu.spikes.Recording.from_rasters`)."""
        keys = np.concatenate(self.keys) if self.keys else np.zeros(0, np.int64)
        keys.sort()
        bounds = np.searchsorted(keys, np.arange(self.batch + 1) * self.ticks * self.total)
        out = []
        for b, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            tick, neuron = np.divmod(keys[lo:hi], self.total)
            out.append((tick - b * self.ticks, neuron))
        return out
