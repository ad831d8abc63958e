"""Training of the DVS-gesture network on CPU, with resumable checkpoints.

``train()`` runs BPTT over the ticks of each sample (frames are time-major inside
the model: (T, B, 2, 32, 32)), with Adam and one of snnTorch's spike-count losses,
and evaluates by output spike count. A checkpoint (model and optimizer state,
completed epochs, history, configuration) is written atomically after every
epoch; ``resume=True`` continues from it. Shuffling is seeded per epoch, so a
resumed run sees the same batches as an uninterrupted one.

``main()`` is the command line, e.g.::

    python -m emu.apps.gesture.train --root data --synthetic 8 --epochs 5 --ticks 300 \\
        --checkpoint out/gesture.pt --nir out/gesture.nir
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Dict, List, Optional

import nir
import snntorch.functional as SF
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from emu.errors import UserError
from emu.outputs import OutputSet, atomic_write, exclusive, kept
from emu.schema import CHECKPOINT, check_file

from .data import SynthConfig, ensure_synthetic_dataset, load_dvsgesture
from .export import to_nir
from .model import SpikingSequential, gesture_net, predict
from .qat import export_integer, quantization_aware

LOSSES = {
    "mse_count": lambda: SF.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2),
    "ce_rate": SF.ce_rate_loss,
    "ce_count": SF.ce_count_loss,
}
N_THREADS = 2  # the machine's cores; see train() for when 1 is better


def _batches(dataset, batch_size: int, shuffle: bool = False, seed: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def _time_major(frames: torch.Tensor) -> torch.Tensor:
    return frames.float().transpose(0, 1)  # (B, T, ...) -> (T, B, ...)


@torch.no_grad()
def evaluate(model: SpikingSequential, dataset, batch_size: int = 16, progress: bool = False) -> float:
    """Accuracy (by output spike count) of ``model`` on ``dataset``."""
    model.eval()
    correct = total = 0
    for frames, labels in tqdm(_batches(dataset, batch_size), desc="eval", disable=not progress, leave=False):
        correct += int((predict(model(_time_major(frames))) == labels).sum())
        total += len(labels)
    return correct / total


class CheckpointError(UserError):
    """A checkpoint that is not one, or that was made with other settings than a resume asks for."""


#: configuration fields a resume may change: more epochs continue the same run
RESUMABLE = ("epochs",)


def save_checkpoint(path, model, optimizer, epoch: int, history: List[dict], config: dict) -> None:
    """Write the checkpoint atomically (:func:`emu.outputs.atomic_write`: an interrupted save leaves
    the previous checkpoint and no temporary file)."""
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                "history": history, "config": config}, buf)
    atomic_write(path, buf.getvalue())


def load_checkpoint(path) -> dict:
    """A checkpoint's content, checked against :data:`emu.schema.CHECKPOINT` (tensors, numbers and
    lists only: a checkpoint never runs code when loaded)."""
    try:
        state = torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001  (torch raises many types for a file that is not a checkpoint)
        why = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
        raise CheckpointError(f"{path}: not a training checkpoint of s2emu train ({why}); delete it or give "
                              f"--no-resume") from None
    check_file(state, CHECKPOINT, str(path), CheckpointError)
    return state


def check_resumable(path, saved: dict, config: dict) -> None:
    """Refuse a checkpoint whose configuration differs from ``config`` in anything but
    :data:`RESUMABLE` (it would continue one run under another's settings)."""
    differ = sorted(k for k in set(saved) | set(config) if k not in RESUMABLE and saved.get(k) != config.get(k))
    if differ:
        what = ", ".join(f"{k} {saved.get(k)!r} there, {config.get(k)!r} now" for k in differ)
        said = "{}: made with other settings ({}); give --no-resume to start afresh, or {} to continue it under " \
               "these settings"
        raise CheckpointError(said.format(path, what, "resume_anyway=True"),
                              cli=said.format(path, what, "--resume-anyway"))


def train(model: SpikingSequential, train_set, test_set=None, epochs: int = 10, batch_size: int = 16,
          lr: float = 2e-3, loss: str = "mse_count", checkpoint=None, resume: bool = True,
          seed: int = 0, progress: bool = True, threads: int = N_THREADS, settings: Optional[dict] = None,
          resume_anyway: bool = False) -> List[Dict[str, float]]:
    """Train ``model`` in place; return the history, one dict per epoch
    (``epoch``, ``loss``, ``train_acc`` on the batches as trained, ``test_acc`` when
    ``test_set`` is given, ``seconds``).

    With ``checkpoint`` set, state is saved there after every epoch, and with
    ``resume`` an existing checkpoint is loaded first (training then continues at
    its next epoch, up to ``epochs`` in total), only when it was made with the same
    configuration (the arguments here and ``settings``: ticks, data, QAT, ...) but for
    ``epochs``, unless ``resume_anyway``. While training, this process alone writes the
    checkpoint (:func:`emu.outputs.exclusive`).

    ``threads`` goes to ``torch.set_num_threads`` (process-wide). The per-step
    tensors are small: on an idle 2-core machine 1 and 2 threads train equally
    fast, and while other processes load the cores, 2 OpenMP threads spin at every
    barrier and an epoch can take 10-30 times longer; pass 1 there.
    """
    torch.set_num_threads(threads)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))
    loss_fn = LOSSES[loss]()
    config = dict(settings or {}, epochs=epochs, batch_size=batch_size, lr=lr, loss=loss, seed=seed)
    if checkpoint is None:
        return _train(model, optimizer, loss_fn, train_set, test_set, config, None, 0, [], progress)
    with exclusive(checkpoint, "--checkpoint"):
        start, history = 0, []
        if resume and Path(checkpoint).exists():
            state = load_checkpoint(checkpoint)
            if not resume_anyway:
                check_resumable(checkpoint, state["config"], config)
            try:
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
            except (RuntimeError, ValueError, KeyError) as exc:
                raise CheckpointError(f"{checkpoint}: holds another network's state ("
                                      f"{' '.join(str(exc).split())[:160]}); give --no-resume to start afresh") from None
            start, history = state["epoch"], state["history"]
            for group in optimizer.param_groups:  # resumed anyway: the rate asked for now, as the config says
                group["lr"] = lr
        return _train(model, optimizer, loss_fn, train_set, test_set, config, checkpoint, start, history, progress)


def _train(model, optimizer, loss_fn, train_set, test_set, config: dict, checkpoint, start: int, history: List[dict],
           progress: bool) -> List[dict]:
    """The epochs from ``start`` to ``config["epochs"]`` (:func:`train`)."""
    epochs, batch_size, seed = config["epochs"], config["batch_size"], config["seed"]
    torch.manual_seed(seed)
    for epoch in range(start, epochs):
        model.train()
        began = time.perf_counter()
        total_loss = correct = seen = 0
        bar = tqdm(_batches(train_set, batch_size, shuffle=True, seed=seed + epoch),
                   desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=False)
        for frames, labels in bar:
            spikes = model(_time_major(frames))
            batch_loss = loss_fn(spikes, labels)
            optimizer.zero_grad()
            batch_loss.backward()
            optimizer.step()
            total_loss += batch_loss.item() * len(labels)
            correct += int((predict(spikes) == labels).sum())
            seen += len(labels)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.3f}")
        record = {"epoch": epoch + 1, "loss": total_loss / seen, "train_acc": correct / seen,
                  "seconds": time.perf_counter() - began}
        if test_set is not None:
            record["test_acc"] = evaluate(model, test_set, batch_size, progress)
        history.append(record)
        if progress:
            tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, epoch + 1, history, config)
            kept(checkpoint, f"holds epoch {epoch + 1} of {epochs} (run again to resume)")
    return history


def run(root, *, synthetic: Optional[int] = None, epochs: int = 10, ticks: int = 300, batch_size: int = 16,
        lr: float = 2e-3, loss: str = "mse_count", seed: int = 0, checkpoint=None, resume: bool = True,
        nir_path=None, threads: int = N_THREADS, progress: bool = True, qat_bits: Optional[int] = None,
        qat_percentile: Optional[float] = None, resume_anyway: bool = False) -> List[Dict[str, float]]:
    """Train the paper network on ROOT/DVSGesture (real, or ``synthetic`` samples per class
    written first); with ``qat_bits``, quantization-aware with chip weights of that width.
    ``nir_path``: where to write the trained graph (the chip-ready integer graph and its
    scales for QAT), together (:class:`emu.outputs.OutputSet`) at the end. Returns the history."""
    if synthetic:
        ensure_synthetic_dataset(root, synthetic, synthetic // 4 + 1, seed=seed,
                                 config=SynthConfig(duration_ms=max(ticks, 300)))
    train_set = load_dvsgesture(root, train=True, ticks=ticks)
    test_set = load_dvsgesture(root, train=False, ticks=ticks)
    torch.manual_seed(seed)
    model = gesture_net()
    if qat_bits:
        quantization_aware(model, bits=qat_bits, percentile=qat_percentile)
    settings = dict(ticks=ticks, data=str(Path(root).resolve()), synthetic=synthetic, qat_bits=qat_bits,
                    qat_percentile=qat_percentile)
    with OutputSet("train", dict(settings, epochs=epochs, batch_size=batch_size, lr=lr, loss=loss,
                                 seed=seed)) as outputs:
        history = train(model, train_set, test_set, epochs=epochs, batch_size=batch_size, lr=lr, loss=loss,
                        checkpoint=checkpoint, resume=resume, seed=seed, progress=progress, threads=threads,
                        settings=settings, resume_anyway=resume_anyway)
        if nir_path:
            if qat_bits:
                graph, scales = export_integer(model)
                outputs.write(Path(nir_path).with_suffix(".json"), json.dumps(dict(scales, output_set=outputs.stamp),
                                                                              indent=1))
            else:
                graph = to_nir(model)
            outputs.produce(nir_path, lambda staged: nir.write(str(staged), graph))
    return history
