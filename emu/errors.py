"""The one base class of every error that is the user's input, not a bug.

Each module raises its own subclass (a NIR file that cannot be converted, an input
file with a missing field, a recording of another model, ...) whose message names
the file and field. ``s2emu`` prints any :class:`UserError` as one line and exits
with status 2; anything else is a bug and keeps its traceback.

A message that tells the user which setting to change names it as the user sets it:
``str(error)`` as a Python keyword (``conn_delay=0``) for the Python API, and
:attr:`UserError.cli_message` as a command-line flag (``--conn-delay 0``), which the CLI
prints. The raising code writes both (``cli=``); a message that names no setting
serves both as it is.
"""
from __future__ import annotations

from typing import Optional, Type


class UserError(ValueError):
    """Bad input from the user: a file, a field, an option. The message says which."""

    def __init__(self, message: str = "", *, cli: Optional[str] = None):
        super().__init__(message)
        #: the message as the command line says it (flags instead of Python keywords)
        self.cli_message = message if cli is None else cli

    def prefixed(self, prefix: str, cls: Type["UserError"]) -> "UserError":
        """This error as ``cls`` with ``prefix`` (a file name, ...) before both of its spellings."""
        return cls(prefix + str(self), cli=prefix + self.cli_message)
