"""Fixtures for validation tests: rows generated from the contracts, bad values per check kind.

Valid rows are derived from each contract's column specs (codes, bounds, patterns, lengths), so a new
contract gets passing and failing fixtures without new test code. GX is imported once per session.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from schemas.contracts import ColumnSpec, ExtractContract, load_extract_contracts

CONTRACTS: dict[tuple[str, str], ExtractContract] = load_extract_contracts()
PATTERN_EXAMPLES = ["02139", "J45.909", "03", "A1", "ABC", "1"]
ROW_KINDS = ("required", "type", "real_date", "codes", "range", "pattern", "max_length")


def contract(agency: str, extract: str) -> ExtractContract:
    return CONTRACTS[(agency, extract)]


def column_kinds(spec: ColumnSpec) -> list[str]:
    """The row-level checks the suite declares for a column (mirrors the builder, from the contract)."""
    kinds = []
    if spec.required:
        kinds.append("required")
    if spec.type in ("integer", "number", "date"):
        kinds.append("type")
    if spec.type == "date":
        kinds.append("real_date")
    if spec.codes:
        kinds.append("codes")
    if spec.min is not None or spec.max is not None:
        kinds.append("range")
    if spec.pattern is not None:
        kinds.append("pattern")
    if spec.max_length is not None:
        kinds.append("max_length")
    return kinds


def all_column_cases() -> list[tuple[str, str, str, str]]:
    return [
        (c.agency, c.extract, spec.name, kind)
        for c in CONTRACTS.values()
        for spec in c.columns.values()
        for kind in column_kinds(spec)
    ]


def valid_value(spec: ColumnSpec, i: int) -> str:
    if spec.codes:
        codes = list(spec.codes)
        return codes[i % len(codes)]
    if spec.type in ("integer", "number"):
        v = spec.min if spec.min is not None else 0
        return str(int(v)) if spec.type == "integer" else f"{float(v):.1f}"
    if spec.type == "date":
        base = spec.min if spec.min is not None else dt.date(2019, 1, 1)
        return (base + dt.timedelta(days=365)).isoformat()  # type: ignore[operator]
    if spec.pattern is not None:
        for example in PATTERN_EXAMPLES:
            if re.search(spec.pattern, example):
                return example
        raise AssertionError(f"no example value matches {spec.pattern!r}: add one to PATTERN_EXAMPLES")
    text = f"{spec.name[:3].upper()}{i:05d}"
    return text[: spec.max_length] if spec.max_length else text


def valid_rows(c: ExtractContract, n: int) -> list[dict[str, str]]:
    return [{name: valid_value(spec, i) for name, spec in c.columns.items()} for i in range(n)]


def shift(spec: ColumnSpec, value: str, delta: int) -> str:
    """A value ``delta`` units (days or ones) away from ``value``."""
    if spec.type == "date":
        return (dt.date.fromisoformat(value) + dt.timedelta(days=delta)).isoformat()
    return str(int(value) + delta) if spec.type == "integer" else str(float(value) + delta)


def bad_value(spec: ColumnSpec, kind: str) -> str:
    if kind == "required":
        return ""
    if kind == "type":
        return {"integer": "12a", "number": "1,5", "date": "2026/01/05"}[spec.type]
    if kind == "real_date":
        return "2026-02-30"
    if kind == "codes":
        return "ZZ9"
    if kind == "range":
        if spec.type == "date":
            return (spec.min - dt.timedelta(days=1)).isoformat() if spec.min is not None else (spec.max + dt.timedelta(days=1)).isoformat()  # type: ignore[operator]
        if spec.max is not None:
            return str(int(spec.max) + 1)
        return str(int(spec.min) - 1)  # type: ignore[arg-type]
    if kind == "pattern":
        return "!!"
    if kind == "max_length":
        return "A" * (int(spec.max_length or 0) + 1)
    raise ValueError(kind)


def table_of(rows: list[dict[str, str]], columns: list[str] | None = None) -> pa.Table:
    cols = columns or (list(rows[0]) if rows else [])
    return pa.table({c: pa.array([r.get(c, "") for r in rows], pa.string()) for c in cols})


def problems_at(result: Any, row_number: int) -> list[Any]:
    return [p for p in result.problems if p.row_number == row_number]


@pytest.fixture(scope="session")
def gx_context() -> Iterator[Any]:
    """The one ephemeral GX context of the session (GX is slow to import)."""
    from data_sharing.validation import engines

    yield engines._gx_context()
