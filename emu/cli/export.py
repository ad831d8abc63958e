"""``s2emu export``: the user's snnTorch model, named as ``MODULE.py:NAME``, to a NIR file
(:func:`emu.export.from_snntorch`).

The model comes from running the user's own Python file (as ``python MODULE.py`` would)
and weights from a state dict read with ``weights_only=True``; a whole pickled module
(``torch.save(model)``) is not read: unpickling it runs whatever the file says.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nir
import torch
from torch import nn

from emu.cli.files import CommandFileError, check_outputs, made_with
from emu.export import from_snntorch, write_nir
from emu.outputs import OutputSet


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def load_model(spec: str) -> nn.Module:
    """The module ``MODULE.py:NAME`` names: a module object, or a class or function called without arguments."""
    path_text, sep, name = spec.rpartition(":")
    if not sep or not name or not path_text.endswith(".py"):
        raise CommandFileError(f"{spec}: give the model as MODULE.py:NAME (a class, a function or a module object "
                               f"in that file)")
    path = Path(path_text)
    if not path.is_file():
        raise CommandFileError(f"{path}: no such Python file")
    spec_ = importlib.util.spec_from_file_location(f"s2emu_export_{path.stem}", path)
    module = importlib.util.module_from_spec(spec_)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # the file's own imports of its neighbours
    try:
        spec_.loader.exec_module(module)
    except Exception as exc:  # the user's code
        raise CommandFileError(f"{path}: running it raised {_one_line(exc)}") from None
    finally:
        sys.path.remove(folder)
    if not hasattr(module, name):
        raise CommandFileError(f"{path}: has no attribute {name!r}")
    model = getattr(module, name)
    if not isinstance(model, nn.Module):
        if not callable(model):
            raise CommandFileError(f"{path}: {name} is a {type(model).__name__}, not a model, class or function")
        try:
            model = model()
        except Exception as exc:
            raise CommandFileError(f"{path}: {name}() raised {_one_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise CommandFileError(f"{path}: {name}() gives a {type(model).__name__}, not a torch.nn.Module")
    return model


def load_state_dict(model: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise CommandFileError(f"{path}: no such state dict file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file it cannot read
        raise CommandFileError(f"{path}: not a state dict torch.load reads with weights_only=True "
                               f"({_one_line(exc)})") from None
    if not isinstance(state, dict):
        raise CommandFileError(f"{path}: holds a {type(state).__name__}, not a state dict (torch.save(model."
                               f"state_dict(), FILE))")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CommandFileError(f"{path}: does not fit the model ({_one_line(exc)})") from None


def main(args) -> int:
    check_outputs(args.out)
    model = load_model(args.model)
    if args.state_dict is not None:
        load_state_dict(model, args.state_dict)
    model.eval()
    graph = from_snntorch(model, torch.zeros(args.example_shape), dt=args.dt)
    with OutputSet("export", made_with(args)) as outputs:
        write_nir(graph, outputs.path(args.out))
    neurons = [f"{n} ({type(node).__name__} {tuple(int(s) for s in node.v_threshold.shape)})"
               for n, node in graph.nodes.items() if isinstance(node, (nir.LIF, nir.IF, nir.CubaLIF))]
    meta = graph.metadata
    print(f"wrote {args.out}: {len(graph.nodes)} nodes, spiking layers {', '.join(neurons)}; dt {meta['dt']:g} s, "
          f"{meta['integrator']} integrator, {meta['reset']} reset")
    return 0
