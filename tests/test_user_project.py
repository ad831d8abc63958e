"""A user's project, run as a user runs it: the package installed, a fresh folder outside this
repository, pytest with the plugin its entry point loads (and, with plugin autoloading off,
``-p s2emu``). The user trains a small snnTorch net for a few steps, exports it with
emu.export.from_snntorch, pins the chip's spikes with chip_snapshot and checks the chip's
accuracy against the float model with assert_accuracy_within (docs/testing.md)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from emu.spike_io import load_recording

REPO = Path(__file__).resolve().parents[1]

TRAIN = '''"""Train a small snnTorch net on three spike-rate patterns and export it to NIR (a user's script)."""
import numpy as np
import snntorch as snn
from snntorch import utils
import torch
from torch import nn

from emu.export import from_snntorch, write_nir

DT, TICKS, N_IN, CLASSES = 1e-3, 40, 24, 3
torch.manual_seed(0)
rng = np.random.default_rng(0)


def samples(n):
    """Class c fires input neurons 8c..8c+7 at 15 %, the rest at 4 %."""
    y = rng.integers(0, CLASSES, n)
    rate = np.full((n, 1, N_IN), 0.04)
    for i, c in enumerate(y):
        rate[i, 0, 8 * c:8 * c + 8] = 0.15
    return (rng.random((n, TICKS, N_IN)) < rate).astype(np.float32), y


net = nn.Sequential(nn.Linear(N_IN, 16), snn.Leaky(beta=0.9, init_hidden=True),
                    nn.Linear(16, CLASSES), snn.Leaky(beta=0.9, init_hidden=True))


def counts(x):
    utils.reset(net)
    return torch.stack([net(x[:, t]) for t in range(x.shape[1])], 1).sum(1)


x_train, y_train = samples(96)
opt = torch.optim.Adam(net.parameters(), lr=2e-2)
for step in range(25):
    loss = nn.functional.cross_entropy(counts(torch.from_numpy(x_train)), torch.from_numpy(y_train))
    opt.zero_grad()
    loss.backward()
    opt.step()
x_test, y_test = samples(60)
with torch.no_grad():
    acc = (counts(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
print(f"loss {loss.item():.3f}, snnTorch test accuracy {acc:.3f}")
write_nir(from_snntorch(net, torch.from_numpy(x_test[:, 0]), dt=DT), "model.nir")
np.savez("samples.npz", x=x_test.astype(bool), y=y_test, snntorch_accuracy=acc)
'''

TESTS = '''"""My model on the emulated SpiNNaker2."""
import numpy as np

from emu.testing import assert_accuracy_within

SAMPLES = np.load("samples.npz")
CHIP = dict(weight_scale="auto")  # the conversion I deploy with


def test_chip_spikes_unchanged(chip_snapshot):
    run = chip_snapshot("model.nir", SAMPLES["x"][:4], **CHIP)
    assert run.batch == 4


def test_chip_accuracy_close_to_float():
    runs = assert_accuracy_within("model.nir", SAMPLES["x"], SAMPLES["y"], dt=None, max_drop=0.05, **CHIP)
    # the exported graph is the trained net: the float reference classifies as snnTorch did
    assert runs.accuracies(SAMPLES["y"])[0] == float(SAMPLES["snntorch_accuracy"])
'''


def _run(project, *args, env=None):
    done = subprocess.run([sys.executable, *args], cwd=project, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1", **(env or {})))
    return done.returncode, done.stdout + done.stderr


def test_a_user_trains_exports_snapshots_and_checks_accuracy(tmp_path):
    project = tmp_path / "my-snn"
    (project / "tests").mkdir(parents=True)
    assert REPO not in project.parents
    (project / "train.py").write_text(TRAIN)
    (project / "tests" / "test_chip.py").write_text(TESTS)
    rc, out = _run(project, "train.py")
    assert rc == 0 and "snnTorch test accuracy" in out, out
    with np.load(project / "samples.npz") as samples:
        assert samples["x"].shape == (60, 40, 24) and samples["snntorch_accuracy"] > 0.5

    pytest = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    rc, out = _run(project, *pytest)
    assert rc == 1 and "1 failed, 1 passed" in out and "no chip snapshot at" in out, out
    rc, out = _run(project, *pytest, "--s2emu-snapshot-update")
    assert rc == 0 and "2 passed" in out and "stale" not in out, out
    snapshot = project / "tests" / "__snapshots__" / "test_chip" / "test_chip_spikes_unchanged.npz"
    pinned = load_recording(snapshot)
    assert pinned.batch == 4 and sum(map(len, pinned.neurons)) > 0  # the chip spikes
    rc, out = _run(project, *pytest)  # again: the chip still does what the snapshot pinned
    assert rc == 0 and "2 passed" in out, out
    rc, out = _run(project, *pytest, "-p", "s2emu", env=dict(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert rc == 0 and "2 passed" in out, out
