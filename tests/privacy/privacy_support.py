"""Helpers shared by the privacy tests (imported by name: the test folder is on sys.path)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd

FIXED_NOW = dt.datetime(2026, 9, 15, 6, 30, tzinfo=dt.UTC)


def fixed_bytes(seed: int) -> Callable[[int], bytes]:
    """A 'random' source that pins outputs: bytes seed, seed+1, ... (mod 256)."""

    def randbytes(n: int) -> bytes:
        return bytes((seed + i) % 256 for i in range(n))

    return randbytes


IDENTIFIER_COLUMNS = ("student_id", "first_name", "middle_name", "last_name", "birth_date", "street_address", "zip")


def raw_identifier_strings(frame: pd.DataFrame, columns: tuple[str, ...] = IDENTIFIER_COLUMNS) -> set[str]:
    """Every non-empty identifier value of a frame, as text (for 'nothing raw leaks' assertions)."""
    out: set[str] = set()
    for col in columns:
        if col in frame.columns:
            out |= {str(v).strip() for v in frame[col].dropna() if str(v).strip()}
    return out


def all_cells_text(frame: pd.DataFrame) -> list[str]:
    cells: list[str] = []
    for col in frame.columns:
        for v in frame[col].tolist():
            if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
                continue
            cells.append(v.hex() if isinstance(v, bytes) else str(v))
    return cells
