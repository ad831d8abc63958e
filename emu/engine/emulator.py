"""The emulator: ``Emulator(network, profile)(inputs) -> Recording``.

Inputs are 0/1 spike rasters per input population, shaped (T, N) or (B, T, N)
(trailing axes may be the population's shape, e.g. (B, T, 2, 32, 32)). A single
array feeds a network with one input population. Output spikes and voltages are
in NIR neuron order, voltages in chip units (as the chip holds them).
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterable, Optional, Union

import numba
import numpy as np

from emu.engine.arrays import NetworkArrays
from emu.engine.kernels import run_samples
from emu.engine.layout import CompiledNetwork
from emu.inputs import Inputs, normalize_inputs
from emu.network import Network
from emu.phases import phase
from emu.numerics import zeroed_weight_notes
from emu.profile import SemanticsProfile
from emu.spikes import Recording


# worker threads by pool size, made once per process, so that a run neither starts nor
# joins threads (for a small batch that costs as much as the kernel's work)
_POOLS: Dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    with _POOLS_LOCK:
        if workers not in _POOLS:
            _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="s2emu-worker")
        return _POOLS[workers]


def run_batch(net: NetworkArrays, n_ticks: int, in_raster, in_off, v_col, v_rec, tick_end, ev_neuron, sat_count,
              n_events, workers: int) -> None:
    """Samples of a batch on ``workers`` threads, each taking the next sample not yet
    taken until none is left (:func:`emu.engine.kernels.run_samples` releases the GIL).
    ``net``: a :class:`CompiledNetwork`'s arrays; the other arrays have a leading batch
    axis and are filled in."""
    workers = max(1, min(workers, in_raster.shape[0]))
    next_sample = np.zeros(1, np.int64)

    def worker():
        run_samples(next_sample, n_ticks, net, in_raster, in_off, v_col, v_rec, tick_end, ev_neuron, sat_count,
                    n_events)

    if workers == 1:
        return worker()
    for done in [_pool(workers).submit(worker) for _ in range(workers)]:
        done.result()


class Emulator:
    """Bit-accurate SpiNNaker2 emulation of a :class:`Network` under a :class:`SemanticsProfile`.

    >>> result = Emulator(net, SemanticsProfile.chip())(raster)   # doctest: +SKIP
    """

    def __init__(self, network: Network, profile: Optional[SemanticsProfile] = None):
        self.network = network
        self.profile = profile or SemanticsProfile.chip()
        with phase("build"):
            self.compiled = CompiledNetwork.build(network, self.profile)
        #: what the user should know about this network under this profile (weights lost to 0, ...);
        #: every run's ``meta["warnings"]``
        self.warnings = zeroed_weight_notes(network, self.profile)
        self._spike_scratch = np.empty(0, np.int32)

    def __call__(self, inputs: Inputs, ticks: Optional[int] = None, record_v: Union[bool, Iterable[str]] = False,
                 progress: Optional[bool] = None) -> Recording:
        with phase("emulator"):
            return self.run(inputs, ticks, record_v, progress)

    def run(self, inputs: Inputs, ticks: Optional[int] = None, record_v: Union[bool, Iterable[str]] = False,
            progress: Optional[bool] = None) -> Recording:
        """Run every sample for ``ticks`` ticks (default: the input length).

        ``record_v``: True for all populations, or a list of names. ``progress``:
        a progress bar over chunks of the batch (default: when the run is long).
        """
        c = self.compiled
        rasters, ticks = normalize_inputs(self.network, inputs, ticks)
        batch = next(iter(rasters.values())).shape[0]
        recorded = self._recorded(record_v)
        work = batch * ticks * c.n_neurons
        # chunks bound the spike buffers' memory and pace the progress bar; each is one
        # kernel call (a few ms of setup), so 16 samples per thread
        chunk = max(1, 16 * numba.get_num_threads())
        show = progress if progress is not None else (work > 5e8 and batch > chunk)
        starts = range(0, batch, chunk)
        if show:
            from tqdm import tqdm

            starts = tqdm(starts, desc="emulating", unit="chunk", total=len(starts))
        parts = [self._run_chunk({k: a[s:s + chunk] for k, a in rasters.items()}, ticks, recorded) for s in starts]
        neurons = [e for part in parts for e in part[0]]
        tick_end = [e for part in parts for e in part[1]]
        v = {name: np.concatenate([p[2][name] for p in parts]) for name in recorded}
        sat = np.sum([p[3] for p in parts], axis=0)
        meta = dict(
            profile=self.profile.describe(),
            dt=self.network.dt,
            ticks=ticks,
            batch=batch,
            order=c.order,
            scales={n: _compact(p.scale) for n, p in self.network.populations.items() if p.model != "input"},
            clipped_weights=dict(c.clipped_weights),
            saturations={n: int(sat[i]) for i, n in enumerate(c.order) if sat[i]},
            conversion=self.network.meta.get("conversion", {}),
            warnings=list(self.warnings),
            inputs=list(self.network.inputs),
        )
        shapes = {n: self.network.populations[n].shape for n in c.order}
        return Recording(shapes, ticks, neurons, tick_end, v, meta, source=f"emulator ({self.profile.arithmetic})")

    def _recorded(self, record_v):
        names = [n for n in self.compiled.order if self.network.populations[n].model != "input"]
        if record_v is True:
            return names
        if not record_v:
            return []
        wanted = list(record_v)
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise KeyError(f"cannot record voltages of {unknown}; neuron populations are {names}")
        return [n for n in names if n in wanted]

    def _run_chunk(self, rasters, ticks, recorded):
        c, a = self.compiled, self.compiled.arrays
        order = c.order
        batch = next(iter(rasters.values())).shape[0]
        n_pops = len(order)
        # the kernel reads the 0/1 input rasters directly: input population p at columns in_off[p]:
        in_off = np.zeros(n_pops, np.int64)
        cols = 0
        for i, name in enumerate(order):
            if name in rasters:
                in_off[i] = cols
                cols += rasters[name].shape[2]
        parts = [rasters[name] for name in order if name in rasters]
        in_raster = np.ascontiguousarray(parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2))
        v_col = np.full(n_pops, -1, np.int64)
        col = 0
        for name in recorded:
            i = order.index(name)
            v_col[i] = col
            col += self.network.populations[name].size
        v_rec = np.zeros((batch, ticks, col), c.numerics.state_dtype)
        sat = np.zeros((batch, n_pops), np.int64)
        n_total = ticks * c.n_neurons
        cap = min(n_total, max(1 << 16, n_total // 32))
        # the kernel writes spikes into memory kept from the last run (taken out of self
        # while in use, so concurrent calls never share it): fresh pages cost a fault
        # each, which on a VM took a third of the run time; exact-size copies go out
        scratch, self._spike_scratch = self._spike_scratch, np.empty(0, np.int32)
        while True:
            if scratch.size < batch * cap:
                scratch = np.empty(batch * cap, np.int32)
            ev_n = scratch[:batch * cap].reshape(batch, cap)
            tick_end = np.empty((batch, ticks), np.int64)
            n_ev = np.zeros(batch, np.int64)
            sat[:] = 0
            # numba.set_num_threads / NUMBA_NUM_THREADS set the number of worker threads
            run_batch(a, ticks, in_raster, in_off, v_col, v_rec, tick_end, ev_n, sat, n_ev,
                      workers=numba.get_num_threads())
            if n_ev.max(initial=0) <= cap:
                break
            cap = int(n_ev.max())
        # copied out into one array (numpy backs large ones with huge pages: a few faults
        # instead of one per 4 KiB), one view per sample
        ends = np.cumsum(n_ev)
        flat = np.empty(int(ends[-1]) if batch else 0, np.int32)
        for b in range(batch):
            flat[ends[b] - n_ev[b]:ends[b]] = ev_n[b, :n_ev[b]]
        neurons = [flat[ends[b] - n_ev[b]:ends[b]] for b in range(batch)]
        self._spike_scratch = scratch
        v = {}
        for name in recorded:
            i = order.index(name)
            vv = v_rec[:, :, v_col[i]:v_col[i] + self.network.populations[name].size]
            v[name] = vv / c.numerics.lsb if c.numerics.fixed else vv
        return neurons, list(tick_end), v, sat.sum(axis=0)


def _compact(x: np.ndarray):
    """A per-neuron array as one number when all equal (for readable metadata)."""
    x = np.asarray(x, dtype=float)
    return float(x[0]) if x.size and np.all(x == x[0]) else x.tolist()


def run(network: Network, inputs: Inputs, ticks: Optional[int] = None,
        profile: Optional[SemanticsProfile] = None, record_v=False) -> Recording:
    """One-line form of :class:`Emulator`."""
    return Emulator(network, profile)(inputs, ticks, record_v)
