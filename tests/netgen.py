"""Random small networks for property tests (hypothesis strategies)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from emu.network import Network, Population, Projection
from emu.profile import SemanticsProfile

MODELS = ("lif", "if", "li", "cuba_lif")


@st.composite
def profiles(draw, arithmetic=None):
    """Any combination of profile options."""
    arith = arithmetic or draw(st.sampled_from(("chip", "brian2", "float64", "fixed")))
    return SemanticsProfile(
        arithmetic=arith,
        reset_mode=draw(st.sampled_from(("zero", "subtract"))),
        reset_timing=draw(st.sampled_from(("same_tick", "next_tick"))),
        spike_condition=draw(st.sampled_from((">", ">="))),
        synaptic_latency=draw(st.integers(0, 2)),
        weight_bits=draw(st.sampled_from((None, 5, 8))),
        weight_rounding=draw(st.sampled_from(("truncate", "nearest", "nearest_even"))),
        weight_overflow="saturate",
        cuba_current=draw(st.sampled_from(("this_tick", "last_tick"))),
        bias_path=draw(st.sampled_from(("membrane", "synaptic"))),
        decay_storage=draw(st.sampled_from(("arithmetic", "float32"))),
        membrane_bits=draw(st.sampled_from((12, 16, 24, 32))),
        membrane_frac_bits=draw(st.sampled_from((0, 4, 8))),
        coef_frac_bits=draw(st.sampled_from((4, 8, 12))),
        fixed_rounding=draw(st.sampled_from(("truncate", "nearest", "stochastic"))),
        seed=draw(st.integers(0, 2**31)),
    )


def _dyadic(rng, shape, scale):
    """Weights that are multiples of 1/8: every partial sum is exact in float32,
    so the order of additions cannot matter and engines must agree bit for bit."""
    return np.round(rng.uniform(-scale, scale, size=shape) * 8) / 8


@st.composite
def networks(draw, max_pops=3, allow_conv=True, allow_delay=True, models=MODELS):
    """Input (flat or (C, H, W)) -> a chain of populations, with optional recurrent,
    skip and delayed projections, conv2d with pooling, mixed neuron models."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    net = Network(dt=1e-3)
    conv_in = allow_conv and draw(st.booleans())
    in_shape = (draw(st.integers(1, 2)), draw(st.integers(4, 7)), draw(st.integers(4, 7))) if conv_in else (
        draw(st.integers(1, 12)),)
    net.add(Population("in", in_shape, "input"))
    prev = net.populations["in"]
    n_pops = draw(st.integers(1, max_pops))
    wscale = draw(st.sampled_from((2.0, 20.0, 120.0)))
    for i in range(n_pops):
        model = draw(st.sampled_from(models))
        name = f"p{i}"
        kind = "dense"
        if len(prev.shape) == 3:
            kind = draw(st.sampled_from(("conv2d", "dense", "one_to_one", "sparse")))
        else:
            kind = draw(st.sampled_from(("dense", "one_to_one", "sparse")))
        pool = draw(st.sampled_from((1, 2))) if len(prev.shape) == 3 and min(prev.shape[1:]) >= 4 else 1
        src = prev.shape if pool == 1 else (prev.shape[0], prev.shape[1] // 2, prev.shape[2] // 2)
        kw = dict(pool=pool)
        if kind == "conv2d":
            k = draw(st.integers(1, min(3, *src[1:])))
            stride = draw(st.integers(1, 2))
            pad = draw(st.integers(0, k - 1))
            # 6 and 16 channels: footprints of 3 and more vectors per row (the kernels' unrolled widths)
            c_out = draw(st.sampled_from((1, 2, 3, 6, 16)))
            oh = (src[1] + 2 * pad - k) // stride + 1
            ow = (src[2] + 2 * pad - k) // stride + 1
            shape = (c_out, oh, ow)
            weight = _dyadic(rng, (c_out, src[0], k, k), wscale)
            kw.update(stride=stride, padding=pad)
        elif kind == "one_to_one":
            shape = src
            weight = _dyadic(rng, (int(np.prod(src)),), wscale)
        else:
            shape = (draw(st.one_of(st.integers(1, 10), st.sampled_from((20, 40, 70)))),)
            weight = _dyadic(rng, (shape[0], int(np.prod(src))), wscale)
            if kind == "sparse":  # a share of the pairs, listed in random order (rows: post, columns: pre)
                chosen = rng.random(weight.shape) < draw(st.sampled_from((0.1, 0.5, 1.0)))
                chosen.flat[rng.integers(chosen.size)] = True  # at least one synapse: something to change
                post_idx, pre_idx = np.nonzero(chosen)
                listed = rng.permutation(len(pre_idx))
                kw["connections"] = np.stack([pre_idx, post_idx], axis=1)[listed]
                weight = weight[post_idx, pre_idx][listed]
        n = int(np.prod(shape))
        # per-neuron parameters, or one value per population (as converted layers have)
        m = 1 if draw(st.booleans()) else n
        each = lambda x: np.resize(x, n)  # noqa: E731
        pop = Population(
            name, shape, model,
            alpha=each(rng.uniform(0.5, 1.0, m).round(4)),
            threshold=each(rng.uniform(0.2, 1.5, m).round(3) * min(wscale, 12.0)),
            i_offset=each((rng.uniform(-0.1, 0.3, m) * min(wscale, 12.0)).round(2)) if draw(st.booleans()) else 0.0,
            alpha_syn=each(rng.uniform(0.3, 0.9, m).round(3)) if model == "cuba_lif" else None,
        )
        if model == "cuba_lif" and draw(st.booleans()):  # a bias, in both of its forms (dyadic: exact sums)
            pop.syn_bias = each((rng.uniform(-0.1, 0.2, m) * min(wscale, 12.0) * 8).round() / 8)
            pop.bias_offset = each((rng.uniform(0.0, 0.5, m) * min(wscale, 12.0) * 8).round() / 8)
            pop.i_offset = pop.i_offset + pop.bias_offset
        net.add(pop)
        delay = draw(st.integers(0, 2)) if allow_delay else 0
        net.add(Projection(prev.name, name, weight, kind=kind, delay=delay, **kw))
        if draw(st.booleans()) and len(shape) == 1:
            net.add(Projection(name, name, _dyadic(rng, (n, n), wscale / 2), name=f"{name}.rec",
                               delay=draw(st.integers(0, 1)) if allow_delay else 0))
        prev = pop
    if n_pops >= 2 and len(net.populations["p0"].shape) == 1 and len(prev.shape) == 1 and draw(st.booleans()):
        p0 = net.populations["p0"]
        net.add(Projection("p0", prev.name, _dyadic(rng, (prev.size, p0.size), wscale), name="skip"))
    return net


def without_biases(net: Network) -> Network:
    """The network with every bias set to 0 (membrane offsets and CubaLIF synaptic biases), in place."""
    for p in net.populations.values():
        p.i_offset = np.zeros(p.size)
        if p.model == "cuba_lif":
            p.syn_bias, p.bias_offset = np.zeros(p.size), np.zeros(p.size)
    return net


@st.composite
def input_rasters(draw, network, max_ticks=40, batch=None):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    ticks = draw(st.integers(1, max_ticks))
    rate = draw(st.sampled_from((0.05, 0.2, 0.5)))
    n = network.populations["in"].size
    shape = (ticks, n) if batch is None else (batch, ticks, n)
    return rng.random(shape) < rate


def two_layer_lif_graph(rng: np.random.Generator):
    """A small NIR graph the command-line tests share: input 10 -> Affine -> LIF 16 -> Affine -> LIF 4
    (tau 20 ms, r 1, threshold 0.1; no dt in its metadata, so commands need --dt)."""
    import nir

    def lif(n):
        return nir.LIF(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.1),
                       v_reset=np.zeros(n))

    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([10])}),
               "fc1": nir.Affine(weight=rng.normal(0, 0.5, (16, 10)), bias=np.zeros(16)), "lif1": lif(16),
               "fc2": nir.Affine(weight=rng.normal(0, 0.5, (4, 16)), bias=np.zeros(4)), "lif2": lif(4)},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2")], type_check=False)


def lif_chain_graph(rng: np.random.Generator, weights, sizes=(12, 20, 5), threshold: float = 0.5,
                    dt: float = 1e-3):
    """Input -> Linear -> LIF -> Linear -> LIF (tau 20 ms, r 1), dt in its metadata; ``weights``:
    (mean, std) of each Linear's normal weights, drawn from ``rng`` in order: the small graph of
    the command-line tests that need weights of a given size."""
    import nir

    def lif(n):
        return nir.LIF(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, threshold),
                       v_reset=np.zeros(n))

    n_in, n_hidden, n_out = sizes
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "fc1": nir.Linear(weight=rng.normal(*weights[0], (n_hidden, n_in))), "lif1": lif(n_hidden),
        "fc2": nir.Linear(weight=rng.normal(*weights[1], (n_out, n_hidden))), "lif2": lif(n_out)},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2")],
        metadata={"dt": dt}, type_check=False)

