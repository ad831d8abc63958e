"""THE memory model of a SpiNNaker2 run: what each population needs on its PEs, and how long a
recording fits. ``s2emu fit``, the chip script's warnings and ``s2emu sweep``'s memory
cost all read it from here, so they report the same bytes per population.

Per processing element (PE), about 128 kB of SRAM, minus what program code, stack
and buffers take, holds for the neurons placed on it:

* synapses: one synapse word (:attr:`ChipBudget.synapse_bytes`, 4: a 32-bit word
  with an 8-bit weight field) per *stored* dense synapse into the PE's neurons,
  i.e. non-zero after quantization; a SumPool2d folded into a dense layer is
  expanded by the converter, so every one of its ``pool**2`` pre neurons stores
  the synapse; a conv kernel is stored once per PE at one byte per weight;
* neuron state: :attr:`ChipBudget.neuron_state_bytes` per neuron (membrane,
  threshold, decay, bias, ... as 32-bit words), where a fixed-point membrane of
  ``membrane_bits`` (and a CubaLIF's synaptic current) packs into its own width;
* recording, every tick of the run: spikes at 1 bit per neuron (rounded up to
  32-bit words) and, when voltages are recorded, :attr:`ChipBudget.voltage_bytes`
  per neuron;
* an input population's spike list (a ``spike_list`` source): one 32-bit word per
  spike plus one per tick.

A population larger than its model's neurons-per-PE limit (250 by default,
py-spinnaker2's ``set_max_atoms_per_core``) is split over several PEs; a chip has
152 PEs. These are estimates of the firmware's layout, not its exact figures.
``docs/memory.md`` compares the model with the DVS-gesture paper's anchor (about
600 ticks could be recorded).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Sequence

import numpy as np

from emu.errors import UserError
from emu.network import Network
from emu.numerics import round_weights, weight_bits, zeroed_weight_notes
from emu.profile import SemanticsProfile


class FitError(UserError):
    """A memory question that cannot be answered (an unknown population named, ...)."""


def _default_neurons_per_pe():
    return {"spike_list": 250, "lif_no_delay": 250, "lif": 250, "lif_conv2d": 250, "lif_curr_exp_no_delay": 250}


@dataclass(frozen=True)
class ChipBudget:
    """The numbers of the memory model of one SpiNNaker2 processing element (PE) (module doc).

    Each PE has ``sram_bytes`` (about 128 kB) of SRAM. ``reserved_bytes`` go to
    program code, stack and buffers (an estimate). The rest holds, for the
    neurons placed on the PE:

    * neuron state: ``neuron_state_bytes`` per neuron (membrane, threshold,
      decay, bias, ... as 32-bit words);
    * synapses: ``synapse_bytes`` (one 32-bit word) per stored (non-zero after
      quantization) dense synapse into the PE's neurons, times pool*pool when a
      SumPool2d is folded in; a conv kernel once per PE at 1 byte per weight;
    * input spikes of a ``spike_list`` source: one 32-bit word per spike plus one
      per tick (an estimate of the spike-list layout);
    * recording, for every tick of the run: spikes at 1 bit per neuron (rounded up
      to 32-bit words) and, when voltages are recorded, ``voltage_bytes`` per
      neuron.

    A population larger than its model's neurons-per-PE limit
    (``max_neurons_per_pe``, 250 by default, changed per population with
    py-spinnaker2's ``set_max_atoms_per_core``) is split over several PEs; a
    chip has ``pes_per_chip`` PEs. These numbers are estimates of the firmware's
    layout, not its exact figures: the warnings say when a run is likely not to
    fit (the SpiNNaker2 DVS-gesture work could record only about 600 ticks on
    chip, for this reason).
    """

    sram_bytes: int = 128 * 1024
    reserved_bytes: int = 32 * 1024
    neuron_state_bytes: int = 32
    synapse_bytes: int = 4
    voltage_bytes: int = 4
    pes_per_chip: int = 152
    max_neurons_per_pe: Mapping[str, int] = field(default_factory=_default_neurons_per_pe)
    default_neurons_per_pe: int = 250

    @property
    def usable_bytes(self) -> int:
        return self.sram_bytes - self.reserved_bytes


def chip_model_of(network: Network, name: str) -> str:
    """The py-spinnaker2 neuron model a population becomes (from the conversion, else by its kind)."""
    pop = network.populations[name]
    if pop.model == "input":
        return "spike_list"
    known = (network.meta.get("conversion") or {}).get("chip_models") or {}
    if name in known:
        return known[name]
    if pop.model == "cuba_lif":
        return "lif_curr_exp_no_delay"
    if any(pr.post == name and pr.kind == "conv2d" for pr in network.projections):
        return "lif_conv2d"
    return "lif_no_delay"

def state_bytes_per_neuron(budget: ChipBudget, model: str, membrane_bits: int = 32) -> int:
    """A neuron's state on its PE: the firmware's 32-bit words, with the membrane (and a
    CubaLIF's synaptic current) packed into ``membrane_bits`` each."""
    words = 2 if model == "lif_curr_exp_no_delay" else 1
    return budget.neuron_state_bytes - 4 * words + words * math.ceil(membrane_bits / 8)


def _membrane_bits(profile: SemanticsProfile) -> int:
    return profile.membrane_bits if profile.arithmetic == "fixed" else 32


def fit_table(network: Network, ticks: Optional[int] = None, profile: Optional[SemanticsProfile] = None, *,
              record: Sequence[str] = ("spikes",), budget: Optional[ChipBudget] = None,
              max_atoms_per_core: Optional[Mapping[str, int]] = None,
              input_rasters: Optional[Mapping[str, np.ndarray]] = None) -> dict:
    """Memory per population under ``budget`` (default :class:`ChipBudget`).

    Returns ``{"rows": [...], "total_pes", "chips", "longest_run_ticks", "fits", "memory_bytes", ...}``.
    Each row: population, model, neurons, neurons_per_pe, pes, synapse_bytes,
    state_bytes, record_bytes_per_tick, free_bytes (per busiest PE), record_bytes
    (for ``ticks``, per busiest PE; None without ticks), max_ticks (the longest
    recording that fits; 0 when synapses and state alone overflow the PE),
    total_bytes (synapses and state over all its PEs). An input population has no
    synapses or state; with ``input_rasters`` (its (T, N) or (B, T, N) spikes) its
    row gives the spike list of its busiest PE (record_bytes_per_tick from the
    average spikes per tick, input_spikes_busiest_pe, max_ticks), otherwise None.
    ``memory_bytes``: the sum of every row's total_bytes (the sweep's memory cost).
    """
    budget = budget or ChipBudget()
    profile = profile or SemanticsProfile.chip()
    record = set(record)
    atoms = dict(max_atoms_per_core or {})
    unknown = sorted(set(atoms) - set(network.populations))
    if unknown:
        raise FitError(f"--max-atoms names unknown populations {unknown}; populations: {list(network.populations)}")
    rows: List[dict] = []
    for name, pop in network.populations.items():
        model = chip_model_of(network, name)
        limit = int(atoms.get(name) or budget.max_neurons_per_pe.get(model, budget.default_neurons_per_pe))
        if pop.model == "input":
            n = min(limit, pop.size)
            row = dict(population=name, model=model, neurons=pop.size, neurons_per_pe=n, pes=math.ceil(pop.size / n))
            row.update(_input_row(pop, n, ticks, budget, (input_rasters or {}).get(name)))
        else:
            row = _neuron_row(network, name, _stored_synapses(network, name, profile, budget), limit, ticks, profile,
                              record, budget)
        rows.append(row)
    total_pes = sum(r["pes"] for r in rows)
    limits = [r["max_ticks"] for r in rows if r["max_ticks"] is not None]
    longest = min(limits) if limits else None
    fits = total_pes <= budget.pes_per_chip and (longest is None or ticks is None or ticks <= longest) and \
        all(r["free_bytes"] is None or r["free_bytes"] > 0 for r in rows)
    return dict(rows=rows, total_pes=int(total_pes), chips=int(math.ceil(total_pes / budget.pes_per_chip)),
                longest_run_ticks=longest, ticks=ticks, record=sorted(record), fits=bool(fits),
                memory_bytes=int(sum(r["total_bytes"] for r in rows)),
                usable_bytes_per_pe=budget.usable_bytes, pes_per_chip=budget.pes_per_chip)


def _stored_synapses(network: Network, name: str, profile: SemanticsProfile, budget: ChipBudget) -> list:
    """Per projection into population ``name``: a conv kernel's bytes (one int, stored once per PE),
    or the bytes each post neuron stores of a dense or sparse projection (an array)."""
    pop = network.populations[name]
    out = []
    for pr in network.projections:
        if pr.post != name:
            continue
        q = round_weights(pr.weight, profile.weight_rounding)  # only zero / non-zero matters here
        if pr.kind == "conv2d":
            out.append(int(q.size))
            continue
        if pr.kind == "sparse":  # non-zero synapses per post neuron
            nonzero = np.bincount(pr.connections[:, 1], weights=q != 0, minlength=pop.size)
        else:
            nonzero = (q != 0).reshape(pop.size, -1).sum(axis=1)
        out.append(nonzero.astype(np.int64) * pr.pool ** 2 * budget.synapse_bytes)
    return out


def _neuron_row(network: Network, name: str, stored: list, limit: int, ticks: Optional[int],
                profile: SemanticsProfile, record, budget: ChipBudget) -> dict:
    """The row of neuron population ``name`` placed ``limit`` neurons per PE (:func:`fit_table`);
    ``stored``: its :func:`_stored_synapses`."""
    pop = network.populations[name]
    model = chip_model_of(network, name)
    n = min(limit, pop.size)
    pes = math.ceil(pop.size / n)
    busiest = total = 0
    for per in stored:
        if isinstance(per, int):
            busiest += per
            total += per * pes
        else:
            busiest += int(np.add.reduceat(per, np.arange(0, pop.size, n)).max())
            total += int(per.sum())
    per_neuron = state_bytes_per_neuron(budget, model, _membrane_bits(profile))
    state = n * per_neuron
    per_tick = math.ceil(n / 32) * 4 + (budget.voltage_bytes * n if "v" in record else 0)
    free = budget.usable_bytes - state - busiest
    return dict(population=name, model=model, neurons=pop.size, neurons_per_pe=n, pes=pes,
                synapse_bytes=int(busiest), state_bytes=int(state), record_bytes_per_tick=int(per_tick),
                free_bytes=int(free), record_bytes=None if ticks is None else int(per_tick * ticks),
                max_ticks=int(max(free, 0) // per_tick), total_bytes=int(total + pop.size * per_neuron))


def _row_fits(row: dict, ticks: Optional[int]) -> bool:
    return row["free_bytes"] > 0 and (ticks is None or row["max_ticks"] >= ticks)


def fitting_atoms(network: Network, name: str, ticks: Optional[int] = None,
                  profile: Optional[SemanticsProfile] = None, *, record: Sequence[str] = ("spikes",),
                  budget: Optional[ChipBudget] = None, start: Optional[int] = None) -> Optional[int]:
    """The neurons per PE (``--max-atoms name=N``) that make neuron population ``name`` fit its PEs,
    synapses and state with a recording of ``ticks`` ticks (None: synapses and state alone): of the
    fewest PEs that fit, the population split evenly over them (so the PEs keep the most room
    for the recording). None when not even one neuron per PE fits. ``start``: the neurons per PE
    to begin from (the row's current; default the model's limit)."""
    budget = budget or ChipBudget()
    profile = profile or SemanticsProfile.chip()
    pop = network.populations[name]
    stored = _stored_synapses(network, name, profile, budget)
    limit = start or budget.max_neurons_per_pe.get(chip_model_of(network, name), budget.default_neurons_per_pe)
    tried = set()
    for k in range(min(limit, pop.size), 0, -1):
        n = math.ceil(pop.size / math.ceil(pop.size / k))  # as many PEs as k per PE takes, filled evenly
        if n not in tried:
            tried.add(n)
            if _row_fits(_neuron_row(network, name, stored, n, ticks, profile, set(record), budget), ticks):
                return n
    return None


def suggest_split(network: Network, table: dict, profile: Optional[SemanticsProfile] = None, *,
                  budget: Optional[ChipBudget] = None,
                  max_atoms_per_core: Optional[Mapping[str, int]] = None) -> Optional[dict]:
    """When ``table`` (:func:`fit_table` of ``network``) does not fit: the ``--max-atoms`` of every
    neuron population that does not (:func:`fitting_atoms`), with the table they give
    (``max_atoms``, ``fits``, ``longest_run_ticks``, ``total_pes``, ``chips``, ``unfittable``: the
    populations not even one neuron per PE fits). None when the table fits."""
    if table["fits"]:
        return None
    ticks, record = table["ticks"], table["record"]
    atoms, unfittable = dict(max_atoms_per_core or {}), []
    for row in table["rows"]:
        if row["free_bytes"] is None or _row_fits(row, ticks):
            continue
        n = fitting_atoms(network, row["population"], ticks, profile, record=record, budget=budget,
                          start=row["neurons_per_pe"])
        if n is None:
            unfittable.append(row["population"])
        else:
            atoms[row["population"]] = n
    after = fit_table(network, ticks, profile, record=record, budget=budget, max_atoms_per_core=atoms)
    return dict(max_atoms=atoms, fits=after["fits"], longest_run_ticks=after["longest_run_ticks"],
                total_pes=after["total_pes"], chips=after["chips"], unfittable=unfittable)


def _input_row(pop, n: int, ticks: Optional[int], budget: ChipBudget, raster) -> dict:
    """A spike_list source's busiest PE: one word per spike plus one per tick."""
    row = dict(synapse_bytes=0, state_bytes=0, record_bytes_per_tick=None, free_bytes=None, record_bytes=None,
               max_ticks=None, total_bytes=0, input_spikes_busiest_pe=None)
    if raster is None:
        return row
    raster = np.asarray(raster)
    raster = raster.reshape(-1, raster.shape[-2], pop.size) if raster.ndim == 3 else raster.reshape(1, -1, pop.size)
    per_pe = np.add.reduceat(raster.sum(axis=1), np.arange(0, pop.size, n), axis=1)  # (samples, PEs)
    worst = int(per_pe.max()) if per_pe.size else 0
    run_ticks = raster.shape[1]
    per_tick = 4 * worst / max(run_ticks, 1) + 4
    row.update(record_bytes_per_tick=round(per_tick, 2), input_spikes_busiest_pe=worst,
               max_ticks=int(budget.usable_bytes // per_tick),
               record_bytes=None if ticks is None else int(4 * worst * ticks / max(run_ticks, 1) + 4 * ticks))
    return row


def format_fit_table(table: dict) -> str:
    """The table as text, one line per population, then the totals and the verdict."""
    cols = [("population", "population"), ("model", "model"), ("neurons", "neurons"), ("per PE", "neurons_per_pe"),
            ("PEs", "pes"), ("synapses B", "synapse_bytes"), ("state B", "state_bytes"),
            ("rec B/tick", "record_bytes_per_tick"), ("rec B", "record_bytes"), ("free B", "free_bytes"),
            ("max ticks", "max_ticks")]
    cells = [[h for h, _ in cols]] + [["-" if r[k] is None else str(r[k]) for _, k in cols] for r in table["rows"]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    lines = ["  ".join(c[i].rjust(widths[i]) for i in range(len(cols))) for c in cells]
    lines.append(f"PEs needed: {table['total_pes']} ({table['pes_per_chip']} per chip) -> chips needed: {table['chips']}; "
                 f"memory (synapses + state, all PEs): {table['memory_bytes']} B")
    lr = table["longest_run_ticks"]
    lines.append(f"longest run whose recording ({','.join(table['record'])}) fits: "
                 f"{'-' if lr is None else lr} ticks (per-PE figures are for the busiest PE; "
                 f"{table['usable_bytes_per_pe']} B usable per PE; emu.chip.budget estimates)")
    if table["ticks"] is not None:
        lines.append(f"{table['ticks']} ticks: {'fits' if table['fits'] else 'does NOT fit'}")
    split = table.get("suggested_split")
    if split and split["max_atoms"]:
        flags = " ".join(f"--max-atoms {k}={v}" for k, v in split["max_atoms"].items())
        lr = split["longest_run_ticks"]
        lines.append(f"split that fits: {flags} ({split['total_pes']} PEs, {split['chips']} chip(s); the longest "
                     f"recording then fits {'-' if lr is None else format(lr, ',')} ticks)"
                     if split["fits"] else f"closest split: {flags}; it still does NOT fit")
    if split and split["unfittable"]:
        lines.append(f"not even one neuron per PE fits: {', '.join(split['unfittable'])}")
    return "\n".join(lines)


def _kb(n) -> str:
    return f"{n / 1024:.1f} kB"


def fit_warnings(network: Network, ticks: int, profile: Optional[SemanticsProfile] = None, *,
                 record: Sequence[str] = ("spikes",), budget: Optional[ChipBudget] = None,
                 max_atoms_per_core: Optional[Mapping[str, int]] = None,
                 input_rasters: Optional[Mapping[str, np.ndarray]] = None) -> List[str]:
    """Warnings about a run of ``ticks`` ticks that will probably not fit a SpiNNaker2 chip.

    Checks, with the memory model of :class:`ChipBudget`: populations split over
    several PEs (how many), more PEs than a chip has, synapses + state that
    overflow one PE, recordings (``record``: spikes, and v when listed) longer
    than what fits beside them (how many ticks fit), input spike lists that do
    not fit (when ``input_rasters`` are given), and weights outside the integer
    range of the neuron model (``profile.weight_bits``; default int8
    [-127, 127] of ``lif_no_delay`` / ``lif_conv2d``, 4 bits [-15, 15] for the
    ``lif`` model with delays) or that mostly become 0. An empty list: nothing
    to warn about.
    """
    budget = budget or ChipBudget()
    profile = profile or SemanticsProfile.chip()
    record = set(record)
    table = fit_table(network, ticks, profile, record=record, budget=budget, max_atoms_per_core=max_atoms_per_core,
                      input_rasters=input_rasters)
    rows = {r["population"]: r for r in table["rows"]}
    out: List[str] = []
    for name, r in rows.items():
        if r["pes"] > 1:  # then neurons_per_pe is the per-PE limit
            out.append(f"population {name!r} ({r['neurons']} neurons, {r['model']}) is larger than "
                       f"{r['neurons_per_pe']} neurons per PE: it is split over {r['pes']} PEs")
    if table["total_pes"] > budget.pes_per_chip:
        out.append(f"the network needs about {table['total_pes']} PEs, but a SpiNNaker2 chip has "
                   f"{budget.pes_per_chip}")

    out += weight_warnings(network, profile)

    # memory per PE (fit_table) ------------------------------------------------------------
    for name, pop in network.populations.items():
        r = rows[name]
        model, n = r["model"], r["neurons_per_pe"]
        if pop.model == "input":
            need = r["record_bytes"]
            if need is not None and need > budget.usable_bytes:
                out.append(f"input population {name!r}: its spike list needs about {_kb(need)} on one PE "
                           f"({r['input_spikes_busiest_pe']} spikes on its busiest PE of {n} neurons over {ticks} "
                           f"ticks), more than the {_kb(budget.usable_bytes)} there: fewer ticks or fewer input "
                           f"neurons per PE")
            continue
        syn, state, free, per_tick = r["synapse_bytes"], r["state_bytes"], r["free_bytes"], r["record_bytes_per_tick"]
        what = "spikes and voltages" if "v" in record else "spikes"
        if _row_fits(r, int(ticks)):
            continue
        fit_n = fitting_atoms(network, name, int(ticks), profile, record=record, budget=budget, start=n)
        hint = (f"about {fit_n} neurons per PE would fit (set_max_atoms_per_core / --max-atoms {name}={fit_n}, "
                f"{math.ceil(pop.size / fit_n)} PEs)" if fit_n is not None else
                "not even one neuron per PE holds that recording")
        if free <= 0:
            out.append(f"population {name!r} ({model}): synapses ({_kb(syn)}) and neuron state ({_kb(state)}) of its "
                       f"{n} neurons per PE exceed the {_kb(budget.usable_bytes)} a PE has for them; {hint}")
            continue
        fit = r["max_ticks"]
        if int(ticks) > fit:
            out.append(f"population {name!r} ({model}): recording {what} for {ticks} ticks needs "
                       f"{_kb(per_tick * int(ticks))} per PE ({n} neurons), but only about {_kb(free)} are left beside "
                       f"synapses and state: about {fit} ticks fit (the SpiNNaker2 DVS-gesture work could record "
                       f"only about 600 ticks on chip for this reason); record fewer ticks"
                       f"{' or no voltages' if 'v' in record else ''}, or {hint}")
    return out


def weight_warnings(network: Network, profile: SemanticsProfile) -> List[str]:
    """Projections whose weights fall outside the integer range of their chip model
    (``profile.weight_bits``; default int8 of ``lif_no_delay`` / ``lif_conv2d``, 4 bits
    + sign for ``lif``) or mostly become 0 (:func:`emu.numerics.zeroed_weight_notes`)."""
    out = []
    for pr in network.projections:
        model = chip_model_of(network, pr.post)
        wmax = profile.weight_max if profile.weight_bits is not None else (15 if model == "lif" else 127)
        kind = {127: f"int8 weights of {model}", 15: "4-bit magnitude + sign weights of the lif model with delays"
                }.get(wmax, f"{weight_bits(wmax)}-bit weights")
        w = pr.weight
        q = round_weights(w, profile.weight_rounding)
        over = int((np.abs(q) > wmax).sum())
        if over:
            out.append(f"projection {pr.label}: {over} of {w.size} weights are outside [-{wmax}, {wmax}] "
                       f"({kind}) after scaling (largest |w| = {float(np.abs(w).max()):.6g}); the chip converter's "
                       f"integer cast would wrap them: use --auto-scale or a smaller --scale")
    # zeroed weights: the one rule (a profile without integer weights asks about the chip's int8)
    return out + zeroed_weight_notes(network, profile if profile.weight_bits is not None else
                                     profile.with_(weight_bits=8))
