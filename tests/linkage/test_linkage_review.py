"""The clerical review queue is pseudonymous; reviewers' decisions are checked before they are stored."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from data_sharing.linkage import DecisionError, load_settings, validate_decisions
from data_sharing.linkage.review import QUEUE_REASONS

A = "a" * 64
B = "b" * 64


def _decisions(**over) -> pd.DataFrame:  # noqa: ANN003
    row = {"source_key_l": B, "source_key_r": A, "decision": "match", "decided_by": "reviewer-1",
           "decided_at": "2030-01-02T10:00:00+01:00", "reason": "checked"}
    row.update(over)
    return pd.DataFrame([row])


def test_decisions_are_normalised() -> None:
    d = validate_decisions(_decisions(decision=" MATCH "))
    assert d.source_key_l.iloc[0] == A and d.source_key_r.iloc[0] == B  # pair ordered
    assert d.decision.iloc[0] == "match"
    assert d.decided_at.iloc[0] == "2030-01-02T09:00:00+0000"  # UTC
    assert validate_decisions(None).empty


@pytest.mark.parametrize(
    ("over", "what"),
    [
        ({"source_key_l": "not-a-key"}, "source_key_l is not a 64-hex source key in row(s) 0"),
        ({"source_key_r": B}, "names the same source key twice"),
        ({"decision": "maybe"}, "decision must be one of match, non_match"),
        ({"decided_by": " "}, "decided_by must name the reviewer"),
        ({"decided_at": "yesterday"}, "decided_at is not an ISO 8601 date-time"),
        ({"reason": "x" * 1001}, "reason longer than 1000 characters"),
    ],
)
def test_wrong_decisions_are_refused_by_row(over: dict, what: str) -> None:
    with pytest.raises(DecisionError, match=what.replace("(", r"\(").replace(")", r"\)")):
        validate_decisions(_decisions(**over))


def test_decisions_need_their_columns() -> None:
    with pytest.raises(DecisionError, match="lack column"):
        validate_decisions(_decisions().drop(columns=["decided_by"]))


def test_the_queue_holds_pairs_and_levels_only(first_run) -> None:  # noqa: ANN001
    q = first_run.review_queue
    assert len(q) > 0
    assert list(q.columns) == ["run_id", "source_key_l", "source_key_r", "agency_l", "agency_r", "match_probability",
                               "match_weight", "reason", "levels", "weights", "first_queued_run"]
    assert q.source_key_l.str.fullmatch(r"[0-9a-f]{64}").all() and (q.source_key_l < q.source_key_r).all()
    assert set(q.reason) <= set(QUEUE_REASONS)
    settings = load_settings()
    names = {c.name: {lv.name for lv in c.levels} for c in settings.comparisons}
    for levels, weights in zip(q.levels, q.weights, strict=True):
        lv = json.loads(levels)
        assert set(lv) == set(names) and all(v in names[k] for k, v in lv.items())
        assert set(json.loads(weights)) == set(names)
    band = q[q.reason == "score_band"]
    lower, upper = settings.thresholds.lower, settings.thresholds.upper
    assert ((band.match_probability >= lower) & (band.match_probability < upper)).all()
