"""The cabinet's report holds no identifier (issue 18): canaries go in at the drop folder, the report is read.

A small synthetic city gets the canary names, addresses, agency ids and birth dates of ``test_canary``
(same injection); the whole pipeline runs (its nightly part ends with the ``cabinet_report`` asset), then
``c2c report`` runs as a subprocess into a second folder. Every byte of both reports is scanned for every
canary in all its forms (``find_needles``). Controls: the canaries are in the drop files before the run, the
report pages exist and show the release's indicators, and the scanner finds a canary planted in a copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from e2e_support import Doc, drop_files, find_needles, isolate_env, settings_env
from test_canary import CHILDREN, SEED, inject_canaries


@pytest.mark.slow
def test_report_holds_no_identifier(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.runner import run_pipeline
    from pipelines.settings import Settings
    from synthetic.city import generate_city

    city = tmp_path_factory.mktemp("city")
    generate_city(CHILDREN, SEED, city)
    home = tmp_path / "home"
    drop = home / "drop"
    shutil.copytree(city / "drop", drop)
    canaries, _ = inject_canaries(drop)
    raw = b"\n".join(p.read_bytes() for p in drop_files(drop))
    assert find_needles([Doc("drop", raw)], canaries.needles()), "control: the canaries are in the drop files"
    isolate_env(monkeypatch, home)

    summary = run_pipeline(Settings.from_env(settings_env(home)), settle_s=0, verbose=False)
    assert summary.ok, summary
    reports = home / "reports"
    pages = sorted(reports.glob("*/*.html"))
    assert any(p.name == "index.html" for p in pages), f"the cabinet_report asset wrote no report: {pages}"

    env = {**os.environ, **settings_env(home)}
    out = tmp_path / "cli-reports"
    run = subprocess.run([sys.executable, "-m", "pipelines.cli", "report", "--home", str(home), "--out", str(out)],
                         capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stderr
    cli_pages = sorted(out.glob("*/*.html"))
    assert len(cli_pages) >= 7 and any(p.name == "chronic_absence.html" for p in cli_pages), cli_pages
    index = (out / cli_pages[0].parent.name / "index.html").read_text(encoding="utf-8")
    assert "Chronic absence" in index and "Kindergarten readiness" in index  # control: real content

    docs = [Doc(str(p), p.read_bytes()) for p in pages + cli_pages]
    docs += [Doc("c2c report stdout", run.stdout.encode()), Doc("c2c report stderr", run.stderr.encode())]
    hits = find_needles(docs, canaries.needles())
    assert not hits, f"{len(hits)} canary occurrence(s) in the report:\n" + "\n".join(hits[:40])
    planted = Doc("planted", index.encode() + canaries.values["fps_a.last_name"].encode())
    assert find_needles([planted], canaries.needles()), "control: the scanner finds a canary in a page"
