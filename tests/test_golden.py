"""The SpiNNaker2 reference trace in tests/data/lif_single, reproduced through `s2emu run`."""
import json

import numpy as np
import pytest

from conftest import GOLDEN
from emu.cli import main

LIF = GOLDEN / "lif_single"
# the conversion described in golden/README.md
CONVERSION = ["--dt", "1e-4", "--scale", "102.02", "--reset", "zero", "--integrator", "forward", "--conn-delay", "0"]


def _run(tmp_path, profile):
    out = tmp_path / f"{profile}.json"
    rc = main(["run", str(LIF / "lif_norse.nir"), "--input", str(LIF / "input_spikes.json"), "--ticks", "1001",
               *CONVERSION, "--profile", profile, "--record", "spikes,v", "--out", str(out)])
    assert rc == 0
    pop = json.loads(out.read_text())["populations"]["1"]
    v = np.array(pop["v"]["0"])
    spikes = np.zeros(1001, bool)
    spikes[pop["spikes"]["0"]] = True
    return v, spikes


@pytest.fixture(scope="module")
def golden():
    # row i: input at tick i, voltage/102.02 and spike at tick i+1
    return np.loadtxt(LIF / "lif_spinnaker2.csv", delimiter=",")


@pytest.mark.parametrize("profile,tol", [("brian2", 1e-12), ("chip", 1e-6)])
def test_golden_trace(tmp_path, golden, profile, tol):
    v, spikes = _run(tmp_path, profile)
    assert golden[:, 2].sum() == 4
    assert np.array_equal(spikes[1:], golden[:, 2].astype(bool))
    err = np.abs(v[1:] / 102.02 - golden[:, 1]).max()
    assert err <= tol, err
    assert not spikes[0] and v[0] == 0.0


def test_input_first_shows_one_tick_later(tmp_path, golden):
    v, _ = _run(tmp_path, "brian2")
    first_input = int(np.flatnonzero(golden[:, 0])[0])
    assert first_input == 60
    assert v[first_input] == 0 and v[first_input + 1] > 0


def test_chip_and_brian2_differ_only_by_float32_rounding(tmp_path):
    v64, s64 = _run(tmp_path, "brian2")
    v32, s32 = _run(tmp_path, "chip")
    assert np.array_equal(s64, s32)
    assert 0 < np.abs(v64 - v32).max() < 1e-3
