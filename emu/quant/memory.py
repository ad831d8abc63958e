"""Per-population memory table of a run on SpiNNaker2 (``s2emu fit``).

The numbers are those of :class:`emu.chip.ChipBudget`, the per-PE memory model
that :func:`emu.chip.fit_warnings` uses; this module only lays them out as a
table (one row per population, per busiest PE) instead of warning sentences:

* synapse bytes: ``budget.synapse_bytes`` per stored (non-zero after
  quantization) dense synapse into the PE's neurons, times ``pool**2`` when a
  SumPool2d is folded in; a conv kernel once per PE at one byte per weight;
* neuron state: ``budget.neuron_state_bytes`` per neuron on the PE;
* recording per tick: spikes as 1 bit per neuron rounded up to 32-bit words,
  plus ``budget.voltage_bytes`` per neuron when voltages are recorded;
* the longest run whose recording fits: the free bytes (usable - synapses -
  state) over the recording bytes per tick.
"""
from __future__ import annotations

import math
from typing import List, Mapping, Optional, Sequence

import numpy as np

from emu.numerics import round_weights
from emu.chip import ChipBudget, chip_model_of
from emu.network import Network
from emu.profile import SemanticsProfile


def fit_table(network: Network, ticks: Optional[int] = None, profile: Optional[SemanticsProfile] = None, *,
              record: Sequence[str] = ("spikes",), budget: Optional[ChipBudget] = None,
              max_atoms_per_core: Optional[Mapping[str, int]] = None) -> dict:
    """Memory per population under ``budget`` (default :class:`ChipBudget`).

    Returns ``{"rows": [...], "total_pes", "chips", "longest_run_ticks", "fits"}``;
    each row: population, model, neurons, neurons_per_pe, pes, synapse_bytes,
    state_bytes, record_bytes_per_tick, free_bytes (per busiest PE),
    record_bytes (for ``ticks``, per PE; None without ticks), max_ticks (the
    longest recording that fits; None for input populations, 0 when synapses and
    state alone overflow the PE).
    """
    budget = budget or ChipBudget()
    profile = profile or SemanticsProfile.chip()
    record = set(record)
    atoms = dict(max_atoms_per_core or {})
    rows: List[dict] = []
    for name, pop in network.populations.items():
        model = chip_model_of(network, name)
        limit = int(atoms.get(name) or budget.max_neurons_per_pe.get(model, budget.default_neurons_per_pe))
        n = min(limit, pop.size)
        row = dict(population=name, model=model, neurons=pop.size, neurons_per_pe=n, pes=math.ceil(pop.size / limit))
        if pop.model == "input":
            row.update(synapse_bytes=0, state_bytes=0, record_bytes_per_tick=0, free_bytes=None, record_bytes=None,
                       max_ticks=None)
            rows.append(row)
            continue
        syn = 0
        for pr in network.projections:
            if pr.post != name:
                continue
            q = round_weights(pr.weight, profile.weight_rounding)  # only zero / non-zero matters here
            if pr.kind == "conv2d":
                syn += q.size
            else:
                stored = (q != 0).reshape(pop.size, -1).sum(axis=1)
                syn += int(np.add.reduceat(stored, np.arange(0, pop.size, n)).max()) * pr.pool ** 2 * budget.synapse_bytes
        state = n * budget.neuron_state_bytes
        per_tick = math.ceil(n / 32) * 4 + (budget.voltage_bytes * n if "v" in record else 0)
        free = budget.usable_bytes - state - syn
        row.update(synapse_bytes=int(syn), state_bytes=int(state), record_bytes_per_tick=int(per_tick),
                   free_bytes=int(free), record_bytes=None if ticks is None else int(per_tick * ticks),
                   max_ticks=int(max(free, 0) // per_tick))
        rows.append(row)
    total = sum(r["pes"] for r in rows)
    limits = [r["max_ticks"] for r in rows if r["max_ticks"] is not None]
    longest = min(limits) if limits else None
    fits = total <= budget.pes_per_chip and (longest is None or ticks is None or ticks <= longest) and \
        all(r["free_bytes"] is None or r["free_bytes"] > 0 for r in rows)
    return dict(rows=rows, total_pes=int(total), chips=int(math.ceil(total / budget.pes_per_chip)),
                longest_run_ticks=longest, ticks=ticks, record=sorted(record), fits=bool(fits),
                usable_bytes_per_pe=budget.usable_bytes, pes_per_chip=budget.pes_per_chip)


def format_fit_table(table: dict) -> str:
    cols = [("population", "population"), ("model", "model"), ("neurons", "neurons"), ("per PE", "neurons_per_pe"),
            ("PEs", "pes"), ("synapses B", "synapse_bytes"), ("state B", "state_bytes"),
            ("rec B/tick", "record_bytes_per_tick"), ("rec B", "record_bytes"), ("free B", "free_bytes"),
            ("max ticks", "max_ticks")]
    cells = [[h for h, _ in cols]] + [["-" if r[k] is None else str(r[k]) for _, k in cols] for r in table["rows"]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    lines = ["  ".join(c[i].rjust(widths[i]) for i in range(len(cols))) for c in cells]
    lines.append(f"PEs needed: {table['total_pes']} ({table['pes_per_chip']} per chip) -> chips needed: {table['chips']}")
    lr = table["longest_run_ticks"]
    lines.append(f"longest run whose recording ({','.join(table['record'])}) fits: "
                 f"{'-' if lr is None else lr} ticks (per-PE figures are for the busiest PE; "
                 f"{table['usable_bytes_per_pe']} B usable per PE; emu.chip.ChipBudget estimates)")
    if table["ticks"] is not None:
        lines.append(f"{table['ticks']} ticks: {'fits' if table['fits'] else 'does NOT fit'}")
    return "\n".join(lines)
