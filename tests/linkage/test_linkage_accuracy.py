"""Linkage of a small synthetic city against its truth: accuracy, the hard cases, quality reporting."""

from __future__ import annotations

import pandas as pd

from data_sharing.linkage import evaluate_against_truth


def test_precision_and_recall_on_a_small_city(first_run, inputs) -> None:  # noqa: ANN001
    ev = evaluate_against_truth(first_run.crosswalk, inputs.truth, inputs.persons)
    pw = ev["pairwise"]
    # measured on this 700-child city (seed 5): precision 1.000, recall ~0.98
    assert pw["true_pairs"] > 500
    assert pw["precision"] >= 0.99, pw
    assert pw["recall"] >= 0.95, pw
    assert ev["source_keys_without_truth"] == 0
    # every kind of pair is linked, within agencies (duplicates) and across them
    for pair, v in ev["by_agency_pair"].items():
        if v["true_pairs"] >= 5:
            assert v["recall"] >= 0.7, (pair, v)


def test_twins_are_never_merged(first_run, inputs) -> None:  # noqa: ANN001
    ev = evaluate_against_truth(first_run.crosswalk, inputs.truth, inputs.persons)
    assert ev["hard_cases"]["twin_pairs_present"] >= 5
    assert ev["hard_cases"]["twin_pairs_merged"] == 0


def test_parents_never_link_to_their_children(first_run, inputs) -> None:  # noqa: ANN001
    ev = evaluate_against_truth(first_run.crosswalk, inputs.truth, inputs.persons)
    assert ev["hard_cases"]["adults_with_records"] >= 50
    assert ev["hard_cases"]["adults_in_a_child_cluster"] == 0
    assert ev["hard_cases"]["parents_linked_to_their_own_children"] == 0
    # and directly: no child key holds both an adult's and a child's record
    persons = inputs.persons.set_index("person_id")
    m = first_run.crosswalk.merge(inputs.truth, on="source_key")
    m["child"] = persons.is_child.reindex(m.person_id).to_numpy() == "true"
    mixed = m.groupby("child_key").child.nunique()
    assert (mixed == 1).all()


def test_within_agency_duplicates_are_resolved(first_run, inputs) -> None:  # noqa: ANN001
    hard = evaluate_against_truth(first_run.crosswalk, inputs.truth, inputs.persons)["hard_cases"]
    assert hard["within_agency_duplicates"] >= 5
    assert hard["within_agency_duplicates_resolved"] >= 0.6 * hard["within_agency_duplicates"]


def test_every_source_key_has_one_child_key(first_run, inputs) -> None:  # noqa: ANN001
    keys = pd.concat([e.source_key for e in inputs.encodings.values()]).astype(str).unique()
    cw = first_run.crosswalk
    assert cw.source_key.is_unique
    assert set(cw.source_key) == set(keys)
    assert cw.child_key.str.fullmatch(r"ck_[0-9a-f]{32}").all()


def test_quality_is_reported_every_run(first_run) -> None:  # noqa: ANN001
    q = first_run.quality
    agencies = ["dhs", "fhd", "fps"]
    assert set(q.records) == set(agencies) and all(q.records[a]["source_keys"] > 0 for a in agencies)
    assert q.persons["total"] == first_run.crosswalk.child_key.nunique()
    assert set(q.link_rates) == {f"{a}->{b}" for a in agencies for b in agencies if a != b}
    assert all(0 <= v["rate"] <= 1 for v in q.link_rates.values())
    assert {"race_ethnicity", "sex", "grade_band"} <= set(q.link_rates_by)
    assert {"HI", "WH", "BL"} <= set(q.link_rates_by["race_ethnicity"])
    assert {"F", "M"} <= set(q.link_rates_by["sex"])
    assert {"elementary", "high", "unknown"} <= set(q.link_rates_by["grade_band"])
    s = q.scores
    assert sum(s["match_probability_histogram"].values()) == s["scored_source_key_pairs"]
    assert sum(s["splink_match_probability_histogram"].values()) == s["record_comparisons_at_or_above_floor"]
    assert q.review["queue_size"] == len(first_run.review_queue)
    assert q.keys["child_keys_new"] == q.persons["total"]
    frame = q.link_rates_frame()
    assert {"dimension", "group", "pair", "rate"} <= set(frame.columns) and len(frame) > 20
    assert q.model["model_id"] and q.settings.startswith("c2c-person-linkage/")


def test_ids_of_one_school_held_at_the_same_time_never_share_a_child_key(first_run, inputs) -> None:  # noqa: ANN001
    # guards.concurrent_ids: two student ids enrolled in two or more of the same grade levels are two
    # children (twins), whatever their names; the guard fired on this city and held everywhere
    grades = inputs.attributes["fps"].dropna(subset=["grade_level"]).groupby("source_key").grade_level.agg(frozenset)
    cw = first_run.crosswalk[first_run.crosswalk.agency == "fps"]
    same = cw.merge(cw, on="child_key")
    same = same[same.source_key_x < same.source_key_y]
    shared = [len(grades.get(a, frozenset()) & grades.get(b, frozenset())) for a, b in zip(same.source_key_x, same.source_key_y, strict=True)]
    assert len(same) >= 1  # re-registered students were joined (their grades follow each other)
    assert max(shared) < 2, shared
    assert first_run.quality.guards["concurrent_id_pairs"] >= 1
