"""Extract roles: what an extract *is* to the warehouse, whatever the agency calls it or its columns.

An extract contract declares ``role: school_enrolment`` (one of :data:`ROLES`) and, where its column
names differ from the role's field names, maps them: ``fields: {school_id: site_code, ...}``. The
warehouse stores every extract of a role in the role's table, with the agency kept on every row as an
opaque ``agency`` column; loads, ``children``, indicator kinds, lineage and quality are keyed by role,
never by an agency id. Several agencies may share a role (two school districts). A contract without a
role is taken in, protected and linked, but has no warehouse table.

Fields that come from a generalised identifier name the generalisation they need (``birth_year_month``
is a birth date generalised ``year_month``; ``zip3`` a ZIP code generalised ``zip3``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from schemas.contracts import ExtractContract


@dataclass(frozen=True)
class RoleField:
    """One field of a role: its warehouse column, how a value is parsed, and its usual column name."""

    name: str
    parse: str = "str"  # str | int | date | cvx
    generalize: str | None = None  # the contract column must be generalised so (year_month, zip3)
    default_column: str | None = None  # the contract column used when ``fields`` does not map it
    required: bool = False

    @property
    def column(self) -> str:
        return self.default_column or self.name


@dataclass(frozen=True)
class Role:
    """An extract role: the warehouse table its rows go to and the fields it stores."""

    name: str
    domain: str  # school | health | services: which ``children`` flag a person role sets
    table: str
    title: str
    fields: tuple[RoleField, ...]
    period_field: str | None = None
    person: bool = False  # rows describe people: feeds ``children`` (school first, then health, then services)
    field_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "field_names", tuple(f.name for f in self.fields))

    def field(self, name: str) -> RoleField:
        return {f.name: f for f in self.fields}[name]


def _f(*names: str, parse: str = "str", required: bool = False) -> tuple[RoleField, ...]:
    return tuple(RoleField(n, parse, required=required) for n in names)


BIRTH = RoleField("birth_year_month", "str", "year_month", "birth_date")
ZIP3 = RoleField("zip3", "str", "zip3", "zip")
ATTRIBUTES = ("sex", "race_ethnicity", "english_learner", "disability", "econ_disadvantaged", "homeless")

ROLES: dict[str, Role] = {
    r.name: r
    for r in (
        Role(
            "school_enrolment", "school", "enrolments", "School enrolments (one row per student, school and year)",
            (*_f(*ATTRIBUTES), *_f("school_id", "grade_level", required=True), BIRTH, ZIP3,
             RoleField("school_year", "int", required=True), RoleField("enroll_date", "date", required=True),
             RoleField("exit_date", "date")),
            period_field="school_year", person=True,
        ),
        Role(
            "school_attendance", "school", "attendance", "Days enrolled and absent per student, school and year",
            (*_f("school_id", required=True), *_f("school_year", "days_enrolled", "days_absent", parse="int", required=True)),
            period_field="school_year",
        ),
        Role(
            "school_assessment", "school", "assessments", "Assessment results per student, subject and sitting",
            (*_f("grade_level", "subject", required=True), RoleField("school_year", "int", required=True),
             RoleField("scale_score", "int"), RoleField("performance_level", "int", required=True)),
            period_field="school_year",
        ),
        Role(
            "school_graduation", "school", "graduation_outcomes", "A student's outcome in a graduation cohort",
            (*_f("outcome", required=True), RoleField("cohort_year", "int", required=True)),
            period_field="cohort_year",
        ),
        Role("health_person", "health", "health_patients", "Health records (people)", (*_f("sex"), BIRTH, ZIP3), person=True),
        Role(
            "health_encounter", "health", "health_encounters", "Clinic encounters",
            (*_f("encounter_id", "diagnosis_code"), *_f("encounter_type", required=True),
             RoleField("encounter_date", "date", required=True)),
        ),
        Role(
            "health_immunization", "health", "immunizations", "Recorded vaccine doses",
            (RoleField("vaccine_code", "cvx", required=True), RoleField("administered_date", "date", required=True)),
        ),
        Role("services_person", "services", "dhs_clients", "Human-services records (people, adults included)",
             (*_f("sex"), BIRTH, ZIP3), person=True),
        Role(
            "services_program_spell", "services", "program_enrolments", "Program spells (one row per client and program spell)",
            (*_f("program", required=True), RoleField("start_date", "date", required=True), RoleField("end_date", "date")),
        ),
    )
}
"""Every role the warehouse knows, by name."""

PERSON_ROLES: tuple[str, ...] = ("school_enrolment", "health_person", "services_person")
"""Person roles in the order ``children`` takes attributes from (school first, then health, then services)."""


def resolve_fields(role: Role, fields: Mapping[str, str], columns: Mapping[str, object]) -> tuple[dict[str, str], list[str]]:
    """Role field -> contract column for one contract, and the problems (one line each).

    ``fields``: the contract's explicit mapping; an unmapped field takes its usual column when the contract
    has it. ``columns``: the contract's column specs (``generalize`` is read from them).
    """
    problems: list[str] = []
    out: dict[str, str] = {}
    for name in sorted(set(fields) - set(role.field_names)):
        problems.append(f"fields.{name}: role {role.name} has no field {name!r} (fields: {', '.join(role.field_names)})")
    for f in role.fields:
        col = fields.get(f.name)
        if col is None and f.column in columns:
            col = f.column
        if col is None:
            if f.required:
                problems.append(f"fields.{f.name}: role {role.name} needs field {f.name}; map it to one of the columns")
            continue
        spec = columns.get(col)
        if spec is None:
            problems.append(f"fields.{f.name}: {col!r} is not one of the columns")
            continue
        gen = getattr(spec, "generalize", None)
        if f.generalize is not None and gen != f.generalize:
            problems.append(f"fields.{f.name}: column {col} must have generalize: {f.generalize}")
            continue
        if f.generalize is None and getattr(spec, "privacy", "none") == "direct":
            problems.append(f"fields.{f.name}: column {col} is a direct identifier; the warehouse never stores one")
            continue
        out[f.name] = col
    return out, problems


def staging_column(contract: ExtractContract, column: str) -> str:
    """The staging (pseudonymous) column a contract column becomes: ``<col>_<generalize>`` or itself."""
    spec = contract.columns[column]
    return f"{column}_{spec.generalize}" if spec.generalize is not None else column


def staging_columns(contract: ExtractContract) -> set[str]:
    """Every column a staging frame of this contract may hold (source keys and id tokens included)."""
    out: set[str] = set()
    for i, (col, id_type) in enumerate(contract.id_columns.items()):
        out |= {"source_key" if i == 0 else f"{id_type}_source_key", f"{col}_source_key", f"{col}_id_token"}
    for col, spec in contract.columns.items():
        if spec.generalize is not None:
            out.add(f"{col}_{spec.generalize}")
        elif spec.privacy != "direct":
            out.add(col)
    return out


__all__ = ["PERSON_ROLES", "ROLES", "Role", "RoleField", "resolve_fields", "staging_column", "staging_columns"]
