"""Small files for the tests of hostile inputs and interrupted commands (issue 27): a two-layer
LIF network, its inputs, labels, a sweep data file and a recording of it."""
import json
import os
import re
import sys
from pathlib import Path

import nir
import numpy as np

from emu.engine import Emulator
from emu.nir_import import from_nir
from emu.settings import resolve
from emu.spike_io import save_recording


REPO = Path(__file__).resolve().parents[1]
#: the command line in a new process, from this tree
S2EMU = [sys.executable, "-c", "import sys; from emu.cli import main; sys.exit(main())"]


def env() -> dict:
    """The environment of a child process that imports this tree's emu."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))


def graph(threshold: float = 0.5, meta=None) -> nir.NIRGraph:
    rng = np.random.default_rng(0)

    def lif(n):
        return nir.LIF(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, threshold),
                       v_reset=np.zeros(n))

    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([12])}),
        "fc1": nir.Linear(weight=rng.normal(0.3, 0.6, (20, 12))), "lif1": lif(20),
        "fc2": nir.Linear(weight=rng.normal(0.3, 0.5, (5, 20))), "lif2": lif(5)},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2")],
        metadata=dict({"dt": 1e-3}, **(meta or {})), type_check=False)


def build_files(d: Path) -> Path:
    """m.nir, x.npy (80 ticks), samples/ (4 x 60 ticks), labels.npy, data.npz, rec.npz (m.nir on x.npy,
    auto-scaled, voltages recorded)."""
    g = graph()
    nir.write(str(d / "m.nir"), g)
    rng = np.random.default_rng(1)
    x = rng.random((80, 12)) < 0.3
    np.save(d / "x.npy", x)
    (d / "samples").mkdir()
    samples = [rng.random((60, 12)) < 0.3 for _ in range(4)]
    for i, s in enumerate(samples):
        np.save(d / "samples" / f"s{i}.npy", s)
    labels = np.array([0, 1, 2, 3])
    np.save(d / "labels.npy", labels)
    np.savez(d / "data.npz", inputs=np.stack(samples), labels=labels)
    settings = resolve(dict(weight_scale="auto"), g)
    save_recording(Emulator(from_nir(g, settings.conversion), settings.profile)(x, record_v=True), d / "rec.npz")
    return d


#: a line tqdm draws (a progress bar's last state): "name: 40%|####  | 2/5 [00:01<00:01, 2.0run/s]"
PROGRESS = re.compile(r"\[\d+:\d+(<[^\]]*)?(, [^\]]*)?\]\s*$")


def messages(err: str) -> list:
    """What a command said on stderr, without its progress bars."""
    lines = [line.rsplit("\r", 1)[-1].strip() for line in err.split("\n")]
    return [line for line in lines if line and not PROGRESS.search(line)]


def one_line(capsys, rc, expect_rc=2) -> str:
    """The one line a failed command printed (asserting its exit status, and no traceback)."""
    err = capsys.readouterr().err
    assert rc == expect_rc, err
    lines = messages(err)
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def made_with(path: Path) -> str:
    """What an output says it was made with: a JSON output's ``output_set``, a report JSON's "made with"
    block (canonical text: equal for the files of one set)."""
    data = json.loads(Path(path).read_text())
    if "output_set" in data:
        stamp = dict(command=data["output_set"]["command"], **data["output_set"]["settings"])
        stamp = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in stamp.items()}
    else:
        stamp = [b["items"] for b in data["blocks"] if b["type"] == "settings" and b["caption"].startswith("made with")]
        assert len(stamp) == 1, path
        stamp = stamp[0]
    return json.dumps(stamp, sort_keys=True)


def snapshot_folder(folder: Path) -> dict:
    """Every file of ``folder`` (name -> bytes), and every hidden entry (a temporary or staging
    folder would show): equal snapshots mean nothing there changed."""
    out = {}
    for p in sorted(folder.iterdir()):
        if p.is_file():
            out[p.name] = p.read_bytes()
        elif p.name.startswith("."):
            out[p.name] = "<hidden folder>"
    return out


def huge_conv_graph(h: int = 20000) -> nir.NIRGraph:
    """A small file of 2 * h * h inputs into an 18-channel h x h conv (8e9 neurons at 20000):
    too large to convert on any machine here."""
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([2, h, h])}),
        "conv": nir.Conv2d(input_shape=(h, h), weight=np.full((18, 2, 3, 3), 0.1), stride=1, padding=1, dilation=1,
                           groups=1, bias=np.zeros(18)),
        "lif": nir.LIF(tau=np.array([0.02]), r=np.array([1.0]), v_leak=np.array([0.0]), v_threshold=np.array([1.0]),
                       v_reset=np.array([0.0]))},
        edges=[("input", "conv"), ("conv", "lif")], metadata={"dt": 1e-3}, type_check=False)


def _stat(pid: int) -> list:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()  # fields from the 3rd on: state, ppid, ...


def tree_cpu(pid: int) -> float:
    """CPU seconds of process ``pid`` and every process under it (live or reaped)."""
    parent, total = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = _stat(int(entry))
            except (OSError, IndexError):
                continue
            parent[int(entry)] = int(fields[1])
            total[int(entry)] = sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    tree, todo = set(), [pid]
    while todo:
        p = todo.pop()
        tree.add(p)
        todo += [c for c, pp in parent.items() if pp == p and c not in tree]
    return sum(total.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK")
