"""The pytest plugin of spinnaker2-emu (entry point ``pytest11``: active wherever the package
is installed): the ``chip_snapshot`` fixture and the ``--s2emu-snapshot-update`` flag.

Loading the plugin imports nothing heavy: numba, torch and nir load when a test first
calls ``chip_snapshot``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

UPDATE_FLAG = "--s2emu-snapshot-update"  # emu.testing.snapshot.UPDATE_FLAG, without importing it


def pytest_addoption(parser):
    group = parser.getgroup("s2emu", "spinnaker2-emu chip snapshots")
    group.addoption(UPDATE_FLAG, action="store_true", default=False,
                    help="write or refresh the chip snapshots (__snapshots__/) of the tests that run")


@pytest.fixture
def chip_snapshot(request):
    """``chip_snapshot(model, inputs, *, dt=None, profile="chip", name=None, **conversion)``:
    runs the model on the emulated chip and compares its spikes with the snapshot stored
    beside the test (``docs/testing.md``); returns the run."""
    from emu.testing.snapshot import ChipSnapshot

    return ChipSnapshot(Path(str(request.node.path)), request.node.name, request.node.nodeid,
                        update=request.config.getoption(UPDATE_FLAG))
