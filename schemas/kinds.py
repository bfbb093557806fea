"""Indicator kinds, one object each: parameters, roles read, period rule, whether schools add up, lineage.

A kind is registered once, here (:data:`KINDS`); its SQL is bound to it by name in
``warehouse/indicators.py`` (``@units_of("<kind>")``, checked to cover every kind at import). Definition
files (``indicators/*.yaml``) select a kind and parameterise it; they name roles, never agencies.

``lineage``: per published column, the role fields the computation reads (``<role>.<field>``;
``<role>.*`` stands for the row's person key), which ``assets/lineage.py`` turns into table columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from schemas.roles import ROLES


@dataclass(frozen=True)
class IndicatorKind:
    """One computation kind of indicator."""

    name: str
    parameters: type[BaseModel]
    roles: tuple[str, ...]  # extract roles read: their files are the release's sources, their MOUs set k
    period: str = "school_year"  # the period column a definition of this kind must declare
    schools_add_up: bool = True  # every student counts at one school (schools add up to the city)
    program_dimension: bool = False  # publishes the (overlapping) program dimension, and only it
    lineage: dict[str, tuple[str, ...]] = field(default_factory=dict)
    summary: str = ""

    def __post_init__(self) -> None:
        unknown = [r for r in self.roles if r not in ROLES]
        if unknown:
            raise ValueError(f"kind {self.name}: unknown role(s) {unknown}")

    def validate_parameters(self, parameters: dict[str, Any]) -> BaseModel:
        return self.parameters.model_validate(parameters)


_ENROLMENT_PERSON = ("school_enrolment.*", "school_enrolment.school_year", "school_enrolment.enroll_date")


def _attendance_lineage(extra_den: tuple[str, ...] = (), extra_person: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    return {
        "period": ("school_attendance.school_year",),
        "school_id": ("school_attendance.school_id", "school_enrolment.school_id"),
        "numerator": ("school_attendance.days_absent", "school_attendance.days_enrolled"),
        "denominator": ("school_attendance.days_enrolled", *extra_den),
        "person": ("school_attendance.*", *extra_person, *_ENROLMENT_PERSON),
    }


def reference_kinds() -> dict[str, IndicatorKind]:
    """The kinds c2c implements (parameter models live in ``schemas.indicators``)."""
    from schemas import indicators as p

    kinds = (
        IndicatorKind(
            "chronic_absence", p.ChronicAbsenceParameters, ("school_enrolment", "school_attendance"),
            schools_add_up=False, lineage=_attendance_lineage(),
            summary=("per school: the student's attendance rows there, summed; city-wide: over all the student's schools. "
                     "Denominator days_enrolled >= min_days_enrolled; numerator days_absent / days_enrolled >= threshold"),
        ),
        IndicatorKind(
            "chronic_absence_by_program", p.ChronicAbsenceByProgramParameters,
            ("school_enrolment", "school_attendance", "services_program_spell"), schools_add_up=False, program_dimension=True,
            lineage=_attendance_lineage(
                ("services_program_spell.start_date", "services_program_spell.end_date"), ("services_program_spell.*",)
            ),
            summary="the chronic-absence units joined to every services program spell overlapping the school year (groups overlap); none_group without one",
        ),
        IndicatorKind(
            "assessment_rate", p.AssessmentRateParameters, ("school_enrolment", "school_assessment"),
            lineage={
                "period": ("school_assessment.school_year",), "school_id": ("school_enrolment.school_id",),
                "numerator": ("school_assessment.performance_level",),
                "denominator": ("school_assessment.grade_level", "school_assessment.subject", "school_assessment.performance_level"),
                "person": ("school_assessment.*", *_ENROLMENT_PERSON),
            },
            summary="assessment rows of grade_level/subject (the row's grade), best performance_level per student, subject and year; numerator: within [min_level, max_level]",
        ),
        IndicatorKind(
            "graduation_rate", p.GraduationRateParameters, ("school_enrolment", "school_graduation"), period="cohort_year",
            lineage={
                "period": ("school_graduation.cohort_year",), "school_id": ("school_enrolment.school_id",),
                "numerator": ("school_graduation.outcome",),
                "denominator": ("school_graduation.outcome", "school_graduation.cohort_year"),
                "person": ("school_graduation.*", *_ENROLMENT_PERSON),
            },
            summary=("the latest graduation row per student and cohort, less excluded_outcomes; numerator graduated_outcomes; "
                     "school and attributes from the latest enrolment with school_year <= cohort_year"),
        ),
        IndicatorKind(
            "cross_agency_immunization", p.ImmunizationParameters, ("school_enrolment", "health_immunization"),
            lineage={
                "period": ("school_enrolment.school_year",), "school_id": ("school_enrolment.school_id",),
                "numerator": ("health_immunization.vaccine_code", "health_immunization.administered_date", "health_immunization.child_key"),
                "denominator": ("school_enrolment.grade_level",),
                "person": ("school_enrolment.*", "school_enrolment.enroll_date"),
            },
            summary=("students of grade_levels; numerator: >= min_doses distinct administered dates of vaccine_codes over all "
                     "linked health records, strictly before dose_cutoff of the school year's start year"),
        ),
        IndicatorKind(
            "cross_agency_visit", p.VisitParameters, ("school_enrolment", "health_encounter"),
            lineage={
                "period": ("school_enrolment.school_year",), "school_id": ("school_enrolment.school_id",),
                "numerator": ("health_encounter.encounter_type", "health_encounter.encounter_date", "health_encounter.child_key"),
                "denominator": ("school_enrolment.grade_level",),
                "person": ("school_enrolment.*", "school_enrolment.enroll_date"),
            },
            summary="every student enrolled that year (of grade_levels if given); numerator: a linked encounter of encounter_types dated July 1 - June 30",
        ),
    )
    return {k.name: k for k in kinds}


__all__ = ["IndicatorKind", "reference_kinds"]
