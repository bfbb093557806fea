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
parent's and a child's records together), ``decision_conflict`` (contradicts a recorded decision),
``concurrent_ids`` (would join two ids one agency held at the same time), ``audit`` (an accepted link
drawn at random: its decisions estimate precision, ``c2c linkage review audit``; queue.py caps the rest).

**Decisions** (:func:`validate_decisions`): a frame with ``source_key_l``, ``source_key_r``,
``decision`` (``match`` / ``non_match``), ``decided_by``, ``decided_at`` (ISO 8601) and optionally
``reason``. They are stored (append-only) and applied by every later run: the latest decision on a
pair wins; a ``match`` forces the link (guards do not undo a reviewer), a ``non_match`` forbids the two
from ever sharing a child key (directly or through others).

**Files** (the linkage area, ``$C2C_HOME/linkage``): the nightly run writes the queue to
``review/queue.csv``; reviewers' decisions wait in ``review/decisions.csv`` (*pending*) until the next
run claims the file (renamed to ``decisions.claimed.<run>.csv`` under the review lock, so a decision
written during the run waits for the following one), stores them in the state and renames the claim
to ``decisions.applied.<run>.csv``; a failed run puts the claimed decisions back. Writers of the pending
file (:func:`locked_pending`, the ``c2c linkage review`` commands) take the same lock and replace the
file atomically (mode 0600). :func:`check_new_decisions` holds the clerk-facing rules: a pair must be
in the current queue (or, when allowed, two source keys the last run saw), once per batch, and a pair
with a pending decision is only superseded on purpose, by a later decision.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from data_sharing._files import write_private_file
from data_sharing.linkage.area import LinkageArea

DECISIONS = ("match", "non_match")
DECISION_COLUMNS = ("source_key_l", "source_key_r", "decision", "decided_by", "decided_at", "reason")
QUEUE_REASONS = ("score_band", "possible_sibling", "conflict_within_agency", "conflict_birth_years",
                 "decision_conflict", "concurrent_ids", "audit")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_KEY_PREFIX = re.compile(r"^[0-9a-f]{12,64}$")
QUEUE_COLUMNS = ("run_id", "source_key_l", "source_key_r", "agency_l", "agency_r", "match_probability",
                 "match_weight", "reason", "levels", "weights", "first_queued_run")
FUTURE_TOLERANCE = dt.timedelta(minutes=5)  # a decided_at later than now + this is refused (it would win forever)


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


# ------------------------------------------------------------------------------------------ review files


def read_queue(linkage_dir: LinkageArea | Path) -> pd.DataFrame:
    """The latest run's review queue (``review/queue.csv``), in the run's order (most probable first)."""
    path = LinkageArea.of(linkage_dir).queue
    if not path.is_file():
        raise DecisionError("there is no review queue yet: the nightly run (`c2c run`) writes it once linkage has run")
    queue = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in QUEUE_COLUMNS if c not in queue.columns]
    if missing:
        raise DecisionError(f"{path} is not a review queue (it lacks column(s) {', '.join(missing)})")
    for col in ("match_probability", "match_weight"):
        queue[col] = pd.to_numeric(queue[col], errors="coerce")
    return queue[list(QUEUE_COLUMNS)]


def known_source_keys(linkage_dir: LinkageArea | Path) -> pd.Index:
    """The source keys of the latest run (its crosswalk ``source_key -> child_key``)."""
    import pyarrow.parquet as pq

    path = LinkageArea.of(linkage_dir).crosswalk
    if not path.is_file():
        raise DecisionError("there is no crosswalk yet: the nightly run writes it once linkage has run")
    return pd.Index(pq.read_table(path, columns=["source_key"]).column("source_key").to_pylist())


def levels_text(levels_json: str) -> str:
    """``{"first_name": "close", ...}`` as ``first_name=close, ...`` (comparison order kept)."""
    try:
        levels = json.loads(levels_json)
    except (TypeError, ValueError):
        return "?"
    return ", ".join(f"{k}={v}" for k, v in levels.items())


def resolve_source_key(text: str, candidates: pd.Index, *, which: str) -> str:
    """A full source key from a full key or a unique prefix (at least 12 hex characters) of one of ``candidates``.

    Messages never repeat what was typed (a clerk may paste an agency id by mistake)."""
    value = str(text).strip().lower()
    if not _KEY_PREFIX.match(value):
        raise DecisionError(f"the {which} source key is not a source key (12 to 64 hexadecimal characters, "
                            "as `c2c linkage review list` shows them)")
    if len(value) == 64:
        return value
    hits = candidates[candidates.str.startswith(value)].unique() if len(candidates) else []
    if len(hits) == 0:
        raise DecisionError(f"the {which} source key matches no source key of the review queue")
    if len(hits) > 1:
        raise DecisionError(f"the {which} source key is ambiguous ({len(hits)} source keys start with it); give more characters")
    return str(hits[0])


def _pairs(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([frame.source_key_l.astype(str), frame.source_key_r.astype(str)])


def check_new_decisions(
    new: pd.DataFrame,
    *,
    queue: pd.DataFrame,
    pending: pd.DataFrame,
    known: pd.Index | None = None,
    allow_unqueued: bool = False,
    supersede: bool = False,
    now: dt.datetime | None = None,
) -> pd.DataFrame:
    """Validate decisions a reviewer is about to add to the pending file; returns them normalised.

    On top of :func:`validate_decisions`: each pair once; the pair is in ``queue`` (with
    ``allow_unqueued``: both keys are in ``known`` or the queue, e.g. a link a reviewer found outside
    the queue, or a decision on a pair decided before); no decided_at in the future; a pair with a
    pending decision only with ``supersede`` and a later decided_at. Messages name rows by position.
    """
    d = validate_decisions(new)
    if len(d) == 0:
        raise DecisionError("there are no decisions to record")
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    when = pd.Series(pd.DatetimeIndex(pd.to_datetime(d.decided_at, utc=True, format="mixed")))
    bad = when > pd.Timestamp(now + FUTURE_TOLERANCE)
    if bad.any():
        raise DecisionError(f"decisions: decided_at is in the future in row(s) {_rows(bad)}")
    pairs = _pairs(d)
    bad = pd.Series(pairs.duplicated(keep=False))
    if bad.any():
        raise DecisionError(f"decisions: the same pair is decided more than once in row(s) {_rows(bad)}; keep one row per pair")
    in_queue = pd.Series(pairs.isin(_pairs(queue)) if len(queue) else [False] * len(d))
    if not allow_unqueued:
        if (~in_queue).any():
            raise DecisionError(
                f"decisions: the pair in row(s) {_rows(~in_queue)} is not in the current review queue "
                "(`c2c linkage review list`); to decide on two source keys outside the queue, add --allow-unqueued")
    else:
        keys = pd.Index(queue.source_key_l).append(pd.Index(queue.source_key_r)) if len(queue) else pd.Index([])
        if known is not None:
            keys = keys.append(pd.Index(known))
        unknown = pd.Series(~(d.source_key_l.isin(keys) & d.source_key_r.isin(keys)).to_numpy())
        if unknown.any():
            raise DecisionError(f"decisions: row(s) {_rows(unknown)} name a source key the latest run did not see")
    if len(pending):
        latest = pending.assign(_at=pd.to_datetime(pending.decided_at, utc=True, format="mixed")).groupby(
            ["source_key_l", "source_key_r"])._at.max()
        before = pd.Series(pd.DatetimeIndex(latest.reindex(pairs)))
        has = before.notna()
        if has.any() and not supersede:
            raise DecisionError(
                f"decisions: the pair in row(s) {_rows(has)} already has a pending decision (not yet applied); "
                "to replace it with this one, add --supersede")
        stale = has & (when <= before)
        if stale.any():
            raise DecisionError(f"decisions: row(s) {_rows(stale)} would supersede a pending decision that is not older")
    return d


@contextlib.contextmanager
def _lock(linkage_dir: LinkageArea | Path) -> Iterator[None]:
    path = LinkageArea.of(linkage_dir).review_lock
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _to_csv(frame: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    frame[list(DECISION_COLUMNS)].to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


class PendingDecisions:
    """The pending decisions file while the review lock is held (see :func:`locked_pending`)."""

    def __init__(self, linkage_dir: LinkageArea | Path) -> None:
        self.path = LinkageArea.of(linkage_dir).pending_decisions
        self._before = self.path.read_bytes() if self.path.is_file() else None
        self.frame = self._read()
        self.written = False

    def _read(self) -> pd.DataFrame:
        if self._before is None:
            return validate_decisions(None)
        try:
            raw = pd.read_csv(io.BytesIO(self._before), dtype=str)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DecisionError(f"{self.path} cannot be read as CSV ({type(exc).__name__}); fix or remove it") from None
        try:
            return validate_decisions(raw)
        except DecisionError as exc:
            raise DecisionError(f"{self.path} (pending, not yet applied) is wrong: {exc}") from None

    def append(self, decisions: pd.DataFrame) -> int:
        """Add ``decisions`` (from :func:`check_new_decisions`) to the file, atomically; returns the pending count."""
        frame = pd.concat([self.frame, decisions[list(DECISION_COLUMNS)]], ignore_index=True)
        write_private_file(self.path, _to_csv(frame), overwrite=True)
        self.written = True
        self.frame = frame
        return len(frame)

    def restore(self) -> None:
        if not self.written:
            return
        if self._before is None:
            self.path.unlink(missing_ok=True)
        else:
            write_private_file(self.path, self._before, overwrite=True)
        self.written = False


@contextlib.contextmanager
def locked_pending(linkage_dir: LinkageArea | Path) -> Iterator[PendingDecisions]:
    """Hold the review lock and yield the pending decisions; if the block raises, a write it made is undone
    (so a decision and its audit entry commit together or not at all)."""
    with _lock(linkage_dir):
        pending = PendingDecisions(linkage_dir)
        try:
            yield pending
        except BaseException:
            pending.restore()
            raise


def read_pending(linkage_dir: LinkageArea | Path) -> pd.DataFrame:
    with locked_pending(linkage_dir) as pending:
        return pending.frame


def claim_pending(linkage_dir: LinkageArea | Path, run_tag: str) -> Path | None:
    """For a run: take the pending file (renamed to ``decisions.claimed.<run_tag>.csv``), or None if none."""
    area = LinkageArea.of(linkage_dir)
    with _lock(area):
        path = area.pending_decisions
        if not path.is_file():
            return None
        claimed = area.claimed_decisions(run_tag)
        os.replace(path, claimed)
        return claimed


def settle_claim(claimed: Path, run_tag: str, *, applied: bool) -> Path:
    """After the run: ``decisions.applied.<run_tag>.csv`` if it stored them; otherwise the claimed decisions
    go back to the pending file (before any written meanwhile). Returns where they are now."""
    claimed = Path(claimed)
    area = LinkageArea(claimed.parent.parent)  # <area>/review/decisions.claimed.<run_tag>.csv
    if applied:
        done = area.applied_decisions(run_tag)
        os.replace(claimed, done)
        return done
    with _lock(area):
        path = area.pending_decisions
        if not path.is_file():
            os.replace(claimed, path)
            return path
        try:  # the claimed rows first, then those written meanwhile
            older = pd.read_csv(claimed, dtype=str)
            newer = pd.read_csv(path, dtype=str)
        except (ValueError, UnicodeDecodeError):
            return claimed  # unreadable: left under its claimed name for the reviewer to fix
        merged = pd.concat([older, newer], ignore_index=True).to_csv(index=False, lineterminator="\n").encode("utf-8")
        write_private_file(path, merged, overwrite=True)
        claimed.unlink()
        return path


def recorded_by_run(database: Path, run_id: str) -> pd.DataFrame:
    """The decisions a run stored in the linkage state (new ones only; a decision already stored is not stored twice)."""
    import duckdb

    from data_sharing.linkage import state as st

    con = duckdb.connect(":memory:")
    try:
        st.attach(con, Path(database), read_only=True)
        return st.read_table(con, "decisions", where={"recorded_run": run_id})
    finally:
        con.close()


def audit_details(decisions: pd.DataFrame, *, queue: pd.DataFrame | None = None, **extra: object) -> list[dict[str, object]]:
    """One audit-event body per decision: the pair, the decision, who and when, and the reason's length;
    with ``queue``, also why and how likely the pair was queued (``queued_as``, ``match_probability``;
    None for a pair outside the queue).

    The reason itself stays in the linkage area (pending file, state): it is a reviewer's free text and
    the audit log lives in the warehouse, which must never hold an identifier value.
    """
    base = decisions[["source_key_l", "source_key_r", "decision", "decided_by", "decided_at"]].astype(str)
    base = base.assign(reason_chars=decisions.reason.astype("string").str.len().fillna(0).astype(int).to_numpy())
    if queue is not None:
        q = queue.drop_duplicates(["source_key_l", "source_key_r"]).set_index(["source_key_l", "source_key_r"])
        at = _pairs(base)
        base["queued_as"] = q.reason.reindex(at).astype(object).to_numpy() if len(q) else None
        prob = q.match_probability.reindex(at).round(6).astype(object) if len(q) else pd.Series([None] * len(base))
        base["match_probability"] = prob.where(prob.notna(), None).to_numpy()
    base = base.astype(object).where(base.notna(), None)
    return [{**row, **extra} for row in base.to_dict("records")]


def pair_subject(source_key_l: str, source_key_r: str) -> str:
    """The audit subject of a pair's entries (its two pseudonymous source keys)."""
    return f"{source_key_l}:{source_key_r}"
