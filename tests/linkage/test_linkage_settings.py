"""The linkage settings file: loaded into typed objects; every mistake refused with a precise message."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from data_sharing.linkage.settings import SETTINGS_PATH, LinkageSettings, load_settings, parse_settings
from schemas.errors import ContractError, ContractErrors


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(SETTINGS_PATH.read_text(encoding="utf-8"))


def _err(data: dict[str, Any]) -> str:
    with pytest.raises((ContractError, ContractErrors)) as info:
        parse_settings(data, "settings.yaml")
    return str(info.value)


def test_the_shipped_settings_load() -> None:
    s = load_settings()
    assert isinstance(s, LinkageSettings)
    assert s.thresholds.lower < s.thresholds.upper
    assert {c.name for c in s.comparisons} >= {"name", "birth_date", "address", "sex"}
    # fuzzy levels on the Bloom filters, computed in SQL, and exact levels on keyed hashes
    sql = " ".join(lv.expanded_sql for c in s.comparisons for lv in c.levels)
    assert "bit_count" in sql and "::BIT" in sql and "birth_date_swapped_hash_l = birth_date_hash_r" in sql
    assert "last_name_part1_hash_l = last_name_part2_hash_r" in sql  # cross-column, one domain
    # the label carries version and content fingerprint; the Splink dictionary is complete
    assert s.label.startswith(f"{s.name}/v{s.version}/")
    d = s.splink_settings()
    assert d["link_type"] == "dedupe_only" and len(d["comparisons"]) == len(s.comparisons)
    assert all("l.source_key <> r.source_key" in r["blocking_rule"] for r in d["blocking_rules_to_generate_predictions"])
    # only encodings, never raw fields
    assert all(c.endswith(("_hash", "_bloom", "_bits", "_key")) for c in s.columns)


def test_fingerprint_follows_content(raw: dict[str, Any]) -> None:
    a = parse_settings(raw)
    b = parse_settings(copy.deepcopy(raw))
    assert a.fingerprint == b.fingerprint
    changed = copy.deepcopy(raw)
    changed["thresholds"]["upper"] = 0.999
    assert parse_settings(changed).fingerprint != a.fingerprint


def test_gamma_values_follow_splink(raw: dict[str, Any]) -> None:
    comp = parse_settings(raw).comparison("birth_date")
    names = comp.level_names_by_gamma()
    assert names[-1] == "missing" and names[0] == "else" and max(names) == len(comp.levels) - 2
    assert comp.gamma("exact") == max(names)


@pytest.mark.parametrize(
    ("mutate", "where", "what"),
    [
        (lambda d: d["comparisons"][1]["levels"][1].update(sql="birth_dte_hash_l = birth_date_hash_r"),
         "comparisons[1].levels[1].sql", "unknown column birth_dte_hash_l"),
        (lambda d: d["comparisons"][1]["levels"][1].update(sql="birth_date_hash_l = = birth_date_hash_r"),
         "comparisons[1].levels[1].sql", "not valid DuckDB SQL"),
        (lambda d: d["comparisons"][1]["levels"][1].update(sql="l.birth_date_hash = r.birth_date_hash"),
         "comparisons[1].levels[1].sql", "<column>_l / <column>_r"),
        (lambda d: d["comparisons"][1]["levels"][1].update(sql="first_name_l = first_name_r"),
         "comparisons[1].levels[1].sql", "unknown column first_name_l"),  # a raw field is not a column
        (lambda d: d["comparisons"][1]["levels"].pop(), "comparisons[1]", "last level must be `else: true`"),
        (lambda d: d["comparisons"][1]["levels"].append({"name": "exact", "sql": "sex_hash_l = sex_hash_r"}),
         "comparisons[1]", "repeated: exact"),
        (lambda d: d["comparisons"][1]["levels"][2].update(sql="dice(birth_date_hash) > 0.5"),
         "comparisons[1].levels[2].sql", "takes a Bloom filter column"),
        (lambda d: d["thresholds"].update(lower=0.99, upper=0.5), "thresholds", "lower (0.99) must be below upper (0.5)"),
        (lambda d: d["thresholds"].update(upper=1.5), "thresholds.upper", "less than 1"),
        (lambda d: d["blocking_rules"][0].update(sql="first_name_birth_date_hash = 1"), "blocking_rules[0].sql",
         "l.<column> / r.<column>"),
        (lambda d: d["blocking_rules"][0].update(sql="l.first_name_birth_date_hash = r.nope"), "blocking_rules[0].sql",
         "unknown column r.nope"),
        (lambda d: d["blocking_rules"][0].update(sql="(select 1)"), "blocking_rules[0].sql", "condition, not a query"),
        (lambda d: d["guards"]["sibling"][0]["when"].update(name=["nope"]), "",
         "guards.sibling[0].when.name: comparison name has no level nope"),
        (lambda d: d["guards"]["parent_child"].update(comparison="dob"), "", "no comparison named dob"),
        (lambda d: d["guards"].pop("concurrent_ids"), "", "guards.sibling[1].unless_sequential: needs guards.concurrent_ids"),
        (lambda d: d["guards"]["sibling"][3].update(unless_sequential=True), "",
         "guards.sibling[3].unless_sequential: needs guards.concurrent_ids (one with disjoint_is_sequential) "
         "and pairs: within_agency"),
        (lambda d: d["guards"]["sibling"][2]["distinct_common"].update(column="name_bloom"), "",
         "guards.sibling[2].distinct_common.column: name_bloom is not a keyed-hash encoding column"),
        (lambda d: d["guards"]["sibling"][2]["distinct_common"].update(column="first_nme_hash"), "",
         "first_nme_hash is not a keyed-hash encoding column"),
        (lambda d: d["guards"]["sibling"][2]["distinct_common"].update(min_share=0.5),
         "guards.sibling[2].distinct_common.min_share", "less than or equal to 0.1"),
        (lambda d: d["thresholds"].update(upper_within_agency=0.1), "thresholds",
         "lower (0.3) must be below upper_within_agency (0.1)"),
        # spells alone never tell a sequence: a guard lifted for sequential ids needs a period that does
        (lambda d: d["guards"]["concurrent_ids"].pop(0), "", "guards.sibling[1].unless_sequential: needs"),
        (lambda d: d["guards"]["concurrent_ids"][0].update(min_shared=0), "guards.concurrent_ids[0].min_shared",
         "greater than or equal to 1"),
        (lambda d: d["guards"]["concurrent_ids"][1].pop("agency"), "guards.concurrent_ids[1]",
         "source: needs agency"),
        (lambda d: d.update(colour="blue"), "colour", "unknown key"),
        (lambda d: d["comparisons"][0]["levels"][1].update(tf_column="first_name"), "comparisons[0].levels[1]",
         "tf_column first_name is not a linkage encoding column"),
        (lambda d: d["derived_columns"].update(first_name_hash="sex_hash"), "derived_columns",
         "may not reuse an encoding column's name"),
        (lambda d: d["derived_columns"].update(x="l.sex_hash"), "derived_columns", "one record's columns"),
        (lambda d: d["training"].pop("em_blocking_rules"), "training.em_blocking_rules", "Field required"),
    ],
)
def test_wrong_settings_are_refused_precisely(raw: dict[str, Any], mutate: Any, where: str, what: str) -> None:
    data = copy.deepcopy(raw)
    mutate(data)
    msg = _err(data)
    assert "settings.yaml" in msg
    assert what in msg, msg
    if where:
        assert f"settings.yaml: {where}" in msg, msg


def test_a_missing_or_broken_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")
    bad = tmp_path / "dup.yaml"
    bad.write_text("version: 1\nversion: 2\n", encoding="utf-8")
    with pytest.raises(ContractError, match="duplicate key"):
        load_settings(bad)
