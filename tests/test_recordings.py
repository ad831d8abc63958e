"""Spike files (emu.spike_io, emu.spike_dicts): round trips, every layout, every bad input."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu.spike_dicts import from_spike_dict as recording_from_spike_dict
from emu.spike_io import load_recording, save_recording
from emu.spikes import UNNAMED, Recording, RecordingError


def _random_recording(seed: int, with_v: bool = True) -> Recording:
    rng = np.random.default_rng(seed)
    t = int(rng.integers(1, 40))
    spikes = {name: rng.random((t, int(rng.integers(1, 6)))) < 0.2 for name in ("input", "lif1")}
    spikes["lif1"][-1] = False  # a silent last tick must survive the round trip
    v = {}
    if with_v:
        v["lif1"] = rng.normal(size=spikes["lif1"].shape) * 100
        v["lif1"][0, 0] = np.nan  # not recorded
    return Recording.from_rasters(spikes, v=v, meta={"dt": 1e-4, "profile": "chip"}, source="mem")


def _assert_same(rec: Recording, back: Recording) -> None:
    assert back.populations == rec.populations
    for name in rec.populations:
        assert back.raster(name, 0).dtype == bool
        np.testing.assert_array_equal(back.raster(name, 0), rec.raster(name, 0))
    assert set(back.v) == set(rec.v)
    for name in rec.v:
        np.testing.assert_array_equal(back.v[name], rec.v[name])  # NaN == NaN here, values bit-exact
        assert back.v[name].shape == (1, rec.ticks, rec.sizes[name])
    assert back.meta == {**rec.meta, "ticks": rec.ticks}


@pytest.mark.parametrize("suffix", [".json", ".npz"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_save_load_round_trip(tmp_path, suffix, seed):
    rec = _random_recording(seed)
    path = tmp_path / f"rec{suffix}"
    save_recording(rec, path)
    back = load_recording(path)
    assert back.source == str(path)
    _assert_same(rec, back)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_round_trip_selects_a_population(tmp_path, suffix):
    rec = _random_recording(3)
    path = tmp_path / f"rec{suffix}"
    save_recording(rec, path)
    back = load_recording(path, population="lif1")
    assert back.populations == ["lif1"]
    np.testing.assert_array_equal(back.raster("lif1", 0), rec.raster("lif1", 0))
    np.testing.assert_array_equal(back.v["lif1"], rec.v["lif1"])


def test_json_layout_is_the_emulator_layout(tmp_path):
    rec = Recording.from_rasters({"pop": np.array([[1, 0], [0, 0], [1, 1]], dtype=bool)}, source="mem")
    path = tmp_path / "r.json"
    save_recording(rec, path)
    data = json.loads(path.read_text())
    assert data == {
        "format": "s2emu-recording",
        "version": 1,
        "populations": {"pop": {"size": 2, "shape": [2], "spikes": {"0": [0, 2], "1": [2]}}},
        "meta": {"ticks": 3},
    }


def test_files_carry_a_format_version_and_readers_refuse_unknown_ones(tmp_path):
    rec = Recording.from_rasters({"pop": np.eye(3, dtype=bool)})
    for suffix in (".json", ".npz"):
        save_recording(rec, tmp_path / f"r{suffix}")
    assert load_recording(tmp_path / "r.npz").meta["ticks"] == 3
    data = json.loads((tmp_path / "r.json").read_text())
    data["version"] = 7
    (tmp_path / "new.json").write_text(json.dumps(data))
    with pytest.raises(RecordingError, match="new.json: version: format version 7 is not one this spinnaker2-emu reads"):
        load_recording(tmp_path / "new.json")
    data["format"] = "something-else"
    (tmp_path / "other.json").write_text(json.dumps(data))
    with pytest.raises(RecordingError, match="is not a spinnaker2-emu recording"):
        load_recording(tmp_path / "other.json")


def test_version_0_npz_rasters_still_read(tmp_path):
    path = tmp_path / "old.npz"
    np.savez(path, **{"a/spikes": np.eye(3, dtype=bool), "a/v": np.ones((3, 3)), "meta": np.array('{"ticks": 3}')})
    rec = load_recording(path)
    assert rec.raster("a", 0).tolist() == np.eye(3, dtype=bool).tolist() and rec.v["a"].shape == (1, 3, 3)


def test_npz_keeps_a_batch_compact_with_shapes_and_voltages(tmp_path):
    rng = np.random.default_rng(1)
    spikes = {"in": rng.random((3, 20, 8)) < 0.3, "conv": rng.random((3, 20, 12)) < 0.1}
    v = {"conv": rng.normal(size=(3, 20, 12)).astype(np.float32)}
    rec = Recording.from_rasters(spikes, shapes={"conv": (3, 2, 2)}, v=v, meta={"dt": 1e-3})
    save_recording(rec, tmp_path / "batch.npz")
    back = load_recording(tmp_path / "batch.npz")
    assert back.batch == 3 and back.shapes == {"in": (8,), "conv": (3, 2, 2)}
    for name in spikes:
        assert np.array_equal(back.raster(name), spikes[name])
    assert back.v["conv"].dtype == np.float32 and np.array_equal(back.v["conv"], v["conv"])
    with pytest.raises(RecordingError, match="a JSON recording holds one sample"):
        save_recording(rec, tmp_path / "batch.json")


def test_emulator_json_with_voltages(tmp_path):
    path = tmp_path / "emu.json"
    path.write_text(
        json.dumps(
            {
                "populations": {"lif": {"spikes": {"0": [1], "2": []}, "v": {"0": [0.5, 0.0, 0.25], "1": [1, 2, None]}}},
                "meta": {"ticks": 3},
            }
        )
    )
    rec = load_recording(path)
    assert rec.sizes == {"lif": 3} and rec.ticks == 3
    np.testing.assert_array_equal(rec.raster("lif", 0)[:, 0], [False, True, False])
    np.testing.assert_array_equal(rec.v["lif"][0][:, 0], [0.5, 0.0, 0.25])
    np.testing.assert_array_equal(rec.v["lif"][0][:, 1], [1.0, 2.0, np.nan])
    assert np.isnan(rec.v["lif"][0][:, 2]).all()


def test_py_spinnaker2_flat_dict_from_json(tmp_path):
    path = tmp_path / "flat.json"
    path.write_text(json.dumps({"0": [1, 4], "1": [], "3": [0]}))
    rec = load_recording(path)
    assert rec.unnamed and rec.ticks == 5 and rec.sizes == {UNNAMED: 4}
    assert np.argwhere(rec.raster(UNNAMED, 0)).tolist() == [[0, 3], [1, 0], [4, 0]]
    longer = load_recording(path, population="lif1", ticks=10, sizes=6)
    assert longer.populations == ["lif1"] and longer.raster("lif1", 0).shape == (10, 6)


def test_py_spinnaker2_nested_dict_and_pickles(tmp_path):
    nested = {"in": {0: [0, 2]}, "out": {0: [], 1: [3]}}
    (tmp_path / "nested.pkl").write_bytes(pickle.dumps(nested))
    (tmp_path / "nested.json").write_text(json.dumps(nested))
    for name in ("nested.pkl", "nested.json"):
        rec = load_recording(tmp_path / name)
        assert rec.populations == ["in", "out"] and rec.ticks == 4 and rec.sizes == {"in": 1, "out": 2}
        assert rec.raster("out", 0)[3, 1] and rec.raster("out", 0).sum() == 1
    (tmp_path / "flat.pickle").write_bytes(pickle.dumps({2: np.array([1, 0])}))
    assert load_recording(tmp_path / "flat.pickle").raster(UNNAMED, 0).shape == (2, 3)
    raster = np.eye(3, dtype=np.int64)
    (tmp_path / "raster.pkl").write_bytes(pickle.dumps(raster))
    np.testing.assert_array_equal(load_recording(tmp_path / "raster.pkl").raster(UNNAMED, 0), raster == 1)


def test_recording_from_spike_dict_with_voltages_and_meta():
    rec = recording_from_spike_dict({"h": {0: [2]}}, v={"h": {0: [0.1, 0.2, 0.3, 0.4]}}, meta={"run_ticks": 4})
    assert rec.ticks == 4 and rec.meta == {"run_ticks": 4}
    np.testing.assert_array_equal(rec.v["h"][0][:, 0], [0.1, 0.2, 0.3, 0.4])


def test_npy_rasters_int_bool_and_float(tmp_path):
    for dtype in (np.int64, bool, np.float32):
        path = tmp_path / f"r_{np.dtype(dtype).name}.npy"
        np.save(path, np.array([[0, 1], [1, 0]], dtype=dtype))
        rec = load_recording(path)
        assert rec.unnamed and rec.raster(UNNAMED, 0).tolist() == [[False, True], [True, False]]


# --- bad inputs: (file name, bytes or writer, load kwargs, words the message must contain) -------------


def _npz_bytes(**arrays) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _npy_bytes(arr) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


BAD_INPUTS = [
    ("trunc.json", b'{"populations": {"a": {"spikes": {"0": [1, 2', {}, "cannot read"),
    ("trunc.npz", _npz_bytes(**{"a/spikes": np.ones((50, 50), bool)})[:200], {}, "cannot read"),
    ("trunc.npy", _npy_bytes(np.ones((50, 50)))[:100], {}, "cannot read"),
    ("trunc.pkl", pickle.dumps({0: [1, 2, 3]})[:-4], {}, "cannot read"),
    ("spikes.txt", b"0 1\n1 0\n", {}, "unknown format"),
    ("list.json", b"[[0, 1], [1, 0]]", {}, "unknown format"),
    ("mixed.json", b'{"a": {"0": [1]}, "1": [2]}', {}, "unknown format"),
    ("field.json", b'{"populations": {"a": {"spikes": {}}}, "meta": {}, "extra": 1}', {}, "unknown field 'extra'"),
    ("popfield.json", b'{"populations": {"a": {"spikes": {}, "volts": {}}}}', {}, "unknown field 'volts'"),
    ("odd.npz", _npz_bytes(raster=np.ones((2, 2))), {}, "unknown format: array 'raster'"),
    ("negative.json", b'{"0": [3, -1]}', {}, "negative tick -1"),
    ("float.json", b'{"0": [1.5]}', {}, "ticks must be integers"),
    ("twice.json", b'{"0": [2, 2]}', {}, "listed twice"),
    ("key.json", b'{"zero": [1]}', {}, "non-integer neuron key 'zero'"),
    ("negkey.json", b'{"-2": [1]}', {}, "negative neuron index"),
    ("late.json", b'{"populations": {"p": {"spikes": {"0": [5]}}}, "meta": {"ticks": 3}}', {}, "tick 5 >= ticks 3"),
    ("late2.json", b'{"0": [5]}', {"ticks": 3}, "tick 5 >= ticks 3"),
    ("big.json", b'{"5": [1]}', {"sizes": 2}, "neuron 5 >= size 2"),
    ("bigpop.json", b'{"populations": {"p": {"size": 2, "spikes": {"4": [1]}}}}', {}, "neuron 4 >= size 2"),
    ("vlen.json", b'{"populations": {"p": {"spikes": {"0": [1]}, "v": {"0": [1, 2, 3]}}}}', {"ticks": 2}, "v['0']"),
    ("empty.json", b"{}", {}, "empty recording"),
    ("silent.json", b'{"0": [], "1": []}', {}, "empty recording"),
    ("nopops.json", b'{"populations": {}}', {}, "empty recording"),
    ("empty.npz", _npz_bytes(meta=np.array("{}")), {}, "empty recording"),
    ("empty.npy", _npy_bytes(np.zeros((0, 4))), {}, "empty recording"),
    ("who.json", b'{"a": {"0": [1]}, "b": {"0": [2]}}', {"population": "c"}, "unknown population 'c'"),
    ("who.npz", _npz_bytes(**{"a/spikes": np.ones((2, 2), bool)}), {"population": "c"}, "unknown population 'c'"),
    ("flat.npy", _npy_bytes(np.array([0, 1, 1])), {}, "2-D"),
    ("cube.npy", _npy_bytes(np.zeros((2, 2, 2))), {}, "2-D"),
    ("two.npy", _npy_bytes(np.array([[0, 2], [1, 0]])), {}, "0 or 1, got 2"),
    ("half.npy", _npy_bytes(np.array([[0, 0.5]])), {}, "0 or 1"),
    ("nan.npy", _npy_bytes(np.array([[0, np.nan]])), {}, "0 or 1"),
    ("str.npy", _npy_bytes(np.array([["a"]])), {}, "0/1 numbers"),
    ("values.npz", _npz_bytes(**{"a/spikes": np.array([[3, 0]])}), {}, "a/spikes: raster values must be 0 or 1"),
    ("shape.npy", _npy_bytes(np.ones((3, 2))), {"ticks": 4}, "expected 4"),
    ("size.npy", _npy_bytes(np.ones((3, 2))), {"sizes": 5}, "expected 5"),
    ("metaticks.npz", _npz_bytes(**{"a/spikes": np.ones((3, 2))}, meta=np.array('{"ticks": 7}')), {}, "meta"),
]


@pytest.mark.parametrize("name, content, kwargs, words", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_names_the_file_and_the_problem(tmp_path, name, content, kwargs, words):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(RecordingError) as info:
        load_recording(path, **kwargs)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert words in message, message


def test_missing_file(tmp_path):
    with pytest.raises(RecordingError, match="nothere.json: no such file"):
        load_recording(tmp_path / "nothere.json")


def test_recording_checks_its_arrays():
    with pytest.raises(RecordingError, match="different numbers of ticks"):
        Recording.from_rasters({"a": np.zeros((3, 1)), "b": np.zeros((4, 1))})
    with pytest.raises(RecordingError, match="shape"):
        Recording.from_rasters({"a": np.zeros((3, 1))}, v={"a": np.zeros((3, 2))})
    with pytest.raises(RecordingError, match="no spikes entry"):
        Recording.from_rasters({"a": np.zeros((3, 1))}, v={"b": np.zeros((3, 1))})


def test_save_rejects_unknown_suffix_and_bad_meta(tmp_path):
    rec = Recording.from_rasters({"a": np.ones((2, 2))}, meta={"when": object()})
    with pytest.raises(RecordingError, match="r.npz: cannot write JSON"):
        save_recording(rec, tmp_path / "r.npz")
    with pytest.raises(RecordingError, match="unknown format"):
        save_recording(rec, tmp_path / "r.csv")
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=100)
@given(st.data())
def test_shifted_moves_each_population_back_spike_by_spike(data):
    """Recording.shifted (on the spike lists) equals the definition on rasters: population p's
    raster[:, s_p : s_p + ticks], zero-padded; voltages likewise, NaN-padded."""
    b, t = data.draw(st.integers(1, 3)), data.draw(st.integers(2, 20))
    sizes = data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    rasters = {f"p{i}": rng.random((b, t, n)) < 0.3 for i, n in enumerate(sizes)}
    volts = {k: rng.random(r.shape) for k, r in rasters.items() if rng.random() < 0.5}
    rec = Recording.from_rasters(rasters, v=volts)
    shifts = {k: data.draw(st.integers(0, t - 1)) for k in rasters}
    ticks = data.draw(st.integers(1, t + 2))
    out = rec.shifted(shifts, ticks)
    assert out.ticks == ticks and out.meta["shifts"] == shifts
    for k, r in rasters.items():
        want = np.zeros((b, ticks, r.shape[2]), bool)
        part = r[:, shifts[k]:shifts[k] + ticks]
        want[:, :part.shape[1]] = part
        assert np.array_equal(out.raster(k), want)
        if k in volts:
            v = np.full((b, ticks, r.shape[2]), np.nan)
            cut = volts[k][:, shifts[k]:shifts[k] + ticks]
            v[:, :cut.shape[1]] = cut
            assert np.array_equal(out.v[k], v, equal_nan=True)
    again = Recording.from_rasters({k: out.raster(k) for k in rasters})
    assert all(np.array_equal(x, y) for x, y in zip(out.neurons, again.neurons))  # spike order as from rasters


def test_stack_keeps_every_sample_and_pads_the_shorter_ones():
    rng = np.random.default_rng(3)
    a = Recording.from_rasters({"p": rng.random((2, 7, 3)) < 0.4, "q": rng.random((2, 7, 2)) < 0.4},
                               v={"p": rng.random((2, 7, 3))})
    b = Recording.from_rasters({"p": rng.random((1, 4, 3)) < 0.4, "q": rng.random((1, 4, 2)) < 0.4})
    s = Recording.stack([a, b])
    assert s.batch == 3 and s.ticks == 7
    for name in ("p", "q"):
        assert np.array_equal(s.raster(name)[:2], a.raster(name))
        assert np.array_equal(s.raster(name)[2, :4], b.raster(name)[0]) and not s.raster(name)[2, 4:].any()
    assert np.array_equal(s.v["p"][:2], a.v["p"]) and np.isnan(s.v["p"][2]).all()
    with pytest.raises(RecordingError, match="different populations"):
        Recording.stack([a, Recording.from_rasters({"p": np.zeros((5, 3), bool)})])


@settings(max_examples=80)
@given(st.data())
def test_spike_keys_are_the_raster_cells_that_spike(data):
    b, t = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 15))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    rasters = {"p": rng.random((b, t, 3)) < 0.3, "q": rng.random((b, t, 4)) < 0.3, "r": rng.random((b, t, 2)) < 0.3}
    made = Recording.from_rasters(rasters)
    # a tick's spikes in any order (the engine's order is not the neurons'); "q" the network's input
    neurons = []
    for s in range(b):
        ticks, nr = made.events(s)
        nr = nr.copy()
        for tick in np.unique(ticks):
            at = np.flatnonzero(ticks == tick)
            nr[at] = nr[rng.permutation(at)]
        neurons.append(nr)
    rec = Recording(made.shapes, t, neurons, made.tick_end, meta=dict(inputs=["q"]))
    whole = data.draw(st.booleans())
    samples = None if whole else data.draw(st.lists(st.integers(0, b - 1), min_size=1, max_size=b, unique=True))
    shift, ticks = (0, t) if whole else (data.draw(st.integers(0, t + 1)), data.draw(st.integers(0, t + 2)))
    for name in data.draw(st.permutations(list(rasters))):  # asked in any order, the input's keys too
        r = rasters[name]
        part = r[samples if samples is not None else slice(None), shift:shift + ticks]
        want = np.zeros((part.shape[0], ticks, r.shape[2]), bool)
        want[:, :part.shape[1]] = part
        got = rec.spike_keys(name, shift, None if whole else ticks, samples)
        assert np.array_equal(got, np.flatnonzero(want.ravel()))
