"""Clerical review of linkage, for `c2c linkage review list|decide|import|audit` (plain Python, no Dagster):
the latest run's pseudonymous queue with the decisions pending, and reviewers' decisions recorded in the
pending file and the audit log together (or neither). Refusals are ``DecisionError``s whose message says why.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from data_sharing.linkage.review import DECISION_COLUMNS, DECISIONS, QUEUE_REASONS, DecisionError, levels_text

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["DECISIONS", "DECISION_COLUMNS", "QUEUE_REASONS", "DecisionError", "levels_text"]


@dataclass(frozen=True)
class ReviewListing:
    """The queue to show (with each pair's pending decision, or ""), and the counts around it."""

    queue: pd.DataFrame
    total: int
    matching: int
    pending: int


def review_listing(linkage_dir: Path, *, reason: str | None = None, agency: str | None = None,
                   limit: int | None = None) -> ReviewListing:
    """The latest run's review queue, filtered by ``reason`` and ``agency``, at most ``limit`` pairs."""
    from data_sharing.linkage.review import read_pending, read_queue

    queue = read_queue(linkage_dir)
    pending = read_pending(linkage_dir)
    total = len(queue)
    if reason:
        queue = queue[queue.reason == reason]
    if agency:
        queue = queue[(queue.agency_l == agency) | (queue.agency_r == agency)]
    matching = len(queue)
    if limit is not None:
        queue = queue.head(limit)
    queue = queue.reset_index(drop=True)
    decided = pending.drop_duplicates(["source_key_l", "source_key_r"], keep="last").set_index(
        ["source_key_l", "source_key_r"]).decision
    at = pd.MultiIndex.from_arrays([queue.source_key_l, queue.source_key_r])
    queue["pending"] = decided.reindex(at).fillna("").to_numpy() if len(decided) else ""
    return ReviewListing(queue, total, matching, len(pending))


def _os_account() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def record_decisions(linkage_dir: Path, open_engine: Callable[[], Engine], new: pd.DataFrame, *, via: str,
                     allow_unqueued: bool = False, supersede: bool = False,
                     resolve: bool = False) -> tuple[pd.DataFrame, list[Any], int, Path]:
    """Check decisions, then append them to the pending file and the audit log together (or neither).

    ``resolve``: one pair whose source keys may be shortened (at least 12 characters). ``open_engine`` is
    called once the pair is resolved; the engine is disposed of here. Returns (decisions, audit entries,
    decisions pending, the pending file)."""
    from sqlalchemy.orm import Session

    from data_sharing.linkage.review import (
        audit_details,
        check_new_decisions,
        known_source_keys,
        locked_pending,
        pair_subject,
        read_queue,
        resolve_source_key,
    )
    from warehouse.audit import AuditEvent, append_events

    queue = read_queue(linkage_dir)
    known = known_source_keys(linkage_dir) if allow_unqueued else None
    if resolve:
        candidates = pd.Index(pd.concat([queue.source_key_l, queue.source_key_r]).astype(str))
        if known is not None:
            candidates = candidates.append(known.astype(str))
        new = new.assign(source_key_l=resolve_source_key(new.source_key_l.iloc[0], candidates, which="first"),
                         source_key_r=resolve_source_key(new.source_key_r.iloc[0], candidates, which="second"))
    engine = open_engine()
    account = _os_account()
    try:
        with locked_pending(linkage_dir) as pending:
            decisions = check_new_decisions(new, queue=queue, pending=pending.frame, known=known,
                                            allow_unqueued=allow_unqueued, supersede=supersede)
            events = [AuditEvent("review_decision_recorded", pair_subject(str(d["source_key_l"]), str(d["source_key_r"])), d,
                                 actor="c2c.review")
                      for d in audit_details(decisions, queue=queue, via=via, os_account=account)]
            with Session(engine) as session, session.begin():  # the file is restored if the commit fails
                entries = append_events(session, events)
                waiting = pending.append(decisions)
    finally:
        engine.dispose()
    return decisions, entries, waiting, pending.path


def audit_summary(linkage_dir: Path) -> str:
    """Estimated precision (95% interval) from decisions on the queue's audit sample."""
    from data_sharing.linkage.queue import audit_summary as _summary

    return _summary(linkage_dir)
