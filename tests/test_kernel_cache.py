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


def _index(path, stamp, version=None):
    import pickle

    import numba

    with open(path, "wb") as f:
        pickle.dump(version or numba.__version__, f)
        f.write(pickle.dumps((stamp, {"sig": "x.1.nbc"})))


def test_prune_removes_only_what_no_current_source_loads(tmp_path, monkeypatch):
    src, store = tmp_path / "src", tmp_path / "cache"
    src.mkdir()
    store.mkdir()
    (src / "mod.py").write_text("x = 1\n")
    monkeypatch.setattr(cache, "SOURCES", ())
    monkeypatch.setattr(cache, "cache_dirs", lambda: [(str(store), str(src))])
    current = cache.source_stamp(str(src / "mod.py"))
    entries = {
        "mod.f-10.py311": current,  # this source's own: kept
        "mod.f-7.py311": "an older stamp",  # the same function before an edit moved it
        "gone.g-3.py311": current,  # a module that no longer exists
    }
    for base, stamp in entries.items():
        _index(store / f"{base}.nbi", stamp)
        for n in (1, 2):
            (store / f"{base}.{n}.nbc").write_bytes(b"code")
    _index(store / "mod.h-5.py311.nbi", current, version="0.1.0")  # written by another numba
    (store / "mod.k-9.py311.nbi").write_bytes(b"not a pickle")
    assert cache.prune() == 2 * 3 + 1 + 1
    assert sorted(p.name for p in store.iterdir()) == ["mod.f-10.py311.1.nbc", "mod.f-10.py311.2.nbc",
                                                       "mod.f-10.py311.nbi"]
    assert cache.prune() == 0


def test_prune_looks_where_the_kernels_are_cached():
    locator = kernels.run_samples._cache._impl._locator
    assert os.path.abspath(locator.get_cache_path()) in [os.path.abspath(d) for d, _ in cache.cache_dirs()]
