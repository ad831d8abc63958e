"""numba's on-disk cache of the kernels, keyed by every source file they are built from.

numba keys a cached function by a hash of the one file that defines it. The kernels
(:mod:`emu.engine.kernels`) are also built from the intrinsics, the argument bundles
and the numerics' rounding, in other files: after a change there alone (a ``git pull``
of an editable install, say), numba would load the machine code compiled from the old
files, and the engine would silently compute the old way. Here the stamp of a cached
function of this package is the hash of its own file and of all of those, so any change
to them compiles again.

:func:`install` puts the locators first in numba's list; they take only functions
defined in this package's files and leave every other function to numba's own.
:func:`prune` removes the entries no current source can load: numba names a cached
function by its line, so every edit that moves a kernel leaves its old files behind.
"""
from __future__ import annotations

import functools
import glob
import hashlib
import os
import pickle
from typing import List, Optional, Tuple

import numba

from numba.core import caching

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
    """In ``NUMBA_CACHE_DIR``, where it is set."""


class InTreeLocator(_EngineSources, caching.InTreeCacheLocator):
    """In the package's ``__pycache__``."""


def install() -> None:
    """Make numba use these locators for this package's cached functions (idempotent);
    call before any of them is defined."""
    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # the name before numba 0.60
    classes = impl._locator_classes
    for cls in (InTreeLocator, UserDirLocator):  # UserDirLocator ends first, as numba orders its own
        if cls not in classes:
            classes.insert(0, cls)


def cache_dirs() -> List[Tuple[str, str]]:
    """(cache directory, source directory) of every package folder: its ``__pycache__``, and
    the folder under ``NUMBA_CACHE_DIR`` where that is set (the locators' two places)."""
    pairs = []
    for folder, subdirs, _ in os.walk(PACKAGE_DIR):
        subdirs[:] = [d for d in subdirs if d != "__pycache__"]
        pairs.append((os.path.join(folder, "__pycache__"), folder))
        if numba.config.CACHE_DIR:
            subpath = caching._CacheLocator.get_suitable_cache_subpath(os.path.join(folder, "any.py"))
            pairs.append((os.path.join(numba.config.CACHE_DIR, subpath), folder))
    return pairs


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
