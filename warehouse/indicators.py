"""Indicators computed in the database from declarative definitions (``schemas/indicators/*.yaml``).

Every definition selects one computation **kind** and parameterises it; the kinds are implemented once
here, as SQLAlchemy Core (no SQL text, bound parameters only), so the same definition runs on SQLite and
PostgreSQL. A city adds an indicator of an existing kind with a definition file alone.

Each kind is one object in ``schemas/kinds.py`` (parameters, roles read, period, whether schools add up,
lineage, and its ``summary``: the unit, one per student and period, and its numerator flag); its SQL is
the function ``kind_<name>`` here (:data:`KINDS`). Chronic absence compares exactly: ``absent * q >=
enrolled * p`` for threshold p/q.

Shared rules (SPEC, "Details that every implementation must share"):

* A student is its ``child_key`` (``source_key`` while not linked: school-only indicators still count it,
  it just never matches another agency's record). Only records linked to a student enter the indicators:
  health and human-services rows join through ``child_key`` to a student's enrolment.
* Attributes, grade and school come from the student's enrolment row with the latest ``enroll_date`` that
  school year (ties: the later row in the file; blank dates sort first); the one exception is chronic
  absence per school. A blank attribute is published as group ``UNKNOWN`` so that groups still add up.
* Rows without a school year or school cannot be placed and are not counted.

The computation materialises a few temporary tables (student-years, program memberships, period dates,
a per-definition "cube" of counts by period, school and every attribute) and reads one row per
indicator, period, school (or ``ALL``), dimension and group back; disclosure control then runs per
indicator and period in Python (:func:`protect_rows`), with ``k`` = the largest ``min_cell_size`` of the
MOUs of the agencies sending the extract roles the definition reads (:func:`role_min_cell_sizes`). A kind is
declared once in ``schemas/kinds.py``; its SQL is the function ``kind_<name>`` here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    Integer,
    Select,
    String,
    Table,
    and_,
    case,
    delete,
    extract,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    union_all,
)

from data_sharing.disclosure import ALL, CITY, protect_table, redact
from schemas.indicators import KINDS as KIND_SPECS
from schemas.indicators import OVERLAPPING_DIMENSIONS, STUDENT_DIMENSIONS, DefinitionSet, IndicatorDefinition
from warehouse.load import EXTRACT_TABLES, ExtractTable, analyze, temp_table
from warehouse.models import Assessment, Attendance, Enrolment, GraduationOutcome, HealthEncounter, Immunization, ProgramEnrolment
from warehouse.partitions import year_slices

UNKNOWN_GROUP = "UNKNOWN"
"""Group of a student whose attribute is blank (keeps every dimension adding up to its ``all`` row)."""
SCHOOL_YEAR_START_MONTH = 7
"""A school year runs July 1 (of ``school_year - 1``) to June 30 (of ``school_year``), both inclusive."""
PUBLISHED_COLUMNS = (
    "indicator", "period", "school_id", "dimension", "group", "numerator", "denominator", "rate",
    "suppressed", "suppression_reason",
)
ROW_COLUMNS = ("indicator", "definition", "period", "school_id", "dimension", "group", "numerator", "denominator", "k")

ATTRS = STUDENT_DIMENSIONS


class IndicatorError(ValueError):
    """The indicators cannot be computed as defined (no agreement for an agency, a school named ALL...)."""


def _person(table: Table) -> Any:
    """The student/child a row belongs to: its child_key, else its (per-agency) source_key."""
    return func.coalesce(table.c.child_key, table.c.source_key)


def _attr(col: Any) -> Any:
    return func.coalesce(col, literal(UNKNOWN_GROUP, String))


def school_year_of(date_col: Any) -> Any:
    """The school year a date falls in (July 1 - June 30 windows)."""
    return extract("year", date_col) + case((extract("month", date_col) >= SCHOOL_YEAR_START_MONTH, 1), else_=0)


@dataclass
class _Run:
    """Temporary tables of one computation, built on first use (on one connection, in one transaction)."""

    conn: Connection
    _cache: dict[str, Table] = field(default_factory=dict)
    _periods: list[int] | None = None

    @property
    def pg(self) -> bool:
        return self.conn.dialect.name == "postgresql"

    def text_type(self) -> String:
        """Keys and groups compare byte-wise on PostgreSQL (COLLATE "C": fast sorts and hashes)."""
        return String(collation="C") if self.pg else String()

    def bytewise(self, expr: Any) -> Any:
        return expr.collate("C") if self.pg else expr

    # -- shared tables -----------------------------------------------------------------------------
    def student_year(self) -> Table:
        """One row per student and school year: the latest-enroll_date enrolment (ties: later row)."""
        if "sy" in self._cache:
            return self._cache["sy"]
        e = Enrolment.__table__
        txt = self.text_type
        t = temp_table(
            self.conn, "_c2c_student_year",
            Column("person", txt(), nullable=False), Column("child_key", txt()), Column("school_year", Integer, nullable=False),
            Column("school_id", txt(), nullable=False), Column("grade_level", txt()), *(Column(a, txt(), nullable=False) for a in ATTRS),
        )
        person = _person(e)
        rn = func.row_number().over(
            partition_by=[self.bytewise(person), e.c.school_year],
            order_by=[e.c.enroll_date.desc().nulls_last(), e.c.manifest_id.desc(), e.c.source_row.desc()],
        )
        cols = ["person", "child_key", "school_year", "school_id", "grade_level", *ATTRS]
        for part in year_slices(self.conn, e):  # one school year (partition) at a time on PostgreSQL
            ranked = (
                select(
                    person.label("person"), e.c.child_key, e.c.school_year, e.c.school_id, e.c.grade_level,
                    *(_attr(e.c[a]).label(a) for a in ATTRS), rn.label("rn"),
                )
                .where(e.c.school_year.is_not(None), e.c.school_id.is_not(None), part)
                .subquery("ranked")
            )
            self.conn.execute(insert(t).from_select(cols, select(*(ranked.c[c] for c in cols)).where(ranked.c.rn == 1)))
        self._index(t, "person", "school_year")
        self._index(t, "child_key", "school_year")
        analyze(self.conn, t)
        self._cache["sy"] = t
        return t

    def periods(self) -> list[int]:
        """School years present in the enrolments."""
        if self._periods is None:
            e = Enrolment.__table__
            years = self.conn.execute(select(e.c.school_year).where(e.c.school_year.is_not(None)).distinct()).scalars()
            self._periods = sorted(int(y) for y in years if 1 < int(y) <= 9999)
        return self._periods

    def windows(self) -> Table:
        """period, window_start (July 1), window_end (June 30) for every school year present."""
        if "windows" in self._cache:
            return self._cache["windows"]
        t = temp_table(self.conn, "_c2c_windows", Column("period", Integer, primary_key=True, autoincrement=False), Column("window_start", Date), Column("window_end", Date))
        rows = [
            {"period": p, "window_start": dt.date(p - 1, SCHOOL_YEAR_START_MONTH, 1), "window_end": dt.date(p, SCHOOL_YEAR_START_MONTH, 1) - dt.timedelta(days=1)}
            for p in self.periods()
        ]
        if rows:
            self.conn.execute(insert(t), rows)
        analyze(self.conn, t)
        self._cache["windows"] = t
        return t

    def period_dates(self, key: str, make: Callable[[int], dt.date]) -> Table:
        """A per-period date (e.g. a dose cutoff) under ``key`` in one shared table (key, period, d)."""
        t = self._cache.get("dates")
        if t is None:
            t = temp_table(self.conn, "_c2c_period_dates", Column("key", String, primary_key=True), Column("period", Integer, primary_key=True, autoincrement=False), Column("d", Date))
            self._cache["dates"] = t
        rows = []
        for p in self.periods():
            try:
                rows.append({"key": key, "period": p, "d": make(p)})
            except ValueError:
                continue
        if rows:
            self.conn.execute(insert(t), rows)
        analyze(self.conn, t)
        return t

    def membership(self) -> Table:
        """child_key, school_year, program for every program enrolment overlapping a school year (distinct)."""
        if "membership" in self._cache:
            return self._cache["membership"]
        pe = ProgramEnrolment.__table__
        w = self.windows()
        txt = self.text_type
        t = temp_table(self.conn, "_c2c_membership", Column("child_key", txt(), nullable=False), Column("school_year", Integer, nullable=False), Column("program", txt(), nullable=False))
        overlap = and_(pe.c.start_date <= w.c.window_end, or_(pe.c.end_date.is_(None), pe.c.end_date >= w.c.window_start))
        sel = (
            select(pe.c.child_key, w.c.period, pe.c.program)
            .select_from(pe.join(w, overlap))
            .where(pe.c.child_key.is_not(None), pe.c.program.is_not(None), pe.c.start_date.is_not(None))
            .distinct()
        )
        self.conn.execute(insert(t).from_select(["child_key", "school_year", "program"], sel))
        self._index(t, "child_key", "school_year")
        analyze(self.conn, t)
        self._cache["membership"] = t
        return t

    def attendance(self, level: str) -> Table:
        """Attendance summed per student, year (and school, at the school level), with the student's attributes.

        person, period, school_id (ALL city-wide), child_key, the attributes, de (days enrolled), da (days
        absent). Only students with an enrolment that year (their attributes come from it). City-wide sums
        are the school-level sums added up per student.
        """
        key = "att_" + level
        if key in self._cache:
            return self._cache[key]
        txt = self.text_type
        t = temp_table(
            self.conn, "_c2c_att_" + level,
            Column("person", txt(), nullable=False), Column("period", Integer, nullable=False), Column("school_id", txt(), nullable=False),
            Column("child_key", txt()), *(Column(x, txt(), nullable=False) for x in ATTRS), Column("de", BigInteger), Column("da", BigInteger),
        )
        cols = ["person", "period", "school_id", "child_key", *ATTRS, "de", "da"]
        if level == "school":
            a = Attendance.__table__
            sy = self.student_year()
            person = self.bytewise(_person(a))
            school = self.bytewise(a.c.school_id)
            for part in year_slices(self.conn, a):  # one school year (partition) at a time on PostgreSQL
                summed = (
                    select(
                        person.label("person"), a.c.school_year.label("school_year"), school.label("school_id"),
                        func.sum(a.c.days_enrolled).label("de"), func.sum(a.c.days_absent).label("da"),
                    )
                    .where(a.c.school_year.is_not(None), a.c.school_id.is_not(None), part)
                    .group_by(person, a.c.school_year, school)
                    .subquery("summed")
                )
                self.conn.execute(insert(t).from_select(cols, select(
                    summed.c.person, summed.c.school_year, summed.c.school_id, sy.c.child_key, *(sy.c[x] for x in ATTRS),
                    summed.c.de, summed.c.da,
                ).select_from(summed.join(sy, and_(sy.c.person == summed.c.person, sy.c.school_year == summed.c.school_year)))))
        else:
            s = self.attendance("school")
            same = [s.c.person, s.c.period, s.c.child_key, *(s.c[x] for x in ATTRS)]  # attributes: one per person-year
            sel = select(
                s.c.person, s.c.period, literal(CITY, String), s.c.child_key, *(s.c[x] for x in ATTRS),
                func.sum(s.c.de), func.sum(s.c.da),
            ).group_by(*same)
            self.conn.execute(insert(t).from_select(cols, sel))
        self._index(t, "child_key", "period")
        analyze(self.conn, t)
        self._cache[key] = t
        return t

    def cube(self) -> Table:
        """Counts per definition, period, school (or ALL), every student attribute and program."""
        if "cube" in self._cache:
            return self._cache["cube"]
        txt = self.text_type
        t = temp_table(
            self.conn, "_c2c_cube",
            Column("defn", txt(), nullable=False), Column("period", Integer, nullable=False), Column("school_id", txt(), nullable=False),
            *(Column(a, txt()) for a in ATTRS), Column("program", txt()), Column("den", BigInteger, nullable=False), Column("num", BigInteger, nullable=False),
        )
        self._cache["cube"] = t
        return t

    def _index(self, table: Table, *cols: str) -> None:
        # SQLite joins by nested loops over an index; PostgreSQL hash-joins the temporary tables.
        if self.conn.dialect.name == "sqlite":
            from sqlalchemy import Index

            Index(f"ix{table.name}_{'_'.join(cols)}", *(table.c[c] for c in cols)).create(self.conn)


# --------------------------------------------------------------------------------------------------
# Kinds: each returns the unit selects by level ("school", and "city" when the city is not the sum of
# the schools). A unit select has columns period, school_id, child_key, the student attributes, num
# (0/1) and, for the program kind, program.


Units = dict[str, Select[Any]]


def _attendance_units(run: _Run, d: IndicatorDefinition, level: str) -> Select[Any]:
    t = run.attendance(level)
    p = d.params
    frac = p.threshold_fraction
    num = case((t.c.da * frac.denominator >= t.c.de * frac.numerator, 1), else_=0)
    return select(t.c.period, t.c.school_id, t.c.child_key, *(t.c[x] for x in ATTRS), num.label("num")).where(
        t.c.de >= p.min_days_enrolled
    )


def kind_chronic_absence(run: _Run, d: IndicatorDefinition) -> Units:
    return {level: _attendance_units(run, d, level) for level in ("school", "city")}


def kind_chronic_absence_by_program(run: _Run, d: IndicatorDefinition) -> Units:
    m = run.membership()
    out: Units = {}
    for level in ("school", "city"):
        u = _attendance_units(run, d, level).subquery("u")
        program = func.coalesce(m.c.program, literal(d.params.none_group, String))
        out[level] = select(
            u.c.period, u.c.school_id, u.c.child_key, *(u.c[x] for x in ATTRS), program.label("program"), u.c.num
        ).select_from(u.outerjoin(m, and_(m.c.child_key == u.c.child_key, m.c.school_year == u.c.period)))
    return out


def kind_assessment_rate(run: _Run, d: IndicatorDefinition) -> Units:
    a = Assessment.__table__
    sy = run.student_year()
    p = d.params
    person = _person(a)
    best = (
        select(person.label("person"), a.c.school_year.label("school_year"), func.max(a.c.performance_level).label("best"))
        .where(
            a.c.grade_level == p.grade_level, a.c.subject == p.subject,
            a.c.performance_level.is_not(None), a.c.school_year.is_not(None),
        )
        .group_by(person, a.c.school_year)
        .subquery("best")
    )
    hit = best.c.best >= p.min_level
    if p.max_level is not None:
        hit = and_(hit, best.c.best <= p.max_level)
    sel = select(
        best.c.school_year.label("period"), sy.c.school_id, sy.c.child_key, *(sy.c[x] for x in ATTRS),
        case((hit, 1), else_=0).label("num"),
    ).select_from(best.join(sy, and_(sy.c.person == best.c.person, sy.c.school_year == best.c.school_year)))
    return {"school": sel}


def kind_graduation_rate(run: _Run, d: IndicatorDefinition) -> Units:
    g = GraduationOutcome.__table__
    e = Enrolment.__table__
    p = d.params
    gperson = _person(g)
    latest = (
        select(
            gperson.label("person"), g.c.cohort_year, g.c.outcome,
            func.row_number().over(partition_by=[gperson, g.c.cohort_year], order_by=[g.c.manifest_id.desc(), g.c.source_row.desc()]).label("rn"),
        )
        .where(g.c.outcome.is_not(None), g.c.cohort_year.is_not(None))
        .subquery("latest")
    )
    cohort = (
        select(latest.c.person, latest.c.cohort_year, latest.c.outcome)
        .where(latest.c.rn == 1, latest.c.outcome.not_in(list(p.excluded_outcomes)))
        .subquery("cohort")
    )
    rn = func.row_number().over(
        partition_by=[cohort.c.person, cohort.c.cohort_year],
        order_by=[e.c.enroll_date.desc().nulls_last(), e.c.manifest_id.desc(), e.c.source_row.desc()],
    )
    placed = (
        select(
            cohort.c.cohort_year, cohort.c.outcome, e.c.school_id, e.c.child_key, *(_attr(e.c[x]).label(x) for x in ATTRS), rn.label("rn"),
        )
        .select_from(cohort.join(e, and_(_person(e) == cohort.c.person, e.c.school_year <= cohort.c.cohort_year)))
        .where(e.c.school_id.is_not(None), e.c.school_year.is_not(None))
        .subquery("placed")
    )
    sel = select(
        placed.c.cohort_year.label("period"), placed.c.school_id, placed.c.child_key, *(placed.c[x] for x in ATTRS),
        case((placed.c.outcome.in_(list(p.graduated_outcomes)), 1), else_=0).label("num"),
    ).where(placed.c.rn == 1)
    return {"school": sel}


def kind_cross_agency_immunization(run: _Run, d: IndicatorDefinition) -> Units:
    i = Immunization.__table__
    sy = run.student_year()
    p = d.params
    key = "dose_cutoff:" + d.id
    cutoff = run.period_dates(key, lambda period: p.dose_cutoff.in_year(period - 1))
    grades = list(p.grade_levels)
    cohort = (
        select(sy.c.child_key, sy.c.school_year)
        .where(sy.c.grade_level.in_(grades), sy.c.child_key.is_not(None))
        .subquery("cohort")
    )
    doses = (
        select(cohort.c.child_key, cohort.c.school_year, func.count(i.c.administered_date.distinct()).label("n"))
        .select_from(
            cohort.join(i, i.c.child_key == cohort.c.child_key).join(
                cutoff, and_(cutoff.c.period == cohort.c.school_year, cutoff.c.key == key)
            )
        )
        .where(i.c.vaccine_code.in_(p.canonical_codes), i.c.administered_date < cutoff.c.d)
        .group_by(cohort.c.child_key, cohort.c.school_year)
        .subquery("doses")
    )
    sel = (
        select(
            sy.c.school_year.label("period"), sy.c.school_id, sy.c.child_key, *(sy.c[x] for x in ATTRS),
            case((doses.c.n >= p.min_doses, 1), else_=0).label("num"),
        )
        .select_from(sy.outerjoin(doses, and_(doses.c.child_key == sy.c.child_key, doses.c.school_year == sy.c.school_year)))
        .where(sy.c.grade_level.in_(grades))
    )
    return {"school": sel}


def kind_cross_agency_visit(run: _Run, d: IndicatorDefinition) -> Units:
    enc = HealthEncounter.__table__
    sy = run.student_year()
    p = d.params
    visits = (
        select(enc.c.child_key, school_year_of(enc.c.encounter_date).label("school_year"))
        .where(enc.c.encounter_type.in_(list(p.encounter_types)), enc.c.child_key.is_not(None), enc.c.encounter_date.is_not(None))
        .distinct()
        .subquery("visits")
    )
    sel = select(
        sy.c.school_year.label("period"), sy.c.school_id, sy.c.child_key, *(sy.c[x] for x in ATTRS),
        case((visits.c.child_key.is_not(None), 1), else_=0).label("num"),
    ).select_from(sy.outerjoin(visits, and_(visits.c.child_key == sy.c.child_key, visits.c.school_year == sy.c.school_year)))
    if p.grade_levels:
        sel = sel.where(sy.c.grade_level.in_(list(p.grade_levels)))
    return {"school": sel}


KINDS: dict[str, Callable[[_Run, IndicatorDefinition], Units]] = {name: globals()["kind_" + name] for name in KIND_SPECS}
"""The SQL of every kind of ``schemas.kinds`` (its function ``kind_<name>`` here), by kind name."""


# --------------------------------------------------------------------------------------------------
# Cube and rows


def _fill_cube(run: _Run, d: IndicatorDefinition, units: Units) -> None:
    cube = run.cube()
    has_program = "program" in d.dimensions
    for level, sel in units.items():
        u = sel.subquery("units")
        keys = [u.c.period, *([u.c.school_id] if level == "school" else []), *(u.c[x] for x in ATTRS)]
        if has_program:
            keys.append(u.c.program)
        school = u.c.school_id if level == "school" else literal(CITY, String)
        program = u.c.program if has_program else null()
        agg = select(
            literal(d.id, String), u.c.period, school, *(u.c[x] for x in ATTRS), program,
            func.count(), func.sum(u.c.num),
        ).group_by(*keys)
        run.conn.execute(insert(cube).from_select(["defn", "period", "school_id", *ATTRS, "program", "den", "num"], agg))
    if "city" not in units:  # every student counts at one school: the city is the sum of the schools
        c = cube.alias("c")
        agg = (
            select(
                literal(d.id, String), c.c.period, literal(CITY, String), *(c.c[x] for x in ATTRS), c.c.program,
                func.sum(c.c.den), func.sum(c.c.num),
            )
            .where(c.c.defn == d.id, c.c.school_id != CITY)
            .group_by(c.c.period, *(c.c[x] for x in ATTRS), c.c.program)
        )
        run.conn.execute(insert(cube).from_select(["defn", "period", "school_id", *ATTRS, "program", "den", "num"], agg))


def _row_selects(run: _Run, d: IndicatorDefinition) -> list[Select[Any]]:
    cube = run.cube()
    out = []
    for dim in d.dimensions:
        group = literal(ALL, String) if dim == "all" else cube.c[dim]
        sel = select(
            cube.c.period, cube.c.school_id, literal(dim, String).label("dimension"), group.label("group"),
            func.sum(cube.c.num).label("numerator"), func.sum(cube.c.den).label("denominator"),
        ).where(cube.c.defn == d.id)
        sel = sel.group_by(cube.c.period, cube.c.school_id) if dim == "all" else sel.group_by(cube.c.period, cube.c.school_id, cube.c[dim])
        if "city" not in d.levels:
            sel = sel.where(cube.c.school_id != CITY)
        if "school" not in d.levels:
            sel = sel.where(cube.c.school_id == CITY)
        excluded = d.per_school_excluded_groups.get(dim)
        if excluded:
            sel = sel.where(or_(cube.c.school_id == CITY, cube.c[dim].not_in(list(excluded))))
        out.append(sel)
    return out


def min_cell_size(d: IndicatorDefinition, min_cell_sizes: Mapping[str, int]) -> int:
    """k for a definition's rows: the largest of ``min_cell_sizes`` (role -> k) over the roles it reads."""
    missing = [r for r in d.roles_read if r not in min_cell_sizes]
    if missing:
        raise IndicatorError(
            f"indicator {d.id}: no agency of the partnership sends an extract of role {', '.join(missing)} "
            "(so no MOU sets its minimum cell size)"
        )
    return max(int(min_cell_sizes[r]) for r in d.roles_read)


def role_min_cell_sizes(agency_k: Mapping[str, int], roles_of: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """role -> k: the largest MOU ``min_cell_size`` (``agency_k``) of the agencies sending that role.

    ``roles_of``: agency -> the roles of its extracts (the partnership's contracts).
    """
    out: dict[str, int] = {}
    for agency, roles in roles_of.items():
        if agency not in agency_k:
            continue
        for role in roles:
            out[role] = max(out.get(role, 0), int(agency_k[agency]))
    return out


def _check_school_ids(run: _Run) -> None:
    """A school whose id is the city's code would merge with the city rows."""
    for key, source in (("sy", "enrolments"), ("att_school", "attendance")):
        t = run._cache.get(key)
        if t is not None and run.conn.execute(select(t.c.school_id).where(t.c.school_id == CITY).limit(1)).first() is not None:
            raise IndicatorError(f"a school in {source} has the id {CITY!r}, which stands for the whole city; rename it at the source")


def compute_indicator_rows(conn: Connection, definitions: DefinitionSet | Mapping[str, IndicatorDefinition], min_cell_sizes: Mapping[str, int]) -> pd.DataFrame:
    """Unprotected indicator rows: ``ROW_COLUMNS`` (numerator/denominator as counted, ``k`` per row).

    Runs on ``conn`` inside the caller's transaction; its temporary tables are dropped before returning.
    """
    run = _Run(conn)
    frames = []
    for d in sorted(definitions.values(), key=lambda d: d.id):
        if d.kind not in KINDS:
            raise IndicatorError(f"indicator {d.id}: kind {d.kind!r} is not implemented")
        k = min_cell_size(d, min_cell_sizes)
        _fill_cube(run, d, KINDS[d.kind](run, d))
        sels = _row_selects(run, d)
        result = conn.execute(union_all(*sels) if len(sels) > 1 else sels[0]).all()
        conn.execute(delete(run.cube()))  # read: the next definition starts from an empty cube
        df = pd.DataFrame(result, columns=["period", "school_id", "dimension", "group", "numerator", "denominator"])
        df.insert(0, "definition", d.id)
        df.insert(0, "indicator", d.indicator)
        df["k"] = k
        frames.append(df)
    _check_school_ids(run)
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(ROW_COLUMNS))
    rows = rows[rows["denominator"].astype("int64") >= 1] if len(rows) else rows
    for c in ("period", "numerator", "denominator", "k"):
        rows[c] = rows[c].astype("int64")
    drop_temp_tables(conn, run)
    return rows.sort_values(["indicator", "period", "school_id", "dimension", "group"], kind="stable").reset_index(drop=True)


def drop_temp_tables(conn: Connection, run: _Run | None = None) -> None:
    """Drop the computation's temporary tables now (SQLite would keep them for the connection's life)."""
    if run is None:
        return
    for t in run._cache.values():
        t.drop(conn, checkfirst=False)
    run._cache.clear()


def protect_rows(rows: pd.DataFrame, definitions: DefinitionSet | Mapping[str, IndicatorDefinition]) -> pd.DataFrame:
    """Disclosure control per indicator and period (``protect_table``), then the published form (``redact``).

    Returns ``PUBLISHED_COLUMNS``: numerator, denominator and rate are NULL where ``suppressed``.
    """
    by_indicator: dict[str, list[IndicatorDefinition]] = {}
    for d in definitions.values():
        by_indicator.setdefault(d.indicator, []).append(d)
    out = []
    for (indicator, _period), table in rows.groupby(["indicator", "period"], sort=True):
        defs = by_indicator[str(indicator)]
        add_up = {d.schools_add_up for d in defs}
        if len(add_up) != 1:
            raise IndicatorError(f"definitions publishing {indicator!r} disagree on schools_add_up")
        protected = protect_table(
            table.reset_index(drop=True), schools_add_up=add_up.pop(), overlapping_dimensions=OVERLAPPING_DIMENSIONS
        )
        out.append(redact(protected))
    if not out:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in PUBLISHED_COLUMNS})
    pub = pd.concat(out, ignore_index=True)[list(PUBLISHED_COLUMNS)]
    pub["suppressed"] = pub["suppressed"].astype(bool)
    pub["suppression_reason"] = pub["suppression_reason"].astype(object).where(pub["suppression_reason"].notna(), None)
    return pub.sort_values(["indicator", "period", "school_id", "dimension", "group"], kind="stable").reset_index(drop=True)


def extracts_read(definitions: DefinitionSet | Mapping[str, IndicatorDefinition], tables: Mapping[str, ExtractTable] | None = None) -> list[str]:
    """Every extract (``agency/extract``) of a role the definitions read, sorted; ``tables``: the partnership's."""
    roles = {r for d in definitions.values() for r in d.roles_read}
    tables = EXTRACT_TABLES if tables is None else tables
    return sorted(key for key, spec in tables.items() if spec.role in roles)


__all__ = [
    "KINDS", "PUBLISHED_COLUMNS", "ROW_COLUMNS", "UNKNOWN_GROUP", "IndicatorError",
    "compute_indicator_rows", "extracts_read", "min_cell_size", "protect_rows", "role_min_cell_sizes", "school_year_of",
]
