"""The package's layers point one way, and shared definitions live once (fast, framework-free).

Read from the source (an AST scan of every module's imports, relative ones resolved), and checked
in a fresh process (what importing the report actually loads):

- ``ganrepro.report`` never imports the sweep, the training driver, the streams, the twins
  (``impls.interface``'s constants excepted), the command line or ``ganrepro.animate``;
- ``ganrepro.sweep`` and ``ganrepro.cells`` never import the report or the command line;
- ``ganrepro.bench`` never imports the command line; ``ganrepro.metrics`` imports nothing of ganrepro
  but ``ganrepro.files`` (the image classifier's cache is written atomically);
- writing then renaming is done by ``ganrepro.files`` only; display labels and the target's
  mean and sigma are assigned in one module each.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = {"ganrepro": ROOT / "src" / "ganrepro", "ganrepro.impls": ROOT / "impls",
                "ganrepro.metrics": ROOT / "metrics"}


def modules() -> dict[str, Path]:
    """Every module of the installed package: dotted name -> file."""
    found = {}
    for prefix, folder in PACKAGE_DIRS.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if prefix == "ganrepro" and parts and parts[0] in ("impls", "metrics"):
                continue
            found[".".join([prefix, *parts])] = path
    return found


MODULES = modules()


def imports_of(name: str) -> set[str]:
    """The absolute names ``name``'s module imports (``from . import x`` counts as ``pkg.x`` too)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def offending(importer_prefix: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> dict:
    bad = {}
    for name in MODULES:
        if not under(name, importer_prefix):
            continue
        hits = sorted(i for i in imports_of(name)
                      if any(under(i, f) for f in forbidden) and not any(under(i, a) for a in allowed))
        if hits:
            bad[name] = hits
    return bad


def test_the_scan_sees_the_modules_and_their_imports():
    assert {"ganrepro.cli", "ganrepro.cli.report", "ganrepro.bench.tables", "ganrepro.report.build",
            "ganrepro.cells", "ganrepro.metrics.target"} <= set(MODULES)
    assert "ganrepro.cells" in imports_of("ganrepro.report.build")  # relative imports resolved
    assert "ganrepro.training" in imports_of("ganrepro.animate")


def test_report_never_imports_the_sweep_training_or_the_command_line():
    forbidden = ("ganrepro.sweep", "ganrepro.training", "ganrepro.streams", "ganrepro.impls", "ganrepro.cli",
                 "ganrepro.animate", "ganrepro.bench", "torch", "tensorflow")
    assert offending("ganrepro.report", forbidden, allowed=("ganrepro.impls.interface",)) == {}


@pytest.mark.parametrize("lower", ["ganrepro.sweep", "ganrepro.cells", "ganrepro.store", "ganrepro.records",
                                   "ganrepro.variant_groups", "ganrepro.labels", "ganrepro.progress"])
def test_lower_layers_never_import_the_report_or_the_command_line(lower):
    assert offending(lower, ("ganrepro.report", "ganrepro.cli", "ganrepro.animate", "ganrepro.bench")) == {}


def test_bench_has_no_command_line_of_its_own():
    assert offending("ganrepro.bench", ("ganrepro.cli",)) == {}
    assert not (PACKAGE_DIRS["ganrepro"] / "bench" / "__main__.py").exists()
    import ganrepro.bench

    assert not hasattr(ganrepro.bench, "main")


def test_metrics_import_nothing_of_ganrepro():
    bad = {name: sorted(i for i in imports_of(name) if under(i, "ganrepro") and not under(i, "ganrepro.metrics")
                        and not under(i, "ganrepro.files"))
           for name in MODULES if under(name, "ganrepro.metrics")}
    assert {k: v for k, v in bad.items() if v} == {}


def test_importing_the_report_loads_no_sweep_training_or_framework():
    code = ("import sys, importlib, pkgutil, ganrepro.report as r; "
            "[importlib.import_module('ganrepro.report.' + m.name) for m in pkgutil.iter_modules(r.__path__)]; "
            "print(sorted(m for m in ('ganrepro.sweep', 'ganrepro.training', 'ganrepro.streams', 'ganrepro.cli', "
            "'ganrepro.animate', 'torch', 'tensorflow') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def _calls(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name):
            names.add(f"{node.func.value.id}.{node.func.attr}")
    return names


def test_only_files_writes_then_renames():
    """``os.replace`` (write, then rename over) is ``ganrepro.files``' alone; ``os.rename`` moves a
    whole run folder into quarantine (``store.quarantine``) and nothing else."""
    users = {name: sorted(_calls(path) & {"os.replace", "os.rename"}) for name, path in MODULES.items()}
    users = {k: v for k, v in users.items() if v}
    assert users == {"ganrepro.files": ["os.replace"], "ganrepro.store": ["os.rename"]}


def _assigned(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AnnAssign) else []
        names.update(t.id for t in targets if isinstance(t, ast.Name))
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
    return names


@pytest.mark.parametrize("names, home", [
    ({"FRAMEWORK_LABELS", "FRAMEWORK_NAMES", "METRIC_TITLES", "METRIC_LABELS"}, "ganrepro.labels"),
    ({"MU", "SIGMA", "TARGET_MU", "TARGET_SIGMA"}, "ganrepro.metrics.target"),
    ({"Cell", "plan"}, "ganrepro.cells"),
    ({"same_experiment", "same_as"}, "ganrepro.variant_groups"),
])
def test_shared_definitions_are_assigned_once(names, home):
    where = {name: sorted(names & _assigned(path)) for name, path in MODULES.items()}
    assert {k: v for k, v in where.items() if v} == {home: sorted(names & _assigned(MODULES[home]))}


def test_shared_definitions_are_the_ones_in_use():
    from ganrepro import labels, sampling, sweep
    from ganrepro.cells import Cell, plan
    from ganrepro.metrics import target
    from ganrepro.report import build, figures

    assert (sampling.TARGET_MU, sampling.TARGET_SIGMA) == (target.MU, target.SIGMA) == (4.0, 0.5)
    assert figures.METRIC_LABELS is labels.METRIC_LABELS and build.METRIC_TITLES is labels.METRIC_TITLES
    assert sweep.plan is plan and sweep.Cell is Cell
