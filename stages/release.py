"""Load and publish: the partner-tier tables loaded from the current pseudonymous records (keyed by child_key
through the linkage area's crosswalk), and the published, suppressed indicator release built on them, with
its audit report.

Plain Python (no Dagster): the ``warehouse_tables`` and ``indicator_release`` assets call these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy.engine import Engine

from data_sharing.keys import KeySet
from data_sharing.linkage.area import LinkageArea
from schemas.partnership import Partnership
from schemas.indicators import load_indicator_definitions
from stages.incremental import CROSSWALK_RECORD, RELEASE_RECORD, c2c_version, crosswalk_state, forget_record, read_record, write_record
from stages.linkage import read_staging
from stages.report import REPORTS_DIR
from warehouse.load import StagedFile, extract_tables, load_current, loaded_files, prepare_crosswalk
from warehouse.manifest import ManifestStore
from warehouse.releases import EmptyReleaseError, ReleaseInfo, publish_release


@dataclass(frozen=True)
class WarehouseLoad:
    """One load of the partner-tier tables (ids, hashes and counts only)."""

    tables: Mapping[str, dict]  # "<agency>/<extract>" -> the load's metadata
    source_files: Mapping[str, str]  # sha256 -> drop file
    source_files_by_table: Mapping[str, list[str]]  # table -> sorted sha256
    pseudonym_key: str
    rekeyed: bool  # a new pseudonym key since the last load: every table loaded afresh
    linked: bool  # a crosswalk was there (child keys); else rows keyed by source_key
    rows_total: int


@dataclass(frozen=True)
class ReleaseOutcome:
    """A publication: the release (``info``), or why none was published (``status``)."""

    info: ReleaseInfo | None = None
    status: str | None = None
    kept_release_id: int | None = None  # nothing to publish while this release is current: a failure
    contributing: list[dict] = field(default_factory=list)
    report: Path | None = None
    warnings: tuple[str, ...] = ()

    @property
    def published(self) -> bool:
        return self.info is not None


def _staged_files(
    terms: Any, key: str, keyset: KeySet, area: LinkageArea, snapshot: dict, loaded: Mapping[int, tuple]  # type: ignore[type-arg]
) -> list[tuple[Any, StagedFile]]:
    """One extract's current files (manifest entry, staged file). Only files not already loaded as they are
    (``loaded``: manifest id -> (SHA-256, periods)) are read from staging, under the current pseudonym key;
    the others carry an empty frame (:func:`~warehouse.load.load_current` keeps their rows)."""
    agency, extract = key.split("/")
    by_entry: dict[int, tuple] = {}  # type: ignore[type-arg]
    for period, entry in snapshot.get((agency, extract), {}).items():
        by_entry.setdefault(entry.id, (entry, set()))[1].add(period)
    files = []
    for entry, periods in by_entry.values():
        scope = frozenset(periods) if terms.contract.period_column else None
        staged = StagedFile(agency, extract, entry.id, str(entry.sha256), pd.DataFrame(), periods=scope)
        if loaded.get(entry.id) != (staged.sha256, staged.periods_json()):
            path = area.require(area.staging(entry), "pseudonymous record", entry.rel_path)
            staged = replace(staged, frame=read_staging(path, terms.contract, keyset))
        files.append((entry, staged))
    return files


def _loaded_now(engine: Engine) -> dict[str, dict[int, tuple[str, str | None]]]:
    """Per extract: the files in the warehouse now, manifest id -> (SHA-256, periods as stored)."""
    out: dict[str, dict[int, tuple[str, str | None]]] = {}
    for f in loaded_files(engine):
        periods = None if f["periods"] is None else json.dumps(f["periods"])
        out.setdefault(f"{f['agency']}/{f['extract']}", {})[int(str(f["manifest_id"]))] = (str(f["sha256"]), periods)
    return out


def load_warehouse(
    engine: Engine, store: ManifestStore, partnership: Partnership, keyset: KeySet, area: LinkageArea
) -> WarehouseLoad:
    """Load exactly the current snapshot of every extract's table, idempotently (child keys from the
    crosswalk; a pseudonym-key rotation since the last load reloads every table afresh). While the
    crosswalk is the one the tables were last linked with, an extract whose files did not change is left
    alone, and only new files are read (``stages.incremental``)."""
    snapshot = store.current_snapshot()
    label = keyset.purpose_key("pseudonym").label
    rekeyed = area.warehouse_keys.changed(label)
    link_state = crosswalk_state(area)
    relink = rekeyed or (read_record(area, CROSSWALK_RECORD) or {}).get("crosswalk", "") != link_state
    if relink:  # until every table is linked with this crosswalk, the next night relinks them all
        forget_record(area, CROSSWALK_RECORD)
    loaded = {} if rekeyed else _loaded_now(engine)
    crosswalk: list[pd.Series] = []  # read and prepared once, when a table needs it
    results: dict[str, dict] = {}
    sources: dict[str, str] = {}
    by_table: dict[str, list[str]] = {}
    tables = extract_tables(partnership.contracts)
    for key in sorted(tables):
        terms = partnership.terms(*key.split("/"))
        if terms is None:
            continue
        staged = _staged_files(terms, key, keyset, area, snapshot, loaded.get(key, {}))
        for entry, _ in staged:
            sources[str(entry.sha256)] = entry.rel_path
            by_table.setdefault(tables[key].table.name, []).append(str(entry.sha256))
        wanted = {f.manifest_id: (f.sha256, f.periods_json()) for _, f in staged}
        if not relink and wanted == loaded.get(key, {}):
            results[key] = {"extract": key, "unchanged": True, "files_kept": sorted(wanted),
                            "rows_total": sum(f["rows"] for f in loaded_files(engine, [key]))}  # type: ignore[misc]
            continue
        if not crosswalk:
            crosswalk.append(prepare_crosswalk(area.read_crosswalk()))
        if rekeyed:  # a new pseudonym key: every row's source_key changes, so load the set afresh
            load_current(engine, key, [], None, tables=tables)
        results[key] = load_current(engine, key, [f for _, f in staged], crosswalk[0], tables=tables, relink=relink).metadata()
    area.warehouse_keys.record(label)
    if link_state is not None:
        write_record(area, CROSSWALK_RECORD, {"crosswalk": link_state})
    return WarehouseLoad(
        tables=results, source_files=sources, source_files_by_table={t: sorted(v) for t, v in sorted(by_table.items())},
        pseudonym_key=label, rekeyed=rekeyed, linked=link_state is not None,
        rows_total=sum(int(r.get("rows_total", 0)) for r in results.values()),
    )


def contributing_files(
    engine: Engine, store: ManifestStore, partnership: Partnership, release_sources: list[dict]
) -> list[dict]:
    """Every file behind a release: those of the extracts the indicators read (``via: indicators``) and the
    current person extracts the linkage read (``via: linkage``), with drop name, SHA-256 and MOU."""
    people = [f"{t.agency}/{t.extract}" for t in partnership if t.contract.describes_people]
    via: dict[int, set[str]] = {}
    files: dict[int, dict] = {}
    for tag, found in (("indicators", release_sources), ("linkage", loaded_files(engine, people))):
        for f in found:
            mid = int(str(f["manifest_id"]))
            files[mid] = f
            via.setdefault(mid, set()).add(tag)
    out = []
    for manifest_id, f in sorted(files.items()):
        entry = store.get(manifest_id)
        out.append({
            "manifest_id": manifest_id, "agency": f["agency"], "extract": f["extract"], "sha256": str(f["sha256"]),
            "file": entry.rel_path if entry else None,
            "mou": f"{entry.mou_id} v{entry.mou_version}" if entry and entry.mou_id else None,
            "via": sorted(via[manifest_id]),
        })
    return out


def audit_report(
    engine: Engine, store: ManifestStore, area: LinkageArea, home: Path, release_id: int, contributing: list[dict]
) -> tuple[Path | None, str | None]:
    """Write the release's audit report (``<home>/reports/<id>/audit.html``): (its path, None), or (None, a
    warning) when it cannot be written (the release stands)."""
    from warehouse.reports.audit import write_audit_report

    file_keys: dict[int, dict[str, str]] = {}
    for entry in store.entries():
        path = area.staging(entry)
        if entry.status in ("accepted", "superseded") and path.exists():
            meta = {k.decode(): v.decode() for k, v in (pq.read_schema(path).metadata or {}).items()}
            file_keys[entry.id] = {k.removeprefix("key_"): v for k, v in meta.items() if k.startswith("key_")}
    try:
        return write_audit_report(engine, release_id, Path(home) / REPORTS_DIR, file_keys=file_keys,
                                  contributing=contributing), None
    except OSError as exc:
        return None, f"the audit report of release {release_id} was not written: {type(exc).__name__} {exc.strerror}"


def publish(
    engine: Engine, store: ManifestStore, partnership: Partnership, area: LinkageArea, home: Path, run_id: str
) -> ReleaseOutcome:
    """Compute every indicator, suppress and publish it atomically as a new release with the linkage
    quality, list the files behind it and write its audit report. Nothing to publish: the outcome says
    why, and ``kept_release_id`` names the release that stays current (the data vanished: a failure)."""
    quality = area.read_quality() or {"linkage": "not run"}
    crosswalk = crosswalk_state(area)
    # the tables' child keys come from the crosswalk the last load recorded (else: no reuse this night)
    linked_with = (read_record(area, CROSSWALK_RECORD) or {}).get("crosswalk")
    link_state = f"{crosswalk}|{area.warehouse_keys.label()}|{c2c_version()}" if linked_with == crosswalk else None
    try:
        info = publish_release(
            engine, linkage_quality=quality, run_id=run_id, partnership=partnership,
            definitions=load_indicator_definitions(partnership.indicators_dir),
            link_state=link_state, previous=read_record(area, RELEASE_RECORD),
        )
    except EmptyReleaseError as exc:
        # A good release exists: the data vanished, fail the run (alert); it stays current.
        # A new hub without data yet: not an error; the check warns and the next nightly run tries again.
        return ReleaseOutcome(status=str(exc), kept_release_id=exc.current_release_id)
    if info.table_states is not None:  # what the next release compares with (ids and digests only)
        write_record(area, RELEASE_RECORD, {"release_id": info.release_id, "definitions": info.definitions,
                                            "tables": dict(info.table_states)})
    contributing = contributing_files(engine, store, partnership, info.source_files)
    report, warning = audit_report(engine, store, area, home, info.release_id, contributing)
    return ReleaseOutcome(info=info, contributing=contributing, report=report, warnings=(warning,) if warning else ())
