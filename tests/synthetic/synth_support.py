"""Helpers for the synthetic-city tests: the test city's parameters and readers for its files."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from schemas.contracts import ExtractContract
from synthetic.city import CitySummary

CHILDREN = int(os.environ.get("C2C_SYNTH_CHILDREN", "2500"))
SEED = int(os.environ.get("C2C_SYNTH_SEED", "7"))  # another seed: the bands must hold for any city
AS_OF = dt.date(2026, 8, 15)


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV as strings, blank as ''; nothing is trimmed or converted."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")


@dataclass
class City:
    out: Path
    summary: CitySummary
    contracts: dict[tuple[str, str], ExtractContract]

    @cached_property
    def json(self) -> dict:
        return json.loads((self.out / "truth" / "summary.json").read_text(encoding="utf-8"))

    def extract(self, agency: str, extract: str) -> pd.DataFrame:
        return self._extract(agency, extract)

    def _extract(self, agency: str, extract: str) -> pd.DataFrame:
        key = (agency, extract)
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            cache[key] = read_csv(self.summary.files[key])
        return cache[key]

    def truth(self, name: str) -> pd.DataFrame:
        cache = self.__dict__.setdefault("_truth", {})
        if name not in cache:
            cache[name] = read_csv(self.out / "truth" / f"{name}.csv")
        return cache[name]

    @cached_property
    def person_of(self) -> pd.Series:
        """source id -> person_id (every id type)."""
        ids = self.truth("identities")
        return pd.Series(ids.person_id.to_numpy(), index=ids.source_id.to_numpy())
