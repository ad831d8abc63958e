"""Every reader of a file fed corrupted variants of a valid one (issue 27, part 7): truncated, bits
flipped, a field of the wrong type or an extreme number, an array of another dtype or shape. Each
either reads it or raises a :class:`~emu.errors.UserError` (one line in the CLI), never another
exception. The machine is taken to have 2 GiB available, so a corrupted size is refused by the
resource guard instead of allocated."""
import json
import math
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import emu.resources
from emu.apps.gesture.model import gesture_net
from emu.apps.gesture.train import load_checkpoint, save_checkpoint
from emu.apps.sweep import read_results
from emu.apps.sweep.runner import load_data
from emu.chip.manifest import load_chip_recording
from emu.errors import UserError
from emu.nir_import import from_nir, read_nir
from emu.settings import load_profile_file
from emu.spike_io import load_recording, read_input, save_recording
from emu.spikes import Recording
from hostile import build_files

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """One valid file of every kind a command reads."""
    from emu.cli import main

    d = build_files(tmp_path_factory.mktemp("fuzz"))
    assert main(["calibrate", str(d / "m.nir"), "--input", str(d / "x.npy"), "--chip", str(d / "rec.npz"),
                 "--auto-scale", "--out", str(d / "profile.json")]) == 0
    assert main(["sweep", str(d / "m.nir"), "--data", str(d / "data.npz"), "--weight-bits", "8", "--membrane-bits",
                 "16", "--rounding", "truncate", "--workers", "0", "--auto-scale", "--out", str(d / "s.jsonl")]) == 0
    rec = load_recording(d / "rec.npz")
    save_recording(rec, d / "rec.json")
    chip = Recording(rec.shapes, rec.ticks, rec.neurons, rec.tick_end, {}, dict(rec.meta, manifest=dict(
        format="spinnaker2-emu chip manifest 1", model_file="m.nir", model_sha256="0" * 64, input_file="x.npy",
        input_sha256="1" * 64, options=dict(dt=1e-3, integrator="exponential", weight_scale="auto", weight_max=127,
                                            scale_percentile=None, conn_delay=1, reset="subtract"),
        ticks=rec.ticks, input_sample=0, population_sizes=dict(rec.sizes))), "chip")
    save_recording(chip.sample(0), d / "chip.json")
    snapshot = Recording(rec.shapes, rec.ticks, rec.neurons, rec.tick_end, {}, dict(snapshot=dict(
        model={"fc1.weight": "ab12"}, inputs={"input": "cd34/(1, 80, 12)"},
        settings=dict(conversion={"dt": 1e-3}, profile={"arithmetic": "chip"}), version="0.1.0")), "snapshot")
    save_recording(snapshot, d / "snapshot.npz")
    json_input = {"input": {str(n): [int(t) for t in np.flatnonzero(col)] for n, col in
                            enumerate(np.load(d / "x.npy").T)}}
    (d / "in.json").write_text(json.dumps(json_input))
    rng = np.random.default_rng(2)
    np.savez(d / "events.npz", x=rng.integers(0, 4, 50), y=rng.integers(0, 3, 50), p=rng.integers(0, 1, 50),
             t=np.sort(rng.integers(0, 20_000, 50)))
    model = gesture_net()
    save_checkpoint(d / "ck.pt", model, torch.optim.Adam(model.parameters()), 1, [{"epoch": 1, "loss": 0.5}],
                    dict(epochs=1, batch_size=11, lr=2e-3, loss="mse_count", seed=0, ticks=20, data=str(d),
                         synthetic=1, qat_bits=None, qat_percentile=None))
    return d


@pytest.fixture(autouse=True)
def small_machine(monkeypatch):
    monkeypatch.setattr(emu.resources, "available_bytes", lambda: 2 << 30)


def _network(valid):
    return from_nir(read_nir(valid / "m.nir"))


def _events_network():
    """A (polarity 1, 3 x 4) input for the event file."""
    import nir

    return from_nir(nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([1, 3, 4])}),
        "fc": nir.Linear(weight=np.ones((2, 12))),
        "lif": nir.LIF(tau=np.full(2, 0.02), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2),
                       v_reset=np.zeros(2))},
        edges=[("input", "fc"), ("fc", "lif")], metadata={"dt": 1e-3}, type_check=False))


#: every reader: the valid file it starts from, and how it is read
READERS = {
    "profile": ("profile.json", lambda p, v: load_profile_file(p)),
    "recording json": ("rec.json", lambda p, v: load_recording(p)),
    "recording npz": ("rec.npz", lambda p, v: load_recording(p)),
    "manifest": ("chip.json", lambda p, v: load_chip_recording(p, options=dict(dt=1e-3, integrator="exponential",
                                                                               weight_scale="auto", conn_delay=1),
                                                               ticks=80, reset="subtract")),
    "snapshot": ("snapshot.npz", lambda p, v: _snapshot(p)),
    "sweep results": ("s.jsonl", lambda p, v: read_results(p)),
    "sweep data": ("data.npz", lambda p, v: load_data(str(p), None, None, p)),
    "checkpoint": ("ck.pt", lambda p, v: load_checkpoint(p)),
    "input npy": ("x.npy", lambda p, v: read_input(p, _network(v), dt=1e-3)),
    "input json": ("in.json", lambda p, v: read_input(p, _network(v), dt=1e-3)),
    "input events": ("events.npz", lambda p, v: read_input(p, _events_network(), dt=1e-3)),
}


def _snapshot(path):
    from emu.schema import SNAPSHOT, check

    rec = load_recording(path)
    check(rec.meta.get("snapshot", {}), SNAPSHOT.body, str(path), "meta.snapshot")
    return rec


def _reads_or_refuses(name, path, valid):
    try:
        READERS[name][1](path, valid)
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc).strip(), str(exc)


# --- bytes: truncation and flipped bits ------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(READERS))
@FUZZ
@given(data=st.data())
def test_truncated_or_flipped_files(valid, tmp_path_factory, name, data):
    raw = (valid / READERS[name][0]).read_bytes()
    how = data.draw(st.sampled_from(["truncate", "flip", "append"]))
    if how == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        buf = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(buf) - 1))
            buf[i] ^= 1 << data.draw(st.integers(0, 7))
        raw = bytes(buf)
    else:
        raw = raw + data.draw(st.binary(min_size=1, max_size=64))
    path = tmp_path_factory.mktemp("f") / READERS[name][0]
    path.write_bytes(raw)
    _reads_or_refuses(name, path, valid)


# --- JSON: a field of the wrong type, an extreme number, a field gone ----------------------------------------

HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.sampled_from([2**31, 2**63, -1, 0, 10**12]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8), st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(-3, 3), max_size=2))


def _paths(tree, prefix=()):
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree[:4]):
            yield from _paths(v, prefix + (i,))


def _mutated(tree, path, value, delete: bool):
    if not path:
        return value
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return tree


JSON_READERS = ["profile", "recording json", "manifest", "sweep results", "input json"]


@pytest.mark.parametrize("name", JSON_READERS)
@FUZZ
@given(data=st.data())
def test_json_fields_of_the_wrong_type_or_extreme_values(valid, tmp_path_factory, name, data):
    text = (valid / READERS[name][0]).read_text()
    lines = text.splitlines() if name == "sweep results" else [text]
    i = data.draw(st.integers(0, len(lines) - 1))
    tree = json.loads(lines[i])
    path = data.draw(st.sampled_from(list(_paths(tree))))
    lines[i] = json.dumps(_mutated(tree, path, data.draw(HOSTILE), data.draw(st.booleans())))
    target = tmp_path_factory.mktemp("j") / READERS[name][0]
    target.write_text("\n".join(lines) + "\n")
    _reads_or_refuses(name, target, valid)


# --- NPZ: an array of another dtype or shape, extreme values, an array gone -------------------------------------

ARRAYS = st.one_of(
    st.just(np.array([], np.int64)), st.just(np.array(["text"])), st.just(np.array(1.5)),
    st.just(np.array([[2**62, -2**62]])), st.just(np.full((2, 3), np.nan)), st.just(np.array([True, False])),
    st.just(np.arange(7, dtype=np.uint8).reshape(1, 7, 1)), st.just(np.array([-1, 10**9])),
    st.just(np.zeros((1, 2**10, 3), bool)))

NPZ_READERS = ["recording npz", "snapshot", "sweep data", "input events"]


@pytest.mark.parametrize("name", NPZ_READERS)
@FUZZ
@given(data=st.data())
def test_npz_arrays_of_another_dtype_or_shape(valid, tmp_path_factory, name, data):
    with np.load(valid / READERS[name][0]) as z:
        arrays = {k: z[k] for k in z.files}
    key = data.draw(st.sampled_from(sorted(arrays)))
    if data.draw(st.booleans()):
        arrays[key] = data.draw(ARRAYS)
    else:
        del arrays[key]
    target = tmp_path_factory.mktemp("n") / READERS[name][0]
    np.savez(target, **arrays)
    _reads_or_refuses(name, target, valid)


def test_the_valid_files_are_read(valid):
    for name in READERS:
        READERS[name][1](valid / READERS[name][0], valid)
    assert math.isfinite(load_profile_file(valid / "profile.json")["dt"])
    assert zipfile.is_zipfile(valid / "ck.pt")
