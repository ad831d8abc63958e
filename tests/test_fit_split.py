"""``s2emu fit`` suggests the ``--max-atoms`` split that fits, from the one memory model, and the
demo's claim about the chip agrees with it (issue 26, part 6)."""
import json
import re

import pytest

from emu.apps.demo import MODEL, demo_settings
from emu.chip.budget import ChipBudget, fit_table, fit_warnings, fitting_atoms, suggest_split
from emu.cli import main
from emu.cli.parser import build_parser
from emu.nir_import import from_nir, read_nir

#: the demo's conversion of the shipped gesture model, as s2emu fit takes it
DEMO_FLAGS = ["--auto-scale", "--scale-percentile", "99.9"]


@pytest.fixture(scope="module")
def gesture():
    settings = demo_settings(read_nir(MODEL), 99.9)
    return from_nir(read_nir(MODEL), settings.conversion), settings.profile


def test_fit_suggests_the_split_that_fits_the_shipped_gesture_model(capsys):
    assert main(["fit", str(MODEL), "--ticks", "600", *DEMO_FLAGS]) == 3
    out = capsys.readouterr().out
    assert "600 ticks: does NOT fit" in out
    assert "split that fits: --max-atoms lif4=64 (46 PEs, 1 chip(s); the longest recording then fits 2,750 ticks)" \
        in out, out
    assert main(["fit", str(MODEL), "--ticks", "600", *DEMO_FLAGS, "--json"]) == 3
    split = json.loads(capsys.readouterr().out)["suggested_split"]
    assert split["max_atoms"] == {"lif4": 64} and split["fits"] and split["longest_run_ticks"] == 2750
    # taking the advice fits, with what it promised
    assert main(["fit", str(MODEL), "--ticks", "600", *DEMO_FLAGS, "--max-atoms", "lif4=64", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["fits"] and table["longest_run_ticks"] == 2750 and table["total_pes"] == 46
    assert table["suggested_split"] is None


def test_the_split_is_the_fewest_pes_filled_evenly(gesture):
    network, profile = gesture
    # 76 per PE is the largest count that fits 600 ticks; it takes 4 PEs, as 64 does, which leaves the most room
    assert fitting_atoms(network, "lif4", 600, profile) == 64
    fits = {n: fit_table(network, 600, profile, max_atoms_per_core={"lif4": n}) for n in (64, 76, 78, 86)}
    assert fits[64]["fits"] and fits[76]["fits"] and not fits[78]["fits"] and not fits[86]["fits"]  # 86: 3 PEs
    assert fits[64]["longest_run_ticks"] > fits[76]["longest_run_ticks"]
    # the warnings give the same number (one memory model)
    assert any("--max-atoms lif4=64" in line for line in fit_warnings(network, 600, profile))
    # nothing fits: said, not guessed
    tiny = ChipBudget(sram_bytes=32 * 1024 + 512)
    assert fitting_atoms(network, "lif4", 600, profile, budget=tiny) is None
    split = suggest_split(network, fit_table(network, 600, profile, budget=tiny), profile, budget=tiny)
    assert "lif4" in split["unfittable"] and not split["fits"]


def test_the_demos_chip_claim_is_what_fit_says(gesture):
    network, profile = gesture
    text = " ".join(build_parser()._subparsers._group_actions[0].choices["demo"].format_help().split())
    claim = re.search(r"--max-atoms (\w+)=(\d+) \((\d+) PEs\) records ([\d,]+) ticks", text)
    assert claim, text
    name, n, pes, ticks = claim.group(1), int(claim.group(2)), int(claim.group(3)), int(claim.group(4).replace(",", ""))
    table = fit_table(network, None, profile, max_atoms_per_core={name: n})
    assert (table["total_pes"], table["longest_run_ticks"]) == (pes, ticks)
    assert fit_table(network, None, profile)["longest_run_ticks"] == 0  # without the split nothing is recorded
    assert "600 fit" not in text
