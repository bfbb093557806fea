"""A release's audit report: one static HTML page an auditor opens offline (no script, no network).

``$C2C_HOME/reports/<release_id>/audit.html`` follows every published indicator to the warehouse columns
it reads (:mod:`warehouse.lineage`), to the files behind those tables (SHA-256, MOU id and version,
validation outcome, row counts, key ids, never a key), and shows the linkage quality, the suppression
counts and the audit-log entries of the run that published it. Everything comes from the warehouse's own
records (releases, intake manifest, audit log); no identifier and no indicator value is on the page.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from warehouse.audit import AuditEntry, read_entries
from warehouse.lineage import indicator_column_sources, table_extracts
from warehouse.manifest import ManifestEntry, ManifestStore
from warehouse.models import IndicatorValue
from warehouse.releases import ReleaseInfo, list_releases

REPORT_FILE = "audit.html"
DETAILS_MAX = 400  # characters of an audit entry's details shown (the full entry: `c2c audit export`)


@dataclass(frozen=True)
class IndicatorLineage:
    definition_id: str
    version: Any
    kind: str
    columns: dict[str, list[str]]  # published column -> qualified warehouse columns
    tables: list[str]
    files: list[int]  # manifest ids of the release's source files behind those tables


@dataclass(frozen=True)
class AuditReport:
    release: ReleaseInfo
    indicators: list[IndicatorLineage]
    files: list[ManifestEntry]  # every file received up to the release
    used: dict[int, list[str]]  # manifest id of a file the release rests on -> how (indicators, linkage)
    suppression: dict[str, int]  # suppression reason -> published cells
    entries: list[AuditEntry]  # the audit-log entries since the previous release, up to this one
    audit_head: tuple[int, str] | None
    file_keys: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))


def _suppression(engine: Engine, release_id: int) -> dict[str, int]:
    iv = IndicatorValue.__table__
    q = (select(iv.c.suppression_reason, func.count()).where(iv.c.release_id == release_id, iv.c.suppressed.is_(True))
         .group_by(iv.c.suppression_reason))
    with engine.connect() as conn:
        return {str(reason or "unspecified"): int(n) for reason, n in conn.execute(q)}


def _run_entries(engine: Engine, release_id: int) -> tuple[list[AuditEntry], tuple[int, str] | None]:
    """Entries after the previous release's event up to this release's event, and this event's (seq, hash)."""
    entries = read_entries(engine)
    releases = [e for e in entries if e.event_type == "release"]
    mine = next((e for e in releases if e.details.get("release_id") == release_id), None)
    if mine is None:
        return [], None
    before = [e.seq for e in releases if e.seq < mine.seq]
    start = max(before) if before else 0
    return [e for e in entries if start < e.seq <= mine.seq], (mine.seq, mine.entry_hash)


def _indicator_lineage(release: ReleaseInfo, definitions: Mapping[str, Any] | None) -> list[IndicatorLineage]:
    from schemas.indicators import load_indicator_definitions

    defs = definitions if definitions is not None else load_indicator_definitions()
    by_table = table_extracts()
    out = []
    for def_id, recorded in sorted(release.definitions.items()):
        d = defs.get(def_id)
        if d is None:
            continue
        columns = {c: v for c, v in indicator_column_sources({def_id: d}).items() if v}
        tables = sorted({col.split(".", 1)[0] for cols in columns.values() for col in cols})
        extracts = {key for t in tables for key in by_table.get(t, [])}
        files = sorted(int(f["manifest_id"]) for f in release.source_files if f"{f['agency']}/{f['extract']}" in extracts)
        version = recorded.get("version") if isinstance(recorded, Mapping) else recorded
        out.append(IndicatorLineage(def_id, version, d.kind, columns, tables, files))
    return out


def collect_audit_report(
    engine: Engine,
    release_id: int,
    *,
    definitions: Mapping[str, Any] | None = None,
    file_keys: Mapping[int, Mapping[str, str]] | None = None,
    contributing: Iterable[Mapping[str, Any]] = (),
) -> AuditReport:
    """Everything the page shows, read from the warehouse. ``file_keys``: manifest id -> key ids, if known;
    ``contributing``: files behind the release beyond those its indicators read (``manifest_id``, ``via``),
    e.g. the person extracts the linkage read."""
    release = next((r for r in list_releases(engine) if r.release_id == release_id), None)
    if release is None:
        raise LookupError(f"release {release_id} is not kept in this warehouse")
    entries, head = _run_entries(engine, release_id)
    files = [e for e in ManifestStore(engine).entries() if _aware(e.decided_at) <= release.created_at]
    used: dict[int, set[str]] = {int(f["manifest_id"]): {"indicators"} for f in release.source_files}
    for f in contributing:
        used.setdefault(int(f["manifest_id"]), set()).update(f.get("via") or ())
    return AuditReport(
        release=release, indicators=_indicator_lineage(release, definitions), files=files,
        used={k: sorted(v) for k, v in used.items()}, suppression=_suppression(engine, release_id),
        entries=entries, audit_head=head, file_keys=dict(file_keys or {}),
    )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


# --------------------------------------------------------------------------------------------------
# Rendering (escaped text only; no script, no external resource)

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#1b1b1b;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f2f2f2}code,.sha{font-family:ui-monospace,monospace;font-size:12px}
.sha{word-break:break-all;display:inline-block;width:33ch}.refused{color:#8a1c1c;font-weight:bold}.accepted{color:#1d5e20}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}
"""


def _table(head: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _file_row(e: ManifestEntry, report: AuditReport) -> list[str]:
    keys = report.file_keys.get(e.id) or {}
    outcome = escape(e.status) + (f": {escape(e.reason_code or '')}" if e.status == "refused" else "")
    return [
        str(e.id), f"<code>{escape(e.rel_path)}</code>", f'<span class="{escape(e.status)}" data-status="{escape(e.status)}">{outcome}</span>',
        f'<span class="sha" data-sha256="{escape(e.sha256 or "")}">{escape(e.sha256 or "-")}</span>',
        escape(f"{e.mou_id} v{e.mou_version}" if e.mou_id else "-"),
        escape(f"{e.rows:,}" if e.rows is not None else "-"), escape(f"{e.duplicate_rows:,}" if e.duplicate_rows else "0"),
        escape(", ".join(v for _, v in sorted(keys.items())) or "-"),
        escape(", ".join(report.used[e.id])) if e.id in report.used else "no",
    ]


def _indicator_section(report: AuditReport, by_id: Mapping[int, ManifestEntry]) -> str:
    parts = []
    for ind in report.indicators:
        cols = _table(["published column", "warehouse columns it reads"],
                      ([escape(c), "<code>" + escape(", ".join(v)) + "</code>"] for c, v in ind.columns.items()))
        files = _table(["manifest id", "file", "SHA-256", "MOU"], (
            [str(i), f"<code>{escape(by_id[i].rel_path)}</code>" if i in by_id else "-",
             f'<span class="sha">{escape(str(by_id[i].sha256) if i in by_id else "-")}</span>',
             escape(f"{by_id[i].mou_id} v{by_id[i].mou_version}" if i in by_id and by_id[i].mou_id else "-")]
            for i in ind.files))
        parts.append(f'<section class="indicator" id="ind-{escape(ind.definition_id)}"><h3>{escape(ind.definition_id)} '
                     f'(v{escape(str(ind.version))}, kind {escape(ind.kind)})</h3><p>Tables: <code>'
                     f'{escape(", ".join(ind.tables))}</code></p>{cols}<p>Files behind these tables:</p>{files}</section>')
    return "".join(parts)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        return [kv for k, v in value.items() for kv in _flatten(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), json.dumps(value, default=str) if not isinstance(value, str) else value)]


def render_audit_html(report: AuditReport) -> str:
    r = report.release
    by_id = {e.id: e for e in report.files}
    head = f"entry {report.audit_head[0]}, hash {report.audit_head[1]}" if report.audit_head else "no release entry found"
    summary = (f"<dl><dt>Release</dt><dd id=\"release-id\">{r.release_id}</dd><dt>Published</dt><dd>{escape(r.created_at.isoformat())}</dd>"
               f"<dt>Run</dt><dd><code>{escape(r.run_id or '-')}</code></dd><dt>Published rows</dt><dd>{r.rows:,}</dd>"
               f"<dt>Suppressed cells</dt><dd>{r.suppressed_rows:,}</dd><dt>Audit log at publication</dt>"
               f"<dd id=\"audit-head\"><code>{escape(head)}</code></dd></dl>")
    supp = _table(["suppression reason", "cells"], ([escape(k), f"{v:,}"] for k, v in sorted(report.suppression.items())))
    quality = _table(["measure", "value"], ([escape(k), escape(v)] for k, v in _flatten(r.linkage_quality)))
    files = _table(["manifest id", "file", "validation outcome", "SHA-256", "MOU", "rows", "duplicate rows", "key ids",
                    "behind this release (via)"], (_file_row(e, report) for e in report.files), cls="files")
    entries = _table(["seq", "recorded (UTC)", "actor", "event", "subject", "details"], (
        [str(e.seq), escape(e.recorded_at), escape(e.actor), escape(e.event_type), f"<code>{escape(e.subject)}</code>",
         "<code>" + escape(_short(json.dumps(e.details, sort_keys=True, default=str))) + "</code>"] for e in report.entries))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>c2c audit report: release {r.release_id}</title><style>{_CSS}</style></head><body>"
        f"<h1>Audit report: indicator release {r.release_id}</h1>"
        f"<p>Generated {escape(report.generated_at.isoformat(timespec='seconds'))} from the warehouse's own records. "
        "No identifier and no indicator value is on this page. Check the audit log with <code>c2c audit verify</code>.</p>"
        f"<h2>Release</h2>{summary}"
        f"<h2>Indicators: published columns, warehouse columns, files</h2>{_indicator_section(report, by_id)}"
        f"<h2>Files received</h2>{files}<h2>Linkage quality</h2>{quality}<h2>Suppression</h2>{supp}"
        f"<h2>Audit-log entries of this run</h2><p>Entries after the previous release up to this one.</p>{entries}"
        f"<h2>Release notes</h2><pre>{escape(r.notes)}</pre></body></html>\n"
    )


def _short(text: str) -> str:
    return text if len(text) <= DETAILS_MAX else text[: DETAILS_MAX - 1] + "…"


def write_audit_report(
    engine: Engine,
    release_id: int,
    reports_dir: Path,
    *,
    definitions: Mapping[str, Any] | None = None,
    file_keys: Mapping[int, Mapping[str, str]] | None = None,
    contributing: Iterable[Mapping[str, Any]] = (),
) -> Path:
    """Write ``reports_dir/<release_id>/audit.html`` (folders 0700, file 0600, replaced atomically)."""
    report = collect_audit_report(engine, release_id, definitions=definitions, file_keys=file_keys, contributing=contributing)
    html = render_audit_html(report)
    folder = Path(reports_dir) / str(int(release_id))
    for d in (Path(reports_dir), folder):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(d, 0o700)
    path = folder / REPORT_FILE
    tmp = folder / f".{REPORT_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(html)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
