"""Input files, output files and the s2emu run command, including every bad-input path."""
import json

import nir
import numpy as np
import pytest

from emu.cli import main
from emu.engine import Emulator
from emu.inputs import InputError
from emu.spike_io import InputFileError, load_recording, read_input
from emu.network import Network, Population, Projection
from emu.nir_import import ConversionOptions, from_nir

RNG = np.random.default_rng(1)


def dvs_graph():
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2, 8, 8])}),
            "conv": nir.Conv2d(input_shape=(8, 8), weight=RNG.normal(size=(3, 2, 3, 3)), stride=2, padding=1,
                               dilation=1, groups=1, bias=np.zeros(3)),
            "lif": nir.LIF(tau=np.full((3, 4, 4), 0.01), r=np.ones((3, 4, 4)), v_leak=np.zeros((3, 4, 4)),
                           v_threshold=np.full((3, 4, 4), 0.2), v_reset=np.zeros((3, 4, 4))),
        },
        edges=[("input", "conv"), ("conv", "lif")],
        type_check=False,
    )


@pytest.fixture
def dvs(tmp_path):
    path = tmp_path / "dvs.nir"
    nir.write(str(path), dvs_graph())
    return path


def events(n=400, t_max=50_000, seed=0):
    rng = np.random.default_rng(seed)
    return dict(x=rng.integers(0, 8, n), y=rng.integers(0, 8, n), p=rng.integers(0, 2, n),
                t=np.sort(rng.integers(0, t_max, n)))


def test_events_binned_like_by_hand(tmp_path, dvs):
    ev = events()
    np.savez(tmp_path / "ev.npz", **ev)
    net = from_nir(dvs, ConversionOptions(dt=1.0, conn_delay=0))
    rasters, info = read_input(tmp_path / "ev.npz", net, dt=1e-3)
    r = rasters["input"].reshape(-1, 2, 8, 8)
    by_hand = np.zeros((50, 2, 8, 8), bool)
    by_hand[ev["t"] // 1000, ev["p"], ev["y"], ev["x"]] = True
    assert np.array_equal(r, by_hand)
    assert info["merged_same_tick_events"] == 400 - by_hand.sum() > 0


def test_structured_npy_events(tmp_path, dvs):
    ev = events(50)
    arr = np.zeros(50, dtype=[("x", "<i2"), ("y", "<i2"), ("p", "<i2"), ("t", "<i8")])
    for k in "xypt":
        arr[k] = ev[k]
    np.save(tmp_path / "ev.npy", arr)
    net = from_nir(dvs, ConversionOptions(dt=1.0, conn_delay=0))
    rasters, _ = read_input(tmp_path / "ev.npy", net, dt=1e-3)
    assert rasters["input"].sum() == len({(t // 1000, p, y, x) for t, p, y, x in zip(ev["t"], ev["p"], ev["y"], ev["x"])})


def _small():
    net = Network()
    net.add(Population("in", (3,), "input"))
    net.add(Population("out", (2,), "lif", alpha=0.9, threshold=5))
    net.add(Projection("in", "out", np.full((2, 3), 3.0)))
    return net


@pytest.mark.parametrize("payload,ticks", [
    ({"0": [1, 4], "2": [0]}, 5),
    ({"in": {"0": [1, 4], "2": [0]}}, 5),
    ({"input_spike_ticks": {"0": [1, 4], "2": [0]}, "n_input_ticks": 9}, 9),
])
def test_spike_dict_layouts(tmp_path, payload, ticks):
    path = tmp_path / "in.json"
    path.write_text(json.dumps(payload))
    r = read_input(path, _small())[0]["in"]
    assert r.shape == (ticks, 3) and r[1, 0] and r[4, 0] and r[0, 2] and r.sum() == 3


@pytest.mark.parametrize("write,needle", [
    (lambda p: p.write_text('{"0": [1, -2]}'), "negative tick -2"),
    (lambda p: p.write_text('{"7": [1]}'), "neuron 7 >= size 3"),
    (lambda p: p.write_text('{"a": [1]}'), "non-integer neuron key 'a'"),
    (lambda p: p.write_text('{"0": [1.5]}'), "ticks must be integers"),
    (lambda p: p.write_text('{"0": [1, 2'), "unreadable input file"),
    (lambda p: p.write_text('[1, 2]'), "expected a JSON object"),
])
def test_bad_json_inputs(tmp_path, write, needle):
    path = tmp_path / "in.json"
    write(path)
    with pytest.raises(InputFileError) as err:
        read_input(path, _small())
    assert needle in str(err.value) and "in.json" in str(err.value)


def test_bad_raster_and_event_files(tmp_path, dvs):
    np.save(tmp_path / "r.npy", np.full((4, 3), 2))
    with pytest.raises(InputFileError, match="r.npy: field raster: raster values must be 0 or 1, got 2"):
        read_input(tmp_path / "r.npy", _small())
    np.savez(tmp_path / "r.npz", other=np.zeros((4, 3)), more=np.zeros((4, 3)))
    with pytest.raises(InputFileError, match="name no input population"):
        read_input(tmp_path / "r.npz", _small())
    net = from_nir(dvs, ConversionOptions(dt=1.0, conn_delay=0))
    ev = events()
    ev["x"][3] = 8
    np.savez(tmp_path / "ev.npz", **ev)
    with pytest.raises(InputFileError, match="field x: 1 events outside"):
        read_input(tmp_path / "ev.npz", net, dt=1e-3)
    with pytest.raises(InputFileError, match="needs the tick length"):
        read_input(tmp_path / "ev.npz", net)
    del ev["p"]
    np.savez(tmp_path / "nop.npz", **ev)
    with pytest.raises(InputFileError, match="nop.npz: event input needs the fields x, y, p, t; field p is missing"):
        read_input(tmp_path / "nop.npz", net, dt=1e-3)
    np.savez(tmp_path / "empty.npz", **{f: np.zeros(0, np.int64) for f in "xypt"})
    with pytest.raises(InputFileError, match="empty.npz: no events, so the number of ticks is unknown"):
        read_input(tmp_path / "empty.npz", net, dt=1e-3)
    assert read_input(tmp_path / "empty.npz", net, dt=1e-3, ticks=5)[0]["input"].shape == (5, 2 * 8 * 8)
    (tmp_path / "trunc.npy").write_bytes(b"\x93NUMPY\x01\x00")
    with pytest.raises(InputFileError, match="trunc.npy: unreadable"):
        read_input(tmp_path / "trunc.npy", _small())


def test_emulator_input_errors():
    emu = Emulator(_small())
    with pytest.raises(InputError, match="does not fit population shape"):
        emu(np.zeros((5, 4)))
    with pytest.raises(InputError, match="spikes at or after tick 3"):
        emu(np.ones((5, 3)), ticks=3)
    with pytest.raises(InputError, match="unknown population"):
        emu({"nope": np.zeros((5, 3))})
    res = emu(np.ones((2, 3)), ticks=6)  # shorter input: padded with silence
    assert res.ticks == 6


def test_run_command_outputs_and_errors(tmp_path, dvs, capsys):
    np.savez(tmp_path / "ev.npz", **events())
    out = tmp_path / "out.json"
    rc = main(["run", str(dvs), "--input", str(tmp_path / "ev.npz"), "--dt", "1e-3", "--conn-delay", "0",
               "--auto-scale", "--record", "spikes,v", "--out", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert set(doc["populations"]) == {"input", "lif"}
    assert len(doc["populations"]["lif"]["v"]["0"]) == 50
    assert doc["meta"]["conversion"]["conn_delay"] == 0 and doc["meta"]["profile"]["arithmetic"] == "chip"
    assert "merged" in capsys.readouterr().err
    # the npz form holds the same spikes
    npz = tmp_path / "out.npz"
    assert main(["run", str(dvs), "--input", str(tmp_path / "ev.npz"), "--dt", "1e-3", "--conn-delay", "0",
                 "--auto-scale", "--out", str(npz)]) == 0
    back = load_recording(npz)
    r = back.raster("lif", 0)
    assert back.shapes["lif"] == (3, 4, 4)
    for k, ticks in doc["populations"]["lif"]["spikes"].items():
        assert np.flatnonzero(r[:, int(k)]).tolist() == ticks
    # conv with an extra delay (the converter's default for dense graphs) is rejected, in one line
    rc = main(["run", str(dvs), "--input", str(tmp_path / "ev.npz"), "--dt", "1e-3", "--conn-delay", "1",
               "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and err.startswith("s2emu run: error:") and "--conn-delay 0" in err and "Traceback" not in err
    rc = main(["run", str(dvs), "--input", str(tmp_path / "ev.npz"), "--dt", "1e-3", "--conn-delay", "0",
               "--scale", "1000", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "weights are outside [-127, 127]" in err
    assert main(["run", str(dvs), "--input", str(tmp_path / "ev.npz"), "--dt", "1e-3", "--conn-delay", "0",
                 "--scale", "1000", "--saturate-weights", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["meta"]["clipped_weights"]["conv"] > 0
