"""Intake: receive one dropped file (examine it, land it encrypted, record the decision), and read back
which accepted file holds the current data of every extract.

No value from inside a file reaches a result, a log line or an error message: only drop names, SHA-256s,
counts, reason codes and the reasons the domain wrote for the agency.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data_sharing.dropsafe import DropLimits, Snapshot, unlink_if_same
from data_sharing.intake import MARKER_SUFFIX, Marker, escape_name, examine_drop, parse_drop_name
from warehouse.manifest import ManifestEntry, ManifestStore, RecordOutcome

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from data_sharing.dropfolder import ScanResult
    from data_sharing.keys import KeySet
    from data_sharing.partnership import Partnership
    from schemas.contracts import ExtractContract

WAITING = "waiting"
STILL_BEING_WRITTEN = "still_being_written"
TAKEN_IN = ("accepted", "superseded")


@dataclass(frozen=True)
class DropSite:
    """Where drops arrive and land, what day it is at the hub, and the drop folder's limits."""

    drop: Path
    landing: Path
    today: dt.date
    limits: DropLimits = field(default_factory=DropLimits)
    settle_s: float = 60.0


class StillBeingWritten(Exception):
    """The file changed while it was read or after it was found complete: nothing recorded, left for the next scan."""


@dataclass(frozen=True)
class IntakeResult:
    """One dropped file's intake. ``outcome``: accepted | refused | duplicate | superseded | waiting
    (still being written: nothing recorded, ``entry`` is None)."""

    rel_path: str
    outcome: str
    entry: ManifestEntry | None
    contract: ExtractContract | None = None
    landing_keys: Mapping[str, str] = field(default_factory=dict)
    newly_recorded: bool = False
    superseded: tuple[int, ...] = ()
    already_taken: bool = False
    reason: str | None = None


def drop_rel(drop: Path, path: Path) -> str:
    return os.path.relpath(path, drop).replace(os.sep, "/")


def take_in(
    path: Path, site: DropSite, store: ManifestStore, partnership: Partnership, load_keys: Callable[[], KeySet], *,
    partition_key: str | None, run_id: str | None, expected_sha256: str | None = None,
) -> IntakeResult:
    """Receive the drop at ``path`` (see :func:`receive_drop`); a file already taken in (accepted files
    move into the landing zone) is reported from the manifest, so a re-run goes on from there."""
    rel = escape_name(drop_rel(site.drop, path))
    if not os.path.lexists(path):
        taken = store.latest_for_path(rel)
        if taken is not None and taken.status in TAKEN_IN:
            return IntakeResult(
                taken.rel_path, taken.status, taken, contract_for(partnership, taken),
                landing_keys(site.landing, load_keys, taken), already_taken=True,
            )
    try:
        outcome = receive_drop(path, site, store, partnership, load_keys, partition_key=partition_key, run_id=run_id,
                               expected_sha256=expected_sha256)
    except StillBeingWritten as waiting:
        return IntakeResult(rel, WAITING, None, reason=str(waiting))
    entry = outcome.entry
    refused = (entry.reason or entry.reason_code or "refused") if entry.status == "refused" else None
    return IntakeResult(
        entry.rel_path, entry.status, entry, contract_for(partnership, entry), landing_keys(site.landing, load_keys, entry),
        newly_recorded=outcome.new, superseded=tuple(outcome.superseded), reason=refused,
    )


def receive_drop(
    path: Path,
    site: DropSite,
    store: ManifestStore,
    partnership: Partnership,
    load_keys: Callable[[], KeySet],
    *,
    partition_key: str | None,
    run_id: str | None,
    expected_sha256: str | None = None,
    after_read: Callable[[], None] | None = None,
) -> RecordOutcome:
    """Examine one drop-folder entry, land it encrypted if accepted, record the decision (idempotent).

    The entry is read once, from one descriptor opened without following links (``examine_drop``); the
    bytes landed are the bytes examined. An accepted file moves: it is encrypted into the landing zone and
    checked there before the decision is recorded, and only then removed from the drop folder (with its
    ``.done`` marker), and only if the name still holds that very file. A crash between any two steps
    leaves the file where it was, and the next run finishes the move. Refused files stay. A file that is
    still being written raises :class:`StillBeingWritten`: nothing is recorded, landed or removed.
    """
    from data_sharing.landing import LandingZone

    marker_path = path.with_name(path.name + MARKER_SUFFIX)
    marker = Marker.read(marker_path, drop_root=site.drop) if not path.name.endswith(MARKER_SUFFIX) else None
    rel = drop_rel(site.drop, path)
    named = parse_drop_name(rel)
    decision = examine_drop(
        path,
        site.drop,
        partnership,
        site.today,
        marker=marker,
        previous=store.previous_snapshot(*named) if named else None,
        seen_lookup=lambda sha: store.lookup_content(sha, escape_name(rel)),
        limits=site.limits,
        expected_sha256=expected_sha256,
        settle_s=site.settle_s if expected_sha256 is None else None,  # no scan vouched for it
        after_read=after_read,
    )
    if decision.status == WAITING:
        raise StillBeingWritten(decision.reason)
    known = store.find(decision.rel_path, decision.fingerprint)
    if decision.accepted or (known is not None and known.status in TAKEN_IN):
        assert decision.agency is not None and decision.sha256 is not None and decision.snapshot is not None
        zone = LandingZone(site.landing, load_keys())
        data = decision.snapshot.data
        landed = zone.put(decision.agency, path.name, data)
        if landed.plaintext_sha256 != decision.sha256 or zone.read(landed) != data:
            raise RuntimeError(f"{decision.rel_path} changed while it was being taken in; it will be taken again")
    now = dt.datetime.now(dt.timezone.utc)
    outcome = store.record(decision, now=now, partition_key=partition_key, run_id=run_id)
    if outcome.new and decision.status == "refused" and decision.agency and decision.reason:
        tell_agency(site.drop, store.engine, decision.agency, path.name, decision.reason, now)
    if outcome.entry.status in TAKEN_IN and outcome.entry.sha256 == decision.sha256:
        if decision.snapshot is not None:
            unlink_if_same(site.drop, rel, decision.snapshot)
        if marker is not None and marker.identity is not None:
            unlink_if_same(site.drop, rel + MARKER_SUFFIX, Snapshot(b"", *marker.identity))
    return outcome


def tell_agency(drop: Path, engine: Engine, agency: str, file_name: str, reason: str, now: dt.datetime) -> None:
    """Write the refusal into the agency's feedback folder (best effort: the manifest has it anyway)."""
    try:
        write_agency_feedback(drop, engine, agency, file_name, None, refusal=reason, generated=now)
    except (ValueError, OSError):
        pass


def write_agency_feedback(drop: Path, engine: Engine, agency: str, file_name: str, result: Any, **kw: Any) -> Any:
    """``write_feedback`` through checked descriptors, with an audit entry when the agency's ``feedback``
    had to be replaced by a real folder. None when the agency folder itself is not a real folder."""
    from data_sharing.feedback import FeedbackNotWritten, write_feedback

    try:
        files = write_feedback(drop, agency, file_name, result, **kw)
    except FeedbackNotWritten:
        return None
    audit_feedback_repair(engine, agency, files.replaced, kw.get("generated") or dt.datetime.now(dt.timezone.utc))
    return files


def audit_feedback_repair(engine: Engine, agency: str, replaced: str | None, now: dt.datetime) -> None:
    """An audit entry when the agency's ``feedback`` was a link, not a folder, or someone else's folder."""
    if not replaced:
        return
    from warehouse.audit import AuditEvent, record_events

    event = AuditEvent(
        "feedback_folder_replaced", f"{agency}/feedback",
        {"agency": agency, "found": replaced, "now": "a real folder owned by the hub"}, actor="c2c.intake",
    )
    record_events(engine, [event], now=now)


def contract_for(partnership: Partnership, entry: ManifestEntry) -> ExtractContract | None:
    terms = partnership.terms(entry.agency, entry.extract) if entry.agency and entry.extract else None
    return None if terms is None else terms.contract


def landing_keys(landing: Path, load_keys: Callable[[], KeySet], entry: ManifestEntry) -> dict[str, str]:
    """The id (label) of the key the landed copy is encrypted with; never the key."""
    from data_sharing.landing import LandingZone, read_header

    if entry.status not in TAKEN_IN or not entry.agency or not entry.sha256:
        return {}
    landed = LandingZone(landing, load_keys()).path_for(entry.agency, Path(entry.rel_path).name, entry.sha256)
    return {"landing": read_header(landed).key_label} if landed.exists() else {}


# --------------------------------------------------------------------------------------------------
# The current snapshot


@dataclass(frozen=True)
class CurrentFiles:
    """Which accepted file holds the current data of every agency extract and period, and who is late."""

    snapshot: Mapping[tuple[str, str], Mapping[int | None, ManifestEntry]]
    files: Mapping[int, ManifestEntry]
    status_counts: Mapping[str, int]
    lateness: Mapping[str, dict]
    missing: tuple[str, ...]

    @property
    def late(self) -> dict[str, dict]:
        return {a: v for a, v in self.lateness.items() if v["late"]}

    @property
    def total_rows(self) -> int:
        return sum(e.rows or 0 for e in self.files.values())

    def by_file(self) -> list[tuple[str, str, list[int | None], ManifestEntry]]:
        """(agency, extract, the periods it holds, the file) per current file, in a stable order."""
        out = []
        for (agency, extract), owners in sorted(self.snapshot.items()):
            periods: dict[int, list[int | None]] = {}
            for period, entry in owners.items():
                periods.setdefault(entry.id, []).append(period)
            out += [(agency, extract, held, self.files[entry_id]) for entry_id, held in sorted(periods.items())]
        return out


def current_files(store: ManifestStore, partnership: Partnership, today: dt.date) -> CurrentFiles:
    snapshot = store.current_snapshot()
    files = {e.id: e for owners in snapshot.values() for e in owners.values()}
    missing = tuple(a for a in partnership.agencies if not any(k[0] == a for k in snapshot))
    return CurrentFiles(snapshot, files, store.status_counts(), agency_lateness(snapshot, partnership, today), missing)


def agency_lateness(snapshot: Mapping, partnership: Partnership, today: dt.date) -> dict[str, dict]:
    """Per agency: the newest as-of date among its current files, and whether it is past the MOU's cadence."""
    out: dict[str, dict] = {}
    for agency in partnership.agencies:
        cadence = partnership.agreements[agency].delivery_cadence_days
        dates = [e.as_of_date for (a, _), owners in snapshot.items() if a == agency for e in owners.values() if e.as_of_date]
        newest = max(dates) if dates else None
        age = (today - newest).days if newest else None
        out[agency] = {
            "newest_as_of": newest.isoformat() if newest else None,
            "age_days": age,
            "cadence_days": cadence,
            "late": cadence is not None and (age is None or age > cadence),
        }
    return out


def late_agencies(store: ManifestStore, partnership: Partnership, today: dt.date) -> dict[str, dict]:
    """The agencies past their MOU's delivery cadence (for `c2c status`)."""
    return {a: v for a, v in agency_lateness(store.current_snapshot(), partnership, today).items() if v["late"]}


def scan_drop(drop: Path, limits: DropLimits, *, settle_s: float) -> ScanResult:
    """Every complete file in the drop folder (no time budget, no cap but ``limits``' per-agency-folder
    caps), the files still being written, and the files each agency folder holds over those caps."""
    from data_sharing.dropfolder import scan_drop_folder

    return scan_drop_folder(drop, None, time_budget_s=float("inf"), max_ready=10**9, settle_s=settle_s, limits=limits)


def notify_agency(drop: Path, agency: str, text: str) -> bool:
    """Add ``text`` as a notice to ``agency``'s feedback in the drop folder; False when it cannot be
    written (not an agency id, or not a real folder)."""
    from data_sharing.feedback import write_notice

    try:
        write_notice(drop, agency, text)
    except (ValueError, OSError):
        return False
    return True
