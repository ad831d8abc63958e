"""The architecture holds: layers import only downward, no circles, small modules and functions,
no function-local import of a project module, and --help never loads the engine."""
import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("emu", "validate")
NOT_CORE = ("emu/cli/", "emu/apps/", "emu/testing/")


def _sources():
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_layers_are_kept_by_import_linter():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports (import-linter, extra [dev]) is not installed")
    done = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


def test_no_import_circles():
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    modules = sorted(graph.modules)
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i in graph.modules} for m in modules}
    # a package imports its own submodules to re-export them; that is not a circle
    edges = {m: {i for i in out if not i.startswith(m + ".")} for m, out in edges.items()}
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == "open":
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in modules:
        if m not in state:
            visit(m)
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_modules_and_core_functions_stay_small():
    big = [f"{p.relative_to(ROOT)} ({n} lines)" for p in _sources() if (n := len(p.read_text().splitlines())) > 500]
    assert not big, f"modules over 500 lines: {big}"
    long = []
    for p in _sources():
        rel = str(p.relative_to(ROOT))
        if not rel.startswith("emu/") or rel.startswith(NOT_CORE):
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 90:
                long.append(f"{rel}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, f"core functions over ~80 lines: {long}"


#: the one deliberate exception: the pytest plugin loads in every pytest run of every project
#: that installs the package, so its fixture imports the engine when first used
LAZY_PROJECT_IMPORTS = {("emu/testing/plugin.py", "chip_snapshot")}


def test_no_function_local_import_of_a_project_module():
    found = []
    for p in _sources():
        for fn in ast.walk(ast.parse(p.read_text())):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom):
                    names = ["." * node.level + (node.module or "")]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                if (str(p.relative_to(ROOT)), fn.name) in LAZY_PROJECT_IMPORTS:
                    continue
                if any(n.startswith(".") or n.split(".")[0] in PACKAGES for n in names):
                    found.append(f"{p.relative_to(ROOT)}:{node.lineno} in {fn.name}: {names}")
    assert not found, found


def test_nothing_reads_the_workplace_shared_folder():
    # spelled in parts, so that this file does not itself name what it forbids
    forbidden = ("/".join(("..", "shared")), "SPINNAKER2" + ".md")
    bad = [str(p.relative_to(ROOT)) for p in _sources() + sorted((ROOT / "tests").glob("*.py"))
           if any(f in p.read_text() for f in forbidden)]
    assert not bad, bad


def _heavy_modules_after(code: str, heavy) -> str:
    """Which of ``heavy`` a fresh interpreter has imported after running ``code``."""
    code += f"\nprint(sorted(m for m in {tuple(heavy)!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", "import sys\n" + code], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_help_loads_no_engine_torch_or_nir():
    code = ("from emu.cli.parser import build_parser\np = build_parser()\np.format_help()\n"
            "for a in p._subparsers._group_actions[0].choices.values(): a.format_help()")
    assert _heavy_modules_after(code, ("numba", "torch", "nir", "snntorch", "matplotlib", "emu.engine")) == "[]"


def test_an_emulator_run_does_not_import_torch():
    """s2emu run (the emulator) and the other engine-only commands leave torch unloaded: only the
    float reference (run --backend snntorch, validate, attribute, demo) needs it."""
    code = "import emu.cli.run, emu.cli.fit, emu.cli.compare, emu.cli.calibrate"
    assert _heavy_modules_after(code, ("torch", "snntorch")) == "[]"


def test_setup_warms_every_preset():
    from emu.engine.warm import VARIANTS
    from emu.profile import SemanticsProfile

    assert {name for name, _ in VARIANTS} == set(SemanticsProfile.PRESETS)
    assert "emu.apps.warm" in (ROOT / "scripts" / "setup.sh").read_text()  # the engine's warm, and the rest
