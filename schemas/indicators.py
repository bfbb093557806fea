"""Indicator definitions: one versioned YAML file per published indicator, loaded into typed objects.

One file per definition at ``schemas/indicators/<id>.yaml``. A definition names a computation ``kind``
(implemented once, in ``warehouse/indicators.py``) and parameterises it; a city adds an indicator of an
existing kind by adding a file, never code. A wrong file raises :class:`~schemas.errors.ContractError`
naming the file, the key path and what is wrong (several wrong files: :class:`ContractErrors`).

Keys of a definition file::

    id: grade3_reading             # = the file name; what is published unless publish_as says otherwise
    version: 1                     # bump on any change of meaning; recorded in every release
    title, description, source     # plain text; source = where the definition comes from
    publish_as: chronic_absence    # optional: publish these rows under another indicator id (see below)
    kind: assessment_rate          # one of KINDS (schemas/kinds.py)
    period: school_year            # or cohort_year (graduation_rate only)
    denominator, numerator         # plain-language statements of the rule (documentation)
    dimensions: [all, race_ethnicity, sex, english_learner, disability, econ_disadvantaged, homeless]
    levels: [city, school]         # default both: city-wide (school_id ALL) and per school
    schools_add_up: true           # must match the kind (false only for the chronic_absence kinds)
    per_school_excluded_groups: {program: [CHILD_WELFARE, FOSTER_CARE]}   # published city-wide only
    roles: [school_enrolment, school_attendance]   # optional: extract roles read (default: the kind's);
                                   # k = the largest MOU min_cell_size of the agencies sending those roles
    parameters: {...}              # the kind's parameters, checked per kind (KIND_PARAMETERS)
    limitations: [...]             # known limitations, published with every release

Several definitions may publish under one indicator id (``publish_as``), e.g. ``chronic_absence`` and
its ``program`` dimension (``chronic_absence_by_program``, a cross-agency kind). They are protected as
one table per period, so they must agree on ``period`` and ``schools_add_up``, must not repeat a
dimension, and exactly one of them carries the ``all`` dimension.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas._yaml import read_yaml_mapping
from schemas.contracts import NAME_RE, parse_model
from schemas.errors import ContractError, ContractErrors, gather, raise_all

INDICATORS_DIR = Path(__file__).resolve().parent / "indicators"

Name = Annotated[str, Field(pattern=NAME_RE.pattern, max_length=63)]
Code = Annotated[str, Field(min_length=1, max_length=64)]
Dimension = Literal[
    "all", "race_ethnicity", "sex", "english_learner", "disability", "econ_disadvantaged", "homeless", "program"
]
Period = Literal["school_year", "cohort_year"]
Level = Literal["city", "school"]

STUDENT_DIMENSIONS: tuple[str, ...] = (
    "race_ethnicity", "sex", "english_learner", "disability", "econ_disadvantaged", "homeless",
)
"""Dimensions read from the student's enrolment row (the latest ``enroll_date`` of the year)."""
OVERLAPPING_DIMENSIONS: frozenset[str] = frozenset({"program"})
"""Dimensions whose groups overlap (never part of a sum relation)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def cvx(code: str) -> str:
    """Canonical CVX code: digits without leading zeros, zero-padded to two (``3``, ``003`` -> ``03``)."""
    text = str(code).strip()
    if not text.isdigit():
        return text
    return str(int(text)).zfill(2)


class MonthDay(_Strict):
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)

    @model_validator(mode="after")
    def _real_day(self) -> MonthDay:
        try:
            dt.date(2001, self.month, self.day)
        except ValueError:
            raise ValueError(f"{self.month}-{self.day} is not a day of every year") from None
        return self

    def in_year(self, year: int) -> dt.date:
        return dt.date(year, self.month, self.day)


# --------------------------------------------------------------------------------------------------
# Parameters, one model per kind


class ChronicAbsenceParameters(_Strict):
    """``days_absent / days_enrolled >= chronic_threshold`` among students with ``days_enrolled >= min_days_enrolled``."""

    min_days_enrolled: int = Field(ge=1, le=366)
    chronic_threshold: Decimal = Field(gt=0, le=1)

    @field_validator("chronic_threshold", mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Any:
        # 0.10 in YAML is a float; read it through its decimal text so the comparison stays exact.
        if isinstance(value, bool):
            raise ValueError("must be a number between 0 and 1, e.g. 0.10")
        if isinstance(value, float | int | str):
            try:
                return Decimal(str(value))
            except InvalidOperation:
                raise ValueError(f"must be a number between 0 and 1, e.g. 0.10, not {value!r}") from None
        return value

    @property
    def threshold_fraction(self) -> Fraction:
        return Fraction(self.chronic_threshold)


class ChronicAbsenceByProgramParameters(ChronicAbsenceParameters):
    """As chronic absence, per human-services program overlapping the school year (groups overlap)."""

    none_group: Code = "NONE"


class AssessmentRateParameters(_Strict):
    """Students of ``grade_level`` with a ``subject`` result; numerator: best level within [min_level, max_level]."""

    grade_level: Code
    subject: Code
    min_level: int = Field(ge=0)
    max_level: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> AssessmentRateParameters:
        if self.max_level is not None and self.max_level < self.min_level:
            raise ValueError(f"max_level ({self.max_level}) is below min_level ({self.min_level})")
        return self


class GraduationRateParameters(_Strict):
    """The cohort less ``excluded_outcomes``; numerator: ``graduated_outcomes``."""

    graduated_outcomes: list[Code] = Field(min_length=1)
    excluded_outcomes: list[Code] = Field(default_factory=list)

    @model_validator(mode="after")
    def _disjoint(self) -> GraduationRateParameters:
        both = sorted(set(self.graduated_outcomes) & set(self.excluded_outcomes))
        if both:
            raise ValueError(f"{', '.join(both)} cannot be both graduated and excluded")
        return self


class ImmunizationParameters(_Strict):
    """Students of ``grade_levels`` with >= ``min_doses`` distinct dates of ``vaccine_codes`` before the cutoff.

    The cutoff is ``dose_cutoff`` in the calendar year the school year starts (``school_year - 1``) and is
    strict (a dose on the cutoff day does not count).
    """

    grade_levels: list[Code] = Field(min_length=1)
    vaccine_codes: list[Annotated[str, Field(pattern=r"^[0-9]{1,3}$")]] = Field(min_length=1)
    min_doses: int = Field(ge=1)
    dose_cutoff: MonthDay

    @field_validator("vaccine_codes", mode="before")
    @classmethod
    def _codes_are_text(cls, value: Any) -> Any:
        if isinstance(value, list) and any(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ValueError("write CVX codes as quoted text, e.g. ['03', '94'] (03 unquoted is the number 3)")
        return value

    @property
    def canonical_codes(self) -> list[str]:
        return sorted({cvx(c) for c in self.vaccine_codes})


class VisitParameters(_Strict):
    """Students (of ``grade_levels``, default all) with an encounter of ``encounter_types`` in the school year."""

    encounter_types: list[Code] = Field(min_length=1)
    grade_levels: list[Code] | None = None


from schemas.kinds import IndicatorKind, reference_kinds  # noqa: E402  (the kinds need the parameter models above)

KINDS: dict[str, IndicatorKind] = reference_kinds()
"""Every indicator kind, one object each (``schemas/kinds.py``)."""
KIND_PARAMETERS: dict[str, type[BaseModel]] = {k: v.parameters for k, v in KINDS.items()}
KIND_ROLES: dict[str, frozenset[str]] = {k: frozenset(v.roles) for k, v in KINDS.items()}
KIND_SCHOOLS_ADD_UP: dict[str, bool] = {k: v.schools_add_up for k, v in KINDS.items()}
KIND_PERIOD: dict[str, str] = {k: v.period for k, v in KINDS.items()}
"""Views of :data:`KINDS`, kept for readers of one attribute."""


class IndicatorDefinition(_Strict):
    """One indicator definition file."""

    id: Name
    version: int = Field(ge=1)
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    source: str = Field(min_length=1)
    publish_as: Name | None = None
    kind: Name
    period: Period
    denominator: str = Field(min_length=1)
    numerator: str = Field(min_length=1)
    dimensions: list[Dimension] = Field(min_length=1)
    levels: list[Level] = Field(default_factory=lambda: list[Level](("city", "school")), min_length=1)
    schools_add_up: bool
    per_school_excluded_groups: dict[Dimension, list[Code]] = Field(default_factory=dict)
    roles: list[Name] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    limitations: list[str] = Field(default_factory=list)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"{value!r} is not a known kind (one of: {', '.join(sorted(KINDS))})")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> IndicatorDefinition:
        kind = KINDS[self.kind]
        for label, values in (("dimensions", self.dimensions), ("levels", self.levels), ("roles", self.roles)):
            seen: list[Any] = list(values)
            dupes = sorted({str(v) for v in seen if seen.count(v) > 1})
            if dupes:
                raise ValueError(f"{label} lists {', '.join(dupes)} more than once")
        if self.period != kind.period:
            raise ValueError(f"period must be {kind.period} for kind {self.kind}, not {self.period}")
        if kind.program_dimension:
            if self.dimensions != ["program"]:
                raise ValueError(f"kind {self.kind} publishes the program dimension only: dimensions: [program]")
        elif "program" in self.dimensions:
            program_kinds = ", ".join(sorted(k for k, v in KINDS.items() if v.program_dimension))
            raise ValueError(f"the program dimension needs kind {program_kinds}, not {self.kind}")
        if self.schools_add_up != kind.schools_add_up:
            why = (
                "a student counts at every school attended, so the schools do not add up to the city"
                if not kind.schools_add_up
                else "every student counts at one school, so the schools add up to the city (declaring false would under-protect)"
            )
            raise ValueError(f"schools_add_up must be {str(kind.schools_add_up).lower()} for kind {self.kind}: {why}")
        from schemas.roles import ROLES

        unknown = sorted(set(self.roles) - set(ROLES))
        if unknown:
            raise ValueError(f"roles names {', '.join(unknown)}, which is not a role (one of: {', '.join(sorted(ROLES))})")
        missing = sorted(set(kind.roles) - set(self.roles)) if self.roles else []
        if missing:
            raise ValueError(f"roles must include {', '.join(missing)}: kind {self.kind} reads them (k depends on it)")
        stray = sorted(set(self.per_school_excluded_groups) - set(self.dimensions))
        if stray:
            raise ValueError(f"per_school_excluded_groups names {', '.join(stray)}, which is not one of the dimensions")
        if "all" in self.per_school_excluded_groups:
            raise ValueError("per_school_excluded_groups cannot exclude the 'all' row")
        if self.per_school_excluded_groups and "school" not in self.levels:
            raise ValueError("per_school_excluded_groups needs the school level in levels")
        try:
            KIND_PARAMETERS[self.kind].model_validate(self.parameters)
        except Exception as exc:  # the loader reports the precise key path; this guards code-built definitions
            raise ValueError(f"parameters do not fit kind {self.kind}: {exc}") from None
        return self

    @property
    def indicator(self) -> str:
        """The published indicator id."""
        return self.publish_as or self.id

    @property
    def roles_read(self) -> list[str]:
        """The extract roles whose data contributes: the kind's and any the definition adds (k: their MOUs')."""
        return sorted(set(KINDS[self.kind].roles) | set(self.roles))

    @property
    def params(self) -> Any:
        """The parameters as the kind's typed model (validated when the definition was built)."""
        return KIND_PARAMETERS[self.kind].model_validate(self.parameters)


class DefinitionSet(dict[str, IndicatorDefinition]):
    """Definitions by id, with the SHA-256 of each file they were read from (recorded in releases)."""

    def __init__(self, items: Mapping[str, IndicatorDefinition] | None = None, sha256: Mapping[str, str] | None = None) -> None:
        super().__init__(items or {})
        self.sha256: dict[str, str] = dict(sha256 or {})

    def versions(self) -> dict[str, dict[str, Any]]:
        return {
            i: {"version": d.version, "kind": d.kind, "indicator": d.indicator, **({"sha256": self.sha256[i]} if i in self.sha256 else {})}
            for i, d in sorted(self.items())
        }

    def by_indicator(self) -> dict[str, list[IndicatorDefinition]]:
        out: dict[str, list[IndicatorDefinition]] = {}
        for d in sorted(self.values(), key=lambda d: d.id):
            out.setdefault(d.indicator, []).append(d)
        return out


def _prefixed(exc: ContractError | ContractErrors, prefix: str) -> ContractError | ContractErrors:
    errors = exc.errors if isinstance(exc, ContractErrors) else [exc]
    out = [ContractError(e.path, f"{prefix}.{e.key_path}" if e.key_path else prefix, e.problem) for e in errors]
    return out[0] if len(out) == 1 else ContractErrors(out)


def load_indicator_definition(path: Path) -> IndicatorDefinition:
    """Load one definition; its file name must be its id, and its parameters must fit its kind."""
    path = Path(path)
    data = read_yaml_mapping(path)
    kind = data.get("kind")
    raw_params = data.get("parameters", {})
    if kind in KIND_PARAMETERS and isinstance(raw_params, dict):
        try:
            parse_model(KIND_PARAMETERS[str(kind)], raw_params, path)
        except (ContractError, ContractErrors) as exc:
            raise _prefixed(exc, "parameters") from None
    definition: IndicatorDefinition = parse_model(IndicatorDefinition, data, path)
    if path.stem != definition.id:
        raise ContractError(path, "id", f"is {definition.id!r} but the file is named {path.name!r}")
    return definition


def check_definition_set(definitions: Mapping[str, IndicatorDefinition], root: Path = INDICATORS_DIR) -> list[ContractError]:
    """Cross-file checks for definitions that publish under one indicator id."""
    errors: list[ContractError] = []
    groups: dict[str, list[IndicatorDefinition]] = {}
    for d in sorted(definitions.values(), key=lambda d: d.id):
        groups.setdefault(d.indicator, []).append(d)
    for indicator, defs in sorted(groups.items()):
        if len(defs) == 1 and "all" in defs[0].dimensions:
            continue
        where = root / f"{defs[-1].id}.yaml"
        names = ", ".join(d.id for d in defs)
        for attr in ("period", "schools_add_up"):
            values = {str(getattr(d, attr)) for d in defs}
            if len(values) > 1:
                errors.append(ContractError(where, attr, f"definitions publishing {indicator!r} ({names}) disagree on {attr}"))
        seen: dict[str, str] = {}
        for d in defs:
            for dim in d.dimensions:
                if dim in seen:
                    errors.append(
                        ContractError(root / f"{d.id}.yaml", "dimensions", f"{dim!r} is also published for {indicator!r} by {seen[dim]}")
                    )
                seen.setdefault(dim, d.id)
        if "all" not in seen:
            errors.append(
                ContractError(where, "dimensions", f"no definition publishing {indicator!r} ({names}) has the 'all' dimension")
            )
    return errors


def load_indicator_definitions(root: Path | str = INDICATORS_DIR) -> DefinitionSet:
    """Load every ``<root>/*.yaml``; all problems are reported together."""
    root = Path(root)
    if not root.is_dir():
        raise ContractError(root, "", "the indicator definitions folder does not exist")
    found: dict[str, IndicatorDefinition] = {}
    sha: dict[str, str] = {}
    errors: list[ContractError] = []
    for path in sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml")):
        definition = gather(errors, load_indicator_definition, path)
        if definition is not None:
            found[definition.id] = definition
            sha[definition.id] = hashlib.sha256(path.read_bytes()).hexdigest()
    if not errors:
        errors = check_definition_set(found, root)
    if not errors and not found:
        errors.append(ContractError(root, "", "holds no indicator definition (*.yaml)"))
    raise_all(errors)
    return DefinitionSet(found, sha)
