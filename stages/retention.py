"""Retention: destroy raw landing files past their MOU's ``raw_retention_days``, with evidence in the audit log.

The pipeline goes on from the pseudonymous records in the linkage area.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from data_sharing.landing import DestructionEvidence, destroy_expired, retention_rules
from warehouse.audit import AuditEvent, record_events

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from data_sharing.partnership import Partnership


@dataclass(frozen=True)
class RetentionResult:
    """What one pass destroyed (evidence: file, SHA-256, size, when, which rule) under which rules."""

    evidence: tuple[DestructionEvidence, ...]
    rules: Mapping[str, str] = field(default_factory=dict)  # agency -> the rule's label

    @property
    def files_destroyed(self) -> int:
        return len(self.evidence)

    @property
    def bytes_destroyed(self) -> int:
        return sum(e.size or 0 for e in self.evidence)

    @property
    def records(self) -> list[dict]:
        return [e.as_record() for e in self.evidence]


def destroy_raw(landing: Path, partnership: Partnership, engine: Engine, *, now: dt.datetime | None = None) -> RetentionResult:
    """Destroy the expired raw files of every agency and write one ``raw_destroyed`` audit entry for each."""
    rules = retention_rules(partnership.agreements)
    at = now or dt.datetime.now(dt.timezone.utc)
    evidence = destroy_expired(landing, rules, now=lambda: at)
    events = [AuditEvent("raw_destroyed", e.file, e.as_record(), actor="c2c.retention") for e in evidence]
    record_events(engine, events, now=at)
    return RetentionResult(tuple(evidence), {a: r.label for a, r in rules.items()})
