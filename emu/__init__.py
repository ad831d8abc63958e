"""Bit-accurate SpiNNaker2 emulator: NIR graph in, chip-identical spikes and voltages out.

``from emu import Emulator, SemanticsProfile, from_nir, ConversionOptions`` works as
always; the names are imported on first use, so ``import emu`` (and ``s2emu
--help``) does not load numba, torch or nir.
"""
from importlib import import_module

_EXPORTS = {
    "ConversionOptions": "emu.nir_import",
    "from_snntorch": "emu.export",
    "Emulator": "emu.engine",
    "Network": "emu.network",
    "Population": "emu.network",
    "Projection": "emu.network",
    "Recording": "emu.spikes",
    "SemanticsProfile": "emu.profile",
    "from_nir": "emu.nir_import",
    "load_recording": "emu.spike_io",
    "run": "emu.engine",
    "save_recording": "emu.spike_io",
}
#: the name runs had before they and recordings became one container
_ALIASES = {"RunResult": ("emu.spikes", "Recording")}

__all__ = sorted(_EXPORTS) + sorted(_ALIASES)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    if name in _ALIASES:
        module, attr = _ALIASES[name]
        return getattr(import_module(module), attr)
    raise AttributeError(f"module 'emu' has no attribute {name!r}")


def __dir__():
    return __all__
