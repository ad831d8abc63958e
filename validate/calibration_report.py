"""The calibration report: the finding first, then each option's verdict and the runs behind it."""
from __future__ import annotations

from .calibration import OPTION, Calibration
from .figures import option_values
from .report import Report


def calibration_report(cal: Calibration, title: str) -> Report:
    """Finding; per option: status in docs/semantics.md, the value found, pinned / undetermined /
    inert / fixed, and an input that would settle it; mismatches per option value; candidates."""
    report = Report(title, cal.finding())
    chosen = dict(cal.best.assignment)
    rows = []
    for flag, option in OPTION.items():
        if flag in cal.fixed:
            verdict, value = "fixed by a flag", cal.fixed[flag]
        elif flag in cal.pinned:
            verdict, value = "pinned by the data" + (" (resting on the latency prior: only the sum of latency and "
                                                     "connection delay shows)" if flag in cal.on_prior else ""), \
                chosen.get(flag)
        elif flag in cal.forced:
            verdict, value = "the only value the converter accepts here", chosen.get(flag)
        elif flag in cal.unseen:
            verdict, value = (f"not seen: it changes only {', '.join(cal.unseen[flag])}, whose spikes reach no "
                              f"recorded population"), chosen.get(flag, option.values[0])
        elif flag in cal.inert:
            verdict, value = "cannot change this network", chosen.get(flag, option.values[0])
        else:
            others = " or ".join(cal.alternatives.get(flag, []))
            verdict, value = "undetermined" + (f" (or {others})" if others else ""), chosen.get(flag, option.values[0])
        rows.append({"option": flag, "value": str(value), "verdict": verdict, "status (docs/semantics.md)":
                     option.status, "an input that would settle it": option.exercise if verdict.startswith("undetermined")
                     else ""})
    report.add_table(rows, caption=f"{cal.runs} runs of the emulator; populations compared: "
                                   f"{', '.join(cal.populations)}")
    for note in cal.notes:
        report.add_text(f"Note: {note}", note=True)
    if cal.per_value:
        by_voltage = bool(cal.best.score.v_error)
        report.add_figure(option_values(cal.per_value, chosen, "each option's values around the best profile",
                                        by_voltage),
                          ("the largest voltage error against the recording, in units of the threshold, and the "
                           "mismatching (tick, neuron) cells as labels" if by_voltage else
                           "mismatching (tick, neuron) cells against the recording") +
                          ", with one option changed at a time (log scale; grey: reproduces it exactly, red: does "
                          "not; outlined: the value found)", data=cal.per_value)
    report.add_heading("Candidates")
    report.add_table([dict(c.to_dict()["options"], exact=c.score.exact, mismatching_cells=c.score.total,
                           max_v_error=f"{c.score.worst_v:.2e}") for c in cal.candidates[:12]],
                     caption="the profiles that matched best, ranked by mismatching cells, then voltage error "
                             "(relative to the threshold)")
    report.add_settings(dict(fixed=cal.fixed, profile=cal.settings.profile.describe(),
                             conversion=cal.conversion()))
    return report
