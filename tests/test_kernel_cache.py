"""numba's cached kernels are keyed by every file they are built from (emu.engine.cache)."""
import os

from emu.engine import cache, kernels


def test_kernels_use_the_engine_locator():
    locator = kernels.run_samples._cache._impl._locator
    assert isinstance(locator, (cache.UserDirLocator, cache.InTreeLocator)), type(locator)
    for name in ("intrinsics.py", "arrays.py", "kernels.py"):
        assert os.path.join(cache.PACKAGE_DIR, "engine", name) in cache.SOURCES
    assert os.path.join(cache.PACKAGE_DIR, "numerics.py") in cache.SOURCES


def test_a_change_to_any_source_changes_the_stamp(tmp_path, monkeypatch):
    own, dep = tmp_path / "own.py", tmp_path / "dep.py"
    own.write_text("x = 1\n")
    dep.write_text("y = 1\n")
    monkeypatch.setattr(cache, "SOURCES", (str(dep),))
    first = cache.source_stamp(str(own))
    assert cache.source_stamp(str(own)) == first
    dep.write_text("y = 22\n")  # another size: numba's own stamp would not see this file at all
    changed = cache.source_stamp(str(own))
    assert changed != first
    own.write_text("x = 22\n")
    assert cache.source_stamp(str(own)) != changed


def test_functions_outside_the_package_are_left_to_numba(tmp_path):
    def f():
        return 1

    assert cache.InTreeLocator.from_function(f, str(tmp_path / "elsewhere.py")) is None
