"""Units stay small (ARCHITECTURE.md, "Where code lives"): no module over 600 lines, no function over 80.

Read from the source with ``ast`` over the non-test packages. A function's length runs from its ``def``
line to its last line (decorators not counted, its docstring and nested functions counted); a nested
function or a method is measured on its own too. A failure lists every offender, so one run shows the
whole of what is left to split.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("pipelines", "assets", "stages", "data_sharing", "warehouse", "schemas", "synthetic")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES if (REPO / pkg).is_dir() for p in (REPO / pkg).rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _long_functions(path: Path) -> list[tuple[str, int, int]]:
    """(qualified name, first line, length) of every function of ``path`` longer than the limit."""
    out: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                qualname = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    length = (child.end_lineno or child.lineno) - child.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        out.append((qualname, child.lineno, length))
                visit(child, qualname + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), "")
    return out


def test_the_walk_sees_the_packages() -> None:
    names = {_name(p).split("/", 1)[0] for p in _modules()}
    assert {"pipelines", "assets", "data_sharing", "warehouse", "schemas", "synthetic"} <= names
    assert len(_modules()) > 50


def test_no_module_over_600_lines() -> None:
    long = []
    for path in _modules():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_MODULE_LINES:
            long.append(f"{_name(path)}: {n} lines")
    if long:
        pytest.fail(f"modules over {MAX_MODULE_LINES} lines (split them by concern):\n  " + "\n  ".join(long), pytrace=False)


def test_no_function_over_80_lines() -> None:
    long = [
        f"{_name(path)}:{line} {qualname}: {length} lines"
        for path in _modules()
        for qualname, line, length in _long_functions(path)
    ]
    if long:
        pytest.fail(f"functions over {MAX_FUNCTION_LINES} lines (split them into steps):\n  " + "\n  ".join(long), pytrace=False)
