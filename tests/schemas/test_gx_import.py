"""GX imports in every kind of process, with or without the ``[spark]`` extra: pyspark's Spark Connect
check exits a process whose main module has no file (``python -c``, pytest-xdist workers) when its
optional dependencies are missing, and GX imports it (``schemas.gx_suite._spark_connect_off``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gx_imports_from_a_main_module_without_a_file() -> None:
    code = "from schemas.gx_suite import import_gx; gx = import_gx(); print('imported', gx.__version__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("imported 1."), (done.stdout, done.stderr[-2000:])
    assert "Skipping doctests" not in done.stderr
