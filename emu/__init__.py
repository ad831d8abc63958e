"""Bit-accurate SpiNNaker2 emulator: NIR graph in, chip-identical spikes and voltages out."""
from emu.engine import Emulator, RunResult, run
from emu.network import Network, Population, Projection
from emu.nir_import import ConversionOptions, from_nir
from emu.profile import SemanticsProfile

__all__ = ["ConversionOptions", "Emulator", "Network", "Population", "Projection", "RunResult", "SemanticsProfile",
           "from_nir", "run"]
