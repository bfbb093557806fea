"""Protection: one accepted file, read from the encrypted landing zone in memory, split into a pseudonymous
record and linkage encodings in the linkage area. Nothing raw leaves this stage.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from data_sharing.intake import read_extract_table
from data_sharing.landing import LandingZone
from data_sharing.protect import ProtectedExtract, protect_raw, protect_tokenized
from stages import StageError
from stages.validate import validation_paths
from warehouse.manifest import ManifestEntry, ManifestStore

if TYPE_CHECKING:
    from data_sharing.keys import KeySet
    from data_sharing.partnership import Partnership
    from schemas.contracts import ExtractContract

PROTECTABLE = ("accepted", "superseded", "duplicate")


def staging_paths(linkage_dir: str | Path, entry: ManifestEntry) -> tuple[Path, Path]:
    """Where one file's pseudonymous record and encodings live (both in the linkage area)."""
    root = Path(linkage_dir)
    return (
        root / "staging" / str(entry.agency) / str(entry.extract) / entry.artifact_name,
        root / "encodings" / str(entry.agency) / str(entry.extract) / entry.artifact_name,
    )


def unfinished_intakes(store: ManifestStore, linkage_dir: str | Path) -> dict[str, ManifestEntry]:
    """Current accepted files whose pseudonymous record is missing (written last by :func:`protect_file`)."""
    out: dict[str, ManifestEntry] = {}
    for owners in store.current_snapshot().values():
        for entry in owners.values():
            if entry.status in ("accepted", "superseded") and not staging_paths(linkage_dir, entry)[0].exists():
                out[entry.rel_path] = entry
    return out


@dataclass(frozen=True)
class ProtectedFile:
    """One file's protection. ``status``: duplicate (same content already protected; ``contract`` None when no
    MOU permits the extract any more) | from_staging (raw file destroyed by retention; the pseudonymous
    record kept) | protected. ``columns``: the pseudonymous record's columns; ``column_lineage``: each one's
    extract fields as the protection step reported them (empty: as the contract declares them)."""

    entry: ManifestEntry
    contract: ExtractContract | None
    status: str
    staging_path: Path
    encodings_path: Path | None = None
    rows_in: int = 0
    rows_not_taken: int = 0
    rows_out: int = 0
    encoded_rows: int = 0
    key_labels: Mapping[str, str] = field(default_factory=dict)
    landing_key: str = ""
    dropped: tuple[str, ...] = ()
    columns: tuple[str, ...] | None = None
    column_lineage: Mapping[str, list[str]] = field(default_factory=dict)


def protect_file(
    partition_key: str, store: ManifestStore, partnership: Partnership, load_keys: Callable[[], KeySet], *,
    landing: Path, linkage: Path,
) -> ProtectedFile:
    """Protect the file of this partition (its latest manifest entry), written to the linkage area."""
    entry = store.latest_for_path(partition_key)
    if entry is None or entry.status not in PROTECTABLE:
        raise StageError(f"{partition_key} has no accepted file in the intake manifest; nothing to protect")
    staging_path, encodings_path = staging_paths(linkage, entry)
    terms = partnership.terms(str(entry.agency), str(entry.extract))
    if entry.status == "duplicate":
        return ProtectedFile(entry, None if terms is None else terms.contract, "duplicate", staging_path)
    if terms is None:
        raise StageError(f"{entry.rel_path}: no MOU permits {entry.agency}/{entry.extract} any more; nothing to protect")
    keyset = load_keys()
    zone = LandingZone(landing, keyset)
    landed = zone.path_for(str(entry.agency), Path(entry.rel_path).name, str(entry.sha256))
    if not landed.exists():
        if staging_path.exists():  # raw file destroyed by retention: the pipeline goes on from the pseudonymous record
            return ProtectedFile(entry, terms.contract, "from_staging", staging_path, rows_out=pq.read_metadata(staging_path).num_rows,
                                 columns=tuple(pq.read_schema(staging_path).names))
        raise StageError(f"{entry.rel_path}: the landed file and its pseudonymous record are both missing")
    accepted_rows, _ = validation_paths(linkage, entry)
    if not accepted_rows.exists():
        raise StageError(f"{entry.rel_path} has not been validated; materialise validated_file first")
    protected, rows_in, not_taken = protect_entry(entry, zone, partnership, keyset, accepted_rows)
    meta_common = {"source_sha256": str(entry.sha256), "manifest_id": str(entry.id), **{f"key_{k}": v for k, v in protected.key_labels.items()}}
    # encodings first: the pseudonymous record is written last and marks the file as done (a run killed
    # in between leaves no staging file, and `c2c run` resumes the file's intake: unfinished_intakes)
    if protected.encodings is not None:
        _write_parquet(protected.encodings, encodings_path, meta_common)
    _write_parquet(protected.staging, staging_path, meta_common)
    return ProtectedFile(
        entry, terms.contract, "protected", staging_path,
        encodings_path=encodings_path if protected.encodings is not None else None,
        rows_in=rows_in, rows_not_taken=not_taken, rows_out=len(protected.staging),
        encoded_rows=0 if protected.encodings is None else len(protected.encodings),
        key_labels=dict(protected.key_labels), landing_key=_landing_label(landed), dropped=tuple(protected.dropped),
        columns=tuple(protected.staging.columns), column_lineage=dict(protected.column_lineage),
    )


def protect_entry(
    entry: ManifestEntry, zone: LandingZone, partnership: Partnership, keyset: KeySet, accepted_rows: Path
) -> tuple[ProtectedExtract, int, int]:
    """Decrypt the landed file in memory, keep the rows validation accepted (exact repeats count once),
    protect them. Returns (protected, rows in the file, rows not taken)."""
    assert entry.agency and entry.extract and entry.sha256
    terms = partnership.terms(entry.agency, entry.extract)
    assert terms is not None
    data = zone.read(zone.path_for(entry.agency, Path(entry.rel_path).name, entry.sha256))
    table = read_extract_table(data)
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    rows_in = len(frame)
    row_numbers = pq.read_table(accepted_rows).column("row_number").to_numpy()
    frame = frame.iloc[row_numbers - 1]
    protect = protect_tokenized if entry.tokenized else protect_raw
    protected = protect(frame, terms.contract, keyset, row_numbers=row_numbers)
    return protected, rows_in, rows_in - len(row_numbers)


def _write_parquet(frame: pd.DataFrame, path: Path, meta: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **{k.encode(): v.encode() for k, v in meta.items()}})
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _landing_label(path: Path) -> str:
    from data_sharing.landing import read_header

    return read_header(path).key_label
