"""emu.export.from_snntorch: a user's snnTorch model -> NIR that the float reference runs like the model.

The identity tests step the user's module over time themselves (its own forward, its hidden
states; ``init_hidden=False`` through a tutorial-style forward over all steps, ``True``
through an ``nn.Sequential`` called once per step), export it with the same example input,
and run the graph with :class:`validate.float_reference.FloatReference` under the settings
the graph's metadata resolves to (``emu.settings.resolve``). In the module's own arithmetic
(float32) spikes and membranes are equal bit for bit in feed-forward nets. A recurrent
layer adds its recurrent input after ``beta*mem +`` the feed-forward one (snnTorch) where
the reference adds the two inputs first, so there the membranes agree to float32 rounding
(and the spikes of these seeded runs exactly; snnTorch's surrogates give float32 spikes,
so the module cannot run in float64 instead).
"""
import dataclasses
import json
from collections import OrderedDict

import nir
import numpy as np
import pytest
import snntorch as snn
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from emu.cli import main
from emu.engine import Emulator
from emu.export import ExportError, SumPool2d, from_snntorch
from emu.nir_import import ConversionOptions, from_nir
from emu.profile import SemanticsProfile
from emu.settings import resolve
from validate.float_reference import FloatReference

DT = 1e-3
STATE = {snn.Leaky: "init_leaky", snn.Synaptic: "init_synaptic", snn.RLeaky: "init_rleaky",
         snn.RSynaptic: "init_rsynaptic"}


class Loop(nn.Module):
    """The snnTorch tutorial's model: a forward over every step with explicit hidden states
    (``init_hidden=False``), returning each spiking layer's spikes and membranes."""

    def __init__(self, layers):
        super().__init__()
        self.names = [name for name, _ in layers]
        for name, layer in layers:
            self.add_module(name, layer)

    def forward(self, x):  # (B, T, ...)
        state = {n: getattr(getattr(self, n), STATE[type(getattr(self, n))])()
                 for n in self.names if type(getattr(self, n)) in STATE}
        state = {n: s if isinstance(s, tuple) else (s,) for n, s in state.items()}
        spikes = {n: [] for n in state}
        mems = {n: [] for n in state}
        for t in range(x.shape[1]):
            h = x[:, t]
            for name in self.names:
                layer = getattr(self, name)
                if name not in state:
                    h = layer(h)
                    continue
                out = layer(h, *state[name])
                h = out[0]
                state[name] = out if isinstance(layer, (snn.RLeaky, snn.RSynaptic)) else out[1:]
                spikes[name].append(h)
                mems[name].append(out[-1])
        return {n: (torch.stack(spikes[n], 1), torch.stack(mems[n], 1)) for n in spikes}


def run_sequential(seq: nn.Sequential, x):
    """An init_hidden=True Sequential called once per step; spikes and membranes of its neurons."""
    neurons = {name: m for name, m in seq.named_modules() if isinstance(m, snn.SpikingNeuron)}
    for m in neurons.values():
        m.reset_mem()
    trace = {n: ([], []) for n in neurons}

    def record(module, args, out):
        spikes, mems = trace[names[module]]
        spikes.append(out[0] if isinstance(out, tuple) else out)
        mems.append(module.mem)

    names = {m: n for n, m in neurons.items()}
    hooks = [m.register_forward_hook(record) for m in neurons.values()]
    with torch.no_grad():
        for t in range(x.shape[1]):
            seq(x[:, t])
    for h in hooks:
        h.remove()
    return {n: (torch.stack(s, 1), torch.stack(v, 1)) for n, (s, v) in trace.items()}


def module_run(make, init_hidden, x, seed=7):
    """(model, its own spikes/membranes, the graph exported from it)."""
    torch.manual_seed(seed)
    layers = make(init_hidden)
    if init_hidden:
        model = nn.Sequential(OrderedDict(layers))
        x = x.to(next(model.parameters()).dtype)
        out = run_sequential(model, x)
        graph = from_snntorch(model, x[:, 0], dt=DT)
    else:
        model = Loop(layers)
        x = x.to(next(model.parameters()).dtype)
        with torch.no_grad():
            out = model(x)
        graph = from_snntorch(model, x, dt=DT)
    return model, out, graph


def reference_run(graph, x, dtype):
    float_settings = resolve({}, graph).float
    ref = FloatReference(graph, **dataclasses.asdict(float_settings), dtype=dtype)
    return ref(x.numpy().astype(bool))


def assert_identical(make, init_hidden, x, dtype=torch.float32, membranes=True):
    """``membranes``: True for bit-equal membranes, else the tolerance."""
    _, out, graph = module_run(make, init_hidden, x)
    ref = reference_run(graph, x, dtype)
    batch, ticks = x.shape[:2]
    active = 0
    for name, (spk, mem) in out.items():
        mine = spk.reshape(batch, ticks, -1).numpy() != 0
        theirs = ref.raster(name)
        assert mine.shape == theirs.shape, name
        assert int((mine != theirs).sum()) == 0, (name, int((mine != theirs).sum()), mine.size)
        mem = mem.reshape(batch, ticks, -1).numpy().astype(np.float64)
        if membranes is True:
            assert np.array_equal(mem, ref.v[name]), name
        else:
            np.testing.assert_allclose(mem, ref.v[name], rtol=membranes, atol=membranes, err_msg=name)
        active += int(mine.sum())
    return active, graph


def rand_spikes(shape, seed, density=0.3):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < density).float()


# --- the layer kinds, each a function of init_hidden ----------------------------------------------

def _leaky(ih, **kw):
    return snn.Leaky(init_hidden=ih, **kw)


KINDS = {
    "linear-leaky": (lambda ih, reset, delay: [
        ("fc1", nn.Linear(12, 20)), ("lif1", _leaky(ih, beta=0.9, threshold=0.5, reset_mechanism=reset,
                                                    reset_delay=delay)),
        ("fc2", nn.Linear(20, 6, bias=False)), ("lif2", _leaky(ih, beta=torch.rand(6), learn_threshold=True,
                                                               threshold=0.3, reset_mechanism=reset,
                                                               reset_delay=delay))], (12,)),
    "conv-avgpool-flatten": (lambda ih, reset, delay: [
        ("conv1", nn.Conv2d(2, 4, 3, padding=1)), ("lif1", _leaky(ih, beta=torch.rand(4, 1, 1), threshold=0.4,
                                                                  reset_mechanism=reset, reset_delay=delay)),
        ("pool1", nn.AvgPool2d(2)), ("conv2", nn.Conv2d(4, 3, 3, stride=2, padding="valid")),
        ("lif2", _leaky(ih, beta=0.8, threshold=0.2, reset_mechanism=reset, reset_delay=delay)),
        ("flat", nn.Flatten()), ("drop", nn.Dropout(0.0)), ("fc", nn.Linear(3, 5)),
        ("lif3", _leaky(ih, beta=0.7, threshold=0.1, reset_mechanism=reset, reset_delay=delay))], (2, 8, 8)),
    "conv-then-avgpool": (lambda ih, reset, delay: [
        ("conv1", nn.Conv2d(2, 3, 3, padding="same")), ("pool", nn.AvgPool2d(2)),
        ("lif1", _leaky(ih, beta=0.95, threshold=0.3, reset_mechanism=reset, reset_delay=delay,
                        graded_spikes_factor=0.5)),
        ("sum", SumPool2d(2)), ("flat", nn.Flatten()), ("fc", nn.Linear(12, 4)),
        ("lif2", _leaky(ih, beta=0.5, threshold=0.2, reset_mechanism=reset, reset_delay=delay,
                        graded_spikes_factor=2.0))], (2, 8, 8)),
    "synaptic": (lambda ih, reset, delay: [
        ("fc1", nn.Linear(10, 16)), ("syn1", snn.Synaptic(alpha=torch.rand(16), beta=0.85, threshold=0.6,
                                                          init_hidden=ih, reset_mechanism=reset, reset_delay=delay,
                                                          learn_threshold=True)),
        ("fc2", nn.Linear(16, 5)), ("syn2", snn.Synaptic(alpha=0.6, beta=torch.rand(5), threshold=0.3,
                                                         init_hidden=ih, reset_mechanism=reset,
                                                         reset_delay=delay))], (10,)),
    "if": (lambda ih, reset, delay: [
        ("fc", nn.Linear(8, 6)), ("if1", _leaky(ih, beta=1.0, threshold=0.5, reset_mechanism=reset,
                                                reset_delay=delay))], (8,)),
}


@pytest.mark.parametrize("init_hidden", [False, True])
@pytest.mark.parametrize("reset,delay", [("subtract", True), ("subtract", False), ("zero", True), ("zero", False)])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_layer_kind_runs_like_the_module_bit_for_bit(kind, reset, delay, init_hidden):
    make, shape = KINDS[kind]
    x = rand_spikes((3, 40) + shape, seed=len(kind))
    active, graph = assert_identical(lambda ih: make(ih, reset, delay), init_hidden, x)
    assert active > 0
    assert graph.metadata == {"dt": DT, "integrator": "forward", "reset": reset}
    neurons = [n for n in graph.nodes.values() if isinstance(n, (nir.LIF, nir.IF, nir.CubaLIF))]
    assert {n.metadata["reset_delay"] for n in neurons} == {delay}


RECURRENT = {
    "rleaky-linear": lambda ih, reset, delay: [
        ("fc1", nn.Linear(10, 12)), ("rlif", snn.RLeaky(beta=torch.rand(12), linear_features=12, threshold=0.5,
                                                        init_hidden=ih, reset_delay=delay)),
        ("fc2", nn.Linear(12, 4)), ("lif", snn.Leaky(beta=0.9, init_hidden=ih, reset_delay=delay, threshold=0.3))],
    "rleaky-one-to-one": lambda ih, reset, delay: [
        ("fc1", nn.Linear(10, 12)), ("rlif", snn.RLeaky(beta=0.8, all_to_all=False, V=torch.randn(12),
                                                        threshold=0.4, init_hidden=ih, reset_delay=delay))],
    "rsynaptic": lambda ih, reset, delay: [
        ("fc1", nn.Linear(10, 12)), ("rsyn", snn.RSynaptic(alpha=0.7, beta=torch.rand(12), linear_features=12,
                                                           threshold=0.5, init_hidden=ih, reset_mechanism=reset)),
        ("fc2", nn.Linear(12, 4)), ("syn", snn.Synaptic(alpha=0.5, beta=0.9, init_hidden=ih, threshold=0.2,
                                                        reset_mechanism=reset))],
    "rleaky-one-to-one-conv": lambda ih, reset, delay: [
        ("conv", nn.Conv2d(2, 3, 3, padding=1)),
        ("rlif", snn.RLeaky(beta=0.8, all_to_all=False, V=torch.randn(3, 1, 1), threshold=0.4, init_hidden=ih,
                            reset_delay=delay))],
    "rleaky-conv": lambda ih, reset, delay: [
        ("conv", nn.Conv2d(2, 3, 3, padding=1)),
        ("rlif", snn.RLeaky(beta=0.9, conv2d_channels=3, kernel_size=3, threshold=0.5, init_hidden=ih,
                            reset_delay=delay)),
        ("pool", nn.AvgPool2d(2)), ("flat", nn.Flatten()), ("fc", nn.Linear(27, 4)),
        ("lif", snn.Leaky(beta=0.9, init_hidden=ih, reset_delay=delay, threshold=0.3))],
}


@pytest.mark.parametrize("init_hidden", [False, True])
@pytest.mark.parametrize("kind", sorted(RECURRENT))
def test_recurrent_layers_run_like_the_module(kind, init_hidden):
    """Spikes equal; membranes to float32 rounding: snnTorch adds the recurrent input after
    beta*mem + the feed-forward input, the reference adds both inputs first (module doc)."""
    shape = (2, 6, 6) if "conv" in kind else (10,)
    for reset, delay in (("subtract", True), ("subtract", False), ("zero", True)):
        if (kind.startswith("rleaky") and reset == "zero") or (kind == "rsynaptic" and not delay):
            continue  # refused (test below)
        x = rand_spikes((3, 40) + shape, seed=3)
        active, graph = assert_identical(lambda ih: RECURRENT[kind](ih, reset, delay), init_hidden, x,
                                         membranes=1e-5)
        assert active > 0
        rec = [n for n in graph.nodes if n.endswith(".recurrent")]
        assert len(rec) == 1 and (rec[0], rec[0].rsplit(".", 1)[0]) in graph.edges


# --- random mixed nets ----------------------------------------------------------------------------

@st.composite
def mixed_nets(draw):
    """A random chain: optional conv stage (Conv2d, AvgPool2d before or after a neuron layer),
    then dense layers of Leaky / Synaptic (scalar or per-neuron decays, either reset)."""
    reset = draw(st.sampled_from(("subtract", "zero")))
    delay = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    conv = draw(st.booleans())
    plan = [draw(st.sampled_from(("leaky", "synaptic"))) for _ in range(draw(st.integers(1, 3)))]
    widths = [draw(st.integers(1, 16)) for _ in plan]
    per_neuron = draw(st.lists(st.booleans(), min_size=len(plan), max_size=len(plan)))
    pool_first = draw(st.booleans())

    def make(ih):
        g = torch.Generator().manual_seed(seed)
        u = lambda *s: torch.rand(s, generator=g)  # noqa: E731
        layers, n = [], 12
        if conv:
            layers += [("conv", nn.Conv2d(2, 3, 3, padding=1))]
            pool = [("pool", nn.AvgPool2d(2))]
            neuron = [("clif", snn.Leaky(beta=u(3, 1, 1), threshold=0.2 + u(1).item(), init_hidden=ih,
                                         reset_mechanism=reset, reset_delay=delay))]
            layers += (pool + neuron if pool_first else neuron + pool) + [("flat", nn.Flatten())]
            n = 3 * 4 * 4
        for i, (kind, width, pn) in enumerate(zip(plan, widths, per_neuron)):
            layers.append((f"fc{i}", nn.Linear(n, width, bias=bool(i % 2))))
            beta = u(width) if pn else u(1).item()
            thr = 0.1 + u(width) if pn else 0.1 + u(1).item()
            if kind == "leaky":
                layers.append((f"n{i}", snn.Leaky(beta=beta, threshold=thr, init_hidden=ih, reset_mechanism=reset,
                                                  reset_delay=delay)))
            else:
                layers.append((f"n{i}", snn.Synaptic(alpha=u(1).item(), beta=beta, threshold=thr, init_hidden=ih,
                                                     reset_mechanism=reset, reset_delay=delay)))
            n = width
        for _, m in layers:
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                with torch.no_grad():
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.7)
        return layers

    return make, ((2, 8, 8) if conv else (12,))


@settings(max_examples=25, deadline=None)
@given(mixed_nets(), st.booleans(), st.integers(0, 2**31 - 1), st.floats(0.05, 0.5))
def test_random_mixed_nets_run_like_the_module_bit_for_bit(net, init_hidden, seed, density):
    make, shape = net
    assert_identical(make, init_hidden, rand_spikes((2, 30) + shape, seed, density))


# --- the emulator, the CLI ------------------------------------------------------------------------

def _mixed(ih):
    return [("conv", nn.Conv2d(2, 4, 3, padding=1, bias=False)), ("lif1", snn.Leaky(beta=0.9, threshold=0.3,
                                                                                    init_hidden=ih)),
            ("pool", nn.AvgPool2d(2)), ("flat", nn.Flatten()), ("fc1", nn.Linear(64, 10)),
            ("rsyn", snn.RSynaptic(alpha=0.6, beta=0.9, linear_features=10, threshold=0.4, init_hidden=ih)),
            ("fc2", nn.Linear(10, 3)), ("lif2", snn.Leaky(beta=torch.rand(3), threshold=0.2, init_hidden=ih))]


def test_the_emulator_imports_the_graph_and_its_float_profile_agrees():
    _, out, graph = module_run(_mixed, True, rand_spikes((2, 50, 2, 8, 8), 1))
    x = rand_spikes((2, 50, 2, 8, 8), 1).numpy().astype(bool)
    ref = reference_run(graph, torch.as_tensor(x), torch.float64)
    net = from_nir(graph, ConversionOptions(dt=DT, integrator="forward", conn_delay=0))
    emulated = Emulator(net, SemanticsProfile.snntorch(reset_mode="subtract", reset_timing="next_tick"))(
        x.reshape(2, 50, -1))
    for name in ("lif1", "rsyn", "lif2"):
        assert np.array_equal(ref.raster(name), emulated.raster(name)), name
        assert np.array_equal(ref.raster(name), out[name][0].reshape(2, 50, -1).numpy() != 0), name
    assert ref.spike_counts("lif2").sum() > 0
    # and the chip's conversion (auto scale, int8) takes it
    chip = from_nir(graph, ConversionOptions(dt=DT, integrator="forward", conn_delay=0, weight_scale="auto"))
    assert set(chip.populations) == {"input", "lif1", "rsyn", "lif2"}


MODEL_PY = '''
import torch, snntorch as snn
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.lif1 = nn.Linear(6, 8), snn.Leaky(beta=torch.full((8,), 0.9), threshold=0.2)
        self.fc2, self.lif2 = nn.Linear(8, 3), snn.Leaky(beta=0.8, threshold=0.2)

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        out = []
        for step in range(x.shape[0]):
            spk1, mem1 = self.lif1(self.fc1(x[step]), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            out.append(spk2)
        return torch.stack(out)

def broken():
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), snn.Leaky(beta=0.9, init_hidden=True))
'''


def test_s2emu_export_then_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(MODEL_PY)
    assert main(["export", "model.py:Net", "--example-shape", "5,1,6", "--dt", "1e-3", "--out", "net.nir"]) == 0
    assert capsys.readouterr().out.startswith("wrote net.nir:")
    graph = nir.read(tmp_path / "net.nir")
    assert [type(graph.nodes[n]).__name__ for n in ("fc1", "lif1", "fc2", "lif2")] == ["Affine", "LIF", "Affine",
                                                                                      "LIF"]
    np.save(tmp_path / "x.npy", (np.random.default_rng(0).random((40, 6)) < 0.4).astype(np.uint8))
    for backend in ("emulator", "snntorch"):
        assert main(["run", "net.nir", "--input", "x.npy", "--conn-delay", "0", "--auto-scale", "--backend", backend,
                     "--out", f"{backend}.json"]) == 0, capsys.readouterr().err
        meta = json.loads((tmp_path / f"{backend}.json").read_text())["meta"]
        assert {meta["settings"][k] for k in ("dt", "integrator", "reset", "float_reset_timing")} == {"graph metadata"}
    # a state dict, and one-line errors naming what is wrong
    torch.save({"fc1.weight": torch.zeros(8, 6)}, tmp_path / "partial.pt")
    bad = {("model.py:broken", "--example-shape", "1,6"): "module '1' (ReLU)",
           ("model.py:Nope", "--example-shape", "1,6"): "model.py: has no attribute 'Nope'",
           ("model.py", "--example-shape", "1,6"): "model.py: give the model as MODULE.py:NAME",
           ("model.py:Net", "--example-shape", "5,1,6", "--state-dict", "partial.pt"): "partial.pt: does not fit"}
    capsys.readouterr()
    for args, message in bad.items():
        assert main(["export", *args, "--dt", "1e-3", "--out", "bad.nir"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1, (args, err)
        assert not (tmp_path / "bad.nir").exists()


# --- what is refused, in one line naming the module -----------------------------------------------

def _refused(layers, example, match):
    with pytest.raises(ExportError, match=match):
        from_snntorch(nn.Sequential(OrderedDict(layers)), example, dt=DT)


@pytest.mark.filterwarnings("ignore::UserWarning")  # snnTorch's inhibition, torch's even 'same' padding
def test_what_does_not_convert_is_one_line_naming_the_module():
    x = torch.zeros(1, 4)
    leaky = lambda **kw: snn.Leaky(beta=0.9, init_hidden=True, **kw)  # noqa: E731
    _refused([("fc", nn.Linear(4, 3)), ("act", nn.ReLU()), ("lif", leaky())], x,
             r"module 'act' \(ReLU\): cannot be converted to NIR \(a non-spiking activation\)")
    _refused([("fc", nn.Linear(4, 3)), ("lap", snn.Lapicque(beta=0.9, init_hidden=True))], x,
             r"module 'lap' \(Lapicque\)")
    _refused([("fc", nn.Linear(4, 3)), ("lif", leaky(reset_mechanism="none"))], x, r"'lif'.*reset_mechanism='none'")
    _refused([("fc", nn.Linear(4, 3)), ("lif", snn.RLeaky(beta=0.9, linear_features=3, init_hidden=True,
                                                          reset_mechanism="zero"))], x, r"'lif'.*RLeaky's zero reset")
    _refused([("fc", nn.Linear(4, 3)), ("lif", leaky()), ("out", nn.Linear(3, 2))], x,
             r"module 'out' \(Linear\): comes after the last spiking layer")
    _refused([("fc", nn.Linear(4, 3)), ("lif", leaky()), ("fc2", nn.Linear(3, 2)),
              ("lif2", leaky(reset_mechanism="zero"))], x, r"module 'lif2': reset_mechanism='zero' but 'lif' has")
    _refused([("fc", nn.Linear(4, 3)), ("lif", snn.Leaky(beta=torch.tensor([0.5, 1.0, 0.9]), init_hidden=True))], x,
             r"'lif': beta = 1 for some neurons but not all")
    _refused([("fc", nn.Linear(4, 3)), ("lif", snn.Leaky(beta=1e-12, init_hidden=True))], x,
             r"'lif': beta = 1e-12 does not survive")
    _refused([("fc", nn.Linear(4, 3)), ("lif", snn.Leaky(beta=0.9, init_hidden=True, inhibition=True))], x,
             r"'lif'.*inhibition")
    _refused([("fc", nn.Linear(4, 3)), ("lif", snn.Leaky(beta=0.9, init_hidden=True,
                                                         spike_grad=lambda m: (m >= 0).float()))], x,
             r"'lif'.*Heaviside")
    img = torch.zeros(1, 1, 4, 4)
    _refused([("pool", nn.AvgPool2d(2)), ("lif", leaky())], img, r"'pool': an AvgPool2d needs a Linear or Conv2d")
    _refused([("conv", nn.Conv2d(1, 2, 2, padding="same")), ("lif", leaky())], img, r"'conv': padding='same'.*unevenly")
    _refused([("conv", nn.Conv2d(1, 2, 3)), ("lif", leaky()), ("fc", nn.Linear(2, 2)), ("lif2", leaky())], img,
             r"'fc': a Linear on a \(2, 2, 2\) input.*nn.Flatten")

    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.lif = nn.Linear(4, 4), leaky()

        def forward(self, x):
            return self.lif(self.fc(x) + x)

    class Encoded(Skip):
        def forward(self, x):
            return self.lif(self.fc(x * 2))

    class Twice(Skip):
        def forward(self, x):
            return self.lif(self.fc(self.fc(x)))

    with pytest.raises(ExportError, match=r"module 'lif': its input is not the output of 'fc'"):
        from_snntorch(Skip(), x, dt=DT)
    with pytest.raises(ExportError, match=r"module 'fc': its input is not the example input or a slice of it"):
        from_snntorch(Encoded(), x, dt=DT)
    with pytest.raises(ExportError, match=r"module 'fc': the forward is not a chain of layers"):
        from_snntorch(Twice(), x, dt=DT)
    _refused([("fc", nn.Linear(4, 4)), ("lif", leaky())], torch.zeros(4), r"module 'fc': takes a tensor of shape "
                                                                          r"\(4,\); .* batch axis first")
    with pytest.raises(ExportError, match="dt must be"):
        from_snntorch(nn.Sequential(nn.Linear(4, 3), leaky()), x, dt=0)


def test_tracing_leaves_hidden_states_as_they_were():
    lif = snn.Leaky(beta=0.9, init_hidden=True)
    net = nn.Sequential(nn.Linear(4, 3), lif)
    net(torch.ones(2, 4) * 5)
    before = lif.mem.clone()
    from_snntorch(net, torch.ones(1, 4) * 3, dt=DT)
    assert torch.equal(lif.mem, before)
