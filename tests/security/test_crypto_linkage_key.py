"""Issue 20 finding 9: the exported linkage key alone must open nothing in the linkage area.

The attacker holds only the linkage key an agency gets for tokenizing at source (``c2c keys
export-linkage``), a list of first names and the range of plausible birth dates. They compute the
agency-side encoding of every guess and look for it among the encodings the hub stored.

* On a deliberately single-keyed encoding (what the hub stored before the fix: ``encode_for_linkage``
  with the linkage key only) the attack recovers every birth date and every first name (100%).
* On what the hub stores now (``protect_raw`` / ``protect_tokenized``: the hub-only ``linkage_hub``
  layer on top) it recovers 0%, also through the Bloom filters given the exact full name.

Keyed equality and Bloom (Dice) similarity are exactly preserved by the extra layer, both ways in (raw
and tokenized at source) give identical stored encodings, and a rotation of ``linkage_hub`` re-encodes
a stored file (legacy single-keyed files get the layer) to exactly what a fresh protect would write.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_sharing.encodings import HUB_KEY_METADATA, dice, encode_for_linkage, rekey_encodings_file
from data_sharing.keys import KeySet, export_linkage_key, init_keyset, load_linkage_key
from data_sharing.protect import protect_raw, protect_tokenized, tokenize_frame
from schemas.contracts import ExtractContract, load_extract_contracts
from synthetic.names import CHILD_GIVEN

PEOPLE = 400
FIRST = dt.date(2008, 1, 1)
LAST = dt.date(2021, 12, 31)


def _dates() -> list[str]:
    return [(FIRST + dt.timedelta(days=i)).isoformat() for i in range((LAST - FIRST).days + 1)]


def _first_names() -> list[str]:
    return sorted({str(n) for table in CHILD_GIVEN.values() for n in table.names})


@pytest.fixture(scope="module")
def contract() -> ExtractContract:
    return load_extract_contracts()[("fps", "students")]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> tuple[KeySet, Path]:
    tmp = tmp_path_factory.mktemp("hub")
    keyset = init_keyset(tmp / "keys" / "master.key")
    exported = tmp / "agency" / "linkage.key"
    export_linkage_key(keyset, exported)
    return keyset, exported


def _extract(contract: ExtractContract, n: int, seed: int = 20) -> pd.DataFrame:
    """``n`` invented students: first names from the synthetic name tables, birth dates in range."""
    rng = np.random.default_rng(seed)
    names, dates = _first_names(), _dates()
    values = {
        "student_id": [f"S{100000 + i}" for i in range(n)],
        "first_name": list(rng.choice(names, n)),
        "middle_name": [""] * n,
        "last_name": [f"Surname{chr(65 + i % 26)}{chr(65 + i // 26 % 26)}" for i in range(n)],
        "birth_date": list(rng.choice(dates, n)),
        "sex": list(rng.choice(["F", "M"], n)),
        "race_ethnicity": ["HI"] * n, "english_learner": ["N"] * n, "disability": ["N"] * n,
        "econ_disadvantaged": ["N"] * n, "homeless": ["N"] * n,
        "street_address": [f"{10 + i} Oak St" for i in range(n)], "zip": ["60601"] * n,
        "school_id": ["0101"] * n, "grade_level": ["05"] * n, "school_year": ["2025"] * n,
        "enroll_date": ["2025-08-20"] * n, "exit_date": [""] * n,
    }
    return pd.DataFrame({c: pd.Series(values[c], dtype="string") for c in contract.columns})


def _dictionary(contract: ExtractContract, linkage_key, column: str, field: str, guesses: list[str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The attacker's table: agency-side encoding of every guess -> the guess."""
    frame = _extract(contract, len(guesses))
    frame[field] = pd.Series(guesses, dtype="string")
    enc = encode_for_linkage(frame, contract, linkage_key)
    return dict(zip(enc[column].astype(str), guesses, strict=True))


def _recovered(stored: pd.DataFrame, truth: pd.Series, table: dict[str, str], column: str) -> float:
    guessed = stored[column].astype(str).map(table)
    return float((guessed.to_numpy() == truth.str.upper().to_numpy()).mean())


def _attack(stored: pd.DataFrame, raw: pd.DataFrame, contract: ExtractContract, exported: Path) -> dict[str, float]:
    linkage_key = load_linkage_key(exported)  # all the attacker holds
    dates = _dictionary(contract, linkage_key, "birth_date_hash", "birth_date", _dates())
    names = _dictionary(contract, linkage_key, "first_name_hash", "first_name", [n.upper() for n in _first_names()])
    # Bloom filters: the attacker even knows each person's exact full name
    guess_blooms = encode_for_linkage(raw, contract, linkage_key)["name_bloom"].tolist()
    same_bloom = np.mean([bytes(a) == bytes(b) for a, b in zip(guess_blooms, stored["name_bloom"].tolist(), strict=True)])
    return {
        "birth_date": _recovered(stored, raw["birth_date"], dates, "birth_date_hash"),
        "first_name": _recovered(stored, raw["first_name"], names, "first_name_hash"),
        "name_bloom": float(same_bloom),
    }


def test_the_attack_works_on_a_single_keyed_encoding(hub, contract) -> None:  # noqa: ANN001
    keyset, exported = hub
    raw = _extract(contract, PEOPLE)
    single = encode_for_linkage(raw, contract, keyset)  # the old scheme: linkage key only
    got = _attack(single, raw, contract, exported)
    assert got == {"birth_date": 1.0, "first_name": 1.0, "name_bloom": 1.0}, got


def test_the_exported_linkage_key_recovers_nothing_from_the_hubs_encodings(hub, contract) -> None:  # noqa: ANN001
    keyset, exported = hub
    raw = _extract(contract, PEOPLE)
    stored = protect_raw(raw, contract, keyset).encodings
    assert stored is not None and len(stored) == PEOPLE
    got = _attack(stored, raw, contract, exported)
    assert got == {"birth_date": 0.0, "first_name": 0.0, "name_bloom": 0.0}, got
    # nor does any stored hash equal any agency-side hash of the same records, in any column
    agency = encode_for_linkage(raw, contract, load_linkage_key(exported))
    hash_cols = [c for c in stored.columns if c.endswith("_hash")]
    assert len(hash_cols) >= 20
    agency_values = set(itertools.chain.from_iterable(agency[c].dropna().astype(str) for c in hash_cols))
    stored_values = set(itertools.chain.from_iterable(stored[c].dropna().astype(str) for c in hash_cols))
    assert agency_values and stored_values and not (agency_values & stored_values)


def test_tokenized_at_source_gets_the_same_hub_layer(hub, contract) -> None:  # noqa: ANN001
    keyset, exported = hub
    raw = _extract(contract, 60, seed=3)
    from_raw = protect_raw(raw, contract, keyset)
    tokens = tokenize_frame(raw, contract, load_linkage_key(exported)).astype("string")
    from_tokens = protect_tokenized(tokens, contract, keyset)
    pd.testing.assert_frame_equal(from_raw.encodings, from_tokens.encodings, check_dtype=False)
    assert from_raw.encodings.birth_date_hash.notna().all()
    assert from_raw.key_labels["linkage_hub"] == from_tokens.key_labels["linkage_hub"] == keyset.purpose_key("linkage_hub").label


def test_equality_and_dice_are_preserved(hub, contract) -> None:  # noqa: ANN001
    keyset, _ = hub
    raw = _extract(contract, 120, seed=5)
    single = encode_for_linkage(raw, contract, keyset)
    stored = protect_raw(raw, contract, keyset).encodings
    for col in ("first_name_hash", "birth_date_hash", "last_name_hash", "zip_hash"):
        a, b = single[col].astype(str).to_numpy(), stored[col].astype(str).to_numpy()
        assert ((a[:, None] == a[None, :]) == (b[:, None] == b[None, :])).all(), col
    # hand-checkable cross-column equality: the canonical first name shares the first_name domain
    assert (stored.first_name_canonical_hash == stored.first_name_hash).sum() == (single.first_name_canonical_hash == single.first_name_hash).sum()
    for i, j in [(0, 1), (2, 3), (5, 50), (7, 7)]:
        for col in ("name_bloom", "address_bloom"):
            assert dice(bytes(single[col][i]), bytes(single[col][j])) == dice(bytes(stored[col][i]), bytes(stored[col][j]))
    assert (single.name_bloom_bits.to_numpy() == stored.name_bloom_bits.to_numpy()).all()


def _write(frame: pd.DataFrame, path: Path, label: str | None) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if label:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), HUB_KEY_METADATA.encode(): label.encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def test_rotating_the_hub_key_re_encodes_stored_files(contract, tmp_path: Path) -> None:  # noqa: ANN001
    keyset = init_keyset(tmp_path / "keys" / "master.key")
    raw = _extract(contract, 80, seed=9)
    before = protect_raw(raw, contract, keyset).encodings
    legacy = encode_for_linkage(raw, contract, keyset)[before.columns.drop(["source_key", "row_number"])]
    stored, old = tmp_path / "enc" / "a.parquet", tmp_path / "enc" / "legacy.parquet"
    _write(before, stored, keyset.purpose_key("linkage_hub").label)
    _write(legacy, old, None)
    assert rekey_encodings_file(stored, keyset) is False  # already under the current key: untouched

    keyset.rotate(["linkage_hub"])
    assert keyset.current_version("linkage_hub") == 2 and keyset.current_version("linkage") == 1
    assert rekey_encodings_file(stored, keyset) is True and rekey_encodings_file(old, keyset) is True
    after = protect_raw(raw, contract, keyset).encodings
    got = pq.read_table(stored).to_pandas(types_mapper=pd.ArrowDtype)
    pd.testing.assert_frame_equal(got, after, check_dtype=False)
    assert (got.birth_date_hash != before.birth_date_hash).all()
    got_old = pq.read_table(old).to_pandas(types_mapper=pd.ArrowDtype)
    pd.testing.assert_frame_equal(got_old, after[legacy.columns], check_dtype=False)
    meta = pq.read_schema(stored).metadata
    assert meta[HUB_KEY_METADATA.encode()].decode() == keyset.purpose_key("linkage_hub").label
    assert os.stat(stored).st_mode & 0o077 == 0
