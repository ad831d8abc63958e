"""Every kind of file s2emu reads, declared once: its format name, the versions it reads, and
each field's type and range.

A reader calls :func:`check_file` (or, for the arrays of an ``.npz`` recording,
:func:`check_recording_arrays`) on what it decoded, before using any of it. A file of
another kind or of a newer version, a field of the wrong type (``weight_bits: "eight"``),
a number out of range or not finite: one :class:`FileSchemaError` (a
:class:`~emu.errors.UserError`) naming the file and the field (``board.json:
profile.weight_bits: expected an integer, got 'eight'``). Files written before a kind had
``format`` / ``version`` keys are read as its first version.

Kinds: :data:`PROFILE` (``s2emu calibrate --out``), :data:`RECORDING` (the emulator's JSON
layout; :func:`check_recording_arrays` its ``.npz``), :data:`MANIFEST` (a chip
recording's ``meta.manifest``), :data:`SWEEP_ROW` (a line of a sweep's results),
:data:`SWEEP_DATA` (``sweep --data FILE.npz``), :data:`CHECKPOINT` (``s2emu train``) and
:data:`SNAPSHOT` (a test-kit snapshot's ``meta.snapshot``).
"""
from __future__ import annotations

import math
import numbers
import typing
from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping, Optional, Tuple, Type

import numpy as np

from emu.errors import UserError
from emu.profile import SemanticsProfile
from emu.resources import MAX_LAG, MAX_TICKS


class FileSchemaError(UserError):
    """A file whose content is not what its kind declares (the message names file and field)."""


@dataclass(frozen=True)
class Field:
    """One field: ``kind`` is ``int``, ``number`` (finite), ``string``, ``bool``, ``object``,
    ``list``, ``array`` (anything with a shape) or ``any``."""

    kind: str
    required: bool = False
    null: bool = False
    choices: Tuple = ()
    low: Optional[float] = None  # inclusive
    high: Optional[float] = None  # inclusive
    above: Optional[float] = None  # exclusive
    fields: Optional[Mapping[str, "Field"]] = None  # an object's declared fields
    each: Optional["Field"] = None  # every item of a list, every undeclared value of an object
    closed: str = ""  # an object that refuses undeclared fields: what they are not ("a SemanticsProfile field")
    test: Optional[Callable[[Any], Optional[str]]] = None  # a last check: None, or what is wrong


@dataclass(frozen=True)
class Kind:
    """A kind of file: what its ``format`` says, the ``versions`` this s2emu reads, its body."""

    name: str
    format: Optional[str]
    versions: Tuple[int, ...]
    body: Field


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_EXPECTED = {"int": "an integer", "number": "a finite number", "string": "a string", "bool": "true or false",
             "object": "an object", "list": "a list", "array": "an array"}


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "any":
        return True
    if kind == "int":
        return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    if kind == "number":
        return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)
    if kind == "string":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, (bool, np.bool_))
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "list":
        return isinstance(value, (list, tuple))
    if kind == "array":
        return hasattr(value, "shape")
    raise ValueError(f"unknown field kind {kind!r}")


def check(value: Any, spec: Field, source: str, where: str) -> None:
    """Raise :class:`FileSchemaError` naming ``source`` and ``where`` unless ``value`` is as ``spec`` says."""
    def fail(text: str):
        raise FileSchemaError(f"{source}: {where}: {text}" if where else f"{source}: {text}")

    if value is None:
        if not spec.null:
            fail(f"expected {_EXPECTED.get(spec.kind, spec.kind)}, got null")
        return
    if not _type_ok(value, spec.kind):
        got = "a non-finite number" if isinstance(value, float) and not math.isfinite(value) else \
            f"{type(value).__name__} {_describe(value)}"
        fail(f"expected {_EXPECTED.get(spec.kind, spec.kind)}, got {got}")
    if spec.choices and value not in spec.choices:
        fail(f"{_describe(value)} is not one of {', '.join(map(repr, spec.choices))}")
    if spec.kind in ("int", "number"):
        if spec.low is not None and value < spec.low or spec.high is not None and value > spec.high:
            fail(f"{_describe(value)} is outside {_g(spec.low, '-inf')}..{_g(spec.high, 'inf')}")
        if spec.above is not None and not value > spec.above:
            fail(f"{_describe(value)} must be > {_g(spec.above)}")
    if spec.kind == "object":
        declared = spec.fields or {}
        for name, sub in declared.items():
            if sub.required and name not in value:
                fail(f"missing field {name!r}")
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if key in declared:
                check(item, declared[key], source, path)
            elif spec.closed:
                known = ", ".join(sorted(declared))
                raise FileSchemaError(f"{source}: {path}: not {spec.closed} (unknown field {key!r}; known: {known})")
            elif spec.each is not None:
                check(item, spec.each, source, path)
    if spec.kind == "list" and spec.each is not None:
        for i, item in enumerate(value):
            check(item, spec.each, source, f"{where}[{i}]")
    if spec.test is not None:
        problem = spec.test(value)
        if problem:
            fail(problem)


def _g(x, default: str = "") -> str:
    return default if x is None else f"{x:g}"


def check_header(data: Mapping, kind: Kind, source: str) -> int:
    """The ``format`` and ``version`` of a decoded file of ``kind``; returns the version (files
    without the keys: the first)."""
    fmt, version = data.get("format", kind.format), data.get("version", kind.versions[0])
    if kind.format is not None and fmt != kind.format:
        raise FileSchemaError(f"{source}: format: {_describe(fmt)} is not a {kind.name} ({kind.format!r})")
    if not _type_ok(version, "int"):
        raise FileSchemaError(f"{source}: version: expected an integer, got {_describe(version)}")
    if version not in kind.versions:
        newer = version > max(kind.versions)
        raise FileSchemaError(f"{source}: version: format version {version!r} is not one this spinnaker2-emu reads "
                              f"({', '.join(map(str, kind.versions))})" + ("; update spinnaker2-emu" if newer else ""))
    return int(version)


def check_file(data: Any, kind: Kind, source: str, error: Type[UserError] = FileSchemaError) -> int:
    """:func:`check_header`, then every field of ``kind``'s body; returns the version. ``error``:
    the class raised (a reader's own :class:`~emu.errors.UserError` subclass)."""
    try:
        if not isinstance(data, Mapping):
            raise FileSchemaError(f"{source}: expected a {kind.name} (a JSON object), got {type(data).__name__}")
        version = check_header(data, kind, source)
        check(data, kind.body, source, "")
    except FileSchemaError as exc:
        if error is FileSchemaError:
            raise
        raise exc.prefixed("", error) from None
    return version


# --- the kinds ------------------------------------------------------------------------------------

def _int(low=None, high=None, **kw) -> Field:
    return Field("int", low=low, high=high, **kw)


def _str_list(**kw) -> Field:
    return Field("list", each=Field("string"), **kw)


def _profile_fields() -> dict:
    """The profile section: every :class:`SemanticsProfile` field by its annotation (a Literal's
    values, int, Optional[int]); ranges are the profile's own (it is built from the file)."""
    hints = typing.get_type_hints(SemanticsProfile)
    out = {}
    for f in fields(SemanticsProfile):
        hint = hints[f.name]
        args = typing.get_args(hint)
        if typing.get_origin(hint) is typing.Literal:
            out[f.name] = Field("string", choices=args)
        elif hint is int:
            out[f.name] = Field("int")
        elif typing.get_origin(hint) is typing.Union and int in args and type(None) in args:
            out[f.name] = Field("int", null=True)
        else:
            out[f.name] = Field("any")
    return out


def _weight_scale(value) -> Optional[str]:
    if value == "auto" or (_type_ok(value, "number") and value > 0):
        return None
    return f"expected null, \"auto\" or a finite number > 0, got {_describe(value)}"


CONVERSION_FIELDS = dict(
    dt=Field("number", above=0), integrator=Field("string", choices=("exponential", "forward")),
    conn_delay=_int(0, MAX_LAG), weight_scale=Field("any", null=True, test=_weight_scale),
    scale_percentile=Field("number", null=True, above=0, high=100))

PROFILE = Kind("spinnaker2-emu profile file", "s2emu-profile", (1,), Field("object", fields=dict(
    profile=Field("object", fields=_profile_fields(), closed="a SemanticsProfile field"),
    conversion=Field("object", fields=CONVERSION_FIELDS, closed="a conversion option a profile file may fix"),
    exact=Field("bool"), mismatching_cells=_int(0, null=True),
    pinned=_str_list(), undetermined=_str_list(), inert=_str_list(), forced=_str_list(),
    unseen=Field("object", each=_str_list()), alternatives=Field("object", each=Field("list")),
    rests_on_prior=Field("object", each=Field("string")), suggestions=Field("object", each=Field("string")),
    fixed=Field("object"), candidates=Field("list", each=Field("object")), per_value=Field("object"),
    populations=_str_list(), runs=_int(0), notes=_str_list(), finding=Field("string"),
    made_from=Field("object"), warnings=Field("list"))))

_SHAPE = Field("list", each=_int(1))

_POPULATION = Field("object", closed="a population field", fields=dict(
    size=_int(1), shape=_SHAPE, spikes=Field("object", required=True), v=Field("object")))
_TICKS = _int(0, MAX_TICKS)

RECORDING = Kind("spinnaker2-emu recording", "s2emu-recording", (0, 1), Field("object", fields=dict(
    populations=Field("object", required=True, each=_POPULATION),
    meta=Field("object", fields=dict(ticks=_TICKS, n_ticks=_TICKS, run_ticks=_TICKS)))))

_OPTIONS = dict(CONVERSION_FIELDS, weight_max=_int(1), reset=Field("string", choices=("subtract", "zero")))

MANIFEST = Kind("chip manifest", None, (1,), Field("object", fields=dict(
    format=Field("string"), model_file=Field("string", null=True), model_sha256=Field("string", null=True),
    input_file=Field("string", null=True), input_sha256=Field("string", null=True),
    options=Field("object", fields=_OPTIONS), ticks=_int(0, MAX_TICKS), input_sample=_int(0),
    population_sizes=Field("object", each=_int(1)), input_populations=_str_list(null=True))))

_FRACTION = Field("number", low=0, high=1, null=True)

SWEEP_ROW = Kind("sweep results row", None, (1,), Field("object", fields=dict(
    key=Field("string", required=True), status=Field("string", required=True, choices=("ok", "error")),
    method=Field("string"), weight_bits=Field("int"), membrane_bits=Field("int"), rounding=Field("string"),
    settings=Field("object", fields=dict(format=Field("string"), version=Field("int"))),
    settings_key=Field("string"), accuracy=_FRACTION, agreement=_FRACTION, unquantized_accuracy=_FRACTION,
    spike_mismatch=_FRACTION, memory_bytes=_int(0), error=Field("string", null=True), seconds=Field("number"))))

def _inputs(a) -> Optional[str]:
    a = np.asarray(a)
    if a.ndim >= 3 and a.dtype.kind in "biuf":
        return None
    return f"expected (samples, ticks, ...) 0/1 values, got shape {a.shape} of {a.dtype}"


def _labels(a) -> Optional[str]:
    a = np.asarray(a)
    if a.ndim == 1 and a.dtype.kind in "iu":
        return None
    return f"expected one integer class per sample, got shape {a.shape} of {a.dtype}"


def _same_length(d) -> Optional[str]:
    n, k = len(d["inputs"]), len(d["labels"])
    return None if n == k else f"{n} samples in inputs, {k} labels"


SWEEP_DATA = Kind("sweep data file", None, (1,), Field("object", test=_same_length, fields=dict(
    inputs=Field("array", required=True, test=_inputs), labels=Field("array", required=True, test=_labels))))

CHECKPOINT = Kind("training checkpoint", None, (1,), Field("object", fields=dict(
    model=Field("object", required=True, each=Field("array")), optimizer=Field("object", required=True),
    epoch=_int(0, required=True), history=Field("list", required=True, each=Field("object")),
    config=Field("object", required=True, fields=dict(
        epochs=_int(0), batch_size=_int(1), lr=Field("number", above=0), loss=Field("string"), seed=Field("int"),
        ticks=_int(1), qat_bits=_int(2, null=True), qat_percentile=Field("number", null=True, above=0, high=100))))))

SNAPSHOT = Kind("chip snapshot", None, (1,), Field("object", fields=dict(
    model=Field("object", each=Field("string")), inputs=Field("object", each=Field("string")),
    settings=Field("object", fields=dict(conversion=Field("object"), profile=Field("object"))),
    version=Field("string"))))


#: the JSON ``meta`` of an ``.npz`` recording (version 1)
NPZ_META = Field("object", fields=dict(shapes=Field("object", required=True, each=_SHAPE), ticks=_TICKS))


def check_recording_arrays(arrays: Mapping[str, Any], meta: Mapping, source: str,
                           error: Type[UserError] = FileSchemaError) -> None:
    """The arrays of a version-1 ``.npz`` recording (:mod:`emu.spike_io`): ``format`` and
    ``version`` scalars, its ``meta`` (:data:`NPZ_META`), ``spikes/neurons`` integers,
    ``spikes/tick_end`` (samples, ticks) counts that never fall, ``v/<population>`` numbers of
    (samples, ticks, neurons)."""
    try:
        _recording_arrays(arrays, source)
        check(meta, NPZ_META, source, "meta")
    except FileSchemaError as exc:
        if error is FileSchemaError:
            raise
        raise exc.prefixed("", error) from None


def _recording_arrays(arrays: Mapping[str, Any], source: str) -> None:
    for key, kind in (("format", "U"), ("version", "iu")):
        arr = np.asarray(arrays.get(key, np.array(-1)))
        if arr.shape != () or arr.dtype.kind not in kind:
            raise FileSchemaError(f"{source}: {key}: expected {'a string' if kind == 'U' else 'an integer'} scalar, "
                                  f"got shape {arr.shape} of {arr.dtype}")
    check_header({"format": str(arrays["format"][()]), "version": int(arrays.get("version", np.array(-1))[()])},
                 RECORDING, source)
    for key, ndim in (("spikes/neurons", 1), ("spikes/tick_end", 2)):
        if key not in arrays:
            continue
        arr = np.asarray(arrays[key])
        if arr.ndim != ndim or arr.dtype.kind not in "iu":
            raise FileSchemaError(f"{source}: {key}: expected {ndim}-d integers, got shape {arr.shape} of {arr.dtype}")
    if "spikes/tick_end" in arrays:
        ends = np.asarray(arrays["spikes/tick_end"], np.int64)
        if ends.size and (ends.min() < 0 or np.any(np.diff(ends, axis=1) < 0)):
            raise FileSchemaError(f"{source}: spikes/tick_end: cumulative spike counts must start >= 0 and never "
                                  f"fall from one tick to the next")
    for key, arr in arrays.items():
        if key.startswith("v/"):
            arr = np.asarray(arr)
            if arr.ndim != 3 or arr.dtype.kind not in "iuf":
                raise FileSchemaError(f"{source}: {key}: expected (samples, ticks, neurons) numbers, got shape "
                                      f"{arr.shape} of {arr.dtype}")
