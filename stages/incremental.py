"""Incremental nights: what each cross-agency stage read last time, so a night redoes only what changed.

Three records, each written only after its stage succeeded. The first two are removed before their stage
changes anything, so a failed or interrupted stage leaves nothing to compare with and the next night redoes
it in full; the third names its release and counts only while that release is current:

* ``linkage_inputs.json``: the fingerprint of everything linkage reads (:func:`linkage_fingerprint`: the
  current files of the person extracts and of the extracts the guards read, the key ids, the linkage
  settings, c2c's version) and the model it used. Linkage reads no other extract, so a night that brings
  only an event extract (attendance) keeps the crosswalk and does not re-link.
* ``warehouse_crosswalk.json``: the SHA-256 of the crosswalk the warehouse tables were last linked with;
  while it stands, tables whose files did not change are left alone (no re-read, no relink).
* ``release_inputs.json``: the release last published and, per warehouse table, the state it was
  computed from (:func:`warehouse.releases.table_states`: its files, and the crosswalk, pseudonym key and
  c2c version its rows and indicators were made under); the next release recomputes only the indicators
  whose definitions (version, file, k) or tables read changed and copies the others' rows from that release.

The records hold ids, SHA-256s, key ids and version numbers only: no value, no key. They live in the
linkage area next to the other stage records (``warehouse_state.json``, ``linkage_keys.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from data_sharing.keys import KeySet
from data_sharing.linkage.area import LinkageArea
from schemas.partnership import Partnership
from warehouse.manifest import ManifestStore

LINKAGE_RECORD = "linkage_inputs.json"
CROSSWALK_RECORD = "warehouse_crosswalk.json"
RELEASE_RECORD = "release_inputs.json"


def c2c_version() -> str:
    try:
        return metadata.version("c2c")
    except metadata.PackageNotFoundError:
        return "unknown"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def file_sha256(path: Path) -> str | None:
    """SHA-256 of a file's bytes (None when it does not exist)."""
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_record(area: LinkageArea, name: str) -> dict[str, Any] | None:
    try:
        value = json.loads((area.root / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_record(area: LinkageArea, name: str, value: Mapping[str, Any]) -> None:
    """Replace the record atomically (a temporary file and a rename)."""
    path = area.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dict(value), sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def forget_record(area: LinkageArea, name: str) -> None:
    (area.root / name).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# Linkage


def linkage_extracts(partnership: Partnership, guard_sources: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """The extracts linkage reads: every person extract (the contracts say which) and the event extracts
    the linkage settings' guards take periods from (``guards.concurrent_ids[].source``)."""
    people = {(t.agency, t.extract) for t in partnership if t.contract.describes_people}
    return sorted(people | set(guard_sources))


def snapshot_of(store: ManifestStore, extracts: Iterable[tuple[str, str]]) -> dict[str, list[list[Any]]]:
    """The current files (period, SHA-256) of ``extracts``."""
    snapshot = store.current_snapshot()
    return {
        f"{agency}/{extract}": sorted([str(period), str(e.sha256)] for period, e in snapshot.get((agency, extract), {}).items())
        for agency, extract in extracts
    }


def linkage_fingerprint(store: ManifestStore, partnership: Partnership, keyset: KeySet,
                        guard_sources: Iterable[tuple[str, str]] = ()) -> str:
    """Everything the nightly linkage reads but the model and reviewers' decisions, as one SHA-256."""
    return _digest({
        "snapshot": snapshot_of(store, linkage_extracts(partnership, guard_sources)),
        "keys": {p: keyset.purpose_key(p).label for p in ("linkage", "pseudonym")},
        "settings": file_sha256(Path(partnership.linkage_settings_path)),
        "contracts": _digest({f"{t.agency}/{t.extract}": t.contract.model_dump(mode="json") for t in partnership
                              if t.contract.describes_people}),
        "c2c_version": c2c_version(),
    })


def linkage_unchanged(area: LinkageArea, fingerprint: str) -> bool:
    """Whether the crosswalk in the area was made from exactly these inputs, with the model that would be
    used now, and no reviewer's decision waits: linkage would give the same crosswalk."""
    record = read_record(area, LINKAGE_RECORD)
    latest = area.latest_model()
    return (
        record is not None and record.get("inputs") == fingerprint and latest is not None
        and record.get("model") == latest.name and area.crosswalk.is_file()
        and not area.pending_decisions.is_file()
    )


def record_linkage(area: LinkageArea, fingerprint: str) -> None:
    latest = area.latest_model()
    write_record(area, LINKAGE_RECORD, {"inputs": fingerprint, "model": latest.name if latest else None})


# --------------------------------------------------------------------------------------------------
# Warehouse tables and releases


def crosswalk_state(area: LinkageArea) -> str | None:
    return file_sha256(area.crosswalk)


__all__ = [
    "CROSSWALK_RECORD", "c2c_version", "LINKAGE_RECORD", "RELEASE_RECORD", "crosswalk_state", "file_sha256", "forget_record",
    "linkage_extracts", "linkage_fingerprint", "linkage_unchanged", "read_record", "record_linkage", "snapshot_of",
    "write_record",
]
