"""The regression-test kit (emu.testing) tested with itself: the snapshot fixture in a user's
project run by a real pytest, assert_spikes_match at its tolerances' boundaries,
assert_accuracy_within on a model that loses accuracy, the strategies' graphs convert."""
import os
import subprocess
import sys

import nir
import numpy as np
import pytest
from hypothesis import given, settings

from emu.engine import Emulator
from emu.errors import UserError
from emu.nir_import import ConversionOptions, from_nir
from emu.spike_io import load_recording, save_recording
from emu.spikes import Recording
from emu.testing import assert_accuracy_within, assert_spikes_match, run_chip
from emu.testing.snapshot import ChipSnapshot, snapshot_path
from emu.testing.strategies import nir_graphs, spike_rasters
from validate.metrics import agreement, predicted_classes


def _lif(n, threshold=0.1, tau=0.02):
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / 1e-3), v_leak=np.zeros(n),
                   v_threshold=np.full(n, threshold), v_reset=np.zeros(n))


def _dense(seed=0, w1=None, n_in=10, n_hidden=16, n_out=4, threshold=0.1, tau=0.02, scale=0.5):
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, scale, (n_hidden, n_in)) if w1 is None else w1
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([n_in])}),
               "fc1": nir.Affine(weight=w1, bias=np.zeros(n_hidden)), "lif1": _lif(n_hidden, threshold, tau),
               "fc2": nir.Affine(weight=rng.normal(0, scale, (n_out, n_hidden)), bias=np.zeros(n_out)),
               "lif2": _lif(n_out, threshold, tau)},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2")],
        metadata={"dt": 1e-3, "integrator": "forward"}, type_check=False)


# the snapshot fixture in a user's project -----------------------------------------------------
USER_TEST = """
import numpy as np

def test_chip(chip_snapshot):
    run = chip_snapshot("model.nir", np.load("x.npy"), weight_scale=50.0, conn_delay={delay})
    assert run.batch == 2
"""


def _pytest(project, *args):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=project,
                          capture_output=True, text=True, env=env, timeout=300)
    return done.returncode, done.stdout + done.stderr


def test_snapshot_round_trip_in_a_user_project(tmp_path):
    project = tmp_path / "user"
    project.mkdir()
    w1 = np.random.default_rng(0).normal(0, 0.5, (16, 10))
    nir.write(str(project / "model.nir"), _dense(w1=w1))
    np.save(project / "x.npy", np.random.default_rng(1).random((2, 60, 10)) < 0.25)
    (project / "test_model.py").write_text(USER_TEST.format(delay=0))

    rc, out = _pytest(project)  # no snapshot yet: fails and says how to make it
    assert rc == 1 and "no chip snapshot at" in out and "test_model.py::test_chip --s2emu-snapshot-update" in out
    rc, out = _pytest(project, "--s2emu-snapshot-update")
    assert rc == 0, out
    stored = project / "__snapshots__" / "test_model" / "test_chip.npz"
    assert stored.exists() and load_recording(stored).meta["snapshot"]["model"]
    rc, out = _pytest(project)
    assert rc == 0, out

    # one weight changed enough to move a spike: the failure names where and what changed
    w1[3, 2] += 0.4
    nir.write(str(project / "model.nir"), _dense(w1=w1))
    rc, out = _pytest(project)
    assert rc == 1 and "the chip's spikes changed" in out
    assert "First divergence: population 'lif1', neuron 3, tick" in out
    assert "model fields changed since the snapshot: fc1.weight." in out
    # a setting changed: the failure names the field and both values
    w1[3, 2] -= 0.4
    nir.write(str(project / "model.nir"), _dense(w1=w1))
    (project / "test_model.py").write_text(USER_TEST.format(delay=1))
    rc, out = _pytest(project)
    assert rc == 1 and "conversion.conn_delay 0 -> 1" in out, out
    # other inputs: the snapshot does not apply
    (project / "test_model.py").write_text(USER_TEST.format(delay=0))
    np.save(project / "x.npy", np.random.default_rng(2).random((2, 60, 10)) < 0.25)
    rc, out = _pytest(project)
    assert rc == 1 and "taken on other inputs (population(s) input differ)" in out


def test_a_snapshot_that_differs_with_nothing_changed_blames_the_toolchain(tmp_path):
    graph = _dense()
    x = np.random.default_rng(1).random((1, 60, 10)) < 0.25
    test_file = tmp_path / "test_x.py"
    ChipSnapshot(test_file, "test_a", "test_x.py::test_a", update=True)(graph, x, weight_scale=50.0)
    path = snapshot_path(test_file, "test_a")
    stored = load_recording(path)
    raster = stored.rasters()
    first = np.argwhere(raster["lif1"][0])[0]
    raster["lif1"][0, first[0], first[1]] = False  # as if the engine had dropped one spike
    save_recording(Recording.from_rasters(raster, meta=stored.meta), path)
    with pytest.raises(AssertionError) as failure:
        ChipSnapshot(test_file, "test_a", "test_x.py::test_a", update=False)(graph, x, weight_scale=50.0)
    text = str(failure.value)
    assert f"population 'lif1', neuron {first[1]}, tick {first[0]} of sample 0: actual spiked; expected no spike" in text
    assert "the toolchain changed what the chip does" in text
    with pytest.raises(ValueError, match="own name="):
        snap = ChipSnapshot(test_file, "test_b", "test_x.py::test_b", update=True)
        snap(graph, x, weight_scale=50.0)
        snap(graph, x, weight_scale=50.0)


def test_the_plugin_loads_nothing_heavy():
    code = ("import sys, emu.testing.plugin, emu.testing; "
            "print(sorted(m for m in ('numba', 'torch', 'nir', 'snntorch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# assert_spikes_match -----------------------------------------------------------------------
def _pair(ticks=50, n=8, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.random((ticks, n)) < 0.2
    return a, a.copy()


def test_assert_spikes_match_at_its_tolerance_boundaries():
    a, b = _pair()
    assert_spikes_match({"p": a}, {"p": b})
    b[7, 2] = ~b[7, 2]
    b[30, 5] = ~b[30, 5]
    cells, f1 = a.size, agreement(a, b).f1
    assert f1 < 1
    assert_spikes_match({"p": a}, {"p": b}, min_f1=f1)  # exactly at the limit: passes
    with pytest.raises(AssertionError) as failure:
        assert_spikes_match({"p": a}, {"p": b}, min_f1=f1 + 1e-3)
    text = str(failure.value)
    assert text.startswith(f"spikes differ beyond the tolerance (min_f1={f1 + 1e-3:g}) in 1 of 1 population(s):\n"
                           f"  FAIL p: spike F1 {f1:.3f}, recall ")
    assert "First divergence: population 'p', neuron 2, tick 7 of sample 0" in text
    assert f"0.500 % of cells differ (2 of {cells})" in text
    with pytest.raises(AssertionError, match="FAIL p: spike F1"):  # no tolerance: identical spikes
        assert_spikes_match({"p": a}, {"p": b})
    # max_mismatch, kept for old tests, at its limit
    assert_spikes_match({"p": a}, {"p": b}, max_mismatch=2 / cells)
    with pytest.raises(AssertionError, match=r"of cells differ > max_mismatch"):
        assert_spikes_match({"p": a}, {"p": b}, max_mismatch=1.999 / cells)
    # a lag: the actual run two ticks late matches only when max_lag reaches 2
    late = np.zeros_like(a)
    late[2:] = a[:-2]
    with pytest.raises(AssertionError, match="lag"):
        assert_spikes_match({"p": late}, {"p": a}, max_lag=1)
    matches = assert_spikes_match({"p": late}, {"p": a}, max_lag=2)
    assert matches[0].lag == 2 and matches[0].mismatches == 0 and matches[0].f1 == 1.0
    for bad in (dict(max_mismatch=2), dict(min_f1=1.5), dict(min_recall=-0.1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            assert_spikes_match({"p": a}, {"p": b}, **bad)


def test_a_silent_chip_fails_the_spike_agreement_that_a_mismatch_rate_passes():
    """Spike agreement is the measure that moves when spikes are lost: a silent run differs in
    only 2 % of cells (max_mismatch=0.05 passes it) but has F1 and recall 0."""
    rng = np.random.default_rng(3)
    expected = rng.random((4, 100, 20)) < 0.02
    silent = np.zeros_like(expected)
    matches = assert_spikes_match({"out": silent}, {"out": expected}, max_mismatch=0.05)
    assert matches[0].f1 == 0.0 and matches[0].rate < 0.05
    for tolerance in (dict(min_f1=0.5), dict(min_recall=0.5), dict(min_f1=0.5, max_mismatch=0.05), {}):
        with pytest.raises(AssertionError) as failure:
            assert_spikes_match({"out": silent}, {"out": expected}, **tolerance)
        text = str(failure.value)
        # F1, recall and both rates lead; the cell mismatch comes last, then the first divergence
        line = text.splitlines()[1]
        assert line.startswith("  FAIL out: spike F1 0.000, recall 0.0 %, precision -, rate 0 (actual) vs "
                               f"{expected.mean():.4g} (expected) spikes per neuron per tick"), line
        assert line.index("recall") < line.index("% of cells differ")
        assert text.splitlines()[2].startswith("First divergence: population 'out'")
    # half the spikes lost: recall 0.5, precision 1
    half = expected.copy()
    half[:, 50:] = False
    m = assert_spikes_match({"out": half}, {"out": expected}, min_recall=0.3)[0]
    assert m.agreement.precision == 1.0 and 0.3 < m.recall < 0.7
    with pytest.raises(AssertionError, match=r"recall [0-9.]+ < min_recall 0.9"):
        assert_spikes_match({"out": half}, {"out": expected}, min_recall=0.9)


def test_assert_spikes_match_takes_plain_arrays():
    import torch

    a, b = _pair()
    assert_spikes_match(a, b)  # (T, N)
    assert_spikes_match(a[None], {"p": b})  # (B, T, N) against a named population
    assert_spikes_match(torch.from_numpy(a.astype(np.float32)), b)
    b[4, 1] = ~b[4, 1]
    with pytest.raises(AssertionError, match="neuron 1, tick 4 of sample 0"):
        assert_spikes_match(a, b)
    graph = _dense()
    x = np.random.default_rng(1).random((1, 60, 10)) < 0.25
    run = run_chip(graph, x, weight_scale=50.0, conn_delay=0)
    with pytest.raises(ValueError, match=r"actual is one unnamed raster; the other run has populations 'lif1', "
                                         r"'lif2': say which it is with populations=\['name'\]"):
        assert_spikes_match(run.raster("lif2"), run)
    assert_spikes_match(run.raster("lif2"), run, populations=["lif2"])
    with pytest.raises(AssertionError, match="neuron"):
        assert_spikes_match(run.raster("lif1"), run, populations=["lif2"])


def test_assert_spikes_match_fails_on_other_ticks_or_populations_unless_told():
    rng = np.random.default_rng(4)
    long = rng.random((100, 6)) < 0.2
    with pytest.raises(AssertionError, match="actual has 100 ticks and expected 60"):
        assert_spikes_match({"p": long}, {"p": long[:60]})
    assert_spikes_match({"p": long}, {"p": long[:60]}, ticks=60)
    with pytest.raises(AssertionError, match="ticks=80 but expected has 60"):
        assert_spikes_match({"p": long}, {"p": long[:60]}, ticks=80)
    with pytest.raises(AssertionError, match=r"different populations \(only in actual: 'q'\)"):
        assert_spikes_match({"p": long, "q": long}, {"p": long})
    with pytest.raises(AssertionError, match=r"only in actual: 'q'; only in expected: 'r'"):
        assert_spikes_match({"p": long, "q": long}, {"p": long, "r": long})
    assert_spikes_match({"p": long, "q": long}, {"p": long}, populations=["p"])
    with pytest.raises(AssertionError, match="population 'q' is not in expected"):
        assert_spikes_match({"p": long, "q": long}, {"p": long}, populations=["p", "q"])
    with pytest.raises(AssertionError, match="actual has 2 sample"):
        assert_spikes_match({"p": np.stack([long, long])}, {"p": long})


def test_the_first_divergence_is_first_in_time():
    """Two populations differ: the message names the one that differs earlier, not the first listed."""
    rng = np.random.default_rng(5)
    deep, shallow = rng.random((50, 4)) < 0.3, rng.random((50, 4)) < 0.3
    deep2, shallow2 = deep.copy(), shallow.copy()
    deep2[3, 0] = ~deep2[3, 0]
    shallow2[9, 1] = ~shallow2[9, 1]
    with pytest.raises(AssertionError, match="First divergence: population 'deep', neuron 0, tick 3"):
        assert_spikes_match({"shallow": shallow2, "deep": deep2}, {"shallow": shallow, "deep": deep})


def test_assert_spikes_match_reads_files_and_shows_voltages(tmp_path):
    graph = _dense()
    x = np.random.default_rng(1).random((1, 60, 10)) < 0.25
    options = ConversionOptions(dt=1e-3, weight_scale=50.0, conn_delay=0, integrator="forward")
    run = Emulator(from_nir(graph, options))(x, record_v=True)
    save_recording(run, tmp_path / "run.npz")
    assert_spikes_match(run, tmp_path / "run.npz")
    assert_spikes_match(str(tmp_path / "run.npz"), run, populations=["lif1", "lif2"])
    lower = from_nir(graph, options)
    lower.populations["lif1"].threshold = lower.populations["lif1"].threshold * 0.8
    moved = Emulator(lower)(x, record_v=True)
    with pytest.raises(AssertionError, match=r"actual spiked, v = [-0-9.e]+; expected no spike, v = [-0-9.e]+\."):
        assert_spikes_match(moved, tmp_path / "run.npz")


# assert_accuracy_within ------------------------------------------------------------------------
def test_assert_accuracy_within_fails_with_the_attribution():
    rng = np.random.default_rng(5)
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([20])}),
               "fc1": nir.Affine(weight=rng.uniform(-1.5, 3.0, (30, 20)), bias=np.zeros(30)),
               "lif1": _lif(30, 4.0, 2e-3),
               "fc2": nir.Affine(weight=rng.uniform(-1.5, 3.0, (5, 30)), bias=np.zeros(5)), "lif2": _lif(5, 4.0, 2e-3)},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2")],
        metadata={"dt": 1e-3, "integrator": "forward"}, type_check=False)
    x = rng.random((20, 60, 20)) < rng.uniform(0.02, 0.5, (20, 1, 20))
    runs = assert_accuracy_within(graph, x, np.zeros(20, int), dt=None, max_drop=1.0, weight_scale="auto",
                                  conn_delay=0)
    labels = runs.float_classes  # the float model is right by definition: accuracy 100 %
    acc_float, acc_chip = runs.accuracies(labels)
    assert acc_float == 1.0 and acc_chip < 0.8
    assert_accuracy_within(graph, x, labels, dt=None, max_drop=1 - acc_chip, weight_scale="auto", conn_delay=0)
    with pytest.raises(AssertionError) as failure:
        assert_accuracy_within(graph, x, labels, dt=None, max_drop=1 - acc_chip - 0.01, weight_scale="auto",
                               conn_delay=0)
    text = str(failure.value)
    assert text.startswith(f"chip accuracy {100 * acc_chip:.1f} % is {100 * (1 - acc_chip):.1f} points below")
    assert "Chip accuracy" in text and "Points lost by factor (Shapley): " in text and "samples flip" in text


# keywords, dt, corrupted snapshots ---------------------------------------------------------------
def test_a_misspelled_keyword_is_a_type_error_naming_it(tmp_path):
    """Settings go in as keywords: a misspelled one ran (and pinned a snapshot) under the default."""
    graph = _dense()
    x = np.random.default_rng(1).random((1, 30, 10)) < 0.25
    with pytest.raises(TypeError) as failure:
        run_chip(graph, x, weight_scale=50.0, conn_dely=0)
    text = str(failure.value)
    assert text.startswith("run_chip() got an unexpected keyword argument 'conn_dely' (did you mean 'conn_delay'?); "
                           "it accepts ")
    assert all(f" {k}," in text for k in ("conn_delay", "dt", "profile", "record_v", "weight_rounding"))
    with pytest.raises(TypeError, match=r"assert_accuracy_within\(\) got an unexpected keyword argument 'profle' "
                                        r"\(did you mean 'profile'\?\)"):
        assert_accuracy_within(graph, x, [0], dt=None, max_drop=0.1, profle="brian2")
    test_file = tmp_path / "test_x.py"
    snap = ChipSnapshot(test_file, "test_a", "test_x.py::test_a", update=True)
    with pytest.raises(TypeError, match=r"chip_snapshot\(\) got an unexpected keyword argument 'reset_mode' .*"
                                        r" reset, reset_timing,"):
        snap(graph, x, weight_scale=50.0, reset_mode="zero")
    assert not snapshot_path(test_file, "test_a").exists()  # nothing pinned under the wrong settings
    run_chip(graph, x, weight_scale=50.0, conn_delay=0, weight_rounding="nearest", reset="zero", dt=1e-3)


def test_the_missing_dt_error_speaks_python():
    graph = _dense()
    graph.metadata.pop("dt")
    x = np.random.default_rng(1).random((1, 30, 10)) < 0.25
    with pytest.raises(UserError) as failure:
        run_chip(graph, x, weight_scale=50.0, conn_delay=0)
    assert str(failure.value) == "the model has no dt in its metadata: give the tick length with dt=SECONDS"
    assert run_chip(graph, x, dt=1e-3, weight_scale=50.0, conn_delay=0).ticks == 30


def test_a_corrupted_snapshot_says_how_to_recreate_it(tmp_path):
    graph = _dense()
    x = np.random.default_rng(1).random((1, 30, 10)) < 0.25
    test_file = tmp_path / "test_x.py"
    ChipSnapshot(test_file, "test_a", "test_x.py::test_a", update=True)(graph, x, weight_scale=50.0)
    path = snapshot_path(test_file, "test_a")
    good = path.read_bytes()
    redo = "re-create it with  pytest test_x.py::test_a --s2emu-snapshot-update"
    for broken in (good[: len(good) // 2], b"", b"not a zip file at all"):
        path.write_bytes(broken)
        with pytest.raises(AssertionError) as failure:
            ChipSnapshot(test_file, "test_a", "test_x.py::test_a", update=False)(graph, x, weight_scale=50.0)
        assert str(failure.value).startswith(f"{path}: the chip snapshot cannot be read (") and \
            str(failure.value).endswith(redo)
    save_recording(Recording.from_rasters({"lif2": np.zeros((1, 30, 4), bool)}), path)  # a recording, no snapshot
    with pytest.raises(AssertionError, match=f"not a chip snapshot .*: {redo}"):
        ChipSnapshot(test_file, "test_a", "test_x.py::test_a", update=False)(graph, x, weight_scale=50.0)


# the strategies ----------------------------------------------------------------------------
@settings(max_examples=25)
@given(graph=nir_graphs(), raster=spike_rasters(4, 20))
def test_generated_graphs_convert_and_run(graph, raster):
    net = from_nir(graph, ConversionOptions(dt=graph.metadata["dt"], weight_scale="auto", conn_delay=0,
                                            integrator="forward"))
    shapes = [p.shape for p in net.populations.values() if p.model == "input"]
    assert len(shapes) == 1
    x = np.random.default_rng(0).random((2, 20) + tuple(shapes[0])) < 0.2
    run = Emulator(net)(x)
    assert run.ticks == 20 and set(run.populations) == set(net.populations)
    assert raster.shape == (20, 4) and raster.dtype == bool


def test_the_example_in_testing_md_runs(tmp_path):
    """docs/testing.md's example test file, copied into a user's project with a model and
    samples, passes once its snapshot is written."""
    from pathlib import Path

    docs = (Path(__file__).parents[1] / "docs" / "testing.md").read_text()
    example = docs.split("```python\n", 1)[1].split("```", 1)[0]
    project = tmp_path / "user"
    (project / "tests").mkdir(parents=True)
    (project / "models").mkdir()
    nir.write(str(project / "models" / "my_model.nir"), _dense())
    rng = np.random.default_rng(0)
    x = rng.random((12, 60, 10)) < 0.25
    # labels the chip gets right: the accuracy test passes whatever the float model says
    chip = run_chip(project / "models" / "my_model.nir", x, weight_scale="auto", conn_delay=0)
    np.savez(project / "tests" / "samples.npz", x=x, y=predicted_classes(chip.raster("lif2")))
    (project / "tests" / "test_chip.py").write_text(example)
    rc, out = _pytest(project, "--s2emu-snapshot-update")
    assert rc == 0, out
    rc, out = _pytest(project)
    assert rc == 0 and "3 passed" in out, out
