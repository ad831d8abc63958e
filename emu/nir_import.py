"""NIR graph -> :class:`~emu.network.Network`, with py-spinnaker2's converter rules.

``from_nir(graph_or_path, ConversionOptions(...))`` follows the converter rules of docs/semantics.md:
parameter formulas of LIF / IF / LI / CubaLIF for the FORWARD and EXPONENTIAL
integrators, manual or automatic per-population weight scaling, one extra
connection delay, biases of all weight nodes into a population summed, SumPool2d
fused into the next weight node, Flatten as a reshape. What the chip converter
rejects is rejected here with the node and field named, unless
``allow_unsupported=True`` asks to emulate it anyway (then the run is not a
chip prediction, and ``meta["conversion"]["unsupported"]`` says why). Its messages
name the setting to change both ways (:class:`emu.errors.UserError`): ``conn_delay=0``
for Python, ``--conn-delay 0`` for the command line.

The converter takes no extra delay on a conv projection, and its ``conn_delay`` applies
to every projection, so a conv graph converts with ``conn_delay=0``:
:func:`required_conn_delay` says so, and :func:`emu.settings.resolve` chooses it when no
flag or profile file sets another value (which is then refused, as the converter does).

``dt`` has no default: ``ConversionOptions(dt=None)`` (the default) takes the graph's
metadata (:func:`graph_metadata`), and a graph without one is refused, as the command
line refuses it without ``--dt`` (a 1 s tick, py-spinnaker2's default, silently made a
1 ms model 1000 times slower).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import nir
import numpy as np

from emu.errors import UserError
from emu.network import Network, NetworkError, Population, Projection, topological_order
from emu.network import conv_output_shape, pooled_shape
from emu.resources import CONVERSION_BYTES_PER_NEURON, MAX_LAG, ResourceError, check_memory

NEURON_NODES = (nir.LIF, nir.IF, nir.LI, nir.CubaLIF)
WEIGHT_NODES = (nir.Affine, nir.Linear, nir.Conv2d)
CHIP_MODELS = {"conv": "lif_conv2d", nir.CubaLIF: "lif_curr_exp_no_delay", "default": "lif_no_delay"}


class NIRImportError(UserError):
    """A NIR file or graph that cannot be converted; the message names node and field."""


@dataclass(frozen=True)
class ConversionOptions:
    """The chip converter's options (defaults as py-spinnaker2's when nothing is set).

    dt
        Tick length in seconds; ``None``: the graph's metadata ``dt`` (:func:`from_nir` refuses
        a graph without one). Hardware runs 1 ms ticks.
    integrator
        ``exponential`` (alpha = exp(-dt/tau)) or ``forward`` (alpha = 1 - dt/tau).
    weight_scale
        ``None``: no scaling (w_scale = 1). A number: that w_scale for every
        population. ``"auto"``: per target population, ``weight_max / max|W|``
        over all its incoming weights (recurrent included), or a percentile of
        |W| when ``scale_percentile`` is set. Thresholds and biases scale alike.
    weight_max
        The integer range auto scaling aims at: 127 (int8) or 15 (4-bit ``lif``).
    conn_delay
        Extra delay (ticks) of every connection, on top of the one-tick latency.
        The converter's default is 1; conv projections need 0 on the chip.
    allow_unsupported
        Emulate graph shapes the chip converter rejects instead of raising.
    """

    dt: Optional[float] = None
    integrator: str = "exponential"
    weight_scale: Union[None, float, str] = None
    weight_max: int = 127
    scale_percentile: Optional[float] = None
    conn_delay: int = 1
    allow_unsupported: bool = False

    def __post_init__(self):
        if self.integrator not in ("forward", "exponential"):
            raise NIRImportError(f"integrator must be 'forward' or 'exponential', got {self.integrator!r}")
        if self.dt is not None and not (_real(self.dt) and math.isfinite(self.dt)
                                        and self.dt > 0):
            raise NIRImportError(f"dt must be a finite number of seconds > 0, got {self.dt!r}")
        if isinstance(self.weight_scale, str) and self.weight_scale != "auto":
            raise NIRImportError(f"weight_scale must be None, a number or 'auto', got {self.weight_scale!r}")
        if self.weight_scale is not None and not isinstance(self.weight_scale, str) and not (
                _real(self.weight_scale) and math.isfinite(self.weight_scale) and self.weight_scale > 0):
            raise NIRImportError(f"weight_scale must be a finite number > 0, got {self.weight_scale!r}")
        if self.scale_percentile is not None and not (_real(self.scale_percentile)
                                                      and 0 < self.scale_percentile <= 100):
            raise NIRImportError(f"scale_percentile must be a percentile in (0, 100], got {self.scale_percentile!r}")
        if not _integer(self.conn_delay) or not 0 <= self.conn_delay <= MAX_LAG:
            raise NIRImportError(f"conn_delay must be an int in 0..{MAX_LAG}, got {self.conn_delay!r}")
        if not _integer(self.weight_max) or self.weight_max <= 0:
            raise NIRImportError(f"weight_max must be an int > 0, got {self.weight_max!r}")


def _real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _integer(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def read_nir(path: Union[str, Path]) -> nir.NIRGraph:
    """``nir.read`` with an error that names the file instead of an h5py traceback."""
    path = Path(path)
    if not path.is_file():
        raise NIRImportError(f"{path}: no such NIR file")
    try:
        # our own shape checks name node and field; nir's type inference rejects
        # graphs other tools write (e.g. per-channel (C, 1, 1) neuron parameters)
        graph = nir.read(str(path), type_check=False)
    except Exception as exc:  # h5py / nir raise many types for a bad file
        raise NIRImportError(f"{path}: not a readable NIR file ({type(exc).__name__}: {exc})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NIRImportError(f"{path}: holds a single {type(graph).__name__} node, not a NIR graph")
    graph.s2emu_source = str(path)  # errors about its content (from_nir) name the file
    return graph


def from_nir(graph: Union[nir.NIRGraph, str, Path], options: Optional[ConversionOptions] = None) -> Network:
    """Convert a NIR graph (or a path to one) into a Network in chip units; ``options.dt``
    None (the default): the graph's metadata ``dt``, refused when it has none."""
    options = options or ConversionOptions()
    if not isinstance(graph, nir.NIRGraph):
        graph = read_nir(graph)
    source = f"{graph.s2emu_source}: " if getattr(graph, "s2emu_source", None) else ""
    try:
        if options.dt is None:
            options = dataclasses.replace(options, dt=_metadata_dt(graph))
        return _Converter(graph, options).convert()
    except (NIRImportError, NetworkError) as exc:
        raise exc.prefixed(source, NIRImportError) from None
    except ResourceError as exc:
        raise exc.prefixed(source, ResourceError) from None


def graph_metadata(graph: nir.NIRGraph) -> Dict[str, Any]:
    """``dt``, ``integrator``, ``reset`` and ``reset_delay`` as the graph states them, plain Python
    values: the graph's own ``metadata`` first, else a value every neuron node's ``metadata``
    agrees on (snnTorch-style exporters put ``reset`` there)."""
    out: Dict[str, Any] = {}
    neuron_meta = [dict(node.metadata or {}) for node in graph.nodes.values() if isinstance(node, NEURON_NODES)]
    for key in ("dt", "integrator", "reset", "reset_delay"):
        if key in (graph.metadata or {}):
            out[key] = _plain(graph.metadata[key])
            continue
        values = {repr(_plain(m[key])) for m in neuron_meta if key in m}
        if len(values) == 1 and all(key in m for m in neuron_meta):
            out[key] = _plain(neuron_meta[0][key])
    return out


def _plain(x):
    x = np.asarray(x).item() if isinstance(x, (np.generic, np.ndarray)) and np.size(x) == 1 else x
    return x.decode() if isinstance(x, bytes) else x


def _metadata_dt(graph: nir.NIRGraph) -> float:
    """The graph's metadata ``dt`` in seconds, or the error that asks for one (both spellings)."""
    dt = graph_metadata(graph).get("dt")
    if dt is None:
        missing = "the graph has no dt in its metadata: give the tick length with {}"
        raise NIRImportError(missing.format("ConversionOptions(dt=SECONDS)"), cli=missing.format("--dt SECONDS"))
    return check_dt(dt, "the graph's metadata")


def check_dt(dt, where: str, error: type = None) -> float:
    """THE check of a tick length: ``dt`` as float seconds, finite and > 0, else ``error``
    (default :class:`NIRImportError`) saying where it came from."""
    error = error or NIRImportError
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise error(f"dt from {where} is not a number: {dt!r}") from None
    if not (math.isfinite(dt) and dt > 0):
        raise error(f"dt from {where} must be a finite number of seconds > 0, got {dt!r}")
    return dt


def required_conn_delay(graph: nir.NIRGraph) -> Optional[int]:
    """The extra connection delay the chip converter requires of ``graph``: 0 when a Conv2d is
    in it (no conv projection takes a delay, and the delay applies to every projection),
    else None (any value converts)."""
    return 0 if any(isinstance(node, nir.Conv2d) for node in graph.nodes.values()) else None


class _Converter:
    def __init__(self, graph: nir.NIRGraph, opt: ConversionOptions):
        self.g, self.opt = graph, opt
        self.succ: Dict[str, List[str]] = {n: [] for n in graph.nodes}
        self.pred: Dict[str, List[str]] = {n: [] for n in graph.nodes}
        for a, b in graph.edges:
            for end in (a, b):
                if end not in graph.nodes:
                    raise NIRImportError(f"edge ({a!r}, {b!r}) names unknown node {end!r}")
            self.succ[a].append(b)
            self.pred[b].append(a)
        self.unsupported: List[str] = []

    def reject(self, msg: str, cli: Optional[str] = None):
        """A graph shape the chip converter rejects: an error, or with ``allow_unsupported`` a note.
        ``cli``: the message as the command line says it, where ``msg`` names a Python keyword."""
        if not self.opt.allow_unsupported:
            why = "not supported on SpiNNaker2; {} emulates it anyway"
            raise NIRImportError(f"{msg} ({why.format('allow_unsupported=True')})",
                                 cli=f"{cli or msg} ({why.format('--allow-unsupported')})")
        self.unsupported.append(msg)

    def convert(self) -> Network:
        g = self.g
        for name, node in g.nodes.items():
            if isinstance(node, nir.NIRGraph):
                raise NIRImportError(f"node {name!r}: nested NIR sub-graphs are not supported; flatten the graph first")
            if not isinstance(node, (nir.Input, nir.Output, nir.Flatten, nir.SumPool2d) + NEURON_NODES + WEIGHT_NODES):
                if isinstance(node, nir.Conv1d):
                    raise NIRImportError(f"node {name!r}: Conv1d is not supported on SpiNNaker2")
                raise NIRImportError(f"node {name!r}: node type {type(node).__name__} is not supported "
                                     f"(supported: Input, Output, Affine, Linear, Conv2d, SumPool2d, Flatten, "
                                     f"LIF, IF, LI, CubaLIF)")
        pop_names = [n for n, node in g.nodes.items() if isinstance(node, (nir.Input,) + NEURON_NODES)]
        if not any(isinstance(g.nodes[n], nir.Input) for n in pop_names):
            raise NIRImportError("graph has no Input node")
        links = [link for n in pop_names for link in self._links_from(n)]
        shapes = self._population_shapes(pop_names, links)
        neurons = sum(int(np.prod(s, dtype=object)) for s in shapes.values())
        check_memory(neurons * CONVERSION_BYTES_PER_NEURON, f"converting the graph ({neurons:,} neurons)",
                     "it is too large to emulate on this machine")
        w_scale = self._weight_scales(pop_names, links)
        net = Network(dt=self.opt.dt)
        bias = {n: np.zeros(shapes[n]) for n in pop_names}
        for link in links:
            b = self._bias(link, shapes[link["post"]])
            bias[link["post"]] = bias[link["post"]] + b
        chip_models = {}
        for n in self._order(pop_names, links):
            node = g.nodes[n]
            if isinstance(node, nir.Input):
                net.add(Population(n, shapes[n], "input"))
                continue
            conv_fed = any(l["post"] == n and isinstance(g.nodes[l["weight"]], nir.Conv2d) for l in links)
            if conv_fed and isinstance(node, nir.CubaLIF):
                self.reject(f"node {n!r}: a Conv2d into CubaLIF")
            chip_models[n] = CHIP_MODELS["conv"] if conv_fed else CHIP_MODELS.get(type(node), CHIP_MODELS["default"])
            net.add(self._population(n, node, shapes[n], w_scale[n], bias[n]))
        for link in links:
            net.add(self._projection(link, shapes, w_scale[link["post"]]))
        net.meta["conversion"] = dict(
            dataclasses.asdict(self.opt),
            weight_scale_per_population={k: float(v) for k, v in w_scale.items()},
            chip_models=chip_models,
            unsupported=self.unsupported,
        )
        try:
            return net.validate()
        except NetworkError as exc:
            raise exc.prefixed("shapes do not fit: ", NIRImportError) from None

    # graph walking ----------------------------------------------------------
    def _links_from(self, pop: str) -> List[dict]:
        """Every path pop -> [SumPool2d] [Flatten] weight [Flatten] -> population."""
        out = []
        stack = [(s, [], None) for s in self.succ[pop]]
        while stack:
            name, via, weight = stack.pop()
            node = self.g.nodes[name]
            if isinstance(node, nir.Output):
                continue
            if isinstance(node, (nir.Input,) + NEURON_NODES):
                if weight is None:
                    raise NIRImportError(f"edge {pop!r} -> {name!r}: populations must be joined by an Affine, "
                                         f"Linear or Conv2d node")
                out.append(dict(pre=pop, post=name, weight=weight, via=via))
                continue
            if isinstance(node, WEIGHT_NODES):
                if weight is not None:
                    raise NIRImportError(f"nodes {weight!r} -> {name!r}: two weight layers in a row are not supported "
                                         f"on SpiNNaker2 (multiply them into one)")
                weight = name
            elif isinstance(node, nir.SumPool2d):
                if weight is not None:
                    raise NIRImportError(f"node {name!r}: SumPool2d after weight node {weight!r} must be followed by a "
                                         f"population before pooling (chip converter fuses pooling into the next layer)")
            stack.extend((s, via + [name], weight) for s in self.succ[name])
        return out

    def _order(self, pops, links):
        """Populations with inputs first, then along the links."""
        inputs = [n for n in pops if isinstance(self.g.nodes[n], nir.Input)]
        return topological_order(pops, [(l["pre"], l["post"]) for l in links], first=inputs)

    def _pool(self, link) -> int:
        pools = [self.g.nodes[v] for v in link["via"] if isinstance(self.g.nodes[v], nir.SumPool2d)]
        if len(pools) > 1:
            self.reject(f"link {link['pre']!r} -> {link['post']!r}: more than one SumPool2d")
        if not pools:
            return 1
        node = pools[0]
        k = np.broadcast_to(np.asarray(node.kernel_size).reshape(-1), 2)
        s = np.broadcast_to(np.asarray(node.stride).reshape(-1), 2)
        p = np.broadcast_to(np.asarray(node.padding).reshape(-1), 2)
        name = [v for v in link["via"] if self.g.nodes[v] is node][0]
        if k[0] != k[1] or not np.array_equal(k, s) or np.any(p != 0):
            raise NIRImportError(f"node {name!r}: SumPool2d kernel_size={k.tolist()}, stride={s.tolist()}, "
                                 f"padding={p.tolist()} is not supported on SpiNNaker2 (needs square kernel == stride, "
                                 f"no padding)")
        return int(k[0])

    def _conv_geometry(self, name: str, node: nir.Conv2d):
        k = node.weight.shape[2:]
        stride = tuple(int(s) for s in np.broadcast_to(np.asarray(node.stride).reshape(-1), 2))
        dil = np.broadcast_to(np.asarray(node.dilation).reshape(-1), 2)
        if np.any(dil != 1) or int(node.groups) != 1:
            raise NIRImportError(f"node {name!r}: Conv2d dilation={dil.tolist()}, groups={node.groups} is not "
                                 f"supported on SpiNNaker2 (needs dilation 1, groups 1)")
        pad = node.padding
        if isinstance(pad, str):
            if pad == "valid":
                pad = (0, 0)
            elif pad == "same" and all(kk % 2 == 1 for kk in k) and stride == (1, 1):
                pad = tuple((kk - 1) // 2 for kk in k)
            else:
                raise NIRImportError(f"node {name!r}: Conv2d padding={pad!r} with kernel {k} and stride {stride} is not "
                                     f"symmetric; use explicit symmetric padding")
        pad = tuple(int(p) for p in np.broadcast_to(np.asarray(pad).reshape(-1), 2))
        return stride, pad

    def _population_shapes(self, pops, links) -> Dict[str, tuple]:
        shapes = {}
        for n in self._order(pops, links):
            node = self.g.nodes[n]
            fed = [l for l in links if l["post"] == n and l["pre"] in shapes]
            derived = {self._link_output_shape(l, shapes[l["pre"]]) for l in fed}
            if len(derived) > 1:
                raise NIRImportError(f"node {n!r}: incoming weight nodes give different shapes {sorted(derived)}")
            if derived:
                shapes[n] = derived.pop()
            else:
                shapes[n] = self._declared_shape(n, node)
        return shapes

    def _declared_shape(self, n, node) -> tuple:
        if isinstance(node, nir.Input):
            t = node.input_type.get("input")
        else:
            t = node.input_type.get("input") if node.input_type else None
            if t is None or np.size(t) == 0:
                t = np.shape(node.r)
        shape = tuple(int(s) for s in np.asarray(t).reshape(-1))
        if not shape or any(s <= 0 for s in shape):
            raise NIRImportError(f"node {n!r}: cannot tell its shape (input_type={t!r})")
        return shape

    def _link_output_shape(self, link, pre_shape) -> tuple:
        node = self.g.nodes[link["weight"]]
        pool = self._pool(link)
        src = pooled_shape(pre_shape, pool, f"{link['pre']}->{link['post']}") if pool > 1 else pre_shape
        if isinstance(node, nir.Conv2d):
            if len(src) != 3:
                raise NIRImportError(f"node {link['weight']!r}: Conv2d needs a (C, H, W) input, "
                                     f"but {link['pre']!r} gives shape {src}")
            if node.weight.shape[1] != src[0]:
                raise NIRImportError(f"node {link['weight']!r}: field weight has {node.weight.shape[1]} input "
                                     f"channels, but {link['pre']!r} gives {src[0]} (shape {src})")
            stride, pad = self._conv_geometry(link["weight"], node)
            return conv_output_shape(src, node.weight.shape, stride, pad)
        w = np.asarray(node.weight)
        if w.ndim != 2 or w.shape[1] != int(np.prod(src)):
            raise NIRImportError(f"node {link['weight']!r}: field weight has shape {w.shape}, but its input "
                                 f"{link['pre']!r} has {int(np.prod(src))} neurons (shape {src})")
        return (w.shape[0],)

    def _weight_scales(self, pops, links) -> Dict[str, float]:
        opt = self.opt
        out = {}
        for n in pops:
            if opt.weight_scale is None:
                out[n] = 1.0
            elif opt.weight_scale != "auto":
                out[n] = float(opt.weight_scale)
            else:
                ws = [np.abs(np.asarray(self.g.nodes[l["weight"]].weight, np.float64)).ravel() for l in links if l["post"] == n]
                ws = np.concatenate(ws) if ws else np.zeros(0)
                top = np.percentile(ws, opt.scale_percentile) if opt.scale_percentile and ws.size else ws.max(initial=0)
                out[n] = opt.weight_max / top if top > 0 else 1.0
        return out

    def _bias(self, link, shape) -> np.ndarray:
        node = self.g.nodes[link["weight"]]
        b = getattr(node, "bias", None)
        if b is None or np.size(b) == 0:
            return np.zeros(shape)
        b = np.asarray(b, dtype=np.float64)
        if isinstance(node, nir.Conv2d):
            if b.size == 1:
                return np.full(shape, float(b.reshape(-1)[0]))
            if b.size != shape[0]:
                raise NIRImportError(f"node {link['weight']!r}: field bias has {b.size} values for {shape[0]} channels")
            return np.broadcast_to(b.reshape(-1, 1, 1), shape).copy()
        if b.size not in (1, int(np.prod(shape))):
            raise NIRImportError(f"node {link['weight']!r}: field bias has {b.size} values for {int(np.prod(shape))} "
                                 f"neurons")
        return np.broadcast_to(b.reshape(-1), (int(np.prod(shape)),)).reshape(shape).copy()

    # parameters ---------------------------------------------------------------
    def _param(self, name, node, field, shape) -> np.ndarray:
        value = getattr(node, field)
        arr = np.asarray(value, dtype=np.float64)
        if arr.size == int(np.prod(shape)):
            return arr.reshape(shape)
        if arr.ndim == 1 and len(shape) == 3 and arr.size == shape[0]:
            arr = arr.reshape(-1, 1, 1)  # one value per channel
        try:
            return np.broadcast_to(arr, shape).copy()
        except ValueError:
            raise NIRImportError(f"node {name!r}: field {field} has shape {arr.shape}, which does not fit the "
                                 f"population shape {shape}") from None

    def _population(self, n, node, shape, w_scale, bias) -> Population:
        dt, fwd = self.opt.dt, self.opt.integrator == "forward"
        P = lambda f: self._param(n, node, f, shape).ravel()  # noqa: E731
        bias = bias.ravel()
        for f in ("r",) + (("tau",) if isinstance(node, (nir.LIF, nir.LI)) else ()) + (
                ("tau_mem", "tau_syn") if isinstance(node, nir.CubaLIF) else ()):
            vals = P(f)
            if np.any(~np.isfinite(vals)) or np.any(vals <= 0):
                raise NIRImportError(f"node {n!r}: field {f} must be finite and > 0 (got min {vals.min():.6g})")
        for f in ("v_threshold", "v_leak", "v_reset", "w_in"):
            if hasattr(node, f) and getattr(node, f) is not None and not np.all(np.isfinite(P(f))):
                raise NIRImportError(f"node {n!r}: field {f} has non-finite values (NaN or infinite): a neuron "
                                     f"with them never spikes or always does")

        def leak(tau):
            return (1 - dt / tau, dt / tau) if fwd else (np.exp(-dt / tau), 1 - np.exp(-dt / tau))

        if isinstance(node, nir.IF):
            scale = w_scale / P("r")
            return Population(n, shape, "if", alpha=1.0, threshold=P("v_threshold") * scale,
                              i_offset=bias * w_scale, scale=scale)
        if isinstance(node, nir.CubaLIF):
            alpha, frac = leak(P("tau_mem"))
            r_factor = P("r") * frac
            alpha_syn, syn_frac = leak(P("tau_syn"))
            w_in_factor = P("w_in") * syn_frac
            scale = w_scale / (r_factor * w_in_factor)
            # the converter folds the bias's steady state into the membrane offset; NIR passes it
            # through the synaptic current, b * w_scale per tick in chip units (the profile's bias_path)
            bias_offset = bias * P("w_in") * w_scale / w_in_factor
            i_offset = P("v_leak") * r_factor / P("r") * scale + bias_offset
            return Population(n, shape, "cuba_lif", alpha=alpha, alpha_syn=alpha_syn,
                              threshold=P("v_threshold") * scale, i_offset=i_offset, scale=scale,
                              syn_bias=bias * w_scale, bias_offset=bias_offset)
        alpha, frac = leak(P("tau"))
        scale = w_scale / (P("r") * frac)
        i_offset = P("v_leak") * w_scale / P("r") + bias * w_scale
        if isinstance(node, nir.LI):
            return Population(n, shape, "li", alpha=alpha, i_offset=i_offset, scale=scale)
        return Population(n, shape, "lif", alpha=alpha, threshold=P("v_threshold") * scale, i_offset=i_offset,
                          scale=scale)

    def _projection(self, link, shapes, w_scale) -> Projection:
        node = self.g.nodes[link["weight"]]
        w = np.asarray(node.weight, dtype=np.float64) * w_scale
        label = link["weight"] if sum(1 for s in self.succ[link["weight"]]) <= 1 else f"{link['weight']}->{link['post']}"
        kw = dict(pool=self._pool(link), delay=self.opt.conn_delay, name=label)
        if isinstance(node, nir.Conv2d):
            if self.opt.conn_delay:
                said = "node {!r}: a Conv2d projection with an extra delay ({}); the chip converter takes conv " \
                       "networks only with {} (the default for a conv graph)"
                d = self.opt.conn_delay
                self.reject(said.format(link["weight"], f"conn_delay={d}", "conn_delay=0"),
                            cli=said.format(link["weight"], f"--conn-delay {d}", "--conn-delay 0"))
            stride, pad = self._conv_geometry(link["weight"], node)
            return Projection(link["pre"], link["post"], w, kind="conv2d", stride=stride, padding=pad, **kw)
        return Projection(link["pre"], link["post"], w, kind="dense", **kw)
