"""Normalisation tables: one function family, vectorised, used by every token and encoding."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from data_sharing import normalize as N

NAME_TABLE = [
    # (raw, normalize_name, compact_name)
    ("García-López", "GARCIA LOPEZ", "GARCIALOPEZ"),
    ("garcia lopez", "GARCIA LOPEZ", "GARCIALOPEZ"),
    ("GARCIA  LOPEZ", "GARCIA LOPEZ", "GARCIALOPEZ"),
    ("  García–López  ", "GARCIA LOPEZ", "GARCIALOPEZ"),  # en dash
    ("O'Brien", "OBRIEN", "OBRIEN"),
    ("O’Brien", "OBRIEN", "OBRIEN"),  # typographic apostrophe
    ("o´brien", "OBRIEN", "OBRIEN"),  # acute accent used as apostrophe
    ("de la Cruz", "DE LA CRUZ", "DELACRUZ"),
    ("DeLaCruz", "DELACRUZ", "DELACRUZ"),
    ("Dela Cruz", "DELA CRUZ", "DELACRUZ"),
    ("St. John", "ST JOHN", "STJOHN"),
    ("Jean-Luc", "JEAN LUC", "JEANLUC"),
    ("Zoë", "ZOE", "ZOE"),
    ("Nguyễn", "NGUYEN", "NGUYEN"),
    ("Đặng", "DANG", "DANG"),
    ("Straße", "STRASSE", "STRASSE"),
    ("Øyvind", "OYVIND", "OYVIND"),
    ("Łukasz", "LUKASZ", "LUKASZ"),
    ("Ærøskøbing", "AEROSKOBING", "AEROSKOBING"),
    ("Þór", "THOR", "THOR"),
    ("İlker", "ILKER", "ILKER"),
    ("ﬁona", "FIONA", "FIONA"),  # ligature (NFKD)
    ("Ｍａｒｉａ", "MARIA", "MARIA"),  # full-width letters (NFKD)
    ("Mary\tAnn\n", "MARY ANN", "MARYANN"),
    ("Anne\u00a0Marie", "ANNE MARIE", "ANNEMARIE"),  # no-break space
    ("J.", "J", "J"),
    ("R2-D2", "R D", "RD"),  # digits are not name letters
    ("", None, None),
    ("   ", None, None),
    ("-'.", None, None),
    (None, None, None),
    ("Иван", None, None),  # other scripts: dropped (known gap), never wrong
]


@pytest.mark.parametrize(("raw", "name", "compact"), NAME_TABLE, ids=[repr(r[0]) for r in NAME_TABLE])
def test_name_table(raw: str | None, name: str | None, compact: str | None) -> None:
    assert N.normalize_name([raw]).to_pylist() == [name]
    assert N.compact_name([raw]).to_pylist() == [compact]


SURNAME_TABLE = [
    # raw, full, compact, first_part, last_part
    ("García-López", "GARCIA LOPEZ", "GARCIALOPEZ", "GARCIA", "LOPEZ"),
    ("garcia lopez", "GARCIA LOPEZ", "GARCIALOPEZ", "GARCIA", "LOPEZ"),
    ("GARCIA  LOPEZ", "GARCIA LOPEZ", "GARCIALOPEZ", "GARCIA", "LOPEZ"),
    ("López", "LOPEZ", "LOPEZ", "LOPEZ", "LOPEZ"),
    ("García López y Pérez", "GARCIA LOPEZ Y PEREZ", "GARCIALOPEZYPEREZ", "GARCIA", "PEREZ"),
    ("de la Cruz", "DE LA CRUZ", "DELACRUZ", "CRUZ", "CRUZ"),
    ("van der Berg", "VAN DER BERG", "VANDERBERG", "BERG", "BERG"),
    ("Da Silva e Souza", "DA SILVA E SOUZA", "DASILVAESOUZA", "SILVA", "SOUZA"),
    ("O'Brien", "OBRIEN", "OBRIEN", "OBRIEN", "OBRIEN"),
    ("Smith Jr.", "SMITH", "SMITH", "SMITH", "SMITH"),
    ("King III", "KING", "KING", "KING", "KING"),
    ("Le", "LE", "LE", "LE", "LE"),  # a particle alone is the surname
    ("Du Pont", "DU PONT", "DUPONT", "PONT", "PONT"),
    ("Jr", "JR", "JR", "JR", "JR"),
    (None, None, None, None, None),
    ("  ", None, None, None, None),
]


@pytest.mark.parametrize(("raw", "full", "compact", "first", "last"), SURNAME_TABLE, ids=[repr(r[0]) for r in SURNAME_TABLE])
def test_surname_table(raw: str | None, full: str | None, compact: str | None, first: str | None, last: str | None) -> None:
    parts = N.surname_parts([raw])
    got = [None if pd.isna(v) else v for v in parts.iloc[0].tolist()]
    assert got == [full, compact, first, last]


def test_the_three_spellings_of_one_surname_agree() -> None:
    parts = N.surname_parts(pd.Series(["García-López", "garcia lopez", "GARCIA  LOPEZ"]))
    assert parts.nunique().tolist() == [1, 1, 1, 1]


AGENCY_ID_TABLE = [
    (" s 00123 ", "S00123"),
    ("S00123", "S00123"),
    ("s\t001\u00a023", "S00123"),
    ("ab-12", "AB-12"),  # punctuation is part of an id
    ("0042", "0042"),  # leading zeros kept
    ("straße-7", "STRASSE-7"),  # full Unicode upper-casing, as Python's str.upper()
    ("", None),
    ("   ", None),
    (None, None),
]


@pytest.mark.parametrize(("raw", "want"), AGENCY_ID_TABLE)
def test_agency_id_table(raw: str | None, want: str | None) -> None:
    assert N.normalize_agency_id([raw]).to_pylist() == [want]


def test_agency_ids_that_pandas_read_as_numbers() -> None:
    assert N.normalize_agency_id(pd.Series([123, 45])).tolist() == ["123", "45"]


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("12 N. Main Street", "12 N MAIN ST"),
        ("12 north main st", "12 N MAIN ST"),
        ("7 Elm Ave Apt #3", "7 ELM AVE APT 3"),
        ("7 elm avenue, apartment 3", "7 ELM AVE APT 3"),
        ("7 Elm Ave #3", "7 ELM AVE APT 3"),
        ("400 Harbor Rd.", "400 HARBOR RD"),
        ("1 Rue de l’Église", "1 RUE DE LEGLISE"),
        ("", None),
        (None, None),
    ],
)
def test_address_table(raw: str | None, want: str | None) -> None:
    assert N.normalize_address([raw]).to_pylist() == [want]


@pytest.mark.parametrize(
    ("raw", "want"),
    [("02134", "02134"), ("02134-4410", "02134"), (" 021344410 ", "02134"), ("2134", None), ("", None), (None, None)],
)
def test_zip_table(raw: str | None, want: str | None) -> None:
    assert N.normalize_zip([raw]).to_pylist() == [want]


@pytest.mark.parametrize(
    ("raw", "want"), [("F", "F"), (" m ", "M"), ("x", "X"), ("Female", "F"), ("MALE", "M"), ("U", None), ("", None), (None, None)]
)
def test_sex_table(raw: str | None, want: str | None) -> None:
    assert N.normalize_sex([raw]).to_pylist() == [want]


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("2015-03-07", dt.date(2015, 3, 7)),
        (" 2015-03-07 ", dt.date(2015, 3, 7)),
        ("2016-02-29", dt.date(2016, 2, 29)),
        ("2015-02-29", None),  # not a leap year: never rolled over to March 1
        ("2015-02-30", None),
        ("2015-13-01", None),
        ("07/03/2015", None),
        ("", None),
        (None, None),
    ],
)
def test_date_table(raw: str | None, want: dt.date | None) -> None:
    assert N.normalize_date([raw]).to_pylist() == [want]


def test_dates_from_date_and_timestamp_columns() -> None:
    assert N.normalize_date(pd.Series(pd.to_datetime(["2015-03-07", None]))).tolist()[0] == dt.date(2015, 3, 7)
    assert N.normalize_date(pa.array([dt.date(2015, 3, 7)])).to_pylist() == [dt.date(2015, 3, 7)]


def test_date_parts_and_the_swapped_date() -> None:
    parts = N.date_parts(pd.Series(["2015-03-07", "2015-03-17", None]))
    assert parts.iloc[0].tolist() == ["2015-03-07", "2015", "03", "07", "2015-07-03"]
    assert parts.loc[1, "swapped"] is pd.NA  # day 17 cannot be a month
    assert parts.iloc[2].isna().all()


def test_series_in_series_out_with_index_and_name() -> None:
    s = pd.Series(["García-López", None], index=[10, 20], name="last_name")
    out = N.normalize_name(s)
    assert isinstance(out, pd.Series) and out.index.tolist() == [10, 20] and out.name == "last_name"
    assert isinstance(out.dtype, pd.ArrowDtype)
    assert N.surname_parts(s).index.tolist() == [10, 20]


def test_vectorised_path_equals_the_small_path() -> None:
    """Above the distinct-value threshold the dictionary path must give the same answers."""
    raw = [r[0] for r in NAME_TABLE] * 400  # > 4096 values, few distinct
    big = N.normalize_name(raw).to_pylist()
    small = [N.normalize_name([r]).to_pylist()[0] for r in [r[0] for r in NAME_TABLE]]
    assert big == small * 400
    big_parts = N.surname_parts([r[0] for r in SURNAME_TABLE] * 300)
    assert len(big_parts) == len(SURNAME_TABLE) * 300
    assert big_parts.iloc[: len(SURNAME_TABLE)].equals(N.surname_parts([r[0] for r in SURNAME_TABLE]))
    big_ids = N.normalize_agency_id([r[0] for r in AGENCY_ID_TABLE] * 600).to_pylist()
    assert big_ids == [r[1] for r in AGENCY_ID_TABLE] * 600


# Properties over arbitrary text (hypothesis): idempotent, ASCII upper-case words, never empty.
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TEXT = st.lists(st.one_of(st.none(), st.text(max_size=30)), min_size=1, max_size=20)


@settings(max_examples=150, deadline=None)
@given(TEXT)
def test_name_normalisation_properties(values: list[str | None]) -> None:
    once = N.normalize_name(values).to_pylist()
    assert N.normalize_name(once).to_pylist() == once
    for v in once:
        assert v is None or (v and all(c == " " or "A" <= c <= "Z" for c in v) and "  " not in v and v == v.strip())
    parts = N.surname_parts(values)
    for full, compact in zip(parts["full"], parts["compact"], strict=True):
        assert (full is pd.NA) == (compact is pd.NA)


@settings(max_examples=150, deadline=None)
@given(TEXT)
def test_agency_id_normalisation_properties(values: list[str | None]) -> None:
    once = N.normalize_agency_id(values).to_pylist()
    assert N.normalize_agency_id(once).to_pylist() == once
    # The reference definition, whatever the characters.
    assert once == [None if v is None else ("".join(v.split()).upper() or None) for v in values]
