"""THE way a command tells its user that converting the model zeroed weights.

:func:`emu.numerics.zeroed_weight_notes` is the rule (a projection whose integer weights
lose more than half of its non-zero float weights to 0: the sign of a missing or too
small weight scale) and writes the sentences. :func:`warn_zeroed_weights` says them on
every channel a command has: one ``warning:`` line each on stderr, the list under
``"warnings"`` of its JSON, and a note in its report. Every command that converts
weights calls it (run, validate, attribute, calibrate, sweep, demo, fit, chip-script and
chip-run, and the test kit, which says them as Python warnings), so none of them runs a
zeroed model silently.
"""
from __future__ import annotations

import sys
import warnings
from typing import Callable, List, MutableMapping, Optional, Sequence

from emu.network import Network
from emu.numerics import zeroed_weight_notes
from emu.profile import SemanticsProfile

from .report import Report


def print_warning(line: str) -> None:
    """One ``warning: ...`` line on stderr (the CLI's form)."""
    print(f"warning: {line}", file=sys.stderr)


class ConversionWarning(UserWarning):
    """A conversion that changes the model more than the user may expect (zeroed weights, ...)."""


def python_warning(line: str) -> None:
    """The line as a Python warning (:class:`ConversionWarning`): the test kit's form."""
    warnings.warn(line, ConversionWarning, stacklevel=2)


def warn(lines: Sequence[str], *, summary: Optional[MutableMapping] = None, report: Optional[Report] = None,
         say: Optional[Callable[[str], None]] = print_warning) -> List[str]:
    """Say each of ``lines`` with ``say`` (None: not at all), append them to ``summary["warnings"]``
    and add each to ``report``'s warnings (shown under its finding); returns them."""
    lines = list(lines)
    for line in lines:
        if say is not None:
            say(line)
        if report is not None:
            report.add_warning(line)
    if summary is not None and lines:
        summary.setdefault("warnings", []).extend(line for line in lines if line not in summary["warnings"])
    return lines


def warn_zeroed_weights(network: Network, profile: SemanticsProfile, *, summary: Optional[MutableMapping] = None,
                        report: Optional[Report] = None,
                        say: Optional[Callable[[str], None]] = print_warning) -> List[str]:
    """:func:`warn` the projections of ``network`` whose weights ``profile``'s integers zero (module doc)."""
    return warn(zeroed_weight_notes(network, profile), summary=summary, report=report, say=say)
