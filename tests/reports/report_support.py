"""A release made straight from counts: indicator rows at any size, protected by the real disclosure control
(``protect_rows``) and written as a release (``releases`` row, ``indicator_values``, ``current_release``).

The cheapest honest way to a release of a given size: a release's size is its cells (indicator x period
x school-or-city x dimension x group), not its children, and computing them from a synthetic city's
warehouse would only cost time. Counts are consistent the way a real release's are: within a school the
groups of every (non-overlapping) dimension add up to its all-students row, the schools add up to the city
where the kind says they do, and overlapping program groups are independent subsets.

Test and benchmark scaffolding only; nothing in the pipeline imports it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Engine, insert, select

from schemas.indicators import DefinitionSet, IndicatorDefinition, load_indicator_definitions
from warehouse.indicators import ROW_COLUMNS, protect_rows
from warehouse.models import CurrentRelease, IndicatorValue, Release
from warehouse.releases import release_notes

GROUPS = {
    "race_ethnicity": (["HI", "AI", "AS", "BL", "PI", "WH", "MR", "UNKNOWN"], [0.30, 0.01, 0.06, 0.30, 0.005, 0.28, 0.04, 0.005]),
    "sex": (["F", "M", "X"], [0.49, 0.49, 0.02]),
    "english_learner": (["Y", "N"], [0.12, 0.88]),
    "disability": (["Y", "N"], [0.14, 0.86]),
    "econ_disadvantaged": (["Y", "N"], [0.55, 0.45]),
    "homeless": (["Y", "N"], [0.04, 0.96]),
}
PROGRAMS = {"SNAP": 0.45, "TANF": 0.08, "WIC": 0.15, "CHILD_CARE_SUBSIDY": 0.08, "CHILD_WELFARE": 0.04,
            "FOSTER_CARE": 0.02, "HOUSING_ASSISTANCE": 0.12, "NONE": 0.40}
K = {"fps": 10, "fhd": 11, "dhs": 10}
LINKAGE = {"link_rates": {"a->b": {"persons": 1200, "linked": 1164, "rate": 0.97}}, "persons": {"total": 1500}}


def synthetic_rows(
    definitions: DefinitionSet, *, schools: int, periods: Sequence[int], per_school: int, seed: int = 7,
    ks: dict[str, int] | None = None,
) -> pd.DataFrame:
    """Unprotected rows (``ROW_COLUMNS``) for every definition, period, school (and the city) and group."""
    from warehouse.releases import min_cell_sizes_by_role

    rng = np.random.default_rng(seed)
    role_ks, _ = min_cell_sizes_by_role(None, ks or K)  # agency -> k, through the reference contracts' roles
    ids = [f"S{i:03d}" for i in range(1, schools + 1)]
    out: list[tuple] = []
    for d in sorted(definitions.values(), key=lambda d: d.id):
        k = max(role_ks[r] for r in d.roles_read)
        base = rng.uniform(0.15, 0.85)
        served, scale = _served(d, ids)
        for period in periods:
            sizes = rng.integers(max(1, per_school * scale // 4), per_school * scale * 2, size=len(served))
            rate = np.clip(base + 0.02 * (period - periods[0]) + rng.normal(0, 0.08, size=len(served)), 0.02, 0.98)
            nums = rng.binomial(sizes, rate)
            city: dict[tuple[str, str], list[int]] = {}
            for s, n_all, m_all in zip(served, sizes, nums, strict=True):
                cells = _school_cells(rng, d.dimensions, int(n_all), int(m_all))
                if "program" in d.dimensions:
                    excluded = set(d.per_school_excluded_groups.get("program", []))
                    cells = [c for c in cells if not (c[0] == "program" and c[1] in excluded)]
                for dim, grp, m, n in cells:
                    if n >= 1:
                        out.append((d.indicator, d.id, period, s, dim, grp, m, n, k))
                    acc = city.setdefault((dim, grp), [0, 0])
                    acc[0] += m
                    acc[1] += n
            if "program" in d.dimensions:  # city-wide program rows: independent subsets of the city's students
                n_city = int(sizes.sum())
                m_city = int(nums.sum())
                for dim, grp, m, n in _program_cells(rng, n_city, m_city):
                    city[(dim, grp)] = [m, n]
            for (dim, grp), (m, n) in sorted(city.items()):
                if n >= 1:
                    out.append((d.indicator, d.id, period, "ALL", dim, grp, m, n, k))
    rows = pd.DataFrame(out, columns=list(ROW_COLUMNS))
    for c in ("period", "numerator", "denominator", "k"):
        rows[c] = rows[c].astype("int64")
    return rows


def _served(d: IndicatorDefinition, ids: list[str]) -> tuple[list[str], int]:
    """The schools an indicator's students attend, and their size in cohorts: a grade-level indicator is
    published by the elementary (first 60%), middle (next 20%) or high schools (last 20%) only; one over
    every grade (chronic absence, visits) by every school, with about eight cohorts each."""
    grades = list(d.parameters.get("grade_levels") or ([d.parameters["grade_level"]] if "grade_level" in d.parameters else []))
    n = len(ids)
    elementary, middle, high = ids[: max(1, n * 3 // 5)], ids[n * 3 // 5: max(n * 3 // 5 + 1, n * 4 // 5)], ids[n * 4 // 5:] or ids[-1:]
    if d.period == "cohort_year":
        return high, 1
    if not grades:
        return ids, 8
    if all(str(g) in ("PK", "KG", "01", "02", "03", "04", "05") for g in grades):
        return elementary, 1
    if all(str(g) in ("06", "07", "08") for g in grades):
        return middle, 1
    return ids, 2


def _school_cells(rng: np.random.Generator, dims: Sequence[str], n: int, m: int) -> list[tuple[str, str, int, int]]:
    cells: list[tuple[str, str, int, int]] = []
    for dim in dims:
        if dim == "all":
            cells.append(("all", "all", m, n))
        elif dim == "program":
            cells += _program_cells(rng, n, m)
        else:
            groups, p = GROUPS[dim]
            p = np.asarray(p) / np.sum(p)
            ms = rng.multinomial(m, p)
            rest = rng.multinomial(n - m, p)
            cells += [(dim, g, int(a), int(a + b)) for g, a, b in zip(groups, ms, rest, strict=True)]
    return cells


def _program_cells(rng: np.random.Generator, n: int, m: int) -> list[tuple[str, str, int, int]]:
    cells = []
    for grp, share in PROGRAMS.items():
        den = int(rng.binomial(n, share))
        num = int(rng.hypergeometric(m, max(n - m, 0), den)) if den else 0
        cells.append(("program", grp, num, den))
    return cells


def publish_rows(
    engine: Engine, rows: pd.DataFrame, definitions: DefinitionSet, *, source_files: int = 9,
    linkage: dict | None = None, now: dt.datetime | None = None,
) -> int:
    """Protect ``rows`` (real disclosure control) and write them as the new current release; its id."""
    published = protect_rows(rows, definitions)
    now = now or dt.datetime(2026, 11, 23, 7, 30, tzinfo=dt.timezone.utc)
    files = [{"agency": "a", "extract": f"e{i}", "manifest_id": i, "sha256": f"{i:064x}"} for i in range(1, source_files + 1)]
    versions = definitions.versions()
    with engine.begin() as conn:
        rid = conn.execute(insert(Release.__table__).values(
            run_id="synthetic", created_at=now, definitions=json.dumps(versions, sort_keys=True),
            source_files=json.dumps(files), linkage_quality=json.dumps(linkage if linkage is not None else LINKAGE),
            rows=len(published), suppressed_rows=int(published["suppressed"].sum()), notes=release_notes(definitions),
        ).returning(Release.__table__.c.release_id)).scalar_one()
        frame = published.copy()
        frame.insert(0, "release_id", rid)
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        conn.execute(insert(IndicatorValue.__table__), records)
        cr = CurrentRelease.__table__
        if conn.execute(select(cr.c.name)).first() is None:
            conn.execute(insert(cr).values(name="indicators", release_id=rid, updated_at=now))
        else:
            conn.execute(cr.update().values(release_id=rid, updated_at=now))
    return int(rid)


def default_definitions() -> DefinitionSet:
    return load_indicator_definitions()
