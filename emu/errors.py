"""The one base class of every error that is the user's input, not a bug.

Each module raises its own subclass (a NIR file that cannot be converted, an input
file with a missing field, a recording of another model, ...) whose message names
the file and field. ``s2emu`` prints any :class:`UserError` as one line and exits
with status 2; anything else is a bug and keeps its traceback.
"""


class UserError(ValueError):
    """Bad input from the user: a file, a field, an option. The message says which."""
