"""Where code lives (ARCHITECTURE.md): the import direction between c2c's packages, read from the source.

    pipelines -> assets -> stages -> {data_sharing, warehouse} -> schemas

``pipelines`` (the doors) imports ``assets`` and ``stages``; ``assets`` imports ``stages`` and the domain
packages for their types; ``warehouse`` imports ``data_sharing`` only for disclosure control and intake
types; ``synthetic`` imports ``schemas`` (its oracle may read ``warehouse``). Every import counts, those
inside functions and under ``TYPE_CHECKING`` too. Environment variables are read by
``pipelines/settings.py`` alone, and the governed core never imports Dagster.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("pipelines", "assets", "stages", "data_sharing", "warehouse", "schemas", "synthetic")
DOMAIN = ("data_sharing", "warehouse", "schemas")

# importer package -> the modules (a package, or a module and everything under it) it may import
ALLOWED: dict[str, tuple[str, ...]] = {
    "pipelines": ("assets", "stages"),
    "assets": ("stages", *DOMAIN),  # the domain packages for types
    "stages": DOMAIN,
    "data_sharing": ("schemas",),
    "warehouse": ("schemas", "data_sharing.disclosure", "data_sharing.intake", "data_sharing.publication"),
    "schemas": (),
    "synthetic": ("schemas",),
}
# a module allowed more than its package
ALLOWED_MODULES: dict[str, tuple[str, ...]] = {
    "synthetic.truth_indicators": ("warehouse",),  # the test oracle reads the warehouse's results
    # `c2c synth` and `c2c demo` generate synthetic cities: stages/synth.py is the one stage that calls the
    # generators (synthetic imports only schemas, so no cycle); no other stage, and no door, imports synthetic
    "stages.synth": ("synthetic",),
}
# never walked: Alembic's environment and revisions run migrations when imported
SKIP = ("warehouse.migrations",)

# The one reader of environment variables; writes are allowed where a library reads its own variable.
ENV_READER = "pipelines.settings"
ENV_ALLOWED = {
    # great_expectations reads GX_ANALYTICS_ENABLED when imported: schemas sets it before importing (a write)
    ("schemas.gx_suite", "os.environ[...] ="),
    # the hash helpers are child processes: a copy of the environment without the master key (a copy)
    ("data_sharing._crypto", "os.environ.items()"),
}


def _modules(package: str) -> list[tuple[str, Path]]:
    root = REPO / package
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(REPO).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if not any(name == s or name.startswith(s + ".") for s in SKIP):
            out.append((name, path))
    return out


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    """Every module ``module`` imports (absolute names, relative imports resolved), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            # `from pkg import sub` may name a submodule: count pkg.sub when it is one of ours, else pkg
            subs = [f"{name}.{alias.name}" for alias in node.names if _is_module(f"{name}.{alias.name}")]
            if len(subs) < len(node.names):
                out.append((name, node.lineno))
            out += [(sub, node.lineno) for sub in subs]
    return out


def _is_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(package: str) -> list[str]:
    out = []
    for module, path in _modules(package):
        allowed = ALLOWED[package] + next((v for k, v in ALLOWED_MODULES.items() if _within(module, k)), ())
        for name, line in _imports(module, path):
            top = name.split(".")[0]
            if top not in PACKAGES or top == package:
                continue
            if any(_within(name, a) for a in allowed):
                continue
            out.append(f"{path.relative_to(REPO)}:{line}: {module} -> {name}")
    return sorted(set(out))


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_follow_the_layers(package: str) -> None:
    if not (REPO / package).is_dir():
        pytest.skip(f"no {package}/ package yet")
    found = violations(package)
    assert not found, f"{package} imports against the layering ({len(found)}):\n" + "\n".join(found)


def _env_uses(module: str, path: Path) -> list[str]:
    """Each use of os.environ / os.getenv / os.putenv in ``module`` not in :data:`ENV_ALLOWED`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "environb"):
            what = f"os.{node.attr}"
            parent = parents.get(node)
            if isinstance(parent, ast.Attribute):
                what += f".{parent.attr}()"
            elif isinstance(parent, ast.Subscript):
                what += "[...] =" if isinstance(parent.ctx, ast.Store) else "[...]"
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                a.name in ("environ", "getenv", "putenv") for a in node.names):
            what = "from os import environ"
        else:
            continue
        if (module, what) not in ENV_ALLOWED:
            out.append(f"{path.relative_to(REPO)}:{node.lineno}: {what}")
    return out


def test_settings_is_the_only_reader_of_environment_variables() -> None:
    found = [use for package in PACKAGES if (REPO / package).is_dir()
             for module, path in _modules(package) if module != ENV_READER
             for use in _env_uses(module, path)]
    assert not found, "environment read outside pipelines/settings.py (take it from Settings):\n" + "\n".join(found)


def test_stages_data_sharing_and_warehouse_import_without_dagster() -> None:
    names = [m for package in ("stages", "data_sharing", "warehouse") if (REPO / package).is_dir()
             for m, _ in _modules(package)]
    script = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster.'))[:5]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [], "Dagster was imported by the governed core"
