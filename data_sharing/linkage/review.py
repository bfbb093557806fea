"""Clerical review: the pseudonymous queue a run produces and the decisions reviewers send back.

**Queue** (one row per pair of source keys, the latest run's only; in the state's ``review_queue``):
``source_key_l`` < ``source_key_r``, both agencies, the match probability and weight, the
``reason`` it is queued, ``levels`` (JSON: comparison -> level name, e.g. ``{"first_name": "close",
"birth_date": "exact", ...}``), ``weights`` (JSON: comparison -> match weight of that level) and the run
that first queued it. No identifier, encoding or hash value is ever in it: a reviewer with access to
the source systems looks the two records up by source key through the agencies' own channels.

Reasons: ``score_band`` (lower <= probability < upper), ``possible_sibling`` (the sibling guard:
first names disagree while surname and birth date agree), ``conflict_within_agency`` (would put two
ids of one agency in one person without direct evidence), ``conflict_birth_years`` (would put a
parent's and a child's records together), ``decision_conflict`` (contradicts a recorded decision).

**Decisions** (:func:`validate_decisions`): a frame with ``source_key_l``, ``source_key_r``,
``decision`` (``match`` / ``non_match``), ``decided_by``, ``decided_at`` (ISO 8601) and optionally
``reason``. They are stored (append-only) and applied by every later run: the latest decision on a
pair wins; a ``match`` forces the link (guards do not undo a reviewer), a ``non_match`` forbids the two
from ever sharing a child key (directly or through others).
"""

from __future__ import annotations

import re

import pandas as pd

DECISIONS = ("match", "non_match")
DECISION_COLUMNS = ("source_key_l", "source_key_r", "decision", "decided_by", "decided_at", "reason")
QUEUE_REASONS = ("score_band", "possible_sibling", "conflict_within_agency", "conflict_birth_years",
                 "decision_conflict")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class DecisionError(ValueError):
    """Review decisions that cannot be applied; the message names rows by position, never by value."""


def _rows(mask: pd.Series) -> str:
    pos = [int(i) for i in mask.to_numpy().nonzero()[0][:5]]
    more = int(mask.sum()) - len(pos)
    return ", ".join(map(str, pos)) + (f" and {more} more" if more > 0 else "")


def validate_decisions(decisions: pd.DataFrame | None) -> pd.DataFrame:
    """Check reviewers' decisions; returns them normalised (pair ordered l < r, decided_at as UTC ISO)."""
    if decisions is None or len(decisions) == 0:
        return pd.DataFrame(columns=list(DECISION_COLUMNS))
    missing = [c for c in DECISION_COLUMNS if c != "reason" and c not in decisions.columns]
    if missing:
        raise DecisionError(f"decisions lack column(s) {', '.join(missing)}")
    d = decisions.reset_index(drop=True).copy()
    if "reason" not in d.columns:
        d["reason"] = None
    for col in ("source_key_l", "source_key_r"):
        s = d[col].astype("string").str.strip().str.lower()
        bad = ~s.fillna("").str.match(_HEX64.pattern)
        if bad.any():
            raise DecisionError(f"decisions: {col} is not a 64-hex source key in row(s) {_rows(bad)}")
        d[col] = s.astype(str)
    same = d.source_key_l == d.source_key_r
    if same.any():
        raise DecisionError(f"decisions: a pair names the same source key twice in row(s) {_rows(same)}")
    dec = d.decision.astype("string").str.strip().str.lower()
    bad = ~dec.isin(DECISIONS).fillna(False).astype(bool)
    if bad.any():
        raise DecisionError(f"decisions: decision must be one of {', '.join(DECISIONS)} in row(s) {_rows(bad)}")
    d["decision"] = dec.astype(str)
    who = d.decided_by.astype("string").str.strip()
    bad = who.isna() | (who == "") | (who.str.len() > 200)
    if bad.any():
        raise DecisionError(f"decisions: decided_by must name the reviewer (1-200 characters) in row(s) {_rows(bad)}")
    d["decided_by"] = who.astype(str)
    when = pd.to_datetime(d.decided_at, utc=True, errors="coerce", format="mixed")
    bad = when.isna()
    if bad.any():
        raise DecisionError(f"decisions: decided_at is not an ISO 8601 date-time in row(s) {_rows(bad)}")
    d["decided_at"] = when.dt.strftime("%Y-%m-%dT%H:%M:%S%z").astype(str)
    reason = d.reason.astype("string")
    bad = reason.str.len().fillna(0) > 1000
    if bad.any():
        raise DecisionError(f"decisions: reason longer than 1000 characters in row(s) {_rows(bad)}")
    d["reason"] = reason.astype(object).where(reason.notna(), None)
    lo = d[["source_key_l", "source_key_r"]].min(axis=1)
    hi = d[["source_key_l", "source_key_r"]].max(axis=1)
    d["source_key_l"], d["source_key_r"] = lo, hi
    return d[list(DECISION_COLUMNS)]


def merge_decisions(stored: pd.DataFrame, new: pd.DataFrame, *, run_id: str, seq: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows to append to the stored log, the effective decision per pair after appending).

    A decision already in the log (same pair, decision, reviewer and time) is not stored twice.
    """
    new = new.copy()
    new["recorded_run"] = run_id
    new["recorded_seq"] = seq
    key = ["source_key_l", "source_key_r", "decision", "decided_by", "decided_at"]
    if len(stored) and len(new):
        seen = stored[key].astype(str).agg("\x1f".join, axis=1)
        mine = new[key].astype(str).agg("\x1f".join, axis=1)
        new = new[~mine.isin(set(seen))]
    new = new.drop_duplicates(key)
    log = pd.concat([stored, new], ignore_index=True) if len(stored) else new.reset_index(drop=True)
    if len(log) == 0:
        return new, log
    log = log.assign(_pos=range(len(log)))
    eff = log.sort_values(["source_key_l", "source_key_r", "decided_at", "recorded_seq", "_pos"], kind="stable")
    eff = eff.drop_duplicates(["source_key_l", "source_key_r"], keep="last").drop(columns="_pos")
    return new, eff.reset_index(drop=True)
