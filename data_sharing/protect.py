"""From an accepted extract to what may leave the landing zone: the protected record and its encodings.

Two ways in, one result:

* a **raw** extract (names, birth dates, agency ids) is protected at the hub with the key set;
* a **tokenized** extract (``<extract>_<date>.tokens.csv``) was made by the agency itself with
  :func:`tokenize_frame` and the shared linkage key, so names and birth dates never left its building;
  the hub only adds its pseudonym layer.

Either way the result is a :class:`ProtectedExtract`:

* ``staging``: the pseudonymous rows (``source_key`` per agency id, ``<id>_id_token`` kept for
  re-keying after a key rotation, generalised quasi-identifiers, the extract's other columns,
  ``row_number``); it lives in the linkage area, never in the warehouse as it is;
* ``encodings``: for extracts that describe people, the linkage encodings (keyed hashes, Bloom
  filters) under the hub-only ``linkage_hub`` layer (``encodings.hub_encode``), plus ``source_key``
  and ``row_number``; nothing raw, and nothing the exported linkage key alone can reverse.

A test shows the two ways give identical frames for the same extract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from data_sharing.encodings import HUB_PURPOSE, encode_for_linkage, hub_encode
from data_sharing.errors import IdentifierDataError
from data_sharing.keys import KeySet, PurposeKey
from data_sharing.pseudonyms import generalize, key_column_names, pseudonymize, source_keys_from_tokens, tokenize_ids
from schemas.contracts import ExtractContract

BLOOM_COLUMNS = ("name_bloom", "address_bloom")
BLOOM_BITS_COLUMNS = ("name_bloom_bits", "address_bloom_bits")
ROW_NUMBER = "row_number"
LINKAGE_KEY_ID = "linkage_key_id"


@lru_cache(maxsize=1)
def encoding_columns() -> tuple[str, ...]:
    """The encoding columns every person extract carries (id tokens and source keys excepted)."""
    from schemas.contracts import load_extract_contracts

    # any person extract serves as the template: the one with the most linkage fields (names, birth date...)
    contract = max(
        (c for c in load_extract_contracts().values() if c.describes_people),
        key=lambda c: (len(c.linkage_columns), c.key),
    )
    dummy = PurposeKey.derive(b"\x00" * 32, "linkage", 1)
    frame = pd.DataFrame({c: pd.Series([], dtype="string") for c in contract.columns})
    names = key_column_names(contract, "id_token")
    return tuple(c for c in encode_for_linkage(frame, contract, dummy).columns if c not in names.values())


def token_column_names(contract: ExtractContract) -> dict[str, str]:
    """Agency id column -> the tokens-file column holding its id_token (``student_id`` -> ``student_id_token``)."""
    return {col: f"{col}_token" for col in contract.id_columns}


def tokens_columns(contract: ExtractContract) -> list[str]:
    """The columns of a ``.tokens.csv`` file for this extract, in order."""
    tokens = token_column_names(contract)
    cols: list[str] = []
    for col, spec in contract.columns.items():
        if col in tokens:
            cols.append(tokens[col])
        elif spec.generalize is not None:
            cols.append(f"{col}_{spec.generalize}")
        elif spec.privacy == "direct":
            continue
        else:
            cols.append(col)
    if contract.describes_people:
        cols += [c for c in encoding_columns() if c != LINKAGE_KEY_ID]
    cols.append(LINKAGE_KEY_ID)
    return cols


def required_tokens_columns(contract: ExtractContract) -> list[str]:
    tokens = token_column_names(contract)
    out = []
    for col, spec in contract.columns.items():
        if not spec.required:
            continue
        if col in tokens:
            out.append(tokens[col])
        elif spec.generalize is not None:
            out.append(f"{col}_{spec.generalize}")
        elif spec.privacy != "direct":
            out.append(col)
    if contract.describes_people:
        out += [c for c in encoding_columns() if c != LINKAGE_KEY_ID]
    out.append(LINKAGE_KEY_ID)
    return out


@dataclass(frozen=True)
class ProtectedExtract:
    staging: pd.DataFrame
    encodings: pd.DataFrame | None
    key_labels: dict[str, str]
    column_lineage: dict[str, list[str]] = field(default_factory=dict)  # output column -> extract fields
    dropped: list[str] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {
            "rows_out": len(self.staging),
            "encoded_rows": 0 if self.encodings is None else len(self.encodings),
            "keys": dict(self.key_labels),
            "dropped_identifiers": list(self.dropped),
        }


def _strings(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(pd.ArrowDtype(pa.string())) if len(frame.columns) else frame


def _row_numbers(frame: pd.DataFrame, row_numbers: Any) -> np.ndarray:
    if row_numbers is None:
        return np.arange(1, len(frame) + 1, dtype=np.int64)
    out = np.asarray(row_numbers, dtype=np.int64)
    if len(out) != len(frame):
        raise ValueError("row_numbers must give one number per row")
    return out


def protect_raw(
    frame: pd.DataFrame, contract: ExtractContract, keyset: KeySet, *, row_numbers: Any = None
) -> ProtectedExtract:
    """Protect an extract as the agency sent it (``frame``: the extract's columns as strings).

    ``row_numbers`` are the rows' 1-based numbers in the file (default 1..n), kept for tie-breaks
    ("the later row in the file") and for tracing a row back in the agency's feedback.
    """
    numbers = _row_numbers(frame, row_numbers)
    frame = frame.reset_index(drop=True)
    pseud = pseudonymize(frame, contract, keyset)
    staging = pseud.frame.copy()
    lineage: dict[str, list[str]] = {}
    token_names = key_column_names(contract, "id_token")
    for col, key_col in pseud.keyed.items():
        tok = tokenize_ids(frame[col], keyset, agency=contract.agency, id_type=str(contract.columns[col].id_type), column=col)
        staging[f"{col}_id_token"] = tok.values if isinstance(tok, pd.Series) else tok
        lineage[key_col] = [col]
        lineage[f"{col}_id_token"] = [col]
    for col, gen in pseud.generalized.items():
        lineage[gen] = [col]
    for col in pseud.kept:
        lineage[col] = [col]
    staging[ROW_NUMBER] = numbers
    encodings = None
    if contract.describes_people:
        encodings = encode_for_linkage(frame, contract, keyset)
        encodings = encodings.drop(columns=[c for c in token_names.values() if c in encodings.columns])
        for col, key_col in pseud.keyed.items():
            if key_col in encodings.columns:
                continue
            encodings[key_col] = staging[key_col].values
        encodings[ROW_NUMBER] = staging[ROW_NUMBER].values
        for c in BLOOM_COLUMNS:  # one Arrow type on both ways in (variable-length binary), readable by pandas
            if c in encodings.columns:
                values = [None if v is None or v is pd.NA else bytes(v) for v in encodings[c].tolist()]
                arr = pa.array(values, type=pa.binary())
                encodings[c] = pd.Series(arr, index=encodings.index, dtype=pd.ArrowDtype(pa.binary()))
        encodings = hub_encode(encodings[_encoding_order(encodings.columns, pseud.keyed.values())], keyset)
    labels = dict(pseud.key_labels)
    if encodings is not None:
        labels[HUB_PURPOSE] = keyset.purpose_key(HUB_PURPOSE).label
    return ProtectedExtract(_canonical(staging, contract), encodings, labels, lineage, list(pseud.dropped))


def protect_tokenized(
    frame: pd.DataFrame, contract: ExtractContract, keyset: KeySet, *, row_numbers: Any = None
) -> ProtectedExtract:
    """Protect a ``.tokens.csv`` extract: the agency already replaced identifiers with linkage tokens."""
    numbers = _row_numbers(frame, row_numbers)
    frame = frame.reset_index(drop=True)
    shape = check_tokens_shape(frame, contract)
    if shape:
        raise IdentifierDataError("bad_type", f"{contract.agency}/{contract.extract}: " + "; ".join(shape))
    link = keyset.purpose_key("linkage")
    ids = frame[LINKAGE_KEY_ID].astype("string").fillna("")
    stray = set(ids.unique()) - {link.key_id, ""}
    if stray:
        raise IdentifierDataError(
            "key_mismatch",
            f"{contract.agency}/{contract.extract}: the file was tokenized with linkage key id(s) "
            f"{', '.join(sorted(stray))[:60]}, not the hub's current {link.key_id}; tokenize again with the key "
            "from `c2c keys export-linkage`",
        )
    tokens = token_column_names(contract)
    key_names = key_column_names(contract, "source_key")
    out: dict[str, Any] = {}
    lineage: dict[str, list[str]] = {}
    dropped: list[str] = []
    for col, spec in contract.columns.items():
        if col in tokens:
            if tokens[col] not in frame.columns:
                continue
            keys = source_keys_from_tokens(frame[tokens[col]].replace("", pd.NA), keyset, column=tokens[col])
            out[key_names[col]] = keys.values if isinstance(keys, pd.Series) else keys
            lineage[key_names[col]] = [col]
        elif spec.generalize is not None:
            name = f"{col}_{spec.generalize}"
            if name in frame.columns:
                out[name] = frame[name]
                lineage[name] = [col]
        elif spec.privacy == "direct":
            dropped.append(col)
        elif col in frame.columns:
            out[col] = frame[col]
            lineage[col] = [col]
    staging = pd.DataFrame(out, index=frame.index)
    for col in tokens:
        if tokens[col] in frame.columns:
            staging[f"{col}_id_token"] = frame[tokens[col]].replace("", pd.NA).str.lower().values
            lineage[f"{col}_id_token"] = [col]
    staging[ROW_NUMBER] = numbers
    encodings = None
    if contract.describes_people:
        enc: dict[str, Any] = {}
        for c in encoding_columns():
            if c in BLOOM_COLUMNS:
                enc[c] = _blooms_from_hex(frame[c], c)
            elif c in BLOOM_BITS_COLUMNS:
                enc[c] = pd.to_numeric(frame[c].replace("", pd.NA)).astype("Int16")
            else:
                enc[c] = frame[c].replace("", pd.NA)
        encodings = pd.DataFrame(enc, index=frame.index)
        for col in tokens:
            if key_names[col] in staging.columns:
                encodings[key_names[col]] = staging[key_names[col]].values
        encodings[ROW_NUMBER] = staging[ROW_NUMBER].values
        encodings = encodings[_encoding_order(encodings.columns, [key_names[c] for c in tokens if key_names[c] in staging])]
        encodings = hub_encode(encodings, keyset)  # the same hub-only layer as protect_raw's: both ways link
    labels = {"pseudonym": keyset.purpose_key("pseudonym").label, "linkage": link.label}
    if encodings is not None:
        labels[HUB_PURPOSE] = keyset.purpose_key(HUB_PURPOSE).label
    return ProtectedExtract(_canonical(staging, contract), encodings, labels, lineage, dropped)


def tokenize_frame(frame: pd.DataFrame, contract: ExtractContract, linkage: PurposeKey) -> pd.DataFrame:
    """At the agency: replace identifiers with linkage tokens and encodings (the ``.tokens.csv`` content)."""
    frame = frame.reset_index(drop=True)
    tokens = token_column_names(contract)
    out: dict[str, Any] = {}
    for col, spec in contract.columns.items():
        if col in tokens:
            if col in frame.columns:
                tok = tokenize_ids(frame[col], linkage, agency=contract.agency, id_type=str(spec.id_type), column=col)
                out[tokens[col]] = tok.values if isinstance(tok, pd.Series) else tok
        elif spec.generalize is not None:
            if col in frame.columns:
                arr = generalize(frame[col], spec.generalize, column=col)
                out[f"{col}_{spec.generalize}"] = pd.Series(arr, dtype=pd.ArrowDtype(arr.type))
        elif spec.privacy == "direct":
            continue
        elif col in frame.columns:
            out[col] = frame[col]
    result = pd.DataFrame(out, index=frame.index)
    if contract.describes_people:
        enc = encode_for_linkage(frame, contract, linkage)
        for c in encoding_columns():
            if c in BLOOM_COLUMNS:
                result[c] = [None if b is None or b is pd.NA else bytes(b).hex() for b in enc[c].tolist()]
            else:
                result[c] = enc[c].values
    else:
        result[LINKAGE_KEY_ID] = linkage.key_id
    return result[[c for c in tokens_columns(contract) if c in result.columns]]


_HEX32 = r"[0-9a-f]{32}"
_HEX64 = r"[0-9a-fA-F]{64}"
_GENERALIZED_SHAPES = {"year_month": r"[0-9]{4}-[0-9]{2}", "year": r"[0-9]{4}", "zip3": r"[0-9]{3}"}


def check_tokens_shape(frame: pd.DataFrame, contract: ExtractContract) -> list[str]:
    """Problems with a ``.tokens.csv`` frame's token and encoding columns (names and counts, never values).

    A tokens file must carry only tokens where identifiers were: 64-hex id tokens, 32-hex keyed hashes,
    hexadecimal Bloom filters, generalised values in their coarse form. Anything else may be a raw value
    sent by mistake, and the whole file is refused before it reaches the linkage area.
    """
    expected: dict[str, str] = {tokens: _HEX64 for tokens in token_column_names(contract).values()}
    for col, spec in contract.columns.items():
        if spec.generalize is not None:
            expected[f"{col}_{spec.generalize}"] = _GENERALIZED_SHAPES[spec.generalize]
    if contract.describes_people:
        for c in encoding_columns():
            if c in BLOOM_COLUMNS:
                expected[c] = r"(?:[0-9a-f]{2}){1,512}"
            elif c in BLOOM_BITS_COLUMNS:
                expected[c] = r"[0-9]{1,5}"
            elif c.endswith("_hash"):
                expected[c] = _HEX32
    expected[LINKAGE_KEY_ID] = r"[0-9a-f]{6,64}"
    problems = []
    for column, pattern in expected.items():
        if column not in frame.columns:
            continue
        values = frame[column].astype("string").fillna("").str.strip()
        bad = ~(values.eq("") | values.str.fullmatch(pattern).fillna(False))
        n = int(bad.sum())
        if n:
            first = int(bad.to_numpy().nonzero()[0][0]) + 1
            problems.append(
                f"column {column}: {n:,} value(s) are not in token form (first at data row {first:,}); a .tokens.csv "
                "file must be made with `c2c tokenize`"
            )
    return problems


def _blooms_from_hex(values: pd.Series, column: str) -> pd.Series:
    clean = values.astype("string").fillna("").str.strip()
    ok = clean.str.fullmatch(r"(?:[0-9a-fA-F]{2})*").fillna(False)
    if not bool(ok.all()):
        raise IdentifierDataError("bad_type", f"column {column}: values are not hexadecimal Bloom filters")
    arr = pa.array([bytes.fromhex(v) if v else None for v in clean.tolist()], type=pa.binary())  # same type as protect_raw
    return pd.Series(arr, index=values.index, dtype=pd.ArrowDtype(arr.type))


def _encoding_order(columns: Any, key_cols: Any) -> list[str]:
    keys = [c for c in key_cols if c in columns]
    rest = [c for c in encoding_columns() if c in columns]
    return keys + rest + [ROW_NUMBER]


def _canonical(staging: pd.DataFrame, contract: ExtractContract) -> pd.DataFrame:
    """Staging columns in one fixed order, whatever the way in, as Arrow strings (row_number an integer)."""
    key_names = key_column_names(contract, "source_key")
    order: list[str] = []
    for col, spec in contract.columns.items():
        if col in key_names:
            order.append(key_names[col])
        elif spec.generalize is not None:
            order.append(f"{col}_{spec.generalize}")
        elif spec.privacy != "direct":
            order.append(col)
    order += [f"{col}_id_token" for col in contract.id_columns]
    cols = [c for c in order if c in staging.columns]
    out = _strings(staging[cols]).replace("", pd.NA)
    out[ROW_NUMBER] = staging[ROW_NUMBER].astype("int64").values
    return out
