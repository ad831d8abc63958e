"""The engine: a network and a profile flattened into arrays (:mod:`.layout`), numba kernels
that run all ticks of a sample in one call (:mod:`.kernels`), and the :class:`Emulator`
that drives them (:mod:`.emulator`)."""
from emu.engine.emulator import Emulator, run

__all__ = ["Emulator", "run"]
