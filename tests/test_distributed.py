"""Dataset-level commands on a dask.distributed cluster (``--scheduler``): attribute, validate
--inputs and demo give the numbers of a local run, bit for bit; an unreachable scheduler or a
missing dask is one line, exit 2."""
import json
import sys
import time

import nir
import numpy as np
import pytest

from netgen import two_layer_lif_graph
from emu.cli import main
from emu.parallel import ParallelError, check_scheduler, parallel_map

distributed = pytest.importorskip("distributed", reason='dask.distributed is not installed '
                                                       '(pip install "dask[distributed]", extra [sweep])')

CONV = ["--dt", "1e-3", "--auto-scale"]


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread each (the project's code is imported there, as on a real cluster)."""
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A small two-layer LIF net and a folder of 8 samples (6 files of one, one of a batch of 2; lengths differ)."""
    root = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(3)

    graph = two_layer_lif_graph(rng)
    nir.write(str(root / "m.nir"), graph)
    (root / "in").mkdir()
    for i in range(6):
        np.save(root / "in" / f"s{i}.npy", rng.random((40 + 10 * (i % 2), 10)) < 0.25)
    np.save(root / "in" / "t_batch.npy", rng.random((2, 40, 10)) < 0.25)
    (root / "labels.txt").write_text("0 1 2 3 1 0 2 3\n")
    return root / "m.nir"


def _run(argv):
    assert main(argv) == 0, argv


def _json(path):
    return json.loads(path.read_text())


def test_parallel_map_keeps_the_order_of_tasks(cluster):
    tasks = list(range(7))
    assert list(parallel_map(_square, tasks)) == [t * t for t in tasks]
    assert list(parallel_map(_square, tasks, scheduler=cluster)) == [t * t for t in tasks]
    assert list(parallel_map(_add, tasks, shared=10, scheduler=cluster)) == [t + 10 for t in tasks]
    assert sorted(parallel_map(_square, tasks, scheduler=cluster, ordered=False)) == [t * t for t in tasks]


def _square(x):
    return x * x


def _add(x, shared):
    return x + shared


def test_attribute_on_a_cluster_equals_the_local_run(tmp_path, model, cluster, capsys):
    base = ["attribute", str(model), "--inputs", str(model.parent / "in"), "--labels",
            str(model.parent / "labels.txt"), "--alone", "--chunk", "3"] + CONV
    _run(base + ["--report", str(tmp_path / "local.html"), "--out", str(tmp_path / "local_full.json")])
    _run(base + ["--report", str(tmp_path / "dask.html"), "--out", str(tmp_path / "dask_full.json"),
                 "--scheduler", cluster])
    local, dask = _json(tmp_path / "local_full.json"), _json(tmp_path / "dask_full.json")
    assert local["n_samples"] == 8 and local["steps"][-1]["total_mismatch"] > 0  # something to attribute
    assert dask == local
    assert _json(tmp_path / "dask.json") == _json(tmp_path / "local.json")  # the reports' JSON too
    # batches of another size: the same emulator numbers (only the float reference's batches change)
    _run(base[:-len(CONV) - 2] + CONV + ["--report", str(tmp_path / "c64.html"),
                                         "--out", str(tmp_path / "c64_full.json")])
    other = _json(tmp_path / "c64_full.json")
    assert [s["mismatches"] for s in other["steps"]] == [s["mismatches"] for s in local["steps"]]


def test_validate_inputs_on_a_cluster_equals_the_local_run(tmp_path, model, cluster, capsys):
    base = ["validate", str(model), "--inputs", str(model.parent / "in")] + CONV
    _run(base + ["--report", str(tmp_path / "local.html"), "--out", str(tmp_path / "local_summary.json")])
    printed = capsys.readouterr().out
    _run(base + ["--report", str(tmp_path / "dask.html"), "--out", str(tmp_path / "dask_summary.json"),
                 "--scheduler", cluster])
    local, dask = _json(tmp_path / "local_summary.json"), _json(tmp_path / "dask_summary.json")
    assert dask == local
    assert _json(tmp_path / "dask.json") == _json(tmp_path / "local.json")
    # one report, opening with the pool
    assert printed.splitlines()[0] == local["finding"] == _json(tmp_path / "local.json")["finding"]
    n = local["n_samples"]
    assert n == 8 and [s["name"] for s in local["samples"]] == [f"s{i}.npy" for i in range(6)] + [
        "t_batch.npy[0]", "t_batch.npy[1]"]
    assert local["identical_samples"] == sum(s["identical"] for s in local["samples"]) < n
    assert local["finding"].startswith(f"The emulator and the float reference spike identically on "
                                       f"{local['identical_samples']} of {n} samples")
    for row in local["populations"]:  # pooled = the sum of the samples
        p = row["population"]
        assert row["mismatching cells"] == sum(s["populations"][p]["mismatching cells"] for s in local["samples"])
        assert row["first divergences"] == sum((s["first_divergence"] or {}).get("population") == p
                                               for s in local["samples"])
    assert len(local["first_divergences"]) == n - local["identical_samples"]
    for s in local["samples"]:  # each sample's first divergence is its earliest over all populations
        if s["first_divergence"]:
            firsts = [g["first difference"] for g in s["populations"].values() if g["first difference"] is not None]
            assert s["first_divergence"]["tick"] == min(firsts)
    # each sample's numbers are those of `s2emu validate --input` on that sample alone
    for k in (1, 7):
        s = local["samples"][k]
        f = model.parent / "in" / s["name"].split("[")[0]
        extra = ["--sample", "1"] if s["name"].endswith("[1]") else []
        _run(["validate", str(model), "--input", str(f), "--report", str(tmp_path / "one.html"),
              "--out", str(tmp_path / "one.out")] + extra + CONV)
        comp = _json(tmp_path / "one.out")["comparisons"]["emulator_vs_snntorch"]
        rows = {r["population"]: r for r in comp["rows"]}
        assert comp["mismatches"] == s["mismatches"] and comp["cells"] == s["cells"]
        for p, got in s["populations"].items():
            assert rows[p]["mismatching cells"] == got["mismatching cells"]
            assert rows[p]["first difference"] == got["first difference"]
        loc = comp["localization"]
        assert loc["identical"] == s["identical"]
        if not s["identical"]:
            d = s["first_divergence"]
            assert (loc["population"], loc["neuron"], loc["tick"], loc["sample"]) == (
                d["population"], d["neuron"], d["tick"], 1 if extra else 0)


def test_validate_inputs_refuses_one_sample_flags_and_one_sample_a_scheduler(tmp_path, model, capsys):
    base = ["validate", str(model), "--inputs", str(model.parent / "in"), "--report", str(tmp_path / "r.html")] + CONV
    for extra, match in ((["--chip", str(tmp_path / "chip.json")], "--chip is the recording of one sample"),
                         (["--sample", "1"], "--inputs validates every sample")):
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("s2emu validate: error: ") and match in err[0], err
    one = ["validate", str(model), "--input", str(model.parent / "in" / "s0.npy"), "--report", str(tmp_path / "r.html"),
           "--scheduler", "tcp://127.0.0.1:1"] + CONV
    assert main(one) == 2
    assert "--scheduler runs the samples of --inputs DIR" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_on_a_cluster_equals_the_local_run(tmp_path, cluster):
    from emu.apps.gesture.data import SynthConfig, ensure_synthetic_dataset

    data = tmp_path / "data"
    ensure_synthetic_dataset(data, n_train_per_class=0, n_test_per_class=1, seed=7, config=SynthConfig(duration_ms=300))
    base = ["demo", "--data", str(data), "--ticks", "100"]
    _run(base + ["--out", str(tmp_path / "local")])
    _run(base + ["--out", str(tmp_path / "dask"), "--scheduler", cluster])
    local, dask = _json(tmp_path / "local" / "demo_summary.json"), _json(tmp_path / "dask" / "demo_summary.json")
    assert local["samples"] == 11 and dask == local


@pytest.mark.parametrize("command", ["attribute", "validate", "demo", "sweep"])
def test_unreachable_scheduler_is_one_line(tmp_path, model, capsys, command):
    import dask

    argv = {"attribute": ["attribute", str(model), "--inputs", str(model.parent / "in"),
                          "--report", str(tmp_path / "a.html")] + CONV,
            "validate": ["validate", str(model), "--inputs", str(model.parent / "in"),
                         "--report", str(tmp_path / "v.html")] + CONV,
            "demo": ["demo", "--out", str(tmp_path / "demo")],
            "sweep": ["sweep", str(model), "--synthetic", "2", "--out", str(tmp_path / "s.jsonl")]}[command]
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert main(argv + ["--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"s2emu {command}: error: --scheduler tcp://127.0.0.1:1: cannot "
                                               f"reach a dask scheduler there"), err
    assert "[sweep]" in err[0]
    assert not (tmp_path / "demo").exists() and not list(tmp_path.glob("*.html"))  # refused before any work


def test_an_unreachable_scheduler_is_said_within_5_s():
    """dask's own connect timeout is 30 s: a mistyped address kept every command silent that long."""
    import dask.distributed  # noqa: F401  (imported before the clock starts: the wait is what is measured)

    started = time.perf_counter()
    with pytest.raises(ParallelError, match="cannot reach a dask scheduler there"):
        check_scheduler("tcp://127.0.0.1:1")
    assert time.perf_counter() - started < 5


def test_missing_dask_is_one_line(tmp_path, model, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import fails as if not installed
    with pytest.raises(ParallelError, match=r"needs dask.distributed: pip install \"spinnaker2-emu\[sweep\]\""):
        list(parallel_map(_square, [1], scheduler="tcp://127.0.0.1:1"))
    assert main(["attribute", str(model), "--inputs", str(model.parent / "in"), "--report",
                 str(tmp_path / "a.html"), "--scheduler", "tcp://127.0.0.1:1"] + CONV) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "s2emu attribute: error: --scheduler needs dask.distributed" in err[0], err
