"""The options :func:`validate.calibration.calibrate` may search, and which populations each can
change.

:data:`OPTIONS` lists every semantic or conversion option whose value on the board is not
proven by data for every network (``docs/semantics.md`` gives each one's status), with
an input that would exercise it. :func:`relevant` says whether an option can change one
population; :func:`reaching` gives the populations whose dynamics reach a recorded one
(itself and every population with a path of projections into it), so an option of an
unrecorded hidden layer counts wherever that layer's spikes arrive.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Set, Tuple

import numpy as np

from emu.network import Network


@dataclass(frozen=True)
class Option:
    """One option calibrate may search: its flag (a resolve/command-line name), its values
    (the current default first), its status, and an input that would exercise it."""

    flag: str
    values: Tuple[Any, ...]
    status: str
    exercise: str
    proven: bool = False


OPTIONS: Tuple[Option, ...] = (
    Option("synaptic_latency", (1, 0, 2), "proven by data",
           "any spike through a connection shows it", proven=True),
    Option("reset_timing", ("same_tick", "next_tick"), "proven by data",
           "a neuron that spikes, with voltages recorded", proven=True),
    Option("conn_delay", (1, 0), "from the converter's source",
           "any spike through a connection shows it (with synaptic_latency, only their sum for feed-forward paths)"),
    Option("integrator", ("exponential", "forward"), "from the converter's source",
           "a neuron that integrates for several ticks, with voltages recorded"),
    Option("reset", ("subtract", "zero"), "from the converter's source",
           "a drive that lifts a neuron clearly above its threshold in one tick, so that v - threshold > 0 "
           "after the spike"),
    Option("arithmetic", ("chip", "brian2", "float64"), "chip float32 from the hardware description; brian2 "
           "proven by data for py-spinnaker2's reference backend",
           "voltages (--record spikes,v) of a model whose thresholds and weights are not float32 numbers: "
           "float32 and float64 state differ by about 1e-7 of the threshold, brian2 (every parameter rounded to "
           "float32) and float64 only where a parameter rounds"),
    Option("decay_storage", ("arithmetic", "float32"), "open",
           "voltages of a neuron decaying over many ticks, under float64 state"),
    Option("spike_condition", (">", ">="), "open",
           "an input that puts a membrane exactly on its threshold: integer weights in chip units that sum to "
           "an integer threshold in one tick (e.g. threshold 10, two spikes of weight 5)"),
    Option("weight_rounding", ("truncate", "nearest", "nearest_even"), "open for dense weights (conv: truncate, "
           "from the converter's source)",
           "weights whose scaled values end in .5 and in .7 (e.g. --scale so that w x scale = 2.5 and 3.7)"),
    Option("bias_path", ("membrane", "synaptic"), "from the converter's source (membrane); NIR says synaptic",
           "a CubaLIF population with a bias, voltages recorded from tick 0"),
    Option("cuba_current", ("this_tick", "last_tick"), "open",
           "one input spike into a CubaLIF neuron: the tick its membrane first moves tells"),
)
OPTION = {o.flag: o for o in OPTIONS}


def relevant(option: Option, network: Network, pop: str) -> bool:
    """Whether ``option`` can change population ``pop`` of ``network``."""
    p = network.populations[pop]
    if option.flag in ("bias_path",):
        return p.model == "cuba_lif" and bool(np.any(p.syn_bias != 0))
    if option.flag == "cuba_current":
        return p.model == "cuba_lif"
    if option.flag in ("reset", "reset_timing", "spike_condition"):
        return p.model not in ("input", "li")
    if option.flag == "weight_rounding":
        return any(pr.post == pop and not np.array_equal(np.asarray(pr.weight), np.trunc(pr.weight))
                   for pr in network.projections)
    return True


def reaching(network: Network, pop: str) -> Set[str]:
    """``pop`` and every neuron population with a path of projections into it (not inputs)."""
    into: Dict[str, List[str]] = {}
    for pr in network.projections:
        into.setdefault(pr.post, []).append(pr.pre)
    seen, todo = {pop}, [pop]
    while todo:
        for pre in into.get(todo.pop(), []):
            if pre not in seen:
                seen.add(pre)
                todo.append(pre)
    return {n for n in seen if network.populations[n].model != "input"}


def populations_changed(option: Option, network: Network, pops: Sequence[str]) -> List[str]:
    """The populations of ``pops`` (all neuron populations when empty) that ``option`` can change."""
    names = list(pops) or [n for n, p in network.populations.items() if p.model != "input"]
    return [n for n in names if relevant(option, network, n)]
