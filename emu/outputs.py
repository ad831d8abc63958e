"""Every file a command writes: nothing lost, nothing mixed, nothing half-written.

* :func:`atomic_write`: one file through a temporary name and ``os.replace``: readers
  never see a half-written file.
* :class:`OutputSet`: a command's outputs (report, JSON, profile, chip model) as one
  transaction. Each output is written under its own name into a hidden staging folder
  beside its destination (``.s2emu-partial-<pid>-<id>/``, the same file system, so
  files written beside it, such as a report's JSON, come along); at the end of the
  ``with`` block every staged file is put in place, all of them, with Ctrl-C held off
  for those few renames and concurrent commits into one folder taken one at a time. An
  exception or Ctrl-C before that removes the staging folders: the previous set stays
  as it was and no temporary is left. Staging folders of processes that died
  (``kill -9``) are removed by the next set in that folder. A write that fails
  (disk full, file too large) names the file.
* :func:`exclusive`: one writer per resumable file (a sweep's results, a training
  checkpoint): an exclusive lock beside it; a second writer is refused with the
  holder's pid.
* :func:`kept` / :func:`interrupt_note`: what an interrupted command leaves on disk
  (complete sets and the resumable outputs it extended), said in one line by the CLI
  instead of a claim it cannot know.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import signal
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

from emu.errors import UserError
from emu.signals import handled

PathLike = Union[str, os.PathLike]
STAGING_PREFIX = ".s2emu-partial-"
_STAGING = re.compile(re.escape(STAGING_PREFIX) + r"(\d+)-[0-9a-f]+$")


class OutputError(UserError):
    """An output that cannot be written (the message names the file) or is being written by another process."""


_UMASK = os.umask(0o022)
os.umask(_UMASK)  # the process umask, read once, so written files get the usual permissions


def _named(exc: OSError, path: Path) -> OSError:
    """``exc`` naming ``path`` (a failed write of a file object names no file: ``[Errno 28] No space left``)."""
    if exc.filename is None:
        return OSError(exc.errno, exc.strerror or str(exc), str(path))
    return exc


def atomic_write(path: PathLike, data) -> None:
    """Write ``data`` (bytes or str) through a temporary file in the same folder and
    ``os.replace``: readers never see a half-written file; a failed write leaves none and
    names ``path``."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _named(exc, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- what this process has left on disk (for the interrupt message) -----------------------------

_COMMITTED: List[str] = []
_KEPT: Dict[str, str] = {}


def reset_journal() -> None:
    """Forget what earlier commands of this process wrote (the CLI calls it per command)."""
    _COMMITTED.clear()
    _KEPT.clear()


def kept(path: PathLike, what: str) -> None:
    """Say that the resumable output ``path`` now holds complete work (``what``: "3 points (run
    again to resume)"): an interrupt from here on leaves it, on purpose."""
    _KEPT[str(path)] = what


def interrupt_note() -> str:
    """What an interrupted command left: only what is true of this process's writes."""
    said = []
    if _COMMITTED:
        said.append(f"complete outputs written before it: {', '.join(_COMMITTED)}")
    if _KEPT:
        said.append("kept for a resume: " + "; ".join(f"{path} {what}" for path, what in _KEPT.items()))
    if not said:
        return "no partial output was written"
    return "no partial output was written; " + "; ".join(said)


# --- one transaction of outputs ---------------------------------------------------------------------

class OutputSet:
    """A command's outputs as one transaction (module doc)::

        with OutputSet("attribute") as outputs:
            report.write(outputs.path(args.report))          # REPORT.html and REPORT.json, staged
            outputs.write(args.out, text)                     # staged
        # here both are in place, or (exception, Ctrl-C) neither changed

    ``stamp``: the ``command`` and the ``settings`` the set was made with (everything that
    decides its content, no output path), for every JSON output to carry (:meth:`mark` puts
    it in a report): files of different sets say different settings, so a mix is detectable,
    while the same command run twice writes the same files.
    """

    def __init__(self, command: str = "", settings: Optional[dict] = None):
        self.id = uuid.uuid4().hex[:12]  # names its staging folders
        self.command, self.settings = command, dict(settings or {})
        self._staging: Dict[Path, Path] = {}  # destination folder -> its staging folder
        self._finals: List[Path] = []
        self.written: List[Path] = []

    @property
    def stamp(self) -> dict:
        return dict(command=self.command, settings=self.settings)

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if kind is None:
            self.commit()
            return False
        folders = {str(staging): folder for folder, staging in self._staging.items()}
        self.discard()
        if isinstance(exc, OSError) and exc.filename and str(Path(exc.filename).parent) in folders:
            # a staged file failed to write: say the name the user gave
            final = folders[str(Path(exc.filename).parent)] / Path(exc.filename).name
            raise OSError(exc.errno, exc.strerror, str(final)) from None
        return False

    def mark(self, report) -> None:
        """Record in ``report`` (a :class:`validate.report.Report`) what this set was made with: the JSON
        outputs beside it carry the same (``output_set``: :attr:`stamp`)."""
        report.add_settings(dict(command=self.command, **self.settings),
                            caption="made with (every file written with this report says the same)")

    def path(self, final: PathLike) -> Path:
        """Where to write ``final`` now (a staged name; anything written beside it under
        another name, a report's JSON, goes in place with it)."""
        final = Path(final)
        folder = final.parent.resolve()
        if folder not in self._staging:
            folder.mkdir(parents=True, exist_ok=True)
            _remove_stale(folder)
            staging = folder / f"{STAGING_PREFIX}{os.getpid()}-{self.id}"
            staging.mkdir()
            self._staging[folder] = staging
        if final not in self._finals:
            self._finals.append(final)
        return self._staging[folder] / final.name

    def write(self, final: PathLike, data) -> Path:
        """Stage ``data`` (bytes or str) as ``final``; returns ``final``."""
        staged = self.path(final)
        raw = data.encode("utf-8") if isinstance(data, str) else data
        try:
            with open(staged, "wb") as f:
                f.write(raw)
        except OSError as exc:
            raise _named(exc, Path(final)) from None
        return Path(final)

    def produce(self, final: PathLike, writer: Callable[[Path], object]) -> Path:
        """Stage ``final`` written by ``writer(staged_path)`` (``nir.write``, ``torch.save``, ...);
        a failed write names ``final``."""
        try:
            writer(self.path(final))
        except OSError as exc:
            raise _named(exc, Path(final)) from None
        return Path(final)

    def commit(self) -> List[Path]:
        """Put every staged file in place; returns the final paths (those asked for first)."""
        with _interrupts_held(), _folders_locked(sorted(self._staging)):
            moves = [(staged, folder / staged.name) for folder, staging in self._staging.items()
                     for staged in sorted(staging.iterdir())]
            for _, final in moves:
                if final.is_dir():
                    raise OutputError(f"{final}: is a folder, not a file name")
            for staged, final in moves:
                os.replace(staged, final)
            self.discard()
        asked = {p.parent.resolve() / p.name: p for p in self._finals}
        self.written = [p for p in self._finals if p.parent.resolve() / p.name in {f for _, f in moves}]
        self.written += [f for _, f in moves if f not in asked]
        _COMMITTED.extend(str(p) for p in self.written)
        return self.written

    def discard(self) -> None:
        """Remove every staged file and staging folder (nothing in place changes)."""
        for staging in self._staging.values():
            shutil.rmtree(staging, ignore_errors=True)
        self._staging.clear()


def _remove_stale(folder: Path) -> None:
    """Staging folders whose process is gone (killed before it could clean up)."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        match = _STAGING.match(entry.name)
        if match and entry.is_dir() and not _alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Ctrl-C (SIGINT, SIGTERM) during the renames of a commit takes effect after them."""
    caught: List[int] = []
    with handled(lambda n, f: caught.append(n), (signal.SIGINT, signal.SIGTERM)):
        yield
    if caught:
        os.kill(os.getpid(), caught[0])


@contextlib.contextmanager
def _folders_locked(folders: List[Path]) -> Iterator[None]:
    """Commits into the same folders, one at a time (two sets never interleave their files)."""
    fds = []
    try:
        for folder in folders:
            fd = os.open(folder, os.O_RDONLY)
            fds.append(fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        for fd in fds:
            os.close(fd)


# --- one writer per resumable file --------------------------------------------------------------

_HELD: Dict[Path, Tuple[int, int]] = {}  # lock path -> (fd, depth): a process may take its own lock again


def lock_path(path: PathLike) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def exclusive(path: PathLike, what: str = "--out") -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a results file, a checkpoint) while writing it; a
    second process gets a one-line :class:`OutputError` naming the holder's pid."""
    lock = lock_path(path).resolve() if Path(path).parent.exists() else lock_path(path)
    if lock in _HELD:
        fd, depth = _HELD[lock]
        _HELD[lock] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _HELD[lock]
            _HELD[lock] = (fd, depth - 1)
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(lock, Path(path), what)
    _HELD[lock] = (fd, 1)
    try:
        yield
    finally:
        del _HELD[lock]
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)


def _acquire(lock: Path, path: Path, what: str) -> int:
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise _named(exc, lock) from None
            raise OutputError(f"{path}: another process is writing it ({what} is locked by pid {holder}); wait for "
                              f"it to finish, or give another {what}") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:  # else the holder removed the file as we opened it: lock the new one
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"
