"""numba's cached kernels are keyed by every file they are built from (emu.kernel_cache)."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from emu import numerics
from emu import kernel_cache as cache
from emu.engine import kernels


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


# --- a damaged or unwritable cache, in real processes -------------------------------------

# Calls one of the engine's cached kernels (the stochastic rounding's bits, compiled by
# emu.engine.kernels from emu/numerics.py) under two signatures, so its entry has an index
# and two data files; prints the results and whether each came from the cache.
PROBE = """
import json
import numpy as np
from emu.engine import kernels
f = kernels.stochastic_bits
{setup}
out = [int(f(1, 2, 3, 4)), int(f(np.uint64(5), np.uint64(6), np.uint64(7), np.uint64(8)))]
print(json.dumps({"bits": out, "hits": sum(f.stats.cache_hits.values()), "cache": f._cache.cache_path}))
"""
with np.errstate(over="ignore"):  # the hash wraps around by design
    EXPECTED = [int(numerics.stochastic_bits(np.uint64(s), s + 1, s + 2, s + 3)) for s in (1, 5)]
TREE = os.path.dirname(cache.PACKAGE_DIR)


def _environ(tmp_path, numba_cache_dir=None, tree=TREE, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    environ.update(PYTHONPATH=tree, HOME=str(tmp_path / "home"), **env)
    if numba_cache_dir is not None:
        environ["NUMBA_CACHE_DIR"] = str(numba_cache_dir)
    return environ


def _probe(tmp_path, numba_cache_dir=None, tree=TREE, setup="", **env):
    """Run PROBE in a fresh interpreter, ``setup`` before its calls; returns (its JSON, its stderr lines)."""
    environ = _environ(tmp_path, numba_cache_dir, tree, **env)
    done = subprocess.run([sys.executable, "-c", PROBE.replace("{setup}", setup)], env=environ, capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["bits"] == EXPECTED
    return result, done.stderr.splitlines()


def _entry(store):
    """The probed function's index and its two data files, in the order they were compiled."""
    (index,) = store.glob("*/numerics.stochastic_bits-*.nbi")
    base = str(index)[:-len(".nbi")]
    return index, pathlib.Path(base + ".1.nbc"), pathlib.Path(base + ".2.nbc")


def _swap(a, b):
    data = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(data)


CORRUPTIONS = {
    "truncated index": lambda i, d1, d2: i.write_bytes(i.read_bytes()[: i.stat().st_size // 2]),
    "truncated data": lambda i, d1, d2: d1.write_bytes(d1.read_bytes()[: d1.stat().st_size // 2]),
    "empty index": lambda i, d1, d2: i.write_bytes(b""),
    "empty data": lambda i, d1, d2: d1.write_bytes(b""),
    "random index": lambda i, d1, d2: i.write_bytes(np.random.default_rng(1).bytes(4000)),
    "random data": lambda i, d1, d2: d1.write_bytes(np.random.default_rng(2).bytes(40000)),
    "index and data swapped": lambda i, d1, d2: _swap(i, d1),
    "data of two signatures swapped": lambda i, d1, d2: _swap(d1, d2),
}
# the files named in the warnings, as numba meets the damage: a damaged index goes with its
# data files; two swapped data files are each found holding another signature's code
CULPRITS = {"index and data swapped": (0,), "data of two signatures swapped": (1, 2)}


@pytest.fixture(scope="module")
def warm_store(tmp_path_factory):
    """A cache folder holding the probed function's entry, compiled once for every test."""
    tmp = tmp_path_factory.mktemp("warm")
    first, err = _probe(tmp, tmp / "numba-cache")
    assert first["hits"] == 0 and err == []
    return tmp / "numba-cache"


@pytest.mark.parametrize("damage", list(CORRUPTIONS))
def test_a_damaged_entry_is_removed_with_one_line_and_compiled_again(tmp_path, warm_store, damage):
    store = tmp_path / "numba-cache"
    shutil.copytree(warm_store, store)
    files = _entry(store)
    CORRUPTIONS[damage](*files)

    healed, err = _probe(tmp_path, store)  # numba really loads the damaged files
    culprits = [files[i] for i in CULPRITS.get(damage, (0,) if damage.endswith("index") else (1,))]
    assert len(err) == len(culprits), err
    for line, culprit in zip(err, culprits):
        assert line.startswith(f"warning: kernel cache file {culprit} was unusable ("), line
        assert line.endswith("removed it, compiling stochastic_bits again"), line

    again, err = _probe(tmp_path, store)  # and the entry it saved in their place loads
    assert err == [] and again["hits"] == 2


def test_an_unwritable_numba_cache_dir_falls_back_to_the_user_cache_folder(tmp_path):
    # chmod does not stop root, who runs the tests here: a folder below a regular file
    # cannot be created by anyone, so numba's own writability check really fails
    (tmp_path / "a-file").write_text("")
    xdg = tmp_path / "xdg"
    first, err = _probe(tmp_path, tmp_path / "a-file" / "cache", XDG_CACHE_HOME=str(xdg))
    root = xdg / "spinnaker2-emu" / "numba"
    assert pathlib.Path(first["cache"]).parent == root
    assert err == [f"warning: NUMBA_CACHE_DIR={tmp_path / 'a-file' / 'cache'} is not a writable folder; "
                   f"the engine's kernels are cached in {root}"]
    assert len(list(root.glob("*/numerics.stochastic_bits-*.nbc"))) == 2
    again, _ = _probe(tmp_path, tmp_path / "a-file" / "cache", XDG_CACHE_HOME=str(xdg))
    assert again["hits"] == 2


def _read_only_copy(tmp_path):
    """A copy of the package whose ``__pycache__`` folders cannot be written by anyone (each
    is a regular file), as for a user of a system-wide install; returns its root."""
    tree = tmp_path / "site"
    shutil.copytree(cache.PACKAGE_DIR, tree / "emu", ignore=shutil.ignore_patterns("__pycache__"))
    for folder, subdirs, _ in os.walk(tree / "emu"):
        pathlib.Path(folder, "__pycache__").write_text("")
    return tree


def test_an_unwritable_package_caches_in_the_user_cache_folder(tmp_path):
    tree = _read_only_copy(tmp_path)
    xdg = tmp_path / "xdg"
    first, err = _probe(tmp_path, tree=str(tree), XDG_CACHE_HOME=str(xdg))
    assert err == []
    assert pathlib.Path(first["cache"]).parent == xdg / "spinnaker2-emu" / "numba"
    again, err = _probe(tmp_path, tree=str(tree), XDG_CACHE_HOME=str(xdg))
    assert err == [] and again["hits"] == 2
    # without XDG_CACHE_HOME, in ~/.cache
    (tmp_path / "home").mkdir()
    other, err = _probe(tmp_path, tree=str(tree))
    assert pathlib.Path(other["cache"]).parent == tmp_path / "home" / ".cache" / "spinnaker2-emu" / "numba"


def test_with_no_writable_folder_the_kernels_compile_in_a_folder_of_their_own(tmp_path):
    tree = _read_only_copy(tmp_path)
    (tmp_path / "home").write_text("")  # HOME a regular file: no ~/.cache for anyone
    first, err = _probe(tmp_path, tree=str(tree))
    assert len(err) == 1 and err[0].startswith("warning: no writable folder for the kernel cache")
    assert first["hits"] == 0
    assert not os.path.exists(first["cache"])  # removed at exit


def test_a_cache_folder_lost_after_start_costs_a_line_not_the_run(tmp_path):
    # the folder numba checked at import is a regular file when the compiled kernel is saved
    loss = "import shutil; shutil.rmtree(f._cache.cache_path); open(f._cache.cache_path, 'w').close()"
    first, err = _probe(tmp_path, tmp_path / "numba-cache", setup=loss)
    assert first["hits"] == 0
    assert len(err) == 1 and err[0].startswith(f"warning: could not save stochastic_bits in the kernel cache "
                                               f"{first['cache']} (FileExistsError: "), err


# Two processes save two signatures of one function into one cache folder. The first is held
# inside numba's save, between reading the index and writing it back, until the second has
# saved (or 2 s have passed): numba alone then writes back the index it read, without the
# second's entry, and the second's data file is overwritten by the first's.
RACE = """
import os, sys, time
import numpy as np
from numba.core import caching
from emu.engine import kernels
paused, saved, role = sys.argv[1:]
if role == "first":
    numba_save = caching.IndexDataCacheFile.save

    def save(self, key, data):
        read = self._load_index

        def read_then_wait():
            overloads = read()
            open(paused, "w").close()
            deadline = time.time() + 2
            while not os.path.exists(saved) and time.time() < deadline:
                time.sleep(0.02)
            return overloads

        self._load_index = read_then_wait
        numba_save(self, key, data)

    caching.IndexDataCacheFile.save = save
    kernels.stochastic_bits(1, 2, 3, 4)
else:
    while not os.path.exists(paused):
        time.sleep(0.02)
    kernels.stochastic_bits(np.uint64(5), np.uint64(6), np.uint64(7), np.uint64(8))
    open(saved, "w").close()
"""


def test_two_processes_saving_one_function_keep_both_entries(tmp_path):
    store = tmp_path / "numba-cache"
    environ = _environ(tmp_path, store)
    flags = [str(tmp_path / "paused"), str(tmp_path / "saved")]
    procs = [subprocess.Popen([sys.executable, "-c", RACE, *flags, role], env=environ, cwd=tmp_path,
                              stderr=subprocess.PIPE, text=True) for role in ("first", "second")]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
        assert proc.stderr.read() == ""
    both, err = _probe(tmp_path, store)
    assert err == [] and both["hits"] == 2


def test_a_process_stopped_inside_a_save_leaves_no_stale_code_behind(tmp_path):
    tree = tmp_path / "site"
    shutil.copytree(cache.PACKAGE_DIR, tree / "emu", ignore=shutil.ignore_patterns("__pycache__"))
    store = tmp_path / "numba-cache"
    first, _ = _probe(tmp_path, store, tree=str(tree))
    assert first["hits"] == 0
    with open(tree / "emu" / "numerics.py", "a") as f:  # the sources change (a git pull, say)
        f.write("# an edit\n")
    # a process compiles against the new sources and stops after numba wrote the new index,
    # before the data file it names: the data file of that name is the older sources' code
    stop = ("from numba.core import caching; import os\n"
            "caching.IndexDataCacheFile._save_data = lambda self, name, data: os._exit(3)")
    done = subprocess.run([sys.executable, "-c", PROBE.replace("{setup}", stop)], cwd=tmp_path,
                          env=_environ(tmp_path, store, str(tree)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr
    after, err = _probe(tmp_path, store, tree=str(tree))
    assert after["hits"] == 0, "machine code compiled from the older sources was loaded"


def test_every_compiled_function_of_the_package_takes_its_locators_whatever_is_imported_first():
    """The spike lists' and Denoise's kernels are defined outside the engine: imported before
    it (as the CLI does), they still get this package's locators, so that the entries
    ``python -m emu.apps.warm`` saves are the ones every command loads (numba's own locator
    keys them otherwise, and each kind of process compiled them again over the other's)."""
    code = ("import emu.spikes, emu.apps.gesture.denoise as d\n"
            "from emu import kernel_cache\n"
            "fns = [emu.spikes._keys_by_population, emu.spikes._window_keys, emu.spikes._population_at, d._keep]\n"
            "print(all(isinstance(f._cache._impl._locator, kernel_cache._EngineSources) for f in fns))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr
