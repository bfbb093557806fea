"""The release audit report after a small run driven through the CLI (`c2c init`, `c2c run`), read as an
auditor reads it: the HTML file itself, and the page in headless Chromium (offline: no network request).

The drop: 3 students (accepted), 2 patients (accepted) and a clients file with an `ssn` column the MOU
does not permit (refused).
"""

from __future__ import annotations

import hashlib
import concurrent.futures
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import students_csv
from tests.pipelines.test_cli import CLIENTS_WITH_SSN, PATIENTS

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
IDENTIFIERS = ("Testfirsta", "Testlasta", "P0001", "000-00-0000", "1 Test Road", "MTEST0002", "C0001")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("C2C_") and k != "DAGSTER_HOME"}
    env.update(C2C_HOME=str(home), C2C_DATA_DOCS="0", C2C_TODAY="2026-11-23")
    return env


def _c2c(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("audit")
    home, drop = root / "home", root / "drop"
    env = _env(home)
    assert _c2c(env, "init", "--drop", str(drop)).returncode == 0
    files = {"fps/students_20260815.csv": students_csv(3), "fhd/patients_20260815.csv": PATIENTS,
             "dhs/clients_20260815.csv": CLIENTS_WITH_SSN}
    for rel, data in files.items():
        (drop / rel).parent.mkdir(parents=True, exist_ok=True)
        (drop / rel).write_bytes(data)
    run = _c2c(env, "run", "--settle", "0")
    assert "2 accepted, 1 refused" in run.stdout, run.stdout + run.stderr
    release = int(re.search(r"release (\d+):", run.stdout).group(1))  # type: ignore[union-attr]
    return {"home": home, "env": env, "release": release, "stdout": run.stdout,
            "sha": {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}}


def test_audit_report_is_written_private_and_identifier_free(demo: dict) -> None:
    path = demo["home"] / "reports" / str(demo["release"]) / "audit.html"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    html = path.read_text(encoding="utf-8")
    for sha in demo["sha"].values():
        assert sha in html
    assert 'data-status="refused"' in html and "MOU-FPS-CITY-2024 v2" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html
    for value in IDENTIFIERS:
        assert value not in html, value
    assert re.search(r"pseudonym/v1/[0-9a-f]{8,}", html)  # key ids of the accepted files (labels, never keys)
    rows = {re.search(r"<code>([a-z]+/[a-z_0-9]+\.csv)</code>", r).group(1): r  # type: ignore[union-attr]
            for r in html.split("</tr>") if 'data-status="' in r}
    assert rows["fps/students_20260815.csv"].endswith("<td>indicators, linkage</td>")
    assert rows["fhd/patients_20260815.csv"].endswith("<td>linkage</td>")  # read by the linkage only
    assert rows["dhs/clients_20260815.csv"].endswith("<td>no</td>")
    # the status screen names it too
    status = _c2c(demo["env"], "status")
    assert f"audit report:    {path}" in status.stdout


def test_audit_report_path_is_release_metadata(demo: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster import AssetKey, DagsterInstance

    monkeypatch.setenv("DAGSTER_HOME", str(demo["home"] / "dagster"))
    with DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(AssetKey("indicator_release"))
    assert event is not None and event.asset_materialization is not None
    meta = event.asset_materialization.metadata
    assert meta["audit_report"].value == str(demo["home"] / "reports" / str(demo["release"]) / "audit.html")
    # the audit log's head when the release was published (sequence and hash), as the warehouse recorded it
    import json
    import sqlite3

    with sqlite3.connect(demo["home"] / "warehouse.db") as conn:
        recorded = conn.execute("SELECT audit_head FROM releases WHERE release_id = ?", (demo["release"],)).fetchone()[0]
        seqs = [r[0] for r in conn.execute("SELECT seq FROM audit_log ORDER BY seq")]
    head = meta["audit_head"].value
    assert head == json.loads(recorded) and head["seq"] in seqs and len(head["entry_hash"]) == 64


def _browser():  # type: ignore[no-untyped-def]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("playwright and Debian chromium are required in CI (.ci/run installs them)")
        pytest.skip("playwright or /usr/bin/chromium missing (set CI=true to make this a failure)")
    return sync_playwright


def test_auditor_opens_the_report_offline_in_chromium(demo: dict, tmp_path: Path) -> None:
    sync_playwright = _browser()
    # Playwright's sync API refuses a thread where an asyncio loop runs (an earlier test in this worker may
    # have left one): the browser gets a thread of its own, and its assertions come back through result()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(_open_the_report, sync_playwright, demo, tmp_path).result()


def _open_the_report(sync_playwright, demo: dict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = demo["home"] / "reports" / str(demo["release"]) / "audit.html"
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        assert page.locator("#release-id").inner_text().strip() == str(demo["release"])
        shown = {page.locator(f"table.files tr:has(span[data-sha256='{sha}']) td").nth(1).inner_text().strip(): sha
                 for sha in demo["sha"].values()}
        assert shown == demo["sha"]  # every file's SHA-256 as hashlib computes it over the dropped bytes
        refused = page.locator("table.files tr:has-text('dhs/clients_20260815.csv') [data-status]")
        assert refused.get_attribute("data-status") == "refused" and "refused" in refused.inner_text()
        assert page.locator("section.indicator").count() >= 1
        shot = tmp_path / "audit.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert errors == []
    assert [u for u in requests if not u.startswith("file://")] == []
    keep = os.environ.get("C2C_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "audit.png")
