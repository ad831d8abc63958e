"""The sweep's qat method: per weight-bit count, the float model fine-tuned once with chip weights
and exported as an integer graph beside the results file, reused on resume only when trained
the same way."""
from __future__ import annotations

import dataclasses
import json
import math
import time
import traceback
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional

import nir
from torch.utils.data import Subset

from emu.apps.gesture import train as gesture
from emu.apps.gesture.data import N_CLASSES, SynthConfig, ensure_synthetic_dataset, load_dvsgesture
from emu.apps.gesture.export import from_nir as trainable
from emu.apps.gesture.qat import export_integer, quantization_aware
from emu.errors import UserError
from emu.export import write_nir
from emu.nir_import import read_nir
from emu.profile import SemanticsProfile
from emu.spike_io import atomic_write


class SweepError(UserError):
    """A sweep cannot start (missing optional dependency, bad grid, training data)."""


@dataclasses.dataclass(frozen=True)
class QatTraining:
    """How the qat method fine-tunes. ``train_set()`` gives the training samples,
    ``(frames (T, 2, 32, 32), label)`` as :func:`emu.apps.gesture.data.load_dvsgesture`;
    it is called once, and only when some weight-bit count has no trained graph yet."""

    train_set: Callable[[], object]
    epochs: int = 2
    lr: float = 1e-3
    batch_size: int = 16
    seed: int = 0
    threads: int = 1  # tiny per-step tensors: one torch thread (see emu.apps.gesture.train.train)
    data: str = ""  # what the training samples are (recorded with the trained graph)

    def recipe(self, percentile: Optional[float]) -> dict:
        """Everything that decides the trained graph: a saved graph is reused only for the same."""
        return dict(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, seed=self.seed, data=self.data,
                    percentile=percentile)


def qat_dir(out) -> Path:
    """Where the qat method of the results file ``out`` keeps its graphs (and synthetic training data)."""
    return Path(str(out) + ".qat")


def qat_model_path(out, weight_bits: int) -> Path:
    """The trained integer graph of the qat method for ``weight_bits``."""
    return qat_dir(out) / f"w{int(weight_bits)}.nir"


def conversion_of(point: dict, model, options: dict, out) -> dict:
    """``model`` and conversion ``options`` of a point: ptq converts the float model with the
    automatic (percentile) scale, qat its trained integer graph unscaled."""
    if point["method"] == "qat":
        return dict(model=str(qat_model_path(out, point["weight_bits"])),
                    options=dict(options, weight_scale=None, scale_percentile=None))
    return dict(model=str(model), options=options)


def _lif_dt(graph) -> float:
    """The tick the float graph's LIF parameters are written for, as emu.apps.gesture.export reads it."""
    lif = next(n for n in graph.nodes.values() if isinstance(n, nir.LIF))
    return float(lif.metadata.get("dt", graph.metadata.get("dt")))


def train_qat(model, weight_bits: int, percentile: Optional[float], samples, training: QatTraining, path,
              log: Callable[[str], None] = lambda s: None) -> List[dict]:
    """Fine-tune the float NIR ``model`` with ``weight_bits``-bit chip weights on ``samples``;
    write its integer graph to ``path`` (temp file, then rename) after the scales and
    the history in ``path`` with suffix ``.json``; return the history."""
    graph = read_nir(model)
    net = quantization_aware(trainable(graph), bits=weight_bits, percentile=percentile,
                             rounding=SemanticsProfile.fixed().weight_rounding)
    log(f"qat w{weight_bits}: fine-tuning {training.epochs} epoch(s) on {len(samples)} samples ...")
    began = time.perf_counter()
    history = gesture.train(net, samples, epochs=training.epochs, batch_size=training.batch_size, lr=training.lr,
                            seed=training.seed, progress=False, threads=training.threads)
    integer, scales = export_integer(net, dt=_lif_dt(graph))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path.with_suffix(".json"), json.dumps(dict(scales, recipe=training.recipe(percentile),
                                                            history=history), indent=1))
    write_nir(integer, path)
    trained = (f"loss {history[-1]['loss']:.4f}, train accuracy {history[-1]['train_acc']:.3f}" if history
               else "no epochs")
    log(f"qat w{weight_bits}: {trained}, {time.perf_counter() - began:.0f} s -> {path}")
    return history


def train_missing_qat(model, weight_bits: Iterable[int], out, options: dict, training: Optional[QatTraining],
                      log: Callable[[str], None] = lambda s: None) -> Dict[int, dict]:
    """Train the qat graph of every weight-bit count in ``weight_bits`` that has none next
    to ``out`` yet; return the failures, ``{weight_bits: {"error", "traceback"}}``."""
    wanted = sorted({int(w) for w in weight_bits})
    if training is not None:
        _check_recipes([qat_model_path(out, w) for w in wanted], training.recipe(options.get("scale_percentile")))
    # a graph counts as trained only with the recipe beside it (both are written atomically, recipe first)
    missing = [w for w in wanted if not (qat_model_path(out, w).exists() and qat_model_path(out, w).with_suffix(
        ".json").exists())]
    if missing and training is None:
        raise SweepError("the qat method needs training data: --train-data ROOT or --train-synthetic N")
    failures, samples = {}, None
    for w in missing:
        try:
            samples = training.train_set() if samples is None else samples
            train_qat(model, w, options.get("scale_percentile"), samples, training, qat_model_path(out, w), log)
        except Exception as exc:  # noqa: BLE001  (a failed training fails its points, not the sweep)
            failures[w] = dict(error=f"qat training failed: {type(exc).__name__}: {exc}",
                               traceback=traceback.format_exc(limit=5))
            log(f"qat w{w}: FAILED {failures[w]['error']}")
    return failures


def _check_recipes(paths, recipe: dict) -> None:
    """Refuse to reuse a saved qat graph trained otherwise than ``recipe`` asks (its
    points in the results file would silently mix two trainings)."""
    for path in paths:
        info = path.with_suffix(".json")
        if not path.exists() or not info.exists():
            continue
        saved = json.loads(info.read_text()).get("recipe", {})
        differ = {k: (saved.get(k), v) for k, v in recipe.items() if saved.get(k) != v}
        if differ:
            what = ", ".join(f"{k}: saved {a!r}, asked {b!r}" for k, (a, b) in differ.items())
            raise SweepError(f"{path} was trained differently ({what}); use another --out, or delete {path} and "
                             f"its qat rows from the results to retrain")


def load_train_set(root, synthetic: Optional[int], ticks: int, work: Path):
    """Training samples of the qat method: ROOT's training split, or the first ``synthetic``
    samples of a synthetic training split written under ``work`` (seed 0, as ``s2emu train``;
    the test samples of --synthetic are seed 2026's test split)."""
    if synthetic:
        root = work / f"train-synthetic{synthetic}"
        ensure_synthetic_dataset(root, n_train_per_class=math.ceil(synthetic / N_CLASSES), n_test_per_class=0,
                                 config=SynthConfig(duration_ms=max(ticks, 300)))
    samples = load_dvsgesture(root, train=True, ticks=ticks)
    return Subset(samples, range(synthetic)) if synthetic else samples
