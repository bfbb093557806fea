"""Synthetic cities for `c2c synth` and `c2c demo` (plain Python, no Dagster): the reference city with an
error profile, or a city in any partnership's files. The generators are :mod:`synthetic`'s; this is the one
module under ``stages`` that reaches them (``ALLOWED_MODULES`` in tests/architecture/test_layers.py).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synthetic.city import CitySummary


def check_profile(profile: str | Path) -> None:
    """A ``ValueError`` (one line) when ``profile`` is not a known or well-formed city error profile."""
    from synthetic.profiles import load_profile

    load_profile(profile)


def generate_city(children: int, seed: int, out: Path, *, as_of: dt.date | None = None,
                  profile: str | None = None) -> CitySummary:
    """Write the reference city's extracts (``out/drop``) and its ground truth (``out/truth``)."""
    from synthetic.city import generate_city as _generate

    kwargs: dict[str, Any] = {"as_of": as_of} if as_of else {}
    if profile:
        kwargs["profile"] = profile
    return _generate(children, seed, out, **kwargs)


def generate_partnership_city(partnership_dir: Path | str, children: int, seed: int, out: Path, *,
                              as_of: dt.date | None = None) -> dict[tuple[str, str], int]:
    """A synthetic city in the files of the partnership at ``partnership_dir``; rows per (agency, extract)."""
    from data_sharing.partnership import load_partnership_dir
    from synthetic.partnership_city import generate_partnership_city as _generate

    kwargs = {"as_of": as_of} if as_of else {}
    return _generate(load_partnership_dir(partnership_dir), children, seed, out, **kwargs)
