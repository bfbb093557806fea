"""Drift against the previous accepted extract: the profile remembered, the suite parameters, the explanation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pyarrow.compute as pc

from data_sharing.validation.engines import _Eval
from data_sharing.validation.results import DriftPolicy, ExtractProfile
from data_sharing.validation.view import _valid, _View
from schemas import gx_suite as gs
from schemas.contracts import ExtractContract


def _profile(view: _View) -> ExtractProfile:
    non_null = {}
    codes = {}
    for spec in view.contract.columns.values():
        arr = view.raw[spec.name]
        non_null[spec.name] = float(_valid(arr).sum()) / view.n if view.n else 0.0
        if spec.codes:
            seen = set(pc.unique(arr).to_pylist())
            codes[spec.name] = tuple(c for c in spec.codes if c in seen)
    return ExtractProfile(view.contract.agency, view.contract.extract, view.n, non_null, codes)


def _drift_params(contract: ExtractContract, previous: ExtractProfile | None, policy: DriftPolicy) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if previous is None:
        params[gs.drift_parameter("row_count_min")] = 0
        params[gs.drift_parameter("row_count_max")] = 2**62
    else:
        params[gs.drift_parameter("row_count_min")] = math.ceil(previous.rows * (1 - policy.row_count_share) - 1e-9)
        params[gs.drift_parameter("row_count_max")] = math.floor(previous.rows * (1 + policy.row_count_share) + 1e-9)
    for spec in contract.columns.values():
        before = previous.non_null.get(spec.name) if previous is not None else None
        params[gs.drift_parameter("non_null_min", spec.name)] = (
            0.0 if before is None else max(0.0, round(before - policy.null_rate_jump, 9))
        )
        if spec.codes:
            seen = previous.codes.get(spec.name, ()) if previous is not None and policy.vanished_codes else ()
            params[gs.drift_parameter("codes", spec.name)] = [c for c in seen if c in spec.codes]
    return params


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _drift_explanation(meta: gs.CheckMeta, ev: _Eval, previous: ExtractProfile, policy: DriftPolicy, kw: Mapping[str, Any]) -> str:
    if meta.kind == "drift_row_count":
        n, before_rows = int(ev.observed or 0), previous.rows
        change = (n - before_rows) / before_rows if before_rows else 0.0
        return (
            f"This file has {_plural(n, 'row')} (exact repeats removed); the previous accepted "
            f"{previous.extract} extract had {before_rows:,}, a change of {change:+.0%}, more than the "
            f"{policy.row_count_share:.0%} expected. Check that the export is complete and for the right period."
        )
    col = meta.column
    if meta.kind == "drift_null_rate":
        now = 1.0 - float(ev.observed or 0.0)
        before = 1.0 - float(previous.non_null.get(col or "", 1.0))
        return (
            f"{col} is blank in {now:.1%} of rows against {before:.1%} in the previous accepted extract "
            f"(a rise of more than {policy.null_rate_jump:.0%}); check the export of this column."
        )
    gone = list(ev.missing_values)
    text = f"{_plural(len(gone), 'code')} of {col} present in the previous accepted extract no longer appear"
    if meta.shows_values:
        text += f" ({', '.join(gone)})"
    return text + "; check that no group of records was left out of the export."
