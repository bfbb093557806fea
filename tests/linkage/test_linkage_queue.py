"""The review queue cap, the audit sample and `c2c linkage review audit` (issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_sharing.linkage.queue import AUDIT_REASON, audit_precision, audit_sample, cap_queue, wilson_interval
from data_sharing.linkage.review import DECISION_COLUMNS, QUEUE_COLUMNS


def _queue(probs: list[float], within: list[bool]) -> pd.DataFrame:
    n = len(probs)
    return pd.DataFrame({
        "source_key_l": [f"{i:064x}" for i in range(n)], "source_key_r": [f"{i + 100:064x}" for i in range(n)],
        "agency_l": ["a"] * n, "agency_r": ["a" if w else "b" for w in within], "match_probability": probs})


def test_cap_keeps_half_a_percent_of_persons_closest_to_their_threshold() -> None:
    # thresholds: 0.6 across agencies, 0.9 within one; 1,000 persons -> 5 pairs
    q = _queue([0.31, 0.59, 0.95, 0.89, 0.40, 0.70, 0.58, 0.35], [False, False, False, True, False, False, False, True])
    kept, info = cap_queue(q, persons=1000, upper=0.6, upper_within=0.9)
    assert info == {"candidates": 8, "limit": 5, "deferred": 3}
    # log2-odds distance to the pair's threshold: 0.59 (0.06), 0.89 within (0.17), 0.58 (0.12), 0.70 (0.64), 0.40 (1.17)
    assert kept.match_probability.tolist() == [0.59, 0.58, 0.89, 0.70, 0.40]


def test_cap_never_below_one_pair_and_empty_queue() -> None:
    kept, info = cap_queue(_queue([0.5, 0.4], [False, False]), persons=10, upper=0.6, upper_within=0.9)
    assert len(kept) == 1 and info["deferred"] == 1 and kept.match_probability.iloc[0] == 0.5
    kept, info = cap_queue(_queue([], []), persons=10, upper=0.6, upper_within=0.9)
    assert len(kept) == 0 and info["deferred"] == 0


def test_audit_sample_is_seeded_by_the_run() -> None:
    acc = _queue([0.99] * 200, [False] * 200)
    a1, a2 = audit_sample(acc, run_id="r1", n=30), audit_sample(acc.sample(frac=1, random_state=3), run_id="r1", n=30)
    assert len(a1) == 30 and a1.source_key_l.tolist() == a2.source_key_l.tolist()  # input order does not matter
    assert a1.source_key_l.tolist() != audit_sample(acc, run_id="r2", n=30).source_key_l.tolist()
    assert len(audit_sample(acc.head(7), run_id="r1", n=30)) == 7


def test_wilson_interval_hand_values() -> None:
    lo, hi = wilson_interval(29, 30)  # p = 0.9667
    assert lo == pytest.approx(0.8333, abs=1e-3) and hi == pytest.approx(0.9941, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(10, 10)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.7225, abs=1e-3)


def _audit_queue(n: int) -> pd.DataFrame:
    q = _queue([0.99] * n, [False] * n).assign(run_id="r1", match_weight=7.0, reason=AUDIT_REASON, levels="{}",
                                              weights="{}", first_queued_run="r1")
    return q[list(QUEUE_COLUMNS)]


def test_audit_precision_counts_the_latest_decision_per_pair() -> None:
    q = _audit_queue(4)
    d = pd.DataFrame({"source_key_l": q.source_key_l.iloc[[0, 1, 2, 2]].tolist(),
                      "source_key_r": q.source_key_r.iloc[[0, 1, 2, 2]].tolist(),
                      "decision": ["match", "non_match", "non_match", "match"]})
    a = audit_precision(q, d)
    assert (a["audit_pairs"], a["reviewed"], a["confirmed"]) == (4, 3, 2)
    assert a["precision"] == pytest.approx(2 / 3)


def _c2c() -> list[str]:
    exe = Path(sys.executable).with_name("c2c")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "import sys; from pipelines.cli import main; sys.exit(main())"]


def test_review_audit_command(tmp_path: Path) -> None:
    review = tmp_path / "home" / "linkage" / "review"
    review.mkdir(parents=True)
    q = _audit_queue(3)
    q.to_csv(review / "queue.csv", index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("C2C_")}
    cmd = [*_c2c(), "linkage", "review", "audit", "--home", str(tmp_path / "home")]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "0 of 3 audit pair(s) decided" in out.stdout
    pending = pd.DataFrame({"source_key_l": q.source_key_l.iloc[:2], "source_key_r": q.source_key_r.iloc[:2],
                            "decision": ["match", "match"], "decided_by": "ann", "decided_at": "2026-12-01T10:00:00+00:00",
                            "reason": "checked"})[list(DECISION_COLUMNS)]
    pending.to_csv(review / "decisions.csv", index=False)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=300)
    assert out.returncode == 0, out.stderr
    # 2 of 2: Wilson 95% interval 0.342 to 1.000
    assert "2 of 3 audit pair(s) decided; 2 confirmed: estimated precision 1.000 (95% interval 0.342 to 1.000)" in out.stdout
    assert not json.dumps(out.stdout).count("ann")
    assert np.isfinite(wilson_interval(2, 2)[0])


def test_twin_evidence_needs_two_first_names_under_one_agency() -> None:
    import duckdb

    from data_sharing.linkage.evidence import twin_evidence

    con = duckdb.connect()
    con.execute("create table records (rid bigint, agency varchar, source_key varchar, first_name_hash varchar, "
                "last_name_hash varchar, birth_date_hash varchar)")
    con.execute("""insert into records values
        (1, 's', 'k1', 'ANNA', 'LEE', 'D1'), (2, 's', 'k2', 'BELLA', 'LEE', 'D1'),   -- school knows two children
        (3, 'h', 'k3', 'ANNA', 'LEE', 'D1'),
        (4, 's', 'k4', 'CARL', 'ROY', 'D2'), (5, 'h', 'k5', 'JOHN', 'ROY', 'D2'),    -- one each: no evidence
        (6, 'h', 'k6', 'EVE', 'KIM', 'D3'), (7, 'h', 'k6', 'EVA', 'KIM', 'D3'),      -- one id, two variants
        (8, 's', 'k8', 'IVY', 'KIM', 'D3')""")
    con.execute("create table pairs as select * from (values ('k1', 'k3', 1, 3), ('k4', 'k5', 4, 5), ('k6', 'k8', 6, 8)) "
                "t(a, b, rid_l, rid_r)")
    assert twin_evidence(con, "pairs").tolist() == [True, False, False]


def test_twin_evidence_ignores_one_child_re_registered_under_a_misspelt_or_middle_name() -> None:
    import duckdb

    from data_sharing.linkage.evidence import ESTABLISHED_NAME_SOURCE_KEYS, SIMILAR_FIRST_NAME_BITS, twin_evidence

    near = bytes(128)  # name filters a typo apart: 8 bits differ
    typo = b"\xff" + bytes(127)
    far = b"\xff" * 20 + bytes(108)  # two names: 160 bits differ
    assert 8 <= SIMILAR_FIRST_NAME_BITS < 160 and ESTABLISHED_NAME_SOURCE_KEYS == 2
    con = duckdb.connect()
    con.execute("create table records (rid bigint, agency varchar, source_key varchar, first_name_hash varchar, "
                "first_name_canonical_hash varchar, middle_name_as_first_hash varchar, last_name_hash varchar, "
                "birth_date_hash varchar, name_bloom blob)")
    con.executemany("insert into records values (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        # MAYYA: one id's misspelling of MAYA (held by one id), inside the school: no evidence
        (1, "s", "k01", "MAYA", "MAYA", None, "LEE", "D1", near), (2, "s", "k02", "MAYYA", "MAYYA", None, "LEE", "D1", typo),
        (3, "h", "k03", "ROSA", "ROSA", None, "LEE", "D1", far),
        (4, "s", "k04", "LIZ", "ELIZABETH", None, "ROY", "D2", near),
        (5, "s", "k05", "ELIZABETH", "ELIZABETH", None, "ROY", "D2", far),  # a short form: no evidence
        (6, "h", "k06", "JUNE", "JUNE", None, "ROY", "D2", far),
        (7, "s", "k07", "ANNA", "ANNA", "JOY", "KIM", "D3", near),
        (8, "s", "k08", "JOY", "JOY", None, "KIM", "D3", far),             # her middle name: no evidence
        (9, "h", "k09", "IVY", "IVY", None, "KIM", "D3", far),
        (10, "s", "k10", "OMAR", "OMAR", None, "ALI", "D4", near),
        (11, "s", "k11", "SAMI", "SAMI", None, "ALI", "D4", far),         # two names at one school: twins
        (12, "h", "k12", "ZAID", "ZAID", None, "ALI", "D4", far),
        # JAYLEN and JAYDEN, a typo apart but each an established name (held by 2 ids): twins
        (13, "s", "k13", "JAYLEN", "JAYLEN", None, "FOX", "D5", near), (14, "s", "k14", "JAYDEN", "JAYDEN", None, "FOX", "D5", typo),
        (15, "h", "k15", "JAY", "JAY", None, "FOX", "D5", far),
        (16, "h", "k16", "JAYLEN", "JAYLEN", None, "OAK", "D9", near), (17, "h", "k17", "JAYDEN", "JAYDEN", None, "ELM", "D9", near)])
    con.execute("create table pairs as select * from (values ('k01', 'k03', 1, 3), ('k04', 'k06', 4, 6), "
                "('k07', 'k09', 7, 9), ('k10', 'k12', 10, 12), ('k13', 'k15', 13, 15)) t(a, b, rid_l, rid_r)")
    assert twin_evidence(con, "pairs").tolist() == [False, False, False, True, True]
