"""numba's on-disk cache of the kernels, keyed by every source file they are built from.

numba keys a cached function by a hash of the one file that defines it. The kernels
(:mod:`emu.engine.kernels`) are also built from the intrinsics, the argument bundles
and the numerics' rounding, in other files: after a change there alone (a ``git pull``
of an editable install, say), numba would load the machine code compiled from the old
files, and the engine would silently compute the old way. Here the stamp of a cached
function of this package is the hash of its own file and of all of those, so any change
to them compiles again.

:func:`install` puts the locators first in numba's list; they take only functions
defined in this package's files and leave every other function to numba's own. The
cache goes to ``NUMBA_CACHE_DIR`` where it is set, else to the package's ``__pycache__``;
where that folder cannot be written, to the user's cache folder
(:func:`user_cache_root`), and where none can, to a folder of the process's own.

A cache entry numba cannot load (a truncated, empty or overwritten file, an index and
data file swapped, a data file holding another function or signature) would make every
run fail, or load the wrong machine code, until the cache is deleted by hand. Here such
an entry is removed with one line on stderr naming the file, and the function compiles
again. numba's ``FunctionCache`` loads and saves through :func:`_load_overload` and
:func:`_save_overload` for this package's functions; it has no other hook.

:func:`prune` removes the entries no current source can load: numba names a cached
function by its line, so every edit that moves a kernel leaves its old files behind.
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import glob
import hashlib
import os
import pickle
import shutil
import sys
import tempfile
from typing import List, Optional, Tuple

import numba
from numba.core import caching, sigutils
from numba.core.funcdesc import FunctionDescriptor
from numba.core.typing.templates import Signature

try:
    import fcntl
except ImportError:  # Windows: no lock, numba's own behaviour
    fcntl = None

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
#: the lock file of a cache folder (see :func:`_locked`)
LOCK_NAME = "s2emu-kernels.lock"
#: the files the kernels are built from, besides the one defining each function
SOURCES = tuple(sorted(glob.glob(os.path.join(PACKAGE_DIR, "engine", "*.py")))
                + [os.path.join(PACKAGE_DIR, "numerics.py")])


@functools.lru_cache(maxsize=None)
def _digest(files: Tuple[Tuple[str, float, int], ...]) -> str:
    h = hashlib.sha256()
    for path, _, _ in files:
        h.update(path.encode())
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def source_stamp(py_file: str) -> str:
    """The hash of ``py_file`` and of :data:`SOURCES` (re-read when a file's time or size changes)."""
    stats = [(p, os.stat(p)) for p in sorted({os.path.abspath(py_file), *SOURCES})]
    return _digest(tuple((p, st.st_mtime, st.st_size) for p, st in stats))


class _EngineSources:
    """A numba cache locator whose freshness is :func:`source_stamp`, for this package's functions only."""

    def get_source_stamp(self):
        return source_stamp(self._py_file)

    @classmethod
    def from_function(cls, py_func, py_file):
        if not os.path.abspath(py_file).startswith(PACKAGE_DIR + os.sep):
            return None
        return super().from_function(py_func, py_file)


class UserDirLocator(_EngineSources, caching.UserProvidedCacheLocator):
    """In ``NUMBA_CACHE_DIR``, where it is set and writable."""


class InTreeLocator(_EngineSources, caching.InTreeCacheLocator):
    """In the package's ``__pycache__``, where ``NUMBA_CACHE_DIR`` is not set and the package is writable."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if numba.config.CACHE_DIR:  # the user asked for the cache outside the package
            return None
        return super().from_function(py_func, py_file)


def user_cache_root() -> str:
    """The user's cache folder for the kernels: ``$XDG_CACHE_HOME/spinnaker2-emu/numba``,
    or ``~/.cache/spinnaker2-emu/numba`` where XDG_CACHE_HOME is unset or relative."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "spinnaker2-emu", "numba")


class UserCacheLocator(_EngineSources, caching.UserWideCacheLocator):
    """In :func:`user_cache_root`, where neither ``NUMBA_CACHE_DIR`` nor the package can be
    written (a system-wide install, say): not numba's own user-wide folder, whose entries
    would be keyed by the defining file alone."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = os.path.join(user_cache_root(), self.get_suitable_cache_subpath(py_file))

    @classmethod
    def from_function(cls, py_func, py_file):
        self = super().from_function(py_func, py_file)
        if self is not None and numba.config.CACHE_DIR:
            _note(f"NUMBA_CACHE_DIR={numba.config.CACHE_DIR} is not a writable folder; "
                  f"the engine's kernels are cached in {user_cache_root()}")
        return self


class ScratchLocator(_EngineSources, caching.UserWideCacheLocator):
    """In a folder of this process's own, removed at exit, where no cache folder can be
    written: the kernels compile again in every process, but the command runs."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = _scratch_dir()

    @classmethod
    def from_function(cls, py_func, py_file):
        try:
            self = super().from_function(py_func, py_file)
        except OSError:  # not even a temporary folder: numba's own locators, or its error
            return None
        if self is not None:
            _note(f"no writable folder for the kernel cache (NUMBA_CACHE_DIR, the package's "
                  f"__pycache__, {user_cache_root()}); the kernels compile again in every run")
        return self


@functools.lru_cache(maxsize=None)
def _scratch_dir() -> str:
    path = tempfile.mkdtemp(prefix="s2emu-kernels-")
    atexit.register(shutil.rmtree, path, True)
    return path


_NOTED = set()


def _note(line: str) -> None:
    """One line on stderr, once per process."""
    if line not in _NOTED:
        _NOTED.add(line)
        print(f"warning: {line}", file=sys.stderr, flush=True)


#: the locators, in the order numba tries them
LOCATORS = (UserDirLocator, InTreeLocator, UserCacheLocator, ScratchLocator)


def install() -> None:
    """Make numba use these locators for this package's cached functions, and load and save
    them through :func:`_load_overload` and :func:`_save_overload` (idempotent); call before
    any of them is defined."""
    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # the name before numba 0.60
    classes = impl._locator_classes
    for cls in reversed(LOCATORS):
        if cls not in classes:
            classes.insert(0, cls)
    if "load_overload" not in caching.FunctionCache.__dict__:
        caching.FunctionCache.load_overload = _load_overload
        caching.FunctionCache.save_overload = _save_overload


def cache_dirs() -> List[Tuple[str, str]]:
    """(cache directory, source directory) of every package folder: its ``__pycache__``, and
    its folders under ``NUMBA_CACHE_DIR`` where that is set and under :func:`user_cache_root`
    (the locators' places that outlive a process)."""
    roots = [r for r in (numba.config.CACHE_DIR, user_cache_root()) if r]
    pairs = []
    for folder, subdirs, _ in os.walk(PACKAGE_DIR):
        subdirs[:] = [d for d in subdirs if d != "__pycache__"]
        pairs.append((os.path.join(folder, "__pycache__"), folder))
        subpath = caching._CacheLocator.get_suitable_cache_subpath(os.path.join(folder, "any.py"))
        pairs.extend((os.path.join(root, subpath), folder) for root in roots)
    return pairs


class _Corrupt(Exception):
    """A cache file that no numba wrote for this function: its path and why."""

    def __init__(self, path: str, why):
        if isinstance(why, BaseException):
            why = f"{type(why).__name__}: {why}"
        super().__init__(path, " ".join(str(why).split())[:160])
        self.path, self.why = self.args


@contextlib.contextmanager
def _locked(cache_dir: str, exclusive: bool):
    """Hold the cache folder's lock: shared while an entry is read, exclusive while one is
    saved. numba saves an entry as read index, write index, write data, so without it two
    processes compiling two signatures of one function at once lose one of them, and a
    reader can find the index's new entry beside the data file of an older one."""
    try:
        fd = os.open(os.path.join(cache_dir, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a folder that vanished: what follows fails or finds nothing, and says so
        fd = None
    try:
        if fd is not None and fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _read_index(cache_file) -> dict:
    """The index's overloads (signature key -> data file name); {} where there is none, or
    one saved from other sources or by another numba (numba saves a new one over it)."""
    path = cache_file._index_path
    try:
        with open(path, "rb") as f:
            version = pickle.load(f)
            rest = f.read()
        if not isinstance(version, str):
            raise _Corrupt(path, "it does not start with a numba version")
        if version != cache_file._version:
            return {}
        stamp, overloads = pickle.loads(rest)
    except (FileNotFoundError, NotADirectoryError):  # no entry yet, or its folder is gone
        return {}
    except _Corrupt:
        raise
    except Exception as exc:  # anything a damaged file makes pickle raise
        raise _Corrupt(path, exc)
    base = os.path.basename(path)[:-len(".nbi")]
    if not isinstance(overloads, dict) or not all(
            isinstance(n, str) and n.startswith(base + ".") and n.endswith(".nbc") and os.path.basename(n) == n
            for n in overloads.values()):
        raise _Corrupt(path, "its entries are not this function's data files")
    return overloads if stamp == cache_file._source_stamp else {}


def _read_data(cache, name: str, args) -> Optional[tuple]:
    """The saved compile result in data file ``name``, checked to be this function's for
    ``args``; None where the file is gone (another process pruned it)."""
    path = cache._cache_file._data_path(name)
    try:
        with open(path, "rb") as f:
            payload = pickle.loads(f.read())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except Exception as exc:
        raise _Corrupt(path, exc)
    parts = payload if isinstance(payload, tuple) else ()
    fndesc = next((p for p in parts if isinstance(p, FunctionDescriptor)), None)
    signature = next((p for p in parts if isinstance(p, Signature)), None)
    func = cache._py_func
    if fndesc is None or signature is None:
        raise _Corrupt(path, "it holds no compiled function")
    if (fndesc.modname, fndesc.qualname) != (func.__module__, func.__qualname__):
        raise _Corrupt(path, f"it holds {fndesc.modname}.{fndesc.qualname}, not {func.__qualname__}")
    if tuple(signature.args) != tuple(args):
        raise _Corrupt(path, f"it holds {func.__qualname__} compiled for other argument types")
    return payload


def _load_overload(self, sig, target_context):
    """numba's ``FunctionCache.load_overload``; for this package's functions, a damaged or
    foreign entry is removed with one line on stderr, and compiled again (None)."""
    if not isinstance(self._impl.locator, _EngineSources):
        return _NUMBA_LOAD(self, sig, target_context)
    target_context.refresh()
    if not self._enabled:
        return None
    args, _ = sigutils.normalize_signature(sig)
    try:
        with _locked(self._cache_path, exclusive=False):
            name = _read_index(self._cache_file).get(self._index_key(sig, target_context.codegen()))
            payload = None if name is None else _read_data(self, name, args)
        if payload is None:
            return None
        try:
            return self._impl.rebuild(target_context, payload)
        except Exception as exc:
            raise _Corrupt(self._cache_file._data_path(name), exc)
    except _Corrupt as bad:
        _discard(self, bad)
        return None


def _discard(cache, bad: _Corrupt) -> None:
    """Remove a damaged file (a damaged index with its data files), saying so on one line."""
    paths = [bad.path]
    if bad.path.endswith(".nbi"):
        paths += glob.glob(glob.escape(bad.path[:-len(".nbi")]) + ".*.nbc")
    try:
        with _locked(cache._cache_path, exclusive=True):
            for path in paths:
                try:
                    os.remove(path)
                except FileNotFoundError:  # another process removed it first
                    pass
    except OSError as exc:
        cache.disable()
        print(f"warning: kernel cache file {bad.path} is unusable ({bad.why}) and cannot be removed "
              f"({type(exc).__name__}: {exc}); compiling {cache._py_func.__qualname__} without the cache",
              file=sys.stderr, flush=True)
        return
    print(f"warning: kernel cache file {bad.path} was unusable ({bad.why}); removed it, "
          f"compiling {cache._py_func.__qualname__} again", file=sys.stderr, flush=True)


def _save_overload(self, sig, data):
    """numba's ``FunctionCache.save_overload``; for this package's functions under the cache
    folder's lock, and a failure to save (a full disk, say) is one line on stderr, not an
    error: the compiled function is in memory and the command goes on.

    Where the function has no index of the current sources, its data files are removed
    first: numba writes the new index before the data file it names, and reuses the names
    of older data files, so a process stopped between the two writes would leave the new
    index naming a data file compiled from the older sources, loaded from then on."""
    if not isinstance(self._impl.locator, _EngineSources):
        return _NUMBA_SAVE(self, sig, data)
    try:
        self._impl.locator.ensure_cache_path()
        with _locked(self._cache_path, exclusive=True):
            try:
                current = _read_index(self._cache_file)
            except _Corrupt:
                current = {}
            if not current:
                index = self._cache_file._index_path
                for path in glob.glob(glob.escape(index[:-len(".nbi")]) + ".*.nbc"):
                    os.remove(path)
            _NUMBA_SAVE(self, sig, data)
    except OSError as exc:
        _note(f"could not save {self._py_func.__qualname__} in the kernel cache {self._cache_path} "
              f"({type(exc).__name__}: {exc}); it compiles again next run")


# numba's own, from the base class install() leaves alone
_NUMBA_LOAD = caching.Cache.load_overload
_NUMBA_SAVE = caching.Cache.save_overload


def _index_stamp(path: str) -> Optional[object]:
    """The source stamp an index file was saved with, or None where this numba cannot read it."""
    try:
        with open(path, "rb") as f:
            if pickle.load(f) != numba.__version__:
                return None
            return pickle.loads(f.read())[0]
    except Exception:  # a truncated or foreign file: nothing this numba would load
        return None


def prune() -> int:
    """Remove this package's cached functions that no current source can load: index files
    saved with another stamp or numba version, or for a module that is gone, with their
    data files. numba names a cached function by its line, so every edit that moves a
    kernel leaves its old files behind, and the cache would only grow. Current entries
    are kept (a warm cache stays warm). Returns the number of files removed."""
    removed = 0
    for cache_dir, source_dir in cache_dirs():
        for index in glob.glob(os.path.join(glob.escape(cache_dir), "*.nbi")):
            py_file = os.path.join(source_dir, os.path.basename(index).split(".")[0] + ".py")
            if os.path.exists(py_file) and _index_stamp(index) == source_stamp(py_file):
                continue
            for path in [index] + glob.glob(glob.escape(index[:-len(".nbi")]) + ".*.nbc"):
                try:
                    os.remove(path)
                    removed += 1
                except FileNotFoundError:  # another process pruned it first
                    pass
    return removed
