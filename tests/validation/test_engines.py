"""The mask engine gives what GX itself gives on the same suite: same rows, same counts, same successes.

This is what lets the pipeline use the fast engine while GX stays the declaration and the result.
"""

from __future__ import annotations

import pytest

from data_sharing.validation import ExtractProfile, validate_table
from tests.validation.conftest import CONTRACTS, bad_value, column_kinds, table_of, valid_rows


def messy_rows(key: tuple[str, str]) -> list[dict[str, str]]:
    """Valid rows with every row-level defect the contract can have, one per row, plus repeats and key clashes."""
    c = CONTRACTS[key]
    cases = [(spec, kind) for spec in c.columns.values() for kind in column_kinds(spec)]
    rows = valid_rows(c, len(cases) + 8)
    for i, (spec, kind) in enumerate(cases):
        rows[i][spec.name] = bad_value(spec, kind)
    n = len(rows)
    rows[n - 1] = dict(rows[n - 2])  # exact repeat
    if c.unique_key:
        for col in c.unique_key:
            rows[n - 3][col] = rows[n - 4][col]
    for rule in c.rules:  # break every rule on one more row
        cmp = rule.comparison
        r = rows[n - 5]
        if rule.condition:
            r[rule.condition[0]] = rule.condition[1]
        if cmp.right_is_column:
            r[cmp.left], r[cmp.right] = (r[cmp.right], r[cmp.left]) if cmp.op in ("<=", "<") else (r[cmp.left], r[cmp.left])
            if cmp.op in (">=", ">"):
                r[cmp.right] = "2999-01-01" if c.columns[cmp.right].type == "date" else "200"
            else:
                r[cmp.left] = "2999-01-01" if c.columns[cmp.left].type == "date" else "200"
        else:
            r[cmp.left] = "4"
    return rows


def references_for(key: tuple[str, str]) -> dict:  # type: ignore[type-arg]
    c = CONTRACTS[key]
    out = {}
    for ref in c.references:
        other = CONTRACTS[(c.agency, ref.extract)]
        rows = valid_rows(other, 6)[:-2]  # the last rows' ids are not in the referenced extract
        out[ref.extract] = table_of(rows)
    return out


def comparable(result) -> tuple:  # type: ignore[no-untyped-def]
    problems = [(p.row_number, p.column, p.rule, p.outcome, p.explanation, p.value) for p in result.problems]
    summary = [
        (e.rule, e.expectation_type, e.evaluated, e.success, e.unexpected_count, e.element_count, e.missing_count)
        for e in result.expectations
    ]
    return (
        result.counts(),
        problems,
        summary,
        result.accepted_indices.tolist(),
        result.quarantined_indices.tolist(),
        result.profile,
    )


@pytest.mark.parametrize("key", sorted(CONTRACTS), ids=lambda k: f"{k[0]}.{k[1]}")
def test_mask_engine_matches_gx(key: tuple[str, str], gx_context) -> None:  # type: ignore[no-untyped-def]
    c = CONTRACTS[key]
    table = table_of(messy_rows(key))
    refs = references_for(key)
    # a previous extract with more rows and other codes, so that drift expectations fail too
    prev = validate_table(table_of(valid_rows(c, 100)), c).profile
    previous = ExtractProfile(prev.agency, prev.extract, prev.rows, {k: 1.0 for k in prev.non_null}, prev.codes)
    masks = validate_table(table, c, references=refs, previous=previous, engine="masks")
    gx = validate_table(table, c, references=refs, previous=previous, engine="gx")
    assert masks.quarantined > 0 and masks.duplicate_rows >= 1
    assert any(e.evaluated and e.success is False and e.rule.startswith("drift") for e in masks.expectations)
    assert comparable(masks) == comparable(gx)


def test_engines_agree_when_a_required_column_is_missing(gx_context) -> None:  # type: ignore[no-untyped-def]
    c = CONTRACTS[("fps", "attendance")]
    rows = valid_rows(c, 4)
    table = table_of(rows, [col for col in c.columns if col != "school_year"])
    masks = validate_table(table, c)
    gx = validate_table(table, c, engine="gx")
    assert masks.file_refused and comparable(masks) == comparable(gx)
