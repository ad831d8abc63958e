"""``s2emu``: the command line, the only layer that imports both the emulator and the validator.

:mod:`emu.cli.parser` defines every subcommand's arguments (cheap to import); the
handler module a subcommand names (``emu.cli.<module>.main(args)``) is imported only
when that command runs, so ``--help`` never loads the engine, torch or NIR.

Errors that are the user's (any :class:`emu.errors.UserError`, a file that cannot be
opened or written) print as one line ``s2emu <command>: error: ...`` and exit 2; a
setting they name is named as its flag (``--conn-delay 0``: the error's ``cli_message``);
Ctrl-C prints one line and exits 130, saying what was left on disk (:func:`emu.outputs.interrupt_note`:
every command writes its outputs as one :class:`emu.outputs.OutputSet`, so nothing, unless a
resumable output such as a sweep's results kept its finished work). Anything else is a bug and
keeps its traceback.
``S2EMU_FAST=1`` shortens the long commands (:mod:`emu.cli.fast`), for the README's test.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from importlib import import_module

from emu.cli.fast import apply_fast
from emu.cli.parser import build_parser
from emu.errors import UserError
from emu.signals import handled
from emu.outputs import interrupt_note, reset_journal
from emu.parallel import BACKGROUND_PREFIX

__all__ = ["build_parser", "main"]


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    for line in apply_fast(args):
        print(f"s2emu {args.command}: {line}", file=sys.stderr)
    reset_journal()
    with _ctrl_c_outside_numba():
        status = _run(args)
    if argv is None:  # the command line's process: its work is done and written
        _leave_background_work(status)
        _exit_at_ctrl_c(status)
    return status


def _leave_background_work(status: int) -> None:
    """A float run still going on a background thread (:func:`emu.parallel.in_background`:
    the command failed or was interrupted before it ended) would be torn down inside torch by
    Python's exit ("terminate called without an active exception", SIGABRT instead of the
    status): exit at once with the status instead; that run's work is of no use any more."""
    if any(t.daemon and t.is_alive() and t.name.startswith(BACKGROUND_PREFIX) for t in threading.enumerate()):
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)


def _exit_at_ctrl_c(status: int) -> None:
    """From here a Ctrl-C could only interrupt Python's own exit (joining the engine's threads),
    where it prints "Exception ignored ... KeyboardInterrupt": exit at once with the status instead."""
    def handler(signum, frame):
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)

    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGINT, handler)


def _run(args) -> int:
    try:
        # a backend may have a handler of its own (--backend snntorch: the only one importing torch)
        module = getattr(args, "handler_by_backend", {}).get(getattr(args, "backend", None), args.handler_module)
        handler = import_module(f"emu.cli.{module}")  # the engine, torch, NIR: only now
        return int(handler.main(args) or 0)
    except (UserError, OSError) as exc:
        _end_progress_bars()
        print(f"s2emu {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # every output set was discarded on the way out; what is on disk is what the journal says
        _end_progress_bars()
        print(f"s2emu {args.command}: interrupted; {interrupt_note()}", file=sys.stderr)
        return 130


#: code whose Ctrl-C is taken when it returns: numba's compiler and cache loader run llvmlite callbacks
#: through ctypes, where a KeyboardInterrupt is printed as "Exception ignored" and lost
_NO_INTERRUPT = (f"{os.sep}numba{os.sep}", f"{os.sep}llvmlite{os.sep}")


@contextlib.contextmanager
def _ctrl_c_outside_numba():
    """Ctrl-C raises KeyboardInterrupt, except inside numba's compiler (:data:`_NO_INTERRUPT`): there it
    is sent again 50 ms later, until the command is back in its own code."""
    def handler(signum, frame):
        while frame is not None:
            if any(part in frame.f_code.co_filename for part in _NO_INTERRUPT):
                threading.Timer(0.05, os.kill, (os.getpid(), signum)).start()
                return
            frame = frame.f_back
        raise KeyboardInterrupt

    with handled(handler):
        yield


def _end_progress_bars() -> None:
    """Close the progress bars an error or Ctrl-C left open, so the message starts a line of its own."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", None) or []):
        bar.close()


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(getattr(exc, "cli_message", str(exc)).split("\n"))


if __name__ == "__main__":
    sys.exit(main())
