"""Every command of README.md runs as written.

The ```bash blocks are read from README.md; each command (a line with its backslash
continuations; comment lines dropped) runs in bash, in README order, in one temporary copy of
the repository's files (``git ls-files``) where ``.venv`` links to the virtualenv running this
test, with ``PYTHONPATH`` on this tree. A line that sources a file (``. .venv/bin/activate``)
runs too and is repeated before every later command, as the user's shell keeps it.
``S2EMU_FAST=1`` (:mod:`emu.cli.fast`) shortens the long commands (training, the demo, the
sweeps); the text is never edited. ``make demo`` runs its recipe: the copied files it depends
on are dated before the virtualenv, which is set up (this test runs in it).

Skipped, each with its reason: ``make test`` (the suite this test is part of), and a command
marked ``# needs: A, B`` while one of :data:`NEEDS` is missing (py-spinnaker2 and brian2
installed; ``dask-scheduler``: a scheduler's address in ``$DASK_ADDRESS``). The ```python
blocks run too, each as one script. 82 s on the project's 2-core machine at a load of 1-2
(62 s of CPU); 3.5-6 minutes when other jobs load it to 8-10.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

import pytest

from emu.cli.fast import CAPS, VARIABLE, apply_fast, fast_samples
from emu.cli.parser import build_parser
from emu.engine import kernels

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TIMEOUT_S = 600

#: what a ``# needs:`` marker may name, and whether it is here
NEEDS = {
    "py-spinnaker2": lambda: importlib.util.find_spec("spinnaker2") is not None,
    "brian2": lambda: importlib.util.find_spec("brian2") is not None,
    "dask-scheduler": lambda: bool(os.environ.get("DASK_ADDRESS")),
}
#: commands this test does not run, and why
NOT_RUN = {"make test": "make test runs the test suite this test is part of"}
_NEEDS = re.compile(r"#\s*needs:\s*([^#]+)$")
_SOURCES = re.compile(r"^(\.|source)\s")


@dataclass(frozen=True)
class Command:
    text: str  # as in the README, continuation lines included
    line: int  # where it starts in README.md (1-based)
    needs: Tuple[str, ...]

    @property
    def bare(self) -> str:
        """The command without its comment."""
        return re.sub(r"\s+#[^\n]*$", "", self.text)

    @property
    def sources(self) -> bool:
        return bool(_SOURCES.match(self.text))

    @property
    def id(self) -> str:
        return f"L{self.line}-" + "-".join(self.text.split()[:3])


def blocks(text: str, language: str) -> List[Tuple[int, str]]:
    """Each ```language block of ``text``: (the line its first line is on, its text)."""
    found = []
    for m in re.finditer(rf"^```{language}\n(.*?)^```", text, re.S | re.M):
        found.append((text.count("\n", 0, m.start(1)) + 1, m.group(1)))
    return found


def commands(text: str) -> List[Command]:
    """The commands of every ```bash block of ``text``, in order."""
    out = []
    for first, block in blocks(text, "bash"):
        current: List[str] = []
        start = 0
        for k, line in enumerate(block.splitlines()):
            if not current and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if not current:
                start = first + k
            current.append(line)
            if not line.rstrip().endswith("\\"):
                marker = _NEEDS.search(current[-1])
                needs = tuple(n.strip() for n in marker.group(1).split(",")) if marker else ()
                out.append(Command("\n".join(current), start, needs))
                current = []
        assert not current, f"README.md line {start}: a command ends in a backslash at the end of its block"
    return out


COMMANDS = commands(README.read_text())


def test_readme_parses_into_commands():
    assert len(COMMANDS) >= 20 and [c.bare for c in COMMANDS[:2]] == ["make demo", "make test"]
    assert commands("```bash\n# a comment\na \\\n  b   # needs: x, y\nc\n```\n") == [
        Command("a \\\n  b   # needs: x, y", 3, ("x", "y")), Command("c", 5, ())]


def test_fast_settings_come_only_from_the_variable(capsys):
    argv = ["train", "--root", "r", "--synthetic", "16", "--epochs", "12"]
    for off in ({}, {VARIABLE: ""}, {VARIABLE: "0"}):
        args = build_parser().parse_args(argv)
        assert apply_fast(args, environ=off) == [] and (args.epochs, args.synthetic, args.ticks) == (12, 16, 300)
    args = build_parser().parse_args(argv)
    assert apply_fast(args, environ={VARIABLE: "1"}) == [f"{VARIABLE}=1: --epochs 12 -> 1, --synthetic 16 -> 1, "
                                                           f"--ticks 300 -> {CAPS['train']['ticks']}"]
    assert (args.epochs, args.synthetic, args.ticks) == (1, 1, CAPS["train"]["ticks"])
    run = build_parser().parse_args(["run", "m.nir", "--input", "x", "--out", "o.json", "--ticks", "1000"])
    assert apply_fast(run, environ={VARIABLE: "1"}) == [] and run.ticks == 1000  # only the long commands
    names, labels = [f"s{k}" for k in range(11)], list(range(11))
    assert fast_samples(names, labels, environ={}) == (names, labels)
    assert fast_samples(names, labels, None, environ={VARIABLE: "1"}) == (names[:3], labels[:3], None)
    assert f"{VARIABLE}=1: the first 3 of 11 samples" in capsys.readouterr().err


def test_every_subcommand_is_in_the_readme():
    subcommands = build_parser()._subparsers._group_actions[0].choices
    shown = {c.text.split()[1] for c in COMMANDS if c.text.startswith("s2emu ")}
    assert set(subcommands) - {"demo"} <= shown, set(subcommands) - shown


def test_every_needs_marker_is_known():
    for c in COMMANDS:
        assert set(c.needs) <= set(NEEDS), f"README.md line {c.line}: unknown need in {c.needs}; known: {list(NEEDS)}"


def _cache_files(folder: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.nb[ci]")} if folder.is_dir() else {}


@pytest.fixture(scope="module")
def kernel_cache() -> Tuple[Path, dict]:
    """numba's cached kernels (file name -> time) before the README's commands run."""
    folder = Path(kernels.run_samples._cache._cache_path)
    return folder, _cache_files(folder)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, kernel_cache) -> Path:
    """A copy of the repository's files (tracked and not ignored) with ``.venv`` linked to this virtualenv."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("not running in a virtualenv: the README's commands activate .venv")
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip(f"git cannot list the repository's files: {listed.stderr.strip()}")
    work = tmp_path_factory.mktemp("readme")
    for name in filter(None, listed.stdout.split("\0")):
        if (ROOT / name).is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, work / name)
            os.utime(work / name, (0, 0))  # older than the virtualenv: make sees it set up
    (work / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    return work


def _environment() -> dict:
    env = dict(os.environ, **{VARIABLE: "1"})
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("MAKEFLAGS", None)
    env.pop("MAKELEVEL", None)
    return env


def _run(script: List[str], cwd: Path, what: str) -> None:
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", "\n".join(script)], cwd=cwd, env=_environment(),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, (f"{what} exited {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n"
                                  f"{done.stderr[-3000:]}")


@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_readme_command(command: Command, workspace: Path):
    if command.bare in NOT_RUN:
        pytest.skip(NOT_RUN[command.bare])
    missing = [n for n in command.needs if n in NEEDS and not NEEDS[n]()]
    if missing:
        pytest.skip(f"README.md line {command.line} needs {', '.join(missing)}, missing here")
    if command.text.startswith("make ") and shutil.which("make") is None:
        pytest.skip("make is not installed")
    sourced = [c.text for c in COMMANDS[:COMMANDS.index(command)] if c.sources]
    _run(sourced + [command.text], workspace, f"README.md line {command.line}: {command.text}")


@pytest.mark.parametrize("first,block", blocks(README.read_text(), "python"),
                         ids=[f"L{n}" for n, _ in blocks(README.read_text(), "python")])
def test_readme_python_block(first: int, block: str, workspace: Path, tmp_path: Path):
    script = tmp_path / "block.py"  # outside the copy: its imports come from this tree, as the commands' do
    script.write_text(block)
    _run([f"{sys.executable} {script}"], workspace, f"the python block at README.md line {first}")


def test_readme_outputs_are_ignored_by_git(workspace: Path):
    """What the commands wrote (run before this test) is all in out/ or ignored by git."""
    if not (workspace / "out").is_dir():
        pytest.skip("the README's commands have not run in this session")
    written = [Path(folder, name).relative_to(workspace) for folder, _, names in os.walk(workspace)
               for name in names if os.lstat(Path(folder, name)).st_mtime > 0]
    assert written
    kept = subprocess.run(["git", "check-ignore", "--no-index", "--verbose", "--non-matching", "--stdin"],
                          cwd=ROOT, input="\n".join(map(str, written)), capture_output=True, text=True).stdout
    not_ignored = [line.split("\t")[-1] for line in kept.splitlines() if line.startswith("::")]
    assert not not_ignored, f"README commands wrote files git would track: {not_ignored[:10]}"


def test_no_readme_command_compiles_a_kernel(kernel_cache, workspace: Path):
    """``make setup`` compiles every kernel (``python -m emu.apps.warm``): no command compiles later."""
    folder, before = kernel_cache
    if not before:
        pytest.skip(f"no kernels were compiled in {folder} before the README's commands (python -m emu.apps.warm)")
    if not (workspace / "out").is_dir():
        pytest.skip("the README's commands have not run in this session")
    compiled = sorted(name for name, time in _cache_files(folder).items() if before.get(name) != time)
    assert not compiled, (f"the README's commands compiled {compiled} in {folder}: python -m emu.apps.warm misses "
                          f"what they use (or the engine's sources changed after it ran)")


def test_the_speed_section_is_a_short_table_of_scripts():
    section = README.read_text().split("\n### Speed\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    assert rows[:2] == ["| what | measured | script |", "|---|---|---|"] and len(rows) <= 12, rows[:2]
    for row in rows[2:]:
        _, measured, script = (cell.strip() for cell in row.strip("|").split("|"))
        assert len(measured) <= 60, f"a row of the README's speed table reads as history: {measured}"
        named = re.findall(r"benchmarks/\w+\.py", script)
        assert named and all((ROOT / n).is_file() for n in named), row
    prose = [line for line in section.splitlines() if line and not line.startswith("|")]
    assert len(" ".join(prose)) <= 300 and "benchmarks/RESULTS.md" in section
    assert (ROOT / "benchmarks" / "RESULTS.md").is_file()
