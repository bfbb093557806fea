"""A synthetic city of a few thousand children, generated once per test session."""

from __future__ import annotations

import pytest

from schemas.contracts import load_extract_contracts
from synth_support import AS_OF, CHILDREN, SEED, City  # type: ignore[import-not-found]
from synthetic.city import generate_city


@pytest.fixture(scope="session")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    out = tmp_path_factory.mktemp("synthetic_city")
    summary = generate_city(CHILDREN, SEED, out, as_of=AS_OF)
    return City(out, summary, load_extract_contracts())
