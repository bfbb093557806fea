"""Linkage settings as data: ``schemas/linkage/settings.yaml`` loaded into typed, checked objects.

The file declares the blocking rules, the comparisons (each an ordered list of levels, every level a
DuckDB SQL condition over the linkage encodings), the thresholds that turn a match probability into a
decision, how the model is trained, and the guards applied when records become persons. Its keys are
documented in the file itself. :func:`load_settings` refuses a wrong file with a
:class:`~schemas.errors.ContractError` naming the file, the key path and what is wrong, e.g.::

    schemas/linkage/settings.yaml: comparisons[0].levels[2].sql: unknown column first_nme_hash_l
      (columns are the linkage encodings with a suffix _l/_r: first_name_hash_l, ...)

SQL is parsed (sqlglot, DuckDB dialect) so that a typo fails at load time, not inside a nightly run.
Comparison SQL names columns as ``<column>_l`` / ``<column>_r``; blocking rules as ``l.<column>`` /
``r.<column>``; ``dice(<bloom column>)`` expands to the Dice similarity of two Bloom filters
(:func:`dice_expression`), ``hamming(<bloom column>)`` to the number of bits in which they differ
(:func:`hamming_expression`). Only encoding columns may appear (never a raw identifier: there is none to
name), plus ``source_key`` and ``medicaid_source_key`` (pseudonyms).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import math
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import sqlglot
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlglot import exp

from data_sharing.linkage.dialects import dice_expression, hamming_expression
from schemas._yaml import read_yaml_mapping
from schemas.contracts import parse_model
from schemas.errors import ContractError

SETTINGS_PATH = Path(__file__).resolve().parents[2] / "schemas" / "linkage" / "settings.yaml"

#: Encoding columns that are Bloom filters (``<name>_bits`` holds each filter's popcount).
BLOOM_COLUMNS = ("name_bloom", "address_bloom")
#: Pseudonymous id columns an encodings frame may carry besides the encodings themselves.
KEY_COLUMNS = ("source_key", "medicaid_source_key")

_NAME = r"^[a-z][a-z0-9_]{0,62}$"
Name = Annotated[str, Field(pattern=_NAME)]
_MACRO_RE = re.compile(r"\b(dice|hamming)\(\s*([a-z][a-z0-9_]*)\s*\)", re.IGNORECASE)


_DERIVED: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("c2c_linkage_derived", default=frozenset())


def encoding_column_names() -> frozenset[str]:
    """The encodings and the two pseudonymous keys: what derived columns may be computed from."""
    from data_sharing.protect import encoding_columns

    return frozenset(encoding_columns()) | frozenset(KEY_COLUMNS)


def known_columns() -> frozenset[str]:
    """Every column a linkage settings file may name: the encodings, the keys, its derived columns."""
    return encoding_column_names() | _DERIVED.get()


def _expand_dice(sql: str, *, blocking: bool, dialect: str = "duckdb") -> str:
    def repl(m: re.Match[str]) -> str:
        fn, col = m.group(1).lower(), m.group(2).lower()
        if col not in BLOOM_COLUMNS:
            raise ValueError(f"{fn}() takes a Bloom filter column ({', '.join(BLOOM_COLUMNS)}), not {col}")
        make = dice_expression if fn == "dice" else hamming_expression
        return make(col, "l.{c}", "r.{c}", dialect) if blocking else make(col, dialect=dialect)

    return _MACRO_RE.sub(repl, sql)


def _columns_of(sql: str) -> list[exp.Column]:
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0]["description"] if exc.errors else str(exc)
        raise ValueError(f"is not valid DuckDB SQL ({first})") from None
    if tree is None:
        raise ValueError("is empty")
    if isinstance(tree, exp.Query) or tree.find(exp.Select) is not None:
        raise ValueError("must be a condition, not a query")
    return list(tree.find_all(exp.Column))


def _comparison_columns(sql: str) -> tuple[str, list[exp.Column]]:
    expanded = _expand_dice(sql, blocking=False)
    return expanded, _columns_of(expanded)


def _check_comparison_sql(sql: str) -> tuple[str, frozenset[str]]:
    """The expanded SQL of a comparison level and the columns it uses; ValueError if wrong."""
    expanded, cols = _comparison_columns(sql)
    known = known_columns()
    used: set[str] = set()
    for col in cols:
        if col.table:
            raise ValueError(f"names {col.sql()}: comparison levels name columns as <column>_l / <column>_r")
        name = col.name.lower()
        base = name[:-2] if name.endswith(("_l", "_r")) else None
        if base is None or base not in known:
            raise ValueError(
                f"unknown column {name} (columns are the linkage encodings with a suffix _l/_r, "
                f"e.g. first_name_hash_l; known: {', '.join(sorted(known))})"
            )
        used.add(base)
    return expanded, frozenset(used)


def _comparison_used(sql: str) -> tuple[str, frozenset[str]]:
    """Like :func:`_check_comparison_sql` for SQL already checked (no column-name check)."""
    expanded, cols = _comparison_columns(sql)
    return expanded, frozenset(c.name.lower()[:-2] for c in cols)


def _check_blocking_sql(sql: str, *, check: bool = True) -> tuple[str, frozenset[str]]:
    expanded = _expand_dice(sql, blocking=True)
    known = known_columns()
    used: set[str] = set()
    cols = _columns_of(expanded)
    if check and not cols:
        raise ValueError("names no column: a blocking rule compares l.<column> with r.<column>")
    for col in cols:
        if check and col.table not in ("l", "r"):
            raise ValueError(f"names {col.sql()}: blocking rules name columns as l.<column> / r.<column>")
        if check and col.name.lower() not in known:
            raise ValueError(f"unknown column {col.sql()} (known: {', '.join(sorted(known))})")
        used.add(col.name.lower())
    return expanded, frozenset(used)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(_Model):
    """One comparison level: a SQL condition (or ``else: true`` for the last level)."""

    name: Name
    sql: str | None = None
    null: bool = Field(False, alias="null_level")
    else_: bool = Field(False, alias="else")
    tf_column: str | None = None  # term-frequency adjustment on this level
    tf_weight: float = Field(1.0, ge=0.0, le=1.0)
    # relative to this level's own u (a level that is not a plain exact match of tf_column, e.g. a
    # surname equal while the first names differ); else relative to the comparison's exact level
    tf_own_u: bool = False
    m: float | None = Field(None, gt=0.0, lt=1.0)  # fixed m probability (not trained)
    u: float | None = Field(None, gt=0.0, lt=1.0)  # fixed u probability (not trained)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _shape(self) -> Level:
        if self.else_:
            if self.sql is not None or self.null:
                raise ValueError("an else level has no sql and is not a null level (null_level)")
            if self.tf_column is not None:
                raise ValueError("an else level takes no tf_column")
        elif not self.sql or not self.sql.strip():
            raise ValueError("needs sql (or else: true for the last level)")
        if self.tf_column is not None and self.tf_column not in known_columns():
            raise ValueError(f"tf_column {self.tf_column} is not a linkage encoding column")
        return self

    @field_validator("sql")
    @classmethod
    def _sql(cls, v: str | None) -> str | None:
        if v is None:
            return v
        _check_comparison_sql(v)
        return " ".join(v.split())

    @property
    def expanded_sql(self) -> str:
        return "ELSE" if self.else_ else _comparison_used(str(self.sql))[0]

    def sql_for(self, dialect: str) -> str:
        """The level's SQL with dice()/hamming() expanded for ``dialect`` (``duckdb``: :attr:`expanded_sql`)."""
        return "ELSE" if self.else_ else _expand_dice(str(self.sql), blocking=False, dialect=dialect)

    @property
    def columns(self) -> frozenset[str]:
        return frozenset() if self.else_ else _comparison_used(str(self.sql))[1]


class Comparison(_Model):
    name: Name
    description: str = ""
    levels: list[Level] = Field(min_length=2)

    @model_validator(mode="after")
    def _levels(self) -> Comparison:
        names = [lv.name for lv in self.levels]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"level names must be unique within a comparison; repeated: {', '.join(dup)}")
        if not self.levels[-1].else_:
            raise ValueError("the last level must be `else: true` (pairs that meet no other level)")
        if any(lv.else_ for lv in self.levels[:-1]):
            raise ValueError("only the last level may be `else: true`")
        nulls = [i for i, lv in enumerate(self.levels) if lv.null]
        if nulls and nulls != [0]:
            raise ValueError("a null level (null_level: true) must be the first level, and only one")
        if sum(1 for lv in self.levels if not lv.null) < 2:
            raise ValueError("needs at least two levels besides the null level (one of them else)")
        return self

    def level(self, name: str) -> Level:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(name)

    def gamma(self, level_name: str) -> int:
        """Splink's comparison vector value of a level: -1 null, else counting down to 0 (else)."""
        non_null = [lv.name for lv in self.levels if not lv.null]
        if level_name not in non_null:
            if self.levels[0].null and self.levels[0].name == level_name:
                return -1
            raise KeyError(level_name)
        return len(non_null) - 1 - non_null.index(level_name)

    def level_names_by_gamma(self) -> dict[int, str]:
        out = {}
        for lv in self.levels:
            out[self.gamma(lv.name)] = lv.name
        return out


class NamedRule(_Model):
    name: Name
    sql: str

    @field_validator("sql")
    @classmethod
    def _sql(cls, v: str) -> str:
        _check_blocking_sql(v)
        return " ".join(v.split())

    @property
    def expanded_sql(self) -> str:
        return _check_blocking_sql(self.sql, check=False)[0]

    def sql_for(self, dialect: str) -> str:
        """The rule's SQL with dice()/hamming() expanded for ``dialect``."""
        return _expand_dice(self.sql, blocking=True, dialect=dialect)

    @property
    def columns(self) -> frozenset[str]:
        return _check_blocking_sql(self.sql, check=False)[1]


def _check_derived_sql(sql: str) -> frozenset[str]:
    used: set[str] = set()
    known = encoding_column_names()
    for col in _columns_of(sql):
        if col.table:
            raise ValueError(f"names {col.sql()}: a derived column is computed from one record's columns")
        if col.name.lower() not in known:
            raise ValueError(f"unknown column {col.name} (known: {', '.join(sorted(known))})")
        used.add(col.name.lower())
    if not used:
        raise ValueError("names no column")
    return frozenset(used)


class Thresholds(_Model):
    upper: float = Field(gt=0.0, lt=1.0)
    lower: float = Field(gt=0.0, lt=1.0)
    # two ids of one agency (a duplicate registration) link at this probability instead of ``upper``
    upper_within_agency: float | None = Field(None, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _order(self) -> Thresholds:
        if not self.lower < self.upper:
            raise ValueError(f"lower ({self.lower}) must be below upper ({self.upper})")
        if self.upper_within_agency is not None and not self.lower < self.upper_within_agency:
            raise ValueError(f"lower ({self.lower}) must be below upper_within_agency ({self.upper_within_agency})")
        return self

    @property
    def within_agency_upper(self) -> float:
        return self.upper if self.upper_within_agency is None else self.upper_within_agency


class Prior(_Model):
    recall: float = Field(gt=0.0, le=1.0)
    deterministic_rules: list[str] = Field(min_length=1)

    @field_validator("deterministic_rules")
    @classmethod
    def _rules(cls, v: list[str]) -> list[str]:
        out = []
        for i, sql in enumerate(v):
            try:
                _check_blocking_sql(sql)
            except ValueError as exc:
                raise ValueError(f"rule [{i}] {exc}") from None
            out.append(" ".join(sql.split()))
        return out


class Training(_Model):
    seed: int = 1
    u_max_pairs: float = Field(3e6, ge=1e3, le=1e10)
    em_max_pairs: float | None = Field(None, ge=1e3)
    prior: Prior
    em_blocking_rules: list[NamedRule] = Field(min_length=1)
    max_iterations: int = Field(25, ge=1, le=500)
    em_convergence: float = Field(1e-4, gt=0.0, lt=1.0)


class ParentChildGuard(_Model):
    min_birth_year_gap: int = Field(ge=1, le=100)
    comparison: Name
    levels: list[Name] = Field(default_factory=list)


class DistinctCommon(_Model):
    """The pair's two values of ``column`` differ, and each is held by at least
    max(``min_source_keys``, ``min_share`` x the run's source keys) source keys: two established names
    (Jaylen, Jayden), not one name and its typo (a typo makes a value few records share). The share
    keeps the meaning as a city grows; the floor keeps a small city's rare names counted as names."""

    column: Name
    min_source_keys: int = Field(2, ge=1, le=1_000_000)
    min_share: float = Field(0.0, ge=0.0, le=0.1)

    def threshold(self, source_keys: int) -> int:
        return max(self.min_source_keys, math.ceil(self.min_share * source_keys))


class SiblingGuard(_Model):
    name: Name
    pairs: Literal["within_agency", "across_agencies", "all"] = "all"
    when: dict[Name, list[Name]] = Field(min_length=1)
    # not applied to two ids of one agency whose periods are known and share nothing (guards.concurrent_ids)
    unless_sequential: bool = False
    # applied only when the pair's values of a column are two different common values
    distinct_common: DistinctCommon | None = None
    # applied only when some agency holds two ids with the pair's surname and birth date under two first
    # names (evidence.twin_evidence): without it the two records are one child written two ways
    needs_twin_evidence: bool = False


class PeriodSource(_Model):
    """An agency's event extract that gives its ids' periods: each row's values of ``columns`` joined
    (e.g. a programme and its start date: one spell), keyed by the row's (first) id column."""

    extract: Name
    columns: list[Name] = Field(min_length=1)


class ConcurrentIds(_Model):
    """Two ids of one agency held at the same time are two persons; held one after the other, one may
    have replaced the other. Periods: the set of values of an attribute over each id's rows (a school's
    grade level of each year's enrolment, or the school year itself; a benefits programme's spells).
    ``agency``: only that agency's ids (by default every agency whose attributes carry ``attribute``);
    ``source``: the attribute is built from that agency's event extract rather than read from its
    person extract; ``disjoint_is_sequential``: sharing no value means one id followed the other (true
    of school years; not of spells, which a person's second id splits with the first)."""

    attribute: Name
    min_shared: int = Field(2, ge=1, le=100)
    agency: Name | None = None
    source: PeriodSource | None = None
    disjoint_is_sequential: bool = True

    @model_validator(mode="after")
    def _source_needs_agency(self) -> ConcurrentIds:
        if self.source is not None and self.agency is None:
            raise ValueError("source: needs agency (the extract is that agency's)")
        return self


class WithinAgency(_Model):
    needs_direct_evidence: bool = True
    direct_evidence_threshold: Literal["upper", "lower"] = "upper"


class Guards(_Model):
    parent_child: ParentChildGuard | None = None
    sibling: list[SiblingGuard] = Field(default_factory=list)
    within_agency: WithinAgency = WithinAgency()
    concurrent_ids: list[ConcurrentIds] = Field(default_factory=list)

    @field_validator("concurrent_ids", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        if v is None:
            return []
        return [v] if isinstance(v, Mapping) else v


class LinkageSettings(_Model):
    """The whole settings file, checked. ``fingerprint`` identifies its exact content."""

    version: int = Field(ge=1)
    name: str = Field(pattern=r"^[a-z][a-z0-9_.-]{0,62}$")
    encoding_version: int = Field(ge=1)
    derived_columns: dict[Name, str] = Field(default_factory=dict)
    thresholds: Thresholds
    training: Training
    blocking_rules: list[NamedRule] = Field(min_length=1)
    comparisons: list[Comparison] = Field(min_length=1)
    guards: Guards = Guards()

    @field_validator("derived_columns")
    @classmethod
    def _derived(cls, v: dict[str, str]) -> dict[str, str]:
        taken = encoding_column_names()
        out = {}
        for name, sql in v.items():
            if name in taken:
                raise ValueError(f"{name}: a derived column may not reuse an encoding column's name")
            try:
                _check_derived_sql(sql)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
            out[name] = " ".join(sql.split())
        return out

    @model_validator(mode="after")
    def _cross(self) -> LinkageSettings:
        for what, items in (("comparisons", self.comparisons), ("blocking_rules", self.blocking_rules),
                            ("training.em_blocking_rules", self.training.em_blocking_rules)):
            names = [c.name for c in items]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{what}: names must be unique; repeated: {', '.join(dup)}")
        by_name = {c.name: c for c in self.comparisons}
        g = self.guards
        if g.parent_child is not None:
            comp = by_name.get(g.parent_child.comparison)
            if comp is None:
                raise ValueError(f"guards.parent_child.comparison: no comparison named {g.parent_child.comparison}")
            for lv in g.parent_child.levels:
                if lv not in [x.name for x in comp.levels]:
                    raise ValueError(f"guards.parent_child.levels: comparison {comp.name} has no level {lv}")
        for i, sib in enumerate(g.sibling):
            sequential_known = any(c.disjoint_is_sequential for c in g.concurrent_ids)
            if sib.unless_sequential and (not sequential_known or sib.pairs != "within_agency"):
                raise ValueError(f"guards.sibling[{i}].unless_sequential: needs guards.concurrent_ids (one with "
                                 "disjoint_is_sequential) and "
                                 "pairs: within_agency (periods are known for ids of one agency)")
            dc = sib.distinct_common
            if dc is not None and (dc.column not in encoding_column_names() or dc.column in BLOOM_COLUMNS
                                   or dc.column.endswith("_bits")):
                raise ValueError(f"guards.sibling[{i}].distinct_common.column: {dc.column} is not a keyed-hash "
                                 "encoding column")
            for cname, levels in sib.when.items():
                comp = by_name.get(cname)
                if comp is None:
                    raise ValueError(f"guards.sibling[{i}].when: no comparison named {cname}")
                for lv in levels:
                    if lv not in [x.name for x in comp.levels]:
                        raise ValueError(f"guards.sibling[{i}].when.{cname}: comparison {cname} has no level {lv}")
        return self

    def comparison(self, name: str) -> Comparison:
        for c in self.comparisons:
            if c.name == name:
                return c
        raise KeyError(name)

    def _referenced_columns(self) -> set[str]:
        """Column names the comparisons, term frequencies, blocking rules and training refer to."""
        used: set[str] = set()
        for c in self.comparisons:
            for lv in c.levels:
                used |= lv.columns
                if lv.tf_column:
                    used.add(lv.tf_column)
        for r in [*self.blocking_rules, *self.training.em_blocking_rules]:
            used |= r.columns
        for sql in self.training.prior.deterministic_rules:
            used |= _check_blocking_sql(sql, check=False)[1]
        used |= {s.distinct_common.column for s in self.guards.sibling if s.distinct_common is not None}
        return used

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """Every encoding column the settings use (sorted), Bloom popcounts included."""
        used = self._referenced_columns()
        for name in self.derived_columns:
            if name in used:
                used.discard(name)
                used |= frozenset(c.name.lower() for c in _columns_of(self.derived_columns[name]))
        for b in BLOOM_COLUMNS:
            if b in used:
                used.add(f"{b}_bits")
        used.discard("source_key")
        return tuple(sorted(used))

    @property
    def used_derived_columns(self) -> dict[str, str]:
        """Derived columns the comparisons, blocking rules or training use: name -> SQL."""
        used = self._referenced_columns()
        return {k: v for k, v in self.derived_columns.items() if k in used}

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 (16 hex) of the settings' canonical JSON: two files with one meaning share it."""
        blob = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    @property
    def label(self) -> str:
        return f"{self.name}/v{self.version}/{self.fingerprint}"

    # ------------------------------------------------------------------------------------------
    # Splink
    # ------------------------------------------------------------------------------------------

    def splink_comparisons(self, dialect: str = "duckdb") -> list[dict[str, Any]]:
        """Splink's comparisons, their SQL in ``dialect`` (:data:`DIALECTS`)."""
        out = []
        for c in self.comparisons:
            levels = []
            for lv in c.levels:
                d: dict[str, Any] = {"sql_condition": lv.sql_for(dialect), "label_for_charts": lv.name}
                if lv.null:
                    d["is_null_level"] = True
                if lv.tf_column:
                    d["tf_adjustment_column"] = lv.tf_column
                    d["tf_adjustment_weight"] = lv.tf_weight
                    if lv.tf_own_u:
                        d["disable_tf_exact_match_detection"] = True
                if lv.m is not None:
                    d["m_probability"] = lv.m
                    d["fix_m_probability"] = True
                if lv.u is not None:
                    d["u_probability"] = lv.u
                    d["fix_u_probability"] = True
                levels.append(d)
            out.append({"output_column_name": c.name, "comparison_description": c.description or c.name,
                        "comparison_levels": levels})
        return out

    def splink_settings(self, *, unique_id: str = "rid", retain: tuple[str, ...] = (), dialect: str = "duckdb") -> dict[str, Any]:
        """A Splink settings dictionary (``dedupe_only`` over all agencies' records in one table).

        Every prediction blocking rule also requires ``l.source_key <> r.source_key``: records of one
        source key are one person by construction and are never scored against each other.
        """
        rules = [f"({r.sql_for(dialect)}) and l.source_key <> r.source_key" for r in self.blocking_rules]
        return {
            "link_type": "dedupe_only",
            "unique_id_column_name": unique_id,
            "comparisons": self.splink_comparisons(dialect),
            "blocking_rules_to_generate_predictions": [{"blocking_rule": r, "sql_dialect": dialect} for r in rules],
            "retain_matching_columns": False,
            "retain_intermediate_calculation_columns": False,
            "additional_columns_to_retain": list(retain),
            "em_convergence": self.training.em_convergence,
            "max_iterations": self.training.max_iterations,
        }


def parse_settings(data: Mapping[str, Any], path: Path | str = "<settings>") -> LinkageSettings:
    """Check a settings mapping (as read from YAML); errors name ``path`` and the key path."""
    derived = data.get("derived_columns") if isinstance(data, Mapping) else None
    names = frozenset(k for k in derived if isinstance(k, str)) if isinstance(derived, Mapping) else frozenset()
    token = _DERIVED.set(names)
    try:
        return parse_model(LinkageSettings, data, Path(path))
    finally:
        _DERIVED.reset(token)


def load_settings(path: Path | str | None = None) -> LinkageSettings:
    """Load and check ``schemas/linkage/settings.yaml`` (or ``path``)."""
    p = Path(path) if path is not None else SETTINGS_PATH
    if not p.is_file():
        raise ContractError(p, "", "the linkage settings file does not exist")
    return parse_settings(read_yaml_mapping(p), p)
