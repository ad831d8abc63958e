"""Where chip snapshots live: one file per full pytest id (classes, parametrize ids, name=),
stable, never shared; the update run lists the snapshots no test takes any more."""
import os
import subprocess
import sys

import nir
import numpy as np
import pytest

from emu.testing.snapshot_paths import SnapshotSession, escape, snapshot_path

from test_testing_kit import _dense


def test_paths_come_from_the_full_id_and_never_collide(tmp_path):
    f = tmp_path / "tests" / "test_model.py"
    snaps = tmp_path / "tests" / "__snapshots__" / "test_model"
    assert snapshot_path(f, "test_x") == snaps / "test_x.npz"  # plain tests keep their old path
    assert snapshot_path(f, ["TestA", "test_x"]) == snaps / "TestA" / "test_x.npz"
    assert snapshot_path(f, ["test_x[a/b]"]) == snaps / "test_x[a%2Fb].npz"
    assert snapshot_path(f, ["test_x[a_b]"], name="v.2") == snaps / "test_x[a_b].v%2E2.npz"
    ids = [["TestA", "test_x"], ["TestB", "test_x"], ["test_x"], ["test_x[a/b]"], ["test_x[a_b]"], ["test_x[a%2Fb]"],
           ["test_x[a.b]"], ["test_x[a b]"], ["test_x[ä]"], ["test_x[a::b]"], ["test_x[" + "a" * 300 + "]"],
           ["test_x[" + "a" * 299 + "b]"], ["TestA", "TestB", "test_x"], ["TestA", "test_x[a/b]"]]
    names = [None, "a", "a.b", "a_b"]
    paths = {(tuple(i), n): snapshot_path(f, i, n) for i in ids for n in names}
    assert len(set(paths.values())) == len(paths)  # no two ids share a file
    assert {snapshot_path(f, list(i), n) for (i, n) in paths} == set(paths.values())  # stable
    assert all(len(p.name) <= 130 and p.name.isascii() for p in paths.values())
    assert escape("a" * 300) != escape("a" * 299 + "b")


def test_ids_that_differ_only_in_case_are_refused(tmp_path):
    session = SnapshotSession()
    session.take(snapshot_path(tmp_path / "t.py", ["test_x[A]"]), "t.py::test_x[A]")
    session.take(snapshot_path(tmp_path / "t.py", ["test_x[A]"]), "t.py::test_x[A]")  # the same test again
    with pytest.raises(ValueError, match="differ only in letter case"):
        session.take(snapshot_path(tmp_path / "t.py", ["test_x[a]"]), "t.py::test_x[a]")


USER_TESTS = '''
import numpy as np
import pytest

X = np.load("x.npy")


class TestA:
    def test_x(self, chip_snapshot):
        chip_snapshot("model.nir", X[:1], weight_scale=50.0, conn_delay=0)


class TestB:
    def test_x(self, chip_snapshot):
        chip_snapshot("model.nir", X[1:], weight_scale=50.0, conn_delay=0)


@pytest.mark.parametrize("part", [0, 1], ids=["a/b", "a_b"])
def test_p(chip_snapshot, part):
    chip_snapshot("model.nir", X[part:part + 1], weight_scale=50.0, conn_delay=0)
    {named}
'''
NAMED = 'chip_snapshot("model.nir", X, weight_scale=50.0, conn_delay=0, name="both")'


def _pytest(project, *args):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=project,
                          capture_output=True, text=True, env=env, timeout=300)
    return done.returncode, done.stdout + done.stderr


def test_classes_and_parametrize_ids_get_their_own_snapshots_and_stale_ones_are_listed(tmp_path):
    """On main TestA::test_x and TestB::test_x (and ids a/b, a_b) shared one file: the update
    run wrote it twice and the next run failed whatever was updated."""
    project = tmp_path / "user"
    project.mkdir()
    nir.write(str(project / "model.nir"), _dense())
    np.save(project / "x.npy", np.random.default_rng(1).random((2, 40, 10)) < 0.25)
    (project / "test_model.py").write_text(USER_TESTS.format(named=NAMED))
    (project / "test_gone.py").write_text(USER_TESTS.split("class TestB")[0])
    rc, out = _pytest(project, "--s2emu-snapshot-update")
    assert rc == 0 and "stale" not in out, out
    snaps = project / "__snapshots__" / "test_model"
    assert sorted(str(p.relative_to(snaps)) for p in snaps.rglob("*.npz")) == [
        "TestA/test_x.npz", "TestB/test_x.npz", "test_p[a%2Fb].both.npz", "test_p[a%2Fb].npz", "test_p[a_b].both.npz",
        "test_p[a_b].npz"]
    rc, out = _pytest(project)
    assert rc == 0 and "5 passed" in out, out

    # test_gone.py and TestB are gone, test_p no longer takes its named snapshot: the update run
    # lists all three kinds
    (project / "test_gone.py").unlink()
    without_b = USER_TESTS.format(named="")
    without_b = without_b[:without_b.index("class TestB")] + without_b[without_b.index("@pytest.mark"):]
    (project / "test_model.py").write_text(without_b)
    rc, out = _pytest(project, "--s2emu-snapshot-update")
    assert rc == 0 and "4 snapshot file(s) that no test takes any more" in out, out
    gone = project / "__snapshots__" / "test_gone" / "TestA" / "test_x.npz"
    assert f"{gone}: no test file test_gone.py in {project} any more" in out
    assert f"{snaps / 'TestB' / 'test_x.npz'}: no test TestB::test_x in test_model.py any more" in out
    assert f"{snaps / 'test_p[a%2Fb].both.npz'}: test_model.py::test_p[a/b] passed without taking it" in out
    assert f"{snaps / 'test_p[a_b].both.npz'}: test_model.py::test_p[a_b] passed without taking it" in out
    # a run of some tests only judges what it collected: TestA's run or a -k selection does not
    # call test_p's snapshots stale
    rc, out = _pytest(project, "--s2emu-snapshot-update", "test_model.py::TestA")
    assert rc == 0 and "stale" not in out, out
    rc, out = _pytest(project, "--s2emu-snapshot-update", "-k", "TestA")  # test_p deselected: not judged
    assert rc == 0 and "test_p[a_b].both" not in out and "TestB/test_x.npz: no test" in out, out
