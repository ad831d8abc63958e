"""A tour of hostile inputs and scenarios through every ``s2emu`` command, counted as issue 27 counts
them: cases tried, clean, traceback, silent.

    python scripts/tour_hostile.py [--work DIR] [--skip-processes]

Each case is a command line (run in this process, stderr captured) or a scenario with real
processes (Ctrl-C at two points of attribute, calibrate, demo, train, sweep --workers 2, run and
validate; two sweeps on one results file; a file size limit mid-write). A case is **clean** when a
hostile input is refused in one line (exit 2; 3 for fit; 130 for Ctrl-C) with no temporary left and
the previous outputs as they were, or a valid one is done; **traceback** when anything else is
raised; **silent** when a hostile input is accepted (exit 0); **wrong** when a valid input is
refused, a temporary is left or a previous output changed. Every case not clean is listed.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import math
import os
import re
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import nir
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "scripts"))

from hostile import build_files, graph, huge_conv_graph, messages  # noqa: E402
from tour_processes import process_scenarios  # noqa: E402

from emu.chip.manifest import sha256_file  # noqa: E402
from emu.cli import main  # noqa: E402
from emu.profile import SemanticsProfile  # noqa: E402


@dataclass
class Case:
    name: str
    argv: List[str]
    expect: str = "refuse"  # refuse | ok | either
    watch: List[Path] = field(default_factory=list)  # folders whose files must not change when refused
    codes: tuple = (2,)


#: each case's exit status and last line, for --log
LOG: List[str] = []


def classify(case: Case) -> tuple:
    before = {p: _files(p) for p in case.watch}
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = main(case.argv)
        except SystemExit as exc:  # argparse: usage and one error line
            rc = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # noqa: BLE001
            traceback.print_exc(file=err)
            rc = None
    text = err.getvalue()
    LOG.append(f"{case.name}\texit {rc}\t{(messages(text) or out.getvalue().strip().splitlines() or [''])[-1][:300]}")
    left = [str(p) for folder in case.watch for p in folder.iterdir() if p.name.startswith(".s2emu-partial")
            or p.name.endswith(".tmp")]
    said = [line for line in _without_python_warnings(messages(text)) if not line.startswith(("warning:", "note:"))]
    if rc is None or "Traceback" in text:
        return "traceback", text.strip().splitlines()[-1:] if text.strip() else ["?"]
    if left:
        return "wrong", [f"left {left}"]
    if case.expect == "ok":
        return ("clean", []) if rc in (0, 4) else ("wrong", [f"refused a valid case: {said[-1:]}"])
    if rc == 0 and case.expect == "refuse":
        return "silent", [f"exit 0: {out.getvalue().strip().splitlines()[-1:]}"]
    if rc != 0 and any(_files(p) != before[p] for p in case.watch):
        return "wrong", ["a refused command changed its previous outputs"]
    if rc in case.codes and rc != 2 and not said and out.getvalue().strip():
        return "clean", []  # an answer, not an error (fit: does not fit)
    if rc != 0 and (len(said) != 1 or rc not in case.codes + (1, 2)):
        return "wrong", [f"exit {rc}, {len(said)} lines: {said[-2:]}"]
    return "clean", []


def _without_python_warnings(lines: List[str]) -> List[str]:
    """Lines other than Python's warnings ("file:line: RuntimeWarning: ..." and the source line after)."""
    out, skip = [], False
    for line in lines:
        if re.match(r"^\S+:\d+: \w*Warning: ", line):
            skip = True
            continue
        if not skip:
            out.append(line)
        skip = False
    return out


def _files(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} if folder.exists() else {}


# --- the cases -----------------------------------------------------------------------------------------------

HOSTILE_VALUES = {"str": "x", "list": [1], "null": None, "nan": math.nan, "huge": 1e300, "neg": -1, "bool": True,
                  "obj": {"a": 1}}


def _value_expect(field_name: str, kind: str, nullable: bool) -> str:
    if kind == "null":
        return "either" if nullable else "refuse"
    if kind == "neg" and field_name in ("seed",):
        return "either"
    if kind == "huge" and field_name in ("dt", "weight_scale"):
        return "either"
    return "refuse"


def profile_cases(d: Path, w: Path) -> List[Case]:
    board = json.loads((d / "board.json").read_text())
    cases = []
    sections = [("profile", k) for k in SemanticsProfile.__dataclass_fields__] + \
               [("conversion", k) for k in board["conversion"]]
    commands = {
        "run": lambda p: ["run", str(d / "m.nir"), "--input", str(d / "x.npy"), "--out", str(w / "o.json"),
                          "--profile-file", str(p)],
        "validate": lambda p: ["validate", str(d / "m.nir"), "--input", str(d / "x.npy"), "--report",
                               str(w / "v.html"), "--profile-file", str(p)],
        "fit": lambda p: ["fit", str(d / "m.nir"), "--profile-file", str(p)],
        "chip-script": lambda p: ["chip-script", str(d / "m.nir"), "--input", str(d / "x.npy"), "--ticks", "80",
                                  "--out", str(w / "run_on_chip.py"), "--profile-file", str(p)],
        "sweep": lambda p: ["sweep", str(d / "m.nir"), "--data", str(d / "data.npz"), "--weight-bits", "8",
                            "--membrane-bits", "16", "--rounding", "truncate", "--workers", "0", "--out",
                            str(w / f"s{len(cases)}.jsonl"), "--profile-file", str(p)],
        "demo": lambda p: ["demo", "--out", str(w / "demo"), "--profile-file", str(p)],
    }
    for section, name in sections:
        for kind, value in HOSTILE_VALUES.items():
            data = copy.deepcopy(board)
            data[section][name] = value
            path = w / f"p_{section}_{name}_{kind}.json"
            path.write_text(json.dumps(data))
            nullable = name in ("weight_bits", "weight_scale", "scale_percentile")
            expect = _value_expect(name, kind, nullable)
            # every value through run; the wrong types through every other command too
            for command in (["run"] + [c for c in commands if c != "run"] if kind in ("str", "list") else ["run"]):
                cases.append(Case(f"profile {section}.{name}={kind} ({command})", commands[command](path),
                                  "either" if command in ("demo", "sweep") and expect == "either" else expect))
    for key, value in (("format", "not-a-profile"), ("format", 1), ("version", 99), ("version", "one"),
                       ("version", -1), ("version", 1.5), ("profile", "x"), ("conversion", [1])):
        data = dict(board, **{key: value})
        path = w / f"p_{key}_{value}.json"
        path.write_text(json.dumps(data))
        cases += [Case(f"profile file {key}={value!r} ({c})", commands[c](path)) for c in ("run", "fit")]
    (w / "p_bad.json").write_text("{not json")
    cases.append(Case("profile file not JSON", commands["run"](w / "p_bad.json")))
    return cases


def recording_cases(d: Path, w: Path) -> List[Case]:
    cases = []
    with np.load(d / "rec.npz") as z:
        arrays = {k: z[k] for k in z.files}
    variants = {"float": lambda a: a.astype(float) + 0.5, "2d": lambda a: np.atleast_2d(a)[None],
                "empty": lambda a: a[:0], "str": lambda a: np.array(["x"]), "huge": lambda a: np.full_like(a, 2**40)
                if a.dtype.kind in "iu" else a * 1e300, "neg": lambda a: -np.abs(a.astype(np.int64)) - 1
                if a.dtype.kind in "iuf" else a, "gone": None}
    for key in sorted(arrays):
        for kind, change in variants.items():
            mutated = dict(arrays)
            if change is None:
                del mutated[key]
            else:
                try:
                    mutated[key] = change(arrays[key])
                except (TypeError, ValueError, IndexError, OverflowError):
                    continue
            path = w / f"rec_{key.replace('/', '_')}_{kind}.npz"
            np.savez(path, **mutated)
            cases.append(Case(f"recording npz {key} {kind} (compare)", ["compare", str(path), str(d / "rec.npz"),
                                                                        "--out", str(w / "c.json")], "either"))
    ends = arrays["spikes/tick_end"].copy()
    ends[0, 5] = ends[0, 40] + 3
    np.savez(w / "rec_falling.npz", **dict(arrays, **{"spikes/tick_end": ends}))
    cases.append(Case("recording npz tick_end falls", ["compare", str(w / "rec_falling.npz"), str(d / "rec.npz"),
                                                       "--out", str(w / "c.json")]))
    rec = json.loads((d / "rec.json").read_text())
    for path_, value in ((("version",), "one"), (("version",), 7), (("format",), "x"), (("populations",), []),
                         (("meta", "ticks"), "eighty"), (("meta", "ticks"), 10**15), (("meta",), 3),
                         (("populations", "lif1", "size"), -3), (("populations", "lif1", "shape"), "x"),
                         (("populations", "lif1", "spikes", "0"), [1.5]), (("populations", "lif1", "spikes", "0"),
                                                                           [10**13]),
                         (("populations", "lif1", "spikes", "0"), [[1, 2], [3]]), (("populations", "lif1", "v"), 5),
                         (("populations", "lif1", "bogus"), 1)):
        data = copy.deepcopy(rec)
        node = data
        for key in path_[:-1]:
            node = node[key]
        node[path_[-1]] = value
        name = "_".join(map(str, path_)) + f"_{len(cases)}"
        (w / f"rec_{name}.json").write_text(json.dumps(data))
        cases.append(Case(f"recording json {'.'.join(path_)}={value!r} (compare)",
                          ["compare", str(w / f"rec_{name}.json"), str(d / "rec.json"), "--out", str(w / "c.json")]))
    raw = (d / "rec.npz").read_bytes()
    for name, blob in (("truncated", raw[:len(raw) // 2]), ("empty", b""), ("random", os.urandom(4000))):
        (w / f"rec_{name}.npz").write_bytes(blob)
        cases.append(Case(f"recording npz {name} (calibrate --chip)",
                          ["calibrate", str(d / "m.nir"), "--input", str(d / "x.npy"), "--chip",
                           str(w / f"rec_{name}.npz"), "--out", str(w / "cal.json")]))
    return cases


def manifest_cases(d: Path, w: Path) -> List[Case]:
    rec = json.loads((d / "rec.json").read_text())
    manifest = dict(format="spinnaker2-emu chip manifest 1", model_file="m.nir", model_sha256=sha256_file(d / "m.nir"),
                    input_file="x.npy", input_sha256=sha256_file(d / "x.npy"),
                    options=dict(dt=1e-3, integrator="exponential", weight_scale="auto", weight_max=127,
                                 scale_percentile=None, conn_delay=1, reset="subtract"), ticks=80, input_sample=0)
    argv = lambda p: ["validate", str(d / "m.nir"), "--input", str(d / "x.npy"), "--chip", str(p),  # noqa: E731
                      "--auto-scale", "--report", str(w / "vc.html")]
    cases = []
    for name, change, expect in (("valid", {}, "ok"), ("options string", {"options": "dt=1e-3"}, "refuse"),
                                 ("ticks string", {"ticks": "80"}, "refuse"), ("other model", {"model_sha256": "0"},
                                                                              "refuse"),
                                 ("sample -1", {"input_sample": -1}, "refuse"), ("options list", {"options": [1]},
                                                                                "refuse"),
                                 ("dt string", {"options": dict(manifest["options"], dt="x")}, "refuse"),
                                 ("reset bogus", {"options": dict(manifest["options"], reset="bogus")}, "refuse"),
                                 ("manifest list", None, "refuse")):
        data = copy.deepcopy(rec)
        data["meta"]["manifest"] = [1] if change is None else dict(manifest, **change)
        (w / f"chip_{name.replace(' ', '_')}.json").write_text(json.dumps(data))
        cases.append(Case(f"manifest {name} (validate --chip)", argv(w / f"chip_{name.replace(' ', '_')}.json"),
                          expect))
    return cases


def input_cases(d: Path, w: Path) -> List[Case]:
    conv = REPO / "emu" / "examples" / "conv_net.nir"
    cases = []
    run = lambda p, m=d / "m.nir", *x: ["run", str(m), "--input", str(p), "--out", str(w / "o.json"), *x]  # noqa
    json_inputs = {"tick 1e12": {"0": [1, 10**12]}, "tick -1": {"0": [-1]}, "tick 1.5": {"0": [1.5]},
                   "neuron x": {"x": [1]}, "neuron 1e9": {"1000000000": [1]}, "ticks nested": {"0": [[1]]},
                   "list": [1, 2], "empty": {}, "nan tick": {"0": [math.nan]}, "string ticks": {"0": "123"}}
    for name, value in json_inputs.items():
        (w / f"in_{name.replace(' ', '_')}.json").write_text(json.dumps(value))
        cases.append(Case(f"input json {name} (run)", run(w / f"in_{name.replace(' ', '_')}.json")))
    for name, arr in {"2 values": np.full((10, 12), 2), "wrong width": np.zeros((10, 7)), "3d": np.zeros((2, 3, 4, 5)),
                      "nan": np.full((10, 12), np.nan), "strings": np.array([["a"] * 12]),
                      "empty": np.zeros((0, 12))}.items():
        np.save(w / f"in_{name.replace(' ', '_')}.npy", arr)
        cases.append(Case(f"input npy {name} (run)", run(w / f"in_{name.replace(' ', '_')}.npy"), "either"
                          if name == "empty" else "refuse"))
    events = dict(x=np.array([1, 2]), y=np.array([1, 2]), p=np.array([0, 1]), t=np.array([100, 200]))
    for name, change in {"nan t": dict(t=np.array([100.0, math.nan])), "inf t": dict(t=np.array([100.0, math.inf])),
                         "t 1e18": dict(t=np.array([0, 10**18])), "negative t": dict(t=np.array([-5, 10])),
                         "x outside": dict(x=np.array([1, 99])), "p missing": "p", "lengths": dict(t=np.array([1])),
                         "x strings": dict(x=np.array(["a", "b"]))}.items():
        ev = {k: v for k, v in events.items() if k != change} if isinstance(change, str) else dict(events, **change)
        np.savez(w / f"ev_{name.replace(' ', '_')}.npz", **ev)
        cases.append(Case(f"input events {name} (run)", run(w / f"ev_{name.replace(' ', '_')}.npz", conv,
                                                             "--auto-scale")))
    for name, blob in (("truncated", (d / "x.npy").read_bytes()[:60]), ("random", os.urandom(500))):
        (w / f"in_{name}.npy").write_bytes(blob)
        cases.append(Case(f"input npy {name} (run)", run(w / f"in_{name}.npy")))
    cases.append(Case("input missing (run)", run(w / "nowhere.npy")))
    return cases


def sweep_cases(d: Path, w: Path) -> List[Case]:
    base = lambda out, *x: ["sweep", str(d / "m.nir"), "--data", str(d / "data.npz"), "--weight-bits", "8",  # noqa
                            "--membrane-bits", "16", "--rounding", "truncate", "--workers", "0", "--auto-scale",
                            "--out", str(out), *x]
    cases = []
    for name, blob in (("binary", b"\x89PNG\x00\xff\xfe"), ("json list", b"[1, 2]\n"),
                       ("row types", b'{"key": 3, "status": "ok"}\n'), ("broken middle", b'{"key": "a", "status": '
                                                                                         b'"ok"}\n{x\n{"key": "b", '
                                                                                         b'"status": "ok"}\n'),
                       ("status bogus", b'{"key": "a", "status": "maybe"}\n'), ("accuracy nan", b'{"key": "a", '
                                                                                b'"status": "ok", "accuracy": NaN}\n')):
        (w / f"sw_{name.replace(' ', '_')}.jsonl").write_bytes(blob)
        cases.append(Case(f"sweep results {name}", base(w / f"sw_{name.replace(' ', '_')}.jsonl"), watch=[]))
    data = dict(np.load(d / "data.npz"))
    for name, arrays in {"no labels": dict(inputs=data["inputs"]), "label 99": dict(data, labels=np.array([0, 1, 99, 3])),
                         "label -1": dict(data, labels=np.array([0, -1, 2, 3])),
                         "float labels": dict(data, labels=data["labels"] + 0.5),
                         "inputs 2d": dict(data, inputs=data["inputs"][0]), "inputs 2": dict(data, inputs=data["inputs"]
                                                                                           * 2),
                         "lengths": dict(data, labels=data["labels"][:2])}.items():
        np.savez(w / f"sd_{name.replace(' ', '_')}.npz", **arrays)
        cases.append(Case(f"sweep data {name}", ["sweep", str(d / "m.nir"), "--data",
                                                 str(w / f"sd_{name.replace(' ', '_')}.npz"), "--workers", "0",
                                                 "--weight-bits", "8", "--membrane-bits", "16", "--rounding",
                                                 "truncate", "--out", str(w / f"sdo_{len(cases)}.jsonl")]))
    for flag, value in (("--weight-bits", ""), ("--weight-bits", "0"), ("--weight-bits", "1"), ("--weight-bits", "40"),
                        ("--weight-bits", "-4"), ("--membrane-bits", "200"), ("--membrane-bits", "7"),
                        ("--frac-bits", "40"), ("--output", "nope"), ("--method", "qat")):
        argv = base(w / f"sg_{len(cases)}.jsonl")
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
        cases.append(Case(f"sweep {flag} {value!r}", argv, "either" if flag == "--frac-bits" else "refuse"))
    assert main(base(w / "other.jsonl", "--scale-percentile", "95")) == 0
    cases.append(Case("sweep resumed with another percentile", base(w / "other.jsonl", "--scale-percentile", "99")))
    cases.append(Case("sweep resumed with the same settings", base(w / "other.jsonl", "--scale-percentile", "95"), "ok"))
    return cases


def nir_cases(d: Path, w: Path) -> List[Case]:
    cases = []
    x = str(d / "x.npy")
    for node, fld in (("lif1", "tau"), ("lif1", "r"), ("lif1", "v_leak"), ("lif1", "v_threshold"), ("lif1", "v_reset"),
                      ("fc1", "weight"), ("fc1", "bias")):
        for value in (math.nan, math.inf, -math.inf):
            g = graph()
            node_obj = g.nodes[node]
            arr = np.array(getattr(node_obj, fld) if getattr(node_obj, fld, None) is not None else np.zeros(20),
                           dtype=float)
            arr.flat[0] = value
            if fld == "bias":
                g.nodes[node] = nir.Affine(weight=node_obj.weight, bias=arr)
            else:
                setattr(node_obj, fld, arr)
            path = w / f"nir_{node}_{fld}_{value}.nir"
            nir.write(str(path), g)
            cases.append(Case(f"NIR {node}.{fld} = {value} (run)", ["run", str(path), "--input", x, "--out",
                                                                    str(w / "o.json")]))
    for name, meta in {"dt string": {"dt": "fast"}, "dt -1": {"dt": -1.0}, "dt nan": {"dt": math.nan},
                       "reset bogus": {"reset": "bogus"}, "integrator bogus": {"integrator": "rk4"},
                       "reset_delay 3": {"reset_delay": 3}}.items():
        path = w / f"nir_meta_{name.replace(' ', '_')}.nir"
        nir.write(str(path), graph(meta=meta))
        cases.append(Case(f"NIR metadata {name} (run)", ["run", str(path), "--input", x, "--out", str(w / "o.json")],
                          "either" if name == "reset_delay 3" else "refuse"))
    g = graph()
    g.nodes["fc2"] = nir.Linear(weight=np.ones((5, 7)))
    nir.write(str(w / "nir_shapes.nir"), g)
    cases.append(Case("NIR shapes do not fit (run)", ["run", str(w / "nir_shapes.nir"), "--input", x, "--out",
                                                     str(w / "o.json")]))
    (w / "nir_garbage.nir").write_bytes(os.urandom(3000))
    cases.append(Case("NIR garbage file (fit)", ["fit", str(w / "nir_garbage.nir")]))
    huge = huge_conv_graph()
    nir.write(str(w / "huge.nir"), huge)
    cases.append(Case("NIR 8e9 neurons (fit)", ["fit", str(w / "huge.nir")], codes=(3,)))
    cases.append(Case("NIR 8e9 neurons (run)", ["run", str(w / "huge.nir"), "--input", x, "--out", str(w / "o.json")]))
    return cases


def flag_cases(d: Path, w: Path) -> List[Case]:
    m, x, rec = str(d / "m.nir"), str(d / "x.npy"), str(d / "rec.npz")
    run = ["run", m, "--input", x, "--out", str(w / "o.json")]
    cases = [Case(f"run {' '.join(extra)}", run + extra) for extra in (
        ["--ticks", "2000000000"], ["--ticks", "5000000000"], ["--synaptic-latency", "1000000000"],
        ["--conn-delay", "1000000000"], ["--scale-percentile", "90"], ["--weight-bits", "40"], ["--weight-bits", "1"],
        ["--membrane-bits", "200"], ["--frac-bits", "40", "--profile", "fixed"], ["--record", "spikes,w"],
        ["--dt", "nan"], ["--dt", "0"], ["--scale", "inf"], ["--ticks", "0"], ["--ticks", "10"])]
    cases += [Case(f"compare {' '.join(extra)}", ["compare", rec, rec, "--out", str(w / "c.json"), *extra]) for extra in
              (["--max-lag", "100000000"], ["--window", "100000000"], ["--tau", "0"], ["--population", "nope"])]
    cases[-1].expect = "either"
    cases += [Case(f"fit {' '.join(extra)}", ["fit", m, *extra], codes=(3,)) for extra in
              (["--ticks", "100000000000"], ["--max-atoms", "nope=3"], ["--record", "v"])]
    cases += [Case(f"outputs {name}", argv) for name, argv in (
        ("missing folder", ["run", m, "--input", x, "--out", str(w / "no" / "o.json")]),
        ("out is a folder", ["run", m, "--input", x, "--out", str(w)]),
        ("report named .json", ["validate", m, "--input", x, "--report", str(w / "r.json")]),
        ("out is the report's JSON", ["attribute", m, "--inputs", str(d / "samples"), "--report", str(w / "a.html"),
                                      "--out", str(w / "a.json")]),
        ("calibrate out not .json", ["calibrate", m, "--input", x, "--chip", rec, "--out", str(w / "b.txt")]),
        ("run out .txt", ["run", m, "--input", x, "--out", str(w / "o.txt")]))]
    return cases


def checkpoint_cases(d: Path, w: Path) -> List[Case]:
    root = w / "train"
    root.mkdir()
    argv = ["train", "--root", str(root), "--synthetic", "1", "--batch-size", "11", "--quiet", "--threads", "1",
            "--ticks", "20", "--checkpoint", str(root / "ck.pt")]
    assert main(argv + ["--epochs", "1"]) == 0
    cases = [Case("train resumed with another lr", argv + ["--epochs", "2", "--lr", "0.01"], watch=[root]),
             Case("train resumed with other ticks", argv[:-4] + ["--ticks", "30", "--checkpoint", str(root / "ck.pt"),
                                                                  "--epochs", "2"], watch=[root]),
             Case("train resumed as QAT", argv + ["--epochs", "2", "--qat-bits", "8"], watch=[root])]
    raw = (root / "ck.pt").read_bytes()
    for name, blob in (("garbage", b"\x00garbage" * 50), ("truncated", raw[:len(raw) // 3]), ("empty", b"")):
        (w / f"ck_{name}.pt").write_bytes(blob)
        cases.append(Case(f"train checkpoint {name}", argv[:-1] + [str(w / f"ck_{name}.pt"), "--epochs", "1"]))
    return cases


def main_tour(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, help="folder for the files (default: a new temporary one)")
    ap.add_argument("--skip-processes", action="store_true", help="only the cases run in this process")
    ap.add_argument("--log", type=Path, help="write every case's exit status and last line here")
    args = ap.parse_args(argv)
    w = args.work or Path(tempfile.mkdtemp(prefix="s2emu-tour-"))
    d = w / "base"
    d.mkdir(parents=True)
    build_files(d)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["calibrate", str(d / "m.nir"), "--input", str(d / "x.npy"), "--chip", str(d / "rec.npz"),
                     "--auto-scale", "--out", str(d / "board.json")]) == 0
        from emu.spike_io import load_recording, save_recording
        save_recording(load_recording(d / "rec.npz"), d / "rec.json")
    cases = []
    for family in (profile_cases, recording_cases, manifest_cases, input_cases, sweep_cases, nir_cases, flag_cases,
                   checkpoint_cases):
        work = w / family.__name__
        work.mkdir()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            built = family(d, work)
        for case in built:
            case.watch = case.watch or [work]
        cases += built
    results = []
    began = time.perf_counter()
    for i, case in enumerate(cases):
        verdict, why = classify(case)
        results.append((case.name, verdict, why))
        if verdict != "clean":
            print(f"  {verdict}: {case.name}: {why}", flush=True)
    print(f"{len(cases)} command-line cases in {time.perf_counter() - began:.0f} s", flush=True)
    if args.log:
        args.log.write_text("\n".join(LOG) + "\n")
    if not args.skip_processes:
        (w / "processes").mkdir()
        for name, verdict, why in process_scenarios(d, w / "processes"):
            results.append((name, verdict, why))
            if verdict != "clean":
                print(f"  {verdict}: {name}: {why}", flush=True)
    counts = {k: sum(1 for r in results if r[1] == k) for k in ("clean", "traceback", "silent", "wrong")}
    print(f"cases tried {len(results)}: clean {counts['clean']}, traceback {counts['traceback']}, silent "
          f"{counts['silent']}, other faults {counts['wrong']}")
    return 0 if counts["clean"] == len(results) else 1


if __name__ == "__main__":
    sys.exit(main_tour())
