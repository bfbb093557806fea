"""``check_extract``: what an agency can run on its own machine before dropping a file (nothing is stored)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from data_sharing.validation.results import DriftPolicy, ExtractProfile, ValidationInputError, ValidationResult
from data_sharing.validation.table import read_extract, validate_table

if TYPE_CHECKING:  # pragma: no cover
    from data_sharing.intake import IntakeDecision
    from schemas.partnership import Partnership


@dataclass
class CheckReport:
    """What the hub would do with a file: ``exit_code`` 0 ok, 1 warnings or quarantined rows, 2 refused."""

    file_name: str
    agency: str
    extract: str | None
    exit_code: int
    status: str  # ok | warnings | refused
    intake_reason_code: str | None = None
    intake_reason: str | None = None
    intake_warnings: list[str] = field(default_factory=list)
    validation: ValidationResult | None = None
    notes: list[str] = field(default_factory=list)

    def text(self, max_problems: int = 50) -> str:
        """Plain text for a terminal (no identifier values)."""
        lines = [f"{self.file_name}: {self.status.upper()} (exit code {self.exit_code})"]
        if self.intake_reason:
            lines.append(f"  The file would be refused: {self.intake_reason}")
        v = self.validation
        if v is not None:
            lines.append(
                f"  rows: {v.rows_in:,} in the file, {v.duplicate_rows:,} exact repeats, {v.accepted:,} accepted, "
                f"{v.quarantined:,} quarantined, {v.refused:,} refused"
            )
            for p in v.problems[:max_problems]:
                where = f"row {p.row_number:,}" if p.row_number else "file"
                col = f", {p.column}" if p.column else ""
                val = f" [value: {p.value}]" if p.value is not None else ""
                lines.append(f"  {where}{col} ({p.rule}, {p.outcome}): {p.explanation}{val}")
            if len(v.problems) > max_problems:
                lines.append(f"  ... and {len(v.problems) - max_problems:,} more problems")
        elif self.intake_warnings:
            lines += [f"  warning: {w}" for w in self.intake_warnings]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


_HEADER_CODES = frozenset(
    {"missing_header", "columns_not_permitted", "missing_columns", "duplicate_columns", "blank_column_name", "wrong_delimiter"}
)


def own_header_note(path: Path, limit: int = 1 << 16) -> str:
    """The agency's own header names, as this check read them (``check-extract`` runs on the agency's own
    machine, on its own file: the hub never shows these names)."""
    import csv as _csv

    from data_sharing.intake import escape_name

    with open(path, "rb") as fh:
        head = fh.read(limit).split(b"\n", 1)[0].decode("utf-8-sig", "replace").rstrip("\r")
    try:
        names = next(_csv.reader([head]), [])
    except _csv.Error:
        names = [head]
    shown = " | ".join(escape_name(n)[:60] for n in names[:60]) + (" | ..." if len(names) > 60 else "")
    return f"Your file's header, as read with commas between names ({len(names)} field(s)): {shown}"


def check_extract(
    path: Path | str,
    agency: str,
    partnership: Partnership,
    *,
    extract: str | None = None,
    today: dt.date | None = None,
    references: Mapping[str, Path | str] | None = None,
    previous: ExtractProfile | None = None,
    drift: DriftPolicy | None = None,
) -> CheckReport:
    """Check a file as intake and validation would, without dropping it (nothing is stored).

    The intake checks (name, MOU in force, encoding, header, permitted and required columns) run
    through :func:`data_sharing.intake.examine_drop` on a temporary copy; then the contract's suite.
    A file not yet named ``<extract>_<YYYYMMDD>.csv`` can be checked by giving ``extract``.
    References are checked against sibling files of the same date (``students_20260915.csv`` next to
    ``attendance_20260915.csv``) or the files given in ``references``.
    """
    from data_sharing.intake import display_name

    path = Path(path)
    shown = display_name(path.name)
    today = today or dt.date.today()
    notes: list[str] = []
    named = _drop_name(path, shown, agency, partnership, extract, today, notes)
    if isinstance(named, CheckReport):
        return named
    name, date_text, extract, renamed = named
    decision = _examine_copy(path, agency, name, partnership, today)
    if decision.status == "refused":
        if decision.reason_code in _HEADER_CODES:
            notes.append(own_header_note(path))
        return CheckReport(shown, agency, extract, 2, "refused", decision.reason_code, decision.reason,
                           list(decision.warnings), None, notes)
    terms = partnership.terms(agency, extract)
    assert terms is not None
    if name.endswith(".tokens.csv"):
        # A tokenized file carries tokens instead of the contract's identifier columns: the contract's
        # suite does not describe it (yet), so only intake's checks apply.
        notes.append("Row-level checks are not run on tokenized (.tokens.csv) files yet; intake's checks passed.")
        code = 1 if decision.warnings else 0
        return CheckReport(shown, agency, extract, code, "warnings" if code else "ok", None, None,
                           list(decision.warnings), None, notes)
    try:
        table = read_extract(path)
    except ValidationInputError as exc:
        return CheckReport(shown, agency, extract, 2, "refused", exc.reason, str(exc), [], None, notes)
    ref_tables = _reference_tables(path, terms.contract.references, references, date_text, notes)
    try:
        result = validate_table(
            table, terms.contract, file_name=shown, references=ref_tables, previous=previous, drift=drift
        )
    except ValidationInputError as exc:
        return CheckReport(shown, agency, extract, 2, "refused", exc.reason, str(exc), [], None, notes)
    code = result.exit_code
    if code == 0 and notes and renamed:
        code = 1  # the name must still be fixed
    status = {0: "ok", 1: "warnings", 2: "refused"}[code]
    return CheckReport(shown, agency, extract, code, status, None, None, list(decision.warnings), result, notes)


def _drop_name(
    path: Path, shown: str, agency: str, partnership: Partnership, extract: str | None, today: dt.date, notes: list[str]
) -> CheckReport | tuple[str, str, str, bool]:
    """(name to drop the file under, its date text, the extract, whether it must be renamed), or the refusal."""
    from data_sharing.intake import display_name, parse_drop_name

    if agency not in partnership.agreements:
        return CheckReport(shown, display_name(agency), extract, 2, "refused", "unknown_agency",
                           f"Not an agency of this partnership (agencies: {', '.join(partnership.agencies)}).")
    if extract is not None and extract not in partnership.extracts_of(agency):
        return CheckReport(shown, agency, None, 2, "refused", "unknown_extract",
                           f"Not an extract of {agency} (extracts: {', '.join(partnership.extracts_of(agency))}).")
    parsed = parse_drop_name(f"{agency}/{path.name}")
    if parsed is not None:
        name, date_text = path.name, path.name.rsplit("_", 1)[1][:8]
        extract = extract or parsed[1]
        if extract != parsed[1]:
            return CheckReport(shown, agency, extract, 2, "refused", "name_mismatch",
                               f"The file name says {parsed[1]!r} but the check was asked for {extract!r}.")
    elif extract is not None:
        date_text = today.strftime("%Y%m%d")
        name = f"{extract}_{date_text}.csv"
        notes.append(f"When you drop this file, name it {extract}_<YYYYMMDD>.csv (the as-of date), for example {name}.")
    else:
        return CheckReport(
            shown, agency, None, 2, "refused", "bad_name",
            "The file name does not follow <extract>_<YYYYMMDD>.csv; rename it, or say which extract it is.",
        )
    if not path.is_file():
        return CheckReport(shown, agency, extract, 2, "refused", "not_found", "The file does not exist or is not a file.")
    return name, date_text, extract, parsed is None


def _examine_copy(path: Path, agency: str, name: str, partnership: Partnership, today: dt.date) -> IntakeDecision:
    """Intake's decision on a private copy of ``path`` dropped as ``<agency>/<name>`` in a temporary folder."""
    from data_sharing.dropsafe import DropLimits
    from data_sharing.intake import examine_drop

    with tempfile.TemporaryDirectory(prefix="c2c-check-") as tmp:
        drop = Path(tmp) / "drop"
        (drop / agency).mkdir(parents=True)
        copy = drop / agency / name
        shutil.copyfile(path, copy)
        os.chmod(copy, 0o600)
        # a fresh private copy: complete by construction (no settle time)
        return examine_drop(copy, drop, partnership, today, limits=DropLimits(settle_s=0))


def _reference_tables(
    path: Path, refs: Sequence[Any], references: Mapping[str, Path | str] | None, date_text: str, notes: list[str]
) -> dict[str, pa.Table]:
    """The extracts ``refs`` point to: the files given, else siblings of the same date; unreadable ones noted."""
    from data_sharing.intake import display_name

    ref_tables: dict[str, pa.Table] = {}
    for ref in refs:
        ref_path = Path((references or {}).get(ref.extract) or path.with_name(f"{ref.extract}_{date_text}.csv"))
        if ref_path.is_file():
            try:
                ref_tables[ref.extract] = read_extract(ref_path)
            except ValidationInputError as exc:
                notes.append(f"{display_name(ref_path.name)} could not be read to check references: {exc}")
    return ref_tables
