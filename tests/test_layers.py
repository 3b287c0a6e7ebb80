"""Imports follow the data flow: stimuli imports neither interp nor viz."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_stimuli_imports_neither_interp_nor_viz():
    offenders = {p.name: _imported(p) & {"interp", "viz"}
                 for p in (ROOT / "stimuli").glob("*.py")}
    assert not {k: v for k, v in offenders.items() if v}
