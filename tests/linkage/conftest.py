"""Fixtures of the linkage tests: a small synthetic city, protected as the privacy stage does, its truth,
and a model trained on it once per session. Every name, date and address is made up by the generator."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from data_sharing.keys import KeySet, init_keyset
from data_sharing.linkage import LinkageModel, link, train_model
from data_sharing.linkage.truth import CityInputs, encode_city
from synthetic.city import generate_city

CHILDREN = 700
SEED = 5
NOW = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)  # runs are stamped with a date no birth date can equal


def _fixed_bytes(seed: int):  # noqa: ANN202
    def randbytes(n: int) -> bytes:
        return bytes((seed + i) % 256 for i in range(n))

    return randbytes


@pytest.fixture(scope="session")
def keyset(tmp_path_factory: pytest.TempPathFactory) -> KeySet:
    return init_keyset(tmp_path_factory.mktemp("keys") / "master.key", randbytes=_fixed_bytes(41),
                       now=lambda: NOW)


@pytest.fixture(scope="session")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("linkage_city")
    generate_city(CHILDREN, SEED, out)
    return out


@pytest.fixture(scope="session")
def inputs(city: Path, keyset: KeySet) -> CityInputs:
    return encode_city(city, keyset, keep_raw=True)


@pytest.fixture(scope="session")
def model(inputs: CityInputs, tmp_path_factory: pytest.TempPathFactory) -> LinkageModel:
    return train_model(inputs.encodings, workdir=tmp_path_factory.mktemp("model"), now=NOW)


@pytest.fixture(scope="session")
def first_run(inputs: CityInputs, model: LinkageModel, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    work = tmp_path_factory.mktemp("linkage_area")
    return link(inputs.encodings, model, workdir=work, run_id="night-1", attributes=inputs.attributes, now=NOW)
