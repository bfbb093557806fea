"""The GX validation result of a :class:`ValidationResult`, values masked, for auditors and Data Docs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from schemas import gx_suite as gs

if TYPE_CHECKING:  # pragma: no cover
    from data_sharing.validation.results import ValidationResult


_VALUE_KEYS = ("partial_unexpected_list", "partial_missing_list", "partial_unexpected_counts", "unexpected_list", "unexpected_index_list",
               "partial_unexpected_index_list", "unexpected_index_query", "unexpected_rows", "details")


def mask_gx_result_dict(result: Mapping[str, Any], shows_values: bool) -> dict[str, Any]:
    """A GX ``result`` dict without any value when the columns involved are identifiers."""
    out = dict(result)
    if not shows_values:
        for key in _VALUE_KEYS:
            out.pop(key, None)
        if isinstance(out.get("observed_value"), list | tuple | set | dict):
            out.pop("observed_value")
    return out


def _to_gx_result(result: ValidationResult, run_time: dt.datetime | None, html_safe: bool = False) -> Any:
    gs.import_gx()
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )

    import html

    def shown(values: tuple[Any, ...]) -> list[Any]:
        return [html.escape(str(v)) if html_safe and v is not None else v for v in values]

    suite = result._suite
    by_rule = {gs.check_meta(e).rule: e for e in suite.expectations}
    items = []
    for s in result.expectations:
        if not s.evaluated:
            continue
        exp = by_rule[s.rule]
        r: dict[str, Any] = {}
        if s.element_count is not None:
            r["element_count"] = s.element_count
        if s.unexpected_count is not None:
            r["unexpected_count"] = s.unexpected_count
            r["unexpected_percent"] = s.unexpected_percent
            r["partial_unexpected_list"] = shown(s.partial_unexpected_list)
        if s.missing_count is not None:
            r["missing_count"] = s.missing_count
        if s.observed_value is not None or s.kind == "drift_codes":
            r["observed_value"] = s.observed_value
        if s.kind == "drift_codes":
            r["partial_missing_list"] = shown(s.missing_values)
        meta = gs.check_meta(exp)
        items.append(
            ExpectationValidationResult(
                success=bool(s.success),
                expectation_config=exp.configuration,
                result=mask_gx_result_dict(r, meta.shows_values),
            )
        )
    ok = sum(1 for i in items if i.success)
    run_time = run_time or dt.datetime.now(dt.timezone.utc)
    name = result.file_name or result.extract
    return ExpectationSuiteValidationResult(
        success=ok == len(items),
        results=items,
        suite_name=result.suite_name,
        suite_parameters={k: v for k, v in result.suite_parameters.items()},
        statistics={
            "evaluated_expectations": len(items),
            "successful_expectations": ok,
            "unsuccessful_expectations": len(items) - ok,
            "success_percent": 100.0 * ok / len(items) if items else None,
        },
        meta={
            "active_batch_definition": {
                "datasource_name": result.agency,
                "data_asset_name": result.extract,
                "batch_definition_name": name,
            },
            "run_id": {"run_name": name, "run_time": run_time.isoformat()},
            "validation_time": run_time.isoformat(),
            "c2c": {**result.counts(), "status": result.status, "engine": result.engine, "notes": list(result.notes)},
        },
    )

