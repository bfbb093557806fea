"""An extract's header row checked against its contract, with refusals an agency clerk can act on.

A header name is echoed back only when it is a column name c2c already knows: a name from any extract
contract, or a common header of personal data. Anything else might be a value (a header line fused
with a data row, a file without a header), so it is named by its position only. The contract's own
column names are not identifiers: a missing required column is named, and a header that looks
separated by semicolons or tabs says so.
"""

from __future__ import annotations

import csv
import difflib
import io
import re

_COMMON_HEADERS = frozenset(
    """ssn social_security_number social_security sin tax_id ein itin phone phone_number telephone mobile cell
    email email_address e_mail mother_name father_name parent_name guardian_name mother_maiden_name
    maiden_name address address_1 address_2 address_line_1 address_line_2 street city state county
    apartment dob date_of_birth birthdate gender race ethnicity name full_name given_name surname nickname
    diagnosis diagnoses notes note comment comments medicaid_number insurance_id member_id mrn
    medical_record_number account_number case_number case_id household_id family_id id""".split()
)
_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


class Refuse(Exception):
    """A refusal: a reason code and one sentence that names no value from inside the file."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def known_header(name: str, known_columns: frozenset[str]) -> bool:
    key = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return key in known_columns or key in _COMMON_HEADERS


def read_header(data: bytes) -> list[str]:
    first_line_end = data.find(b"\n")
    head = data if first_line_end < 0 else data[: first_line_end + 1]
    try:
        row = next(csv.reader(io.StringIO(head.decode("utf-8"))), None)
    except csv.Error:
        row = None
    if not row or all(not c.strip() for c in row):
        raise Refuse("missing_header", "The first line is empty; the file must start with a header row of column names.")
    return [c.strip() for c in row]


def delimiter_hint(header: list[str], vocabulary: frozenset[str]) -> tuple[str, bool] | None:
    """(name of the delimiter, whether its fields are column names) when the header looks separated by
    something other than commas."""
    for sep, word in _DELIMITERS.items():
        if sum(c.count(sep) for c in header) < max(1, len(header)):
            continue
        fields = [f.strip().strip('"') for c in header for f in c.split(sep)]
        known = sum(1 for f in fields if f in vocabulary)
        return word, known * 2 >= len(fields)
    return None


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _typo_hints(unknown: list[tuple[int, str]], missing: list[str]) -> list[str]:
    """'column 1 may be student_id misspelt': the position of the unknown name only, never the name itself."""
    hints: list[str] = []
    targets = {_normal(m): m for m in missing}
    for position, name in unknown:
        close = difflib.get_close_matches(_normal(name), list(targets), n=1, cutoff=0.75)
        if close:
            hints.append(f"column {position} may be {targets[close[0]]} misspelt")
    return hints[:10]


def check_header(
    header: list[str], permitted: frozenset[str], required: list[str], extract: str, vocabulary: frozenset[str] = frozenset()
) -> None:
    """Check a header; ``vocabulary`` are column names that may be echoed (every contract's columns)."""
    vocabulary = vocabulary | permitted
    known = [c for c in header if c in permitted]
    unknown = [(i + 1, c) for i, c in enumerate(header) if c not in permitted]
    hint = delimiter_hint(header, vocabulary)
    if hint is not None and hint[1]:
        raise Refuse(
            "wrong_delimiter",
            f"The header looks {hint[0]}-separated; the contract of {extract!r} expects commas. "
            "Export the file again as CSV (comma-separated values).",
        )
    if len(known) * 2 < len(header):
        # Most of the first row is not column names: it may be data. Never echo it.
        extra = f" The header looks {hint[0]}-separated; the contract expects commas." if hint else ""
        raise Refuse(
            "missing_header",
            f"The first row does not look like the header of {extract!r}: only {len(known)} of its {len(header)} "
            f"fields are column names of this extract. The file may be missing its header row.{extra}",
        )
    blanks = [i + 1 for i, c in enumerate(header) if not c]
    if blanks:
        raise Refuse(
            "blank_column_name",
            f"Header column(s) {', '.join(map(str, blanks[:10]))} have no name; every column needs its name in the header row.",
        )
    seen: set[str] = set()
    repeated = sorted({c for c in header if c in seen or seen.add(c)})  # type: ignore[func-returns-value]
    if repeated and all(known_header(c, vocabulary) for c in repeated):
        raise Refuse("duplicate_columns", f"The header names these columns more than once: {', '.join(repeated[:10])}.")
    if repeated:
        raise Refuse("duplicate_columns", "The header names a column more than once.")
    missing = [c for c in required if c not in header]
    if unknown:
        shown = ", ".join(c if known_header(c, vocabulary) else f"column {i} (name not shown)" for i, c in unknown[:10])
        if missing:
            hints = _typo_hints(unknown, missing)
            raise Refuse(
                "columns_not_permitted",
                f"The header of {extract!r} does not match its contract: required columns are missing: "
                f"{', '.join(missing)}" + (f" ({'; '.join(hints)})" if hints else "")
                + f"; and the MOU does not permit: {shown}. Correct the header row and drop the file again; "
                "the file was not stored.",
            )
        raise Refuse(
            "columns_not_permitted",
            f"The MOU does not permit these columns in {extract!r}: {shown}. Remove them and drop the file again; "
            "the file was not stored.",
        )
    if missing:
        raise Refuse(
            "missing_columns",
            f"Required columns are missing from {extract!r}: {', '.join(missing)}. Add them and drop the file again.",
        )
