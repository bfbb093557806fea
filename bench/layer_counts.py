"""The layers of c2c and their sizes, as a Markdown table for docs/architecture.md.

Run:  python bench/layer_counts.py

One row per layer (top-level package) in the order of the import direction, then one row per
sub-package; lines are physical lines of ``*.py`` files. The last columns are the unit-size limits of
tests/architecture/test_sizes.py (600 lines a module, 80 a function): the largest module and the
longest function of the layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("pipelines", "assets", "stages", "data_sharing", "warehouse", "schemas", "synthetic")


def _longest_function(path: Path) -> int:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return max(
        ((n.end_lineno or n.lineno) - n.lineno + 1 for n in ast.walk(tree)
         if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)),
        default=0,
    )


def _row(name: str, files: list[Path]) -> str:
    if not files:
        return f"| `{name}/` | 0 | 0 | - | - |"
    lines = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in files}
    biggest = max(lines, key=lambda p: lines[p])
    longest = max(_longest_function(p) for p in files)
    total = sum(lines.values())
    return f"| `{name}/` | {len(files)} | {total:,} | {lines[biggest]} ({biggest.relative_to(REPO).as_posix()}) | {longest} |"


def main() -> None:
    print("| layer | modules | lines | largest module | longest function |")
    print("|---|---:|---:|---|---:|")
    grand = 0
    for layer in LAYERS:
        root = REPO / layer
        files = sorted(root.rglob("*.py")) if root.is_dir() else []
        grand += sum(len(p.read_text(encoding="utf-8").splitlines()) for p in files)
        print(_row(layer, files))
        subs = sorted(d for d in root.iterdir() if d.is_dir() and (d / "__init__.py").exists()) if root.is_dir() else []
        for sub in subs:
            print(_row(f"{layer}/{sub.name}", sorted(sub.rglob("*.py"))).replace("| `", "| &nbsp;&nbsp;`", 1))
    print(f"| all layers | | {grand:,} | | |")


if __name__ == "__main__":
    main()
