"""Feedback an agency clerk can act on, written back to ``<drop>/<agency>/feedback/``.

For each file: ``<file>.html`` (a summary at the top: accepted, quarantined, refused; then what to fix,
rule by rule, and every problem with its row number) and ``<file>.csv`` (one line per problem, for a
spreadsheet), where ``<file>`` is the data file's name without ``.csv``. Offending values appear only
for columns that are not identifiers (``privacy: none``): :class:`~data_sharing.validation.Problem`
never carries any other, and this module adds none. Everything is HTML-escaped; CSV cells that a
spreadsheet would run as a formula are prefixed with ``'``.

:func:`build_data_docs` builds the GX Data Docs site of one agency (suites and masked validation
results) into a folder, for auditors.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import errno
import html
import io
import os
import re
import secrets
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_sharing.dropsafe import DIR_FLAGS, UnsafeEntry, open_dir_chain
from data_sharing.intake import FEEDBACK_DIR
from data_sharing.validation import Problem, ValidationResult

HTML_ROW_LIMIT = 5000
_AGENCY_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# A spreadsheet runs a cell as a formula when it starts with one of these, also after leading whitespace,
# and in their full-width and small forms (Excel and LibreOffice fold them to ASCII).
_FORMULA_SIGNS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20\ufe66\ufe62\ufe63\ufe6b\u2212")
_CONTROL_START = ("\t", "\r", "\n")
OUTCOME_WORDS = {
    "refuse_file": "file refused",
    "quarantine_row": "row held back (quarantined)",
    "warn": "warning (row kept)",
}
CSV_HEADER = ["row_number", "column", "rule", "outcome", "explanation", "value"]


@dataclass(frozen=True)
class FeedbackFiles:
    html: Path
    csv: Path
    replaced: str | None = None  # what stood at <agency>/feedback and was replaced by a real folder


def feedback_stem(file_name: str) -> str:
    """``students_20260915.csv`` -> ``students_20260915``; anything unsafe replaced by ``_``."""
    name = file_name.rsplit("/", 1)[-1]
    if name.lower().endswith(".csv"):
        name = name[:-4]
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "file"
    return stem[:150]


def _status_words(result: ValidationResult | None, refusal: str | None) -> tuple[str, str]:
    if refusal is not None or (result is not None and result.file_refused):
        return "refused", "Refused: nothing from this file was taken. Fix the problems below and send the whole file again."
    if result is not None and result.quarantined:
        return "quarantined", (
            "Accepted in part: the rows listed below as held back were not taken; correct them in your system "
            "and they will arrive with your next complete extract."
        )
    if result is not None and result.problems:
        return "warnings", "Accepted, with warnings to look at."
    return "ok", "Accepted: no problems found."


def _csv_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: a formula-like start (after any whitespace) gets a ``'``."""
    text = "" if value is None else str(value)
    if text.startswith(_CONTROL_START) or text.lstrip()[:1] in _FORMULA_SIGNS:
        return "'" + text
    return text


def render_csv(
    result: ValidationResult | None,
    *,
    refusal: str | None = None,
    warnings: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> str:
    """The CSV feedback: a first ``summary`` line, then one line per problem."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    status, _ = _status_words(result, refusal)
    if result is not None:
        c = result.counts()
        summary = (
            f"status: {status}; rows in file: {c['rows_in']}; exact repeats: {c['duplicate_rows']}; "
            f"accepted: {c['accepted']}; quarantined: {c['quarantined']}; refused: {c['refused']}"
        )
    else:
        summary = f"status: {status}"
    w.writerow(["", "", "summary", "", summary, ""])
    if refusal is not None:
        w.writerow(["", "", "intake", "refuse_file", _csv_cell(refusal), ""])
    for text in warnings:
        w.writerow(["", "", "intake", "warn", _csv_cell(text), ""])
    for p in result.problems if result is not None else ():
        w.writerow(
            [
                p.row_number if p.row_number is not None else "",
                p.column or "",
                p.rule,
                p.outcome,
                _csv_cell(p.explanation),
                _csv_cell(p.value),
            ]
        )
    for text in notes:
        w.writerow(["", "", "note", "", _csv_cell(text), ""])
    return buf.getvalue()


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222;max-width:75em}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em}
.status{padding:.8em 1em;border-radius:6px;margin:1em 0;font-weight:600}
.status.ok{background:#e6f4ea}.status.warnings{background:#fff8e1}.status.quarantined{background:#fff3e0}
.status.refused{background:#fdecea}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.n{text-align:right}
.muted{color:#666}
"""


def render_html(
    result: ValidationResult | None,
    file_name: str,
    agency: str,
    *,
    refusal: str | None = None,
    warnings: Sequence[str] = (),
    notes: Sequence[str] = (),
    generated: dt.datetime | None = None,
    row_limit: int = HTML_ROW_LIMIT,
) -> str:
    """The HTML feedback page (self-contained, everything escaped)."""
    e = html.escape
    status, sentence = _status_words(result, refusal)
    when = (generated or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Feedback on {e(file_name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Feedback on {e(file_name)} <span class=\"muted\">({e(agency)})</span></h1>",
        f'<div class="status {status}">{e(sentence)}</div>',
    ]
    if result is not None:
        c = result.counts()
        out.append("<table><tr><th>rows in the file</th><th>exact repeats (counted once)</th>"
                   "<th>accepted</th><th>quarantined</th><th>refused</th></tr>")
        out.append(
            "<tr>" + "".join(f'<td class="n">{c[k]:,}</td>' for k in ("rows_in", "duplicate_rows", "accepted", "quarantined", "refused")) + "</tr></table>"
        )
    out.append(f'<p class="muted">Checked {e(when)}. Row numbers count data rows from 1 (the header is not counted). '
               "Values are shown only for columns that do not identify a person.</p>")
    if refusal is not None:
        out.append(f"<h2>Why the file was refused</h2><p>{e(refusal)}</p>")
    elif result is not None and result.file_refused:
        out.append("<h2>Why the file was refused</h2><ul>")
        out += [f"<li>{e(r)}</li>" for r in result.refusal_reasons]
        out.append("</ul>")
    if warnings:
        out.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{e(w)}</li>" for w in warnings) + "</ul>")
    problems: list[Problem] = result.problems if result is not None else []
    if problems:
        out.append("<h2>What to fix, rule by rule</h2><table><tr><th>rule</th><th>column</th><th>effect</th>"
                   "<th>rows</th><th>what it means</th><th>first rows</th></tr>")
        groups: dict[tuple[str, str | None, str], list[Problem]] = {}
        for p in problems:
            groups.setdefault((p.rule, p.column, p.outcome), []).append(p)
        for (rule, column, outcome), items in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0][0])):
            rows = [p.row_number for p in items if p.row_number is not None]
            first = ", ".join(f"{r:,}" for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
            explain = items[0].explanation if rule != "unique_key" else items[0].explanation.split(" Same key as")[0]
            out.append(
                f"<tr><td>{e(rule)}</td><td>{e(column or '')}</td><td>{e(OUTCOME_WORDS.get(outcome, outcome))}</td>"
                f'<td class="n">{len(items):,}</td><td>{e(explain)}</td><td>{e(first)}</td></tr>'
            )
        out.append("</table>")
        out.append("<h2>Every problem</h2>")
        if len(problems) > row_limit:
            out.append(f"<p>The first {row_limit:,} of {len(problems):,} problems; the CSV file next to this page lists them all.</p>")
        out.append("<table><tr><th>row</th><th>column</th><th>rule</th><th>effect</th><th>what to fix</th><th>value</th></tr>")
        for p in problems[:row_limit]:
            row = f"{p.row_number:,}" if p.row_number is not None else "whole file"
            value = "" if p.value is None else p.value
            out.append(
                f'<tr><td class="n">{e(row)}</td><td>{e(p.column or "")}</td><td>{e(p.rule)}</td>'
                f"<td>{e(OUTCOME_WORDS.get(p.outcome, p.outcome))}</td><td>{e(p.explanation)}</td><td>{e(value)}</td></tr>"
            )
        out.append("</table>")
    all_notes = list(notes) + (list(result.notes) if result is not None else [])
    if all_notes:
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in all_notes) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out)


class FeedbackNotWritten(OSError):
    """The agency's folder could not be entered safely (a link, not a folder): no feedback written."""


def _set_aside(agency_fd: int, now: dt.datetime) -> str:
    """Remove what stands at ``feedback`` (a link is removed; anything else is renamed aside, never read)."""
    st = os.stat(FEEDBACK_DIR, dir_fd=agency_fd, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        os.unlink(FEEDBACK_DIR, dir_fd=agency_fd)
        return "a symbolic link (removed; its target was not touched)"
    aside = f"{FEEDBACK_DIR}.replaced-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    os.rename(FEEDBACK_DIR, aside, src_dir_fd=agency_fd, dst_dir_fd=agency_fd)
    what = "a folder owned by another user" if stat.S_ISDIR(st.st_mode) else "not a folder"
    return f"{what} (renamed to {aside})"


def _open_feedback_dir(agency_fd: int, now: dt.datetime) -> tuple[int, str | None]:
    """A descriptor of ``<agency>/feedback``: a real folder owned by the hub, made so if needed."""
    replaced: str | None = None
    for _ in range(4):
        try:
            fd = os.open(FEEDBACK_DIR, DIR_FLAGS, dir_fd=agency_fd)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                os.mkdir(FEEDBACK_DIR, dir_fd=agency_fd)
            continue
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                raise
            replaced = _set_aside(agency_fd, now)
            continue
        if os.fstat(fd).st_uid == os.geteuid():
            return fd, replaced
        os.close(fd)
        replaced = _set_aside(agency_fd, now)
    raise FeedbackNotWritten("the feedback folder could not be made a real folder")


def _write_at(dir_fd: int, name: str, text: str) -> None:
    """Write ``name`` in the folder ``dir_fd``: a fresh temporary file (O_EXCL, no link followed), renamed over."""
    tmp = f".tmp-{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
    try:
        view = memoryview(text.encode("utf-8"))
        while view:
            view = view[os.write(fd, view):]
        os.close(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def _write_files(drop_root: Path | str, agency: str, files: dict[str, str], now: dt.datetime) -> str | None:
    """Write ``{name: text}`` into ``<drop>/<agency>/feedback`` through checked descriptors only."""
    if not _AGENCY_RE.match(agency):
        raise ValueError("agency must be an agency id (lowercase letters, digits and '_')")
    root = Path(drop_root)
    root.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError), open_dir_chain(root, []) as root_fd:
        os.mkdir(agency, dir_fd=root_fd)  # a missing agency folder is made (never through a link)
    try:
        with open_dir_chain(root, [agency]) as agency_fd:
            fb_fd, replaced = _open_feedback_dir(agency_fd, now)
            try:
                for name, text in files.items():
                    _write_at(fb_fd, name, text)
            finally:
                os.close(fb_fd)
    except UnsafeEntry as unsafe:
        raise FeedbackNotWritten(f"the agency folder is {unsafe.kind}, not a real folder; no feedback written") from None
    return replaced


def write_feedback(
    drop_root: Path | str,
    agency: str,
    file_name: str,
    result: ValidationResult | None = None,
    *,
    refusal: str | None = None,
    warnings: Sequence[str] = (),
    notes: Sequence[str] = (),
    generated: dt.datetime | None = None,
) -> FeedbackFiles:
    """Write ``<drop>/<agency>/feedback/<file>.html`` and ``.csv`` for one file.

    ``result`` is the validation result; ``refusal`` an intake refusal sentence (then ``result`` may be
    ``None``); ``warnings`` intake warnings; ``notes`` anything else worth telling the agency.
    """
    folder = Path(drop_root) / agency / FEEDBACK_DIR
    stem = feedback_stem(file_name)
    now = generated or dt.datetime.now(dt.timezone.utc)
    replaced = _write_files(drop_root, agency, {
        f"{stem}.html": render_html(result, file_name, agency, refusal=refusal, warnings=warnings, notes=notes, generated=now),
        f"{stem}.csv": render_csv(result, refusal=refusal, warnings=warnings, notes=notes),
    }, now)
    return FeedbackFiles(html=folder / f"{stem}.html", csv=folder / f"{stem}.csv", replaced=replaced)


NOTICE_STEM = "files_left_for_next_run"


def write_notice(drop_root: Path | str, agency: str, text: str, *, generated: dt.datetime | None = None) -> FeedbackFiles:
    """One notice to the agency that is not about one file (e.g. files left for the next run): ``<notice>.html/.csv``."""
    now = generated or dt.datetime.now(dt.timezone.utc)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    w.writerow(["", "", "drop_limits", "", _csv_cell(text), ""])
    e = html.escape
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Notice ({e(agency)})</title>"
            f"<style>{_CSS}</style></head><body><h1>Notice <span class=\"muted\">({e(agency)})</span></h1>"
            f'<div class="status warnings">{e(text)}</div><p class="muted">Written {now:%Y-%m-%d %H:%M} UTC.</p></body></html>')
    replaced = _write_files(drop_root, agency, {f"{NOTICE_STEM}.html": page, f"{NOTICE_STEM}.csv": buf.getvalue()}, now)
    folder = Path(drop_root) / agency / FEEDBACK_DIR
    return FeedbackFiles(html=folder / f"{NOTICE_STEM}.html", csv=folder / f"{NOTICE_STEM}.csv", replaced=replaced)


# --------------------------------------------------------------------------------------------------
# GX Data Docs, one site per agency


def build_data_docs(results: Iterable[ValidationResult], agency: str, folder: Path | str) -> Path:
    """Build the GX Data Docs site of ``agency`` into ``folder``; returns its ``index.html``.

    The site holds each extract's expectation suite and the validation results given, as
    :meth:`ValidationResult.to_gx` returns them: counts, and sampled values of non-identifier columns
    only, HTML-escaped (GX's renderer does not escape them).
    """
    from schemas import gx_suite as gs

    gs.import_gx()
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    if not _AGENCY_RE.match(agency):
        raise ValueError("agency must be an agency id (lowercase letters, digits and '_')")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    results = list(results)
    strangers = sorted({r.agency for r in results if r.agency != agency})
    if strangers:
        raise ValueError(f"results of other agencies ({', '.join(strangers)}) do not belong in the {agency} site")
    context = gs.ephemeral_context()
    context.add_data_docs_site(
        agency,
        {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,  # type: ignore[typeddict-unknown-key]  # SiteBuilder takes it; GX's TypedDict lacks it
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(folder)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    added: set[str] = set()
    for result in results:
        suite = result._suite
        if suite.name not in added:
            copy = type(suite)(
                name=suite.name,
                expectations=[e.configuration.to_domain_obj() for e in suite.expectations],
                meta=dict(suite.meta),
            )
            context.suites.add(copy)
            added.add(suite.name)
    base = dt.datetime.now(dt.timezone.utc)
    for i, result in enumerate(results):
        run_time = base + dt.timedelta(microseconds=i)
        name = feedback_stem(result.file_name or result.extract)
        key = ValidationResultIdentifier(
            ExpectationSuiteIdentifier(name=result.suite_name),
            RunIdentifier(run_name=name, run_time=run_time),
            name,
        )
        # GX Data Docs puts sampled values into the page unescaped: escape them first
        context.validation_results_store.set(key, result.to_gx(run_time, html_safe=True))
    context.build_data_docs(site_names=[agency])
    return folder / "index.html"
