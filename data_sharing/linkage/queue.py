"""A review queue people can finish (issue 14), and an audit sample that measures precision.

* **Cap**: a run queues at most ``MAX_QUEUE_SHARE`` of its persons (0.5 %, at least one pair). Pairs
  are ranked by what a decision is worth: the closer a pair's match weight to the threshold that
  decides it (``upper`` across agencies, ``upper_within_agency`` inside one), the likelier a reviewer
  changes the outcome. Pairs past the cap keep the model's decision and are counted as ``deferred``.
* **Audit sample**: ``AUDIT_PAIRS`` accepted links drawn at random (seeded by the run id, so a re-run
  draws the same) are queued with reason ``audit``. Reviewers decide them like any pair; ``c2c linkage
  review audit`` turns the decisions into an estimated precision with a 95 % (Wilson) interval.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_sharing.linkage.area import LinkageArea

MAX_QUEUE_SHARE = 0.005
AUDIT_PAIRS = 30
AUDIT_REASON = "audit"


def _logit2(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-9, 1 - 1e-9)
    return np.log2(p / (1 - p))


def cap_queue(q: pd.DataFrame, *, persons: int, upper: float, upper_within: float,
              share: float = MAX_QUEUE_SHARE) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The queue cut to ``share`` of ``persons``, closest to its deciding threshold first."""
    limit = max(1, math.floor(share * persons))
    if len(q) == 0:
        return q, {"candidates": 0, "limit": limit, "deferred": 0}
    threshold = np.where((q.agency_l == q.agency_r).to_numpy(), upper_within, upper)
    distance = np.abs(_logit2(q.match_probability.to_numpy()) - _logit2(threshold))
    order = np.lexsort((q.source_key_r.to_numpy(), q.source_key_l.to_numpy(), distance))
    kept = q.iloc[order[:limit]].reset_index(drop=True)
    return kept, {"candidates": int(len(q)), "limit": limit, "deferred": int(max(0, len(q) - limit))}


def audit_sample(accepted: pd.DataFrame, *, run_id: str, n: int = AUDIT_PAIRS) -> pd.DataFrame:
    """``n`` rows of ``accepted`` (the run's linked pairs) drawn at random, seeded by ``run_id``."""
    if len(accepted) == 0 or n <= 0:
        return accepted.iloc[0:0]
    seed = int.from_bytes(hashlib.sha256(("c2c/audit/" + run_id).encode()).digest()[:8], "big")
    ordered = accepted.sort_values(["source_key_l", "source_key_r"], kind="stable").reset_index(drop=True)
    pick = np.random.default_rng(seed).choice(len(ordered), size=min(n, len(ordered)), replace=False)
    return ordered.iloc[np.sort(pick)].reset_index(drop=True)


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def audit_precision(queue: pd.DataFrame, decisions: pd.DataFrame) -> dict[str, Any]:
    """Estimated precision of accepted links from reviewers' decisions on the queue's audit pairs.

    ``decisions``: source_key_l, source_key_r, decision (stored and pending; the last per pair wins).
    """
    audit = queue[queue.reason == AUDIT_REASON][["source_key_l", "source_key_r"]]
    last = decisions.drop_duplicates(["source_key_l", "source_key_r"], keep="last") if len(decisions) else decisions
    m = audit.merge(last[["source_key_l", "source_key_r", "decision"]], on=["source_key_l", "source_key_r"],
                    how="left") if len(last) else audit.assign(decision=None)
    reviewed = int(m.decision.notna().sum())
    matches = int((m.decision == "match").sum())
    lo, hi = wilson_interval(matches, reviewed)
    return {"audit_pairs": int(len(audit)), "reviewed": reviewed, "confirmed": matches,
            "precision": (matches / reviewed) if reviewed else None, "interval_95": [round(lo, 4), round(hi, 4)]}


def finish_queue(q: pd.DataFrame, pairs: pd.DataFrame, levels: pd.DataFrame, weights: pd.DataFrame,
                 accepted: np.ndarray, *, persons: int, upper: float, upper_within: float, run_id: str,
                 dumps: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The run's queue: capped (:func:`cap_queue`), then the audit sample of ``accepted`` pairs appended."""
    kept, info = cap_queue(q, persons=persons, upper=upper, upper_within=upper_within)
    cols = ["source_key_l", "source_key_r", "agency_l", "agency_r", "match_probability", "match_weight"]
    acc = pairs.loc[accepted, cols].assign(_i=np.flatnonzero(accepted))
    sample = audit_sample(acc, run_id=run_id)
    if len(sample):
        idx = sample.pop("_i").to_numpy()
        sample.insert(0, "run_id", run_id)
        sample["reason"] = AUDIT_REASON
        sample["levels"] = [dumps(d) for d in levels.iloc[idx].to_dict("records")]
        sample["weights"] = [dumps(d) for d in weights.iloc[idx].to_dict("records")]
        sample["first_queued_run"] = run_id
        kept = pd.concat([kept, sample[list(kept.columns)]], ignore_index=True)
    info["audit_pairs"] = int(len(sample))
    return kept, info


def audit_summary(linkage_dir: LinkageArea | Path) -> str:
    """``c2c linkage review audit``: one line on the latest queue's audit pairs and the precision they give.

    Decisions count whether stored by a run (the linkage state) or still pending; raises DecisionError
    when there is no queue yet.
    """
    from data_sharing.linkage.review import read_pending, read_queue
    from data_sharing.linkage.run import read_state
    from data_sharing.linkage.state import LinkageStateError

    queue = read_queue(linkage_dir)
    cols = ["source_key_l", "source_key_r", "decision"]
    frames = [read_pending(linkage_dir)[cols]]
    try:
        stored = read_state(linkage_dir).get("decisions")
        if stored is not None and len(stored):
            frames.insert(0, stored[cols])
    except LinkageStateError:  # no state yet: only pending decisions count
        pass
    a = audit_precision(queue, pd.concat(frames, ignore_index=True))
    if a["audit_pairs"] == 0:
        return "c2c linkage review audit: the latest run queued no audit pairs (no accepted links)"
    line = f"c2c linkage review audit: {a['reviewed']} of {a['audit_pairs']} audit pair(s) decided"
    if not a["reviewed"]:
        return line + "; decide them with `c2c linkage review list --reason audit` and `review decide`"
    lo, hi = a["interval_95"]
    return line + (f"; {a['confirmed']} confirmed: estimated precision {a['precision']:.3f} "
                   f"(95% interval {lo:.3f} to {hi:.3f})")
