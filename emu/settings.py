"""Where every semantic value of a run comes from, in one order everywhere:

    command-line flag  >  profile file  >  the graph's metadata  >  documented default

No default silently changes the model: ``dt`` has none (a graph without ``dt`` in its
metadata needs ``--dt``), and the values a graph states (``dt``, ``integrator``,
``reset``, ``reset_delay``, as the project's exporter writes them) win over the
converter's defaults. :func:`resolve` returns the conversion options, the semantics
profile, the float reference's settings and, for each value, where it came from
(``flag``, ``profile file``, ``graph metadata``, ``required for conv``, ``default``);
outputs record it.

``conn_delay``: the chip converter takes a conv graph only with no extra delay
(:func:`emu.nir_import.required_conn_delay`), so there, below flag and profile file,
the value is 0 (source ``required for conv``) instead of the default 1; a flag or
profile file that asks for another value gets the converter's error.

Graph metadata (:func:`emu.nir_import.graph_metadata`): the graph's own ``metadata`` first,
else a value every neuron node's ``metadata`` agrees on (snnTorch-style exporters put
``reset`` there).
"""
from __future__ import annotations

import hashlib
import json
import numbers
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import nir

from emu.errors import UserError
from emu.nir_import import ConversionOptions, check_dt, graph_metadata, required_conn_delay
from emu.numerics import weight_max
from emu.profile import ProfileError, SemanticsProfile
from emu.schema import PROFILE, FileSchemaError, check_file

#: the chip converter's defaults (py-spinnaker2's ConversionConfig), where nothing else says
CONVERSION_DEFAULTS = dict(integrator="exponential", conn_delay=1, reset="subtract")
#: what a float run of the user's model does unless told: snnTorch's reset_delay=True
FLOAT_DEFAULTS = dict(reset_timing="next_tick")


#: the values :func:`resolve` reads from ``flags`` beside every :class:`SemanticsProfile` field but
#: ``reset_mode`` (set as ``reset``): the keywords of the Python API (:func:`setting_names`)
FLAG_NAMES = ("dt", "integrator", "reset", "conn_delay", "weight_scale", "scale_percentile", "weight_bits",
              "allow_unsupported", "reset_timing")


def setting_names() -> tuple:
    """Every name :func:`resolve` reads from ``flags`` (sorted): a keyword outside them would be ignored."""
    return tuple(sorted(set(FLAG_NAMES) | {f.name for f in fields(SemanticsProfile)} - {"reset_mode"}))


class SettingsError(UserError):
    """A setting that is missing or has an impossible value (the message names it)."""


@dataclass(frozen=True)
class FloatSettings:
    """How the float reference steps the user's model (:class:`validate.float_reference.FloatReference`)."""

    dt: float
    integrator: str
    reset: str
    reset_timing: str


@dataclass(frozen=True)
class Settings:
    conversion: ConversionOptions
    profile: SemanticsProfile
    float: FloatSettings
    sources: Dict[str, str] = field(default_factory=dict)


def load_profile_file(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """The settings a calibrated profile file fixes, as :func:`resolve`'s ``profile_file``
    mapping (``reset_mode`` under its flag name ``reset``; the conversion it was calibrated
    under), ``profile_file``: the file's path and sha256, which outputs record, and, for a
    file ``s2emu calibrate`` wrote, ``calibration``: whether it reproduced the recording
    (``exact``), the cells the closest profile missed by (``mismatching_cells``), the pins that
    rest on a prior (``rests_on_prior``) and the options its recording could not see
    (``unseen``). The file is checked against its declared schema (:data:`emu.schema.PROFILE`:
    format, version, every field's type and range) and its profile must be one the emulator
    runs; any problem is one :class:`SettingsError` naming the file and field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the profile file: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        raise SettingsError(f"{path}: not a JSON profile file ({' '.join(str(exc).split())[:120]})") from None
    if not isinstance(data, dict) or not ({"profile", "conversion"} & set(data)):
        raise SettingsError(f"{path}: a profile file holds an object with \"profile\" and/or \"conversion\" "
                            f"objects (as s2emu calibrate --out writes it)")
    try:
        check_file(data, PROFILE, str(path))
    except FileSchemaError as exc:
        raise exc.prefixed("", SettingsError) from None
    section = data.get("profile", {})
    _check_profile_values(section, path)
    out: Dict[str, Any] = {}
    for name, value in section.items():
        out["reset" if name == "reset_mode" else name] = value
    out.update(data.get("conversion", {}))
    if out.get("scale_percentile") is not None and out.get("weight_scale") != "auto":
        raise SettingsError(f"{path}: conversion.scale_percentile: {out['scale_percentile']!r} is set but "
                            f"conversion.weight_scale is {out.get('weight_scale')!r}: a percentile applies only to "
                            f"\"auto\" scaling")
    out["profile_file"] = dict(path=str(path), sha256=hashlib.sha256(raw).hexdigest())
    if "exact" in data:
        out["calibration"] = dict(exact=bool(data["exact"]), mismatching_cells=data.get("mismatching_cells"),
                                  rests_on_prior=dict(data.get("rests_on_prior") or {}),
                                  unseen={k: list(v) for k, v in (data.get("unseen") or {}).items()})
    return out


def _check_profile_values(section: Mapping[str, Any], path: Path) -> None:
    """The file's profile is one the emulator runs: the whole section as a profile, and where it
    fixes only some fields (a hand-written file), each of them with the others' defaults."""
    try:
        SemanticsProfile(**section)
        return
    except ProfileError as exc:
        whole = exc
    if len(section) == len(fields(SemanticsProfile)):
        raise SettingsError(f"{path}: profile: {str(whole).replace('profile option ', '')}") from None
    for name, value in section.items():
        try:
            SemanticsProfile(**{name: value})
        except ProfileError as exc:
            raise SettingsError(f"{path}: profile.{name}: {str(exc).replace('profile option ', '')}") from None


def _pick(name: str, flags: Mapping, profile_file: Mapping, meta: Mapping, default, sources: dict, meta_key=None):
    """The value of ``name`` by the order of the module doc, and where it came from."""
    meta_key = meta_key or name
    for where, table, key in (("flag", flags, name), ("profile file", profile_file, name), ("graph metadata", meta,
                                                                                               meta_key)):
        if table.get(key) is not None:
            sources[name] = where
            return table[key]
    sources[name] = "default"
    return default


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


#: graph metadata keys of the settings whose name differs
_META_KEY = {"reset_mode": "reset"}


def _blamed(exc: UserError, sources: Mapping[str, str], pfile: Mapping, source: str) -> SettingsError:
    """``exc`` (a profile or conversion value refused) as a :class:`SettingsError` that names
    where the value came from: the profile file and field, or the graph's metadata."""
    text = str(exc).replace("profile option ", "")
    match = re.match(r"(\w+)[ =]", text)
    name = match.group(1) if match else ""
    where = sources.get(name)
    if where == "profile file" and "profile_file" in pfile:
        section = "conversion" if name in ("dt", "integrator", "conn_delay", "weight_scale", "scale_percentile") \
            else "profile"
        prefix = f"{pfile['profile_file']['path']}: {section}.{name}: "
    elif where == "graph metadata":
        key = _META_KEY.get(name, name)
        prefix, text = f"{source}: graph metadata {key}: ", re.sub(rf"^{name}\b", key, text)
    else:
        return exc.prefixed("", SettingsError)
    return SettingsError(prefix + text)


def resolve(flags: Mapping[str, Any], graph: Optional[nir.NIRGraph] = None, profile_file: Optional[Mapping] = None,
            preset: str = "chip", source: str = "the graph") -> Settings:
    """Conversion, profile and float settings of a run (module doc).

    ``flags``: values the user set (None or absent: unset): ``dt``, ``integrator``,
    ``conn_delay``, ``reset``, ``reset_timing``, ``weight_scale``, ``scale_percentile``,
    ``weight_bits``, ``allow_unsupported`` and any other :class:`SemanticsProfile` field.
    ``profile_file``: a calibrated profile's fields. ``source`` names the graph in errors.
    """
    flags = {k: v for k, v in dict(flags).items() if v is not None}
    pfile = dict(profile_file or {})
    meta = graph_metadata(graph) if graph is not None else {}
    sources: Dict[str, str] = {}
    dt = _pick("dt", flags, pfile, meta, None, sources)
    if dt is None:
        missing = f"{source} has no dt in its metadata: give the tick length with {{}}"
        raise SettingsError(missing.format("dt=SECONDS"), cli=missing.format("--dt SECONDS"))
    dt = check_dt(dt, {"graph metadata": f"the graph metadata of {source}", "profile file": pfile.get(
        "profile_file", {}).get("path", "profile file")}.get(sources["dt"], sources["dt"]), SettingsError)
    integrator = _pick("integrator", flags, pfile, meta, CONVERSION_DEFAULTS["integrator"], sources)
    reset = _pick("reset", flags, pfile, meta, CONVERSION_DEFAULTS["reset"], sources)
    required = required_conn_delay(graph) if graph is not None else None
    conn_delay = _pick("conn_delay", flags, pfile, {}, CONVERSION_DEFAULTS["conn_delay"] if required is None
                       else required, sources)
    if required is not None and sources["conn_delay"] == "default":
        sources["conn_delay"] = "required for conv"
    bits = flags.get("weight_bits", pfile.get("weight_bits"))
    scale = _pick("weight_scale", flags, pfile, {}, None, sources)
    percentile = _pick("scale_percentile", flags, pfile, {}, None, sources)
    if "profile_file" in pfile:
        sources["profile_file"] = f"{pfile['profile_file']['path']} (sha256 {pfile['profile_file']['sha256'][:16]})"
    if percentile is not None and scale != "auto":
        if sources["scale_percentile"] == "flag":
            said = "scale_percentile={} scales from a percentile of |W|: it needs weight_scale=\"auto\""
            raise SettingsError(said.format(percentile), cli=f"--scale-percentile {percentile:g} scales from a "
                                                             f"percentile of |W|: it needs --auto-scale")
        percentile, sources["scale_percentile"] = None, f"unused (weight_scale {scale!r})"
    try:
        conversion = ConversionOptions(dt=dt, integrator=integrator, weight_scale=scale,
                                       weight_max=weight_max(bits if _is_int(bits) and bits > 1 else 8),
                                       scale_percentile=percentile, conn_delay=conn_delay,
                                       allow_unsupported=bool(flags.get("allow_unsupported", False)))
    except UserError as exc:
        raise _blamed(exc, sources, pfile, source)
    changes = {"reset_mode": reset}
    sources["reset_mode"] = sources["reset"]
    for f in fields(SemanticsProfile):
        if f.name in ("reset_mode",):
            continue
        value = flags.get(f.name, pfile.get(f.name))
        if value is not None:
            changes[f.name] = value
            sources[f.name] = "flag" if f.name in flags else "profile file"
    try:
        profile = SemanticsProfile.preset(preset, **changes)
    except ProfileError as exc:
        raise _blamed(exc, sources, pfile, source)
    delay = meta.get("reset_delay")
    timing = flags.get("reset_timing") or ({True: "next_tick", False: "same_tick"}.get(delay)
                                           if delay is not None else FLOAT_DEFAULTS["reset_timing"])
    sources["float_reset_timing"] = ("flag" if "reset_timing" in flags else
                                     "graph metadata" if delay is not None else "default")
    return Settings(conversion, profile, FloatSettings(dt, integrator, reset, timing), sources)
