"""The layout rules that import-linter cannot check: short modules, and imports at the top of a module
(an import inside a function usually hides a cycle the layers' contracts would catch)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "smbc"
MAX_LINES = 600
# The CLI imports lazily so `smbc --help` stays fast; elsewhere each such import says why in a comment.
MAX_IMPORTS_IN_FUNCTIONS = 5


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def _smbc_imports_in_functions(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            names = []
            if isinstance(inner, ast.ImportFrom) and inner.level == 0 and inner.module:
                names = [inner.module]
            elif isinstance(inner, ast.Import):
                names = [alias.name for alias in inner.names]
            found += [
                f"{path.relative_to(SRC)}:{inner.lineno} {n}" for n in names if n.split(".")[0] == "smbc"
            ]
    return found


def test_no_source_file_is_over_600_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n for p in _sources() if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_few_smbc_imports_inside_functions_outside_the_cli() -> None:
    found = sorted(
        {
            i
            for p in _sources()
            if "cli" not in p.relative_to(SRC).parts
            for i in _smbc_imports_in_functions(p)
        }
    )
    assert len(found) <= MAX_IMPORTS_IN_FUNCTIONS, found
