"""The regression-test kit for users' models (``docs/testing.md``).

* :func:`run_chip` (:mod:`emu.testing.runs`), :func:`assert_spikes_match` (:mod:`emu.testing.matching`),
  :func:`assert_accuracy_within` (:mod:`emu.testing.asserts`);
* the pytest fixture ``chip_snapshot`` and the flag ``--s2emu-snapshot-update``
  (:mod:`emu.testing.plugin`, registered as a ``pytest11`` entry point);
* hypothesis strategies: :mod:`emu.testing.strategies` (the ``[testing]`` extra).

The names load on first use: importing ``emu.testing`` loads neither numba nor torch.
"""
from importlib import import_module

_EXPORTS = {"assert_spikes_match": "emu.testing.matching", "assert_accuracy_within": "emu.testing.asserts",
            "as_recording": "emu.testing.matching", "run_chip": "emu.testing.runs"}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'emu.testing' has no attribute {name!r}")


def __dir__():
    return __all__
