"""Synthetic DVS-gesture events, tonic's on-disk layout and the frame reader."""
import numpy as np
import pytest
import tonic

from emu.apps.gesture.data import (
    CLASSES, DVSGesture, DatasetLayoutError, FrameWindow, SynthConfig, event_transform,
    generate_events, load_dvsgesture, write_events, write_synthetic_dataset)

SHORT = SynthConfig(duration_ms=100)


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("dvs")
    write_synthetic_dataset(root, n_train_per_class=2, n_test_per_class=1, seed=7, config=SHORT)
    return root


def test_events_have_tonic_dtype_and_are_reproducible():
    events = generate_events(3, seed=(1, 2), config=SHORT)
    assert events.dtype == tonic.datasets.DVSGesture.dtype
    assert np.array_equal(events, generate_events(3, seed=(1, 2), config=SHORT))
    assert not np.array_equal(events, generate_events(3, seed=(1, 3), config=SHORT))
    assert np.all(np.diff(events["t"]) >= 0) and np.all(events["t"] % 1000 == 0)
    assert events["t"].max() < SHORT.duration_ms * 1000
    assert 0 <= events["x"].min() and events["x"].max() < 128
    assert 0 <= events["y"].min() and events["y"].max() < 128
    assert 0 < events["p"].mean() < 1


def test_on_events_lead_a_moving_blob():
    """A waving hand: ON events lie ahead of OFF events in the direction of motion."""
    config = SynthConfig(duration_ms=400, noise_rate_hz=0)
    for label in (1, 2):
        events = generate_events(label, seed=(0, label), config=config)
        window = events["t"] // 10_000
        keep = [w for w in np.unique(window)
                if min(np.sum((window == w) & events["p"]), np.sum((window == w) & ~events["p"])) > 5]
        centre = np.array([events["x"][window == w].mean() for w in keep])
        on = np.array([events["x"][(window == w) & events["p"]].mean() for w in keep])
        off = np.array([events["x"][(window == w) & ~events["p"]].mean() for w in keep])
        assert np.corrcoef(on - off, np.gradient(centre))[0, 1] > 0.3


def _rotation(events, window_ms=20):
    """Signed area swept by the ON-event centroid (> 0: clockwise on screen, y down)."""
    on = events[events["p"]]
    window = on["t"] // (window_ms * 1000)
    c = np.array([[on["x"][window == w].mean(), on["y"][window == w].mean()] for w in np.unique(window)])
    c -= c.mean(0)
    return np.sum(c[:-1, 0] * c[1:, 1] - c[:-1, 1] * c[1:, 0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classes_are_distinguishable(seed):
    config = SynthConfig(duration_ms=400)
    events = {label: generate_events(label, seed=(seed, label), config=config) for label in range(len(CLASSES))}
    mean_x = {label: ev["x"].mean() for label, ev in events.items()}
    # the subject's right hand is on the image's left
    assert max(mean_x[1], mean_x[3], mean_x[4]) < 64 < min(mean_x[2], mean_x[5], mean_x[6])
    assert _rotation(events[3]) > 0 and _rotation(events[5]) > 0  # clockwise
    assert _rotation(events[4]) < 0 and _rotation(events[6]) < 0  # counter-clockwise
    # a wave moves sideways: its events spread more in x than in y
    assert events[1]["x"].std() > events[1]["y"].std()


def test_written_files_load_through_tonic(dataset_root):
    base = dataset_root / "DVSGesture"
    assert sorted(p.name for p in (base / "ibmGestureTrain").iterdir()) == [
        "user01_fluorescent", "user01_fluorescent_led"]
    table = np.load(base / "ibmGestureTrain" / "user01_fluorescent" / "4.npy")
    assert table.shape[1] == 4 and table.dtype == np.int64
    train = DVSGesture(str(dataset_root), train=True)
    assert isinstance(train, tonic.datasets.DVSGesture)
    assert len(train) == 2 * len(CLASSES) and sorted(set(train.targets)) == list(range(len(CLASSES)))
    assert set(train.users) == {1} and set(train.lighting) == {"fluorescent", "fluorescent_led"}
    index = train.data.index(str(base / "ibmGestureTrain" / "user01_fluorescent_led" / "4.npy"))
    events, label = train[index]  # tonic's own __getitem__ (ms -> us, structured array)
    assert label == 4
    assert np.array_equal(events, generate_events(4, seed=(7, 0, 1, 4), config=SHORT))
    test = DVSGesture(str(dataset_root), train=False)
    assert len(test) == len(CLASSES) and set(test.users) == {24}


def test_frames_follow_the_tonic_pipeline_and_are_cached(dataset_root):
    frames_set = load_dvsgesture(dataset_root, train=True, ticks=60)
    frames, label = frames_set[0]
    assert frames.shape == (60, 2, 32, 32) and frames.dtype == np.float32
    assert set(np.unique(frames)) <= {0.0, 1.0} and frames.sum() > 0
    events, same_label = DVSGesture(str(dataset_root), train=True)[0]
    expected = FrameWindow(ticks=60)(event_transform()(events))
    assert label == same_label and np.array_equal(frames, expected)
    cache = list((dataset_root / "DVSGesture" / "cache").iterdir())
    assert len(cache) == 1 and "denoise10000_dt1000" in cache[0].name
    assert np.array_equal(load_dvsgesture(dataset_root, train=True, ticks=60)[0][0], frames)
    counts, _ = load_dvsgesture(dataset_root, train=True, ticks=60, spikes=False, cache=False)[0]
    assert np.array_equal(np.minimum(counts, 1), frames) and counts.max() >= 1


def test_frame_window_pads_cuts_and_handles_empty_samples():
    frames = np.full((5, 2, 32, 32), 3, dtype=np.int16)
    padded = FrameWindow(ticks=8)(frames)
    assert padded.shape == (8, 2, 32, 32) and padded[:5].min() == 1 and padded[5:].max() == 0
    assert FrameWindow(ticks=3, spikes=False)(frames).max() == 3
    empty = np.zeros(0, dtype=tonic.datasets.DVSGesture.dtype)
    assert FrameWindow(ticks=4)(empty).shape == (4, 2, 32, 32)


def test_layout_errors_name_the_path(tmp_path):
    with pytest.raises(DatasetLayoutError, match="ibmGestureTrain: no such folder"):
        DVSGesture(str(tmp_path), train=True)
    split = tmp_path / "DVSGesture" / "ibmGestureTrain"
    (split / "alice").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match="alice: folder name must be userNN_LIGHTING"):
        DVSGesture(str(tmp_path), train=True)
    (split / "alice").rmdir()
    user = split / "user03_led"
    user.mkdir()
    np.save(user / "gesture.npy", np.zeros((1, 4)))
    with pytest.raises(DatasetLayoutError, match="gesture.npy: event files must be named"):
        DVSGesture(str(tmp_path), train=True)
    (user / "gesture.npy").unlink()
    np.save(user / "2.npy", np.zeros((10, 3)))
    write_events(user / "5.npy", generate_events(5, seed=0, config=SHORT))
    dataset = DVSGesture(str(tmp_path), train=True)
    bad = dataset.data.index(str(user / "2.npy"))
    with pytest.raises(DatasetLayoutError, match=r"2.npy: expected a numeric \(N, 4\) array"):
        dataset[bad]
    (user / "2.npy").write_bytes(b"not numpy")
    with pytest.raises(DatasetLayoutError, match="2.npy: not a readable .npy file"):
        dataset[bad]
    dataset[1 - bad]  # the good file still loads


def test_an_interrupted_synthetic_write_leaves_nothing_and_a_marked_set_is_reused_only_as_made(tmp_path,
                                                                                            monkeypatch):
    """The demo's data cache: an interrupted run must not leave a partial set that the next run reuses."""
    import emu.apps.gesture.data as data

    calls = []

    def dies_at_the_third(label, seed, config):
        calls.append(label)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return generate_events(label, seed, config)

    monkeypatch.setattr(data, "generate_events", dies_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        data.ensure_synthetic_dataset(tmp_path, 0, 1, seed=3, config=SHORT, log=lambda s: None)
    assert list(tmp_path.iterdir()) == []  # neither DVSGesture nor the partial folder
    monkeypatch.undo()
    logs = []
    base = data.ensure_synthetic_dataset(tmp_path, 0, 1, seed=3, config=SHORT, log=logs.append)
    assert len(list((base / "ibmGestureTest").rglob("*.npy"))) == 11 and len(logs) == 1
    first = (base / "ibmGestureTest" / "user24_fluorescent" / "0.npy").stat().st_mtime_ns
    assert data.ensure_synthetic_dataset(tmp_path, 0, 1, seed=3, config=SHORT, log=logs.append) == base
    assert len(logs) == 1 and (base / "ibmGestureTest" / "user24_fluorescent" / "0.npy").stat().st_mtime_ns == first
    data.ensure_synthetic_dataset(tmp_path, 0, 1, seed=4, config=SHORT, log=logs.append)  # other settings
    assert "made with other settings" in logs[-1]
    (base / data.MARKER).unlink()  # not ours any more: refused, never reused or deleted
    with pytest.raises(DatasetLayoutError, match="without .synthetic.json"):
        data.ensure_synthetic_dataset(tmp_path, 0, 1, seed=4, config=SHORT)


def test_the_frame_cache_is_keyed_by_the_files_so_a_changed_file_is_not_served_stale(tmp_path):
    write_synthetic_dataset(tmp_path, n_train_per_class=0, n_test_per_class=1, seed=5, config=SHORT)
    cache = tmp_path / "cache"
    a = load_dvsgesture(tmp_path, train=False, ticks=50, cache_dir=cache)
    before = a[0][0].copy()  # read: now cached
    path = a.source.dataset.data[0]
    write_events(path, generate_events(5, seed=(9, 9), config=SHORT))  # another gesture in the same file
    b = load_dvsgesture(tmp_path, train=False, ticks=50, cache_dir=cache)
    assert len(list(cache.iterdir())) == 2  # a new cache folder for the changed files
    assert not np.array_equal(b[0][0], before)
    assert np.array_equal(load_dvsgesture(tmp_path, train=False, ticks=50, cache=False)[0][0], b[0][0])
    assert not list(cache.rglob("*.tmp"))


def test_the_compiled_denoise_keeps_tonic_s_events():
    """emu.apps.gesture.denoise.Denoise against tonic's own denoise_numpy: the same events kept, on
    random streams (clustered and isolated, integer and float times, edges of the frame) and on
    a synthetic gesture recording."""
    from tonic.functional.denoise import denoise_numpy

    from emu.apps.gesture.data import EVENT_DTYPE
    from emu.apps.gesture.denoise import Denoise

    rng = np.random.default_rng(7)
    for trial in range(30):
        n = int(rng.integers(1, 3000))
        ev = np.zeros(n, dtype=EVENT_DTYPE)
        ev["x"] = rng.integers(0, rng.integers(1, 20), n)
        ev["y"] = rng.integers(0, rng.integers(1, 20), n)
        ev["p"] = rng.integers(0, 2, n)
        ev["t"] = np.sort(rng.integers(0, int(rng.integers(1, 200_000)), n))
        for filter_time in (1, 5000, 10_000, 10_000.5):
            want = denoise_numpy(ev, filter_time=filter_time)
            got = Denoise(filter_time)(ev)
            assert np.array_equal(got, want), (trial, filter_time)
    empty = np.zeros(0, dtype=EVENT_DTYPE)
    assert Denoise()(empty).shape == (0,)


def test_the_compiled_denoise_keeps_tonic_s_events_of_a_gesture(tmp_path):
    from tonic.functional.denoise import denoise_numpy

    from emu.apps.gesture.data import SynthConfig, ensure_synthetic_dataset
    from emu.apps.gesture.denoise import Denoise

    root = ensure_synthetic_dataset(tmp_path, n_train_per_class=0, n_test_per_class=1, seed=3,
                                    config=SynthConfig(duration_ms=300), log=lambda s: None)
    files = sorted(root.rglob("*.npy"))[:3]
    assert files
    from numpy.lib.recfunctions import unstructured_to_structured

    from emu.apps.gesture.data import EVENT_DTYPE

    for f in files:
        table = np.load(f).astype(np.int64)
        table[:, 3] *= 1000  # ms on disk, us in tonic
        ev = unstructured_to_structured(table, EVENT_DTYPE)
        kept = Denoise(10_000)(ev)
        assert 0 < len(kept) < len(ev) and np.array_equal(kept, denoise_numpy(ev, filter_time=10_000))
