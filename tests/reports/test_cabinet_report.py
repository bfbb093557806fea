"""The cabinet's report (issue 18), tested as it is used: pages opened from disk in headless Chromium.

A small release is made from counts (``report_support``: six schools, three school years, every indicator,
protected by the real disclosure control, so all three suppression reasons occur) in a SQLite warehouse;
the report is built from it, and then, in the browser:

* every page loads with no console error, no page error and no request for anything but the page itself;
* every number in every table equals the release's row read back from the warehouse in the test, every
  suppressed row shows as suppressed with its reason (and no digit), and the report shows every row it
  promises (city trend, city groups of the latest period, schools of the latest period);
* the school table sorts with its inline script and reads the same (every row) with JavaScript off;
* charts are SVG with role img, a title and a description, each followed by its data table;
* screenshots of the overview and one indicator page, desktop and phone width, are not blank, and the
  phone-width page does not scroll sideways;
* files 0600, folders 0700, and a second build writes the same bytes.
"""

from __future__ import annotations

import base64
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from report_support import K, default_definitions, publish_rows, synthetic_rows

PERIODS = [2024, 2025, 2026]
REASON_WORDS = {"small_denominator": "small group", "small_count": "small count", "complementary": "complementary"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from warehouse.db import make_engine, upgrade
    from warehouse.releases import current_indicator_values
    from warehouse.reports.cabinet import build_cabinet_report

    home = tmp_path_factory.mktemp("home")
    engine = make_engine(f"sqlite:///{home / 'warehouse.db'}")
    upgrade(engine)
    defs = default_definitions()
    rows = synthetic_rows(defs, schools=6, periods=PERIODS, per_school=60, seed=11)
    rid = publish_rows(engine, rows, defs)
    out = home / "reports" / str(rid)
    out.mkdir(parents=True)
    (out / "audit.html").write_text("<!DOCTYPE html><title>audit</title>", encoding="utf-8")  # h3's page, as a stand-in
    result = build_cabinet_report(engine, home / "reports", min_cell_sizes=K)
    values = current_indicator_values(engine)
    assert set(values.loc[values.suppressed, "suppression_reason"]) == set(REASON_WORDS), "control: every reason occurs"
    assert (~values.suppressed).sum() > 100, "control: plenty of published cells"
    return {"home": home, "engine": engine, "result": result, "values": values, "defs": defs, "dir": result.directory}


def _open(browser: Any, path: Path, *, width: int = 1280, js: bool = True) -> tuple[Any, Any, list[str], list[str]]:
    """A page at ``path`` in a fresh context; every request other than the file itself is recorded and aborted."""
    context = browser.new_context(viewport={"width": width, "height": 900}, java_script_enabled=js)
    own = path.as_uri()
    requests: list[str] = []

    def route(r: Any) -> None:
        if r.request.url == own:
            r.continue_()
        else:
            requests.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url) if r.url != own else None)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.goto(own, wait_until="load")
    return context, page, errors, requests


def test_every_page_loads_offline_without_errors(site: dict[str, Any], browser: Any) -> None:
    result = site["result"]
    indicators = sorted(site["values"].indicator.unique())
    assert sorted(result.pages) == sorted(["index.html", *(f"{i}.html" for i in indicators)])
    for name in result.pages:
        context, page, errors, requests = _open(browser, site["dir"] / name)
        assert errors == [], (name, errors)
        assert requests == [], (name, requests)
        links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        for href in links:  # every link stays inside the report folder and resolves
            assert not re.match(r"^[a-z]+:", href), (name, href)
            if not href.startswith("#"):
                assert (site["dir"] / href).is_file(), (name, href)
        assert "audit.html" in links, name  # the release's audit report sits beside it
        context.close()
    html = (site["dir"] / "index.html").read_text(encoding="utf-8")
    assert "default-src 'none'" in html and "http://" not in html and "https://" not in html


def _rows_on(page: Any) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(
        "tr[data-cell]",
        """trs => trs.map(tr => ({cell: tr.dataset.cell, reason: tr.dataset.reason || null,
            suppressed: tr.classList.contains('suppressed'), text: tr.innerText,
            num: (tr.querySelector('.num') || {}).innerText, den: (tr.querySelector('.den') || {}).innerText,
            rate: (tr.querySelector('.rate') || {}).innerText}))""",
    )


def _key(row: Any) -> str:
    return f"{row.indicator}|{row.period}|{row.school_id}|{row.dimension}|{row.group}"


def test_numbers_on_the_pages_are_the_release_rows(site: dict[str, Any], browser: Any) -> None:
    values: pd.DataFrame = site["values"]
    by_key = {_key(r): r for r in values.itertuples(index=False)}
    seen: set[str] = set()
    suppressed_shown = 0
    for name in site["result"].pages:
        context, page, _, _ = _open(browser, site["dir"] / name)
        for shown in _rows_on(page):
            row = by_key[shown["cell"]]  # every row on the page is a row of the release
            seen.add(shown["cell"])
            if row.suppressed:
                suppressed_shown += 1
                assert shown["suppressed"] and shown["reason"] == row.suppression_reason, shown
                assert "suppressed" in shown["rate"] and REASON_WORDS[row.suppression_reason] in shown["rate"], shown
                for col in ("num", "den"):
                    if shown[col] is not None:
                        assert not re.search(r"\d", shown[col]), shown  # never a zero, never a number
            else:
                assert not shown["suppressed"], shown
                assert shown["rate"] == f"{row.rate * 100:.1f}%", shown
                if shown["num"] is not None:
                    assert shown["num"] == f"{int(row.numerator):,}" and shown["den"] == f"{int(row.denominator):,}", shown
        context.close()
    latest = values.groupby("indicator").period.max()
    expected = {
        _key(r) for r in values.itertuples(index=False)
        if (r.school_id == "ALL" and r.dimension == "all")  # the trend: every period
        or (r.period == latest[r.indicator] and r.school_id == "ALL")  # groups: latest period
        or (r.period == latest[r.indicator] and r.dimension == "all")  # schools: latest period
    }
    assert expected - seen == set(), f"{len(expected - seen)} promised rows are missing, e.g. {sorted(expected - seen)[:5]}"
    assert suppressed_shown > 20


def test_school_table_sorts_and_reads_without_javascript(site: dict[str, Any], browser: Any) -> None:
    path = site["dir"] / "chronic_absence.html"
    context, page, errors, _ = _open(browser, path)
    table = page.locator("table.sortable")
    n = table.locator("tbody tr").count()
    assert n == 6
    table.get_by_role("button", name="Rate", exact=True).click()
    values = table.locator("tbody td.rate").evaluate_all("tds => tds.map(td => td.getAttribute('data-v'))")
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers) and values[: len(numbers)] == [v for v in values if v], values  # suppressed last
    assert table.locator("th[aria-sort=ascending]").count() == 1
    assert errors == []
    context.close()
    context, page, _, _ = _open(browser, path, js=False)
    assert page.locator("table.sortable tbody tr").count() == n
    assert page.locator("table.sortable th button").count() == 0  # plain headings without the script
    context.close()


def test_charts_are_accessible_svg_with_a_table_under_each(site: dict[str, Any], browser: Any) -> None:
    context, page, _, _ = _open(browser, site["dir"] / "well_child_visit.html")
    charts = page.eval_on_selector_all(
        "svg.chart",
        """svgs => svgs.map(s => {
            const ids = (s.getAttribute('aria-labelledby') || '').split(' ');
            const fig = s.closest('figure');
            let next = fig ? fig.nextElementSibling : null;
            return {role: s.getAttribute('role'), texts: ids.map(i => (document.getElementById(i) || {}).textContent || ''),
                    table: !!(next && next.querySelector('table'))};
        })""",
    )
    assert len(charts) >= 7  # the trend and six dimensions
    for c in charts:
        assert c["role"] == "img" and all(len(t) > 10 for t in c["texts"]) and c["table"], c
    assert page.get_attribute("html", "lang") == "en"
    rule = page.locator("dl.defs dd", has_text="k = 11").first.inner_text()  # fps and fhd data: the larger k
    assert "as recorded with the release" in rule, rule
    # text colours against the backgrounds they sit on: WCAG 2.1 AA (4.5:1)
    colours = page.eval_on_selector_all(
        "body, td.supp, caption, a, .note, th", "els => els.map(e => getComputedStyle(e).color)")
    for colour in set(colours):
        for background in ("rgb(255, 255, 255)", "rgb(241, 236, 228)", "rgb(242, 242, 242)"):
            assert _contrast(colour, background) >= 4.5, (colour, background)
    context.close()


def _contrast(a: str, b: str) -> float:
    def lum(c: str) -> float:
        r, g, bl = (int(x) / 255 for x in re.findall(r"\d+", c)[:3])
        f = [(v / 12.92) if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in (r, g, bl)]
        return 0.2126 * f[0] + 0.7152 * f[1] + 0.0722 * f[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_screenshots_desktop_and_phone_are_not_blank(site: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    shots = Path(os.environ.get("C2C_REPORT_SHOTS") or tmp_path)
    checker = browser.new_page()
    for name in ("index.html", "chronic_absence.html"):
        for label, width in (("desktop", 1280), ("phone", 390)):
            context, page, _, _ = _open(browser, site["dir"] / name, width=width)
            png = page.screenshot(full_page=True)
            (shots / f"{name[:-5]}-{label}.png").write_bytes(png)
            if label == "phone":  # tables scroll inside their own box; the page itself never scrolls sideways
                assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), name
            context.close()
            inked = checker.evaluate(
                """async (src) => { const img = new Image(); img.src = src; await img.decode();
                    const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
                    const g = c.getContext('2d'); g.drawImage(img, 0, 0);
                    const d = g.getImageData(0, 0, c.width, c.height).data; let ink = 0, blue = 0;
                    for (let i = 0; i < d.length; i += 4) { if (d[i] + d[i+1] + d[i+2] < 600) ink++;
                        if (d[i+2] > 150 && d[i] < 40) blue++; }
                    return {ink: ink / (d.length / 4), blue, width: img.width}; }""",
                "data:image/png;base64," + base64.b64encode(png).decode(),
            )
            assert inked["width"] == width and inked["ink"] > 0.01 and inked["blue"] > 200, (name, label, inked)
    checker.close()


def test_files_private_and_rebuild_identical(site: dict[str, Any]) -> None:
    from warehouse.reports.cabinet import build_cabinet_report

    out: Path = site["dir"]
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "audit.html"}
    for folder in (out, out.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for name in before:
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    build_cabinet_report(site["engine"], out.parent, min_cell_sizes=K)
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "audit.html"}
    assert after == before


def test_cli_report_as_a_subprocess(site: dict[str, Any], tmp_path: Path) -> None:
    home = site["home"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("C2C_") or k == "C2C_MASTER_KEY"}
    run = subprocess.run([sys.executable, "-m", "pipelines.cli", "report", "--home", str(home), "--out", str(tmp_path / "r")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "r" / "1" / "index.html").is_file() and "index.html" in run.stdout
    empty = subprocess.run([sys.executable, "-m", "pipelines.cli", "report", "--home", str(tmp_path / "new")],
                           capture_output=True, text=True, env=env, timeout=600)
    assert empty.returncode == 2 and empty.stdout == ""
    assert len(empty.stderr.strip().splitlines()) == 1 and "c2c run" in empty.stderr, empty.stderr
    assert not (tmp_path / "new" / "warehouse.db").exists()


def test_builder_imports_no_dagster() -> None:
    code = ("import sys, warehouse.reports.cabinet; "
            "sys.exit(1 if any(m == 'dagster' or m.startswith('dagster.') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0
