"""Gather and link: the same child found across agencies from the encodings alone, with persistent child keys.

:func:`gather_linkage_inputs` reads the current linkage encodings of every person extract (linkage area),
re-keyed to the current pseudonym key; :func:`link_persons` runs the trained Fellegi-Sunter model (Splink,
DuckDB in the linkage area) over them and writes the crosswalk ``source_key -> child_key``, the quality
summary and the review queue there (:class:`~data_sharing.linkage.area.LinkageArea`). The warehouse gets
child keys only through this crosswalk; the crosswalk itself never enters the warehouse.

Plain Python (no Dagster): the ``linked_persons`` asset and ``c2c linkage train`` call these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy.engine import Engine

from data_sharing.encodings import rekey_encodings_file
from data_sharing.keys import KeySet
from data_sharing.linkage.area import LinkageArea
from data_sharing.linkage.settings import ConcurrentIds, load_settings
from schemas.partnership import Partnership
from data_sharing.pseudonyms import key_column_names, source_keys_from_tokens
from data_sharing.publication import publishable_quality
from schemas.contracts import ExtractContract
from stages.incremental import LINKAGE_RECORD, forget_record, linkage_fingerprint, linkage_unchanged, record_linkage
from warehouse.audit import AuditEvent, record_events
from warehouse.manifest import ManifestStore

ATTRIBUTES = ("sex", "race_ethnicity", "grade_level", "birth_date_year_month")
STATUS_LINKED = "linked"
STATUS_NO_PEOPLE = "no person extracts yet"
STATUS_SKIPPED = "skipped"
STATUS_UNCHANGED = "unchanged"


@dataclass(frozen=True)
class LinkageInputs:
    """What linkage reads: encodings and attributes by agency, and the files (SHA-256) behind them."""

    records: dict[str, list[pd.DataFrame]]
    attributes: dict[str, pd.DataFrame]
    sources: list[str]


@dataclass(frozen=True)
class LinkageOutcome:
    """One linkage run as the asset, the runner and the CLI read it (counts and ids only, never values)."""

    status: str  # STATUS_LINKED, STATUS_NO_PEOPLE or STATUS_SKIPPED
    reason: str | None = None
    model: str | None = None
    trained_now: bool = False
    key_ids: Mapping[str, str] = field(default_factory=dict)
    shown_quality: Mapping[str, Any] = field(default_factory=dict)  # small cells suppressed (publishable_quality)
    review_queue: int = 0
    history_changes: int = 0
    crosswalk_rows: int = 0
    rekeyed: int = 0
    sources: tuple[str, ...] = ()
    backend: str | None = None  # the linkage backend that scored the pairs (duckdb, spark)

    @property
    def linked(self) -> bool:
        """A crosswalk stands for the current files: linked this night, or unchanged since the last link."""
        return self.status in (STATUS_LINKED, STATUS_UNCHANGED)


def read_staging(path: Path, contract: ExtractContract, keyset: KeySet) -> pd.DataFrame:
    """A staging frame with source keys under the *current* pseudonym key (re-keyed from the id tokens
    after a rotation), without the id tokens (they never enter the warehouse)."""
    table = pq.read_table(path)
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    current = keyset.purpose_key("pseudonym").label
    if meta.get("key_pseudonym") != current:
        for col, key_col in key_column_names(contract, "source_key").items():
            tokens = f"{col}_id_token"
            if tokens in frame.columns and key_col in frame.columns:
                frame[key_col] = source_keys_from_tokens(frame[tokens], keyset).values
    return frame.drop(columns=[c for c in frame.columns if c.endswith("_id_token")])


def _role_attributes(staging: pd.DataFrame, contract: ExtractContract) -> pd.DataFrame:
    """source_key and the ATTRIBUTES, found through the contract's role fields (any column names)."""
    from schemas.roles import staging_column

    named = {"birth_year_month": "birth_date_year_month"}  # the role field -> the attribute's name
    rename = {staging_column(contract, col): named.get(f, f) for f, col in contract.role_fields.items()}
    frame = staging.rename(columns={k: v for k, v in rename.items() if v in ATTRIBUTES and k in staging.columns})
    return frame[["source_key", *[c for c in ATTRIBUTES if c in frame.columns]]]


def _current_entries(snapshot: dict, agency: str, extract: str) -> list:  # type: ignore[type-arg]
    """The distinct manifest entries of one extract's current snapshot (an entry may own several periods)."""
    return list({e.id: e for e in snapshot.get((agency, extract), {}).values()}.values())


def _period_attributes(
    snapshot: dict, partnership: Partnership, keyset: KeySet, area: LinkageArea,  # type: ignore[type-arg]
    periods: Sequence[ConcurrentIds], attributes: dict[str, list[pd.DataFrame]],
) -> None:
    """Add each ``guards.concurrent_ids`` source's rows (source_key, value) to its agency's attributes."""
    from data_sharing.linkage.guards import period_rows

    by_extract = {(t.agency, t.extract): t.contract for t in partnership}
    for ci in periods:
        if ci.source is None or ci.agency not in attributes or (ci.agency, ci.source.extract) not in by_extract:
            continue
        contract = by_extract[(ci.agency, ci.source.extract)]
        key_col = next(iter(key_column_names(contract, "source_key").values()), None)
        for entry in _current_entries(snapshot, ci.agency, ci.source.extract):
            staging_path = area.staging(entry)
            if not staging_path.exists():
                continue
            staging = read_staging(staging_path, contract, keyset)
            if key_col not in staging.columns or any(c not in staging.columns for c in ci.source.columns):
                continue
            attributes[ci.agency].append(period_rows(staging, staging[key_col], ci.source.columns, ci.attribute))


def gather_linkage_inputs(
    store: ManifestStore, partnership: Partnership, keyset: KeySet, area: LinkageArea | Path,
    periods: Sequence[ConcurrentIds] = (),
) -> LinkageInputs:
    """Encodings and attributes by agency, and the source files, of every current person extract.

    ``periods``: the settings' ``guards.concurrent_ids``; those with a ``source`` add their attribute's
    rows (source_key, value) from that agency's event extract to the agency's attributes. A current
    file without its encodings raises :class:`~data_sharing.linkage.area.MissingArtifactError`."""
    area = LinkageArea.of(area)
    snapshot = store.current_snapshot()
    records: dict[str, list[pd.DataFrame]] = {}
    attributes: dict[str, list[pd.DataFrame]] = {}
    sources: list[str] = []
    for terms in partnership:
        contract = terms.contract
        if not contract.describes_people:
            continue
        key_cols = list(key_column_names(contract, "source_key").values())
        for entry in _current_entries(snapshot, terms.agency, terms.extract):
            encodings_path = area.require(area.encodings(entry), "linkage encodings", entry.rel_path)
            rekey_encodings_file(encodings_path, keyset)  # a rotated (or absent) hub-only layer: re-encode first
            encodings = pq.read_table(encodings_path).to_pandas(types_mapper=pd.ArrowDtype)
            staging = read_staging(area.staging(entry), contract, keyset).set_index("row_number")
            # source keys under the current pseudonym key (a rotation re-keys them from the id tokens)
            for col in key_cols:
                if col in encodings.columns and col in staging.columns:
                    encodings[col] = staging[col].reindex(encodings["row_number"].to_numpy()).to_numpy()
            records.setdefault(terms.agency, []).append(encodings)
            attributes.setdefault(terms.agency, []).append(_role_attributes(staging.reset_index(), contract))
            sources.append(str(entry.sha256))
    _period_attributes(snapshot, partnership, keyset, area, periods, attributes)
    joined = {a: pd.concat(f, ignore_index=True) for a, f in attributes.items()}
    return LinkageInputs(records, joined, sources)


def rotation_mapping(
    store: ManifestStore, partnership: Partnership, keyset: KeySet, area: LinkageArea | Path, old_label: str
) -> pd.DataFrame:
    """old source key -> new source key for every current person record, from the id tokens kept in staging."""
    area = LinkageArea.of(area)
    old_version = int(old_label.split("/")[1].lstrip("v"))
    snapshot = store.current_snapshot()
    pairs = []
    for terms in partnership:
        if not terms.contract.describes_people:
            continue
        for entry in _current_entries(snapshot, terms.agency, terms.extract):
            staging = pq.read_table(area.staging(entry)).to_pandas(types_mapper=pd.ArrowDtype)
            for col in terms.contract.id_columns:
                tokens = staging.get(f"{col}_id_token")
                if tokens is None:
                    continue
                tokens = tokens.dropna().drop_duplicates()
                pairs.append(pd.DataFrame({
                    "old_source_key": source_keys_from_tokens(tokens, keyset, version=old_version).to_numpy(),
                    "new_source_key": source_keys_from_tokens(tokens, keyset).to_numpy(),
                }))
    if not pairs:
        return pd.DataFrame(columns=["old_source_key", "new_source_key"])
    return pd.concat(pairs, ignore_index=True).drop_duplicates()


@dataclass(frozen=True)
class TrainedModel:
    model_id: str
    files: int  # the current files it was trained on


def train(store: ManifestStore, partnership: Partnership, keyset: KeySet, area: LinkageArea | Path) -> TrainedModel | None:
    """``c2c linkage train``: a model trained on the current person extracts and saved in the area (the
    nightly run uses the newest), or None when no person extract has been taken in yet."""
    from data_sharing.linkage import train_model

    inputs = gather_linkage_inputs(store, partnership, keyset, area)
    if not inputs.records:
        return None
    model = train_model(inputs.records, load_settings(partnership.linkage_settings_path), workdir=LinkageArea.of(area))
    return TrainedModel(model.model_id, len(inputs.sources))


def _model(records: Mapping[str, list[pd.DataFrame]], settings: Any, area: LinkageArea) -> tuple[Any, bool]:
    """(the newest saved model, False), else (one trained now on ``records``, True)."""
    from data_sharing.linkage import load_model, train_model

    path = area.latest_model()
    if path is None:
        return train_model(records, settings, workdir=area), True
    return load_model(path), False


def _carry_over_rotation(store: ManifestStore, partnership: Partnership, keyset: KeySet, area: LinkageArea) -> int:
    """After a pseudonym-key rotation the same people arrive under new source keys: carry the linkage
    state over first, so every child keeps its child_key. Returns the number of source keys re-keyed."""
    from data_sharing.linkage import rekey_state

    previous, current = area.linkage_keys.label(), keyset.purpose_key("pseudonym").label
    if not previous or previous == current:
        return 0
    mapping = rotation_mapping(store, partnership, keyset, area, previous)
    return rekey_state(area, mapping, label=f"{previous} -> {current}")


def _link_with_decisions(inputs: LinkageInputs, model: Any, area: LinkageArea, run_id: str) -> tuple[Any, list[AuditEvent]]:
    """Link, applying reviewers' pending decisions (review/decisions.csv, `c2c linkage review decide|import`):
    claimed under the review lock (one written meanwhile waits for the next run), stored in the linkage
    state and applied by this and every later run; put back as pending if the run fails. Returns the
    result and one audit event per newly stored decision."""
    from data_sharing.linkage import link
    from data_sharing.linkage.review import audit_details, claim_pending, pair_subject, recorded_by_run, settle_claim

    run_tag = run_id[:8]
    claimed = claim_pending(area, run_tag)
    try:
        decisions = pd.read_csv(claimed, dtype=str) if claimed is not None else None
        result = link(inputs.records, model, workdir=area, run_id=run_id, decisions=decisions, attributes=inputs.attributes)
    except BaseException:
        if claimed is not None:
            settle_claim(claimed, run_tag, applied=False)
        raise
    if claimed is None:
        return result, []
    applied = recorded_by_run(result.database, run_id)
    claimed = settle_claim(claimed, run_tag, applied=True)
    # each pair's entry (subject) pairs with the clerk's `review_decision_recorded` entry; decisions
    # stored earlier keep applying (counted in linkage_run)
    return result, [
        AuditEvent("review_decision_applied", pair_subject(str(d["source_key_l"]), str(d["source_key_r"])), d, actor="c2c.linkage")
        for d in audit_details(applied, recorded_run=run_id, file=claimed.name)
    ]


def _write_products(area: LinkageArea, result: Any, pseudonym_label: str) -> dict[str, Any]:
    """The run's crosswalk, quality summary and review queue into the area (each replaced atomically);
    returns the quality summary."""
    area.linkage_keys.record(pseudonym_label)
    area.write_crosswalk(result.crosswalk[["source_key", "child_key"]])
    quality = result.quality
    summary = {"records": quality.records, "persons": quality.persons, "link_rates": quality.link_rates,
               "estimated_quality": quality.estimates, "backend": quality.backend,
               "model": result.model.get("model_id") if isinstance(result.model, dict) else str(result.model)}
    area.write_quality(summary)
    area.write_queue(result.review_queue)
    return summary


def _shown_quality(quality: Any, partnership: Partnership) -> dict[str, Any]:
    """The run's quality figures with counts shown only at or above k (SPEC's small-cell rule)."""
    k = max((int(a.min_cell_size) for a in partnership.agreements.values()), default=1)
    figures = {"records_per_agency": quality.records, "persons": quality.persons, "link_rates": quality.link_rates,
               "link_rates_by_group": quality.link_rates_by, "score_distribution": quality.scores,
               "estimated_quality": quality.estimates}
    return {name: publishable_quality(value, k) for name, value in figures.items()}


def _unchanged(store: ManifestStore, area: LinkageArea, partnership: Partnership, keyset: KeySet) -> LinkageOutcome:
    """No file linkage reads changed (nor the model, keys, settings or reviewers' decisions): the crosswalk
    stands as the last run left it, with its quality summary."""
    stored = area.read_quality() or {}
    k = max((int(a.min_cell_size) for a in partnership.agreements.values()), default=1)
    shown = {name: publishable_quality(stored[key], k) for name, key in (
        ("records_per_agency", "records"), ("persons", "persons"), ("link_rates", "link_rates"),
        ("estimated_quality", "estimated_quality")) if key in stored}
    crosswalk = area.read_crosswalk()
    snapshot = store.current_snapshot()
    sources = sorted(str(e.sha256) for t in partnership if t.contract.describes_people
                     for e in _current_entries(snapshot, t.agency, t.extract))
    return LinkageOutcome(
        STATUS_UNCHANGED, reason="no file linkage reads has changed since the last run: the crosswalk stands",
        model=str(stored.get("model")), shown_quality=shown, crosswalk_rows=0 if crosswalk is None else len(crosswalk),
        backend=stored.get("backend"),
        key_ids={"linkage": keyset.purpose_key("linkage").label, "pseudonym": keyset.purpose_key("pseudonym").label},
        sources=tuple(sources),
    )


def link_persons(
    store: ManifestStore, partnership: Partnership, keyset: KeySet, area: LinkageArea, engine: Engine, run_id: str,
    *, now: dt.datetime | None = None,
) -> LinkageOutcome:
    """The nightly linkage: gather, (train or) load the model, carry a rotation over, link with the pending
    decisions, write the area's products and record the run (and the applied decisions) in the audit log."""
    from data_sharing.linkage import LinkageInputError

    settings = load_settings(partnership.linkage_settings_path)  # the partnership's (agency ids in guards)
    guard_sources = [(ci.agency, ci.source.extract) for ci in settings.guards.concurrent_ids if ci.source and ci.agency]
    fingerprint = linkage_fingerprint(store, partnership, keyset, guard_sources)
    if linkage_unchanged(area, fingerprint):
        return _unchanged(store, area, partnership, keyset)
    forget_record(area, LINKAGE_RECORD)  # a failed link leaves nothing to compare with: the next night links
    inputs = gather_linkage_inputs(store, partnership, keyset, area, periods=settings.guards.concurrent_ids)
    if not inputs.records:
        return LinkageOutcome(STATUS_NO_PEOPLE, reason=STATUS_NO_PEOPLE)
    try:
        model, trained_now = _model(inputs.records, settings, area)
    except (LinkageInputError, ValueError) as exc:
        # A new hub with a handful of records (or records too alike to estimate from): no model can be
        # trained yet. Nothing is linked (records stay keyed by source_key), the check warns, and the next
        # nightly run tries again. Messages here carry counts, never values.
        return LinkageOutcome(STATUS_SKIPPED, reason=f"no linkage model could be trained yet: {type(exc).__name__}: {str(exc)[:300]}")
    rekeyed = 0 if trained_now else _carry_over_rotation(store, partnership, keyset, area)
    result, decision_events = _link_with_decisions(inputs, model, area, run_id)
    key_ids = {"linkage": keyset.purpose_key("linkage").label, "pseudonym": keyset.purpose_key("pseudonym").label}
    summary = _write_products(area, result, key_ids["pseudonym"])
    record_events(
        engine,
        [AuditEvent("linkage_run", run_id, {
            "model": summary["model"], "model_trained_this_run": trained_now, "backend": result.quality.backend,
            "linkage_key": key_ids["linkage"], "pseudonym_key": key_ids["pseudonym"],
            "source_sha256": sorted(inputs.sources), "counts": result.counts, "review_queue": len(result.review_queue),
            "decisions_applied": len(decision_events),
            "decisions_in_force": result.quality.guards.get("decisions_stored", 0),
        }, actor="c2c.linkage"), *decision_events],
        now=now or dt.datetime.now(dt.timezone.utc),
    )
    record_linkage(area, fingerprint)
    return LinkageOutcome(
        STATUS_LINKED, model=str(summary["model"]), trained_now=trained_now, key_ids=key_ids,
        shown_quality=_shown_quality(result.quality, partnership), review_queue=len(result.review_queue),
        history_changes=len(result.history), crosswalk_rows=len(result.crosswalk), rekeyed=rekeyed,
        sources=tuple(sorted(inputs.sources)), backend=result.quality.backend,
    )
