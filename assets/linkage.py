"""Linkage asset: the same child found across agencies from the encodings alone, with persistent child keys.

Reads the current linkage encodings of every person extract (linkage area), re-keyed to the current
pseudonym key, runs the trained Fellegi-Sunter model (Splink, DuckDB in the linkage area), and writes the
crosswalk ``source_key -> child_key`` and the quality report next to it. The warehouse gets child keys
only through this crosswalk; the crosswalk itself never enters the warehouse.
"""

import datetime as dt
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets import names
from stages.protect import staging_paths
from assets.warehouse import CROSSWALK_FILE, QUALITY_FILE, read_staging
from data_sharing._files import write_private_file
from data_sharing.encodings import rekey_encodings_file
from data_sharing.keys import KeySet
from data_sharing.publication import publishable_quality
from data_sharing.partnership import Partnership
from data_sharing.pseudonyms import key_column_names
from data_sharing.linkage.settings import ConcurrentIds, load_settings
from assets import lineage
from assets.resources import C2CPaths, KeysResource, PartnershipResource, WarehouseResource
from assets.retries import IO_RETRY, retry_transient_only
from warehouse.audit import AuditEvent, record_events
from warehouse.manifest import ManifestStore

ATTRIBUTES = ("sex", "race_ethnicity", "grade_level", "birth_date_year_month")
KEYS_FILE = "linkage_keys.json"


def _role_attributes(staging: pd.DataFrame, contract) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """source_key and the ATTRIBUTES, found through the contract's role fields (any column names)."""
    from schemas.roles import staging_column

    named = {"birth_year_month": "birth_date_year_month"}  # the role field -> the attribute's name
    rename = {staging_column(contract, col): named.get(f, f) for f, col in contract.role_fields.items()}
    frame = staging.rename(columns={k: v for k, v in rename.items() if v in ATTRIBUTES and k in staging.columns})
    return frame[["source_key", *[c for c in ATTRIBUTES if c in frame.columns]]]


def gather_linkage_inputs(
    store: ManifestStore, partnership: Partnership, keyset: KeySet, linkage_dir: Path,
    periods: Sequence[ConcurrentIds] = (),
) -> tuple[dict[str, list[pd.DataFrame]], dict[str, pd.DataFrame], list[str]]:
    """(encodings by agency, attributes by agency, source files) for every current person extract.

    ``periods``: the settings' ``guards.concurrent_ids``; those with a ``source`` add their attribute's
    rows (source_key, value) from that agency's event extract to the agency's attributes."""
    from data_sharing.linkage.run import period_rows

    snapshot = store.current_snapshot()
    records: dict[str, list[pd.DataFrame]] = {}
    attributes: dict[str, list[pd.DataFrame]] = {}
    sources: list[str] = []
    for terms in partnership:
        contract = terms.contract
        if not contract.describes_people:
            continue
        entries = {e.id: e for e in snapshot.get((terms.agency, terms.extract), {}).values()}
        key_cols = list(key_column_names(contract, "source_key").values())
        for entry in entries.values():
            staging_path, encodings_path = staging_paths(linkage_dir, entry)
            if not encodings_path.exists():
                raise Failure(f"{entry.rel_path}: its linkage encodings are missing; re-run its intake partition")
            rekey_encodings_file(encodings_path, keyset)  # a rotated (or absent) hub-only layer: re-encode first
            encodings = pq.read_table(encodings_path).to_pandas(types_mapper=pd.ArrowDtype)
            staging = read_staging(staging_path, contract, keyset).set_index("row_number")
            # source keys under the current pseudonym key (a rotation re-keys them from the id tokens)
            for col in key_cols:
                if col in encodings.columns and col in staging.columns:
                    encodings[col] = staging[col].reindex(encodings["row_number"].to_numpy()).to_numpy()
            records.setdefault(terms.agency, []).append(encodings)
            attrs = _role_attributes(staging.reset_index(), contract)
            attributes.setdefault(terms.agency, []).append(attrs)
            sources.append(str(entry.sha256))
    by_extract = {(t.agency, t.extract): t.contract for t in partnership}
    for ci in periods:
        if ci.source is None or ci.agency not in attributes or (ci.agency, ci.source.extract) not in by_extract:
            continue
        contract = by_extract[(ci.agency, ci.source.extract)]
        key_col = next(iter(key_column_names(contract, "source_key").values()), None)
        for entry in {e.id: e for e in snapshot.get((ci.agency, ci.source.extract), {}).values()}.values():
            staging_path = staging_paths(linkage_dir, entry)[0]
            if not staging_path.exists():
                continue
            staging = read_staging(staging_path, contract, keyset)
            if key_col not in staging.columns or any(c not in staging.columns for c in ci.source.columns):
                continue
            attributes[ci.agency].append(period_rows(staging, staging[key_col], ci.source.columns, ci.attribute))
    joined = {a: pd.concat(f, ignore_index=True) for a, f in attributes.items()}
    return records, joined, sources


def rotation_mapping(
    store: ManifestStore, partnership: Partnership, keyset: KeySet, linkage_dir: Path, old_label: str
) -> pd.DataFrame:
    """old source key -> new source key for every current person record, from the id tokens kept in staging."""
    from data_sharing.pseudonyms import source_keys_from_tokens

    old_version = int(old_label.split("/")[1].lstrip("v"))
    snapshot = store.current_snapshot()
    pairs = []
    for terms in partnership:
        if not terms.contract.describes_people:
            continue
        for entry in {e.id: e for e in snapshot.get((terms.agency, terms.extract), {}).values()}.values():
            staging = pq.read_table(staging_paths(linkage_dir, entry)[0]).to_pandas(types_mapper=pd.ArrowDtype)
            for col in terms.contract.id_columns:
                tokens = staging.get(f"{col}_id_token")
                if tokens is None:
                    continue
                tokens = tokens.dropna().drop_duplicates()
                pairs.append(pd.DataFrame({
                    "old_source_key": source_keys_from_tokens(tokens, keyset, version=old_version).to_numpy(),
                    "new_source_key": source_keys_from_tokens(tokens, keyset).to_numpy(),
                }))
    return pd.concat(pairs, ignore_index=True).drop_duplicates() if pairs else pd.DataFrame(columns=["old_source_key", "new_source_key"])


def _crosswalk_table(rows: int) -> dict:
    schema, deps = lineage.crosswalk_lineage()
    return lineage.table_metadata(CROSSWALK_FILE, rows, schema, deps)


def latest_model_path(linkage_dir: Path) -> Path | None:
    models = sorted((linkage_dir / "models").glob("*.json"), key=lambda p: p.stat().st_mtime)
    return models[-1] if models else None


@asset(
    name=names.LINKED_PERSONS,
    deps=[names.CURRENT_SNAPSHOTS],
    group_name=names.GROUP_LINKAGE,
    kinds={"python", "duckdb"},
    owners=["team:city-data-office"],
    tags={"c2c/zone": "linkage-area"},
    check_specs=[
        AssetCheckSpec(
            name=names.CHECK_LINKAGE_RAN,
            asset=names.LINKED_PERSONS,
            description="A linkage model was available and the night's records were linked.",
        )
    ],
    description=(
        "Probabilistic linkage (Splink, Fellegi-Sunter) over the keyed-hash and Bloom-filter encodings only: "
        "dedupes within each agency, links across agencies, keeps a persistent child_key per person, queues "
        "uncertain pairs for pseudonymous review and reports linkage quality by agency pair and group. "
        "Its table is the crosswalk source_key -> child_key (linkage area; never in the warehouse)."
    ),
    retry_policy=IO_RETRY,
)
@retry_transient_only
def linked_persons(
    context: AssetExecutionContext,
    c2c_paths: C2CPaths,
    warehouse: WarehouseResource,
    partnership: PartnershipResource,
    keys: KeysResource,
) -> MaterializeResult:
    from data_sharing.linkage import LinkageInputError, link, load_model, rekey_state, train_model

    linkage_dir = Path(c2c_paths.linkage_dir)
    keyset = keys.load()
    linkage_settings = load_settings(partnership.load().linkage_settings_path)  # the partnership's (agency ids in guards)
    records, attributes, sources = gather_linkage_inputs(warehouse.manifest(), partnership.load(), keyset, linkage_dir,
                                                         periods=linkage_settings.guards.concurrent_ids)
    if not records:
        return MaterializeResult(
            metadata={"status": "no person extracts yet", **_crosswalk_table(0)},
            check_results=[AssetCheckResult(check_name=names.CHECK_LINKAGE_RAN, passed=False,
                                            severity=AssetCheckSeverity.WARN, description="no person extracts yet")],
        )
    model_path = latest_model_path(linkage_dir)
    trained_now = model_path is None
    try:
        model = train_model(records, linkage_settings, workdir=linkage_dir) if trained_now else load_model(model_path)
    except (LinkageInputError, ValueError) as exc:
        # A new hub with a handful of records (or records too alike to estimate from): no model can be
        # trained yet. Nothing is linked (records stay keyed by source_key), the check warns, and the next
        # nightly run tries again. Messages here carry counts, never values.
        reason = f"no linkage model could be trained yet: {type(exc).__name__}: {str(exc)[:300]}"
        context.log.warning(reason)
        return MaterializeResult(
            metadata={"status": "skipped", "reason": reason, **_crosswalk_table(0)},
            check_results=[AssetCheckResult(check_name=names.CHECK_LINKAGE_RAN, passed=False,
                                            severity=AssetCheckSeverity.WARN, description=reason)],
        )
    # After a pseudonym-key rotation the same people arrive under new source keys: carry the linkage
    # state over first, so every child keeps its child_key.
    keys_path = linkage_dir / KEYS_FILE
    current_label = keyset.purpose_key("pseudonym").label
    previous_label = json.loads(keys_path.read_text()).get("pseudonym") if keys_path.exists() else None
    rekeyed = 0
    if previous_label and previous_label != current_label and not trained_now:
        mapping = rotation_mapping(warehouse.manifest(), partnership.load(), keyset, linkage_dir, previous_label)
        rekeyed = rekey_state(linkage_dir, mapping, label=f"{previous_label} -> {current_label}")
    # Reviewers' pending decisions (review/decisions.csv, `c2c linkage review decide|import`): claimed under
    # the review lock (one written meanwhile waits for the next run), stored in the linkage state and applied
    # by this and every later run; put back as pending if the run fails.
    from data_sharing.linkage.review import audit_details, claim_pending, pair_subject, recorded_by_run, settle_claim

    run_tag = context.run.run_id[:8]
    claimed = claim_pending(linkage_dir, run_tag)
    try:
        decisions = pd.read_csv(claimed, dtype=str) if claimed is not None else None
        result = link(records, model, workdir=linkage_dir, run_id=context.run.run_id, decisions=decisions, attributes=attributes)
    except BaseException:
        if claimed is not None:
            settle_claim(claimed, run_tag, applied=False)
        raise
    applied = recorded_by_run(result.database, context.run.run_id) if claimed is not None else None
    if claimed is not None:
        claimed = settle_claim(claimed, run_tag, applied=True)
    # one audit event per newly stored decision: each pair's entry (subject) pairs with the clerk's
    # `review_decision_recorded` entry; decisions stored earlier keep applying (counted in linkage_run)
    decision_events = [] if applied is None or claimed is None else [
        AuditEvent("review_decision_applied", pair_subject(d["source_key_l"], d["source_key_r"]), d, actor="c2c.linkage")
        for d in audit_details(applied, recorded_run=context.run.run_id, file=claimed.name)
    ]
    keys_path.write_text(json.dumps({"pseudonym": current_label}), encoding="utf-8")
    crosswalk = result.crosswalk[["source_key", "child_key"]]
    tmp = linkage_dir / (CROSSWALK_FILE + ".tmp")
    crosswalk.to_parquet(tmp, index=False)
    os.replace(tmp, linkage_dir / CROSSWALK_FILE)
    quality = result.quality
    summary = {"records": quality.records, "persons": quality.persons, "link_rates": quality.link_rates,
               "estimated_quality": quality.estimates,
               "model": result.model.get("model_id") if isinstance(result.model, dict) else str(result.model)}
    (linkage_dir / QUALITY_FILE).write_text(json.dumps(summary, sort_keys=True, default=str), encoding="utf-8")
    queue_path = linkage_dir / "review" / "queue.csv"
    queue_path.parent.mkdir(parents=True, exist_ok=True)
    write_private_file(queue_path, result.review_queue.to_csv(index=False, lineterminator="\n").encode("utf-8"),
                       overwrite=True)  # atomic: a reviewer listing it never reads half a queue
    record_events(
        warehouse.engine(),
        [AuditEvent("linkage_run", context.run.run_id, {
            "model": summary["model"], "model_trained_this_run": trained_now,
            "linkage_key": keyset.purpose_key("linkage").label, "pseudonym_key": keyset.purpose_key("pseudonym").label,
            "source_sha256": sorted(sources), "counts": result.counts, "review_queue": len(result.review_queue),
            "decisions_applied": len(decision_events),
            "decisions_in_force": result.quality.guards.get("decisions_stored", 0),
        }, actor="c2c.linkage"), *decision_events],
        now=dt.datetime.now(dt.timezone.utc),
    )
    k = max((int(a.min_cell_size) for a in partnership.load().agreements.values()), default=1)

    def shown(value: object) -> MetadataValue:  # the UI shows counts only at or above k (SPEC's small-cell rule)
        return MetadataValue.json(publishable_quality(value, k))

    return MaterializeResult(
        check_results=[AssetCheckResult(check_name=names.CHECK_LINKAGE_RAN, passed=True)],
        metadata={
            "model": str(summary["model"]),
            "model_trained_this_run": trained_now,
            "key_ids": MetadataValue.json({"linkage": keyset.purpose_key("linkage").label,
                                           "pseudonym": keyset.purpose_key("pseudonym").label}),
            "records_per_agency": shown(quality.records),
            "persons": shown(quality.persons),
            "link_rates": shown(quality.link_rates),
            "link_rates_by_group": shown(quality.link_rates_by),
            "score_distribution": shown(quality.scores),
            "estimated_quality": shown(quality.estimates),
            "review_queue": len(result.review_queue),
            "history_changes": len(result.history),
            "crosswalk_rows": len(crosswalk),
            "rekeyed_after_rotation": rekeyed,
            "source_sha256": MetadataValue.json(sorted(sources)),
            **_crosswalk_table(len(crosswalk)),
        }
    )
