"""The cabinet's report: one release of ``indicator_values`` as a static site anyone can open offline.

:func:`build_cabinet_report` writes ``<reports_root>/<release_id>/index.html`` (the overview) and one
``<indicator>.html`` per published indicator, beside the release's ``audit.html`` (linked when present).
It reads the **public tier only**: the release's published rows (:func:`warehouse.releases.current_indicator_values`),
its metadata and the linkage quality published with it (:func:`warehouse.releases.list_releases`); the
definitions' plain-language text comes from ``schemas/indicators`` and code meanings from the extract
contracts. Counts and rates are shown exactly as published (never recomputed); the only arithmetic is
the difference between two published rates, in percentage points. A suppressed cell is shown as
suppressed with its reason, never as zero.

Pages are pure HTML + inline SVG (charts: :mod:`warehouse.reports.cabinet_charts`), with one tiny inline
script that makes the school table sortable; nothing is fetched. Files are written 0600 (atomically),
folders 0700. Same release -> same files (re-run == clean run).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Engine

from schemas.indicators import DefinitionSet, IndicatorDefinition, load_indicator_definitions
from warehouse.reports import cabinet_charts as charts
from warehouse.reports.cabinet_charts import Point, pct, points_gap
from warehouse.reports.errors import ReportError
from warehouse.reports.cabinet_html import Cell, page, table
from warehouse.reports.cabinet_text import (
    REASONS,
    definition_html,
    dimension_title,
    group_label,
    linkage_html,
    period_label,
    reason_text,
)
from warehouse.releases import ReleaseInfo, current_indicator_values, current_release_id, k_by_role, list_releases

if TYPE_CHECKING:
    from schemas.partnership import Partnership

CITY = "ALL"  # school_id of the city-wide rows (data_sharing.disclosure.CITY)
ALL = "all"  # dimension and group of the all-students rows
INDEX = "index.html"
AUDIT = "audit.html"


@dataclass(frozen=True)
class ReportData:
    release: ReleaseInfo
    values: pd.DataFrame
    definitions: dict[str, list[IndicatorDefinition]]  # published indicator -> its definitions
    ks: dict[str, int]  # definition id -> disclosure threshold k
    k_from_release: bool
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # dimension -> code -> meaning


@dataclass(frozen=True)
class ReportResult:
    release_id: int
    directory: Path
    pages: tuple[str, ...]
    seconds: float
    charts: int


# --------------------------------------------------------------------------------------------------
# Reading (public tier only)


def _release(engine: Engine, release_id: int | None) -> ReleaseInfo:
    releases = list_releases(engine)
    if release_id is None:
        with engine.connect() as conn:
            release_id = current_release_id(conn)
        if release_id is None:
            raise ReportError("there is no release yet: run `c2c run` (it publishes one) before `c2c report`")
    for info in releases:
        if info.release_id == release_id:
            return info
    kept = ", ".join(str(r.release_id) for r in releases) or "none"
    raise ReportError(f"release {release_id} is not kept in the warehouse (kept: {kept})")


def _ks(release: ReleaseInfo, defs: DefinitionSet, partnership: Partnership | None,
        min_cell_sizes: Mapping[str, int] | None) -> tuple[dict[str, int], bool]:
    recorded = {i: int(v["k"]) for i, v in release.definitions.items() if isinstance(v, dict) and "k" in v}
    if recorded and all(i in recorded for i in defs):
        return recorded, True
    role_k = k_by_role(partnership, min_cell_sizes)
    out = {}
    for i, d in defs.items():
        known = [role_k[r] for r in d.roles_read if r in role_k]
        if known:
            out[i] = max(known)
    return out, False


def _code_labels() -> dict[str, dict[str, str]]:
    """dimension -> code -> meaning, from the extract contracts' code lists (empty if they cannot be read)."""
    try:
        from schemas.contracts import load_extract_contracts

        contracts = load_extract_contracts()
    except Exception:  # labels are a courtesy: the report shows the codes themselves without them
        return {}
    out: dict[str, dict[str, str]] = {}
    for contract in contracts.values():
        for name, spec in contract.columns.items():
            if spec.codes:
                out.setdefault(name, {}).update({k: v for k, v in spec.codes.items() if v and v != k})
    return out


def load_report_data(
    engine: Engine,
    release_id: int | None = None,
    *,
    definitions: DefinitionSet | None = None,
    partnership: Partnership | None = None,
    min_cell_sizes: Mapping[str, int] | None = None,
) -> ReportData:
    """The release (current unless ``release_id``), its published rows and the definitions' text."""
    release = _release(engine, release_id)
    values = current_indicator_values(engine, release_id=release.release_id)
    defs = definitions if definitions is not None else load_indicator_definitions()
    if not isinstance(defs, DefinitionSet):
        defs = DefinitionSet(defs)
    ks, recorded = _ks(release, defs, partnership, min_cell_sizes)
    by_indicator = {ind: ds for ind, ds in defs.by_indicator().items() if ind in set(values["indicator"])}
    return ReportData(release, values, by_indicator, ks, recorded, _code_labels())


# --------------------------------------------------------------------------------------------------
# Page parts


def _point(row: Any, label: str) -> Point:
    if bool(row.suppressed):
        return Point(label, None, REASONS.get(str(row.suppression_reason), str(row.suppression_reason)))
    return Point(label, None if pd.isna(row.rate) else float(row.rate))


def _value_cells(row: Any, k: int | None) -> list[Cell]:
    """numerator, denominator, rate, as published; a suppressed row says so (with its reason), never 0."""
    if bool(row.suppressed):
        why = reason_text(row.suppression_reason, k)
        short = REASONS.get(str(row.suppression_reason), str(row.suppression_reason))
        dash = '\u2014<span class="vh"> suppressed</span>'
        return [Cell(dash, "", "n supp num", raw_html=True), Cell(dash, "", "n supp den", raw_html=True),
                Cell(f'suppressed <span class="why">({escape(short)})</span>', "", "supp rate", raw_html=True, title=why)]
    num = "" if pd.isna(row.numerator) else int(row.numerator)
    den = "" if pd.isna(row.denominator) else int(row.denominator)
    rate = None if pd.isna(row.rate) else float(row.rate)
    return [Cell(f"{num:,}" if num != "" else "", num, "n num"), Cell(f"{den:,}" if den != "" else "", den, "n den"),
            Cell(pct(rate), "" if rate is None else rate, "n rate")]


def _cell_attrs(row: Any) -> dict[str, str]:
    attrs = {"data-cell": f"{row.indicator}|{row.period}|{row.school_id}|{row.dimension}|{row.group}"}
    if bool(row.suppressed):
        attrs.update({"class": "suppressed", "data-reason": str(row.suppression_reason)})
    return attrs


@dataclass
class _Indicator:
    """One published indicator's rows, split the ways the pages show them."""

    id: str
    defs: list[IndicatorDefinition]
    rows: pd.DataFrame
    periods: list[int]
    k: int | None

    @property
    def main(self) -> IndicatorDefinition:
        return next((d for d in self.defs if ALL in d.dimensions), self.defs[0])

    @property
    def title(self) -> str:
        return self.main.title

    @property
    def period_kind(self) -> str:
        return self.main.period

    def label(self, period: int) -> str:
        return period_label(self.period_kind, period)

    def city(self) -> pd.DataFrame:
        r = self.rows
        return r[(r.school_id == CITY) & (r.dimension == ALL)].sort_values("period")

    def city_row(self, period: int) -> Any | None:
        c = self.city()
        c = c[c.period == period]
        return next(c.itertuples(index=False), None)

    def latest(self) -> int:
        return self.periods[-1]

    def previous(self) -> int | None:
        return self.periods[-2] if len(self.periods) > 1 else None

    def trend_points(self) -> list[Point]:
        return [_point(r, self.label(int(r.period))) for r in self.city().itertuples(index=False)]


def _rate(row: Any | None) -> float | None:
    if row is None or bool(row.suppressed) or pd.isna(row.rate):
        return None
    return float(row.rate)


def _indicators(data: ReportData) -> list[_Indicator]:
    out = []
    for ind, defs in sorted(data.definitions.items(), key=lambda kv: kv[1][0].title if kv[1] else kv[0]):
        rows = data.values[data.values.indicator == ind]
        periods = sorted(int(p) for p in rows.period.unique())
        ks = [data.ks[d.id] for d in defs if d.id in data.ks]
        out.append(_Indicator(ind, defs, rows, periods, max(ks) if ks else None))
    return sorted(out, key=lambda i: i.title)


def _header(data: ReportData, title: str, *, audit: bool, home: bool) -> str:
    r = data.release
    links = ['<a href="index.html">Overview</a>'] if home else []
    if audit:
        links.append(f'<a href="{AUDIT}">Audit report</a>')
    nav = f"<nav>{' '.join(links)}</nav>" if links else ""
    return (f"{nav}<h1>{escape(title)}</h1><p>{'' if not home else 'Children&#39;s Cabinet indicators &middot; '}Release {r.release_id}, "
            f"published {r.created_at.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC</p>")


def _footer(data: ReportData) -> str:
    return ("<p>Built from the public tier of the warehouse: published, suppressed indicator values only. "
            "Counts are shown as published; a suppressed value is withheld to protect children's privacy and is "
            "never a zero. " + f"Release {data.release.release_id}.</p>")


# --------------------------------------------------------------------------------------------------
# Overview


def _overview_rows(inds: list[_Indicator]) -> tuple[list[tuple[list[Cell], dict[str, str]]], int]:
    rows, n = [], 0
    for ind in inds:
        previous = ind.previous()
        latest, prev = ind.city_row(ind.latest()), (ind.city_row(previous) if previous else None)
        spark = charts.sparkline(ind.trend_points(), f"{ind.title}: city-wide trend")
        n += 1
        link = f'<a href="{escape(ind.id)}.html">{escape(ind.title)}</a>'
        if latest is not None and bool(latest.suppressed):
            short = REASONS.get(str(latest.suppression_reason), str(latest.suppression_reason))
            rate_cell = Cell(f"suppressed ({short})", "", "supp rate", title=reason_text(latest.suppression_reason, ind.k))
        else:
            rate_cell = Cell(pct(_rate(latest)) if latest is not None else "no data", "", "n rate")
        change = points_gap(_rate(latest), _rate(prev))
        cells = [Cell(link, ind.title, raw_html=True), Cell(ind.label(ind.latest()), cls="nw"), rate_cell,
                 Cell(change or "not available", cls="nw"), Cell(spark, raw_html=True)]
        attrs = _cell_attrs(latest) if latest is not None else {}
        rows.append((cells, attrs))
    return rows, n


def overview_html(data: ReportData, inds: list[_Indicator], *, audit: bool) -> tuple[str, int]:
    r = data.release
    rows, n = _overview_rows(inds)
    facts = (
        '<ul class="facts">'
        f"<li>Release<b>{r.release_id}</b></li>"
        f"<li>Published<b>{r.created_at.astimezone(dt.timezone.utc):%Y-%m-%d}</b></li>"
        f"<li>Source files<b>{len(r.source_files):,}</b></li>"
        f"<li>Indicators<b>{len(inds)}</b></li>"
        f"<li>Published cells<b>{r.rows:,}</b></li>"
        f"<li>Suppressed cells<b>{r.suppressed_rows:,}</b></li></ul>"
    )
    tbl = table(
        "Each indicator's city-wide rate for its latest period, the change from the period before, and its trend.",
        [("Indicator", None), ("Latest period", None), ("City-wide rate", None), ("Change from the period before", None),
         ("Trend, every period", None)],
        rows,
    )
    counts = data.values.groupby("suppression_reason").size() if len(data.values) else pd.Series(dtype=int)
    supp = "".join(f"<li>{escape(REASONS.get(str(k), str(k)))}: {int(v):,} cells</li>" for k, v in counts.items())
    notes = "".join(f"<li>{escape(line[2:])}</li>" for line in r.notes.splitlines() if line.startswith("- "))
    body = (
        f"<section><h2>This release</h2>{facts}"
        + (f'<p>The <a href="{AUDIT}">audit report</a> follows every indicator to its source files.</p>' if audit else "")
        + f"</section><section><h2>Indicators</h2>{tbl}</section>"
        f"<section><h2>Suppressed cells</h2><p>A cell is withheld when it would reveal a group of fewer than k "
        f"children (the disclosure threshold of the data-sharing agreements), or when it would let a withheld cell be "
        f"worked out from the others (complementary suppression).</p><ul>{supp or '<li>none</li>'}</ul></section>"
        f"<section><h2>Record linkage behind cross-agency indicators</h2>{linkage_html(r.linkage_quality)}</section>"
        f"<section><h2>Known limitations</h2><ul>{notes}</ul></section>"
    )
    html = page("Children's Cabinet indicators: overview", _header(data, "Children's Cabinet indicators", audit=audit, home=False),
                body, _footer(data))
    return html, n


# --------------------------------------------------------------------------------------------------
# Indicator page


def _trend_section(ind: _Indicator) -> str:
    svg = charts.trend_chart(ind.trend_points(), f"{ind.title}: city-wide rate by {ind.period_kind.replace('_', ' ')}")
    rows = [([Cell(ind.label(int(r.period)), int(r.period), "nw"), *_value_cells(r, ind.k)], _cell_attrs(r))
            for r in ind.city().itertuples(index=False)]
    tbl = table("City-wide, all students, every published period", [("Period", None), ("Met the measure", None),
                ("Students counted", None), ("Rate", None)], rows)
    return f'<section><h2>Trend</h2><div class="pair"><figure>{svg}</figure><div>{tbl}</div></div></section>'


def _dimension_section(ind: _Indicator, labels: dict[str, dict[str, str]]) -> tuple[str, int]:
    period = ind.latest()
    r = ind.rows
    city = _rate(ind.city_row(period))
    dims = [d for d in dict.fromkeys(r[(r.school_id == CITY) & (r.period == period)].dimension) if d != ALL]
    dim_order = [d for defn in ind.defs for d in defn.dimensions if d != ALL]
    dims = sorted(dims, key=lambda d: dim_order.index(d) if d in dim_order else len(dim_order))
    parts = []
    for dim in dims:
        sub = r[(r.school_id == CITY) & (r.period == period) & (r.dimension == dim)].sort_values("group")
        pts, rows = [], []
        for row in sub.itertuples(index=False):
            name = group_label(dim, str(row.group), labels)
            pts.append(_point(row, name))
            gap = points_gap(_rate(row), city)
            rows.append(([Cell(name), *_value_cells(row, ind.k), Cell(gap or ("\u2014" if bool(row.suppressed) else ""), "", "n")],
                         _cell_attrs(row)))
        title = f"{ind.title} by {dimension_title(dim)}, {ind.label(period)}"
        svg = charts.bars_chart(pts, city, title)
        tbl = table(f"{title} (city-wide; gap = group rate minus city rate {pct(city)})",
                    [("Group", None), ("Met the measure", None), ("Students counted", None), ("Rate", None), ("Gap to city", None)], rows)
        parts.append(f'<h3>{escape(dimension_title(dim).capitalize())}</h3><div class="stack"><figure>{svg}</figure>{tbl}</div>')
    if not parts:
        return "", 0
    note = ('<p class="note">Bars: each group\'s rate; dashed line: the city-wide rate; the label gives the gap to it in '
            'percentage points. A pale band marks a suppressed group.</p>')
    return (f"<section><h2>By group, {escape(ind.label(period))}</h2>{note}{_legend(ind.k)}" + "".join(parts) + "</section>"), len(parts)


def _legend(k: int | None) -> str:
    items = "".join(f"<dt>{escape(short)}</dt><dd>{escape(reason_text(code, k))}</dd>" for code, short in REASONS.items())
    return f'<details><summary>Why a cell is suppressed</summary><dl class="defs">{items}</dl></details>'


def _school_section(ind: _Indicator) -> str:
    period, prev = ind.latest(), ind.previous()
    r = ind.rows
    now = r[(r.school_id != CITY) & (r.period == period) & (r.dimension == ALL)].sort_values("school_id")
    if not len(now):
        return ""
    before = {} if prev is None else {
        str(x.school_id): x for x in r[(r.school_id != CITY) & (r.period == prev) & (r.dimension == ALL)].itertuples(index=False)
    }
    rows = []
    for row in now.itertuples(index=False):
        old = before.get(str(row.school_id))
        old_rate = _rate(old)
        if old is None:
            old_cell = Cell("not published", "", "n")
        elif old_rate is None:
            old_cell = Cell("suppressed", "", "n supp")
        else:
            old_cell = Cell(pct(old_rate), old_rate, "n")
        change = points_gap(_rate(row), old_rate)
        delta = None if not change else round((_rate(row) - old_rate) * 100, 1)  # type: ignore[operator]
        rows.append(([Cell(str(row.school_id), str(row.school_id)), *_value_cells(row, ind.k), old_cell,
                      Cell(change or "\u2014", "" if delta is None else delta, "n")], _cell_attrs(row)))
    prev_label = ind.label(prev) if prev is not None else "previous period"
    headers = [("School", "text"), ("Met the measure", "num"), ("Students counted", "num"), ("Rate", "num"),
               (f"Rate {prev_label}", "num"), ("Change", "num")]
    tbl = table(f"Schools, all students, {ind.label(period)} (select a column heading to sort)", headers, rows, sortable=True)
    return f"<section><h2>Schools, {escape(ind.label(period))}</h2>{_legend(ind.k)}{tbl}</section>"


def indicator_html(data: ReportData, ind: _Indicator, *, audit: bool) -> tuple[str, int]:
    previous = ind.previous()
    latest, prev = ind.city_row(ind.latest()), (ind.city_row(previous) if previous else None)
    change = points_gap(_rate(latest), _rate(prev))
    facts = (
        '<ul class="facts">'
        f"<li>City-wide, {escape(ind.label(ind.latest()))}<b>"
        + (escape(pct(_rate(latest))) if latest is not None and not bool(latest.suppressed) else '<span class="supp">suppressed</span>')
        + "</b></li>"
        + (f"<li>Change since {escape(ind.label(previous))}<b>{escape(change)}</b></li>" if change and previous else "")
        + (f"<li>Disclosure threshold<b>k = {ind.k}</b></li>" if ind.k is not None else "")
        + "</ul>"
    )
    dims, n = _dimension_section(ind, data.labels)
    defs = "".join(definition_html(d, data.release.definitions.get(d.id), data.ks.get(d.id), data.k_from_release) for d in ind.defs)
    body = (f"<p>{escape(ind.main.description)}</p>{facts}{_trend_section(ind)}{dims}{_school_section(ind)}"
            f"<section><h2>Definition</h2>{defs}</section>")
    html = page(f"{ind.title}: Children's Cabinet indicators", _header(data, ind.title, audit=audit, home=True), body,
                _footer(data), script=True)
    return html, n + 1


# --------------------------------------------------------------------------------------------------
# Writing


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _write_private(path: Path, text: str) -> None:
    """Write atomically (temp file in the same folder, then rename), mode 0600."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render_pages(data: ReportData, *, audit: bool) -> tuple[dict[str, str], int]:
    """file name -> HTML for every page of the report, and the number of charts drawn."""
    inds = _indicators(data)
    pages: dict[str, str] = {}
    charts.reset_ids()
    overview, n = overview_html(data, inds, audit=audit)
    pages[INDEX] = overview
    for ind in inds:
        charts.reset_ids()
        pages[f"{ind.id}.html"], m = indicator_html(data, ind, audit=audit)
        n += m
    return pages, n


def build_cabinet_report(
    engine: Engine,
    reports_root: Path | str,
    release_id: int | None = None,
    *,
    definitions: DefinitionSet | None = None,
    partnership: Partnership | None = None,
    min_cell_sizes: Mapping[str, int] | None = None,
) -> ReportResult:
    """Write the report of the current release (or ``release_id``) to ``<reports_root>/<release_id>/``."""
    started = time.perf_counter()
    data = load_report_data(engine, release_id, definitions=definitions, partnership=partnership, min_cell_sizes=min_cell_sizes)
    root = Path(reports_root)
    out = root / str(data.release.release_id)
    _private_dir(root)
    _private_dir(out)
    pages, n = render_pages(data, audit=(out / AUDIT).is_file())
    for name, text in pages.items():
        _write_private(out / name, text)
    return ReportResult(data.release.release_id, out, tuple(pages), round(time.perf_counter() - started, 3), n)


__all__ = ["ReportData", "ReportError", "ReportResult", "build_cabinet_report", "load_report_data", "render_pages"]
