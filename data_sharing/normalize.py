"""Normalisation of identifiers: the one function family every token, encoding and comparison uses.

Everything is vectorised with ``pyarrow.compute`` (no per-row Python). Text functions work on the
*distinct* values of a column (dictionary-encoded) and take the result back to the rows, so a column
of a million names costs what its few thousand distinct names cost. Each public function accepts a
``pandas.Series`` (any string-like dtype), a ``pyarrow`` array/chunked array or a list, and returns the
same kind: a Series (Arrow-backed dtype, same index and name) for a Series, else a ``pyarrow.Array``.
Missing, blank and punctuation-only values become null (never an empty string, so nothing is ever
hashed from "nothing").

========================  ==============================  ==========================================
function                  example in                      out
========================  ==============================  ==========================================
:func:`normalize_name`    ``"García-López"``               ``"GARCIA LOPEZ"``
                          ``"  garcia   lopez "``          ``"GARCIA LOPEZ"``
                          ``"O'Brien"``                    ``"OBRIEN"``
:func:`compact_name`      ``"de la Cruz"``                 ``"DELACRUZ"`` (== ``"DeLaCruz"``)
:func:`surname_parts`     ``"García-López Jr."``           full ``GARCIA LOPEZ``, compact
                                                           ``GARCIALOPEZ``, first_part ``GARCIA``,
                                                           last_part ``LOPEZ``
                          ``"van der Berg"``               parts ``BERG`` / ``BERG``
:func:`normalize_agency_id` ``" s 00123 "``                ``"S00123"`` (= ``"".join(v.split()).upper()``)
:func:`normalize_date`    ``"2015-03-07"``, dates          ``date32`` (impossible dates: null)
:func:`normalize_sex`     ``" f "``, ``"Female"``          ``"F"`` (F, M, X; anything else null)
:func:`normalize_zip`     ``"02134-1234"``                 ``"02134"`` (fewer than 5 digits: null)
:func:`normalize_address` ``"12 N. Main Street, Apt #4"``  ``"12 N MAIN ST APT 4"``
========================  ==============================  ==========================================

Names: apostrophes are removed (O'Brien -> OBRIEN), accents folded to ASCII through NFKD plus a
small table for letters NFKD keeps (ß, Ø, Ł, Æ, Œ, Þ, Đ...), upper-cased; every other character
(hyphen, dot, comma, digit...) separates words; runs of separators collapse to one space. Letters of
other scripts (Cyrillic, Greek, CJK...) are dropped, which makes such a name null rather than wrong:
transliteration is a known gap. Surnames additionally lose generational suffixes (JR, SR, II, III, IV)
and expose their first and last significant parts, ignoring particles (DE, LA, DEL, VAN, VON, DER,
Y...), so linkage can match "García López" with "López" either way round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_sharing.errors import IdentifierDataError

ArrayLike: TypeAlias = pd.Series | pa.Array | pa.ChunkedArray | Sequence[Any]

_APOSTROPHES = r"['\x{2018}\x{2019}\x{02BC}\x{02BB}\x{0060}\x{00B4}]"
# Letters that NFKD does not decompose, after upper-casing.
_TRANSLIT: tuple[tuple[str, str], ...] = (
    ("\u1e9e", "SS"),  # ẞ (upper-cased ß)
    ("ß", "SS"),
    ("Æ", "AE"),
    ("Œ", "OE"),
    ("Ø", "O"),
    ("Ł", "L"),
    ("Đ", "D"),
    ("Ð", "D"),
    ("Þ", "TH"),
    ("Ħ", "H"),
    ("Ŧ", "T"),
    ("Ŋ", "NG"),
    ("I\u0307", "I"),
    ("ı", "I"),
)
SURNAME_PARTICLES: tuple[str, ...] = (
    "AL", "DA", "DAL", "DAS", "DE", "DEL", "DELA", "DELLA", "DELLE", "DEN", "DER", "DES", "DI", "DO",
    "DOS", "DU", "E", "EL", "LA", "LAS", "LE", "LO", "LOS", "TEN", "TER", "VAN", "VD", "VON", "Y",
)  # fmt: skip
GENERATIONAL_SUFFIXES: tuple[str, ...] = ("JR", "SR", "II", "III", "IV")
ADDRESS_ABBREVIATIONS: dict[str, str] = {
    "STREET": "ST", "STR": "ST", "AVENUE": "AVE", "AV": "AVE", "ROAD": "RD", "DRIVE": "DR",
    "BOULEVARD": "BLVD", "LANE": "LN", "COURT": "CT", "PLACE": "PL", "TERRACE": "TER",
    "CIRCLE": "CIR", "PARKWAY": "PKWY", "HIGHWAY": "HWY", "SQUARE": "SQ", "TRAIL": "TRL",
    "NORTH": "N", "SOUTH": "S", "EAST": "E", "WEST": "W", "NORTHEAST": "NE", "NORTHWEST": "NW",
    "SOUTHEAST": "SE", "SOUTHWEST": "SW", "APARTMENT": "APT", "UNIT": "APT", "SUITE": "STE",
    "FLOOR": "FL", "MOUNT": "MT", "SAINT": "ST",
}  # fmt: skip
_SEX_WORDS = {"F": "F", "FEMALE": "F", "M": "M", "MALE": "M", "X": "X"}
_UNIQUE_MIN = 4096  # below this, dictionary-encoding costs more than it saves
_NULL_STR = pa.scalar(None, pa.string())


# ----------------------------------------------------------------------------------------------
# Input / output plumbing
# ----------------------------------------------------------------------------------------------


def to_arrow(values: ArrayLike, *, what: str = "values") -> pa.Array:
    """A contiguous Arrow array from a Series / Arrow array / list (no copy for Arrow-backed input)."""
    try:
        if isinstance(values, pa.ChunkedArray):
            arr = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
        elif isinstance(values, pa.Array):
            arr = values
        elif isinstance(values, pd.Series):
            if isinstance(values.dtype, pd.ArrowDtype):
                arr = pa.array(values)
            else:
                arr = pa.Array.from_pandas(values)
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
        else:
            arr = pa.array(list(values), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        raise IdentifierDataError("bad_type", f"{what} mix types that cannot be read as one column") from None
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def to_arrow_strings(values: ArrayLike, *, what: str = "values") -> pa.Array:
    """:func:`to_arrow`, cast to ``string`` (numbers become their decimal text)."""
    arr = to_arrow(values, what=what)
    if pa.types.is_string(arr.type):
        return arr
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_large_string(arr.type) or pa.types.is_integer(arr.type):
        return arr.cast(pa.string())
    raise IdentifierDataError("bad_type", f"{what} are {arr.type}, not text")


def _like(result: pa.Array, like: ArrayLike) -> Any:
    if isinstance(like, pd.Series):
        return pd.Series(result, index=like.index, name=like.name, dtype=pd.ArrowDtype(result.type))
    return result


def _on_unique(arr: pa.Array, fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """Apply a vectorised ``fn`` to the distinct values only and take the results back to the rows."""
    if len(arr) < _UNIQUE_MIN:
        return fn(arr)
    enc = pc.dictionary_encode(arr)
    return fn(enc.dictionary).take(enc.indices)


def _null_if_empty(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.greater(pc.utf8_length(arr), 0), arr, _NULL_STR)


# ----------------------------------------------------------------------------------------------
# Arrow-level cores (used by pseudonyms and encodings; all take and return pa.Array of strings)
# ----------------------------------------------------------------------------------------------


def _fold_to_ascii_upper(arr: pa.Array, keep: str) -> pa.Array:
    """Apostrophes out, NFKD + marks out, upper, transliterate, others -> single space, trimmed."""
    arr = pc.replace_substring_regex(arr, _APOSTROPHES, "")
    arr = pc.utf8_normalize(arr, "NFKD")
    arr = pc.replace_substring_regex(arr, r"\p{M}+", "")
    arr = pc.utf8_upper(arr)
    if not pc.all(pc.string_is_ascii(arr)).as_py():
        for src, dst in _TRANSLIT:
            arr = pc.replace_substring(arr, src, dst)
        arr = pc.replace_substring_regex(arr, r"\p{M}+", "")
    arr = pc.replace_substring_regex(arr, f"[^{keep}]+", " ")
    return _null_if_empty(pc.utf8_trim(arr, " "))


def name_core(arr: pa.Array) -> pa.Array:
    return _on_unique(arr, lambda a: _fold_to_ascii_upper(a, "A-Z"))


def compact_core(normalized: pa.Array) -> pa.Array:
    return pc.replace_substring(normalized, " ", "")


def _surname_table(arr: pa.Array) -> pa.Table:
    full = _fold_to_ascii_upper(arr, "A-Z")
    suffixes = "|".join(GENERATIONAL_SUFFIXES)
    full = pc.replace_substring_regex(full, rf"(?: (?:{suffixes}))+$", "")
    particles = "|".join(SURNAME_PARTICLES)
    core = pc.replace_substring_regex(full, rf"\b(?:{particles})\b", "")
    core = _null_if_empty(pc.utf8_trim(pc.replace_substring_regex(core, " +", " "), " "))
    core = pc.coalesce(core, full)
    parts = pc.extract_regex(core, r"^(?P<first>[A-Z]+)(?:.* (?P<last>[A-Z]+))?$")
    first = pc.struct_field(parts, "first")
    last = pc.struct_field(parts, "last")
    last = pc.if_else(pc.greater(pc.utf8_length(last), 0), last, first)
    return pa.table({"full": full, "compact": compact_core(full), "first_part": first, "last_part": last})


def surname_core(arr: pa.Array) -> pa.Table:
    if len(arr) < _UNIQUE_MIN:
        return _surname_table(arr)
    enc = pc.dictionary_encode(arr)
    return _surname_table(enc.dictionary).take(enc.indices)


# Whitespace as Python's str.isspace() sees it: ASCII \s, \v, the separators U+001C-U+001F, NEL, Unicode Z*.
_WS = r"[\s\p{Z}\x{0b}\x{1c}-\x{1f}\x{85}]"


def agency_id_core(arr: pa.Array) -> pa.Array:
    """Trim, remove internal whitespace, upper-case; empty -> null.

    The reference definition is Python's ``"".join(value.split()).upper()`` (full Unicode case
    mapping, so ``ß`` -> ``SS``): ASCII values take a vectorised path, the rare non-ASCII ones are
    mapped through exactly that expression, once per distinct value.
    """
    ascii_mask = pc.fill_null(pc.string_is_ascii(arr), True)
    all_ascii = pc.all(ascii_mask).as_py() in (True, None)
    out = pc.utf8_trim_whitespace(arr)
    has_ws = pc.fill_null(pc.match_substring_regex(out, _WS), False)
    if pc.any(has_ws).as_py():
        out = pc.if_else(has_ws, pc.replace_substring_regex(out, _WS + "+", ""), out)
    out = pc.ascii_upper(out)
    if not all_ascii:
        others = pc.invert(ascii_mask)
        enc = pc.dictionary_encode(arr.filter(others))
        mapped = pa.array(["".join(v.split()).upper() for v in enc.dictionary.to_pylist()], type=pa.string())
        out = pc.replace_with_mask(out, others, mapped.take(enc.indices))
    return _null_if_empty(out)


def _address_fn(arr: pa.Array) -> pa.Array:
    arr = pc.replace_substring(arr, "#", " APT ")
    arr = _fold_to_ascii_upper(arr, "A-Z0-9")
    valid = pc.is_valid(arr)
    filled = pc.fill_null(arr, "")
    tokens = pc.split_pattern(filled, " ")
    flat = tokens.flatten()
    keys = pa.array(list(ADDRESS_ABBREVIATIONS))
    vals = pa.array(list(ADDRESS_ABBREVIATIONS.values()))
    idx = pc.index_in(flat, value_set=keys)
    mapped = pc.coalesce(vals.take(idx), flat)
    rebuilt = pa.ListArray.from_arrays(tokens.offsets, mapped)
    out = pc.binary_join(rebuilt, " ")
    out = pc.replace_substring_regex(out, r"\bAPT APT\b", "APT")
    return pc.if_else(valid, out, _NULL_STR)


def address_core(arr: pa.Array) -> pa.Array:
    return _on_unique(arr, _address_fn)


def zip_core(arr: pa.Array) -> pa.Array:
    digits = pc.replace_substring_regex(arr, r"[^0-9]+", "")
    five = pc.utf8_slice_codeunits(digits, 0, 5)
    return pc.if_else(pc.equal(pc.utf8_length(five), 5), five, _NULL_STR)


def sex_core(arr: pa.Array) -> pa.Array:
    up = pc.utf8_upper(pc.utf8_trim_whitespace(arr))
    keys = pa.array(list(_SEX_WORDS))
    return pa.array(list(_SEX_WORDS.values())).take(pc.index_in(up, value_set=keys))


def date_core(values: ArrayLike, *, what: str = "values") -> pa.Array:
    arr = to_arrow(values, what=what)
    t = arr.type
    if pa.types.is_date32(t):
        return arr
    if pa.types.is_date64(t) or pa.types.is_timestamp(t):
        return arr.cast(pa.date32())
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.date32())
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise IdentifierDataError("bad_type", f"{what} are {t}, not dates")

    def parse(a: pa.Array) -> pa.Array:
        a = pc.utf8_trim_whitespace(a.cast(pa.string()))
        parts = pc.extract_regex(a, r"^(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})$")
        parsed = pc.strptime(a, format="%Y-%m-%d", unit="s", error_is_null=True).cast(pa.date32())
        # Arrow rolls impossible dates over (2015-02-30 -> 2015-03-02): keep only exact round trips.
        same = pc.and_(
            pc.equal(pc.month(parsed), pc.struct_field(parts, "m").cast(pa.int64())),
            pc.equal(pc.day(parsed), pc.struct_field(parts, "d").cast(pa.int64())),
        )
        return pc.if_else(pc.fill_null(same, False), parsed, pa.scalar(None, pa.date32()))

    return _on_unique(arr, parse)


def _pad2(ints: pa.Array) -> pa.Array:
    return pc.utf8_lpad(ints.cast(pa.string()), 2, "0")


def date_parts_core(dates: pa.Array) -> pa.Table:
    """ISO text, year, month, day and the day/month-swapped ISO date (null when day > 12)."""
    year = pc.year(dates).cast(pa.string())
    month = _pad2(pc.month(dates))
    day = _pad2(pc.day(dates))
    iso = pc.binary_join_element_wise(year, month, day, "-")
    swappable = pc.less_equal(pc.day(dates), 12)
    swapped = pc.if_else(swappable, pc.binary_join_element_wise(year, day, month, "-"), _NULL_STR)
    return pa.table({"iso": iso, "year": year, "month": month, "day": day, "swapped": swapped})


# ----------------------------------------------------------------------------------------------
# First-name short forms (the encodings' first_name_canonical_hash)
# ----------------------------------------------------------------------------------------------

#: Formal first name -> short forms that stand for it (compact upper-case ASCII, as names normalise).
#: Only short forms of one formal name, and not common given names in their own right (the module doc of
#: :mod:`data_sharing.encodings`, where ``first_name_canonical_hash`` uses them).
_SHORT_FORMS = {
    "ROBERT": "BOB BOBBY ROB ROBBIE ROBBY", "WILLIAM": "WILL WILLIE WILLY BILL BILLY",
    "ELIZABETH": "LIZ LIZZY LIZZIE BETH BETSY BETTY LIBBY ELIZA", "KATHERINE": "KATE KATIE KATY KATHY",
    "CATHERINE": "CATHY", "MARGARET": "MAGGIE MEG PEGGY MADGE", "JAMES": "JIM JIMMY", "MICHAEL": "MIKE MIKEY MICKEY",
    "CHRISTOPHER": "TOPHER", "MATTHEW": "MATT MATTY", "NICHOLAS": "NICK NICKY", "ALEXANDER": "XANDER",
    "BENJAMIN": "BEN BENNY BENJI", "DANIEL": "DAN DANNY", "JOSEPH": "JOEY", "ANTHONY": "TONY",
    "THOMAS": "TOM TOMMY", "ANDREW": "ANDY", "JOSHUA": "JOSH", "ZACHARY": "ZACH ZACK ZAC", "JACOB": "JAKE",
    "ABIGAIL": "ABBY ABBIE", "OLIVIA": "LIV LIVVY", "VICTORIA": "TORI VICKY VICKI", "JENNIFER": "JEN JENN JENNY",
    "JESSICA": "JESS", "REBECCA": "BECKY BECCA", "GABRIEL": "GABE", "FRANCISCO": "PACO PANCHO",
    "GUADALUPE": "LUPE LUPITA", "JESUS": "CHUY CHUCHO", "IGNACIO": "NACHO", "ENRIQUE": "KIKE",
    "MANUEL": "MANNY MANOLO", "EDUARDO": "LALO", "THEODORE": "THEO", "CHARLES": "CHUCK", "CHARLOTTE": "LOTTIE",
    "RICHARD": "RICK RICKY RICHIE", "TIMOTHY": "TIM TIMMY", "KENNETH": "KEN KENNY", "PATRICIA": "PATTY TRISH TRICIA",
    "FERNANDO": "NANDO", "SANTIAGO": "SANTI", "SEBASTIAN": "SEBAS", "CHRISTINA": "TINA", "KIMBERLY": "KIM",
    "STEPHANIE": "STEPH", "EVELYN": "EVIE", "DONALD": "DON DONNY", "RONALD": "RON RONNIE", "SUSAN": "SUE SUSIE",
    "DEBORAH": "DEB DEBBIE", "BARBARA": "BARB", "DOROTHY": "DOT DOTTIE", "ALEJANDRO": "ALEJO",
    "JOSEPHINE": "JOSIE", "PENELOPE": "PENNY", "MATILDA": "TILLY", "GREGORY": "GREG", "JEFFREY": "JEFF",
    "DOUGLAS": "DOUG", "LAWRENCE": "LARRY", "FREDERICK": "FRED FREDDIE FREDDY", "BRADLEY": "BRAD",
    "NICOLE": "NIKKI", "ANGELA": "ANGIE", "CYNTHIA": "CINDY", "JACQUELINE": "JACKIE", "DOMINIC": "DOM",
    "ISABELLA": "IZZY", "SAMANTHA": "SAMMIE",
}  # fmt: skip
NICKNAMES: dict[str, str] = {short: formal for formal, forms in _SHORT_FORMS.items() for short in forms.split()}


def canonical_first_name(name: str) -> str:
    """The formal name a normalised short form stands for (``BOB`` -> ``ROBERT``), else ``name``."""
    return NICKNAMES.get(name, name)


# ----------------------------------------------------------------------------------------------
# Public functions
# ----------------------------------------------------------------------------------------------


def normalize_name(values: ArrayLike) -> Any:
    """Any name field: ASCII upper-case words separated by one space (``"GARCIA LOPEZ"``)."""
    return _like(name_core(to_arrow_strings(values)), values)


def compact_name(values: ArrayLike) -> Any:
    """:func:`normalize_name` without spaces (``"DE LA CRUZ"`` and ``"DeLaCruz"`` -> ``"DELACRUZ"``)."""
    return _like(compact_core(name_core(to_arrow_strings(values))), values)


def surname_parts(values: ArrayLike) -> pd.DataFrame:
    """Surname forms: ``full``, ``compact``, ``first_part`` and ``last_part`` (particles ignored).

    The index is the input Series' index (or a RangeIndex).
    """
    table = surname_core(to_arrow_strings(values))
    index = values.index if isinstance(values, pd.Series) else None
    return pd.DataFrame(
        {name: pd.Series(table[name].combine_chunks(), dtype=pd.ArrowDtype(pa.string()), index=index) for name in table.column_names}
    )


def normalize_agency_id(values: ArrayLike) -> Any:
    """Agency ids: trimmed, internal whitespace removed, upper-cased (``" s 00123 "`` -> ``"S00123"``)."""
    return _like(agency_id_core(to_arrow_strings(values)), values)


def normalize_address(values: ArrayLike) -> Any:
    """Street address: name-like folding keeping digits, common USPS words abbreviated."""
    return _like(address_core(to_arrow_strings(values)), values)


def normalize_zip(values: ArrayLike) -> Any:
    """First five digits of a ZIP or ZIP+4; fewer than five digits -> null."""
    return _like(zip_core(to_arrow_strings(values)), values)


def normalize_sex(values: ArrayLike) -> Any:
    """``F``, ``M`` or ``X`` (also from FEMALE / MALE, any case); anything else -> null."""
    return _like(sex_core(to_arrow_strings(values)), values)


def normalize_date(values: ArrayLike) -> Any:
    """Dates as ``date32`` from ``YYYY-MM-DD`` text, dates or timestamps; impossible dates -> null."""
    return _like(date_core(values), values)


def date_parts(values: ArrayLike) -> pd.DataFrame:
    """``iso``, ``year``, ``month``, ``day`` and ``swapped`` (day/month exchanged) as text."""
    table = date_parts_core(date_core(values))
    index = values.index if isinstance(values, pd.Series) else None
    return pd.DataFrame(
        {name: pd.Series(table[name].combine_chunks(), dtype=pd.ArrowDtype(pa.string()), index=index) for name in table.column_names}
    )
