"""The hub's own work in plain Python (no Dagster), for the doors (`c2c`, the cron runner): the key set,
the warehouse (open, migrate, grant), the manifest, the hub's status, the audit log and its key, and what
agencies run before dropping a file (tokenize, check-extract).

The doors parse arguments, print and choose exit codes; these functions take plain values (paths, URLs,
an engine, a partnership) and return what the doors print. Errors are the layers' own (:mod:`stages.errors`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data_sharing.errors import KeyMaterialError
from data_sharing.keys import ENV_VAR, PURPOSES, KeySet, export_linkage_key, hub_holds_data, init_hub_keyset, init_keyset, key_error_hint, load_keyset
from warehouse.audit import AuditEntry, AuditEvent, AuditKeys, VerifyResult, export_csv, read_entries, record_events, set_key_provider, verify, warehouse_id

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import Engine

    from data_sharing.partnership import Partnership
    from data_sharing.validation.check import CheckReport
    from warehouse.access import AccessReport
    from warehouse.manifest import ManifestEntry, ManifestStore
    from warehouse.releases import ReleaseInfo

__all__ = ["KEY_ENV_VAR", "PURPOSES", "KeySet"]
# Imported on every `c2c` command (the audit key): the key layer and the audit log at the top, the rest
# (the warehouse's migrations, the manifest, the drop folder) only in the functions that use them.

KEY_ENV_VAR = ENV_VAR
"""The environment variable that may hold the master key instead of the key file."""


# --------------------------------------------------------------------------------------------------
# the key set


def load_keys(key_file: Path, env: Mapping[str, str] | None = None) -> KeySet:
    """The hub's key set (the key file, or the master key in ``env``); :class:`KeyMaterialError` if it cannot be used."""
    return load_keyset(key_file, env=env)


def key_labels(key_file: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each purpose's current key id (never a key)."""
    return load_keyset(key_file, env=env).key_labels()


def init_keys(key_file: Path, landing_dir: Path, linkage_dir: Path, *, force: bool = False) -> KeySet:
    """A new hub's key set (0600); refused where the hub already holds data unless ``force``."""
    return init_hub_keyset(key_file, landing_dir, linkage_dir, force=force)


def create_keys(key_file: Path) -> KeySet:
    """A new key set at ``key_file`` (0600) with no check for data (the demo's own hub)."""
    return init_keyset(key_file)


def rotate_keys(key_file: Path, env: Mapping[str, str] | None, purposes: Iterable[str] = PURPOSES) -> KeySet:
    """Start a new key version for ``purposes``; the next run re-keys pseudonyms through the crosswalk."""
    keyset = load_keyset(key_file, env=env)
    keyset.rotate(tuple(purposes))  # type: ignore[arg-type]
    return keyset


def export_linkage(key_file: Path, env: Mapping[str, str] | None, out: Path) -> tuple[KeySet, str]:
    """Write the linkage key for agencies that tokenize at source (0600); the key set and the key's id."""
    keyset = load_keyset(key_file, env=env)
    return keyset, export_linkage_key(keyset, out).label


def restore_hint(landing_dir: Path, linkage_dir: Path) -> str | None:
    """Where the hub already holds data: how to restore its key set (a new one cannot read it); else None."""
    if hub_holds_data(landing_dir, linkage_dir):
        return key_error_hint(landing_dir, linkage_dir)
    return None


def keyset_problem(key_file: Path, env: Mapping[str, str] | None, landing_dir: Path, linkage_dir: Path) -> str | None:
    """Why a run cannot start for want of keys (with the hint what to do), or None when the key set loads."""
    try:
        load_keyset(key_file, env=env)
    except KeyMaterialError as exc:
        return f"{exc} ({key_error_hint(landing_dir, linkage_dir)})"
    return None


def register_audit_key(key_file: str | Path, warehouse_url: str, warehouse_schema: str | None = None,
                       key_env: Mapping[str, str] | None = None) -> None:
    """Key the audit chain of this warehouse with the hub's ``audit`` key (loaded on each append, so a
    rotation takes effect at once; no key available means unkeyed, which a keyed log refuses)."""

    def provider() -> AuditKeys | None:
        try:
            keyset = load_keyset(Path(key_file), env=key_env)
        except KeyMaterialError:
            return None
        versions = [keyset.purpose_key("audit", v) for v in keyset.purpose_versions("audit")]
        return AuditKeys(keyset.purpose_key("audit").label, {k.label: k.secret for k in versions})

    set_key_provider(provider, warehouse=warehouse_id(warehouse_url, warehouse_schema))


# --------------------------------------------------------------------------------------------------
# the warehouse, the manifest and the audit log


def warehouse_engine(url: str, schema: str | None = None) -> Engine:
    """An engine on the warehouse (not migrated: :func:`upgrade_warehouse`)."""
    from warehouse.db import make_engine

    return make_engine(url, schema)


def upgrade_warehouse(engine: Engine) -> None:
    """Apply the warehouse migrations (Alembic) up to head."""
    from warehouse.db import upgrade

    upgrade(engine)


def open_engine(url: str, schema: str | None = None) -> Engine:
    """An engine on the warehouse, migrated to head."""
    from warehouse.db import make_engine, upgrade

    engine = make_engine(url, schema)
    upgrade(engine)
    return engine


def warehouse_revision(engine: Engine) -> str | None:
    from warehouse.db import current_revision

    return current_revision(engine)


def manifest_store(engine: Engine) -> ManifestStore:
    from warehouse.manifest import ManifestStore

    return ManifestStore(engine)


def manifest_entries(engine: Engine, *, agency: str | None = None, status: str | None = None) -> list[ManifestEntry]:
    """Every file received (of ``agency``), optionally only those with ``status``."""
    from warehouse.manifest import ManifestStore

    entries = ManifestStore(engine).entries(agency=agency)
    return [e for e in entries if e.status == status] if status else entries


def record_audit(engine: Engine, events: Iterable[tuple[str, str, Mapping[str, Any]]], *, actor: str) -> list[AuditEntry]:
    """Append ``(action, subject, details)`` events to the audit log (one transaction)."""
    return record_events(engine, [AuditEvent(action, subject, dict(details), actor=actor) for action, subject, details in events])


def verify_audit(engine: Engine, expected_head: tuple[int, str] | None = None) -> VerifyResult:
    """Walk the hash chain (and, given one, check the head recorded earlier)."""
    return verify(engine, expected_head=expected_head)


def export_audit(engine: Engine, start: dt.datetime | None = None, end: dt.datetime | None = None) -> str:
    """The entries from ``start`` (inclusive) to ``end`` (exclusive) as CSV for an auditor."""
    return export_csv(read_entries(engine, start=start, end=end))


def grant_tiers(engine: Engine, partnership: Partnership) -> AccessReport:
    """Create/refresh the public and partners access tiers from the MOUs (PostgreSQL)."""
    from warehouse.access import grant_access_tiers

    return grant_access_tiers(engine, partnership)


# --------------------------------------------------------------------------------------------------
# c2c status


@dataclass(frozen=True)
class DropWaiting:
    """Complete files in the drop folder not yet taken in, files still being written, and refused files
    left there as they were (reported as refused every night until the agency replaces or removes them)."""

    new: int
    being_written: int
    refused: int = 0


def drop_waiting(drop_dir: Path, store: ManifestStore) -> DropWaiting:
    """A quick look at the drop folder (30 s at most; a file unchanged for 2 s counts as complete)."""
    from data_sharing.dropfolder import scan_drop_folder
    from data_sharing.intake import escape_name

    scan = scan_drop_folder(drop_dir, None, time_budget_s=30.0, max_ready=10**6, settle_s=2.0)
    known = [(r, store.find(escape_name(r.entry.rel_path), r.fingerprint)) for r in scan.ready]
    refused = [r for r, e in known if e is not None and e.status == "refused" and e.marker_sha256 == r.marker_sha256]
    return DropWaiting(sum(1 for _, e in known if e is None), len(scan.waiting), len(refused))


def release_and_audit_head(engine: Engine) -> tuple[ReleaseInfo | None, tuple[int, str] | None]:
    """The current release (None before the first) and the audit log's head (None when empty)."""
    from warehouse.audit import head
    from warehouse.releases import current_release

    return current_release(engine), head(engine)


def current_release_id(engine: Engine) -> int | None:
    """The current release's id (None before the first)."""
    from warehouse.releases import current_release_id as _current

    with engine.connect() as conn:
        return _current(conn)


# --------------------------------------------------------------------------------------------------
# what agencies run before dropping a file


@dataclass(frozen=True)
class Tokenized:
    """`c2c tokenize`'s result: the token table, or the columns the MOU does not permit (nothing tokenized)."""

    key_label: str
    tokens: pd.DataFrame | None = None
    unknown: tuple[str, ...] = ()


def tokenize_extract(input_path: Path, terms: Any, linkage_key: Path) -> Tokenized:
    """Replace the identifiers of the extract at ``input_path`` (under ``terms``, an MOU's terms for one
    extract) with linkage tokens made with the exported key at ``linkage_key``."""
    import pandas as pd

    from data_sharing.intake import read_extract_table
    from data_sharing.keys import load_linkage_key
    from data_sharing.protect import tokenize_frame

    key = load_linkage_key(linkage_key)
    table = read_extract_table(input_path.read_bytes())
    unknown = tuple(c for c in table.column_names if c not in terms.permitted_fields)
    if unknown:
        return Tokenized(key.label, unknown=unknown)
    return Tokenized(key.label, tokens=tokenize_frame(table.to_pandas(types_mapper=pd.ArrowDtype), terms.contract, key))


def check_extract_file(path: Path, agency: str, partnership: Partnership) -> CheckReport:
    """The hub's checks on a file before it is dropped (nothing is written)."""
    from data_sharing.validation import check_extract

    return check_extract(path, agency, partnership)

