"""Intake: decide whether a dropped file may enter the pipeline, under the agency's MOU and the SPEC's rules.

Plain Python, no Dagster. :func:`examine_drop` looks at one entry of the drop folder and returns an
:class:`IntakeDecision`: accepted, refused (with a reason code and a sentence an agency clerk can act
on) or a duplicate of content already received. Refusal messages never contain a value from inside the
file: they name rows, columns and rules only.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from data_sharing import dropsafe
from data_sharing.header import Refuse as _Refuse
from data_sharing.header import check_header as _check_header
from data_sharing.header import read_header as _read_header
from data_sharing.marker import MARKER_SUFFIX, Marker
from schemas.partnership import Partnership

FEEDBACK_DIR = "feedback"
ROW_DROP_LIMIT = 0.5  # SPEC: a snapshot whose row count falls by more than half is refused
_NAME_RE = re.compile(r"^(?P<extract>[a-z][a-z0-9_]*)_(?P<date>[0-9]{8})(?P<tokens>\.tokens)?\.csv$")
_SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}
UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class PreviousSnapshot:
    """What the file would replace: rows per period of the current snapshot (period None = whole file)."""

    period_rows: Mapping[int | None, int]
    files: tuple[str, ...] = ()

    def rows_for(self, periods: set[int | None]) -> int:
        return sum(n for p, n in self.period_rows.items() if p in periods)


@dataclass(frozen=True)
class SeenContent:
    """A manifest entry with the same SHA-256 as the file being examined."""

    manifest_id: int
    rel_path: str
    status: str


@dataclass
class IntakeDecision:
    rel_path: str
    file_name: str
    status: str  # accepted | refused | duplicate | waiting (still being written: not recorded, left for the next scan)
    fingerprint: str
    reason_code: str | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    agency: str | None = None
    extract: str | None = None
    as_of: dt.date | None = None
    tokenized: bool = False
    sha256: str | None = None
    size_bytes: int | None = None
    rows: int | None = None
    duplicate_rows: int | None = None
    period_rows: dict[int | None, int] | None = None
    columns: list[str] | None = None
    mou_id: str | None = None
    mou_version: int | None = None
    marker_sha256: str | None = None
    duplicate_of: int | None = None
    snapshot: dropsafe.Snapshot | None = field(default=None, repr=False, compare=False)  # the bytes read, once

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def entry_fingerprint(kind: str, rel_path: str) -> str:
    """Fingerprint of a drop-folder entry that has no content to hash (symlink, folder, device)."""
    return hashlib.sha256(f"{kind}:{rel_path}".encode("utf-8", "surrogateescape")).hexdigest()


def escape_name(name: str) -> str:
    """A file name as text that can be stored and printed: bytes that are not UTF-8 and characters that are
    not printable are escaped (``\\xNN``). Distinct names stay distinct."""
    shown = name.replace("\\", "\\\\").encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in shown)


def display_name(name: str) -> str:
    """A file name made safe to print in a sentence: escaped, and shortened when very long."""
    shown = escape_name(name)
    return shown if len(shown) <= 120 else shown[:117] + "..."


def relative_drop_path(drop_root: Path, path: Path) -> str:
    """The entry's path under the drop folder, escaped (the manifest's ``rel_path``)."""
    rel = os.path.relpath(path, drop_root)
    return escape_name(rel.replace(os.sep, "/"))


def parse_drop_name(rel_path: str) -> tuple[str, str, dt.date] | None:
    """(agency folder, extract, as-of date) when ``rel_path`` is ``<agency>/<extract>_<YYYYMMDD>[.tokens].csv``."""
    parts = rel_path.split("/")
    if len(parts) != 2:
        return None
    m = _NAME_RE.match(parts[1])
    if not m:
        return None
    try:
        as_of = dt.datetime.strptime(m.group("date"), "%Y%m%d").date()
    except ValueError:
        return None
    return parts[0], m.group("extract"), as_of


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


class _Waiting(Exception):
    """The file is still being written: nothing is decided, it is left for the next scan."""


def examine_drop(
    path: Path,
    drop_root: Path,
    partnership: Partnership,
    today: dt.date,
    *,
    marker: Marker | None = None,
    previous: PreviousSnapshot | None = None,
    seen_lookup: Callable[[str], SeenContent | None] | None = None,
    limits: dropsafe.DropLimits | None = None,
    expected_sha256: str | None = None,
    settle_s: float | None = None,
    now_ns: int | None = None,
    after_read: Callable[[], None] | None = None,
) -> IntakeDecision:
    """Decide what one drop-folder entry is. Never raises for bad input; never deletes anything.

    ``previous`` is the current snapshot the file would replace (for the row-count guard);
    ``seen_lookup(sha256)`` returns an earlier manifest entry with the same content, if any.
    The entry is opened once, without following links or blocking, and read from that one descriptor
    (``decision.snapshot``). A file that changed while it was read, that is not the content the scan found
    complete (``expected_sha256``), or (with ``settle_s``, for a file no scan vouched for) that changed
    within the settle time without a ``.done`` marker, is ``waiting``: nothing is decided, it is left for
    the next scan.
    """
    drop_root = Path(drop_root)
    path = Path(path)
    rel_path = relative_drop_path(drop_root, path)
    file_name = escape_name(path.name)
    parts = Path(os.path.relpath(path, drop_root)).parts
    decision = IntakeDecision(rel_path=rel_path, file_name=file_name, status="refused", fingerprint="")
    limits = limits or dropsafe.DropLimits()
    try:
        data = _read_once(decision, drop_root, parts, limits, after_read)
        if marker is not None and marker.present:
            decision.marker_sha256 = marker.sha256_of_marker
        _check_complete(decision, marker, settle_s, expected_sha256, now_ns)
        _check_name(decision, parts, partnership, today)
        _check_marker(decision, marker)
        if not _check_seen(decision, seen_lookup):
            _check_content(decision, data, partnership, marker, previous, limits)
    except _Refuse as refusal:
        decision.status = "refused"
        decision.reason_code = refusal.code
        decision.reason = refusal.message
    except _Waiting as waiting:
        decision.status = "waiting"
        decision.reason_code = "still_being_written"
        decision.reason = str(waiting)
    if decision.status == "waiting":
        decision.snapshot = None
    if not decision.fingerprint:
        decision.fingerprint = decision.sha256 or entry_fingerprint("entry", rel_path)
    return decision


_UNSAFE_KINDS = {
    "symlink": ("symlink", "{} is a symbolic link; links are never followed. Copy the file itself into your folder."),
    "hardlink": ("hard_link", "{} is a hard link (the file has other names on the server); links are never read. "
                 "Copy the file itself into your folder."),
    "folder": ("unexpected_folder", "{} is a folder; put extract files directly in your agency folder (sub-folders are not read)."),
    "special": ("not_a_regular_file", "{} is not a regular file and was not read."),
    "gone": ("file_disappeared", "{} disappeared before it could be read; drop it again."),
    "outside": ("outside_drop_folder", "{} is outside the drop folder and was not read."),
}


def _read_once(
    d: IntakeDecision,
    drop_root: Path,
    parts: tuple[str, ...],
    limits: dropsafe.DropLimits,
    after_read: Callable[[], None] | None,
) -> bytes:
    """Step 1: open the entry without following links, check it with fstat, read it from that descriptor."""
    if ".." in parts or not parts or os.path.isabs(os.path.join(*parts)):
        d.fingerprint = entry_fingerprint("outside", d.rel_path)
        raise _Refuse("outside_drop_folder", f"{d.rel_path} is outside the drop folder and was not read.")
    rel = "/".join(parts)
    changed = f"{d.rel_path} changed while it was being read; it is left for the next scan."
    try:
        snap = dropsafe.read_entry(drop_root, rel, limits.max_file_bytes, after_read=after_read)
    except dropsafe.UnsafeEntry as unsafe:
        if unsafe.kind == "changed":
            raise _Waiting(changed) from None
        if unsafe.kind == "too_large":
            try:
                d.sha256, d.size_bytes, _ = dropsafe.hash_entry(drop_root, rel)
            except dropsafe.UnsafeEntry:
                raise _Waiting(changed) from None
            d.fingerprint = d.sha256
            raise _Refuse(
                "file_too_large",
                f"{d.rel_path} is {d.size_bytes:,} bytes, over the limit of {limits.max_file_bytes:,} bytes for one "
                "file; split the extract (for example by school year) or ask the hub to raise the limit.",
            ) from None
        kind = unsafe.kind if unsafe.kind in _UNSAFE_KINDS else "special"
        code, text = _UNSAFE_KINDS[kind]
        d.fingerprint = entry_fingerprint(kind, d.rel_path)
        raise _Refuse(code, text.format(d.rel_path)) from None
    d.snapshot = snap
    d.size_bytes = snap.size
    # Step 2. Content fingerprint first, so every later refusal is tied to this exact content.
    d.sha256 = hashlib.sha256(snap.data).hexdigest()
    d.fingerprint = d.sha256
    return snap.data


def _check_complete(
    d: IntakeDecision,
    marker: Marker | None,
    settle_s: float | None,
    expected_sha256: str | None,
    now_ns: int | None,
) -> None:
    """Is this the complete file? The content the scan found complete, or else settled (or marked done)."""
    assert d.snapshot is not None
    if expected_sha256 is not None:
        if expected_sha256 != d.sha256:
            raise _Waiting(f"{d.rel_path} changed after it was found complete; it is left for the next scan.")
        return
    if settle_s is None or (marker is not None and marker.present):
        return
    age_s = ((now_ns if now_ns is not None else time.time_ns()) - d.snapshot.mtime_ns) / 1e9
    if 0 <= age_s < settle_s:
        raise _Waiting(
            f"{d.rel_path} changed {age_s:.0f} s ago (less than the settle time of {settle_s:g} s) and has no "
            ".done marker; it is left for the next scan."
        )


def _check_name(d: IntakeDecision, parts: tuple[str, ...], partnership: Partnership, today: dt.date) -> None:
    """Step 3: where it was dropped and what its name says."""
    name = parts[-1]
    if len(parts) == 1:
        raise _Refuse(
            "outside_agency_folder",
            f"{d.rel_path} is in the top of the drop folder; put it in your agency's folder ({', '.join(partnership.agencies)}).",
        )
    if len(parts) > 2:
        raise _Refuse(
            "unexpected_folder",
            f"{d.rel_path} is inside a sub-folder; put extract files directly in your agency folder.",
        )
    agency_dir = parts[0]
    if not _SAFE_NAME_RE.match(name) or ".." in name:
        raise _Refuse(
            "unsafe_name",
            f"The file name {d.file_name!r} has characters that are not allowed (use letters, digits, '_', '-' and '.'); "
            "rename it to <extract>_<YYYYMMDD>.csv.",
        )
    if name.endswith(MARKER_SUFFIX):
        data_name = name[: -len(MARKER_SUFFIX)]
        raise _Refuse(
            "stray_marker",
            f"The completion marker {d.file_name} has no data file {display_name(data_name)} next to it; "
            "drop the data file, or remove the marker.",
        )
    if agency_dir not in partnership.agreements:
        raise _Refuse(
            "unknown_agency",
            f"The folder {display_name(agency_dir)!r} is not an agency of this partnership "
            f"(agencies: {', '.join(partnership.agencies)}); files there are not read.",
        )
    agreement = partnership.agreements[agency_dir]
    d.agency = agency_dir
    d.mou_id, d.mou_version = agreement.mou_id, agreement.version
    m = _NAME_RE.match(name)
    if not m:
        raise _Refuse(
            "bad_name",
            f"The file name {d.file_name!r} does not follow <extract>_<YYYYMMDD>.csv "
            f"(for example {partnership.extracts_of(agency_dir)[0]}_{today:%Y%m%d}.csv); rename it and drop it again.",
        )
    extract, date_text, tokens = m.group("extract"), m.group("date"), m.group("tokens")
    d.tokenized = bool(tokens)
    if extract not in agreement.extracts:
        owners = [a for a in partnership.agencies if extract in partnership.agreements[a].extracts]
        if owners:
            raise _Refuse(
                "wrong_agency_folder",
                f"{extract!r} is an extract of {owners[0]!r}, not of {agency_dir!r}; "
                f"it was dropped in the wrong agency's folder and was not read.",
            )
        raise _Refuse(
            "unknown_extract",
            f"{extract!r} is not an extract that MOU {agreement.label} allows {agency_dir!r} to send "
            f"(allowed: {', '.join(sorted(agreement.extracts))}).",
        )
    d.extract = extract
    try:
        as_of = dt.datetime.strptime(date_text, "%Y%m%d").date()
    except ValueError:
        raise _Refuse(
            "bad_date", f"The date {date_text} in the file name is not a real date; write the as-of date as YYYYMMDD."
        ) from None
    d.as_of = as_of
    if as_of > today:
        raise _Refuse(
            "future_date",
            f"The as-of date {as_of.isoformat()} in the file name is in the future (today is {today.isoformat()}); "
            "use the date the extract was taken.",
        )
    if not agreement.in_force(as_of):
        raise _Refuse(
            "mou_not_in_force",
            f"MOU {agreement.label} is in force from {agreement.effective_date} to {agreement.expiry_date}; "
            f"the as-of date {as_of.isoformat()} is outside it, so the file cannot be received.",
        )


def _check_marker(d: IntakeDecision, marker: Marker | None) -> None:
    """Step 4: the completion marker's control totals, if any."""
    name = Path(d.rel_path).name
    if marker is not None and marker.problem:
        raise _Refuse("bad_marker", f"{display_name(name + MARKER_SUFFIX)}: {marker.problem}.")
    if marker is not None and marker.sha256 and marker.sha256 != d.sha256:
        raise _Refuse(
            "control_totals_mismatch",
            "The SHA-256 in the .done marker does not match the file received; the file may have been changed "
            "or cut short in transfer. Drop the file again with a fresh marker.",
        )


def _check_seen(d: IntakeDecision, seen_lookup: Callable[[str], SeenContent | None] | None) -> bool:
    """Step 5: same content already received under another name: processed once (True)."""
    seen = seen_lookup(d.sha256) if seen_lookup is not None and d.sha256 is not None else None
    if seen is not None and seen.rel_path != d.rel_path and seen.status in ("accepted", "superseded", "duplicate"):
        d.status = "duplicate"
        d.duplicate_of = seen.manifest_id
        d.reason_code = "same_content"
        d.reason = f"Identical (same SHA-256) to {seen.rel_path}, already received; processed once."
        return True
    return False


def _check_content(
    d: IntakeDecision,
    data: bytes,
    partnership: Partnership,
    marker: Marker | None,
    previous: PreviousSnapshot | None,
    limits: dropsafe.DropLimits,
) -> None:
    """Steps 6-8: encoding, line lengths, CSV structure and header; rows; the row-count guard."""
    name = Path(d.rel_path).name
    agency_dir, extract = str(d.agency), str(d.extract)
    # 6. Encoding, CSV structure and header against the MOU and the contract.
    terms = partnership.terms(agency_dir, extract)
    assert terms is not None
    if d.size_bytes == 0:
        raise _Refuse("empty_file", "The file is empty (0 bytes); export the extract again.")
    text_bytes = _check_encoding(data)
    _check_line_length(text_bytes, limits.max_line_bytes)
    header = _read_header(text_bytes)
    if d.tokenized:
        from data_sharing.protect import required_tokens_columns, tokens_columns

        try:
            _check_header(
                header, frozenset(tokens_columns(terms.contract)), required_tokens_columns(terms.contract), extract,
                _vocabulary(partnership),
            )
        except _Refuse as refusal:
            raise _Refuse(
                refusal.code,
                refusal.message + " A .tokens.csv file holds linkage tokens, not names or ids: make it with "
                "`c2c tokenize` and the linkage key.",
            ) from None
    else:
        _check_header(header, terms.permitted_fields, terms.contract.required_columns, extract, _vocabulary(partnership))
    table = _read_body(text_bytes, header)
    d.columns = header
    d.rows = table.num_rows
    if marker is not None and marker.rows is not None and marker.rows != d.rows:
        raise _Refuse(
            "control_totals_mismatch",
            f"The .done marker says {_plural(marker.rows, 'row')} but the file has {_plural(d.rows, 'data row')} "
            "(header excluded); the export may be incomplete. Drop it again with a matching marker.",
        )

    # 7. Exact duplicate rows count once (reported as a warning).
    d.duplicate_rows = _count_duplicate_rows(table)
    if d.duplicate_rows:
        d.warnings.append(
            f"{_plural(d.duplicate_rows, 'row')} exactly repeat an earlier row of the file; each counts once."
        )

    # 8. Rows per period, and the guard against a truncated snapshot.
    d.period_rows = _period_rows(table, terms.contract.period_column)
    if previous is not None and not (marker is not None and marker.confirm_row_drop):
        covered = set(d.period_rows)
        before = previous.rows_for(covered)
        if before > 0 and d.rows < before * ROW_DROP_LIMIT:
            scope = _period_scope(terms.contract.period_column, covered)
            raise _Refuse(
                "row_count_drop",
                f"This snapshot has {_plural(d.rows, 'row')}{scope}, less than half of the "
                f"{_plural(before, 'row')} in the snapshot it would replace; this usually means a cut-short export. "
                f"If the drop is real, confirm it by placing {display_name(name + MARKER_SUFFIX)} next to the file "
                'containing {"confirm_row_drop": true}.',
            )
    d.status = "accepted"


def read_extract_table(data: bytes) -> pa.Table:
    """Parse an extract already accepted by intake (UTF-8 CSV, header row) into a table of strings.

    Raises ``ValueError`` naming the problem (never a value) if the bytes are not what intake accepted.
    """
    try:
        text_bytes = _check_encoding(data)
        header = _read_header(text_bytes)
        return _read_body(text_bytes, header)
    except _Refuse as refusal:
        raise ValueError(refusal.message) from None


def _vocabulary(partnership: Partnership) -> frozenset[str]:
    return frozenset(c for t in partnership for c in t.contract.columns)


def _period_scope(period_column: str | None, periods: set[int | None]) -> str:
    known = sorted(p for p in periods if p is not None)
    if not period_column or not known:
        return ""
    label = period_column.replace("_", " ")
    return f" for {label} {known[0]}" if len(known) == 1 else f" for {label} {known[0]}-{known[-1]}"


def _check_encoding(data: bytes) -> bytes:
    for bom, name in _BOMS.items():
        if data.startswith(bom):
            raise _Refuse("not_utf8", f"The file is encoded as {name}; save or export it as UTF-8 (CSV UTF-8).")
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _Refuse(
            "not_utf8",
            f"The file is not UTF-8: line {line:,} has bytes that are not valid UTF-8 (often a Windows-1252 or "
            "Latin-1 export). Save or export it as UTF-8 (CSV UTF-8).",
        ) from None
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise _Refuse("not_csv", f"Line {line:,} contains a NUL byte; this is not a text CSV file.")
    return data


def _check_line_length(data: bytes, limit: int, chunk: int | None = None) -> None:
    """Refuse a line longer than ``limit`` bytes by its number (before any CSV parsing: a 64 MiB line is a
    line too long, not a quoting problem). Hops from the start of a line to the last newline within
    ``limit`` bytes of it (a C search that stops near the window's end): no copy, ~len/limit hops.
    ``chunk`` is ignored (the scan no longer reads in chunks; kept for existing callers)."""
    start = 0
    while len(data) - start > limit:
        newline = data.rfind(b"\n", start, start + limit + 1)
        if newline < 0:  # the line starting at ``start`` runs past ``limit``; every earlier line is shorter
            _refuse_long_line(data.count(b"\n", 0, start) + 1, limit)
        start = newline + 1


def _refuse_long_line(line_no: int, limit: int) -> None:
    raise _Refuse(
        "line_too_long",
        f"Line {line_no:,} is longer than the limit ({limit:,} bytes); an extract's lines are far shorter. "
        "Check that the file is a CSV export with one record per line.",
    )


def _read_body(data: bytes, header: list[str]) -> pa.Table:
    try:
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, use_threads=True),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException):
        # pyarrow's message quotes the offending row; find the row ourselves and name it without its content.
        raise _Refuse("malformed_csv", _describe_csv_problem(data, len(header))) from None


def _describe_csv_problem(data: bytes, width: int) -> str:
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""), strict=True)
    try:
        for row_number, row in enumerate(reader):
            if row_number == 0:
                continue
            if len(row) != width and row:
                return (
                    f"Data row {row_number:,} has {_plural(len(row), 'field')} but the header has {width}; "
                    "check for unquoted commas or missing fields in that row."
                )
    except csv.Error:
        return f"The file is not valid CSV near data row {reader.line_num - 1:,} (for example an unclosed quote)."
    return "The file is not valid CSV (RFC 4180); export it again as comma-separated values with a header row."


def _count_duplicate_rows(table: pa.Table) -> int:
    """Rows whose parsed values all equal an earlier row's (quoting does not matter, whitespace does).
    Each column is dictionary-encoded, a row's codes are folded into one int64 (made dense again before the
    product could overflow), and the sorted codes are compared with their neighbours: less CPU than
    ``Table.group_by``, whose hash table of row keys fits no cache."""
    import numpy as np

    if table.num_rows < 2:
        return 0
    codes, cardinality = np.zeros(table.num_rows, dtype=np.int64), 1
    for column in table.columns:
        encoded = pc.dictionary_encode(column.combine_chunks(), null_encoding="encode")  # a null is a value
        size = len(encoded.dictionary)
        if cardinality * size >= 1 << 62:
            _, dense = np.unique(codes, return_inverse=True)
            codes, cardinality = dense.astype(np.int64).reshape(-1), int(dense.max()) + 1
        codes = codes * size + encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        cardinality *= size
    codes.sort()
    return int(np.count_nonzero(codes[1:] == codes[:-1]))


def _period_rows(table: pa.Table, period_column: str | None) -> dict[int | None, int]:
    if period_column is None:
        return {None: table.num_rows}
    if table.num_rows == 0:
        return {}
    values = pc.utf8_trim_whitespace(table.column(period_column))
    counts = pc.value_counts(values)
    out: dict[int | None, int] = {}
    for item in counts.to_pylist():
        text = item["values"]
        key: int | None = int(text) if text is not None and re.fullmatch(r"-?[0-9]{1,6}", text) else None
        out[key] = out.get(key, 0) + int(item["counts"])
    return out
