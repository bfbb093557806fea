"""Vectorised calendar helpers on integer day numbers (days since 1970-01-01).

The generator keeps every date as an int64 day number so whole columns can be shifted, compared and
clipped with numpy; dates become ``YYYY-MM-DD`` strings only when a file is written.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

EPOCH = dt.date(1970, 1, 1)
NEVER = np.int64(10**7)  # a day number far in the future: "no such event"
LONG_AGO = np.int64(-(10**7))


def day(d: dt.date) -> int:
    return (d - EPOCH).days


def to_date(n: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(n))


def ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    months = d.astype("datetime64[M]")
    y = months.astype(np.int64) // 12 + 1970
    m = months.astype(np.int64) % 12 + 1
    dd = (d - months.astype("datetime64[D]")).astype(np.int64) + 1
    return y, m, dd


def month_start(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    months = (np.asarray(y, dtype=np.int64) - 1970) * 12 + (np.asarray(m, dtype=np.int64) - 1)
    return months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def days_in_month(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.int64)
    m = np.asarray(m, dtype=np.int64)
    return month_start(y + (m == 12), np.where(m == 12, 1, m + 1)) - month_start(y, m)


def from_ymd(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    return month_start(y, m) + np.asarray(d, dtype=np.int64) - 1


def add_years(days: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """The same calendar day ``n`` years later (29 February becomes 28 February)."""
    y, m, d = ymd(days)
    y2 = y + np.asarray(n, dtype=np.int64)
    return from_ymd(y2, m, np.minimum(d, days_in_month(y2, m)))


def add_months(days: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    y, m, d = ymd(days)
    total = y * 12 + (m - 1) + np.asarray(n, dtype=np.int64)
    y2, m2 = total // 12, total % 12 + 1
    return from_ymd(y2, m2, np.minimum(d, days_in_month(y2, m2)))


def school_year_of(days: np.ndarray) -> np.ndarray:
    """The school year (calendar year in which it ends) a date falls in; years run July 1 - June 30."""
    y, m, _ = ymd(days)
    return y + (m >= 7)


def sy_start(sy: np.ndarray | int) -> np.ndarray:
    """July 1 opening school year ``sy``."""
    sy = np.asarray(sy, dtype=np.int64)
    return month_start(sy - 1, np.full_like(sy, 7))


def sy_end(sy: np.ndarray | int) -> np.ndarray:
    """June 30 closing school year ``sy``."""
    sy = np.asarray(sy, dtype=np.int64)
    return month_start(sy, np.full_like(sy, 7)) - 1


def to_strings(days: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """``YYYY-MM-DD`` strings (object array); ``None`` where ``present`` is False."""
    days = np.asarray(days, dtype=np.int64)
    out = np.empty(len(days), dtype=object)
    ok = days < NEVER if present is None else np.asarray(present, dtype=bool)
    if ok.any():
        lo, hi = int(days[ok].min()), int(days[ok].max())
        table = np.datetime_as_string(np.arange(lo, hi + 1).astype("datetime64[D]"), unit="D").astype(object)
        out[ok] = table[days[ok] - lo]
    out[~ok] = None
    return out


def swap_day_month(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The date with day and month swapped, and whether that is a different valid date."""
    y, m, d = ymd(days)
    ok = (d <= 12) & (d != m)
    swapped = from_ymd(y, np.where(ok, d, m), np.where(ok, m, d))
    return np.where(ok, swapped, days), ok
