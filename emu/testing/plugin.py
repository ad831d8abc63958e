"""The pytest plugin of spinnaker2-emu (entry point ``pytest11``: active wherever the package
is installed): the ``chip_snapshot`` fixture and the ``--s2emu-snapshot-update`` flag.

An update run also lists the stale snapshots: files of the collected test files that no
test takes any more (:func:`emu.testing.snapshot_paths.stale_snapshots`).

Loading the plugin imports nothing heavy: numba, torch and nir load when a test first
calls ``chip_snapshot``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from emu.testing.snapshot_paths import SnapshotSession, stale_snapshots

UPDATE_FLAG = "--s2emu-snapshot-update"  # emu.testing.snapshot.UPDATE_FLAG, without importing it
SESSION = pytest.StashKey[SnapshotSession]()


def pytest_addoption(parser):
    group = parser.getgroup("s2emu", "spinnaker2-emu chip snapshots")
    group.addoption(UPDATE_FLAG, action="store_true", default=False,
                    help="write or refresh the chip snapshots (__snapshots__/) of the tests that run, and list "
                         "the stale ones")


def pytest_configure(config):
    config.stash[SESSION] = SnapshotSession()
    config.pluginmanager.register(_Tracker(config), "s2emu-snapshots")


class _Tracker:
    """The hooks that feed the session's :class:`SnapshotSession` and report stale snapshots."""

    def __init__(self, config):
        self.config, self.session = config, config.stash[SESSION]

    def pytest_collectreport(self, report):
        """Note every test file of a collected folder and every test and class of a collected module
        or class (what stale snapshots are judged by). Only a collector's own report lists all its
        children: a run of ``file.py::TestA`` reports the module's children selected, so that
        module is not judged."""
        if not report.passed:
            return
        for child in report.result:
            parent = child.parent
            if isinstance(child, pytest.Module) and parent.nodeid == report.nodeid:
                self.session.test_files.setdefault(Path(parent.path), set()).add(Path(child.path).stem)
            if isinstance(child, (pytest.Class, pytest.Function)) and parent.nodeid == report.nodeid:
                module = parent.path if isinstance(parent, pytest.Module) else None
                self.session.collected(parent.nodeid, module, child.name, child.nodeid, isinstance(child, pytest.Class))

    def pytest_runtest_logreport(self, report):
        if report.when == "call" and report.passed:
            self.session.passed.add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter):
        if not self.config.getoption(UPDATE_FLAG) or hasattr(self.config, "workerinput"):
            return
        stale = stale_snapshots(self.session)
        if stale:
            terminalreporter.section("s2emu: stale chip snapshots")
            terminalreporter.line(f"{len(stale)} snapshot file(s) that no test takes any more (delete them if "
                                  f"so):")
            for s in stale:
                terminalreporter.line(f"  {s.path}: {s.why}")


@pytest.fixture
def chip_snapshot(request):
    """``chip_snapshot(model, inputs, *, dt=None, profile="chip", name=None, **conversion)``:
    runs the model on the emulated chip and compares its spikes with the snapshot stored
    beside the test (``docs/testing.md``); returns the run."""
    from emu.testing.snapshot import ChipSnapshot

    node = request.node
    test_id = [n.name for n in node.listchain() if isinstance(n, pytest.Class)] + [node.name]
    return ChipSnapshot(Path(str(node.path)), test_id, node.nodeid, update=request.config.getoption(UPDATE_FLAG),
                        session=request.config.stash[SESSION])
