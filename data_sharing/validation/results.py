"""The public result types of validation: problems, expectation summaries, drift policy and profile, the result."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from schemas.contracts import Outcome

OUTCOME_RANK: dict[str, int] = {"warn": 1, "quarantine_row": 2, "refuse_file": 3}
Engine = Literal["masks", "gx"]
MAX_PARTIAL = 20  # values sampled per expectation (GX's partial_unexpected_count)



@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file, a row or a cell.

    ``row_number`` is the 1-based data row as in the file (header not counted; ``None`` for the whole
    file). ``value`` is the offending value, given only when no column involved is an identifier.
    """

    row_number: int | None
    column: str | None
    rule: str
    outcome: str
    explanation: str
    value: str | None = None
    expectation_type: str | None = None


@dataclass(frozen=True)
class ExpectationSummary:
    """GX-style outcome of one expectation, for auditors (no identifier values)."""

    expectation_type: str
    rule: str
    kind: str
    columns: tuple[str, ...]
    outcome: str
    evaluated: bool
    success: bool | None
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    missing_count: int | None = None
    observed_value: Any = None
    partial_unexpected_list: tuple[Any, ...] = ()
    missing_values: tuple[Any, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class DriftPolicy:
    """When a file differs too much from the previous accepted extract of the same kind.

    ``row_count_share``: flag a change of the row count by more than this share (either way);
    ``null_rate_jump``: flag a column whose share of blank cells rose by more than this (absolute);
    ``vanished_codes``: flag a code seen in the previous extract and absent now.
    """

    row_count_share: float = 0.25
    null_rate_jump: float = 0.10
    vanished_codes: bool = True
    outcome: Outcome = "warn"

    def __post_init__(self) -> None:
        if not 0 <= self.row_count_share:
            raise ValueError("row_count_share must be 0 or more")
        if not 0 <= self.null_rate_jump <= 1:
            raise ValueError("null_rate_jump must be between 0 and 1")


@dataclass(frozen=True)
class ExtractProfile:
    """What drift checks need to remember of an accepted extract; holds no identifier value.

    ``non_null``: share of rows with a value per contract column; ``codes``: the contract codes seen
    per code column. JSON-able through :meth:`to_dict` / :meth:`from_dict`.
    """

    agency: str
    extract: str
    rows: int
    non_null: Mapping[str, float]
    codes: Mapping[str, tuple[str, ...]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "agency": self.agency,
            "extract": self.extract,
            "rows": self.rows,
            "non_null": dict(self.non_null),
            "codes": {k: list(v) for k, v in self.codes.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExtractProfile:
        return cls(
            agency=str(data["agency"]),
            extract=str(data["extract"]),
            rows=int(data["rows"]),
            non_null={str(k): float(v) for k, v in data["non_null"].items()},
            codes={str(k): tuple(map(str, v)) for k, v in data["codes"].items()},
        )


@dataclass
class ValidationResult:
    """What validation decided for one file.

    Counts: ``rows_in`` data rows in the file = ``duplicate_rows`` (exact repeats, dropped) +
    ``accepted`` + ``quarantined`` when the file is taken; when it is refused ``refused == rows_in``
    and nothing is accepted or quarantined. Index arrays are 0-based positions in the input table.
    """

    agency: str
    extract: str
    suite_name: str
    file_name: str | None
    engine: str
    rows_in: int
    duplicate_rows: int
    accepted: int
    quarantined: int
    refused: int
    problems: list[Problem]
    expectations: list[ExpectationSummary]
    profile: ExtractProfile
    notes: list[str] = field(default_factory=list)
    accepted_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    quarantined_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    duplicate_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    suite_parameters: dict[str, Any] = field(default_factory=dict, repr=False)
    _suite: Any = field(default=None, repr=False)

    @property
    def file_refused(self) -> bool:
        return self.refused > 0 or any(p.outcome == "refuse_file" for p in self.problems)

    @property
    def status(self) -> str:
        """``refused`` | ``accepted_with_problems`` | ``accepted``."""
        if self.file_refused:
            return "refused"
        return "accepted_with_problems" if self.problems else "accepted"

    @property
    def exit_code(self) -> int:
        """0 nothing to report, 1 accepted with warnings or quarantined rows, 2 refused."""
        return {"accepted": 0, "accepted_with_problems": 1, "refused": 2}[self.status]

    @property
    def accepted_mask(self) -> np.ndarray:
        mask = np.zeros(self.rows_in, dtype=bool)
        mask[self.accepted_indices] = True
        return mask

    @property
    def refusal_reasons(self) -> list[str]:
        seen: dict[str, str] = {}
        for p in self.problems:
            if p.outcome == "refuse_file" and p.rule not in seen:
                seen[p.rule] = p.explanation
        return list(seen.values())

    def counts(self) -> dict[str, int]:
        return {
            "rows_in": self.rows_in,
            "duplicate_rows": self.duplicate_rows,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "refused": self.refused,
        }

    def problem_counts(self) -> dict[tuple[str, str | None, str], int]:
        """Number of problems per (rule, column, outcome)."""
        out: dict[tuple[str, str | None, str], int] = {}
        for p in self.problems:
            key = (p.rule, p.column, p.outcome)
            out[key] = out.get(key, 0) + 1
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-able summary for run metadata and the audit log (no value from the file)."""
        return {
            "suite": self.suite_name,
            "status": self.status,
            **self.counts(),
            "problems": len(self.problems),
            "expectations_evaluated": sum(e.evaluated for e in self.expectations),
            "expectations_failed": sum(e.evaluated and e.success is False for e in self.expectations),
        }

    def accepted_rows(self, table: pa.Table) -> pa.Table:
        return table.take(pa.array(self.accepted_indices, pa.int64()))

    def quarantined_rows(self, table: pa.Table) -> pa.Table:
        """Quarantined rows with why: ``_row_number``, ``_rules``, ``_columns``, ``_reasons`` (';'-joined)."""
        idx = self.quarantined_indices
        rows = table.take(pa.array(idx, pa.int64()))
        by_row: dict[int, list[Problem]] = {}
        wanted = set((idx + 1).tolist())
        for p in self.problems:
            if p.row_number is not None and p.row_number in wanted and p.outcome == "quarantine_row":
                by_row.setdefault(p.row_number, []).append(p)
        numbers = (idx + 1).tolist()
        rules = ["; ".join(p.rule for p in by_row.get(n, [])) for n in numbers]
        cols = ["; ".join(p.column or "" for p in by_row.get(n, [])) for n in numbers]
        reasons = ["; ".join(p.explanation for p in by_row.get(n, [])) for n in numbers]
        return (
            rows.append_column("_row_number", pa.array(numbers, pa.int64()))
            .append_column("_rules", pa.array(rules, pa.string()))
            .append_column("_columns", pa.array(cols, pa.string()))
            .append_column("_reasons", pa.array(reasons, pa.string()))
        )

    def to_gx(self, run_time: dt.datetime | None = None, *, html_safe: bool = False) -> Any:
        """A GX ``ExpectationSuiteValidationResult`` of the evaluated expectations, values masked.

        ``html_safe=True`` HTML-escapes the sampled values (GX Data Docs renders them unescaped).
        """
        from data_sharing.validation.gx_result import _to_gx_result

        return _to_gx_result(self, run_time, html_safe)


class ValidationInputError(Exception):
    """The file cannot be read as an extract (encoding, CSV structure, header). Message has no values."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)

