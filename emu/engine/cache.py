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
"""
from __future__ import annotations

import functools
import glob
import hashlib
import os
from typing import Tuple

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
