"""NIR import: converter formulas, graph shapes of other tools, and what the chip rejects."""
import nir
import numpy as np
import pytest

from conftest import GOLDEN
from emu.engine import Emulator
from emu.nir_import import ConversionOptions, NIRImportError, from_nir
from emu.profile import SemanticsProfile

RNG = np.random.default_rng(0)


def _lif(n, **kw):
    p = dict(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n))
    p.update(kw)
    return nir.LIF(**p)


def _conv(c_out, c_in, k, stride=1, padding=0, input_shape=None, **kw):
    return nir.Conv2d(input_shape=input_shape, weight=RNG.normal(size=(c_out, c_in, k, k)), stride=stride,
                      padding=padding, dilation=1, groups=1, bias=np.zeros(c_out), **kw)


def _graph(nodes, edges, type_check=False):
    """Graphs as files from other tools may hold them: nir's own type check off."""
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=type_check)


def sinabs_like():
    """sinabs exports: Conv2d with input_shape, IF (IAF), SumPool2d, Flatten, Linear."""
    return _graph(
        {
            "input": nir.Input(input_type={"input": np.array([2, 8, 8])}),
            "conv": _conv(4, 2, 3, padding=1, input_shape=(8, 8)),
            "iaf1": nir.IF(r=np.ones((4, 8, 8)), v_threshold=np.ones((4, 8, 8)), v_reset=np.zeros((4, 8, 8))),
            "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            "flat": nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0),
            "fc": nir.Linear(weight=RNG.normal(size=(5, 64))),
            "iaf2": nir.IF(r=np.ones(5), v_threshold=np.full(5, 2.0), v_reset=np.zeros(5)),
            "output": nir.Output(output_type={"output": np.array([5])}),
        },
        [("input", "conv"), ("conv", "iaf1"), ("iaf1", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "iaf2"),
         ("iaf2", "output")],
    )


def snntorch_conv_like():
    """snnTorch-style: Conv2d + Leaky as LIF with per-channel (C,1,1) parameters, Affine head with bias."""
    c = 3
    return _graph(
        {
            "input": nir.Input(input_type={"input": np.array([1, 6, 6])}),
            "0": _conv(c, 1, 3, stride=2, padding=1, input_shape=(6, 6)),
            "1": nir.LIF(tau=np.full((c, 1, 1), 0.01), r=np.full((c, 1, 1), 10.0), v_leak=np.zeros((c, 1, 1)),
                         v_threshold=np.ones((c, 1, 1)), v_reset=np.zeros((c, 1, 1))),
            "2": nir.Flatten(input_type={"input": np.array([c, 3, 3])}),
            "3": nir.Affine(weight=RNG.normal(size=(4, c * 9)), bias=np.full(4, 0.5)),
            "4": _lif(4, v_reset=np.zeros(4)),
            "output": nir.Output(output_type={"output": np.array([4])}),
        },
        [("input", "0"), ("0", "1"), ("1", "2"), ("2", "3"), ("3", "4"), ("4", "output")],
    )


def lava_like():
    """lava-dl style: Affine -> CubaLIF."""
    one = np.ones(6)
    return _graph(
        {
            "input": nir.Input(input_type={"input": np.array([3])}),
            "dense": nir.Affine(weight=RNG.normal(size=(6, 3)), bias=np.zeros(6)),
            "cuba": nir.CubaLIF(tau_syn=one * 0.005, tau_mem=one * 0.01, r=one, v_leak=one * 0, v_threshold=one,
                                v_reset=one * 0, w_in=one),
            "output": nir.Output(output_type={"output": np.array([6])}),
        },
        [("input", "dense"), ("dense", "cuba"), ("cuba", "output")],
    )


@pytest.mark.parametrize("make", [sinabs_like, snntorch_conv_like, lava_like])
def test_graphs_of_other_tools_load_and_run(tmp_path, make):
    path = tmp_path / "g.nir"
    nir.write(str(path), make())
    net = from_nir(path, ConversionOptions(dt=1e-3, weight_scale="auto", conn_delay=0))
    inp = net.populations["input"]
    res = Emulator(net)(RNG.random((20, inp.size)) < 0.3)
    assert res.ticks == 20 and set(res.populations) == set(net.populations)


def test_sinabs_shapes_pool_and_models():
    net = from_nir(sinabs_like(), ConversionOptions(dt=1.0, conn_delay=0))
    assert net.populations["iaf1"].shape == (4, 8, 8) and net.populations["iaf1"].model == "if"
    fc = [p for p in net.projections if p.post == "iaf2"][0]
    assert fc.pool == 2 and fc.kind == "dense" and fc.weight.shape == (5, 64)
    assert net.meta["conversion"]["chip_models"] == {"iaf1": "lif_conv2d", "iaf2": "lif_no_delay"}


def test_per_channel_parameters_broadcast():
    net = from_nir(snntorch_conv_like(), ConversionOptions(dt=1e-3, integrator="forward", conn_delay=0))
    pop = net.populations["1"]
    assert pop.shape == (3, 3, 3)
    np.testing.assert_allclose(pop.alpha, 1 - 1e-3 / 0.01)
    # r_factor = r * dt / tau = 1, so the chip threshold is v_threshold
    np.testing.assert_allclose(pop.threshold, 1.0)
    one = np.ones(1)  # size-1 arrays broadcast to the population
    scalar = _graph({"input": nir.Input(input_type={"input": np.array([3])}),
                     "a": nir.Affine(weight=np.ones((6, 3)), bias=np.zeros(6)),
                     "n": nir.CubaLIF(tau_syn=one * 0.005, tau_mem=one * 0.01, r=one, v_leak=one * 0,
                                      v_threshold=one, v_reset=one * 0, w_in=one)}, [("input", "a"), ("a", "n")])
    assert from_nir(scalar, ConversionOptions(dt=1.0, conn_delay=0)).populations["n"].alpha_syn.shape == (6,)
    head = net.populations["4"]
    np.testing.assert_allclose(head.i_offset, 0.5)  # bias * w_scale


def test_braille_recurrent_graph():
    net = from_nir(GOLDEN / "braille_rnn" / "braille_noDelay_noBias_subtract.nir",
                   ConversionOptions(dt=1e-4, weight_scale="auto", conn_delay=0))
    assert net.populations["lif1.lif"].model == "cuba_lif" and net.populations["lif1.lif"].size == 40
    rec = [p for p in net.projections if p.pre == p.post == "lif1.lif"]
    assert len(rec) == 1 and rec[0].weight.shape == (40, 40)
    assert net.back_edges() == [net.projections.index(rec[0])]
    # automatic scaling: every population's largest incoming |w| becomes 127
    for name in ("lif1.lif", "lif2"):
        top = max(np.abs(p.weight).max() for p in net.projections if p.post == name)
        assert top == pytest.approx(127)


@pytest.mark.parametrize("integrator", ["forward", "exponential"])
def test_lif_and_cuba_formulas(integrator):
    dt, tau, tau_syn, r, vth, vleak, w_in, bias, ws = 1e-3, 0.02, 0.005, 2.0, 0.7, 0.1, 1.5, 0.25, 10.0
    fwd = integrator == "forward"
    lif = _graph({"input": nir.Input(input_type={"input": np.array([1])}),
                  "a": nir.Affine(weight=np.ones((1, 1)), bias=np.full(1, bias)),
                  "n": nir.LIF(tau=np.array([tau]), r=np.array([r]), v_leak=np.array([vleak]),
                               v_threshold=np.array([vth]), v_reset=np.zeros(1))},
                 [("input", "a"), ("a", "n")])
    p = from_nir(lif, ConversionOptions(dt=dt, integrator=integrator, weight_scale=ws, conn_delay=0)).populations["n"]
    r_factor = r * dt / tau if fwd else r * (1 - np.exp(-dt / tau))
    assert p.alpha[0] == pytest.approx(1 - dt / tau if fwd else np.exp(-dt / tau), rel=1e-12)
    assert p.threshold[0] == pytest.approx(vth * ws / r_factor, rel=1e-12)
    assert p.i_offset[0] == pytest.approx(vleak * ws / r + bias * ws, rel=1e-12)

    cuba = _graph({"input": nir.Input(input_type={"input": np.array([1])}),
                   "a": nir.Affine(weight=np.ones((1, 1)), bias=np.full(1, bias)),
                   "n": nir.CubaLIF(tau_syn=np.array([tau_syn]), tau_mem=np.array([tau]), r=np.array([r]),
                                    v_leak=np.array([vleak]), v_threshold=np.array([vth]), v_reset=np.zeros(1),
                                    w_in=np.array([w_in]))},
                  [("input", "a"), ("a", "n")])
    c = from_nir(cuba, ConversionOptions(dt=dt, integrator=integrator, weight_scale=ws, conn_delay=0)).populations["n"]
    w_in_factor = w_in * dt / tau_syn if fwd else w_in * (1 - np.exp(-dt / tau_syn))
    scale = ws / (r_factor * w_in_factor)
    assert c.alpha_syn[0] == pytest.approx(1 - dt / tau_syn if fwd else np.exp(-dt / tau_syn), rel=1e-12)
    assert c.threshold[0] == pytest.approx(vth * scale, rel=1e-12)
    assert c.i_offset[0] == pytest.approx(vleak * r_factor / r * scale + bias * w_in * ws / w_in_factor, rel=1e-12)

    iff = _graph({"input": nir.Input(input_type={"input": np.array([1])}),
                  "a": nir.Affine(weight=np.ones((1, 1)), bias=np.full(1, bias)),
                  "n": nir.IF(r=np.array([r]), v_threshold=np.array([vth]), v_reset=np.zeros(1))},
                 [("input", "a"), ("a", "n")])
    i = from_nir(iff, ConversionOptions(dt=dt, integrator=integrator, weight_scale=ws, conn_delay=0)).populations["n"]
    assert i.alpha[0] == 1 and i.threshold[0] == pytest.approx(vth * ws / r) and i.i_offset[0] == pytest.approx(bias * ws)


def test_auto_scale_4bit_and_biases_summed():
    g = _graph({"input": nir.Input(input_type={"input": np.array([2])}),
                "a": nir.Affine(weight=np.array([[0.5, -2.0]]), bias=np.array([0.1])),
                "b": nir.Affine(weight=np.array([[1.0, 1.0]]), bias=np.array([0.2])),
                "n": _lif(1)},
               [("input", "a"), ("input", "b"), ("a", "n"), ("b", "n")])
    net = from_nir(g, ConversionOptions(weight_scale="auto", weight_max=15, conn_delay=0, dt=1e-3))
    ws = 15 / 2.0
    assert max(np.abs(p.weight).max() for p in net.projections) == pytest.approx(15)
    assert net.populations["n"].i_offset[0] == pytest.approx((0.1 + 0.2) * ws)
    assert net.meta["conversion"]["weight_scale_per_population"]["n"] == pytest.approx(ws)


def test_round_trip_through_file(tmp_path):
    g = sinabs_like()
    nir.write(str(tmp_path / "a.nir"), g)
    a = from_nir(g, ConversionOptions(dt=1.0, conn_delay=0))
    b = from_nir(tmp_path / "a.nir", ConversionOptions(dt=1.0, conn_delay=0))
    wb = {p.name: p.weight for p in b.projections}
    for pa in a.projections:
        assert np.array_equal(pa.weight, wb[pa.name])
    for name in a.populations:
        assert np.array_equal(a.populations[name].threshold, b.populations[name].threshold)


def _one(node, shape=(1, 4, 4)):
    return _graph({"input": nir.Input(input_type={"input": np.array(shape)}), "x": node,
                   "c": _conv(1, 1, 1), "n": _lif(16)},
                  [("input", "x"), ("x", "c"), ("c", "n")])


@pytest.mark.parametrize("graph,needle", [
    (lambda: _one(nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]), padding=np.array([0, 0]))),
     "SumPool2d kernel_size=[2, 2], stride=[1, 1]"),
    (lambda: _one(nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))),
     "node 'x': node type AvgPool2d is not supported"),
    (lambda: _graph({"input": nir.Input(input_type={"input": np.array([1, 4, 4])}),
                     "c": nir.Conv2d(input_shape=None, weight=np.ones((1, 1, 3, 3)), stride=1, padding=2, dilation=2,
                                     groups=1, bias=np.zeros(1)), "n": _lif(16)},
                    [("input", "c"), ("c", "n")]), "node 'c': Conv2d dilation=[2, 2]"),
    (lambda: _graph({"input": nir.Input(input_type={"input": np.array([3])}),
                     "a": nir.Linear(weight=np.ones((3, 3))), "b": nir.Linear(weight=np.ones((2, 3))), "n": _lif(2)},
                    [("input", "a"), ("a", "b"), ("b", "n")]), "two weight layers in a row"),
    (lambda: _graph({"input": nir.Input(input_type={"input": np.array([3])}), "n": _lif(3)},
                    [("input", "n")]), "must be joined by an Affine, Linear or Conv2d"),
    (lambda: _graph({"input": nir.Input(input_type={"input": np.array([3])}),
                     "a": nir.Linear(weight=np.ones((2, 4))), "n": _lif(2)},
                    [("input", "a"), ("a", "n")]), "node 'a': field weight has shape (2, 4)"),
    (lambda: _graph({"input": nir.Input(input_type={"input": np.array([3])}),
                     "a": nir.Linear(weight=np.ones((2, 3))), "n": _lif(5)},
                    [("input", "a"), ("a", "n")]), "node 'n': field"),
    (lambda: _graph({"input": nir.Input(input_type={"input": np.array([3])}),
                     "t": nir.Threshold(threshold=np.ones(3))}, [("input", "t")]), "node type Threshold"),
    (lambda: _graph({"a": nir.Linear(weight=np.ones((2, 3))), "n": _lif(2)}, [("a", "n")]), "no Input node"),
])
def test_rejections_name_node_and_field(graph, needle):
    with pytest.raises(NIRImportError) as err:
        from_nir(graph(), ConversionOptions(dt=1.0, conn_delay=0))
    assert needle in str(err.value)


def test_conv_with_extra_delay_rejected_unless_allowed():
    g = _graph({"input": nir.Input(input_type={"input": np.array([1, 4, 4])}), "c": _conv(2, 1, 3, padding=1),
                "n": _lif(32)}, [("input", "c"), ("c", "n")])
    with pytest.raises(NIRImportError, match="conn_delay=1"):
        from_nir(g, ConversionOptions(dt=1.0, conn_delay=1))
    net = from_nir(g, ConversionOptions(dt=1.0, conn_delay=1, allow_unsupported=True))
    assert net.meta["conversion"]["unsupported"] and net.projections[0].delay == 1


def test_bad_files(tmp_path):
    text = tmp_path / "model.nir"
    text.write_text("not hdf5")
    with pytest.raises(NIRImportError, match="model.nir: not a readable NIR file"):
        from_nir(text)
    good = tmp_path / "good.nir"
    nir.write(str(good), lava_like())
    cut = tmp_path / "cut.nir"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(NIRImportError, match="cut.nir"):
        from_nir(cut)
    with pytest.raises(NIRImportError, match="no such NIR file"):
        from_nir(tmp_path / "missing.nir")


def test_imported_conv_net_engine_equals_reference():
    from emu.reference import reference_run

    net = from_nir(sinabs_like(), ConversionOptions(dt=1.0, weight_scale="auto", conn_delay=0))
    raster = RNG.random((25, 128)) < 0.3
    profile = SemanticsProfile.chip()
    res = Emulator(net, profile)(raster, record_v=True)
    spikes, volts, _ = reference_run(net, {"input": raster}, 25, profile)
    assert res.raster("iaf1").any()
    for name in spikes:
        assert np.array_equal(res.raster(name)[0], spikes[name])
    for name in volts:
        assert np.array_equal(res.v[name][0].astype(float), volts[name])


def test_dt_comes_from_the_graph_metadata_or_is_refused():
    """ConversionOptions without dt takes the graph's metadata dt (as resolve and the CLI do);
    py-spinnaker2's 1 s default made a 1 ms model's decays those of a 1000x longer tick."""
    tau = 0.02
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}), "fc": nir.Linear(weight=np.ones((3, 2))),
             "n": _lif(3, tau=np.full(3, tau), r=np.full(3, tau / 1e-3))}
    edges = [("input", "fc"), ("fc", "n")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3}, type_check=False)
    net = from_nir(graph, ConversionOptions(integrator="forward", conn_delay=0))
    assert net.dt == 1e-3
    np.testing.assert_allclose(net.populations["n"].alpha, 1 - 1e-3 / tau)
    assert from_nir(graph, ConversionOptions(dt=2e-3, integrator="forward", conn_delay=0)).dt == 2e-3  # given wins
    with pytest.raises(NIRImportError) as refused:
        from_nir(_graph(nodes, edges), ConversionOptions(integrator="forward", conn_delay=0))
    assert str(refused.value) == ("the graph has no dt in its metadata: give the tick length with "
                                  "ConversionOptions(dt=SECONDS)")
    assert refused.value.cli_message.endswith("with --dt SECONDS")
    for bad in ("soon", float("nan"), -1e-3):
        with pytest.raises(NIRImportError, match="dt from the graph.s metadata"):
            from_nir(nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": bad}, type_check=False))
