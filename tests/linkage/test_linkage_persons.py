"""Guarded clustering and persistent child keys, on small hand-made graphs."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from data_sharing.linkage.persons import KEY_PREFIX, assign_child_keys, cluster


def sk(name: str) -> str:
    """A made-up 64-hex source key for a readable label."""
    return hashlib.sha256(name.encode()).hexdigest()


def nodes(*spec: tuple[str, str, float | None]) -> pd.DataFrame:
    return pd.DataFrame({"source_key": [sk(n) for n, _, _ in spec], "agency": [a for _, a, _ in spec],
                         "birth_year": [np.nan if y is None else y for _, _, y in spec]})


def edges(*spec: tuple[str, str, float]) -> pd.DataFrame:
    return pd.DataFrame({"source_key_l": [sk(a) for a, _, _ in spec], "source_key_r": [sk(b) for _, b, _ in spec],
                         "match_weight": [w for _, _, w in spec]})


def groups(result) -> set[frozenset[str]]:  # noqa: ANN001
    names = {}
    for n in ("a", "b", "c", "d", "e", "f", "twin1", "twin2", "clinic", "parent", "child", "x", "y", "z"):
        names[sk(n)] = n
    lab = result.labels.assign(name=result.labels.source_key.map(names))
    return {frozenset(g) for g in lab.groupby("cluster").name.agg(list)}


def test_a_third_record_never_joins_two_ids_of_one_agency() -> None:
    # a clinic record resembling both twins links to each; the school's two ids have no direct link
    n = nodes(("twin1", "fps", 2015), ("twin2", "fps", 2015), ("clinic", "fhd", 2015))
    e = edges(("clinic", "twin1", 20.0), ("clinic", "twin2", 18.0))
    res = cluster(n, e)
    assert groups(res) == {frozenset({"twin1", "clinic"}), frozenset({"twin2"})}
    assert res.refused.reason.tolist() == ["conflict_within_agency"]
    # ... unless the two ids have their own direct evidence (a within-agency duplicate)
    res = cluster(n, pd.concat([e, edges(("twin1", "twin2", 15.0))]))
    assert groups(res) == {frozenset({"twin1", "twin2", "clinic"})}
    # the guard can be switched off in the settings
    res = cluster(n, e, within_agency_needs_direct_evidence=False)
    assert groups(res) == {frozenset({"twin1", "twin2", "clinic"})}


def test_cannot_links_hold_through_other_records() -> None:
    n = nodes(("a", "fps", None), ("b", "fhd", None), ("c", "dhs", None))
    e = edges(("a", "b", 30.0), ("b", "c", 20.0))
    cannot = pd.DataFrame({"source_key_l": [sk("a")], "source_key_r": [sk("c")], "reason": ["decision_conflict"]})
    res = cluster(n, e, cannot=cannot)
    assert groups(res) == {frozenset({"a", "b"}), frozenset({"c"})}
    assert res.refused.reason.tolist() == ["decision_conflict"]


def test_generations_never_meet_in_one_person() -> None:
    n = nodes(("parent", "dhs", 1985), ("child", "fps", 2014), ("x", "fhd", None))
    e = edges(("x", "parent", 25.0), ("x", "child", 24.0))
    res = cluster(n, e, max_birth_year_gap=10)
    assert groups(res) == {frozenset({"x", "parent"}), frozenset({"child"})}
    assert res.refused.reason.tolist() == ["conflict_birth_years"]


def test_forced_links_come_first_and_order_is_deterministic() -> None:
    n = nodes(("a", "fps", None), ("b", "fps", None), ("c", "fhd", None))
    forced = pd.DataFrame({"source_key_l": [sk("a")], "source_key_r": [sk("b")]})
    res = cluster(n, edges(("c", "a", 10.0), ("c", "b", 10.0)), forced=forced)
    assert groups(res) == {frozenset({"a", "b", "c"})}
    shuffled = cluster(n.iloc[::-1], edges(("c", "b", 10.0), ("c", "a", 10.0)), forced=forced)
    assert groups(shuffled) == groups(res)
    a = cluster(n, edges(("c", "a", 10.0), ("c", "b", 10.0)))
    b = cluster(n.iloc[::-1], edges(("c", "b", 10.0), ("c", "a", 10.0)))
    assert groups(a) == groups(b)  # equal weights: ties broken by source keys, not input order


def _labels(*clusters: list[str]) -> pd.DataFrame:
    rows = [(sk(n), "fps", i) for i, members in enumerate(clusters) for n in members]
    return pd.DataFrame(rows, columns=["source_key", "agency", "cluster"])


EMPTY_CW = pd.DataFrame(columns=["source_key", "agency", "child_key", "first_seen_run", "first_seen_seq", "last_seen_run", "active"])
EMPTY_KEYS = pd.DataFrame(columns=["child_key", "created_run", "created_seq", "status", "successor", "updated_run"])


def _step(labels: pd.DataFrame, prev, run: str, seq: int, decided=()):  # noqa: ANN001, ANN202
    cw, keys = prev
    return assign_child_keys(labels, cw, keys, run_id=run, seq=seq, salt="00" * 32, decided_pairs=decided)


def test_child_keys_persist_merge_and_split() -> None:
    r1 = _step(_labels(["a", "b"], ["c"], ["d", "e"]), (EMPTY_CW, EMPTY_KEYS), "r1", 1)
    k1 = r1.current.set_index("source_key").child_key
    assert k1.str.startswith(KEY_PREFIX).all() and k1[sk("a")] == k1[sk("b")] and k1.nunique() == 3
    assert r1.history.empty and r1.counts["child_keys_new"] == 3

    # a new record joins a known person; a new person arrives; nothing else moves
    r2 = _step(_labels(["a", "b", "f"], ["c"], ["d", "e"], ["x"]), (r1.crosswalk, r1.child_keys), "r2", 2)
    k2 = r2.current.set_index("source_key").child_key
    for n in "abcde":
        assert k2[sk(n)] == k1[sk(n)]
    assert k2[sk("f")] == k1[sk("a")] and k2[sk("x")] not in set(k1)
    assert r2.history.empty

    # merge: {a,b,f} and {c} become one person; the key holding most records survives
    r3 = _step(_labels(["a", "b", "f", "c"], ["d", "e"], ["x"]), (r2.crosswalk, r2.child_keys), "r3", 3,
               decided=[(sk("a"), sk("c"), "match")])
    k3 = r3.current.set_index("source_key").child_key
    assert k3[sk("c")] == k1[sk("a")] == k3[sk("a")]
    merge = r3.history[r3.history.event == "merge"].iloc[0]
    assert sorted(merge.old_keys) == sorted([k1[sk("a")], k1[sk("c")]]) and list(merge.new_keys) == [k1[sk("a")]]
    assert merge.reason == "review_decision"
    retired = r3.child_keys.set_index("child_key").loc[k1[sk("c")]]
    assert retired.status == "retired" and retired.successor == k1[sk("a")]

    # split: {d,e} -> {d}, {e}: the old key stays with one part, the other gets a new key
    r4 = _step(_labels(["a", "b", "f", "c"], ["d"], ["e"], ["x"]), (r3.crosswalk, r3.child_keys), "r4", 4)
    k4 = r4.current.set_index("source_key").child_key
    assert k4[sk("d")] == k1[sk("d")] and k4[sk("e")] != k1[sk("d")]
    split = r4.history[r4.history.event == "split"].iloc[0]
    assert list(split.old_keys) == [k1[sk("d")]] and set(split.new_keys) == {k4[sk("d")], k4[sk("e")]}
    assert split.reason == "linkage"

    # a record that disappears keeps its key in the state; when it comes back it gets it again
    r5 = _step(_labels(["a", "b", "f", "c"], ["d"], ["e"]), (r4.crosswalk, r4.child_keys), "r5", 5)
    assert sk("x") not in set(r5.current.source_key)
    assert r5.child_keys.set_index("child_key").loc[k2[sk("x")]].status == "dormant"
    r6 = _step(_labels(["a", "b", "f", "c"], ["d"], ["e"], ["x"]), (r5.crosswalk, r5.child_keys), "r6", 6)
    assert r6.current.set_index("source_key").child_key[sk("x")] == k2[sk("x")]


def test_new_keys_are_deterministic_given_the_state() -> None:
    lab = _labels(["a", "b"], ["c"])
    one = _step(lab, (EMPTY_CW, EMPTY_KEYS), "r1", 1).current
    two = _step(lab.iloc[::-1], (EMPTY_CW, EMPTY_KEYS), "r1-again", 1).current
    pd.testing.assert_frame_equal(one, two)
