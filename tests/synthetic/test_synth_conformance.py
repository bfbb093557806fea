"""Every file of the synthetic city satisfies its extract contract, checked generically from `schemas/`.

Nothing here is written per extract: the checks read the contract objects (columns, types, codes,
ranges, patterns, lengths, cross-field rules, unique keys, references) and apply them to whatever the
generator wrote.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from schemas.contracts import ColumnSpec, ExtractContract
from synth_support import AS_OF, City  # type: ignore[import-not-found]
from synthetic.city import EXTRACTS

_INT = re.compile(r"^-?[0-9]+$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _typed(spec: ColumnSpec, values: pd.Series) -> pd.Series:
    """Parse present values by the column's type; NaN/NaT where a value does not parse."""
    if spec.type == "integer":
        ok = values.str.match(_INT)
        return pd.to_numeric(values.where(ok), errors="coerce")
    if spec.type == "number":
        return pd.to_numeric(values, errors="coerce")
    if spec.type == "date":
        ok = values.str.match(_DATE)
        return pd.to_datetime(values.where(ok), format="%Y-%m-%d", errors="coerce")
    return values


def _bound(spec: ColumnSpec, bound: object) -> object:
    return pd.Timestamp(bound) if spec.type == "date" else bound


def _problems(contract: ExtractContract, df: pd.DataFrame, as_of: dt.date) -> list[str]:
    problems: list[str] = []
    name = f"{contract.agency}/{contract.extract}"
    if list(df.columns) != contract.column_names:
        return [f"{name}: columns {list(df.columns)} are not the contract's {contract.column_names}"]
    typed: dict[str, pd.Series] = {}
    for col, spec in contract.columns.items():
        v = df[col]
        present = v != ""
        if spec.required and (~present).any():
            problems.append(f"{name}.{col}: {int((~present).sum())} blank values in a required column")
        if (v[present].str.strip() == "").any():
            problems.append(f"{name}.{col}: values made only of spaces")
        t = _typed(spec, v)
        typed[col] = t
        if spec.type in ("integer", "number", "date"):
            bad = present & t.isna()
            if bad.any():
                problems.append(f"{name}.{col}: {int(bad.sum())} values do not parse as {spec.type}, e.g. {v[bad].iloc[0]!r}")
        if spec.type == "code":
            bad = present & ~v.isin(list(spec.codes or {}))
            if bad.any():
                problems.append(f"{name}.{col}: codes outside the code set: {sorted(set(v[bad]))[:5]}")
        if spec.min is not None and (t[present] < _bound(spec, spec.min)).any():
            problems.append(f"{name}.{col}: values below {spec.min}")
        if spec.max is not None and (t[present] > _bound(spec, spec.max)).any():
            problems.append(f"{name}.{col}: values above {spec.max}")
        if spec.type == "date" and (t[present] > pd.Timestamp(as_of)).any():
            problems.append(f"{name}.{col}: dates after the as-of date {as_of}")
        if spec.pattern is not None:
            rx = re.compile(spec.pattern)
            bad = present & v.map(rx.search).isna()
            if bad.any():
                problems.append(f"{name}.{col}: values not matching {spec.pattern}, e.g. {v[bad].iloc[0]!r}")
        if spec.max_length is not None and (v.str.len() > spec.max_length).any():
            problems.append(f"{name}.{col}: values longer than {spec.max_length}")
    ops = {"<=": np.less_equal, "<": np.less, ">=": np.greater_equal, ">": np.greater, "==": np.equal,
           "!=": np.not_equal}
    for rule in contract.rules:
        cmp = rule.comparison
        scope = pd.Series(True, index=df.index)
        if rule.condition is not None:
            scope &= df[rule.condition[0]] == rule.condition[1]
        left = typed[cmp.left]
        if cmp.right_is_column:
            right = typed[cmp.right]
            both = scope & left.notna() & right.notna()
        else:
            right = pd.Series(float(cmp.right), index=df.index)
            both = scope & left.notna()
        ok = ops[cmp.op](left[both].to_numpy(), right[both].to_numpy())
        if not ok.all():
            problems.append(f"{name}: rule {rule.id} ({rule.check}) fails on {int((~ok).sum())} rows")
    if contract.unique_key:
        dup = df.duplicated(contract.unique_key)
        if dup.any():
            problems.append(f"{name}: {int(dup.sum())} rows repeat the unique key {contract.unique_key}")
    return problems


def test_every_extract_is_written_with_the_contract_name(city: City) -> None:
    stamp = AS_OF.strftime("%Y%m%d")
    assert set(city.summary.files) == set(city.contracts) == set(EXTRACTS)
    for (agency, extract), path in city.summary.files.items():
        assert path == city.out / "drop" / agency / f"{extract}_{stamp}.csv"
        raw = path.read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf")
        raw.decode("utf-8")  # UTF-8 throughout


@pytest.mark.parametrize("key", EXTRACTS, ids=lambda k: f"{k[0]}/{k[1]}")
def test_extract_satisfies_its_contract(city: City, key: tuple[str, str]) -> None:
    contract = city.contracts[key]
    df = city.extract(*key)
    assert len(df) > 0
    assert _problems(contract, df, AS_OF) == []
    assert len(df) == city.summary.rows[key] == city.json["files"][f"{key[0]}/{key[1]}"]["rows"]


@pytest.mark.parametrize("key", EXTRACTS, ids=lambda k: f"{k[0]}/{k[1]}")
def test_references_resolve(city: City, key: tuple[str, str]) -> None:
    contract = city.contracts[key]
    df = city.extract(*key)
    for ref in contract.references:
        target = city.extract(contract.agency, ref.extract)
        have = set(map(tuple, target[ref.columns].drop_duplicates().to_numpy()))
        need = set(map(tuple, df[ref.columns].drop_duplicates().to_numpy()))
        assert need <= have, f"{ref.id}: {len(need - have)} keys without a row in {ref.extract}"


def test_exact_duplicate_rows_only_where_no_unique_key(city: City) -> None:
    for key in EXTRACTS:
        df = city.extract(*key)
        n = int(df.duplicated().sum())
        if city.contracts[key].unique_key:
            assert n == 0, key
        expected = city.summary.hard_cases.get(f"exact_duplicate_rows_{key[0]}_{key[1]}", 0)
        assert n == expected, key


def test_validator_catches_a_broken_file(city: City) -> None:
    """The generic checks above are not vacuous: they fail on rows that break the contract."""
    contract = city.contracts[("fps", "attendance")]
    df = city.extract("fps", "attendance").copy()
    df.loc[df.index[0], "days_absent"] = str(int(df.days_enrolled.iloc[0]) + 1)
    df.loc[df.index[1], "school_year"] = "20x5"
    students = city.contracts[("fps", "students")]
    sdf = city.extract("fps", "students").copy()
    sdf.loc[sdf.index[0], "zip"] = "1234"
    sdf.loc[sdf.index[1], "grade_level"] = "13"
    sdf.loc[sdf.index[2], "first_name"] = ""
    assert len(_problems(contract, df, AS_OF)) == 2
    assert len(_problems(students, sdf, AS_OF)) == 3


def test_truth_files_have_no_date_after_as_of(city: City) -> None:
    for name in ("persons", "addresses"):
        df = city.truth(name)
        for col in df.columns:
            if col.endswith("_date") or col in ("valid_from", "valid_to"):
                present = df[col][df[col] != ""]
                assert (present <= AS_OF.isoformat()).all(), (name, col)
                assert present.str.match(_DATE).all(), (name, col)
