"""Each distinct id is hashed once per file: an event extract repeats a person's id on every row, and
its keyed hashes are computed per person, then spread back to the rows (same values as per row)."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd
import pytest

from data_sharing import _crypto
from data_sharing import pseudonyms as ps
from data_sharing.keys import KeySet


def _token(keyset: KeySet, normalised: str) -> str:
    key = keyset.purpose_key("linkage").secret
    return hmac.new(key, f"fhd|patient|{normalised}".encode(), hashlib.sha256).hexdigest()


def _key(keyset: KeySet, token: str) -> str:
    return hmac.new(keyset.purpose_key("pseudonym").secret, bytes.fromhex(token), hashlib.sha256).hexdigest()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of messages of every hmac_sha256_batch call."""
    sizes: list[int] = []
    real = _crypto.hmac_sha256_batch

    def counting(key, messages, **kw):  # type: ignore[no-untyped-def]
        sizes.append(len(messages))
        return real(key, messages, **kw)

    monkeypatch.setattr(_crypto, "hmac_sha256_batch", counting)
    return sizes


# 9 rows, 3 people: "P1" four times (two spellings that normalise alike), "P2" three times, "P3" once, one blank
IDS = pd.Series(["P1", " p1", "P2", None, "P1", "P2", "P3", "p 1", "P2"], index=range(10, 19), dtype="string[pyarrow]")


def test_one_pass_hashes_each_person_once_and_matches_stdlib(keyset: KeySet, counted: list[int]) -> None:
    out = ps.pseudonymize_ids(IDS, keyset, agency="fhd", id_type="patient")
    assert counted == [3]  # three people, not eight rows
    want = {p: _token(keyset, p) for p in ("P1", "P2", "P3")}
    expected = ["P1", "P1", "P2", None, "P1", "P2", "P3", "P1", "P2"]
    assert out["id_token"].tolist()[:3] == [want["P1"], want["P1"], want["P2"]]
    assert [None if pd.isna(v) else v for v in out["id_token"]] == [None if p is None else want[p] for p in expected]
    assert [None if pd.isna(v) else v for v in out["source_key"]] == [
        None if p is None else _key(keyset, want[p]) for p in expected
    ]
    assert out.index.tolist() == list(range(10, 19))


def test_tokens_and_source_keys_from_tokens_hash_each_distinct_value_once(keyset: KeySet, counted: list[int]) -> None:
    tokens = ps.tokenize_ids(IDS, keyset, agency="fhd", id_type="patient")
    keys = ps.source_keys_from_tokens(tokens, keyset)
    assert counted == [3, 3]
    assert keys.tolist() == ps.pseudonymize_ids(IDS, keyset, agency="fhd", id_type="patient")["source_key"].tolist()


def test_all_distinct_ids_take_the_plain_path(keyset: KeySet, counted: list[int]) -> None:
    ids = pd.Series([f"S{i}" for i in range(5)])
    out = ps.pseudonymize_ids(ids, keyset, agency="fhd", id_type="patient")
    assert counted == [5]
    assert out["id_token"].tolist() == [_token(keyset, f"S{i}") for i in range(5)]
