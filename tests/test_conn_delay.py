"""Conv graphs convert with no extra connection delay unless told otherwise (the chip converter
takes them only so), the settings say why, and errors name flags on the command line and
keywords in Python (issue 26, part 2)."""
import json
from pathlib import Path

import nir
import numpy as np
import pytest

from emu.cli import main
from emu.engine import Emulator
from emu.errors import UserError
from emu.nir_import import ConversionOptions, NIRImportError, from_nir, read_nir
from emu.settings import SettingsError, resolve

EXAMPLES = Path(__file__).resolve().parent.parent / "emu" / "examples"
CONV, EVENTS = EXAMPLES / "conv_net.nir", EXAMPLES / "circle_events.npz"


def _dense(dt=1e-3):
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([3])), "fc": nir.Linear(weight=np.full((2, 3), 0.6)),
        "lif": nir.LIF(tau=np.full(2, 0.01), r=np.full(2, 10.0), v_leak=np.zeros(2), v_threshold=np.ones(2),
                       v_reset=np.zeros(2))},
        edges=[("input", "fc"), ("fc", "lif")], metadata={} if dt is None else {"dt": dt}, type_check=False)


def test_a_conv_graph_converts_with_no_extra_delay_and_says_why():
    conv = resolve({}, read_nir(CONV))
    assert conv.conversion.conn_delay == 0 and conv.sources["conn_delay"] == "required for conv"
    dense = resolve({}, _dense())
    assert dense.conversion.conn_delay == 1 and dense.sources["conn_delay"] == "default"
    # a flag, or a profile file, still decides
    assert resolve({"conn_delay": 2}, _dense()).sources["conn_delay"] == "flag"
    pinned = resolve({}, read_nir(CONV), profile_file={"conn_delay": 0})
    assert pinned.sources["conn_delay"] == "profile file"


def test_the_readme_commands_run_on_the_bundled_conv_net_without_conn_delay(tmp_path, capsys):
    out = tmp_path / "o.json"
    assert main(["run", str(CONV), "--input", str(EVENTS), "--auto-scale", "--out", str(out)]) == 0, \
        capsys.readouterr().err
    assert json.loads(out.read_text())["meta"]["settings"]["conn_delay"] == "required for conv"
    assert main(["validate", str(CONV), "--input", str(EVENTS), "--auto-scale",
                 "--report", str(tmp_path / "v.html"), "--out", str(tmp_path / "v_summary.json")]) == 0
    assert json.loads((tmp_path / "v_summary.json").read_text())["settings"]["conn_delay"] == "required for conv"


def test_asking_for_a_delay_gets_the_converters_error_in_flags_on_the_command_line(tmp_path, capsys):
    rc = main(["run", str(CONV), "--input", str(EVENTS), "--conn-delay", "1", "--out", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert "(--conn-delay 1)" in err and "only with --conn-delay 0" in err and "--allow-unsupported emulates" in err
    assert "conn_delay=" not in err and "allow_unsupported=True" not in err
    # the flag that emulates it anyway still does
    assert main(["run", str(CONV), "--input", str(EVENTS), "--conn-delay", "1", "--allow-unsupported",
                 "--out", str(tmp_path / "o.json")]) == 0
    # a profile file that asks for a delay is refused alike
    (tmp_path / "p.json").write_text(json.dumps({"conversion": {"conn_delay": 1}}))
    assert main(["run", str(CONV), "--input", str(EVENTS), "--profile-file", str(tmp_path / "p.json"),
                 "--out", str(tmp_path / "o.json")]) == 2
    assert "--conn-delay 0" in capsys.readouterr().err


def test_the_python_api_keeps_naming_keywords():
    with pytest.raises(NIRImportError) as caught:
        from_nir(read_nir(CONV), ConversionOptions(dt=1e-3, conn_delay=1))
    said = str(caught.value)
    assert "conn_delay=0" in said and "allow_unsupported=True" in said and "--" not in said
    assert "--conn-delay 0" in caught.value.cli_message  # what the command line prints instead
    with pytest.raises(SettingsError) as caught:
        resolve({}, _dense(dt=None))
    assert "dt=SECONDS" in str(caught.value) and "--dt" not in str(caught.value)
    assert "--dt SECONDS" in caught.value.cli_message


def test_an_error_keeps_both_spellings_through_every_wrapper(tmp_path, capsys):
    """from_nir prefixes the file name, resolve re-raises as a settings error: each keeps the CLI's words."""
    nir.write(str(tmp_path / "no_dt.nir"), _dense(dt=None))
    (tmp_path / "in.json").write_text(json.dumps({"0": [1, 2]}))
    rc = main(["run", str(tmp_path / "no_dt.nir"), "--input", str(tmp_path / "in.json"), "--out",
               str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "--dt SECONDS" in err and "dt=SECONDS" not in err
    big = _dense()
    big.nodes["fc"].weight[:] = 300.0
    with pytest.raises(UserError) as caught:
        Emulator(from_nir(big, ConversionOptions(dt=1e-3)))
    assert "weight_overflow='saturate'" in str(caught.value) and "--saturate-weights" in caught.value.cli_message
    nir.write(str(tmp_path / "big.nir"), big)
    assert main(["run", str(tmp_path / "big.nir"), "--input", str(tmp_path / "in.json"), "--out",
                 str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert "--saturate-weights" in err and "--weight-bits 8" in err and "weight_overflow" not in err
