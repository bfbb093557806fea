"""id_token / source_key and pseudonymous extracts."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd
import pyarrow as pa
import pytest

from data_sharing import _crypto
from data_sharing.errors import IdentifierDataError
from data_sharing.keys import KeySet, export_linkage_key, load_linkage_key
from data_sharing.pseudonyms import (
    pseudonymize,
    pseudonymize_ids,
    rekey_crosswalk,
    source_keys_from_tokens,
    tokenize_ids,
)
from privacy_support import all_cells_text, raw_identifier_strings


def _stdlib_id_token(keyset: KeySet, agency: str, id_type: str, normalised: str) -> str:
    key = keyset.purpose_key("linkage").secret
    return hmac.new(key, f"{agency}|{id_type}|{normalised}".encode(), hashlib.sha256).hexdigest()


def _stdlib_source_key(keyset: KeySet, id_token_hex: str, version: int | None = None) -> str:
    key = keyset.purpose_key("pseudonym", version).secret
    return hmac.new(key, bytes.fromhex(id_token_hex), hashlib.sha256).hexdigest()


def test_two_layers_match_an_independent_stdlib_computation(keyset: KeySet) -> None:
    ids = pd.Series([" s 00123 ", "S00124", None, "s00123"], index=[5, 6, 7, 8])
    out = pseudonymize_ids(ids, keyset, agency="fps", id_type="student")
    assert out.index.tolist() == [5, 6, 7, 8]
    want_token = _stdlib_id_token(keyset, "fps", "student", "S00123")
    assert out.loc[5, "id_token"] == want_token == out.loc[8, "id_token"]
    assert out.loc[5, "source_key"] == _stdlib_source_key(keyset, want_token)
    assert out.loc[6, "id_token"] == _stdlib_id_token(keyset, "fps", "student", "S00124")
    assert out.loc[7].isna().all()  # a missing id is a missing token, never HMAC("")
    assert out["id_token"].str.fullmatch("[0-9a-f]{64}").fillna(True).all()


def test_tokenize_then_source_key_equals_the_one_pass(keyset: KeySet) -> None:
    ids = pd.Series([f"S{i:05d}" for i in range(50)] + [None])
    both = pseudonymize_ids(ids, keyset, agency="fhd", id_type="patient")
    tokens = tokenize_ids(ids, keyset, agency="fhd", id_type="patient")
    keys = source_keys_from_tokens(tokens, keyset)
    assert tokens.tolist() == both["id_token"].tolist()
    assert keys.tolist() == both["source_key"].tolist()


def test_an_agency_with_only_the_linkage_key_gets_the_same_tokens(keyset: KeySet, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "fps-linkage.key"
    export_linkage_key(keyset, path)
    agency_key = load_linkage_key(path)
    ids = ["S1", "S2", " s 3"]
    assert tokenize_ids(ids, agency_key, agency="fps", id_type="student").to_pylist() == tokenize_ids(
        ids, keyset, agency="fps", id_type="student"
    ).to_pylist()


def test_determinism_and_key_dependence(keyset: KeySet, other_keyset: KeySet) -> None:
    ids = pd.Series(["S1", "S2", "S3"])
    a = pseudonymize_ids(ids, keyset, agency="fps", id_type="student")
    b = pseudonymize_ids(ids, keyset, agency="fps", id_type="student")
    c = pseudonymize_ids(ids, other_keyset, agency="fps", id_type="student")
    assert a.equals(b)
    assert set(a["id_token"]).isdisjoint(c["id_token"]) and set(a["source_key"]).isdisjoint(c["source_key"])


def test_agency_and_id_type_separate_tokens(keyset: KeySet) -> None:
    ids = ["12345"]
    fps = tokenize_ids(ids, keyset, agency="fps", id_type="student").to_pylist()
    fhd = tokenize_ids(ids, keyset, agency="fhd", id_type="student").to_pylist()
    other_type = tokenize_ids(ids, keyset, agency="fps", id_type="medicaid").to_pylist()
    assert len({fps[0], fhd[0], other_type[0]}) == 3


def test_pseudonym_key_rotation_only_changes_source_keys(keyset: KeySet) -> None:
    ids = pd.Series(["S1", "S2"])
    before = pseudonymize_ids(ids, keyset, agency="fps", id_type="student")
    keyset.rotate(["pseudonym"])
    after = pseudonymize_ids(ids, keyset, agency="fps", id_type="student")
    assert after["id_token"].tolist() == before["id_token"].tolist()
    assert set(after["source_key"]).isdisjoint(before["source_key"])


def test_rekey_crosswalk_maps_old_to_new_source_keys(keyset: KeySet) -> None:
    ids = pd.Series(["S1", "S2", "S1", None])
    before = pseudonymize_ids(ids, keyset, agency="fps", id_type="student")
    keyset.rotate(["pseudonym"])
    after = pseudonymize_ids(ids, keyset, agency="fps", id_type="student")
    xwalk = rekey_crosswalk(before["id_token"], keyset, from_version=1)
    assert len(xwalk) == 2  # distinct non-null tokens
    mapping = dict(zip(xwalk["old_source_key"], xwalk["new_source_key"], strict=True))
    for old, new in zip(before["source_key"].dropna(), after["source_key"].dropna(), strict=True):
        assert mapping[old] == new
        assert new == _stdlib_source_key(keyset, before.loc[before["source_key"] == old, "id_token"].iloc[0], 2)
    assert xwalk.attrs["from_key"].startswith("pseudonym/v1/") and xwalk.attrs["to_key"].startswith("pseudonym/v2/")


def test_pseudonymize_follows_the_contract(students: pd.DataFrame, contracts, keyset: KeySet) -> None:  # noqa: ANN001
    contract = contracts[("fps", "students")]
    result = pseudonymize(students, contract, keyset)
    frame = result.frame
    assert list(frame.columns) == [
        "source_key", "birth_date_year_month", "sex", "zip_zip3", "race_ethnicity", "english_learner",
        "disability", "econ_disadvantaged", "homeless", "school_id", "grade_level", "school_year", "enroll_date",
        "exit_date",
    ]  # fmt: skip  (input order, identifiers replaced in place)
    assert result.keyed == {"student_id": "source_key"}
    assert result.generalized == {"birth_date": "birth_date_year_month", "zip": "zip_zip3"}
    assert sorted(result.dropped) == ["first_name", "last_name", "middle_name", "street_address"]
    assert frame["birth_date_year_month"].tolist()[:2] == ["2015-03", "2014-11"]
    assert frame["zip_zip3"].tolist()[:2] == ["021", "021"]
    want = pseudonymize_ids(students["student_id"], keyset, agency="fps", id_type="student")["source_key"]
    assert frame["source_key"].tolist() == want.tolist()
    assert frame.index.equals(students.index)
    assert result.metadata()["keys"]["pseudonym"] == keyset.purpose_key("pseudonym").label


def test_pseudonymous_frame_never_holds_a_raw_identifier(students: pd.DataFrame, contracts, keyset: KeySet) -> None:  # noqa: ANN001
    frame = pseudonymize(students, contracts[("fps", "students")], keyset).frame
    raw = raw_identifier_strings(students)
    # also the normalised forms of the ids
    raw |= {v.replace(" ", "").upper() for v in students["student_id"]}
    for cell in all_cells_text(frame):
        for value in raw:
            assert value not in cell


def test_id_tokens_are_not_in_the_pseudonymous_frame(students: pd.DataFrame, contracts, keyset: KeySet) -> None:  # noqa: ANN001
    frame = pseudonymize(students, contracts[("fps", "students")], keyset).frame
    tokens = set(tokenize_ids(students["student_id"], keyset, agency="fps", id_type="student").dropna())
    assert tokens.isdisjoint(set(all_cells_text(frame)))


def test_second_id_column_and_year_generalisation(contracts, keyset: KeySet) -> None:  # noqa: ANN001
    frame = pd.DataFrame(
        {"patient_id": ["P1", "P2"], "first_name": ["A", "B"], "last_name": ["C", "D"], "birth_date": ["2015-03-07", "2016-01-01"],
         "sex": ["F", "M"], "street_address": ["1 A St", "2 B St"], "zip": ["02134", "02135"], "medicaid_id": ["M9", None]}
    )  # fmt: skip
    result = pseudonymize(frame, contracts[("fhd", "patients")], keyset)
    assert result.keyed == {"patient_id": "source_key", "medicaid_id": "medicaid_source_key"}
    assert result.frame["medicaid_source_key"].isna().tolist() == [False, True]
    want = tokenize_ids(["M9"], keyset, agency="fhd", id_type="medicaid").to_pylist()[0]
    assert result.frame.loc[0, "medicaid_source_key"] == _stdlib_source_key(keyset, want)


def test_large_columns_use_helpers_and_give_the_same_answer(keyset: KeySet) -> None:
    """Above the parallel threshold the result is identical to the in-process computation."""
    n = _crypto.PARALLEL_MIN_VALUES + 1234
    ids = pa.array([f"S{i:07d}" if i % 97 else None for i in range(n)])
    parallel = pseudonymize_ids(ids, keyset, agency="fps", id_type="student")
    link, pseud = keyset.purpose_key("linkage").secret, keyset.purpose_key("pseudonym").secret
    present = [f"S{i:07d}".encode() for i in range(n) if i % 97]
    serial = _crypto.hmac_sha256_batch(link, present, prefix=b"fps|student|", chain_key=pseud, workers=0)
    tokens = parallel["id_token"].dropna().tolist()
    assert len(tokens) == len(present)
    assert "".join(tokens) == serial[: len(serial) // 2].hex()
    assert "".join(parallel["source_key"].dropna().tolist()) == serial[len(serial) // 2 :].hex()
    assert parallel["id_token"].isna().sum() == n - len(present)


def test_rekey_crosswalk_after_a_linkage_rotation(keyset: KeySet) -> None:
    """With the records re-tokenised under the new linkage key, the crosswalk still maps old to new."""
    ids = pd.Series(["S1", "S2", None])
    before = pseudonymize_ids(ids, keyset, agency="fps", id_type="student")
    keyset.rotate()  # every purpose, linkage included
    after = pseudonymize_ids(ids, keyset, agency="fps", id_type="student")
    assert set(after["id_token"].dropna()).isdisjoint(before["id_token"].dropna())
    xwalk = rekey_crosswalk(before["id_token"], keyset, from_version=1, new_id_tokens=after["id_token"])
    mapping = dict(zip(xwalk["old_source_key"], xwalk["new_source_key"], strict=True))
    assert mapping == dict(zip(before["source_key"].dropna(), after["source_key"].dropna(), strict=True))
    with pytest.raises(IdentifierDataError):
        rekey_crosswalk(before["id_token"], keyset, from_version=1, new_id_tokens=after["id_token"][:1])
