"""Validation asset: the extract's Great Expectations suite (built from its contract) over one accepted file.

File-level failures refuse the whole file (blocking check; the manifest falls back to the previous
snapshot); row-level failures go to quarantine (encrypted in the landing zone, with rule, column and
reason); warnings are reported. The agency gets a feedback report next to its file.
"""

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetMaterialization,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets import names
from assets.intake import OUTCOME, file_identity, file_table, refusal_or_result, write_agency_feedback
from data_sharing.intake import read_extract_table
from data_sharing.landing import LandingZone
from data_sharing.protect import check_tokens_shape
from data_sharing.validation import ExtractProfile, ValidationInputError, validate_table
from assets.partitions import drop_files
from assets.resources import C2CPaths, KeysResource, PartnershipResource, WarehouseResource
from assets.retries import IO_RETRY, retry_transient_only
from warehouse.manifest import ManifestEntry, ManifestStore


def validation_paths(linkage_dir: str | Path, entry: ManifestEntry) -> tuple[Path, Path]:
    """(accepted row numbers of one file, drift profile of its extract), both in the linkage area."""
    root = Path(linkage_dir)
    return (
        root / "validation" / str(entry.agency) / str(entry.extract) / entry.artifact_name,
        root / "profiles" / str(entry.agency) / f"{entry.extract}.json",
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
    entry: ManifestEntry, store: ManifestStore, zone: LandingZone, drop: Path, partnership
) -> tuple[dict[str, pa.Table], list[str]]:  # type: ignore[no-untyped-def]
    """The extracts this one's references point to: the same drop's sibling file (still in the drop
    folder, or already landed), else the current accepted snapshot of that extract."""
    terms = partnership.terms(entry.agency, entry.extract)
    out: dict[str, pa.Table] = {}
    notes: list[str] = []
    for ref in terms.contract.references:
        if ref.extract in out or entry.as_of_date is None:
            continue
        name = f"{ref.extract}_{entry.as_of_date:%Y%m%d}.csv"
        try:
            sibling = _read_sibling(drop, f"{entry.agency}/{name}")
            if sibling is not None:
                out[ref.extract] = read_extract_table(sibling)
                continue
            landed = [
                e for e in store.entries(agency=entry.agency, extract=ref.extract)
                if e.status in ("accepted", "superseded") and e.as_of_date == entry.as_of_date
            ]
            if landed:
                out[ref.extract] = landed_table(zone, landed[-1])
                continue
            current = store.current_snapshot().get((str(entry.agency), ref.extract), {})
            tables = [landed_table(zone, e) for e in {e.id: e for e in current.values()}.values()]
            if tables:
                out[ref.extract] = pa.concat_tables(tables, promote_options="default")
        except Exception as exc:  # noqa: BLE001 - a reference we cannot read is noted, not fatal
            notes.append(f"reference extract {ref.extract} could not be read ({type(exc).__name__}); not checked")
    return out, notes


@asset(
    name=names.VALIDATED_FILE,
    partitions_def=drop_files,
    deps=[names.INTAKE_FILE],
    group_name=names.GROUP_VALIDATION,
    kinds={"python", "great_expectations"},
    owners=["team:city-data-office"],
    description=(
        "One accepted file validated with its extract's Great Expectations suite, generated from schemas/: "
        "file-level failures refuse it, failing rows go to an encrypted quarantine, warnings are reported, "
        "and the agency gets a feedback report in <drop>/<agency>/feedback/. Metadata: the file, SHA-256, MOU, rows "
        "in/accepted/quarantined/refused; its columns are the contract's, each from the same intake_file column."
    ),
    check_specs=[
        AssetCheckSpec(
            name=names.CHECK_VALIDATION_PASSED,
            asset=names.VALIDATED_FILE,
            blocking=True,
            description="No file-level rule failed; a refused file stops everything downstream.",
        )
    ],
    op_tags={names.TAG_STAGE: "intake"},
    retry_policy=IO_RETRY,
    output_required=False,
)
@retry_transient_only
def validated_file(
    context: AssetExecutionContext,
    c2c_paths: C2CPaths,
    warehouse: WarehouseResource,
    partnership: PartnershipResource,
    keys: KeysResource,
) -> Iterator[MaterializeResult | AssetMaterialization | AssetCheckResult]:
    store = warehouse.manifest()
    entry = store.latest_for_path(context.partition_key)
    if entry is None or entry.status not in ("accepted", "superseded", "duplicate", "refused"):
        raise Failure(f"{context.partition_key} has no file in the intake manifest")
    check_ok = AssetCheckResult(check_name=names.CHECK_VALIDATION_PASSED, passed=True)
    terms = partnership.load().terms(str(entry.agency), str(entry.extract))
    contract = None if terms is None else terms.contract
    same = {c: [c] for c in (contract.columns if contract is not None else ())}

    def table_meta(rows: int) -> dict:
        return file_table(entry, contract, rows, same)

    if entry.status == "duplicate":
        yield MaterializeResult(
            metadata={**file_identity(entry), "status": "duplicate", OUTCOME: "duplicate", "rows_in": entry.rows or 0,
                      "rows_accepted": 0, "rows_quarantined": 0, "rows_refused": 0, **table_meta(0)},
            check_results=[check_ok],
        )
        return
    rows_path, profile_path = validation_paths(c2c_paths.linkage_dir, entry)
    if entry.status == "refused" and entry.reason_code != "validation_failed":
        raise Failure(f"{entry.rel_path} was refused at intake ({entry.reason_code}); nothing to validate")
    keyset = keys.load()
    zone = LandingZone(Path(c2c_paths.landing_dir), keyset)
    landed = zone.path_for(str(entry.agency), Path(entry.rel_path).name, str(entry.sha256))
    if not landed.exists() and rows_path.exists():
        rows = pq.read_metadata(rows_path).num_rows
        yield MaterializeResult(
            metadata={**file_identity(entry), "status": "from_earlier_validation", OUTCOME: "validated",
                      "note": "raw file destroyed by retention", "rows_accepted": rows, **table_meta(rows)},
            check_results=[check_ok],
        )
        return
    partnership_obj = partnership.load()
    terms = partnership_obj.terms(str(entry.agency), str(entry.extract))
    table = landed_table(zone, entry)
    if entry.tokenized:
        # Identifier rules were the agency's to apply; here: every token column must hold tokens only
        # (a raw value in a tokens file refuses the whole file), and exact repeats count once.
        result = None
        frame = table.to_pandas(types_mapper=pd.ArrowDtype)
        refused_reasons = check_tokens_shape(frame, terms.contract)
        keep = ~frame.duplicated(keep="first").to_numpy()
        notes = ["Tokenized at source: rules on identifiers were applied before tokenizing, not at the hub."]
        accepted_numbers = pa.array(np.nonzero(keep)[0] + 1, type=pa.int64())
        counts = {"rows_in": table.num_rows, "accepted": int(keep.sum()), "quarantined": 0, "refused": 0,
                  "duplicate_rows": int((~keep).sum())}
    else:
        references, notes = reference_tables(entry, store, zone, c2c_paths.drop, partnership_obj)
        previous = None
        if profile_path.exists():
            try:
                previous = ExtractProfile.from_dict(json.loads(profile_path.read_text(encoding="utf-8")))
            except (ValueError, KeyError):
                notes.append("the previous drift profile could not be read; drift not checked")
        try:
            result = validate_table(table, terms.contract, file_name=Path(entry.rel_path).name, references=references, previous=previous)
        except ValidationInputError as exc:
            raise Failure(f"{entry.rel_path}: {exc}") from None
        notes += list(result.notes)
        counts = result.counts()
        refused_reasons = result.refusal_reasons if result.file_refused else []
        accepted_numbers = pa.array(result.accepted_indices + 1, type=pa.int64())
    now = dt.datetime.now(dt.timezone.utc)
    feedback = write_agency_feedback(
        c2c_paths.drop, warehouse, str(entry.agency), Path(entry.rel_path).name, result,
        refusal=" ".join(refused_reasons) or None, warnings=entry.warnings, notes=notes, generated=now,
    )
    quarantine_file = ""
    if result is not None and result.quarantined and not refused_reasons:
        quarantined = result.quarantined_rows(table)
        buf = pa.BufferOutputStream()
        pacsv.write_csv(quarantined, buf)
        stem = Path(entry.rel_path).name.removesuffix(".csv")
        quarantine_file = str(zone.put(str(entry.agency), f"{stem}.quarantine.csv", buf.getvalue().to_pybytes()).path)
    if refused_reasons:
        reason = "Validation refused the file: " + " ".join(refused_reasons)
        store.refuse(entry.id, "validation_failed", reason, now=now)
        with_status = "refused"
    else:
        rows_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = rows_path.with_suffix(".tmp")
        pq.write_table(pa.table({"row_number": accepted_numbers}), tmp)
        os.replace(tmp, rows_path)
        if result is not None:
            profile_path.parent.mkdir(parents=True, exist_ok=True)
            profile_path.write_text(json.dumps(result.profile.to_dict(), sort_keys=True), encoding="utf-8")
        with_status = "validated"
    problems = {} if result is None else dict(sorted((f"{r}|{c or ''}|{o}", n) for (r, c, o), n in result.problem_counts().items()))
    summary_path = rows_path.with_suffix(".json")
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    summary_path.write_text(
        json.dumps(
            {
                "manifest_id": entry.id, "file": entry.rel_path, "sha256": entry.sha256, "agency": entry.agency,
                "extract": entry.extract, "as_of_date": entry.as_of_date.isoformat() if entry.as_of_date else None,
                "validated_at": now.isoformat(), "status": with_status, "counts": counts, "problems": problems,
            },
            sort_keys=True,
        ),
        encoding="utf-8",
    )
    docs_index = ""
    if result is not None and c2c_paths.data_docs:
        from data_sharing.feedback import build_data_docs

        docs_index = str(build_data_docs([result], str(entry.agency), Path(c2c_paths.home) / "data_docs" / str(entry.agency)))
    meta = {
        **file_identity(entry),
        "status": with_status,
        "source_file": entry.rel_path,
        "source_sha256": str(entry.sha256),
        "suite": "" if result is None else result.suite_name,
        "rows_in": counts.get("rows_in", 0),
        "rows_accepted": 0 if refused_reasons else counts.get("accepted", 0),
        "rows_quarantined": 0 if refused_reasons else counts.get("quarantined", 0),
        "rows_refused": counts.get("rows_in", 0) if refused_reasons else 0,
        "rows_repeated": counts.get("duplicate_rows", 0),
        "problems_by_rule": MetadataValue.json(problems),
        "expectations": MetadataValue.json(
            [] if result is None else [
                {"type": e.expectation_type, "rule": e.rule, "columns": list(e.columns), "outcome": e.outcome,
                 "success": e.success, "unexpected_count": e.unexpected_count}
                for e in result.expectations
            ][:300]
        ),
        "feedback_report": MetadataValue.path(str(feedback.html)) if feedback is not None else "",
        "quarantine_file": quarantine_file,
        "data_docs": MetadataValue.path(docs_index) if docs_index else "",
        **table_meta(0 if refused_reasons else counts.get("accepted", 0)),
    }
    meta[OUTCOME] = with_status
    yield from refusal_or_result(
        names.VALIDATED_FILE, names.CHECK_VALIDATION_PASSED, meta, partition=context.partition_key,
        refused=" ".join(refused_reasons) or None, check_metadata={"rows_quarantined": meta["rows_quarantined"]},
    )
