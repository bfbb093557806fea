"""The GX suite of every contract: built from the contract object, with the expected expectation types."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from schemas import gx_suite as gs
from tests.validation.conftest import CONTRACTS, column_kinds, contract

REPO = Path(__file__).resolve().parents[2]

KIND_TYPES = {
    "present": "expect_column_to_exist",
    "required": "expect_column_values_to_not_be_null",
    "type": "expect_column_values_to_match_regex",
    "real_date": "expect_column_values_to_match_strftime_format",
    "codes": "expect_column_values_to_be_in_set",
    "range": "expect_column_values_to_be_between",
    "pattern": "expect_column_values_to_match_regex",
    "max_length": "expect_column_value_lengths_to_be_between",
}


@pytest.mark.parametrize("key", sorted(CONTRACTS), ids=lambda k: f"{k[0]}.{k[1]}")
def test_suite_builds_from_the_contract(key: tuple[str, str], gx_context) -> None:  # type: ignore[no-untyped-def]
    c = CONTRACTS[key]
    suite = gs.build_suite(c)
    assert suite.name == f"{c.agency}.{c.extract}.v{c.version}"
    by_rule = {gs.check_meta(e).rule: e for e in suite.expectations}
    assert len(by_rule) == len(suite.expectations), "rule ids are unique within a suite"

    # every column check the contract implies, with its outcome and privacy
    for spec in c.columns.values():
        kinds = (["present"] if spec.required else []) + column_kinds(spec)
        for kind in kinds:
            e = by_rule[f"{spec.name}.{kind}"]
            assert e.expectation_type == KIND_TYPES[kind]
            meta = gs.check_meta(e)
            assert meta.outcome == ("refuse_file" if kind == "present" else spec.on_invalid)
            assert meta.privacy == spec.privacy
            assert meta.explain
        assert by_rule[f"{spec.name}.drift_null_rate"].expectation_type == (
            "expect_column_proportion_of_non_null_values_to_be_between"
        )
        if spec.codes:
            assert by_rule[f"{spec.name}.drift_codes"].expectation_type == "expect_column_distinct_values_to_contain_set"
    if len(c.unique_key) > 1:
        e = by_rule["unique_key"]
        assert e.expectation_type == "expect_compound_columns_to_be_unique"
        assert e.configuration.kwargs["column_list"] == list(c.unique_key)
    elif c.unique_key:
        assert by_rule["unique_key"].expectation_type == "expect_column_values_to_be_unique"
    else:
        assert "unique_key" not in by_rule
    for rule in c.rules:
        assert gs.check_meta(by_rule[rule.id]).outcome == rule.outcome
    for ref in c.references:
        e = by_rule[ref.id]
        assert e.expectation_type == "expect_column_values_to_be_in_set"
        assert e.configuration.kwargs == {"column": gs.reference_column(ref), "value_set": [True]}
    assert by_rule["drift.row_count"].expectation_type == "expect_table_row_count_to_be_between"
    # the suite serialises (it is what auditors and Data Docs read)
    json.dumps(suite.to_json_dict())


def test_attendance_suite_exactly(gx_context) -> None:  # type: ignore[no-untyped-def]
    suite = gs.build_suite(contract("fps", "attendance"), drift=False)
    counts = Counter(e.expectation_type for e in suite.expectations)
    # 5 required columns: exist + not null each; 3 integers: regex + between; 2 strings with max_length;
    # one cross-field rule; one reference
    assert counts == {
        "expect_column_to_exist": 5,
        "expect_column_values_to_not_be_null": 5,
        "expect_column_values_to_match_regex": 3,
        "expect_column_values_to_be_between": 3,
        "expect_column_value_lengths_to_be_between": 2,
        "expect_column_pair_values_a_to_be_greater_than_b": 1,
        "expect_column_values_to_be_in_set": 1,
    }
    rule = next(e for e in suite.expectations if gs.check_meta(e).rule == "absent_within_enrolled")
    # days_absent <= days_enrolled  is  days_enrolled >= days_absent
    assert rule.configuration.kwargs == {
        "column_A": "days_enrolled (as integer)",
        "column_B": "days_absent (as integer)",
        "or_equal": True,
        "ignore_row_if": "either_value_is_missing",
    }


def test_when_condition_becomes_a_row_condition(gx_context) -> None:  # type: ignore[no-untyped-def]
    suite = gs.build_suite(contract("fps", "assessments"))
    e = next(e for e in suite.expectations if gs.check_meta(e).rule == "kra_level_1_to_3")
    kw = e.configuration.kwargs
    assert e.expectation_type == "expect_column_values_to_be_between"
    assert kw["column"] == "performance_level (as integer)" and kw["max_value"] == 3
    cond = kw["row_condition"]
    cond = cond.dict() if hasattr(cond, "dict") else cond
    assert (cond["column"]["name"], cond["operator"], cond["parameter"]) == ("subject", "==", "KRA")


def test_every_operator_has_an_expectation(gx_context) -> None:  # type: ignore[no-untyped-def]
    base = contract("fps", "attendance").model_dump()
    expected = {
        "days_absent <= days_enrolled": ("expect_column_pair_values_a_to_be_greater_than_b", "days_enrolled (as integer)"),
        "days_absent < days_enrolled": ("expect_column_pair_values_a_to_be_greater_than_b", "days_enrolled (as integer)"),
        "days_absent >= days_enrolled": ("expect_column_pair_values_a_to_be_greater_than_b", "days_absent (as integer)"),
        "days_absent == days_enrolled": ("expect_column_pair_values_to_be_equal", "days_absent (as integer)"),
        "days_absent != days_enrolled": ("expect_select_column_values_to_be_unique_within_record", None),
        "days_absent <= 150": ("expect_column_values_to_be_between", "days_absent (as integer)"),
        "days_absent == 3": ("expect_column_values_to_be_in_set", "days_absent (as integer)"),
        "days_absent != 3": ("expect_column_values_to_not_be_in_set", "days_absent (as integer)"),
    }
    from schemas.contracts import ExtractContract

    for check, (etype, first) in expected.items():
        data = {**base, "rules": [{"id": "r", "check": check, "explain": "x"}]}
        c = ExtractContract.model_validate(data)
        e = next(e for e in gs.build_suite(c, drift=False).expectations if gs.check_meta(e).rule == "r")
        assert e.expectation_type == etype, check
        kw = e.configuration.kwargs
        if first is not None:
            assert kw.get("column_A", kw.get("column")) == first, check


def test_importing_the_modules_imports_neither_gx_nor_dagster() -> None:
    code = (
        "import sys, data_sharing.validation, data_sharing.feedback, schemas.gx_suite;"
        "bad = [m for m in ('great_expectations', 'dagster') if m in sys.modules];"
        "sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_gx_runs_quiet(gx_context) -> None:  # type: ignore[no-untyped-def]
    assert os.environ["GX_ANALYTICS_ENABLED"] == "false"
    bars = gx_context.variables.progress_bars
    assert bars is not None and bars.globally is False and bars.metric_calculations is False
    assert gx_context.config.analytics_enabled is False
