"""Linkage encodings: keyed per-field hashes, composites, Bloom filters; Dice in DuckDB."""

from __future__ import annotations

import hashlib
import hmac

import duckdb
import pandas as pd
import pytest

from data_sharing.encodings import DEFAULT_BLOOMS, BloomSpec, dice, dice_sql, encode_for_linkage
from data_sharing.keys import KeySet, export_linkage_key, load_linkage_key
from data_sharing.pseudonyms import pseudonymize_ids
from privacy_support import all_cells_text, raw_identifier_strings

TOKEN_COLUMNS = [
    "first_name_hash", "first_name_prefix3_hash", "first_name_nysiis_hash", "first_initial_hash",
    "first_name_canonical_hash", "middle_name_hash", "middle_initial_hash", "middle_name_as_first_hash", "last_name_hash",
    "last_name_part1_hash", "last_name_part2_hash", "last_name_prefix3_hash", "last_name_nysiis_hash",
    "last_name_soundex_hash", "last_name_as_first_hash", "birth_date_hash",
    "birth_date_swapped_hash", "birth_year_hash", "birth_month_hash", "birth_day_hash", "sex_hash", "zip_hash",
    "street_address_hash", "last_name_birth_date_hash", "first_name_birth_date_hash",
    "first_initial_last_name_birth_year_hash",
]  # fmt: skip


def _people(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["student_id", "first_name", "middle_name", "last_name", "birth_date", "sex", "street_address", "zip"]
    )


def _stdlib_token(keyset: KeySet, domain: str, value: str) -> str:
    key = keyset.purpose_key("linkage").secret
    return hmac.new(key, f"c2c/enc/v1/{domain}\x1f{value}".encode(), hashlib.sha256).hexdigest()[:32]


@pytest.fixture
def encoded(students: pd.DataFrame, contracts, keyset: KeySet) -> pd.DataFrame:  # noqa: ANN001
    return encode_for_linkage(students, contracts[("fps", "students")], keyset)


def test_columns_formats_and_index(encoded: pd.DataFrame, students: pd.DataFrame, keyset: KeySet) -> None:
    assert list(encoded.columns) == [
        "id_token", "source_key", "linkage_key_id", *TOKEN_COLUMNS,
        "name_bloom", "name_bloom_bits", "address_bloom", "address_bloom_bits",
    ]  # fmt: skip
    assert encoded.index.equals(students.index)
    for col in TOKEN_COLUMNS:
        assert encoded[col].dropna().str.fullmatch("[0-9a-f]{32}").all(), col
    assert encoded["id_token"].str.fullmatch("[0-9a-f]{64}").all()
    assert (encoded["linkage_key_id"] == keyset.purpose_key("linkage").key_id).all()
    assert all(len(b) == 128 for b in encoded["name_bloom"])
    assert encoded.attrs["keys"] == {"linkage": keyset.purpose_key("linkage").label, "pseudonym": keyset.purpose_key("pseudonym").label}


def test_tokens_match_an_independent_stdlib_computation(encoded: pd.DataFrame, keyset: KeySet) -> None:
    row = encoded.iloc[0]  # José María García-López, 2015-03-07, M, 12 N. Main Street, 02134
    assert row["first_name_hash"] == _stdlib_token(keyset, "first_name", "JOSE")
    assert row["last_name_hash"] == _stdlib_token(keyset, "last_name", "GARCIALOPEZ")
    # issue 14: the middle name and the surname also keyed as first names (a middle name used as the first,
    # first name and surname swapped)
    assert row["middle_name_as_first_hash"] == _stdlib_token(keyset, "first_name", "MARIA")
    assert row["last_name_as_first_hash"] == _stdlib_token(keyset, "first_name", "GARCIALOPEZ")
    assert row["last_name_part1_hash"] == _stdlib_token(keyset, "last_name", "GARCIA")
    assert row["last_name_part2_hash"] == _stdlib_token(keyset, "last_name", "LOPEZ")
    assert row["birth_date_hash"] == _stdlib_token(keyset, "birth_date", "2015-03-07")
    assert row["birth_date_swapped_hash"] == _stdlib_token(keyset, "birth_date", "2015-07-03")
    assert row["birth_year_hash"] == _stdlib_token(keyset, "birth_year", "2015")
    assert row["sex_hash"] == _stdlib_token(keyset, "sex", "M")
    assert row["zip_hash"] == _stdlib_token(keyset, "zip", "02134")
    assert row["street_address_hash"] == _stdlib_token(keyset, "street_address", "12 N MAIN ST")
    assert row["last_name_birth_date_hash"] == _stdlib_token(keyset, "last_name_birth_date", "GARCIALOPEZ\x1f2015-03-07")
    assert row["first_initial_last_name_birth_year_hash"] == _stdlib_token(
        keyset, "first_initial_last_name_birth_year", "J\x1fGARCIALOPEZ\x1f2015"
    )
    assert row["first_name_nysiis_hash"] == _stdlib_token(keyset, "first_name_nysiis", "JAS")
    # no short form: the canonical first name is the first name itself, in the same domain
    assert row["first_name_canonical_hash"] == row["first_name_hash"] == _stdlib_token(keyset, "first_name", "JOSE")
    ids = pseudonymize_ids(pd.Series(["S00001"]), keyset, agency="fps", id_type="student")
    assert row["id_token"] == ids.loc[0, "id_token"] and row["source_key"] == ids.loc[0, "source_key"]


def test_nothing_raw_in_the_encodings(encoded: pd.DataFrame, students: pd.DataFrame) -> None:
    raw = raw_identifier_strings(students)
    cells = all_cells_text(encoded)
    for value in raw:
        assert not any(value in cell for cell in cells), "a raw identifier leaked into the encodings"


def test_spelling_variants_meet(contracts, keyset: KeySet) -> None:  # noqa: ANN001
    frame = _people(
        [
            ("S1", "José", None, "García-López", "2015-03-07", "M", "12 N. Main Street", "02134"),
            ("S2", "JOSE", None, "garcia  lopez", "2015-07-03", "m", "12 north main st", "02134-0001"),  # day/month swapped
            ("S3", "Jose", None, "López", "2015-03-07", "M", "12 Main St", "02134"),
        ]
    )
    e = encode_for_linkage(frame, contracts[("fps", "students")], keyset)
    assert e.loc[0, "first_name_hash"] == e.loc[1, "first_name_hash"] == e.loc[2, "first_name_hash"]
    assert e.loc[0, "last_name_hash"] == e.loc[1, "last_name_hash"]
    assert e.loc[0, "street_address_hash"] == e.loc[1, "street_address_hash"]
    assert e.loc[0, "zip_hash"] == e.loc[1, "zip_hash"]
    # The swap is caught: one's swapped date is the other's date.
    assert e.loc[0, "birth_date_hash"] != e.loc[1, "birth_date_hash"]
    assert e.loc[0, "birth_date_swapped_hash"] == e.loc[1, "birth_date_hash"]
    # "López" meets the second part of "García-López".
    assert e.loc[2, "last_name_hash"] == e.loc[0, "last_name_part2_hash"]
    assert e.loc[2, "last_name_hash"] != e.loc[0, "last_name_hash"]
    assert dice(e.loc[0, "name_bloom"], e.loc[1, "name_bloom"]) == 1.0
    assert 0.6 < dice(e.loc[0, "name_bloom"], e.loc[2, "name_bloom"]) < 1.0


def test_short_forms_meet_their_formal_name_and_nothing_else(contracts, keyset: KeySet) -> None:  # noqa: ANN001
    frame = _people(
        [
            ("S1", "Robert", None, "Smith", "2015-03-07", "M", "12 Main St", "02134"),
            ("S2", "bob", None, "Smith", "2015-03-07", "M", "12 Main St", "02134"),
            ("S3", "Bobby", None, "Smith", "2015-03-07", "M", "12 Main St", "02134"),
            ("S4", "Roberta", None, "Smith", "2015-03-07", "F", "12 Main St", "02134"),
            ("S5", "Alex", None, "Smith", "2015-03-07", "M", "12 Main St", "02134"),  # three formal names: none
            ("S6", "Alexander", None, "Smith", "2015-03-07", "M", "12 Main St", "02134"),
            ("S7", "Liam", None, "Smith", "2015-03-07", "M", "12 Main St", "02134"),  # a given name of its own
            ("S8", "William", None, "Smith", "2015-03-07", "M", "12 Main St", "02134"),
        ]
    )
    e = encode_for_linkage(frame, contracts[("fps", "students")], keyset)
    canon, first = e["first_name_canonical_hash"], e["first_name_hash"]
    robert = _stdlib_token(keyset, "first_name", "ROBERT")
    assert canon[0] == canon[1] == canon[2] == first[0] == robert
    assert first[1] != first[0] and first[2] != first[0]
    assert canon[3] == first[3] != robert
    assert canon[4] == first[4] != canon[5] and canon[5] == first[5]
    assert canon[6] == first[6] != canon[7] and canon[7] == first[7]


def test_same_key_same_encodings_other_key_other_encodings(students, contracts, keyset, other_keyset) -> None:  # noqa: ANN001
    contract = contracts[("fps", "students")]
    a = encode_for_linkage(students, contract, keyset)
    b = encode_for_linkage(students, contract, keyset)
    c = encode_for_linkage(students, contract, other_keyset)
    pd.testing.assert_frame_equal(a, b)
    for col in ["id_token", "first_name_hash", "birth_date_hash", "sex_hash"]:
        assert set(a[col].dropna()).isdisjoint(c[col].dropna()), col
    assert all(x != y for x, y in zip(a["name_bloom"], c["name_bloom"], strict=True))


def test_agency_tokenizing_at_source_gets_identical_encodings(students, contracts, keyset, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "linkage.key"
    export_linkage_key(keyset, path)
    at_agency = encode_for_linkage(students, contracts[("fps", "students")], load_linkage_key(path))
    at_hub = encode_for_linkage(students, contracts[("fps", "students")], keyset)
    assert "source_key" not in at_agency.columns  # the agency cannot compute it
    pd.testing.assert_frame_equal(at_agency, at_hub.drop(columns=["source_key"]), check_like=False)


def test_extracts_without_a_field_have_null_columns(contracts, keyset: KeySet) -> None:  # noqa: ANN001
    frame = pd.DataFrame(
        {"patient_id": ["P1"], "first_name": ["Ana"], "last_name": ["Ruiz"], "birth_date": ["2015-03-07"], "sex": ["F"],
         "street_address": ["1 A St"], "zip": ["02134"], "medicaid_id": ["M1"]}
    )  # fmt: skip
    e = encode_for_linkage(frame, contracts[("fhd", "patients")], keyset)
    assert pd.isna(e.loc[0, "middle_name_hash"])
    assert "medicaid_id_token" in e.columns and "medicaid_source_key" in e.columns
    assert e.loc[0, "first_name_hash"] == _stdlib_token(keyset, "first_name", "ANA")


def test_bloom_filters_are_filled_sensibly(encoded: pd.DataFrame) -> None:
    bits = encoded["name_bloom_bits"].astype(int)
    assert ((bits > 100) & (bits < 600)).all()
    for blob, count in zip(encoded["name_bloom"], bits, strict=True):
        assert int.from_bytes(blob, "big").bit_count() == count


def test_missing_fields_give_null_filters(contracts, keyset: KeySet) -> None:  # noqa: ANN001
    frame = _people([("S1", None, None, None, "2015-03-07", "F", None, "02134"), ("S2", "Ana", None, None, None, None, None, None)])
    e = encode_for_linkage(frame, contracts[("fps", "students")], keyset)
    assert pd.isna(e.loc[0, "name_bloom"]) and pd.isna(e.loc[0, "address_bloom"])
    assert not pd.isna(e.loc[1, "name_bloom"])  # one field is enough
    assert pd.isna(e.loc[1, "first_name_birth_date_hash"])  # composites need every part


def test_bloom_bit_positions_follow_the_documented_construction(contracts, keyset: KeySet) -> None:  # noqa: ANN001
    """Independent rebuild of one filter with stdlib hmac: random hashing, 32-bit slices mod length, MSB-first bits."""
    spec = BloomSpec("name_bloom", ("first_name", "last_name"), bits=1024, hashes=20)
    frame = _people([("S1", "Ana", None, "Ruiz", "2015-03-07", "F", "1 A St", "02134")])
    e = encode_for_linkage(frame, contracts[("fps", "students")], keyset, blooms=[spec])
    key = keyset.purpose_key("linkage").secret
    want = 0
    for text in ("_ANA_", "_RUIZ_"):
        for a, b in zip(text, text[1:], strict=False):
            msg = b"c2c/bloom/v1/name_bloom\x1f" + (a + b).encode()
            words = []
            for r in range(3):
                d = hmac.new(key, msg + bytes([r]), hashlib.sha256).digest()
                words += [int.from_bytes(d[i : i + 4], "big") for i in range(0, 32, 4)]
            for w in words[:20]:
                want |= 1 << (1023 - (w % 1024))
    assert int.from_bytes(e.loc[0, "name_bloom"], "big") == want


def test_dice_in_duckdb_equals_python(contracts, keyset: KeySet) -> None:  # noqa: ANN001
    frame = _people(
        [
            ("S1", "Katherine", None, "Johnson", "2015-03-07", "F", "12 Main St", "02134"),
            ("S2", "Catherine", None, "Johnson", "2015-03-07", "F", "12 Main Street", "02134"),
            ("S3", "Kathryn", None, "Jonson", "2015-03-07", "F", "14 Main St", "02134"),
            ("S4", "Miguel", None, "Alvarez", "2011-10-10", "M", "3 Oak Rd", "02139"),
            ("S5", None, None, None, "2011-10-10", "M", None, "02139"),
        ]
    )
    enc = encode_for_linkage(frame, contracts[("fps", "students")], keyset).reset_index(names="rec")
    con = duckdb.connect()
    con.register("enc", enc)
    sql = f"""
        SELECT l.rec AS a, r.rec AS b,
               2.0 * bit_count(l.name_bloom::BIT & r.name_bloom::BIT)
                   / (bit_count(l.name_bloom::BIT) + bit_count(r.name_bloom::BIT)) AS name_dice,
               {dice_sql("l.address_bloom", "r.address_bloom")} AS address_dice
        FROM enc l JOIN enc r ON l.rec < r.rec
        ORDER BY a, b
    """
    rows = con.execute(sql).fetchall()
    assert len(rows) == 10
    for a, b, name_dice, address_dice in rows:
        want_name = dice(enc.loc[a, "name_bloom"], enc.loc[b, "name_bloom"])
        want_addr = dice(enc.loc[a, "address_bloom"], enc.loc[b, "address_bloom"])
        assert name_dice == pytest.approx(want_name) if want_name is not None else name_dice is None
        assert address_dice == pytest.approx(want_addr) if want_addr is not None else address_dice is None
    by_pair = {(a, b): d for a, b, d, _ in rows}
    assert by_pair[(0, 1)] > 0.8 and by_pair[(0, 2)] > 0.6  # near-spellings are similar
    assert by_pair[(0, 3)] < 0.4  # a different child is not
    assert by_pair[(3, 4)] is None  # nothing to compare
    # the stored bit count is what DuckDB counts
    counts = con.execute("SELECT rec, bit_count(name_bloom::BIT), name_bloom_bits FROM enc WHERE name_bloom IS NOT NULL").fetchall()
    assert all(c == s for _, c, s in counts)


def test_default_blooms_are_the_documented_ones() -> None:
    assert [(b.name, b.fields, b.bits, b.hashes) for b in DEFAULT_BLOOMS] == [
        ("name_bloom", ("first_name", "last_name"), 1024, 20),
        ("address_bloom", ("street_address",), 1024, 20),
    ]
