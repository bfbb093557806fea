"""Validation: the extract's Great Expectations suite (built from its contract) over one accepted file.

File-level failures refuse the whole file (the manifest falls back to the previous snapshot); row-level
failures go to quarantine (encrypted in the landing zone, with rule, column and reason); warnings are
reported. The agency gets a feedback report next to its file. The accepted row numbers, the extract's drift
profile and a summary (counts and rule names only) are written to the linkage area.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from data_sharing.intake import read_extract_table
from data_sharing.landing import LandingZone
from data_sharing.protect import check_tokens_shape
from data_sharing.validation import ExtractProfile, ValidationInputError, validate_table
from stages import StageError
from stages.intake import write_agency_feedback
from warehouse.manifest import ManifestEntry, ManifestStore

if TYPE_CHECKING:
    from data_sharing.keys import KeySet
    from data_sharing.partnership import Partnership
    from data_sharing.validation import ValidationResult
    from schemas.contracts import ExtractContract

VALIDATABLE = ("accepted", "superseded", "duplicate", "refused")
MAX_EXPECTATIONS = 300


def validation_paths(linkage_dir: str | Path, entry: ManifestEntry) -> tuple[Path, Path]:
    """(accepted row numbers of one file, drift profile of its extract), both in the linkage area."""
    root = Path(linkage_dir)
    return (
        root / "validation" / str(entry.agency) / str(entry.extract) / entry.artifact_name,
        root / "profiles" / str(entry.agency) / f"{entry.extract}.json",
    )


@dataclass(frozen=True)
class FileValidation:
    """One file's validation. ``status``: duplicate | from_earlier_validation (raw file destroyed by retention,
    the accepted rows kept) | validated | refused (``refused_reasons`` says why)."""

    entry: ManifestEntry
    contract: ExtractContract | None
    status: str
    counts: Mapping[str, int] = field(default_factory=dict)
    refused_reasons: tuple[str, ...] = ()
    suite: str = ""
    problems: Mapping[str, int] = field(default_factory=dict)
    expectations: tuple[Mapping[str, Any], ...] = ()
    feedback_report: str = ""
    quarantine_file: str = ""
    data_docs: str = ""

    @property
    def refused(self) -> bool:
        return bool(self.refused_reasons)

    @property
    def rows_in(self) -> int:
        return self.counts.get("rows_in", 0)

    @property
    def rows_accepted(self) -> int:
        return 0 if self.refused else self.counts.get("accepted", 0)

    @property
    def rows_quarantined(self) -> int:
        return 0 if self.refused else self.counts.get("quarantined", 0)

    @property
    def rows_refused(self) -> int:
        return self.rows_in if self.refused else 0

    @property
    def rows_repeated(self) -> int:
        return self.counts.get("duplicate_rows", 0)


@dataclass(frozen=True)
class _Checked:
    """What the rules (or, for a tokenized file, the token shapes) said about the table."""

    result: ValidationResult | None
    counts: dict[str, int]
    refused_reasons: list[str]
    accepted_numbers: pa.Array
    notes: list[str]


def validate_landed(
    partition_key: str, store: ManifestStore, partnership: Partnership, load_keys: Callable[[], KeySet], *,
    drop: Path, landing: Path, linkage: Path, data_docs_dir: Path | None = None,
) -> FileValidation:
    """Validate the file of this partition (its latest manifest entry) from its encrypted landed copy."""
    entry = store.latest_for_path(partition_key)
    if entry is None or entry.status not in VALIDATABLE:
        raise StageError(f"{partition_key} has no file in the intake manifest")
    terms = partnership.terms(str(entry.agency), str(entry.extract))
    contract = None if terms is None else terms.contract
    if entry.status == "duplicate":
        return FileValidation(entry, contract, "duplicate", {"rows_in": entry.rows or 0})
    rows_path, profile_path = validation_paths(linkage, entry)
    if entry.status == "refused" and entry.reason_code != "validation_failed":
        raise StageError(f"{entry.rel_path} was refused at intake ({entry.reason_code}); nothing to validate")
    zone = LandingZone(landing, load_keys())
    landed = zone.path_for(str(entry.agency), Path(entry.rel_path).name, str(entry.sha256))
    if not landed.exists() and rows_path.exists():
        return FileValidation(entry, contract, "from_earlier_validation", {"accepted": pq.read_metadata(rows_path).num_rows})
    assert terms is not None
    table = landed_table(zone, entry)
    if entry.tokenized:
        checked = _check_tokens(table, terms.contract)
    else:
        references, notes = reference_tables(entry, store, zone, drop, partnership)
        checked = _check_rules(table, entry, terms.contract, references, notes, profile_path)
    validated = _record(entry, checked, table, zone, store, drop=drop, linkage=linkage, data_docs_dir=data_docs_dir)
    return replace(validated, contract=contract)


def _check_tokens(table: pa.Table, contract: ExtractContract) -> _Checked:
    """Identifier rules were the agency's to apply; here: every token column must hold tokens only
    (a raw value in a tokens file refuses the whole file), and exact repeats count once."""
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    refused_reasons = check_tokens_shape(frame, contract)
    keep = ~frame.duplicated(keep="first").to_numpy()
    notes = ["Tokenized at source: rules on identifiers were applied before tokenizing, not at the hub."]
    counts = {"rows_in": table.num_rows, "accepted": int(keep.sum()), "quarantined": 0, "refused": 0,
              "duplicate_rows": int((~keep).sum())}
    return _Checked(None, counts, list(refused_reasons), pa.array(np.nonzero(keep)[0] + 1, type=pa.int64()), notes)


def _check_rules(
    table: pa.Table, entry: ManifestEntry, contract: ExtractContract, references: dict[str, pa.Table], notes: list[str],
    profile_path: Path,
) -> _Checked:
    previous = None
    if profile_path.exists():
        try:
            previous = ExtractProfile.from_dict(json.loads(profile_path.read_text(encoding="utf-8")))
        except (ValueError, KeyError):
            notes.append("the previous drift profile could not be read; drift not checked")
    try:
        result = validate_table(table, contract, file_name=Path(entry.rel_path).name, references=references, previous=previous)
    except ValidationInputError as exc:
        raise StageError(f"{entry.rel_path}: {exc}") from None
    refused_reasons = result.refusal_reasons if result.file_refused else []
    accepted = pa.array(result.accepted_indices + 1, type=pa.int64())
    return _Checked(result, result.counts(), list(refused_reasons), accepted, notes + list(result.notes))


def _record(
    entry: ManifestEntry, checked: _Checked, table: pa.Table, zone: LandingZone, store: ManifestStore, *,
    drop: Path, linkage: Path, data_docs_dir: Path | None,
) -> FileValidation:
    """Tell the agency, quarantine failing rows, refuse the file or keep its accepted rows, write the summary."""
    result, reasons = checked.result, checked.refused_reasons
    now = dt.datetime.now(dt.timezone.utc)
    name = Path(entry.rel_path).name
    feedback = write_agency_feedback(
        drop, store.engine, str(entry.agency), name, result,
        refusal=" ".join(reasons) or None, warnings=entry.warnings, notes=checked.notes, generated=now,
    )
    quarantine_file = ""
    if result is not None and result.quarantined and not reasons:
        buf = pa.BufferOutputStream()
        pacsv.write_csv(result.quarantined_rows(table), buf)
        landed = zone.put(str(entry.agency), f"{name.removesuffix('.csv')}.quarantine.csv", buf.getvalue().to_pybytes())
        quarantine_file = str(landed.path)
    rows_path, profile_path = validation_paths(linkage, entry)
    if reasons:
        store.refuse(entry.id, "validation_failed", "Validation refused the file: " + " ".join(reasons), now=now)
        status = "refused"
    else:
        _write_accepted(rows_path, profile_path, checked)
        status = "validated"
    problems = {} if result is None else dict(sorted((f"{r}|{c or ''}|{o}", n) for (r, c, o), n in result.problem_counts().items()))
    _write_summary(rows_path.with_suffix(".json"), entry, now, status, checked.counts, problems)
    docs_index = ""
    if result is not None and data_docs_dir is not None:
        from data_sharing.feedback import build_data_docs

        docs_index = str(build_data_docs([result], str(entry.agency), data_docs_dir / str(entry.agency)))
    return FileValidation(
        entry, None, status, dict(checked.counts), tuple(reasons),
        suite="" if result is None else result.suite_name,
        problems=problems,
        expectations=() if result is None else tuple(
            {"type": e.expectation_type, "rule": e.rule, "columns": list(e.columns), "outcome": e.outcome,
             "success": e.success, "unexpected_count": e.unexpected_count}
            for e in result.expectations[:MAX_EXPECTATIONS]
        ),
        feedback_report=str(feedback.html) if feedback is not None else "",
        quarantine_file=quarantine_file,
        data_docs=docs_index,
    )


def _write_accepted(rows_path: Path, profile_path: Path, checked: _Checked) -> None:
    """The accepted row numbers (read by protection), and the extract's drift profile for the next file."""
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = rows_path.with_suffix(".tmp")
    pq.write_table(pa.table({"row_number": checked.accepted_numbers}), tmp)
    os.replace(tmp, rows_path)
    if checked.result is not None:
        profile_path.parent.mkdir(parents=True, exist_ok=True)
        profile_path.write_text(json.dumps(checked.result.profile.to_dict(), sort_keys=True), encoding="utf-8")


def _write_summary(
    path: Path, entry: ManifestEntry, now: dt.datetime, status: str, counts: Mapping[str, int], problems: Mapping[str, int]
) -> None:
    """The per-file summary the data-quality scorecard reads (counts and rule names only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "manifest_id": entry.id, "file": entry.rel_path, "sha256": entry.sha256, "agency": entry.agency,
                "extract": entry.extract, "as_of_date": entry.as_of_date.isoformat() if entry.as_of_date else None,
                "validated_at": now.isoformat(), "status": status, "counts": dict(counts), "problems": dict(problems),
            },
            sort_keys=True,
        ),
        encoding="utf-8",
    )


def landed_table(zone: LandingZone, entry: ManifestEntry) -> pa.Table:
    data = zone.read(zone.path_for(str(entry.agency), Path(entry.rel_path).name, str(entry.sha256)))
    return read_extract_table(data)


def _read_sibling(drop: Path, rel: str) -> bytes | None:
    """A sibling still in the drop folder, read from one descriptor opened without following links
    (None when it is not there, or is not a regular file that stayed still while read)."""
    from data_sharing.dropsafe import DropLimits, UnsafeEntry, read_entry

    try:
        return read_entry(drop, rel, DropLimits().max_file_bytes).data
    except (UnsafeEntry, OSError):
        return None


def reference_tables(
    entry: ManifestEntry, store: ManifestStore, zone: LandingZone, drop: Path, partnership: Partnership
) -> tuple[dict[str, pa.Table], list[str]]:
    """The extracts this one's references point to: the same drop's sibling file (still in the drop
    folder, or already landed), else the current accepted snapshot of that extract."""
    terms = partnership.terms(str(entry.agency), str(entry.extract))
    assert terms is not None
    out: dict[str, pa.Table] = {}
    notes: list[str] = []
    for ref in terms.contract.references:
        if ref.extract in out or entry.as_of_date is None:
            continue
        try:
            table = _reference_table(entry, ref.extract, store, zone, drop)
            if table is not None:
                out[ref.extract] = table
        except Exception as exc:  # noqa: BLE001 - a reference we cannot read is noted, not fatal
            notes.append(f"reference extract {ref.extract} could not be read ({type(exc).__name__}); not checked")
    return out, notes


def _reference_table(entry: ManifestEntry, extract: str, store: ManifestStore, zone: LandingZone, drop: Path) -> pa.Table | None:
    assert entry.as_of_date is not None
    sibling = _read_sibling(drop, f"{entry.agency}/{extract}_{entry.as_of_date:%Y%m%d}.csv")
    if sibling is not None:
        return read_extract_table(sibling)
    landed = [
        e for e in store.entries(agency=entry.agency, extract=extract)
        if e.status in ("accepted", "superseded") and e.as_of_date == entry.as_of_date
    ]
    if landed:
        return landed_table(zone, landed[-1])
    current = store.current_snapshot().get((str(entry.agency), extract), {})
    tables = [landed_table(zone, e) for e in {e.id: e for e in current.values()}.values()]
    return pa.concat_tables(tables, promote_options="default") if tables else None
