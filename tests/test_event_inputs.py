"""``--inputs`` of validate and attribute read DVS Gesture event files (tonic's layout, as
``s2emu demo`` writes its test split) as the demo reads them, labelled by their names."""
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from emu.apps.demo import MODEL
from emu.apps.gesture.data import SynthConfig, load_dvsgesture, write_synthetic_dataset
from emu.apps.gesture.event_files import find_event_files, label_of, read_event_file
from emu.cli import main
from emu.cli.samples import event_file_labels, input_files

TICKS = 40
CONV = ["--auto-scale", "--conn-delay", "0", "--ticks", str(TICKS)]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A test split as the demo writes one: one userNN_LIGHTING folder, 0.npy .. 10.npy."""
    root = tmp_path_factory.mktemp("demo") / "data"
    write_synthetic_dataset(root, n_train_per_class=0, n_test_per_class=1, seed=5,
                            config=SynthConfig(duration_ms=TICKS + 20))
    return root


def test_every_folder_of_the_layout_names_the_test_split_files(root):
    split = root / "DVSGesture" / "ibmGestureTest"
    user = next(split.iterdir())
    files = find_event_files(root)
    assert [f.name for f in files] == [f"{k}.npy" for k in range(11)]  # by label, not by name
    assert find_event_files(root / "DVSGesture") == files == find_event_files(split) == find_event_files(user)
    assert find_event_files(user / "3.npy") == [user / "3.npy"] and label_of(user / "3.npy") == 3
    assert input_files(root) == files and list(event_file_labels(files)) == list(range(11))
    assert find_event_files(root.parent) == [] and event_file_labels([root / "x.npz"]) is None


def test_frames_are_the_demos(root):
    """Each file's frames are what the demo's reader (tonic's DVSGesture and the paper's transforms) gives."""
    demo = load_dvsgesture(root, train=False, ticks=TICKS, cache=False)
    assert len(demo) == 11
    for path, (frames, label) in zip(map(Path, demo.source.data), demo):
        mine = read_event_file(path, 1e-3, TICKS)
        assert mine.shape == (TICKS, 2, 32, 32) and mine.dtype == bool
        np.testing.assert_array_equal(mine, frames > 0, err_msg=str(path))
        assert label_of(path) == label
    assert read_event_file(find_event_files(root)[0], 1e-3).shape[0] == 300  # the demo's window unless told


def test_validate_and_attribute_read_the_demos_files(root, tmp_path, capsys):
    assert main(["validate", str(MODEL), "--inputs", str(root), "--report", str(tmp_path / "v.html"),
                 "--out", str(tmp_path / "vs.json")] + CONV) == 0
    summary = json.loads((tmp_path / "vs.json").read_text())
    assert [(s["name"], s["ticks"]) for s in summary["samples"]] == [(f"user24_fluorescent/{k}.npy", TICKS)
                                                                     for k in range(11)]
    assert main(["attribute", str(MODEL), "--inputs", str(root), "--report", str(tmp_path / "a.html"),
                 "--out", str(tmp_path / "as.json")] + CONV) == 0
    assert "labels from the DVS Gesture file names" in capsys.readouterr().err
    attribution = json.loads((tmp_path / "as.json").read_text())
    accuracy = attribution["source"]["accuracy"]  # labels came with the files
    assert attribution["n_samples"] == 11 and isinstance(accuracy, float) and math.isfinite(accuracy)


def test_a_model_without_the_frames_input_is_one_line(root, tmp_path, capsys):
    example = MODEL.parents[1] / "examples" / "conv_net.nir"  # input 2 x 16 x 16
    assert main(["validate", str(example), "--inputs", str(root), "--report", str(tmp_path / "v.html")] + CONV) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "0.npy: a DVS Gesture event file becomes (2, 32, 32) frames" in err[0], err


def test_a_broken_event_file_is_one_line(root, tmp_path, capsys):
    copy = tmp_path / "data"
    shutil.copytree(root, copy)
    bad = find_event_files(copy)[2]
    np.save(bad, np.zeros((5, 3), np.int64))
    assert main(["validate", str(MODEL), "--inputs", str(copy), "--report", str(tmp_path / "v.html")] + CONV) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "reading inputs" not in line]
    assert len(err) == 1 and err[0].startswith(f"s2emu validate: error: {bad}: expected a numeric (N, 4) array"), err
