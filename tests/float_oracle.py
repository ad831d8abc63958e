"""The float reference's tick-by-tick stepper (validate/float_reference.py up to issue 28),
kept as the oracle of the chunked one: every tick, every population in the graph's order,
every link's torch layers on that tick's spikes of the whole batch, ``cur = 0 + p1 + p2 ...``.
It runs a FloatReference's own modules, so the two differ only in how they step."""
from __future__ import annotations

import numpy as np
import snntorch as snn
import torch

from emu.inputs import normalize_inputs
from emu.spikes import Recording


def tick_by_tick(model, inputs, ticks=None, record_v: bool = True) -> Recording:
    rasters, ticks = normalize_inputs({n: model.shapes[n] for n in model.inputs}, inputs, ticks)
    batch = next(iter(rasters.values())).shape[0]
    threads = torch.get_num_threads()
    if batch * sum(int(np.prod(s)) for s in model.shapes.values()) < 1e6:
        torch.set_num_threads(1)
    try:
        with torch.no_grad():
            spikes, mems = _steps(model, rasters, ticks, batch, record_v)
    finally:
        torch.set_num_threads(threads)
    return Recording.from_rasters(spikes, model.shapes, mems, source="float reference (tick by tick)")


def _steps(model, rasters, ticks: int, batch: int, record_v: bool):
    dtype, shapes = model.dtype, model.shapes
    x_in = {n: torch.as_tensor(r, dtype=dtype).reshape((batch, ticks) + shapes[n]) for n, r in rasters.items()}
    neuron = {name: model.neurons[f"n{i}"] for i, name in enumerate(model.order) if name not in model.inputs}
    state = {n: (tuple(torch.zeros((batch,) + shapes[n], dtype=dtype) for _ in range(2))
                 if isinstance(m, snn.Synaptic) else torch.zeros((batch,) + shapes[n], dtype=dtype))
             for n, m in neuron.items()}
    now = {n: torch.zeros((batch,) + shapes[n], dtype=dtype) for n in model.order}
    spikes = {n: np.zeros((batch, ticks, int(np.prod(shapes[n]))), bool) for n in model.order}
    mems = {n: np.zeros((batch, ticks, int(np.prod(shapes[n]))), np.float64) for n in neuron} if record_v else {}
    for t in range(ticks):
        last = dict(now)  # a back edge reads the previous step's spikes
        for name in model.order:
            if name in model.inputs:
                s = x_in[name][:, t]
            else:
                cur = torch.zeros((batch,) + shapes[name], dtype=dtype)
                for lk, path in zip(model.links, model.paths):
                    if lk.post == name:
                        cur = cur + path(last[lk.pre] if lk.lag else now[lk.pre])
                cur = cur * model._gain[name]
                if model._offset[name] is not None:
                    cur = cur + model._offset[name]
                if isinstance(neuron[name], snn.Synaptic):
                    s, syn, mem = neuron[name](cur, *state[name])
                    state[name] = (syn, mem)
                else:
                    s, mem = neuron[name](cur, state[name])
                    state[name] = mem
                s = s.to(dtype)
                if record_v:
                    mems[name][:, t] = mem.reshape(batch, -1).numpy()
            now[name] = s
            spikes[name][:, t] = s.reshape(batch, -1).numpy() > 0
    return spikes, mems
