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
import json
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from data_sharing.partnership import Partnership

MARKER_SUFFIX = ".done"
FEEDBACK_DIR = "feedback"
ROW_DROP_LIMIT = 0.5  # SPEC: a snapshot whose row count falls by more than half is refused
_NAME_RE = re.compile(r"^(?P<extract>[a-z][a-z0-9_]*)_(?P<date>[0-9]{8})(?P<tokens>\.tokens)?\.csv$")
_SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
# A header name is echoed back only when it is a column name c2c already knows: a name from any extract
# contract, or a common header of personal data. Anything else might be a value (a header line fused
# with a data row, a file without a header), so it is named by its position only.
_COMMON_HEADERS = frozenset(
    """ssn social_security_number social_security sin tax_id ein itin phone phone_number telephone mobile cell
    email email_address e_mail mother_name father_name parent_name guardian_name mother_maiden_name
    maiden_name address address_1 address_2 address_line_1 address_line_2 street city state county
    apartment dob date_of_birth birthdate gender race ethnicity name full_name given_name surname nickname
    diagnosis diagnoses notes note comment comments medicaid_number insurance_id member_id mrn
    medical_record_number account_number case_number case_id household_id family_id id""".split()
)


def _known_header(name: str, known_columns: frozenset[str]) -> bool:
    key = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return key in known_columns or key in _COMMON_HEADERS
_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}
UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Marker:
    """The ``<name>.done`` marker next to a data file: empty, or JSON control totals."""

    present: bool
    sha256_of_marker: str | None = None
    rows: int | None = None
    sha256: str | None = None
    confirm_row_drop: bool = False
    problem: str | None = None

    @classmethod
    def absent(cls) -> Marker:
        return cls(present=False)

    @classmethod
    def read(cls, path: Path) -> Marker:
        """Read a marker file. A marker that is not empty and not the expected JSON records a problem."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls.absent()
        except OSError:
            return cls(present=True, problem="the .done marker cannot be read")
        digest = hashlib.sha256(raw).hexdigest()
        if not raw.strip():
            return cls(present=True, sha256_of_marker=digest)
        try:
            data = json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return cls(present=True, sha256_of_marker=digest, problem='the .done marker is neither empty nor JSON like {"rows": 1234, "sha256": "..."}')
        if not isinstance(data, dict):
            return cls(present=True, sha256_of_marker=digest, problem='the .done marker must be a JSON object like {"rows": 1234, "sha256": "..."}')
        unknown = sorted(set(data) - {"rows", "sha256", "confirm_row_drop"})
        rows, sha, confirm = data.get("rows"), data.get("sha256"), data.get("confirm_row_drop", False)
        problem = None
        if unknown:
            problem = f"the .done marker has unknown keys ({', '.join(k[:30] for k in unknown[:5])}); allowed: rows, sha256, confirm_row_drop"
        elif rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
            problem = 'in the .done marker, "rows" must be a whole number of data rows (header excluded)'
        elif sha is not None and (not isinstance(sha, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha)):
            problem = 'in the .done marker, "sha256" must be the 64 hexadecimal characters of the file\'s SHA-256'
        elif not isinstance(confirm, bool):
            problem = 'in the .done marker, "confirm_row_drop" must be true or false'
        if problem:
            return cls(present=True, sha256_of_marker=digest, problem=problem)
        return cls(
            present=True,
            sha256_of_marker=digest,
            rows=rows,
            sha256=sha.lower() if isinstance(sha, str) else None,
            confirm_row_drop=bool(confirm),
        )


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
    status: str  # accepted | refused | duplicate
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

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


class _Refuse(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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


def examine_drop(
    path: Path,
    drop_root: Path,
    partnership: Partnership,
    today: dt.date,
    *,
    marker: Marker | None = None,
    previous: PreviousSnapshot | None = None,
    seen_lookup: Callable[[str], SeenContent | None] | None = None,
) -> IntakeDecision:
    """Decide what one drop-folder entry is. Never raises for bad input; never deletes anything.

    ``previous`` is the current snapshot the file would replace (for the row-count guard);
    ``seen_lookup(sha256)`` returns an earlier manifest entry with the same content, if any.
    """
    drop_root = Path(drop_root)
    path = Path(path)
    rel_path = relative_drop_path(drop_root, path)
    file_name = escape_name(path.name)
    parts = Path(os.path.relpath(path, drop_root)).parts
    decision = IntakeDecision(rel_path=rel_path, file_name=file_name, status="refused", fingerprint="")
    try:
        _examine(decision, path, drop_root, parts, partnership, today, marker, previous, seen_lookup)
    except _Refuse as refusal:
        decision.status = "refused"
        decision.reason_code = refusal.code
        decision.reason = refusal.message
    if not decision.fingerprint:
        decision.fingerprint = decision.sha256 or entry_fingerprint("entry", rel_path)
    return decision


def _examine(
    d: IntakeDecision,
    path: Path,
    drop_root: Path,
    parts: tuple[str, ...],
    partnership: Partnership,
    today: dt.date,
    marker: Marker | None,
    previous: PreviousSnapshot | None,
    seen_lookup: Callable[[str], SeenContent | None] | None,
) -> None:
    # 1. What kind of entry is it, and does it stay inside the drop folder?
    if ".." in parts or not parts or os.path.isabs(os.path.relpath(path, drop_root)):
        d.fingerprint = entry_fingerprint("outside", d.rel_path)
        raise _Refuse("outside_drop_folder", f"{d.rel_path} is outside the drop folder and was not read.")
    for depth in range(1, len(parts) + 1):
        probe = drop_root.joinpath(*parts[:depth])
        try:
            st = os.lstat(probe)
        except FileNotFoundError:
            d.fingerprint = entry_fingerprint("gone", d.rel_path)
            raise _Refuse("file_disappeared", f"{d.rel_path} disappeared before it could be read; drop it again.") from None
        if stat.S_ISLNK(st.st_mode):
            d.fingerprint = entry_fingerprint("symlink", d.rel_path)
            raise _Refuse(
                "symlink",
                f"{d.rel_path} is a symbolic link; links are never followed. Copy the file itself into your folder.",
            )
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        d.fingerprint = entry_fingerprint("folder", d.rel_path)
        raise _Refuse(
            "unexpected_folder",
            f"{d.rel_path} is a folder; put extract files directly in your agency folder (sub-folders are not read).",
        )
    if not stat.S_ISREG(st.st_mode):
        d.fingerprint = entry_fingerprint("special", d.rel_path)
        raise _Refuse("not_a_regular_file", f"{d.rel_path} is not a regular file and was not read.")
    d.size_bytes = st.st_size

    # 2. Content fingerprint first, so every later refusal is tied to this exact content.
    d.sha256 = sha256_file(path)
    d.fingerprint = d.sha256
    if marker is not None and marker.present:
        d.marker_sha256 = marker.sha256_of_marker

    # 3. Where it was dropped and what its name says.
    name = path.name
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
    # 4. The completion marker's control totals, if any.
    if marker is not None and marker.problem:
        raise _Refuse("bad_marker", f"{display_name(name + MARKER_SUFFIX)}: {marker.problem}.")
    if marker is not None and marker.sha256 and marker.sha256 != d.sha256:
        raise _Refuse(
            "control_totals_mismatch",
            "The SHA-256 in the .done marker does not match the file received; the file may have been changed "
            "or cut short in transfer. Drop the file again with a fresh marker.",
        )

    # 5. Same content already received under another name: processed once.
    seen = seen_lookup(d.sha256) if seen_lookup is not None else None
    if seen is not None and seen.rel_path != d.rel_path and seen.status in ("accepted", "superseded", "duplicate"):
        d.status = "duplicate"
        d.duplicate_of = seen.manifest_id
        d.reason_code = "same_content"
        d.reason = f"Identical (same SHA-256) to {seen.rel_path}, already received; processed once."
        return

    # 6. Encoding, CSV structure and header against the MOU and the contract.
    terms = partnership.terms(agency_dir, extract)
    assert terms is not None
    if d.size_bytes == 0:
        raise _Refuse("empty_file", "The file is empty (0 bytes); export the extract again.")
    data = path.read_bytes()
    text_bytes = _check_encoding(data)
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


def _read_header(data: bytes) -> list[str]:
    first_line_end = data.find(b"\n")
    head = data if first_line_end < 0 else data[: first_line_end + 1]
    try:
        row = next(csv.reader(io.StringIO(head.decode("utf-8"))), None)
    except csv.Error:
        row = None
    if not row or all(not c.strip() for c in row):
        raise _Refuse("missing_header", "The first line is empty; the file must start with a header row of column names.")
    return [c.strip() for c in row]


def _check_header(
    header: list[str], permitted: frozenset[str], required: list[str], extract: str, vocabulary: frozenset[str] = frozenset()
) -> None:
    """Check a header; ``vocabulary`` are column names that may be echoed (every contract's columns)."""
    vocabulary = vocabulary | permitted
    known = [c for c in header if c in permitted]
    unknown = [(i + 1, c) for i, c in enumerate(header) if c not in permitted]
    if len(known) * 2 < len(header):
        # Most of the first row is not column names: it may be data. Never echo it.
        raise _Refuse(
            "missing_header",
            f"The first row does not look like the header of {extract!r}: only {len(known)} of its {len(header)} "
            "fields are column names of this extract. The file may be missing its header row.",
        )
    blanks = [i + 1 for i, c in enumerate(header) if not c]
    if blanks:
        raise _Refuse(
            "blank_column_name",
            f"Header column(s) {', '.join(map(str, blanks[:10]))} have no name; every column needs its name in the header row.",
        )
    seen: set[str] = set()
    repeated = sorted({c for c in header if c in seen or seen.add(c)})  # type: ignore[func-returns-value]
    if repeated and all(_known_header(c, vocabulary) for c in repeated):
        raise _Refuse("duplicate_columns", f"The header names these columns more than once: {', '.join(repeated[:10])}.")
    if repeated:
        raise _Refuse("duplicate_columns", "The header names a column more than once.")
    if unknown:
        shown = ", ".join(c if _known_header(c, vocabulary) else f"column {i} (name not shown)" for i, c in unknown[:10])
        raise _Refuse(
            "columns_not_permitted",
            f"The MOU does not permit these columns in {extract!r}: {shown}. Remove them and drop the file again; "
            "the file was not stored.",
        )
    missing = [c for c in required if c not in header]
    if missing:
        raise _Refuse(
            "missing_columns",
            f"Required columns are missing from {extract!r}: {', '.join(missing)}. Add them and drop the file again.",
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
    if table.num_rows < 2:
        return 0
    distinct = table.group_by(table.column_names, use_threads=False).aggregate([]).num_rows
    return table.num_rows - distinct


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
