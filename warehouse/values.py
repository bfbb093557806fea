"""Lenient parsing of staging columns for the warehouse: what does not parse becomes NULL, never an error.

Staging frames hold Arrow-backed strings; trimming and blank detection run in Arrow, and every parse rule
(integer, date, CVX code) runs once per *distinct* value, spread back to the rows by factorisation codes:
a million-row date column parses a few thousand dates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from schemas.indicators import cvx

INT32_MAX = 2**31 - 1


class ParseError(ValueError):
    """An unknown parse rule (a programming error, never a data error)."""


def text(s: pd.Series) -> pd.Series:
    """Trimmed text, blanks as missing; Arrow-backed when the column holds strings (the staging frames)."""
    arr = _arrow_strings(s)
    if arr is None:
        out = s.astype("string").str.strip()
        return out.mask(out == "")
    trimmed = pc.utf8_trim_whitespace(arr)
    blank = pc.equal(trimmed, "")
    return pd.Series(pc.if_else(blank, pa.scalar(None, pa.string()), trimmed), index=s.index, dtype=pd.ArrowDtype(pa.string()))


def _arrow_strings(s: pd.Series) -> pa.Array | pa.ChunkedArray | None:
    if isinstance(s.dtype, pd.ArrowDtype):
        return pa.array(s) if pa.types.is_string(s.dtype.pyarrow_dtype) else None
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        return pa.array(s, type=pa.string(), from_pandas=True)
    return None


def parse(s: pd.Series, how: str) -> pd.Series:
    """Parse a column leniently. Each *distinct* value is parsed once and spread back to the rows."""
    t = text(s)
    if how == "str":
        return pd.Series(t.to_numpy(dtype=object, na_value=None), index=s.index, dtype=object)
    codes, uniques = pd.factorize(t, use_na_sentinel=True)
    parsed = _parse_distinct(pd.Series(uniques.to_numpy(dtype=object, na_value=None), dtype=object), how)
    if how == "int":
        return pd.Series(parsed.array.take(codes, allow_fill=True), index=s.index)
    lookup = np.empty(len(parsed) + 1, dtype=object)
    lookup[: len(parsed)] = parsed.to_numpy(dtype=object)
    lookup[len(parsed)] = None
    return pd.Series(lookup[codes], index=s.index, dtype=object)


def _parse_distinct(t: pd.Series, how: str) -> pd.Series:
    """The parse rules over distinct trimmed, non-blank values (object dtype)."""
    if how == "cvx":
        return t.map(cvx)
    if how == "int":
        num = pd.to_numeric(t, errors="coerce").astype("Float64")
        ok = num.notna() & (num == num.round()) & (num.abs() <= INT32_MAX)
        return num.where(ok).astype("Int64")
    if how == "date":
        parsed = pd.to_datetime(t, format="%Y-%m-%d", errors="coerce")
        return pd.Series(np.where(parsed.notna(), parsed.dt.date, None), index=t.index, dtype=object)
    raise ParseError(f"unknown parse rule {how!r}")


__all__ = ["INT32_MAX", "ParseError", "parse", "text"]
