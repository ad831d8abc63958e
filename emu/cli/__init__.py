"""``s2emu``: the command line, the only layer that imports both the emulator and the validator.

:mod:`emu.cli.parser` defines every subcommand's arguments (cheap to import); the
handler module a subcommand names (``emu.cli.<module>.main(args)``) is imported only
when that command runs, so ``--help`` never loads the engine, torch or NIR.

Errors that are the user's (any :class:`emu.errors.UserError`, a file that cannot be
opened or written) print as one line ``s2emu <command>: error: ...`` and exit 2; a
setting they name is named as its flag (``--conn-delay 0``: the error's ``cli_message``);
Ctrl-C prints one line and exits 130. Anything else is a bug and keeps its traceback.
``S2EMU_FAST=1`` shortens the long commands (:mod:`emu.cli.fast`), for the README's test.
"""
from __future__ import annotations

import sys
from importlib import import_module

from emu.cli.fast import apply_fast
from emu.cli.parser import build_parser
from emu.errors import UserError

__all__ = ["build_parser", "main"]


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    for line in apply_fast(args):
        print(f"s2emu {args.command}: {line}", file=sys.stderr)
    try:
        # a backend may have a handler of its own (--backend snntorch: the only one importing torch)
        module = getattr(args, "handler_by_backend", {}).get(getattr(args, "backend", None), args.handler_module)
        handler = import_module(f"emu.cli.{module}")  # the engine, torch, NIR: only now
        return int(handler.main(args) or 0)
    except (UserError, OSError) as exc:
        print(f"s2emu {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"s2emu {args.command}: interrupted; no partial output was written", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(getattr(exc, "cli_message", str(exc)).split("\n"))


if __name__ == "__main__":
    sys.exit(main())
