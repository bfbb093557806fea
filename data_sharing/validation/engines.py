"""Evaluating the suite's expectations: the vectorised mask engine and GX itself (``engine="gx"``)."""

from __future__ import annotations

import datetime as dt
import functools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_sharing.validation.results import MAX_PARTIAL
from data_sharing.validation.view import _np_bool, _valid, _View
from schemas import gx_suite as gs
from schemas.contracts import ExtractContract


# ==================================================================================================
# Suites are built once per contract


@functools.lru_cache(maxsize=64)
def _suite_cached(key: str, contract_json: str) -> Any:
    contract = ExtractContract.model_validate_json(contract_json)
    return gs.build_suite(contract)


def suite_for(contract: ExtractContract) -> Any:
    """The (cached) GX suite of ``contract``."""
    return _suite_cached(gs.suite_name(contract), contract.model_dump_json())


# ==================================================================================================
# Evaluating one expectation


@dataclass
class _Eval:
    evaluated: bool
    success: bool | None = None
    unexpected: np.ndarray | None = None  # view rows that fail (bool mask), for row-level expectations
    element_count: int | None = None
    missing_count: int | None = None
    unexpected_count: int | None = None
    observed: Any = None
    missing_values: tuple[Any, ...] = ()  # expected values absent from the column (distinct-values checks)

    @property
    def unexpected_percent(self) -> float | None:
        if self.unexpected_count is None or self.element_count is None:
            return None
        base = self.element_count - (self.missing_count or 0)
        return 100.0 * self.unexpected_count / base if base else None


def _scalar_for(value: Any, arr: pa.Array) -> pa.Scalar:
    if pa.types.is_date(arr.type) and isinstance(value, str):
        return pa.scalar(dt.date.fromisoformat(value), arr.type)
    return pa.scalar(value).cast(arr.type) if not pa.types.is_string(arr.type) else pa.scalar(str(value))


def _condition_mask(view: _View, cond: Any) -> np.ndarray:
    if hasattr(cond, "dict"):
        cond = cond.dict()
    kind = cond.get("type")
    if kind in ("and", "or"):
        parts = [_condition_mask(view, c) for c in cond["conditions"]]
        out = parts[0]
        for p in parts[1:]:
            out = (out & p) if kind == "and" else (out | p)
        return out
    column = cond["column"]["name"] if isinstance(cond["column"], dict) else cond["column"].name
    arr = view.array(column)
    valid = _valid(arr)
    if kind == "nullity":
        return ~valid if cond["is_null"] else valid
    if kind != "comparison":
        raise ValueError(f"row condition of type {kind!r} is not supported")
    op, param = str(cond["operator"]), cond["parameter"]
    if op in ("IN", "NOT_IN"):
        hit = _np_bool(pc.is_in(arr, value_set=pa.array([_scalar_for(p, arr).as_py() for p in param], arr.type)))
        return (hit & valid) if op == "IN" else ~(hit & valid)
    fn = {
        "==": pc.equal,
        "!=": pc.not_equal,
        "<": pc.less,
        "<=": pc.less_equal,
        ">": pc.greater,
        ">=": pc.greater_equal,
    }[op]
    hit = _np_bool(fn(arr, _scalar_for(param, arr)))
    return (hit | ~valid) if op == "!=" else hit  # as pandas: null != x is True


def _resolve(value: Any, params: Mapping[str, Any]) -> Any:
    if isinstance(value, dict) and "$PARAMETER" in value:
        return params[value["$PARAMETER"]]
    return value


def _map_eval(domain: np.ndarray, nonnull: np.ndarray, ok: np.ndarray) -> _Eval:
    unexpected = domain & nonnull & ~ok
    n_dom = int(domain.sum())
    missing = int((domain & ~nonnull).sum())
    bad = int(unexpected.sum())
    return _Eval(True, bad == 0, unexpected, n_dom, missing, bad)


class _MaskEngine:
    """Vectorised evaluation of the expectation types :func:`schemas.gx_suite.build_suite` declares."""

    def __init__(self, view: _View, params: Mapping[str, Any]) -> None:
        self.view = view
        self.params = params

    def evaluate(self, expectation: Any) -> _Eval:
        etype = expectation.expectation_type
        kw = {k: _resolve(v, self.params) for k, v in expectation.configuration.kwargs.items()}
        method = getattr(self, "_" + etype, None)
        if method is None:
            raise NotImplementedError(f"the mask engine does not translate {etype}")
        return method(kw)

    # --- domains ----------------------------------------------------------------------------------
    def _domain(self, kw: Mapping[str, Any]) -> np.ndarray:
        cond = kw.get("row_condition")
        if cond:
            return _condition_mask(self.view, cond)
        return np.ones(self.view.n, dtype=bool)

    # --- table ------------------------------------------------------------------------------------
    def _expect_column_to_exist(self, kw: Mapping[str, Any]) -> _Eval:
        return _Eval(True, kw["column"] in self.view.present)

    def _expect_table_row_count_to_be_between(self, kw: Mapping[str, Any]) -> _Eval:
        n, lo, hi = self.view.n, kw.get("min_value"), kw.get("max_value")
        ok = (lo is None or n >= lo) and (hi is None or n <= hi)
        return _Eval(True, ok, observed=n)

    def _expect_column_proportion_of_non_null_values_to_be_between(self, kw: Mapping[str, Any]) -> _Eval:
        n = self.view.n
        share = float(_valid(self.view.array(kw["column"])).sum()) / n if n else None
        lo, hi = kw.get("min_value"), kw.get("max_value")
        ok = share is not None and (lo is None or share >= lo) and (hi is None or share <= hi)
        return _Eval(True, ok, observed=share)

    def _expect_column_distinct_values_to_contain_set(self, kw: Mapping[str, Any]) -> _Eval:
        # as GX 1.x: missing_count is the number of expected values absent from the column
        arr = self.view.array(kw["column"])
        distinct = set(pc.unique(arr).to_pylist())
        gone = tuple(v for v in kw["value_set"] if v not in distinct)
        return _Eval(True, not gone, missing_count=len(gone), missing_values=gone)

    # --- column map -------------------------------------------------------------------------------
    def _expect_column_values_to_not_be_null(self, kw: Mapping[str, Any]) -> _Eval:
        domain = self._domain(kw)
        nonnull = _valid(self.view.array(kw["column"]))
        unexpected = domain & ~nonnull
        bad = int(unexpected.sum())
        return _Eval(True, bad == 0, unexpected, int(domain.sum()), None, bad)

    def _expect_column_values_to_match_regex(self, kw: Mapping[str, Any]) -> _Eval:
        col = kw["column"]
        arr = self.view.array(col)
        return _map_eval(self._domain(kw), _valid(arr), self.view.regex_ok(col, kw["regex"]))

    def _expect_column_values_to_match_strftime_format(self, kw: Mapping[str, Any]) -> _Eval:
        col = kw["column"]
        arr = self.view.array(col)
        return _map_eval(self._domain(kw), _valid(arr), self.view.strptime_ok(col, kw["strftime_format"]))

    def _expect_column_values_to_be_in_set(self, kw: Mapping[str, Any]) -> _Eval:
        arr = self.view.array(kw["column"])
        values = pa.array([_scalar_for(v, arr).as_py() for v in kw["value_set"]], arr.type)
        return _map_eval(self._domain(kw), _valid(arr), _np_bool(pc.is_in(arr, value_set=values)))

    def _expect_column_values_to_not_be_in_set(self, kw: Mapping[str, Any]) -> _Eval:
        arr = self.view.array(kw["column"])
        values = pa.array([_scalar_for(v, arr).as_py() for v in kw["value_set"]], arr.type)
        return _map_eval(self._domain(kw), _valid(arr), ~_np_bool(pc.is_in(arr, value_set=values)))

    def _expect_column_values_to_be_between(self, kw: Mapping[str, Any]) -> _Eval:
        arr = self.view.array(kw["column"])
        ok = np.ones(self.view.n, dtype=bool)
        lo, hi = kw.get("min_value"), kw.get("max_value")
        if lo is not None:
            fn = pc.greater if kw.get("strict_min") else pc.greater_equal
            ok &= _np_bool(fn(arr, _scalar_for(lo, arr)))
        if hi is not None:
            fn = pc.less if kw.get("strict_max") else pc.less_equal
            ok &= _np_bool(fn(arr, _scalar_for(hi, arr)))
        return _map_eval(self._domain(kw), _valid(arr), ok)

    def _expect_column_value_lengths_to_be_between(self, kw: Mapping[str, Any]) -> _Eval:
        arr = self.view.array(kw["column"])
        length = pc.utf8_length(arr)
        ok = np.ones(self.view.n, dtype=bool)
        if kw.get("min_value") is not None:
            ok &= _np_bool(pc.greater_equal(length, kw["min_value"]))
        if kw.get("max_value") is not None:
            ok &= _np_bool(pc.less_equal(length, kw["max_value"]))
        return _map_eval(self._domain(kw), _valid(arr), ok)

    def _expect_column_values_to_be_unique(self, kw: Mapping[str, Any]) -> _Eval:
        arr = self.view.array(kw["column"])
        domain, nonnull = self._domain(kw), _valid(arr)
        keep = domain & nonnull
        shared = np.zeros(self.view.n, dtype=bool)
        if keep.any():
            gid = self.view.group_ids((kw["column"],))[keep]
            shared[keep] = np.bincount(gid)[gid] > 1
        return _map_eval(domain, nonnull, ~shared)

    # --- several columns --------------------------------------------------------------------------
    def _pair(self, kw: Mapping[str, Any]) -> tuple[pa.Array, pa.Array, np.ndarray, np.ndarray]:
        a, b = self.view.array(kw["column_A"]), self.view.array(kw["column_B"])
        va, vb = _valid(a), _valid(b)
        how = kw.get("ignore_row_if", "both_values_are_missing")
        if how == "either_value_is_missing":
            considered = va & vb
        elif how == "both_values_are_missing":
            considered = va | vb
        else:
            considered = np.ones(self.view.n, dtype=bool)
        return a, b, self._domain(kw), considered

    def _expect_column_pair_values_a_to_be_greater_than_b(self, kw: Mapping[str, Any]) -> _Eval:
        a, b, domain, considered = self._pair(kw)
        fn = pc.greater_equal if kw.get("or_equal") else pc.greater
        return _map_eval(domain, considered, _np_bool(fn(a, b)))

    def _expect_column_pair_values_to_be_equal(self, kw: Mapping[str, Any]) -> _Eval:
        a, b, domain, considered = self._pair(kw)
        return _map_eval(domain, considered, _np_bool(pc.equal(a, b)))

    def _multi(self, kw: Mapping[str, Any]) -> tuple[list[pa.Array], np.ndarray, Any]:
        arrays = [self.view.array(c) for c in kw["column_list"]]
        valids = np.stack([_valid(a) for a in arrays])
        how = kw.get("ignore_row_if", "all_values_are_missing")
        if how == "any_value_is_missing":
            considered = valids.all(axis=0)
        elif how == "all_values_are_missing":
            considered = valids.any(axis=0)
        else:
            considered = np.ones(self.view.n, dtype=bool)
        return arrays, self._domain(kw), considered

    def _expect_compound_columns_to_be_unique(self, kw: Mapping[str, Any]) -> _Eval:
        arrays, domain, considered = self._multi(kw)
        keep = domain & considered
        shared = np.zeros(self.view.n, dtype=bool)
        if keep.any():
            gid = self.view.group_ids(tuple(kw["column_list"]))[keep]
            shared[keep] = np.bincount(gid)[gid] > 1
        return _map_eval(domain, considered, ~shared)

    def _expect_select_column_values_to_be_unique_within_record(self, kw: Mapping[str, Any]) -> _Eval:
        arrays, domain, considered = self._multi(kw)
        same = np.zeros(self.view.n, dtype=bool)
        for i in range(len(arrays)):
            for j in range(i + 1, len(arrays)):
                same |= _np_bool(pc.equal(arrays[i], arrays[j]))
        return _map_eval(domain, considered, ~same)


def _gx_evaluations(view: _View, suite: Any, params: Mapping[str, Any]) -> list[_Eval]:
    """Run GX itself on the pandas view; keep counts and row positions, drop every value."""
    context = _gx_context()
    frame = view.to_pandas()
    import uuid

    # A required column missing from the file is missing from the frame too; GX then checks only that
    # it exists (the other expectations on it are not evaluated, as with the mask engine).
    absent = {c for c, spec in view.contract.columns.items() if spec.required and c not in view.present}
    absent_view = absent | {gs.value_column(c, view.contract.columns[c].type) for c in absent}
    frame = frame.drop(columns=[c for c in frame.columns if c in absent_view])
    runnable = [
        e for e in suite.expectations
        if gs.check_meta(e).kind == "present" or not (set(gs.check_meta(e).columns) & absent)
    ]
    if len(runnable) != len(suite.expectations):
        suite = type(suite)(name=suite.name, expectations=[e.configuration.to_domain_obj() for e in runnable])
    all_expectations = list(suite_for(view.contract).expectations)

    source = context.data_sources.add_pandas(f"c2c_{uuid.uuid4().hex[:12]}")
    try:
        asset = source.add_dataframe_asset("extract")
        batch = asset.add_batch_definition_whole_dataframe("file").get_batch(batch_parameters={"dataframe": frame})
        with warnings.catch_warnings():
            # pandas' str.contains warns when a contract pattern has groups; it changes nothing
            warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular expression")
            result = batch.validate(
                suite,
                result_format={"result_format": "COMPLETE", "partial_unexpected_count": MAX_PARTIAL},
                expectation_parameters=dict(params),
            )
    finally:
        context.data_sources.delete(source.name)
    by_rule: dict[str, _Eval] = {}
    for res in result.results:
        info = res.exception_info or {}
        nested = [v for v in info.values() if isinstance(v, dict)]
        if info.get("raised_exception") or any(v.get("raised_exception") for v in nested):
            # Never re-raise GX's message: it may quote values.
            raise RuntimeError(f"GX could not evaluate {res.expectation_config.type} ({gs.check_meta(res.expectation_config).rule})")
        r = res.result or {}
        unexpected = None
        if "unexpected_index_list" in r:
            unexpected = np.zeros(view.n, dtype=bool)
            unexpected[np.asarray(r["unexpected_index_list"], dtype=np.int64)] = True
        observed = r.get("observed_value")
        if isinstance(observed, list | tuple | set):
            observed = sorted(v for v in observed if v is not None)
        by_rule[gs.check_meta(res.expectation_config).rule] = _Eval(
            True,
            bool(res.success),
            unexpected,
            r.get("element_count"),
            r.get("missing_count"),
            r.get("unexpected_count"),
            observed,
            missing_values=tuple(r.get("partial_missing_list") or ()),
        )
    # GX reports results in its own order: put them back in the suite's order.
    return [by_rule.get(gs.check_meta(e).rule, _Eval(False)) for e in all_expectations]


@functools.lru_cache(maxsize=1)
def _gx_context() -> Any:
    return gs.ephemeral_context()

