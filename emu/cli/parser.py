"""Every ``s2emu`` subcommand's arguments, and nothing else: building the parser imports no
engine, torch or NIR code, so ``s2emu --help`` and each subcommand's ``--help`` answer at once.

Each subcommand names its handler module (``emu.cli.<module>``, function ``main(args)``),
which :func:`emu.cli.main` imports only when that command runs.
"""
from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Sequence

PRESETS = ("chip", "brian2", "float64", "fixed", "snntorch")
ROUNDINGS = ("truncate", "nearest", "nearest_even")
FIXED_ROUNDINGS = ("truncate", "nearest", "stochastic")
SWEEP_METHODS = ("ptq", "qat")
CHIP_WEIGHTS = {"int8": 8, "4bit": 5}
"""--chip-weights: the weight bits (sign included) of each choice of chip model."""
RECORD_CHOICES = ("spikes", "spikes,v")
DVS_INPUTS = ("tonic's layout: a set's ROOT (its test split), a split, a userNN_LIGHTING folder or one LABEL.npy; "
              "300 ticks unless --ticks")


# --- argument types (one line errors from argparse, exit 2) ------------------------------------

def _number(text: str, kind, what: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None


def non_negative_int(text: str) -> int:
    value = _number(text, int, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_int(text: str) -> int:
    value = _number(text, int, "an integer")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _finite(text: str) -> float:
    value = _number(text, float, "a number")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def percentile(text: str) -> float:
    value = _finite(text)
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"must be a percentile in (0, 100], got {text}")
    return value


def atoms(text: str):
    """``POPULATION=N``: neurons per PE of a population."""
    name, sep, n = text.rpartition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected POPULATION=N, got {text!r}")
    return name, positive_int(n)


def int_list(text: str):
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def name_list(allowed: Sequence[str], what: str):
    """An argument type: a comma-separated list of names out of ``allowed``."""
    def parse(text):
        vals = [x.strip() for x in text.split(",") if x.strip()]
        bad = [v for v in vals if v not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {what} {bad}; choose from {list(allowed)}")
        return vals
    return parse


# --- shared groups ------------------------------------------------------------------------------

def add_conversion_args(p: argparse.ArgumentParser) -> None:
    """The chip converter's options (``docs/semantics.md``), shared by every command that converts NIR."""
    g = p.add_argument_group("conversion (py-spinnaker2 converter rules; unset: the graph's metadata, else the "
                             "converter's default)")
    g.add_argument("--dt", type=positive_float, help="tick length in seconds (default: the graph's metadata dt; "
                                                     "required when the graph has none)")
    scale = g.add_mutually_exclusive_group()
    scale.add_argument("--scale", type=positive_float, help="multiply weights, thresholds and biases by X")
    scale.add_argument("--auto-scale", action="store_true", help="per population: weight_max / max|W|")
    g.add_argument("--scale-percentile", type=percentile,
                   help="with --auto-scale: a percentile (0-100] of |W| instead of max")
    g.add_argument("--integrator", choices=("forward", "exponential"),
                   help="default: the graph's metadata, else exponential (the converter's)")
    g.add_argument("--conn-delay", type=non_negative_int,
                   help="extra delay of every connection (converter default 1; 0 for a graph with a Conv2d, the "
                        "only value the converter takes there)")
    g.add_argument("--allow-unsupported", action="store_true",
                   help="emulate graph shapes the chip converter rejects (not a chip prediction then)")


def add_profile_args(p: argparse.ArgumentParser, presets: bool = True) -> None:
    """The semantics profile's flags (``docs/semantics.md``); ``presets``: with ``--profile``
    (calibrate searches the arithmetic instead and takes ``--arithmetic``)."""
    g = p.add_argument_group("semantics profile (unset: a --profile-file, else the graph's metadata, else the "
                             "preset's)")
    if presets:
        g.add_argument("--profile", choices=PRESETS, default="chip")
        g.add_argument("--profile-file", type=Path, metavar="PROFILE.json",
                       help="a calibrated profile (s2emu calibrate --out): the board's semantics, under the flags")
    else:
        g.add_argument("--arithmetic", choices=("chip", "brian2", "float64"), help="fix the arithmetic")
    g.add_argument("--reset", choices=("zero", "subtract"),
                   help="default: the graph's metadata, else subtract (the converter's)")
    g.add_argument("--reset-timing", choices=("same_tick", "next_tick"),
                   help="the emulator profile's reset timing; with --backend snntorch, snnTorch's reset_delay "
                        "(next_tick: True; default: the graph's metadata, else True)")
    g.add_argument("--spike-condition", choices=(">", ">="), help="fire above the threshold, or at or above it")
    g.add_argument("--synaptic-latency", type=non_negative_int, help="ticks every connection adds (chip: 1)")
    g.add_argument("--cuba-current", choices=("this_tick", "last_tick"),
                   help="whether a CubaLIF membrane integrates this tick's synaptic current")
    g.add_argument("--bias-path", choices=("membrane", "synaptic"),
                   help="a CubaLIF bias: the converter's steady state on the membrane, or NIR's synaptic current")
    g.add_argument("--decay-storage", choices=("arithmetic", "float32"), help="how decays are stored")
    g.add_argument("--weight-bits", type=positive_int,
                   help="weight bits incl. sign (8: [-127,127]; 5: [-15,15], the 4-bit+sign lif model)")
    g.add_argument("--weight-rounding", choices=ROUNDINGS)
    g.add_argument("--saturate-weights", action="store_true", help="clip out-of-range weights instead of failing")
    g.add_argument("--membrane-bits", type=positive_int, help="fixed profile: membrane word bits")
    g.add_argument("--frac-bits", type=non_negative_int, help="fixed profile: membrane fraction bits")
    g.add_argument("--rounding", choices=FIXED_ROUNDINGS, help="fixed profile: product rounding")
    g.add_argument("--seed", type=int, help="seed of stochastic rounding")


def add_scheduler_arg(p: argparse.ArgumentParser, what: str) -> None:
    """``--scheduler ADDRESS``: run the command's ``what`` on an existing dask.distributed cluster."""
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help=f"dask.distributed scheduler address (e.g. tcp://host:8786): run {what} on that cluster; "
                        f"the numbers are a local run's (optional extra [sweep])")


def _command(sub, name: str, module: str, **kw) -> argparse.ArgumentParser:
    p = sub.add_parser(name, **kw)
    p.set_defaults(handler_module=module)
    return p


# --- the subcommands ---------------------------------------------------------------------------

def _run(sub) -> None:
    p = _command(sub, "run", "run", help="emulate a NIR model on input spikes, write spikes/voltages",
                 description="Emulate MODEL.nir as SpiNNaker2 would run it.")
    p.set_defaults(handler_by_backend={"snntorch": "run_float"})
    p.add_argument("model", type=Path, help="NIR file")
    p.add_argument("--input", required=True, type=Path, help="spike JSON, raster .npy/.npz or events (x,y,p,t)")
    p.add_argument("--ticks", type=positive_int, help="ticks to run (default: input length)")
    p.add_argument("--record", default="spikes", help="spikes,v")
    p.add_argument("--out", required=True, type=Path, help="OUT.json (one sample) or OUT.npz (the batch)")
    p.add_argument("--backend", choices=("emulator", "snntorch", "brian2", "chip"), default="emulator",
                   help="emulator (default); snntorch: the float reference, the NIR graph as snnTorch runs it "
                        "(voltages in NIR units); or py-spinnaker2's brian2 backend / a board (extra [chip])")
    p.add_argument("--eth-ip", help="with --backend chip: the board's IP address")
    p.add_argument("--sensitivity", action="store_true",
                   help="also rerun with every other value of each open option (docs/semantics.md) and say which "
                        "would change these spikes: whether this result depends on what calibration settles")
    add_conversion_args(p)
    add_profile_args(p)


def _compare(sub) -> None:
    p = _command(sub, "compare", "compare", help="compare two spike recordings spike by spike",
                 description="Compare spike recordings A and B (.json, .npz, .npy raster, .pkl): spike counts, "
                             "coincidences by lag (lag L pairs A at tick t with B at t - L), best lag, distances, "
                             "first divergence per neuron. Writes a JSON summary and optionally an HTML report "
                             "(with its JSON beside it).")
    p.add_argument("a", type=Path, help="recording A (e.g. the chip or the emulator)")
    p.add_argument("b", type=Path, help="recording B (e.g. the float reference)")
    p.add_argument("--max-lag", type=non_negative_int, default=5, metavar="K", help="search lags -K..K (5)")
    p.add_argument("--window", type=non_negative_int, default=1, metavar="W", help="coincidence window +-W ticks (1)")
    p.add_argument("--tau", type=positive_float, default=5.0, help="van Rossum time constant in ticks (5)")
    p.add_argument("--q", type=non_negative_float, default=0.5, help="Victor-Purpura cost per tick of shift (0.5)")
    p.add_argument("--population", dest="populations", action="extend", nargs="+", metavar="NAME",
                   help="compare only these populations (default: all with the same name in A and B)")
    p.add_argument("--out", type=Path, required=True, metavar="SUMMARY.json", help="where to write the summary")
    p.add_argument("--report", type=Path, metavar="REPORT.html", help="also write an HTML report (and REPORT.json)")


def _validate(sub) -> None:
    p = _command(sub, "validate", "validate",
                 help="emulate a NIR model and compare it spike by spike with a chip recording / snnTorch",
                 description="Emulate MODEL.nir with the chip profile on one input sample and compare it with a "
                             "chip recording (--chip) and/or the snnTorch float reference (--snntorch, implied "
                             "without --chip): rasters, mismatches per population, divergence heat maps and where "
                             "the runs first differ. With --inputs: every sample of a folder against the float "
                             "reference, one by one, and pooled (mismatching cells per population, each sample's "
                             "first divergence, how many are identical).")
    p.add_argument("model", type=Path, help="NIR file")
    one = p.add_mutually_exclusive_group(required=True)
    one.add_argument("--input", type=Path, help="input spikes: JSON spike dict, raster .npy/.npz, events")
    one.add_argument("--inputs", type=Path, metavar="DIR_OR_FILE",
                     help="many samples: a folder of input files (.json, .npy, .npz; sorted by name), a batch file, "
                          "or DVS Gesture event files as the demo reads them (" + DVS_INPUTS + "); each sample "
                          "validated alone against the float reference, then pooled")
    p.add_argument("--chip", type=Path, metavar="RECORDING", help="chip recording (.json, .npz, .npy, .pkl)")
    p.add_argument("--snntorch", action="store_true", help="also run the snnTorch float reference")
    p.add_argument("--report", required=True, type=Path, metavar="REPORT.html", help="HTML report (+ JSON beside it)")
    p.add_argument("--out", type=Path, metavar="SUMMARY.json", help="also write the full summary as JSON")
    p.add_argument("--ticks", type=positive_int, help="ticks to run (default: input length)")
    p.add_argument("--sample", type=non_negative_int, help="which sample of a batch --input to validate (0)")
    p.add_argument("--population", dest="populations", action="extend", nargs="+", metavar="NAME",
                   help="compare with the chip recording only these populations")
    p.add_argument("--max-lag", type=non_negative_int, default=3, help="lags searched around the expected one (3)")
    add_scheduler_arg(p, "the samples of --inputs")
    add_conversion_args(p)
    add_profile_args(p)


def _calibrate(sub) -> None:
    p = _command(sub, "calibrate", "calibrate",
                 help="find the semantics a board follows from one of its recordings",
                 description="Run MODEL.nir on the recorded input under every combination of the options that are "
                             "not proven by data (and not fixed by a flag here), layer by layer, and compare with "
                             "the board's recording spike by spike (and by voltage where recorded). Writes the "
                             "profile that reproduces it (a --profile-file for the other commands, carrying the "
                             "conversion it was found under: dt, weight scale or percentile, connection delay, "
                             "integrator, reset), which options the data pins and which it leaves undetermined, "
                             "with an input that would settle them. Options of layers that are not recorded are "
                             "searched wherever their spikes reach a recorded one. Exit status: 0 when a profile "
                             "reproduces the recording; 4 when none does (the closest is written, marked "
                             "\"exact\": false, and every command given it warns); 2 on an error.")
    p.add_argument("model", type=Path, help="NIR file")
    p.add_argument("--input", required=True, type=Path, help="the input that ran on the board")
    p.add_argument("--chip", required=True, type=Path, metavar="RECORDING",
                   help="the board's recording (.json, .npz, .npy with --population, .pkl)")
    p.add_argument("--out", required=True, type=Path, metavar="PROFILE.json", help="the calibrated profile")
    p.add_argument("--report", type=Path, metavar="REPORT.html", help="HTML report (+ JSON beside it)")
    p.add_argument("--ticks", type=positive_int, help="ticks compared (default: the recording's)")
    p.add_argument("--sample", type=non_negative_int, default=0, help="which sample of a batch input ran (0)")
    p.add_argument("--population", help="the population a bare (T, N) raster recording belongs to")
    add_conversion_args(p)
    add_profile_args(p, presets=False)


def _attribute(sub) -> None:
    q = _command(sub, "attribute", "attribute",
                 help="waterfall: which semantic factor costs how much spike agreement and accuracy",
                 description="Switch the factors between snnTorch float semantics and the chip (latency, reset "
                             "timing, reset mode, weight quantization, float32 arithmetic, optionally fixed point) "
                             "one at a time over many samples; report each factor's share of the spike mismatch "
                             "and of the accuracy drop.")
    q.add_argument("model", type=Path, help="NIR file")
    q.add_argument("--inputs", required=True, type=Path, metavar="DIR_OR_FILE",
                   help="an input file (one sample or a batch) or a folder of them (.json, .npy, .npz; sorted by "
                        "name), or DVS Gesture event files as the demo reads them (" + DVS_INPUTS + ")")
    q.add_argument("--labels", type=Path, metavar="FILE",
                   help="class labels, one per sample in order (.npy, .json list, or text/CSV of integers); "
                        "DVS Gesture event files: their names (LABEL.npy) unless given")
    q.add_argument("--report", required=True, type=Path, metavar="REPORT.html", help="HTML report (+ JSON beside it)")
    q.add_argument("--out", type=Path, metavar="SUMMARY.json", help="also write the full attribution as JSON")
    q.add_argument("--ticks", type=positive_int, help="ticks per sample (default: each input's length)")
    q.add_argument("--output-population", metavar="NAME", help="population whose spike counts classify (default: last)")
    q.add_argument("--float-reset", choices=("zero", "subtract"),
                   help="reset of the snnTorch model (default: the chip's --reset)")
    q.add_argument("--fixed", action="store_true", help="add a fixed-point membrane as a last factor")
    q.add_argument("--alone", action="store_true",
                   help="kept for old scripts: every factor alone is always run now (part of the Shapley values)")
    q.add_argument("--no-pad", action="store_true",
                   help="run latency-shifted configurations for the input length only (cut the late response)")
    q.add_argument("--chunk", type=positive_int, default=64, metavar="N",
                   help="samples per batch (64): the unit of work of a --scheduler worker; the float reference "
                        "runs these batches, so compare runs made with the same N")
    add_scheduler_arg(q, "the batches of samples")
    add_conversion_args(q)
    add_profile_args(q)


def _chip_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="NIR file")
    p.add_argument("--input", required=True, type=Path, help="spike JSON, raster .npy/.npz or events (x,y,p,t)")
    p.add_argument("--ticks", required=True, type=positive_int, help="ticks to run on the chip")
    p.add_argument("--record", choices=RECORD_CHOICES, default="spikes",
                   help="spikes, or spikes,v (voltages cost 4 bytes per neuron per tick of PE memory)")
    p.add_argument("--reset", choices=("subtract", "zero"),
                   help="ConversionConfig.reset: ResetMethod.SUBTRACT or ZERO (default: the graph's metadata, "
                        "else subtract)")
    p.add_argument("--sample", type=non_negative_int, default=0, help="which sample of a batched input to run (0)")
    p.add_argument("--max-atoms", type=atoms, action="append", default=[], metavar="POP=N",
                   help="neurons per PE of a population (py-spinnaker2 set_max_atoms_per_core); repeatable")
    p.add_argument("--chip-weights", choices=tuple(CHIP_WEIGHTS), default="int8",
                   help="integer weights of the chip model: int8 [-127, 127] (lif_no_delay, lif_conv2d; default) "
                        "or 4bit [-15, 15] (lif with delays); --auto-scale aims at that range")
    p.add_argument("--profile-file", type=Path, metavar="PROFILE.json",
                   help="the calibrated profile the emulator side uses: its conversion options apply, its hash "
                        "goes into the manifest (the board's semantics cannot be chosen)")
    add_conversion_args(p)


def _chip(sub) -> None:
    p = _command(sub, "chip-script", "chip", help="write a script that runs MODEL on a SpiNNaker2 board with these options",
                 description="Write a self-contained script (model, input spikes, options and tick count embedded) "
                             "for the host attached to a SpiNNaker2 board. It runs py-spinnaker2 and saves "
                             "spikes/voltages with a manifest that s2emu validate --chip checks. Fit warnings go to "
                             "stderr.")
    _chip_args(p)
    p.add_argument("--sys-tick-in-s", type=positive_float,
                   help="wall-clock tick length baked into the script (py-spinnaker2's default when not given)")
    p.add_argument("--out", required=True, type=Path, help="the script to write (run_on_chip.py)")
    q = _command(sub, "chip-run", "chip",
                 help="run MODEL with py-spinnaker2 here (brian2 backend or a board), save with a manifest",
                 description="Run MODEL.nir through py-spinnaker2 in this process and save the recording with a "
                             "manifest (the same host code and manifest as a chip-script script). Needs "
                             "py-spinnaker2, which is not on PyPI: git clone -b py-spinnaker2_nir "
                             "https://gitlab.com/spinnaker2/py-spinnaker2.git && pip install -e py-spinnaker2 (the "
                             "brian2 backend also needs brian2). Exits 2 when it is missing.")
    _chip_args(q)
    q.add_argument("--backend", choices=("brian2", "chip"), default="brian2",
                   help="py-spinnaker2's brian2 simulation (default) or the chip (needs --eth-ip)")
    q.add_argument("--eth-ip", help="IP address of the SpiNNaker2 board")
    q.add_argument("--out", required=True, type=Path, help="OUT.json")


def _fit(sub) -> None:
    f = _command(sub, "fit", "fit", help="per-population chip memory: synapses, state, recording, PEs, chips, max ticks",
                 description="Memory of MODEL on SpiNNaker2 PEs (the model of emu.chip.budget): bytes of synapse "
                             "rows, neuron state and recording per population, PEs and chips needed, and the "
                             "longest run whose recording fits. When it does not fit: the --max-atoms split that "
                             "does (each population that overflows spread evenly over the fewest PEs that hold it "
                             "and the recording) and what that split gives. Exit status 3 when the model does not "
                             "fit as asked.")
    f.add_argument("model", type=Path, help="NIR file")
    f.add_argument("--ticks", type=positive_int, help="ticks to run (recording bytes and whether it fits)")
    f.add_argument("--record", default="spikes", help="spikes or spikes,v")
    f.add_argument("--weight-bits", type=positive_int, help="weight bits incl. sign (default 8)")
    f.add_argument("--max-atoms", type=atoms, action="append", default=[], metavar="POP=N",
                   help="neurons per PE of a population; repeatable")
    f.add_argument("--json", action="store_true", help="print the table as JSON")
    f.add_argument("--profile-file", type=Path, metavar="PROFILE.json",
                   help="a calibrated profile (s2emu calibrate --out): its conversion and weight rounding, under "
                        "the flags")
    add_conversion_args(f)


def _sweep(sub) -> None:
    s = _command(sub, "sweep", "sweep",
                 help="precision grid (method x weight bits x membrane bits x rounding) on the emulator",
                 description="Evaluate a precision grid (method x weight bits x membrane bits x rounding) of a float "
                             "NIR model on the emulator: accuracy, spike mismatch, memory, Pareto front.")
    s.add_argument("model", type=Path, help="float NIR file")
    d = s.add_mutually_exclusive_group()
    d.add_argument("--data", help="DVSGesture root (its test split) or an .npz with inputs (B,T,...) and labels")
    d.add_argument("--synthetic", type=positive_int, help="N synthetic DVS-gesture test samples")
    s.add_argument("--ticks", type=positive_int, help="ticks per sample (default: input length; 300 for gesture data)")
    s.add_argument("--weight-bits", type=int_list, default=[8, 6, 4])
    s.add_argument("--membrane-bits", type=int_list, default=[16, 24, 32])
    s.add_argument("--rounding", type=name_list(FIXED_ROUNDINGS, "rounding"), default=list(FIXED_ROUNDINGS))
    s.add_argument("--method", type=name_list(SWEEP_METHODS, "method"), default=["ptq"],
                   help="ptq (post-training scale) and/or qat (fine-tuned with chip weights), e.g. ptq,qat")
    t = s.add_mutually_exclusive_group()
    t.add_argument("--train-data", help="qat: DVSGesture root whose training split fine-tunes the model")
    t.add_argument("--train-synthetic", type=positive_int, metavar="N",
                   help="qat: fine-tune on N synthetic training samples")
    s.add_argument("--qat-epochs", type=non_negative_int, default=2, help="qat: fine-tuning epochs per weight-bit count")
    s.add_argument("--qat-lr", type=positive_float, default=1e-3, help="qat: Adam learning rate of the fine-tuning")
    s.add_argument("--frac-bits", type=non_negative_int, help="membrane fraction bits (default: from the largest "
                                                              "threshold)")
    s.add_argument("--output", help="output population (default: the last one)")
    s.add_argument("--seed", type=int, help="seed of stochastic rounding")
    s.add_argument("--tolerance", type=non_negative_float, default=0.01,
                   help="accuracy tolerance of the chosen point (0.01)")
    s.add_argument("--workers", type=non_negative_int, default=2, help="local worker processes (0: in this process)")
    add_scheduler_arg(s, "the grid points (instead of --workers)")
    s.add_argument("--out", required=True, type=Path, help="RESULTS.jsonl (appended; existing points skipped)")
    s.add_argument("--report", type=Path, help="REPORT.html")
    s.add_argument("--profile-file", type=Path, metavar="PROFILE.json",
                   help="a calibrated profile (s2emu calibrate): the base every grid point varies")
    add_conversion_args(s)


def _train(sub) -> None:
    p = _command(sub, "train", "train", help="train the DVS-gesture paper network in snnTorch (CPU, resumable)",
                 description="Train the paper network on ROOT/DVSGesture (real or synthetic).")
    p.add_argument("--root", required=True, help="folder holding DVSGesture/ibmGesture{Train,Test}")
    p.add_argument("--synthetic", type=positive_int, metavar="N",
                   help="first write a synthetic set with N samples per class for training "
                        "(N // 4 + 1 for testing) into ROOT, unless ROOT/DVSGesture exists")
    p.add_argument("--epochs", type=non_negative_int, default=10)
    p.add_argument("--ticks", type=positive_int, default=300,
                   help="time steps per sample (the paper recorded 600 on chip; s2emu fit says what fits)")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--lr", type=positive_float, default=2e-3)
    p.add_argument("--loss", choices=("ce_count", "ce_rate", "mse_count"), default="mse_count")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", help="checkpoint file (resumed when it exists)")
    p.add_argument("--no-resume", action="store_true", help="start afresh even if the checkpoint exists")
    p.add_argument("--resume-anyway", action="store_true",
                   help="resume a checkpoint made with other settings (ticks, learning rate, data, ...; more --epochs "
                        "always resume) under these")
    p.add_argument("--nir", help="write the trained network to this NIR file")
    p.add_argument("--threads", type=positive_int, default=2, help="torch threads (1 on a busy machine)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--qat-bits", type=positive_int, metavar="B",
                   help="quantization-aware training with B-bit chip weights (emu.apps.gesture.qat); --nir then "
                        "writes the chip-ready graph (integer weights, scaled thresholds) and its scales")
    p.add_argument("--qat-percentile", type=percentile, help="with --qat-bits: scale from this percentile of |W|")


def shape(text: str):
    """``1,2,32,32``: a tensor shape of positive integers."""
    dims = int_list(text)
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return tuple(dims)


def _export(sub) -> None:
    p = _command(sub, "export", "export", help="your snnTorch model to NIR (dt, integrator, reset in its metadata)",
                 description="Build the model MODULE.py:NAME names (a class or function called without arguments, "
                             "or a module object), load --state-dict into it, run it once on zeros of "
                             "--example-shape and write its NIR graph (emu.export.from_snntorch): a chain of Linear, "
                             "Conv2d, AvgPool2d, Flatten and snnTorch Leaky, Synaptic, RLeaky, RSynaptic layers.")
    p.add_argument("model", metavar="MODULE.py:NAME", help="the Python file and the name of the model in it")
    p.add_argument("--example-shape", required=True, type=shape, metavar="B,...",
                   help="what the model's forward takes, batch axis first (an nn.Sequential: one time step)")
    p.add_argument("--dt", required=True, type=positive_float, help="tick length in seconds (1e-3 on the chip)")
    p.add_argument("--state-dict", type=Path, metavar="FILE",
                   help="weights saved by torch.save(model.state_dict(), FILE) (read with weights_only=True)")
    p.add_argument("--out", required=True, type=Path, metavar="MODEL.nir", help="the NIR file to write")


def _demo(sub) -> None:
    p = _command(sub, "demo", "demo", help="DVS gestures: snnTorch float vs the emulated chip, with a report",
                 description="The DVS-gesture paper pipeline end to end on built-in data: synthetic test gestures "
                             "read through tonic, the shipped float model in snnTorch and on the emulated chip (int8 "
                             "PTQ), accuracies, per-layer mismatch, the gap factors and one HTML report.")
    p.add_argument("--data", help="root of the real DVS Gesture set (DVSGesture/ibmGestureTest/...); "
                                  "default: a synthetic test split")
    p.add_argument("--model", type=Path, help="float NIR model (default: the shipped one)")
    p.add_argument("--per-class", type=positive_int, default=3, help="synthetic test samples per class")
    p.add_argument("--ticks", type=positive_int, default=300, help="1 ms ticks per sample (300). On the chip, by s2emu fit's count, the shipped model "
                        "fits only with lif4 split over more PEs: --max-atoms lif4=64 (46 PEs) records 2,750 ticks "
                        "of spikes; at the default 250 neurons per PE its synapses alone overflow a PE")
    p.add_argument("--percentile", type=percentile, default=99.9, help="PTQ scale percentile of |W|")
    p.add_argument("--out", default="s2emu-demo", help="output folder")
    p.add_argument("--profile-file", type=Path, metavar="PROFILE.json",
                   help="a calibrated profile (s2emu calibrate): the emulated chip follows it")
    add_scheduler_arg(p, "the attribution's batches of samples")


COMMANDS = (_run, _compare, _validate, _calibrate, _attribute, _chip, _fit, _sweep, _train, _export, _demo)


#: argparse takes "-1e-3" for an option; numbers in any notation are values
NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line, as every other error of s2emu (the usage is in --help)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="s2emu", description="Bit-accurate SpiNNaker2 emulator and validator.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for add in COMMANDS:
        add(sub)
    for p in [parser, *sub.choices.values()]:
        p._negative_number_matcher = NEGATIVE_NUMBER
    return parser
