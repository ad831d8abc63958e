"""Where a test's chip snapshots live, and which stored snapshots no test takes any more.

A snapshot's path comes from the test's full pytest id (the file, the classes, the
function with its parametrize id) and the snapshot's ``name=``::

    <test dir>/__snapshots__/<file stem>/<Class>/.../<function[param id]>[.<name>].npz

Each part keeps letters, digits and ``_ - [ ] = , +``; any other character is written
``%XX`` (its UTF-8 bytes, ``%`` itself too), so two different ids never share a path
(``test_x[a/b]`` is ``test_x[a%2Fb]``, ``test_x[a_b]`` stays) and the path depends on
nothing but the id (stable from run to run, and from machine to machine). A part longer
than :data:`MAX_PART` characters keeps its start and ends in ``~`` and a digest of the
whole part (``~`` is never written otherwise). Two ids that differ only in letter
case would share a file on a case-insensitive file system (macOS, Windows): the fixture
refuses the second (:class:`SnapshotSession`).

:func:`stale_snapshots` lists the snapshot files that no test takes: their test file is
gone from a collected folder, their test (or its class) is gone from a collected test
file, or their test ran and passed in this run without taking that snapshot. What was
not collected in full (a run of ``file.py::TestA`` does not collect the whole file) is
not judged.
"""
from __future__ import annotations

import hashlib
import string
from urllib.parse import unquote
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

SNAPSHOTS = "__snapshots__"
SAFE = frozenset(string.ascii_letters + string.digits + "_-[]=,+")
MAX_PART = 120


def escape(part: str) -> str:
    """One id part as a file name (module doc): injective, ``%XX`` for every unsafe byte."""
    out = "".join(c if c in SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in part)
    if len(out) > MAX_PART:
        out = out[:MAX_PART - 17] + "~" + hashlib.sha256(part.encode()).hexdigest()[:16]
    return out


def snapshot_dir(test_file: Path) -> Path:
    """The folder of one test file's snapshots."""
    test_file = Path(test_file)
    return test_file.parent / SNAPSHOTS / test_file.stem


def snapshot_path(test_file: Path, test_id: Union[str, Sequence[str]], name: Optional[str] = None) -> Path:
    """The snapshot of the test ``test_id`` (its classes' names and its own name, parametrize id
    included, as pytest gives them; a str: a test outside any class) in ``test_file``;
    ``name``: one of several snapshots of the test."""
    parts = [test_id] if isinstance(test_id, str) else list(test_id)
    leaf = escape(parts[-1]) + (f".{escape(name)}" if name else "")
    return snapshot_dir(test_file).joinpath(*[escape(p) for p in parts[:-1]], leaf + ".npz")


def test_key(path: Path, test_file: Path) -> Tuple[str, ...]:
    """The escaped id parts of the test a snapshot file belongs to (its ``name`` cut off)."""
    rel = Path(path).relative_to(snapshot_dir(test_file))
    return rel.parts[:-1] + (rel.name[:-len(".npz")].split(".", 1)[0],)


@dataclass
class SnapshotSession:
    """What one pytest session knows about snapshots: which test took which path, which tests
    passed, and what was collected (collector node id -> its children's escaped names)."""

    taken: Dict[str, Tuple[str, Path]] = field(default_factory=dict)  # path, case folded -> (test id, path)
    by_test: Dict[str, Set[Path]] = field(default_factory=dict)
    passed: Set[str] = field(default_factory=set)
    test_files: Dict[Path, Set[str]] = field(default_factory=dict)  # folder -> stems of its test files
    modules: Dict[Path, str] = field(default_factory=dict)  # test file -> its module node id
    children: Dict[str, Dict[str, Tuple[str, bool]]] = field(default_factory=dict)  # -> (node id, is a class)

    def take(self, path: Path, nodeid: str) -> None:
        """Note that test ``nodeid`` takes the snapshot at ``path``; refuse a path another test
        takes (their ids differ only in letter case)."""
        key = str(path).casefold()
        other = self.taken.get(key)
        if other is not None and other[0] != nodeid:
            raise ValueError(f"{path.name}: tests {other[0]!r} and {nodeid!r} differ only in letter case, so their "
                             f"snapshots would be one file on a case-insensitive file system (macOS, Windows): "
                             f"rename one")
        self.taken[key] = (nodeid, path)
        self.by_test.setdefault(nodeid, set()).add(path)

    def collected(self, parent_id: str, module_path: Optional[Path], child_name: str, child_id: str,
                  is_class: bool) -> None:
        if module_path is not None:
            self.modules[Path(module_path)] = parent_id
        self.children.setdefault(parent_id, {})[escape(child_name)] = (child_id, is_class)


@dataclass(frozen=True)
class Stale:
    path: Path
    why: str


def stale_snapshots(session: SnapshotSession) -> List[Stale]:
    """The snapshot files of the collected test files that no test takes, and those of test files
    gone from a collected folder (module doc)."""
    out = []
    for folder, stems in sorted(session.test_files.items()):
        snaps = folder / SNAPSHOTS
        gone = sorted(d for d in snaps.iterdir() if d.is_dir() and d.name not in stems) if snaps.is_dir() else []
        out += [Stale(path, f"no test file {d.name}.py in {folder} any more") for d in gone
                for path in sorted(d.rglob("*.npz"))]
    for test_file, module_id in sorted(session.modules.items()):
        folder = snapshot_dir(test_file)
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.npz")):
            why = _why_stale(session, module_id, test_key(path, test_file), path)
            if why:
                out.append(Stale(path, why))
    return out


def _why_stale(session: SnapshotSession, module_id: str, key: Tuple[str, ...], path: Path) -> Optional[str]:
    node = module_id
    for i, part in enumerate(key):
        children = session.children.get(node)
        if children is None:
            return None  # not collected in this run: nothing known
        if part not in children or children[part][1] != (i < len(key) - 1):
            return f"no test {'::'.join(map(unquote, key))} in {module_id.split('::')[0]} any more"
        node = children[part][0]
    if node in session.passed and path not in session.by_test.get(node, set()):
        return f"{node} passed without taking it"
    return None
