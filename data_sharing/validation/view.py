"""The validation view of a file: Arrow helpers, trimmed strings, parsed copies and reference flags."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas import gx_suite as gs
from schemas.contracts import ExtractContract

_UNICODE_CLASSES = re.compile(r"\\[dDwWsSbB]")
_NULL_STR = pa.scalar(None, pa.string())


# ==================================================================================================
# Arrow helpers


def _np_bool(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _valid(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _as_array(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not pa.types.is_string(arr.type):
        arr = pc.cast(arr, pa.string())
    return arr


def _map_uniques(arr: pa.Array, fn: Callable[[str], bool]) -> np.ndarray:
    """``fn`` of every non-null value, computed once per distinct value (nulls give True)."""
    enc = pc.dictionary_encode(arr)
    values = enc.dictionary.to_pylist()
    table = np.fromiter((bool(fn(v)) for v in values), dtype=bool, count=len(values))
    idx = enc.indices
    out = np.ones(len(arr), dtype=bool)
    if len(values):
        valid = _valid(idx)
        pos = pc.fill_null(idx, 0).to_numpy(zero_copy_only=False)
        out[valid] = table[pos[valid]]
    return out


def _regex_ok(arr: pa.Array, pattern: str) -> np.ndarray:
    """Python ``re.search`` semantics (as GX on pandas: ``str.contains``); nulls give True."""
    if not _UNICODE_CLASSES.search(pattern):
        try:
            return _np_bool(pc.match_substring_regex(arr, pattern=pattern)) | ~_valid(arr)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # not RE2 syntax (look-arounds, back-references): fall back to Python on distinct values
    rx = re.compile(pattern)
    return _map_uniques(arr, lambda v: rx.search(v) is not None)


def _strptime_ok(arr: pa.Array, fmt: str) -> np.ndarray:
    """Python ``datetime.strptime`` semantics (as GX); computed once per distinct value."""

    def ok(v: str) -> bool:
        try:
            dt.datetime.strptime(v, fmt)  # noqa: DTZ007
        except ValueError:
            return False
        return True

    return _map_uniques(arr, ok)


def _factorize(values: np.ndarray) -> tuple[np.ndarray, int]:
    import pandas as pd

    codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64), len(uniques)


def _group_ids(arrays: list[pa.Array]) -> np.ndarray:
    """Dense group ids of the rows of several aligned columns (null is a value of its own)."""
    n = len(arrays[0]) if arrays else 0
    gid = np.zeros(n, dtype=np.int64)
    card = 1
    for arr in arrays:
        enc = pc.dictionary_encode(arr, null_encoding="encode")
        codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        k = max(len(enc.dictionary), 1)
        if card * k >= 2**62:
            gid, card = _factorize(gid)
        gid = gid * k + codes
        card *= k
    if card >= 2**31 or len(arrays) > 1:
        gid, card = _factorize(gid)
    return gid


def _shared(gid: np.ndarray) -> np.ndarray:
    """Rows whose group has more than one row (GX ``duplicated(keep=False)``)."""
    if gid.size == 0:
        return np.zeros(0, dtype=bool)
    counts = np.bincount(gid)
    return counts[gid] > 1


# ==================================================================================================
# The validation view: trimmed strings, parsed copies, reference flags


@dataclass
class _View:
    contract: ExtractContract
    n: int
    raw: dict[str, pa.Array]  # contract column -> trimmed strings, null when blank (or column absent)
    present: set[str]
    typed: dict[str, pa.Array] = field(default_factory=dict)  # value_column -> int64 / float64 / date32
    refs: dict[str, np.ndarray | None] = field(default_factory=dict)  # reference_column -> found (bool)
    ref_valid: dict[str, np.ndarray] = field(default_factory=dict)
    ref_notes: dict[str, str] = field(default_factory=dict)
    _cache: dict[tuple[Any, ...], np.ndarray] = field(default_factory=dict)

    def array(self, name: str) -> pa.Array:
        if name in self.raw:
            return self.raw[name]
        if name in self.typed:
            return self.typed[name]
        if name in self.refs:
            found, valid = self.refs[name], self.ref_valid.get(name)
            if found is None or valid is None:
                return pa.nulls(self.n, pa.bool_())
            return pa.array(found, pa.bool_(), mask=~valid)
        raise KeyError(name)

    def regex_ok(self, column: str, pattern: str) -> np.ndarray:
        key = ("regex", column, pattern)
        if key not in self._cache:
            self._cache[key] = _regex_ok(self.array(column), pattern)
        return self._cache[key]

    def strptime_ok(self, column: str, fmt: str) -> np.ndarray:
        key = ("strptime", column, fmt)
        if key not in self._cache:
            self._cache[key] = _strptime_ok(self.array(column), fmt)
        return self._cache[key]

    def group_ids(self, columns: tuple[str, ...]) -> np.ndarray:
        """Group ids of the rows over ``columns`` (not necessarily dense; null is a value)."""
        key = ("gid", columns)
        if key not in self._cache:
            self._cache[key] = _group_ids([self.array(c) for c in columns])
        return self._cache[key]

    def to_pandas(self) -> Any:
        """The same view as a pandas frame, for GX itself (dates as ``datetime.date``, integers as float)."""
        import pandas as pd

        data: dict[str, Any] = {}
        for name, arr in self.raw.items():
            data[name] = arr.to_pandas().astype(object).where(_valid(arr), None)
        for name, arr in self.typed.items():
            if pa.types.is_date(arr.type):
                data[name] = arr.to_pandas(date_as_object=True).astype(object).where(_valid(arr), None)
            else:
                data[name] = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        for name, found in self.refs.items():
            col = np.full(self.n, None, dtype=object)
            if found is not None:
                valid = self.ref_valid[name]
                col[valid] = found[valid]
            data[name] = col
        return pd.DataFrame(data, index=pd.RangeIndex(self.n))


def _trim_and_blank(arr: pa.Array) -> pa.Array:
    """Surrounding whitespace removed (as intake reads periods), blank cells as nulls."""
    if len(arr) == 0:
        return arr
    arr = pc.utf8_trim_whitespace(arr)
    blank = pc.equal(arr, "")
    if pc.any(blank).as_py():
        arr = pc.if_else(blank, _NULL_STR, arr)
    return arr


def _build_view(contract: ExtractContract, raw: dict[str, pa.Array], present: set[str], n: int) -> _View:
    view = _View(contract=contract, n=n, raw=raw, present=present)
    for spec in contract.columns.values():
        if spec.type not in ("integer", "number", "date"):
            continue
        name = gs.value_column(spec.name, spec.type)
        arr = raw[spec.name]
        if spec.type == "integer":
            ok = view.regex_ok(spec.name, gs.INTEGER_REGEX) & _valid(arr)
            view.typed[name] = pc.cast(pc.if_else(pa.array(ok), arr, _NULL_STR), pa.int64())
        elif spec.type == "number":
            ok = view.regex_ok(spec.name, gs.NUMBER_REGEX) & _valid(arr)
            view.typed[name] = pc.cast(pc.if_else(pa.array(ok), arr, _NULL_STR), pa.float64())
        else:
            ok = view.regex_ok(spec.name, gs.DATE_REGEX) & view.strptime_ok(spec.name, gs.DATE_FORMAT) & _valid(arr)
            text = pc.if_else(pa.array(ok), arr, _NULL_STR)
            view.typed[name] = pc.cast(pc.strptime(text, format=gs.DATE_FORMAT, unit="s", error_is_null=True), pa.date32())
    return view


def _key_arrays(contract: ExtractContract, raw: Mapping[str, pa.Array], columns: list[str]) -> list[pa.Array]:
    """Key columns in canonical text: integers as parsed numbers (``02026`` is ``2026``), others trimmed."""
    out = []
    for c in columns:
        arr = raw[c]
        if contract.columns[c].type == "integer":
            ok = _regex_ok(arr, gs.INTEGER_REGEX) & _valid(arr)
            arr = pc.cast(pc.cast(pc.if_else(pa.array(ok), arr, _NULL_STR), pa.int64()), pa.string())
        out.append(arr)
    return out


def _prepare_other(table: pa.Table, contract: ExtractContract, columns: list[str]) -> dict[str, pa.Array] | None:
    if any(c not in table.column_names for c in columns):
        return None
    return {c: _trim_and_blank(_as_array(table.column(c))) for c in columns}


def _attach_references(view: _View, references: Mapping[str, pa.Table] | None) -> None:
    contract = view.contract
    for ref in contract.references:
        name = gs.reference_column(ref)
        other = (references or {}).get(ref.extract)
        view.refs[name] = None
        if other is None:
            view.ref_notes[name] = (
                f"Reference {ref.id} was not checked: no {ref.extract} extract was given to check against."
            )
            continue
        other_raw = _prepare_other(other, contract, list(ref.columns))
        if other_raw is None:
            view.ref_notes[name] = (
                f"Reference {ref.id} was not checked: the {ref.extract} extract lacks {', '.join(ref.columns)}."
            )
            continue
        mine = _key_arrays(contract, view.raw, list(ref.columns))
        theirs = _key_arrays(contract, other_raw, list(ref.columns))
        valid = np.ones(view.n, dtype=bool)
        for a in mine:
            valid &= _valid(a)
        other_valid = np.ones(other.num_rows, dtype=bool)
        for a in theirs:
            other_valid &= _valid(a)
        both = [pa.concat_arrays([a, b]) for a, b in zip(mine, theirs, strict=True)]
        gid = _group_ids(both) if view.n + other.num_rows else np.zeros(0, np.int64)
        known = np.unique(gid[view.n :][other_valid])
        view.refs[name] = np.isin(gid[: view.n], known)
        view.ref_valid[name] = valid


