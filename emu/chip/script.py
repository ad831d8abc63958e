"""The generated chip script: model, binned input, options, tick count and the shared host
code in one self-contained Python file for the machine attached to the board."""
from __future__ import annotations

import datetime
import json
import base64
import zlib
from pathlib import Path
from typing import Optional

from emu.chip.host import INSTALL_HINT, host_code_sha256, host_source
from emu.chip.job import ChipJob
from emu.chip.manifest import ChipScriptError, generator
from emu.spike_io import atomic_write


#: the generated script's command line: unpack, check, run, save (static code, no values filled in)
_SCRIPT_MAIN = r'''

def _unpack(data):
    return zlib.decompress(base64.b64decode(data))


def main(argv=None):
    ap = argparse.ArgumentParser(description=f"Run {MODEL_FILE} for {TICKS} ticks on SpiNNaker2 and save spikes"
                                             f" (and voltages) with a manifest for s2emu validate --chip.")
    ap.add_argument("--eth-ip", help="IP address of the SpiNNaker2 board (needed by --backend chip)")
    ap.add_argument("--backend", choices=("chip", "brian2"), default="chip",
                    help="chip (default) or py-spinnaker2's brian2 simulation")
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"recording to write (.json, default {DEFAULT_OUT})")
    ap.add_argument("--sys-tick-in-s", type=float, default=SYS_TICK_IN_S,
                    help="wall-clock length of one tick on the chip (py-spinnaker2's default when not given)")
    ap.add_argument("--dry-run", action="store_true", help="check the embedded model and input, print the plan, stop")
    args = ap.parse_args(argv)
    if args.backend == "chip" and not args.eth_ip and not args.dry_run:
        ap.error("--eth-ip is required for --backend chip (or use --backend brian2)")
    if not args.out.lower().endswith(".json"):
        ap.error("--out must end in .json")
    model_bytes = _unpack(MODEL_DATA)
    if hashlib.sha256(model_bytes).hexdigest() != MODEL_SHA256:
        print("error: the embedded model does not match its sha256; regenerate this script", file=sys.stderr)
        return 2
    input_spikes = json.loads(_unpack(INPUT_DATA).decode("utf-8"))
    if spikes_digest(input_spikes) != INPUT_SPIKES_SHA256:
        print("error: the embedded input spikes do not match their sha256; regenerate this script", file=sys.stderr)
        return 2
    n_in = sum(len(t) for d in input_spikes.values() for t in d.values())
    print(f"model {MODEL_FILE} ({len(model_bytes)} bytes), {n_in} input spikes, {TICKS} ticks, "
          f"options {OPTIONS}, record {RECORD}, backend {args.backend}")
    if args.dry_run:
        return 0
    run_kwargs = {} if args.sys_tick_in_s is None else {"sys_tick_in_s": args.sys_tick_in_s}
    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, MODEL_FILE)
        with open(model_path, "wb") as f:
            f.write(model_bytes)
        try:
            spikes, voltages, info = run_with_spinnaker2(
                model_path, input_spikes, TICKS, OPTIONS, RECORD, backend=args.backend, eth_ip=args.eth_ip,
                prescale=PRESCALE, max_atoms_per_core=MAX_ATOMS_PER_CORE, run_kwargs=run_kwargs)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            print(f"error: cannot import {exc.name or exc}", file=sys.stderr)
            if missing == "spinnaker2":
                print(INSTALL_HINT, file=sys.stderr)
            return 2
    info["input_sample"] = INPUT_SAMPLE
    info["emulator_profile_file"] = EMULATOR_PROFILE_FILE
    manifest = build_manifest(MODEL_FILE, MODEL_SHA256, INPUT_FILE, INPUT_SHA256, INPUT_SPIKES_SHA256, OPTIONS,
                              TICKS, info, GENERATOR, HOST_CODE_SHA256)
    save_chip_recording(spikes, voltages, manifest, args.out, TICKS)
    for name, size in POPULATION_SIZES.items():
        got = info["population_sizes"].get(name)
        if got != size:
            print(f"warning: population {name!r} has {got} neurons in py-spinnaker2 but {size} in the emulator",
                  file=sys.stderr)
    counts = ", ".join(f"{p}: {sum(len(t) for t in s.values())}" for p, s in spikes.items())
    print(f"ran {TICKS} ticks on {args.backend} (py-spinnaker2 {info['py_spinnaker2_version']}); spikes {counts}; "
          f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def _wrapped_literal(text: str, width: int = 100) -> str:
    if not text:
        return '""'
    return "(\n" + "\n".join(f'    "{text[i:i + width]}"' for i in range(0, len(text), width)) + "\n)"


def _pack(data: bytes) -> str:
    return base64.b64encode(zlib.compress(data, 9)).decode("ascii")


def render_chip_script(job: ChipJob, sys_tick_in_s: Optional[float] = None, default_out: Optional[str] = None,
                       script_name: str = "run_on_chip.py") -> str:
    """The text of the script (see :func:`write_chip_script`)."""
    model_bytes = job.model_path.read_bytes()
    input_json = json.dumps(job.input_spikes, sort_keys=True, separators=(",", ":")).encode("utf-8")
    default_out = default_out or f"{job.model_path.stem}_chip.json"
    sizes = {n: p.size for n, p in job.network.populations.items()}
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    src = host_source()
    opts_line = ", ".join(f"{k}={v!r}" for k, v in job.options.items())
    header = f'''#!/usr/bin/env python3
# Run a NIR model on SpiNNaker2 and save the recording for `s2emu validate --chip`.
#
# Generated by {generator("chip-script")} on {created}.
# model: {job.model_path.name!r} sha256 {job.model_sha256}
# input: {job.input_file!r} sha256 {job.input_sha256}
# ticks: {job.ticks}; record: {",".join(job.record)}
# conversion options: {opts_line}
#
# Needs python 3, numpy, nir and py-spinnaker2 (not spinnaker2-emu). py-spinnaker2 is not on
# PyPI: git clone -b py-spinnaker2_nir https://gitlab.com/spinnaker2/py-spinnaker2.git &&
# pip install -e py-spinnaker2
#
#   python {{script}} --eth-ip 192.168.1.25 [--out {default_out}]     # on the chip
#   python {{script}} --backend brian2                                # py-spinnaker2's brian2 backend
#   python {{script}} --dry-run                                       # check the embedded data only
#
# The functions below `# --- shared host code` are spinnaker2-emu's emu/chip/host.py functions,
# embedded verbatim with inspect.getsource (sha256 in HOST_CODE_SHA256); edit nothing here:
# regenerate with `s2emu chip-script` instead.
'''.replace("{script}", script_name)
    body = f'''from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import tempfile
import zlib

MODEL_FILE = {job.model_path.name!r}
MODEL_SHA256 = {job.model_sha256!r}
INPUT_FILE = {job.input_file!r}
INPUT_SHA256 = {job.input_sha256!r}
INPUT_SPIKES_SHA256 = {job.input_spikes_sha256!r}
INPUT_SAMPLE = {job.sample!r}
TICKS = {job.ticks!r}
OPTIONS = {job.options!r}
EMULATOR_PROFILE_FILE = {job.profile_file!r}
RECORD = {job.record!r}
POPULATION_SIZES = {sizes!r}
PRESCALE = {job.prescale!r}
MAX_ATOMS_PER_CORE = {job.max_atoms_per_core!r}
SYS_TICK_IN_S = {sys_tick_in_s!r}
DEFAULT_OUT = {default_out!r}
GENERATOR = {generator("chip-script")!r}
HOST_CODE_SHA256 = {host_code_sha256()!r}
INSTALL_HINT = {INSTALL_HINT!r}

# zlib + base64 of the NIR file, byte for byte
MODEL_DATA = {_wrapped_literal(_pack(model_bytes))}

# zlib + base64 of the input spikes as the emulator binned them: {{population: {{neuron: [ticks]}}}}
INPUT_DATA = {_wrapped_literal(_pack(input_json))}


# --- shared host code (emu/chip/host.py) ----------------------------------------------------
{src}
# --- end of shared host code ----------------------------------------------------------------
'''
    return header + body + _SCRIPT_MAIN


def write_chip_script(job: ChipJob, out, sys_tick_in_s: Optional[float] = None,
                      default_out: Optional[str] = None) -> Path:
    """Write the host script for ``job`` to ``out`` (atomically, executable); returns the path.

    The script embeds the model, the binned input spikes, the options, the tick
    count and the shared host code (module doc); its command line takes
    ``--eth-ip``, ``--backend chip|brian2``, ``--out``, ``--sys-tick-in-s`` and
    ``--dry-run``.
    """
    out = Path(out)
    if out.suffix != ".py":
        raise ChipScriptError(f"{out}: the script's name must end in .py")
    text = render_chip_script(job, sys_tick_in_s, default_out, out.name)
    compile(text, str(out), "exec")  # never write a script that does not parse
    atomic_write(out, text)
    out.chmod(out.stat().st_mode | 0o111)
    return out


