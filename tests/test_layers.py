"""Imports follow the layers: stimuli -> interp -> viz, with the command line (interp/cli/) and
the notebook facade (interp/api.py) on top; only the command line imports argparse."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP = {"interp/api.py"}  # the notebook facade: the one library module that may import viz
CLI = "interp/cli/"


def _imported(path: Path) -> set[str]:
    """Dotted names of every absolute import in a module, at any depth (lazy imports too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _modules(package: str) -> list[tuple[str, set[str]]]:
    paths = sorted((ROOT / package).rglob("*.py"))
    return [(str(p.relative_to(ROOT)), _imported(p)) for p in paths]


def _roots(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def _offenders(package: str, rule) -> dict[str, set[str]]:
    return {path: bad for path, names in _modules(package) if (bad := rule(path, names))}


def test_stimuli_imports_neither_interp_nor_viz():
    assert not _offenders("stimuli", lambda _p, names: _roots(names) & {"interp", "viz"})


def test_interp_imports_viz_only_from_the_top():
    def rule(path: str, names: set[str]) -> set[str]:
        return set() if path in TOP or path.startswith(CLI) else _roots(names) & {"viz"}

    assert not _offenders("interp", rule)


def test_viz_and_the_library_never_import_the_command_line():
    def rule(path: str, names: set[str]) -> set[str]:
        if path.startswith(CLI):
            return set()
        return {n for n in names if n == "argparse" or n.startswith("interp.cli")}

    for package in ("interp", "viz", "stimuli"):
        assert not _offenders(package, rule), package


def test_the_facade_does_not_import_the_command_line():
    path, names = next(m for m in _modules("interp") if m[0] == "interp/api.py")
    assert not {n for n in names if n.startswith("interp.cli")}, path


@pytest.mark.parametrize("package", ["interp", "viz", "stimuli"])
def test_no_module_over_400_lines(package):
    long = {p: n for p in (ROOT / package).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long


def test_the_rule_catches_a_wrong_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from viz import atlas\n    import argparse\n")
    assert _imported(bad) == {"viz", "argparse"}
