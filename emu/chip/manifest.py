"""Manifests: a chip recording says what it was made from, and is refused when compared with anything else.

:func:`check_manifest` / :func:`load_chip_recording` refuse a recording that was made
from another model file, another input file, other options or another tick count
(:class:`ManifestMismatch` names every field that differs).
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Mapping, Optional, Sequence, Union

from emu.errors import UserError
from emu.nir_import import ConversionOptions
from emu.schema import MANIFEST, check
from emu.spike_io import load_recording

OPTION_FIELDS = ("dt", "integrator", "weight_scale", "weight_max", "scale_percentile", "conn_delay", "reset")
"""The options a chip run is made with (ConversionOptions fields that change the run, and the reset).
``allow_unsupported`` is left out: a graph that needs it cannot run on the chip at all."""

AUTO_ONLY_FIELDS = ("weight_max", "scale_percentile")
"""Options that matter only with ``weight_scale="auto"`` (compared only then)."""


class ManifestMismatch(UserError):
    """A chip recording was made from another model, input, options or tick count.

    ``fields`` lists what differs, e.g. ``["model hash", "option dt", "ticks"]``.
    """

    def __init__(self, message: str, fields: Sequence[str] = ()):
        super().__init__(message)
        self.fields = list(fields)


class ChipScriptError(UserError):
    """A model, input or option that cannot make a chip run (the message names it)."""


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def chip_options(options: Union[ConversionOptions, Mapping, None] = None, reset: Optional[str] = "subtract") -> dict:
    """Our options as stored in a manifest: the :data:`OPTION_FIELDS` of ``options`` plus ``reset``.

    ``options`` may be a :class:`ConversionOptions` or a mapping (a manifest's
    ``options``); ``reset=None`` leaves the reset out (unless the mapping has it).
    """
    if options is None:
        options = ConversionOptions()
    src = dataclasses.asdict(options) if isinstance(options, ConversionOptions) else dict(options)
    out = {k: src[k] for k in OPTION_FIELDS if k in src}
    if reset is not None:
        if reset not in ("subtract", "zero"):
            raise ChipScriptError(f"reset must be 'subtract' or 'zero', got {reset!r}")
        out["reset"] = reset
    return out


def _short(h) -> str:
    return f"{h[:12]}…" if isinstance(h, str) and len(h) > 12 else repr(h)


def check_manifest(recording_meta: Mapping, model_path=None, input_path=None,
                   options: Union[ConversionOptions, Mapping, None] = None, ticks: Optional[int] = None,
                   reset: Optional[str] = None, sample: Optional[int] = None, source: str = "chip recording") -> dict:
    """Check that a chip recording was made from this model, input, options and tick count.

    ``recording_meta``: the recording's meta (its ``"manifest"`` is checked).
    ``model_path`` / ``input_path``: files whose sha256 must match; ``options``:
    a :class:`ConversionOptions` or a mapping of :data:`OPTION_FIELDS`;
    ``reset``: compared too when given (``ConversionOptions`` has no reset);
    ``ticks``: compared with the manifest and with ``meta["ticks"]``; ``sample``:
    the sample of a batched input file that was run. ``None`` skips a check. ``weight_max`` and ``scale_percentile`` are compared only when
    either side scales with ``"auto"``. Raises :class:`ManifestMismatch` naming
    every field that differs; returns the manifest.
    """
    manifest = (recording_meta or {}).get("manifest")
    if not isinstance(manifest, Mapping):
        raise ManifestMismatch(f"{source}: no manifest (meta['manifest']): it was not written by a chip script "
                               f"or s2emu chip-run, so what it was run with is unknown", ["manifest"])
    check(manifest, MANIFEST.body, source, "meta.manifest")
    problems, fields = [], []

    def differ(field_name, text):
        fields.append(field_name)
        problems.append(f"{field_name}: {text}")

    for what, path, key, file_key in (("model", model_path, "model_sha256", "model_file"),
                                      ("input", input_path, "input_sha256", "input_file")):
        if path is None:
            continue
        actual = sha256_file(path)
        if manifest.get(key) != actual:
            differ(f"{what} hash", f"the recording was made from {what} {manifest.get(file_key)!r} with sha256 "
                                   f"{_short(manifest.get(key))}, but {path} has sha256 {_short(actual)}")
    if options is not None or reset is not None:
        expected = chip_options(options, reset=reset) if options is not None else {"reset": reset}
        recorded = dict(manifest.get("options") or {})
        auto = "auto" in (expected.get("weight_scale"), recorded.get("weight_scale"))
        for k, v in expected.items():
            if (k in AUTO_ONLY_FIELDS and not auto) or (k == "dt" and v is None):  # dt None: the graph's
                continue
            if k not in recorded:
                differ(f"option {k}", f"the recording does not say (expected {v!r})")
            elif recorded[k] != v:
                differ(f"option {k}", f"the recording was made with {k}={recorded[k]!r}, expected {v!r}")
    if ticks is not None:
        for where, value in (("manifest", manifest.get("ticks")), ("recording", (recording_meta or {}).get("ticks"))):
            if value is not None and value != int(ticks):
                differ("ticks", f"the {where} has {value} ticks, expected {int(ticks)}")
                break
    if sample is not None and manifest.get("input_sample", 0) != int(sample):
        differ("input sample", f"the recording ran sample {manifest.get('input_sample', 0)} of the input, "
                               f"expected sample {int(sample)}")
    if problems:
        raise ManifestMismatch(f"{source} does not match what it is compared with: " + "; ".join(problems), fields)
    return dict(manifest)


def load_chip_recording(path, model_path=None, input_path=None,
                        options: Union[ConversionOptions, Mapping, None] = None, ticks: Optional[int] = None,
                        reset: Optional[str] = None, sample: Optional[int] = None):
    """Load a chip recording (:func:`emu.spike_io.load_recording`) and :func:`check_manifest` it."""

    rec = load_recording(path)
    check_manifest(rec.meta, model_path, input_path, options, ticks, reset=reset, sample=sample, source=str(path))
    return rec


def generator(command: str) -> str:
    """Who made a manifest: this package's version and the command."""
    try:
        from importlib.metadata import version

        v = version("spinnaker2-emu")
    except Exception:  # noqa: BLE001  (not installed: a source checkout)
        v = "source checkout"
    return f"spinnaker2-emu {v} (s2emu {command})"
