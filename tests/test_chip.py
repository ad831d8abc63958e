"""On-chip round trip (emu.chip): generated host script, manifests, chip-run, fit warnings.

py-spinnaker2 is not installable here, so a minimal fake ``spinnaker2`` package is
put in ``sys.modules`` (``fake_s2``): it records the ConversionConfig, the graph
and the run it got, and returns deterministic spikes and voltages.
"""
import ast
import dataclasses
import enum
import inspect
import json
import runpy
import sys
import types

import nir
import numpy as np
import pytest

from emu.chip import (ChipBackendUnavailable, ChipBudget, ManifestMismatch, check_manifest, fit_warnings,
                      load_chip_recording, prepare_chip_job, run_on_backend, write_chip_script)
from emu.chip import host, manifest as chip_manifest
from emu.chip.host import save_chip_recording
from emu.cli import main
from emu.network import Network, Population, Projection
from emu.nir_import import ConversionOptions, from_nir
from emu.profile import SemanticsProfile
from emu.spike_io import load_recording

RNG = np.random.default_rng(7)
W1 = RNG.normal(size=(3, 4))
W2 = RNG.normal(size=(2, 3))
TICKS = 30
OPTIONS = ConversionOptions(dt=1e-3, integrator="forward", weight_scale=2.5, conn_delay=0)


def graph():
    lif = lambda n, tau, leak: nir.LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.full(n, leak),  # noqa: E731
                                       v_threshold=np.full(n, 0.4), v_reset=np.zeros(n))
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([4])}),
               "fc1": nir.Affine(weight=W1, bias=np.full(3, 0.1)),
               "lif1": lif(3, 0.01, 0.0),
               "fc2": nir.Linear(weight=W2),
               "lif2": lif(2, 0.02, 0.05),
               "output": nir.Output(output_type={"output": np.array([2])})},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")],
        metadata={"dt": 1e-3}, type_check=False)


@pytest.fixture
def files(tmp_path):
    model, inp = tmp_path / "model.nir", tmp_path / "input.json"
    nir.write(str(model), graph())
    inp.write_text(json.dumps({"0": [1, 5, 9], "2": [3, 4], "3": [0, 28]}))
    return model, inp


# --- a fake py-spinnaker2 ---------------------------------------------------------------------


class FakePop:
    def __init__(self, name, size):
        self.name, self.size, self.params, self.record, self.max_atoms, self.ticks = name, size, {}, [], None, None

    def set_max_atoms_per_core(self, n):
        self.max_atoms = n

    def get_spikes(self):
        assert "spikes" in self.record and self.ticks is not None
        return {i: [t for t in range(self.ticks) if (3 * t + 5 * i) % 7 == 0] for i in range(self.size)}

    def get_voltages(self):
        assert "v" in self.record, "voltages asked for but not recorded"
        return {i: (np.arange(self.ticks, dtype=np.float32) * np.float32(0.1 + i) - np.float32(1.7)) for i in
                range(self.size)}


def make_fake_spinnaker2():
    log = types.SimpleNamespace(configs=[], graphs=[], hardware=[], runs=[], nets=[])

    class IntegratorMethod(str, enum.Enum):
        FORWARD = "Forward-Euler"
        EXPONENTIAL = "Exponential-Euler"

    class ResetMethod(str, enum.Enum):
        SUBTRACT = "subtract"
        ZERO = "zero"

    @dataclasses.dataclass
    class ConversionConfig:
        dt: float = 1.0
        output_record: list = dataclasses.field(default_factory=lambda: ["spikes"])
        conn_delay: int = 1
        scale_weights: bool = False
        integrator: IntegratorMethod = IntegratorMethod.EXPONENTIAL
        reset: ResetMethod = ResetMethod.SUBTRACT

    def from_nir(g, cfg):
        log.configs.append(cfg)
        log.graphs.append(g)
        pops, inp, outp = [], [], []
        for name, node in g.nodes.items():
            if isinstance(node, nir.Input):
                pop = FakePop(name, int(np.prod(node.input_type["input"])))
                inp.append(pop)
            elif isinstance(node, (nir.LIF, nir.IF, nir.CubaLIF)):
                pop = FakePop(name, int(np.size(node.v_threshold)))
                if any(a == name and isinstance(g.nodes[b], nir.Output) for a, b in g.edges):
                    outp.append(pop)
            else:
                continue
            pops.append(pop)
        net = types.SimpleNamespace(populations=pops)
        log.nets.append(net)
        return net, inp, outp

    class Hardware:
        def __init__(self, **kw):
            log.hardware.append((type(self).__name__, kw))

        def run(self, net, ticks, **kw):
            log.runs.append((ticks, kw))
            for pop in net.populations:
                pop.ticks = ticks

    class SpiNNaker2Chip(Hardware):
        pass

    class Brian2Backend(Hardware):
        pass

    s2 = types.ModuleType("spinnaker2")
    s2.__version__ = "0.0-fake"
    s2.s2_nir = types.ModuleType("spinnaker2.s2_nir")
    s2.s2_nir.__dict__.update(ConversionConfig=ConversionConfig, IntegratorMethod=IntegratorMethod,
                              ResetMethod=ResetMethod, from_nir=from_nir)
    s2.hardware = types.ModuleType("spinnaker2.hardware")
    s2.hardware.SpiNNaker2Chip = SpiNNaker2Chip
    s2.brian2_sim = types.ModuleType("spinnaker2.brian2_sim")
    s2.brian2_sim.Brian2Backend = Brian2Backend
    return s2, log


@pytest.fixture
def fake_s2(monkeypatch):
    s2, log = make_fake_spinnaker2()
    for mod in (s2, s2.s2_nir, s2.hardware, s2.brian2_sim):
        monkeypatch.setitem(sys.modules, mod.__name__, mod)
    return log


@pytest.fixture
def no_s2(monkeypatch):
    monkeypatch.setitem(sys.modules, "spinnaker2", None)  # `import spinnaker2` raises ImportError


def run_script(script, monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", [str(script), *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(script), run_name="__main__")
    return exc.value.code


def make_script(files, tmp_path, options=OPTIONS, reset="zero", record=("spikes", "v"), ticks=TICKS, **kw):
    model, inp = files
    job = prepare_chip_job(model, inp, ticks, options, reset=reset, record=record, **kw)
    return write_chip_script(job, tmp_path / "run_on_chip.py"), job


def expected_fake(size, ticks):
    pop = FakePop("x", size)
    pop.ticks, pop.record = ticks, ["spikes", "v"]
    return pop.get_spikes(), pop.get_voltages()


# --- the generated script ---------------------------------------------------------------------


def test_script_is_python_and_carries_options_ticks_and_shared_code(files, tmp_path):
    script, job = make_script(files, tmp_path)
    text = script.read_text()
    tree = ast.parse(text)
    compile(text, str(script), "exec")
    consts = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
              if isinstance(t, ast.Name)}
    assert ast.literal_eval(consts["TICKS"]) == TICKS
    options = ast.literal_eval(consts["OPTIONS"])
    assert options == dict(dt=1e-3, integrator="forward", weight_scale=2.5, weight_max=127, scale_percentile=None,
                           conn_delay=0, reset="zero")
    assert set(options) == set(chip_manifest.OPTION_FIELDS)
    assert ast.literal_eval(consts["RECORD"]) == ["spikes", "v"]
    assert ast.literal_eval(consts["MODEL_SHA256"]) == chip_manifest.sha256_file(files[0])
    assert ast.literal_eval(consts["INPUT_SHA256"]) == chip_manifest.sha256_file(files[1])
    for fn in host.HOST_FUNCTIONS:  # the project's own functions, verbatim
        assert inspect.getsource(fn) in text
    assert "def save_chip_recording(spikes_by_pop, voltages_by_pop, manifest, path, ticks):" in text
    assert ast.literal_eval(consts["HOST_CODE_SHA256"]) == host.host_code_sha256()


def test_script_runs_end_to_end_on_fake_spinnaker2(files, tmp_path, fake_s2, monkeypatch):
    script, job = make_script(files, tmp_path, max_atoms_per_core={"lif1": 2})
    out = tmp_path / "chip.json"
    assert run_script(script, monkeypatch, "--eth-ip", "10.1.2.3", "--out", out, "--sys-tick-in-s", 0.002) == 0

    cfg = fake_s2.configs[-1]  # exactly our options, in their names
    assert (cfg.dt, cfg.conn_delay, cfg.scale_weights) == (1e-3, 0, False)
    assert cfg.integrator.name == "FORWARD" and cfg.reset.name == "ZERO"
    assert cfg.output_record == ["spikes", "v"]
    assert fake_s2.hardware == [("SpiNNaker2Chip", {"eth_ip": "10.1.2.3"})]
    assert fake_s2.runs == [(TICKS, {"sys_tick_in_s": 0.002})]
    g = fake_s2.graphs[-1]  # a number weight_scale: the graph is pre-scaled, as by hand in the NIR paper
    assert np.allclose(g.nodes["fc1"].weight, W1 * 2.5) and np.allclose(g.nodes["fc1"].bias, 0.25)
    assert np.allclose(g.nodes["fc2"].weight, W2 * 2.5)
    assert np.allclose(g.nodes["lif2"].v_threshold, 1.0) and np.allclose(g.nodes["lif2"].v_leak, 0.125)
    pops = {p.name: p for p in fake_s2.nets[-1].populations}
    assert pops["input"].params == {0: [1, 5, 9], 1: [], 2: [3, 4], 3: [0, 28]}
    assert pops["lif1"].record == ["spikes", "v"] and pops["lif1"].max_atoms == 2

    rec = load_recording(out)  # the validator's reader
    assert rec.ticks == TICKS and set(rec.populations) == {"input", "lif1", "lif2"}
    for name, size in (("lif1", 3), ("lif2", 2)):
        spikes, volts = expected_fake(size, TICKS)
        raster = np.zeros((TICKS, size), bool)
        for i, tk in spikes.items():
            raster[tk, i] = True
        assert np.array_equal(rec.raster(name, 0), raster)
        assert np.array_equal(rec.v[name][0], np.stack([volts[i] for i in range(size)], 1).astype(np.float64))
    assert np.flatnonzero(rec.raster("input", 0)[:, 3]).tolist() == [0, 28] and "input" not in rec.v
    manifest = rec.meta["manifest"]
    assert manifest["py_spinnaker2_version"] == "0.0-fake" and manifest["ticks"] == TICKS
    assert manifest["model_sha256"] == chip_manifest.sha256_file(files[0])
    assert manifest["options"]["weight_scale"] == 2.5
    loaded = load_chip_recording(out, *files, OPTIONS, TICKS, reset="zero")
    assert np.array_equal(loaded.raster("lif1", 0), rec.raster("lif1", 0))


def test_auto_scale_maps_to_scale_weights_or_prescaling(files, tmp_path, fake_s2, monkeypatch):
    auto = ConversionOptions(dt=1e-3, weight_scale="auto", conn_delay=0)
    script, job = make_script(files, tmp_path, auto, record=("spikes",))
    assert run_script(script, monkeypatch, "--backend", "brian2", "--out", tmp_path / "a.json") == 0
    assert fake_s2.configs[-1].scale_weights is True and job.prescale is None
    assert fake_s2.configs[-1].integrator.name == "EXPONENTIAL" and fake_s2.configs[-1].reset.name == "ZERO"
    assert np.array_equal(fake_s2.graphs[-1].nodes["fc1"].weight, W1)  # py-spinnaker2 scales it
    assert fake_s2.hardware[-1][0] == "Brian2Backend"
    assert "v" not in json.loads((tmp_path / "a.json").read_text())["populations"]["lif1"]

    # a percentile (or a 4-bit range) is not in ConversionConfig: our per-population scales are applied
    pct = dataclasses.replace(auto, scale_percentile=90.0)
    script, job = make_script(files, tmp_path, pct, record=("spikes",))
    assert run_script(script, monkeypatch, "--backend", "brian2", "--out", tmp_path / "b.json") == 0
    scales = from_nir(files[0], pct).meta["conversion"]["weight_scale_per_population"]
    assert job.prescale == {"lif1": scales["lif1"], "lif2": scales["lif2"]}
    assert fake_s2.configs[-1].scale_weights is False
    assert np.allclose(fake_s2.graphs[-1].nodes["fc2"].weight, W2 * scales["lif2"])
    assert np.allclose(fake_s2.graphs[-1].nodes["lif1"].v_threshold, 0.4 * scales["lif1"])


def test_script_without_spinnaker2_says_how_to_get_it(files, tmp_path, no_s2, monkeypatch, capsys):
    script, _ = make_script(files, tmp_path)
    assert run_script(script, monkeypatch, "--dry-run") == 0
    assert run_script(script, monkeypatch, "--eth-ip", "10.0.0.1", "--out", tmp_path / "c.json") == 2
    err = capsys.readouterr().err
    assert "gitlab.com/spinnaker2/py-spinnaker2" in err and "py-spinnaker2_nir" in err
    assert not (tmp_path / "c.json").exists()


def test_save_chip_recording_round_trip(tmp_path):
    spikes = {"a": {np.int64(0): [np.int32(3), 1], 2: []}, "b": {"1": [0]}}  # as get_spikes() may give them
    volts = {"a": {0: np.array([0.5, np.nan, -1.25, 2.0], np.float32), 1: [1, 2, 3, 4], 2: [0, 0, 0, 1e-30]}}
    manifest = {"population_sizes": {"a": 4, "b": 2}, "ticks": 4}
    save_chip_recording(spikes, volts, manifest, tmp_path / "r.json", 4)
    rec = load_recording(tmp_path / "r.json")
    assert rec.sizes == {"a": 4, "b": 2} and rec.ticks == 4  # silent neuron 3 of a kept by the manifest's sizes
    assert np.flatnonzero(rec.raster("a", 0)[:, 0]).tolist() == [1, 3] and not rec.raster("a", 0)[:, 3].any()
    assert np.array_equal(rec.v["a"][0][:, 0], [0.5, np.nan, -1.25, 2.0], equal_nan=True)
    assert rec.v["a"][0][3, 2] == 1e-30 and np.isnan(rec.v["a"][0][:, 3]).all()
    assert rec.meta["manifest"] == manifest
    with pytest.raises(ValueError, match="without their spikes"):
        save_chip_recording({}, {"x": {0: [1.0]}}, {}, tmp_path / "s.json", 1)


# --- manifests --------------------------------------------------------------------------------


@pytest.fixture
def recorded(files, tmp_path, fake_s2, monkeypatch):
    script, _ = make_script(files, tmp_path)
    out = tmp_path / "chip.json"
    assert run_script(script, monkeypatch, "--backend", "brian2", "--out", out) == 0
    return out


def test_manifest_mismatches_name_each_field(files, tmp_path, recorded):
    model, inp = files
    meta = load_recording(recorded).meta
    check_manifest(meta, model, inp, OPTIONS, TICKS, reset="zero")  # the same: fine

    inp.write_text(json.dumps({"0": [1, 5, 9], "2": [3, 4], "3": [0, 27]}))
    with pytest.raises(ManifestMismatch, match="input hash") as exc:
        check_manifest(meta, model, inp, OPTIONS, TICKS)
    assert exc.value.fields == ["input hash"]

    g = graph()
    g.nodes["lif1"].v_threshold = np.full(3, 0.5)
    nir.write(str(model), g)
    with pytest.raises(ManifestMismatch) as exc:
        check_manifest(meta, model, None, dataclasses.replace(OPTIONS, dt=1e-4, integrator="exponential"), 31,
                       reset="subtract")
    msg = str(exc.value)
    assert exc.value.fields == ["model hash", "option dt", "option integrator", "option reset", "ticks"]
    assert "model.nir" in msg and "dt=0.001, expected 0.0001" in msg and "30 ticks, expected 31" in msg

    with pytest.raises(ManifestMismatch, match="option weight_scale"):
        check_manifest(meta, options=dataclasses.replace(OPTIONS, weight_scale=None))
    with pytest.raises(ManifestMismatch, match="option conn_delay"):
        load_chip_recording(recorded, options=dataclasses.replace(OPTIONS, conn_delay=1))
    with pytest.raises(ManifestMismatch, match="input sample") as exc:
        check_manifest(meta, sample=1)
    assert exc.value.fields == ["input sample"]
    check_manifest(meta, sample=0)
    # weight_max only matters with auto scaling
    check_manifest(meta, options=dataclasses.replace(OPTIONS, weight_max=15))
    with pytest.raises(ManifestMismatch, match="no manifest"):
        check_manifest({"ticks": 3})


# --- chip-run and chip-script -----------------------------------------------------------------


def test_chip_run_without_spinnaker2_exits_2_with_install_message(files, tmp_path, no_s2, capsys):
    model, inp = files
    out = tmp_path / "o.json"
    code = main(["chip-run", str(model), "--input", str(inp), "--ticks", str(TICKS), "--backend", "brian2",
                 "--out", str(out), "--conn-delay", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines()[-1].startswith("s2emu chip-run: error: py-spinnaker2") and "pip install -e" in err
    assert "gitlab.com/spinnaker2/py-spinnaker2" in err and not out.exists()
    with pytest.raises(ChipBackendUnavailable, match="py-spinnaker2_nir"):
        run_on_backend(model, inp, TICKS, ConversionOptions(conn_delay=0))


def test_chip_run_with_fake_spinnaker2(files, tmp_path, fake_s2, capsys):
    model, inp = files
    out = tmp_path / "o.json"
    assert main(["chip-run", str(model), "--input", str(inp), "--ticks", str(TICKS), "--backend", "chip",
                 "--eth-ip", "10.9.9.9", "--out", str(out), "--record", "spikes,v", "--dt", "0.001",
                 "--integrator", "forward", "--scale", "2.5", "--conn-delay", "0", "--reset", "zero"]) == 0
    assert fake_s2.hardware == [("SpiNNaker2Chip", {"eth_ip": "10.9.9.9"})]
    rec = load_chip_recording(out, model, inp, OPTIONS, TICKS, reset="zero")
    spikes, _ = expected_fake(2, TICKS)
    assert np.flatnonzero(rec.raster("lif2", 0)[:, 1]).tolist() == spikes[1]
    # the in-process API gives the same recording
    again = run_on_backend(model, inp, TICKS, OPTIONS, backend="brian2", reset="zero", record=("spikes", "v"))
    assert np.array_equal(again.raster("lif1", 0), rec.raster("lif1", 0)) and np.array_equal(again.v["lif2"], rec.v["lif2"])
    assert again.meta["manifest"]["backend"] == "brian2"
    assert main(["chip-run", str(model), "--input", str(inp), "--ticks", "5", "--backend", "chip",
                 "--out", str(out)]) == 2
    assert "--eth-ip" in capsys.readouterr().err


def test_chip_script_cli_prints_fit_warnings(files, tmp_path, capsys):
    model, inp = files
    out = tmp_path / "s.py"
    assert main(["chip-script", str(model), "--input", str(inp), "--ticks", "200000", "--record", "spikes,v",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: population 'lif1'" in err and "ticks fit" in err and "600 ticks" in err
    assert "conn_delay=1" in err  # the converter default with *_no_delay models
    compile(out.read_text(), str(out), "exec")
    assert "become 0 as 8-bit integers" in err  # unscaled weights below 1: zeroed, and said so
    assert main(["chip-script", str(model), "--input", str(inp), "--ticks", str(TICKS), "--conn-delay", "0",
                 "--scale", "2.5", "--out", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["chip-script", str(model), "--input", str(inp), "--ticks", str(TICKS), "--out",
                 str(tmp_path / "s.txt")]) == 2
    assert main(["chip-script", str(model), "--input", str(inp), "--ticks", str(TICKS), "--max-atoms", "nope=3",
                 "--out", str(out)]) == 2
    assert "unknown populations ['nope']" in capsys.readouterr().err


# --- fit warnings -----------------------------------------------------------------------------


def small_network():
    net = Network(dt=1e-3)
    net.add(Population("in", (8,), "input"))
    net.add(Population("out", (4,), "lif", alpha=0.9, threshold=50.0))
    net.add(Projection("in", "out", RNG.integers(-100, 100, size=(4, 8)).astype(float)))
    return net.validate()


def big_network():
    net = Network(dt=1e-3)
    net.add(Population("in", (2, 32, 32), "input"))
    net.add(Population("conv", (16, 15, 15), "lif", alpha=0.9, threshold=50.0))
    net.add(Population("fc", (600,), "lif", alpha=0.9, threshold=50.0))
    net.add(Projection("in", "conv", RNG.integers(-100, 100, size=(16, 2, 5, 5)).astype(float), kind="conv2d",
                       stride=2, padding=1))
    net.add(Projection("conv", "fc", RNG.integers(-100, 100, size=(600, 3600)).astype(float)))
    return net.validate()


def test_fit_warnings_silent_on_a_small_short_run():
    assert fit_warnings(small_network(), 100) == []
    assert fit_warnings(small_network(), 100, record=("spikes", "v")) == []


def test_fit_warnings_on_a_big_network_and_a_long_run():
    net = big_network()
    w = fit_warnings(net, 1000, record=("spikes", "v"))
    text = "\n".join(w)
    assert "population 'conv' (3600 neurons, lif_conv2d) is larger than 250 neurons per PE: it is split over 15 PEs" \
        in text
    assert "population 'fc' (600 neurons, lif_no_delay)" in text and "split over 3 PEs" in text
    # 3600 presynaptic words per fc neuron: 250 of them overflow a PE before any recording
    assert any("'fc'" in line and "synapses" in line and "neurons per PE would fit" in line for line in w)
    assert any("'conv'" in line and "ticks fit" in line and "600 ticks" in line for line in w)
    # spikes only, a shorter run: the conv layer fits, fc still needs fewer neurons per PE
    w = fit_warnings(net, 500, max_atoms_per_core={"fc": 5})
    assert not any("ticks fit" in line for line in w) and not any("'fc'" in line and "synapses" in line for line in w)
    assert any("split over 120 PEs" in line for line in w) and not any("152" in line for line in w)
    # a dense input spike list does not fit one PE
    w = fit_warnings(net, 1000, input_rasters={"in": np.ones((1000, 2048), bool)})
    assert any("input population 'in'" in line and "spike list" in line for line in w)
    # more PEs than a chip has
    assert any("a SpiNNaker2 chip has 152" in line for line in fit_warnings(net, 10, max_atoms_per_core={"fc": 1}))


def test_fit_warnings_weight_ranges():
    net = small_network()
    net.projections[0].weight[0, 0] = 200.0
    w = fit_warnings(net, 10)
    assert len(w) == 1 and "outside [-127, 127]" in w[0] and "int8 weights of lif_no_delay" in w[0]
    four_bit = SemanticsProfile.chip(weight_bits=5)  # 4-bit magnitude + sign: [-15, 15]
    assert "4-bit magnitude + sign" in fit_warnings(small_network(), 10, four_bit)[0]
    tiny = small_network()
    tiny.projections[0].weight = tiny.projections[0].weight / 1000
    assert "non-zero weights become 0 as 8-bit integers" in fit_warnings(tiny, 10)[0]


def test_budget_is_configurable():
    net = small_network()
    tight = ChipBudget(sram_bytes=33 * 1024)  # 1 kB beside the reserved 32 kB
    w = fit_warnings(net, 5000, budget=tight)
    assert any("ticks fit" in line for line in w)
    assert fit_warnings(net, 5000) == []


def test_validate_refuses_a_chip_recording_of_another_experiment(files, tmp_path, recorded, capsys):
    """s2emu validate --chip checks the recording's manifest against model, input, options and ticks."""
    model, inp = files
    common = ["--dt", "1e-3", "--integrator", "forward", "--scale", "2.5", "--conn-delay", "0", "--reset", "zero",
              "--ticks", str(TICKS)]
    ok = main(["validate", str(model), "--input", str(inp), "--chip", str(recorded), *common,
               "--report", str(tmp_path / "ok.html")])
    assert ok == 0
    inp.write_text(json.dumps({"0": [1, 5, 9], "2": [3, 4], "3": [0, 27]}))
    rc = main(["validate", str(model), "--input", str(inp), "--chip", str(recorded), *common,
               "--report", str(tmp_path / "bad.html")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and err.startswith("s2emu validate: error:") and "input hash" in err
    assert not (tmp_path / "bad.html").exists()


def test_run_backend_without_spinnaker2_exits_2_with_install_message(files, tmp_path, no_s2, capsys):
    model, inp = files
    rc = main(["run", str(model), "--input", str(inp), "--ticks", "30", "--backend", "brian2", "--conn-delay", "0",
               "--out", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "s2emu run: error:" in err and "py-spinnaker2" in err


def test_chip_script_records_the_calibrated_profile_in_the_manifest(files, tmp_path, capsys):
    """The board's semantics cannot be chosen: a --profile-file only goes into the manifest (path
    and sha256), so a recording says which calibrated profile its emulator side used."""
    import hashlib

    from emu.cli import main

    board = tmp_path / "board.json"
    board.write_text(json.dumps({"profile": {"spike_condition": ">="}, "conversion": {"conn_delay": 0}}))
    out = tmp_path / "run_on_chip.py"
    assert main(["chip-script", str(files[0]), "--input", str(files[1]), "--ticks", "40", "--dt", "1e-3",
                 "--scale", "2.5", "--profile-file", str(board), "--out", str(out)]) == 0
    tree = ast.parse(out.read_text())
    consts = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
              if isinstance(t, ast.Name)}
    recorded = ast.literal_eval(consts["EMULATOR_PROFILE_FILE"])
    assert recorded == dict(path=str(board), sha256=hashlib.sha256(board.read_bytes()).hexdigest())
    assert ast.literal_eval(consts["OPTIONS"])["conn_delay"] == 0  # its conversion options apply
    assert 'info["emulator_profile_file"] = EMULATOR_PROFILE_FILE' in out.read_text()
