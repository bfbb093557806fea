"""Column lineage of the public tier, in plain Python: which partner-tier columns each published column reads.

Shared by the Dagster assets (``assets/lineage.py`` turns it into ``TableColumnLineage``) and the
release audit report (``warehouse/reports/audit.py``). Only names: no value ever reaches this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from schemas.indicators import STUDENT_DIMENSIONS, IndicatorDefinition

_PERSON = ("child_key", "source_key")

def _kind_columns() -> dict[str, dict[str, tuple[str, ...]]]:
    from schemas.indicators import KINDS
    from schemas.roles import ROLES

    def table_col(ref: str) -> str:
        role, col = ref.split(".", 1)
        return f"{ROLES[role].table}.{col}"

    return {name: {pub: tuple(table_col(c) for c in cols) for pub, cols in k.lineage.items()} for name, k in KINDS.items()}


KIND_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = _kind_columns()
"""Per computation kind, the partner-tier columns behind each published column (``<table>.*`` = its person key)."""

DIMENSION_COLUMNS: dict[str, tuple[str, ...]] = {
    **{d: (f"enrolments.{d}",) for d in STUDENT_DIMENSIONS},
    "program": ("program_enrolments.program",),
    "all": (),
}
"""The partner-tier column a dimension's groups come from."""


def _expand(cols: Iterable[str]) -> list[str]:
    out: list[str] = []
    for c in cols:
        table, col = c.split(".", 1)
        out += [f"{table}.{p}" for p in _PERSON] if col == "*" else [c]
    return list(dict.fromkeys(out))


def indicator_column_sources(definitions: Mapping[str, IndicatorDefinition]) -> dict[str, list[str]]:
    """Published column -> the qualified partner-tier columns it is computed from, over the definitions."""
    from warehouse.indicators import PUBLISHED_COLUMNS

    out: dict[str, list[str]] = {c: [] for c in ("release_id", *PUBLISHED_COLUMNS)}
    for d in definitions.values():
        kind = KIND_COLUMNS[d.kind]
        person = _expand(kind["person"])
        counts = _expand(kind["numerator"]) + _expand(kind["denominator"]) + person
        groups = [c for dim in d.dimensions for c in DIMENSION_COLUMNS[dim]]
        out["period"] += _expand(kind["period"])
        out["school_id"] += _expand(kind["school_id"])
        out["group"] += groups
        out["numerator"] += _expand(kind["numerator"]) + person
        out["denominator"] += _expand(kind["denominator"]) + person
        for derived in ("rate", "suppressed", "suppression_reason"):  # from the counts (disclosure control)
            out[derived] += counts
    return {k: sorted(set(v)) for k, v in out.items()}


def table_extracts(tables: Mapping[str, object] | None = None) -> dict[str, list[str]]:
    """Partner-tier table -> the extracts (``agency/extract``) loaded into it (several may share a role's table)."""
    from warehouse.load import EXTRACT_TABLES

    out: dict[str, list[str]] = {}
    for key, et in sorted((EXTRACT_TABLES if tables is None else tables).items()):
        out.setdefault(et.table.name, []).append(key)  # type: ignore[attr-defined]
    return out
