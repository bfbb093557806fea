"""Turn an extract contract into a Great Expectations (GX 1.x) expectation suite.

One suite per extract, built from the :class:`~schemas.contracts.ExtractContract` object, never written
by hand. The suite is the declaration of every check (what auditors read, what Data Docs render); the
validation engine in :mod:`data_sharing.validation` evaluates these very expectation configurations.

GX validates a *view* of the file rather than the raw strings, because a contract mixes string checks
(formats, code sets) with typed ones (ranges, comparisons):

* every contract column, trimmed, with blank cells as nulls (``blank means missing``);
* for each ``integer``, ``number`` and ``date`` column, a parsed copy named ``"<column> (as <type>)"``
  (:func:`value_column`), null where the text does not parse, so a bad value is reported once, by the
  type check, and not again by a range or a cross-field rule (dates as dates: GX reads date bounds
  as ``datetime.date``);
* for each reference, a boolean ``"<reference id> (found in <extract>)"`` (:func:`reference_column`),
  so the referenced keys (identifiers) never appear in the suite or in its results.

Every expectation carries ``meta["c2c"]``: the rule id, the check kind, the contract column(s), the
outcome (``refuse_file`` | ``quarantine_row`` | ``warn``), the privacy of the values involved and the
plain-language explanation shown to the agency. Drift expectations (against the previous accepted
extract) take their bounds from suite parameters (:data:`DRIFT_PARAMETERS`), so the suite itself stays
the same from one file to the next.

``great_expectations`` is imported inside functions only: importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from schemas.contracts import ColumnSpec, ExtractContract, ReferenceSpec, RuleSpec

if TYPE_CHECKING:  # pragma: no cover
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.data_context import AbstractDataContext

META_KEY = "c2c"
INTEGER_REGEX = r"^-?[0-9]{1,18}$"
NUMBER_REGEX = r"^-?[0-9]{1,15}(\.[0-9]{1,15})?$"
DATE_REGEX = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
DATE_FORMAT = "%Y-%m-%d"

# Check kinds, in the order they are declared for a column. The first failing check of a cell is the
# one reported for that cell.
COLUMN_KINDS = ("present", "required", "type", "real_date", "codes", "range", "pattern", "max_length")
TABLE_KINDS = ("unique_key", "rule", "reference", "drift_row_count", "drift_null_rate", "drift_codes")

_PRIVACY_RANK = {"none": 0, "quasi": 1, "direct": 2}
_OPS = {"<=", "<", ">=", ">", "==", "!="}


def value_column(name: str, kind: str) -> str:
    """Name of the parsed copy of a typed column in the validation view."""
    return f"{name} (as {kind})"


def reference_column(ref: ReferenceSpec) -> str:
    """Name of the boolean 'key found in the referenced extract' column of the validation view."""
    return f"{ref.id} (found in {ref.extract})"


def suite_name(contract: ExtractContract) -> str:
    return f"{contract.agency}.{contract.extract}.v{contract.version}"


def drift_parameter(kind: str, column: str | None = None) -> str:
    """Suite parameter names of the drift expectations."""
    if kind == "row_count_min":
        return "drift_row_count_min"
    if kind == "row_count_max":
        return "drift_row_count_max"
    if kind == "non_null_min":
        return f"drift_non_null_min__{column}"
    if kind == "codes":
        return f"drift_codes__{column}"
    raise ValueError(f"unknown drift parameter kind {kind!r}")


# --------------------------------------------------------------------------------------------------
# GX set-up: quiet, local, ephemeral.


def _spark_connect_off() -> None:
    """Keep GX's import from exiting the process when pyspark (the ``[spark]`` extra) is installed.

    GX imports ``pyspark.sql.connect`` to recognise Spark Connect frames; pyspark's ``check_dependencies``
    then calls ``sys.exit(0)`` when the main module has no file (``python -c``, pytest-xdist workers) and
    Spark Connect's optional dependencies are missing. c2c never uses Spark Connect: when that import
    fails or would exit, the module is marked absent, so GX's own ImportError fallback applies.
    """
    if "pyspark.sql.connect" in sys.modules or importlib.util.find_spec("pyspark") is None:
        return
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # its "Skipping doctests: ..." line
            import pyspark.sql.connect  # noqa: F401
    except (ImportError, SystemExit):
        sys.modules["pyspark.sql.connect"] = None  # type: ignore[assignment]


def import_gx() -> Any:
    """Import great_expectations with usage statistics off (``GX_ANALYTICS_ENABLED=false``)."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    _spark_connect_off()
    import great_expectations as gx

    return gx


def ephemeral_context() -> AbstractDataContext:
    """A new in-memory GX context: no files written, analytics off, progress bars off."""
    gx = import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


# --------------------------------------------------------------------------------------------------
# What each expectation means to us.


@dataclass(frozen=True)
class CheckMeta:
    """``meta["c2c"]`` of an expectation, read back."""

    rule: str
    kind: str
    columns: tuple[str, ...]
    outcome: str
    privacy: str
    explain: str

    @property
    def column(self) -> str | None:
        return self.columns[0] if self.columns else None

    @property
    def shows_values(self) -> bool:
        """Offending values may be echoed only when every column involved is not an identifier."""
        return self.privacy == "none"

    @property
    def is_drift(self) -> bool:
        return self.kind.startswith("drift_")

    def to_meta(self) -> dict[str, Any]:
        return {
            META_KEY: {
                "rule": self.rule,
                "kind": self.kind,
                "columns": list(self.columns),
                "outcome": self.outcome,
                "privacy": self.privacy,
                "explain": self.explain,
            },
            "notes": {"format": "markdown", "content": [f"**{self.rule}** ({self.outcome}): {self.explain}"]},
        }


def check_meta(expectation: Any) -> CheckMeta:
    """The :class:`CheckMeta` of an expectation or expectation configuration built by :func:`build_suite`."""
    meta = expectation.meta[META_KEY]
    return CheckMeta(
        rule=meta["rule"],
        kind=meta["kind"],
        columns=tuple(meta["columns"]),
        outcome=meta["outcome"],
        privacy=meta["privacy"],
        explain=meta["explain"],
    )


def _privacy(contract: ExtractContract, columns: Iterable[str]) -> str:
    ranks = [_PRIVACY_RANK[contract.columns[c].privacy] for c in columns]
    top = max(ranks, default=0)
    return next(k for k, v in _PRIVACY_RANK.items() if v == top)


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _bound_text(spec: ColumnSpec) -> str:
    lo, hi = spec.min, spec.max
    if spec.type == "date":
        if lo is not None and hi is not None:
            return f"{spec.name} must be a date from {lo} to {hi}."
        if lo is not None:
            return f"{spec.name} must be on or after {lo}."
        return f"{spec.name} must be on or before {hi}."
    if lo is not None and hi is not None:
        return f"{spec.name} must be between {lo} and {hi}."
    if lo is not None:
        return f"{spec.name} must be at least {lo}."
    return f"{spec.name} must be at most {hi}."


def _explain_column(spec: ColumnSpec, kind: str) -> str:
    name = spec.name
    if kind == "present":
        return f"The column {name} is missing from the header; it is required. Add it and send the file again."
    if kind == "required":
        return f"{name} is blank; it is required in every row."
    if kind == "type":
        if spec.type == "integer":
            return f"{name} must be a whole number written with digits only (for example 12)."
        if spec.type == "number":
            return f"{name} must be a number written with digits and an optional decimal point (for example 12.5)."
        return f"{name} must be a date written YYYY-MM-DD (for example 2026-08-20)."
    if kind == "real_date":
        return f"{name} is not a real calendar date (check the day and the month)."
    if kind == "codes":
        codes = list(spec.codes or {})
        shown = ", ".join(codes) if len(codes) <= 20 else ", ".join(codes[:20]) + ", ..."
        return f"{name} must be one of the codes {shown}."
    if kind == "range":
        return _bound_text(spec)
    if kind == "pattern":
        return f"{name} is not in the expected format (it must match {spec.pattern})."
    if kind == "max_length":
        return f"{name} is longer than {spec.max_length} characters."
    raise ValueError(kind)


# --------------------------------------------------------------------------------------------------
# The builder.


def _view_name(contract: ExtractContract, column: str) -> str:
    spec = contract.columns[column]
    return value_column(column, spec.type) if spec.type in ("integer", "number", "date") else column


def _literal(contract: ExtractContract, column: str, text: str, what: str) -> int | float | str:
    kind = contract.columns[column].type
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{what}: {column} is an integer column but {text!r} is not a whole number") from None
    if kind == "number":
        return float(text)
    return text


def _rule_expectation(contract: ExtractContract, rule: RuleSpec, gxe: Any, meta: dict[str, Any]) -> Any:
    from great_expectations.expectations.row_conditions import Column

    cmp = rule.comparison
    if cmp.op not in _OPS:  # pragma: no cover - the contract parser already refuses it
        raise ValueError(f"rule {rule.id}: unknown operator {cmp.op}")
    extra: dict[str, Any] = {"meta": meta}
    cond = rule.condition
    if cond is not None:
        extra["row_condition"] = Column(_view_name(contract, cond[0])) == _literal(
            contract, cond[0], cond[1], f"rule {rule.id} `when`"
        )
    left = _view_name(contract, cmp.left)
    if cmp.right_is_column:
        right = _view_name(contract, cmp.right)
        pair = {"ignore_row_if": "either_value_is_missing", **extra}
        if cmp.op == ">=":
            return gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=left, column_B=right, or_equal=True, **pair)
        if cmp.op == ">":
            return gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=left, column_B=right, or_equal=False, **pair)
        if cmp.op == "<=":
            return gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=right, column_B=left, or_equal=True, **pair)
        if cmp.op == "<":
            return gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=right, column_B=left, or_equal=False, **pair)
        if cmp.op == "==":
            return gxe.ExpectColumnPairValuesToBeEqual(column_A=left, column_B=right, **pair)
        return gxe.ExpectSelectColumnValuesToBeUniqueWithinRecord(
            column_list=[left, right], ignore_row_if="any_value_is_missing", **extra
        )
    kind = contract.columns[cmp.left].type
    if kind not in ("integer", "number"):
        raise ValueError(
            f"rule {rule.id}: {cmp.left} is a {kind} column; comparing it with the number {cmp.right} "
            "needs an integer or number column"
        )
    number = float(cmp.right)
    value: int | float = int(number) if kind == "integer" and number.is_integer() else number
    if cmp.op == "<=":
        return gxe.ExpectColumnValuesToBeBetween(column=left, max_value=value, **extra)
    if cmp.op == "<":
        return gxe.ExpectColumnValuesToBeBetween(column=left, max_value=value, strict_max=True, **extra)
    if cmp.op == ">=":
        return gxe.ExpectColumnValuesToBeBetween(column=left, min_value=value, **extra)
    if cmp.op == ">":
        return gxe.ExpectColumnValuesToBeBetween(column=left, min_value=value, strict_min=True, **extra)
    if cmp.op == "==":
        return gxe.ExpectColumnValuesToBeInSet(column=left, value_set=[value], **extra)
    return gxe.ExpectColumnValuesToNotBeInSet(column=left, value_set=[value], **extra)


def _bound(spec: ColumnSpec, value: Any) -> Any:
    if value is None:
        return None
    if spec.type == "date":
        return value.isoformat()
    if spec.type == "integer":
        return int(value)
    return float(value)


def build_suite(contract: ExtractContract, *, drift: bool = True) -> ExpectationSuite:
    """The GX expectation suite of ``contract`` (named ``<agency>.<extract>.v<version>``).

    ``drift=False`` leaves out the expectations against the previous accepted extract.
    """
    gx = import_gx()
    import great_expectations.expectations as gxe

    expectations: list[Any] = []

    def add(expectation_cls: Any, meta: CheckMeta, **kwargs: Any) -> None:
        expectations.append(expectation_cls(meta=meta.to_meta(), **kwargs))

    for spec in contract.columns.values():
        _add_column_checks(spec, add, gxe)
    if contract.unique_key:
        _add_unique_key(contract, add, gxe)

    for rule in contract.rules:
        cmp = rule.comparison
        cols = [cmp.left] + ([cmp.right] if cmp.right_is_column else [])
        meta = CheckMeta(rule.id, "rule", tuple(cols), rule.outcome, _privacy(contract, cols), rule.explain)
        expectations.append(_rule_expectation(contract, rule, gxe, meta.to_meta()))

    for ref in contract.references:
        meta = CheckMeta(
            ref.id, "reference", tuple(ref.columns), ref.outcome, _privacy(contract, ref.columns), ref.explain
        )
        add(gxe.ExpectColumnValuesToBeInSet, meta, column=reference_column(ref), value_set=[True])

    if drift:
        _add_drift(contract, add, gxe)

    return gx.ExpectationSuite(
        name=suite_name(contract),
        expectations=expectations,
        meta={META_KEY: {"agency": contract.agency, "extract": contract.extract, "version": contract.version}},
    )


def _add_column_checks(spec: ColumnSpec, add: Any, gxe: Any) -> None:
    """A column's checks: present and required, type, codes, range, pattern, length."""
    name, outcome = spec.name, spec.on_invalid

    def m(kind: str, *, outcome: str = outcome) -> CheckMeta:
        return CheckMeta(f"{spec.name}.{kind}", kind, (spec.name,), outcome, spec.privacy, _explain_column(spec, kind))

    if spec.required:
        # A required column missing from the header: nothing in the file can be read as this extract.
        add(gxe.ExpectColumnToExist, m("present", outcome="refuse_file"), column=name)
        add(gxe.ExpectColumnValuesToNotBeNull, m("required"), column=name)
    if spec.type == "integer":
        add(gxe.ExpectColumnValuesToMatchRegex, m("type"), column=name, regex=INTEGER_REGEX)
    elif spec.type == "number":
        add(gxe.ExpectColumnValuesToMatchRegex, m("type"), column=name, regex=NUMBER_REGEX)
    elif spec.type == "date":
        add(gxe.ExpectColumnValuesToMatchRegex, m("type"), column=name, regex=DATE_REGEX)
        add(gxe.ExpectColumnValuesToMatchStrftimeFormat, m("real_date"), column=name, strftime_format=DATE_FORMAT)
    if spec.codes:
        add(gxe.ExpectColumnValuesToBeInSet, m("codes"), column=name, value_set=list(spec.codes))
    if spec.min is not None or spec.max is not None:
        add(
            gxe.ExpectColumnValuesToBeBetween,
            m("range"),
            column=value_column(name, spec.type),
            min_value=_bound(spec, spec.min),
            max_value=_bound(spec, spec.max),
        )
    if spec.pattern is not None:
        add(gxe.ExpectColumnValuesToMatchRegex, m("pattern"), column=name, regex=spec.pattern)
    if spec.max_length is not None:
        add(gxe.ExpectColumnValueLengthsToBeBetween, m("max_length"), column=name, max_value=spec.max_length)


def _add_unique_key(contract: ExtractContract, add: Any, gxe: Any) -> None:
    key = list(contract.unique_key)
    meta = CheckMeta(
        "unique_key",
        "unique_key",
        tuple(key),
        "quarantine_row",
        _privacy(contract, key),
        f"Another row has the same {_join(key)}; each combination may appear only once "
        "(the rows that share it are quarantined until the agency says which one is right).",
    )
    if len(key) == 1:
        add(gxe.ExpectColumnValuesToBeUnique, meta, column=key[0])
    else:
        add(gxe.ExpectCompoundColumnsToBeUnique, meta, column_list=key, ignore_row_if="any_value_is_missing")


def _add_drift(contract: ExtractContract, add: Any, gxe: Any) -> None:
    param = lambda kind, col=None: {"$PARAMETER": drift_parameter(kind, col)}  # noqa: E731
    add(
        gxe.ExpectTableRowCountToBeBetween,
        CheckMeta(
            "drift.row_count",
            "drift_row_count",
            (),
            "warn",
            "none",
            "The number of rows changed much more than usual against the previous accepted extract; "
            "check that the export is complete and for the right period.",
        ),
        min_value=param("row_count_min"),
        max_value=param("row_count_max"),
    )
    for spec in contract.columns.values():
        add(
            gxe.ExpectColumnProportionOfNonNullValuesToBeBetween,
            CheckMeta(
                f"{spec.name}.drift_null_rate",
                "drift_null_rate",
                (spec.name,),
                "warn",
                spec.privacy,
                f"{spec.name} is blank in many more rows than in the previous accepted extract; "
                "check the export of this column.",
            ),
            column=spec.name,
            min_value=param("non_null_min", spec.name),
            max_value=1.0,
        )
    for spec in contract.columns.values():
        if spec.codes:
            add(
                gxe.ExpectColumnDistinctValuesToContainSet,
                CheckMeta(
                    f"{spec.name}.drift_codes",
                    "drift_codes",
                    (spec.name,),
                    "warn",
                    spec.privacy,
                    f"A code of {spec.name} that appeared in the previous accepted extract no longer appears; "
                    "check that no group of records was left out of the export.",
                ),
                column=spec.name,
                value_set=param("codes", spec.name),
            )


def expectation_types(suite: ExpectationSuite) -> list[str]:
    return [e.expectation_type for e in suite.expectations]


def view_columns(contract: ExtractContract) -> list[str]:
    """Every column of the validation view, in order: contract columns, parsed copies, reference flags."""
    cols = list(contract.columns)
    cols += [value_column(c.name, c.type) for c in contract.columns.values() if c.type in ("integer", "number", "date")]
    cols += [reference_column(r) for r in contract.references]
    return cols
