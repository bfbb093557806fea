"""The clerical review queue is pseudonymous; reviewers' decisions are checked before they are stored."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from data_sharing.linkage import DecisionError, LinkageArea, load_settings, validate_decisions
from data_sharing.linkage.review import (
    DECISION_COLUMNS,
    QUEUE_REASONS,
    audit_details,
    check_new_decisions,
    claim_pending,
    locked_pending,
    pair_subject,
    read_pending,
    resolve_source_key,
    settle_claim,
)

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
    t = settings.thresholds
    upper = band.agency_l.eq(band.agency_r).map({True: t.within_agency_upper, False: t.upper})
    assert ((band.match_probability >= t.lower) & (band.match_probability < upper)).all()


# ------------------------------------------------------------------ recording decisions (c2c linkage review)

C = "c" * 64
D = "d" * 64
E = "e" * 64
LATER = dt.datetime(2030, 1, 3, 12, 0, tzinfo=dt.UTC)


def _queue(*pairs: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"source_key_l": [p[0] for p in pairs], "source_key_r": [p[1] for p in pairs],
                         "agency_l": "fps", "agency_r": "fhd", "match_probability": 0.5, "reason": "score_band"})


def _new(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    """(l, r, decision, decided_at) rows by reviewer-1."""
    return pd.DataFrame([{"source_key_l": left, "source_key_r": r, "decision": d, "decided_by": "reviewer-1",
                          "decided_at": at, "reason": "checked"} for left, r, d, at in rows])


def test_new_decisions_must_be_queued_pairs_once_each() -> None:
    queue, none = _queue((A, B), (C, D)), validate_decisions(None)
    d = check_new_decisions(_new([(B, A, "match", "2030-01-02T10:00:00Z")]), queue=queue, pending=none, now=LATER)
    assert (d.source_key_l.iloc[0], d.source_key_r.iloc[0]) == (A, B)  # ordered, as queued
    with pytest.raises(DecisionError, match=r"the pair in row\(s\) 1 is not in the current review queue.*--allow-unqueued"):
        check_new_decisions(_new([(A, B, "match", "2030-01-02T10:00:00Z"), (A, C, "match", "2030-01-02T10:00:00Z")]),
                            queue=queue, pending=none, now=LATER)
    # outside the queue: both keys must be known to the latest run
    ok = check_new_decisions(_new([(A, C, "non_match", "2030-01-02T10:00:00Z")]), queue=queue, pending=none,
                             allow_unqueued=True, known=pd.Index([A, C]), now=LATER)
    assert len(ok) == 1
    with pytest.raises(DecisionError, match=r"row\(s\) 0 name a source key the latest run did not see"):
        check_new_decisions(_new([(A, E, "non_match", "2030-01-02T10:00:00Z")]), queue=queue, pending=none,
                            allow_unqueued=True, known=pd.Index([A, C]), now=LATER)
    with pytest.raises(DecisionError, match=r"the same pair is decided more than once in row\(s\) 0, 1"):
        check_new_decisions(_new([(A, B, "match", "2030-01-02T10:00:00Z"), (B, A, "non_match", "2030-01-02T11:00:00Z")]),
                            queue=queue, pending=none, now=LATER)
    with pytest.raises(DecisionError, match=r"decided_at is in the future in row\(s\) 0"):
        check_new_decisions(_new([(A, B, "match", "2030-01-04T10:00:00Z")]), queue=queue, pending=none, now=LATER)
    with pytest.raises(DecisionError, match="no decisions to record"):
        check_new_decisions(pd.DataFrame(columns=list(DECISION_COLUMNS)), queue=queue, pending=none, now=LATER)


def test_a_pending_decision_is_only_superseded_on_purpose_by_a_later_one() -> None:
    queue = _queue((A, B))
    pending = validate_decisions(_new([(A, B, "match", "2030-01-02T10:00:00Z")]))
    later = _new([(A, B, "non_match", "2030-01-02T11:00:00Z")])
    with pytest.raises(DecisionError, match=r"row\(s\) 0 already has a pending decision.*--supersede"):
        check_new_decisions(later, queue=queue, pending=pending, now=LATER)
    assert check_new_decisions(later, queue=queue, pending=pending, supersede=True, now=LATER).decision.iloc[0] == "non_match"
    with pytest.raises(DecisionError, match=r"row\(s\) 0 would supersede a pending decision that is not older"):
        check_new_decisions(_new([(A, B, "non_match", "2030-01-02T10:00:00Z")]), queue=queue, pending=pending,
                            supersede=True, now=LATER)


def test_source_keys_resolve_from_unique_prefixes_without_echoing_input() -> None:
    keys = pd.Index([A, "ab" + "0" * 62, "ab" + "1" * 62])
    assert resolve_source_key(A[:12].upper(), keys, which="first") == A
    assert resolve_source_key(E, keys, which="first") == E  # a full key is taken as given (checked later)
    with pytest.raises(DecisionError, match="ambiguous \\(2 source keys"):
        resolve_source_key("ab" + "0" * 10, pd.Index(["ab" + "0" * 62, "ab" + "0" * 61 + "1"]), which="first")
    with pytest.raises(DecisionError, match="matches no source key"):
        resolve_source_key("f" * 12, keys, which="second")
    for typed in ("S0012345", "Testfirst Testlast", "2016-01-02", "a" * 11):
        with pytest.raises(DecisionError) as err:
            resolve_source_key(typed, keys, which="first")
        assert typed not in str(err.value)


def test_pending_file_writes_are_atomic_private_and_undone_with_their_transaction(tmp_path: Path) -> None:
    d1 = validate_decisions(_new([(A, B, "match", "2030-01-02T10:00:00Z")]))
    with locked_pending(tmp_path) as pending:
        assert pending.frame.empty and pending.append(d1) == 1
    path = LinkageArea(tmp_path).pending_decisions
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_pending(tmp_path).equals(d1)
    d2 = validate_decisions(_new([(C, D, "non_match", "2030-01-02T11:00:00Z")]))
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="audit commit failed"), locked_pending(tmp_path) as pending:
        assert pending.append(d2) == 2
        raise RuntimeError("audit commit failed")
    assert path.read_bytes() == before  # the decision and its audit entry: both or neither
    path.write_text("source_key_l,source_key_r,decision,decided_by,decided_at\nnot-a-key,S0012345,match,x,2030-01-02\n")
    with pytest.raises(DecisionError, match=r"pending, not yet applied\) is wrong: .*row\(s\) 0") as err:
        read_pending(tmp_path)
    assert "S0012345" not in str(err.value)


def test_a_run_claims_pending_decisions_and_puts_them_back_if_it_fails(tmp_path: Path) -> None:
    assert claim_pending(tmp_path, "run1") is None
    with locked_pending(tmp_path) as pending:
        pending.append(validate_decisions(_new([(A, B, "match", "2030-01-02T10:00:00Z")])))
    claimed = claim_pending(tmp_path, "run1")
    assert claimed is not None and claimed.name == "decisions.claimed.run1.csv"
    assert not (LinkageArea(tmp_path).pending_decisions).exists()
    # a reviewer records another decision while the run works: it waits for the next run
    with locked_pending(tmp_path) as pending:
        pending.append(validate_decisions(_new([(C, D, "non_match", "2030-01-02T11:00:00Z")])))
    back = settle_claim(claimed, "run1", applied=False)  # the run failed
    assert back == LinkageArea(tmp_path).pending_decisions and not claimed.exists()
    assert [(r.source_key_l, r.decision) for r in read_pending(tmp_path).itertuples()] == [(A, "match"), (C, "non_match")]
    claimed = claim_pending(tmp_path, "run2")
    assert claimed is not None
    done = settle_claim(claimed, "run2", applied=True)
    assert done.name == "decisions.applied.run2.csv" and not (LinkageArea(tmp_path).pending_decisions).exists()
    assert len(pd.read_csv(done)) == 2


def test_audit_details_carry_no_reason_text() -> None:
    d = validate_decisions(_new([(A, B, "match", "2030-01-02T10:00:00Z"), (C, D, "non_match", "2030-01-02T10:00:00Z")])
                           .assign(reason=["Testfirst looked the same", None]))
    details = audit_details(d, queue=_queue((A, B)), via="decide")
    assert details == [
        {"source_key_l": A, "source_key_r": B, "decision": "match", "decided_by": "reviewer-1",
         "decided_at": "2030-01-02T10:00:00+0000", "reason_chars": 25, "queued_as": "score_band",
         "match_probability": 0.5, "via": "decide"},
        {"source_key_l": C, "source_key_r": D, "decision": "non_match", "decided_by": "reviewer-1",
         "decided_at": "2030-01-02T10:00:00+0000", "reason_chars": 0, "queued_as": None,
         "match_probability": None, "via": "decide"},
    ]
    assert "Testfirst" not in json.dumps(details)
    assert pair_subject(A, B) == f"{A}:{B}"
