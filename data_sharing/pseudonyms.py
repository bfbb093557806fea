"""Identifiers split off: agency ids become keyed tokens, rows become pseudonymous.

Two layers, each a real HMAC-SHA256, written as lower-case hex (64 characters):

* ``id_token = HMAC(linkage key, "<agency>|<id_type>|<normalised id>")`` (UTF-8). Computable by an
  agency that holds only the linkage key (tokenize at source); lives in the linkage area.
* ``source_key = HMAC(pseudonym key, <the 32 bytes of id_token>)`` (the raw digest, i.e. the hex
  decoded). Only the hub can compute it; it keys the warehouse staging rows and the crosswalk
  ``source_key -> child_key``.

The id is normalised by :func:`data_sharing.normalize.normalize_agency_id` (trimmed, internal
whitespace removed, upper-cased); a missing id gives a null token, never the token of "".

Recipes: :func:`tokenize_ids`, :func:`source_keys_from_tokens`, :func:`pseudonymize_ids` (both layers
in one pass), :func:`pseudonymize` (a whole extract under its contract) and :func:`rekey_crosswalk`
(old -> new ``source_key`` after a key rotation).
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_sharing import _crypto
from data_sharing.errors import IdentifierDataError
from data_sharing.keys import KeySet, PurposeKey, resolve_key
from data_sharing.normalize import ArrayLike, agency_id_core, date_core, to_arrow_strings, zip_core
from schemas.contracts import ExtractContract, key_column_names

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_HEX64 = r"^[0-9a-f]{64}$"
MAX_ROWS_IN_MESSAGE = 5


def _rows(mask: np.ndarray) -> str:
    """Row positions for an error message (positions only, never values)."""
    pos = np.flatnonzero(mask)
    shown = ", ".join(str(int(p)) for p in pos[:MAX_ROWS_IN_MESSAGE])
    more = f" and {len(pos) - MAX_ROWS_IN_MESSAGE} more" if len(pos) > MAX_ROWS_IN_MESSAGE else ""
    return f"row position(s) {shown}{more}"


def _id_prefix(agency: str, id_type: str) -> bytes:
    for label, value in (("agency", agency), ("id_type", id_type)):
        if not isinstance(value, str) or not _NAME_RE.match(value):
            raise IdentifierDataError("contract_mismatch", f"{label} must be a lower-case name like 'fps' or 'student'")
    return f"{agency}|{id_type}|".encode("ascii")


def _valid_mask(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.ones(len(arr), dtype=bool)
    return np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)


def _wrap(arr: pa.Array, like: ArrayLike, name: str | None = None) -> Any:
    if isinstance(like, pd.Series):
        return pd.Series(arr, index=like.index, name=name or like.name, dtype=pd.ArrowDtype(arr.type))
    return arr


def _normalised_messages(values: ArrayLike, column: str) -> tuple[_crypto.Packed, np.ndarray]:
    arr = agency_id_core(to_arrow_strings(values, what=f"column {column}"))
    valid = _valid_mask(arr)
    present = arr if arr.null_count == 0 else arr.filter(pa.array(valid))
    return _crypto.Packed.from_arrow(present), valid


def _distinct_messages(values: ArrayLike, column: str) -> tuple[_crypto.Packed, np.ndarray, np.ndarray | None]:
    """Like :func:`_normalised_messages`, but each distinct normalised id once: (distinct messages, valid
    mask, for each present row the position of its id among the distinct ones, or None when all differ).

    An event extract repeats each person's id on every row; the keyed hashes are computed per person."""
    arr = agency_id_core(to_arrow_strings(values, what=f"column {column}"))
    valid = _valid_mask(arr)
    present = arr if arr.null_count == 0 else arr.filter(pa.array(valid))
    encoded = pc.dictionary_encode(present)
    if len(encoded.dictionary) == len(present):
        return _crypto.Packed.from_arrow(present), valid, None
    return _crypto.Packed.from_arrow(encoded.dictionary), valid, encoded.indices.to_numpy(zero_copy_only=False)


def _spread(digests: bytes, positions: np.ndarray | None) -> bytes:
    """Digests of the distinct messages back to one per present row (``positions`` from _distinct_messages)."""
    if positions is None:
        return digests
    return np.frombuffer(digests, dtype=np.uint8).reshape(-1, _crypto.DIGEST_SIZE)[positions].tobytes()


def tokenize_ids(
    values: ArrayLike,
    linkage: KeySet | PurposeKey,
    *,
    agency: str,
    id_type: str,
    column: str = "id",
) -> Any:
    """``id_token`` (64 hex) of each agency id; null where the id is missing.

    ``linkage`` is the hub's key set or an agency's linkage key (:func:`~data_sharing.keys.load_linkage_key`).
    """
    key = resolve_key(linkage, "linkage")
    packed, valid, positions = _distinct_messages(values, column)
    digests = _crypto.hmac_sha256_batch(key.secret, packed, prefix=_id_prefix(agency, id_type))
    return _wrap(_crypto.digests_to_hex_array(_spread(digests, positions), valid), values, "id_token")


def _decode_tokens(id_tokens: ArrayLike, column: str) -> tuple[_crypto.Packed, np.ndarray, np.ndarray | None]:
    """(distinct tokens as 32-byte messages, valid mask, positions as in :func:`_distinct_messages`)."""
    arr = pc.utf8_lower(pc.utf8_trim_whitespace(to_arrow_strings(id_tokens, what=f"column {column}")))
    valid = _valid_mask(arr)
    ok = pc.fill_null(pc.match_substring_regex(arr, _HEX64), True).to_numpy(zero_copy_only=False)
    if not ok.all():
        raise IdentifierDataError("bad_type", f"column {column}: {_rows(~ok)} are not 64-hex-character id tokens")
    present = arr if arr.null_count == 0 else arr.filter(pa.array(valid))
    encoded = pc.dictionary_encode(present)
    positions = None if len(encoded.dictionary) == len(present) else encoded.indices.to_numpy(zero_copy_only=False)
    distinct = present if positions is None else encoded.dictionary
    raw = binascii.unhexlify(_crypto.Packed.from_arrow(distinct).data)
    n = len(distinct)
    offsets = np.arange(0, _crypto.DIGEST_SIZE * (n + 1), _crypto.DIGEST_SIZE, dtype=np.int64)
    return _crypto.Packed(raw, offsets), valid, positions


def source_keys_from_tokens(id_tokens: ArrayLike, pseudonym: KeySet | PurposeKey, *, version: int | None = None, column: str = "id_token") -> Any:
    """``source_key`` (64 hex) from ``id_token`` hex (e.g. a file tokenized at source); nulls stay null."""
    key = resolve_key(pseudonym, "pseudonym", version)
    packed, valid, positions = _decode_tokens(id_tokens, column)
    digests = _crypto.hmac_sha256_batch(key.secret, packed)
    return _wrap(_crypto.digests_to_hex_array(_spread(digests, positions), valid), id_tokens, "source_key")


def pseudonymize_ids(values: ArrayLike, keyset: KeySet, *, agency: str, id_type: str, column: str = "id") -> pd.DataFrame:
    """``id_token`` and ``source_key`` of each agency id in one pass (two chained HMACs per id).

    Returns a DataFrame with the input's index (a RangeIndex for non-pandas input).
    """
    link = keyset.purpose_key("linkage")
    pseud = keyset.purpose_key("pseudonym")
    packed, valid, positions = _distinct_messages(values, column)
    both = _crypto.hmac_sha256_batch(link.secret, packed, prefix=_id_prefix(agency, id_type), chain_key=pseud.secret)
    half = len(both) // 2
    index = values.index if isinstance(values, pd.Series) else None
    tokens = _crypto.digests_to_hex_array(_spread(both[:half], positions), valid)
    keys = _crypto.digests_to_hex_array(_spread(both[half:], positions), valid)
    return pd.DataFrame(
        {
            "id_token": pd.Series(tokens, index=index, dtype=pd.ArrowDtype(tokens.type)),
            "source_key": pd.Series(keys, index=index, dtype=pd.ArrowDtype(keys.type)),
        }
    )


def rekey_crosswalk(
    id_tokens: ArrayLike,
    keyset: KeySet,
    *,
    from_version: int,
    to_version: int | None = None,
    new_id_tokens: ArrayLike | None = None,
) -> pd.DataFrame:
    """Old -> new ``source_key`` for every distinct ``id_token`` after a key rotation.

    Pseudonym key rotation (the usual case): ``id_tokens`` are the stored tokens, unchanged by it;
    old keys use pseudonym ``from_version``, new ones ``to_version`` (default current). Linkage key
    rotation: pass ``new_id_tokens`` aligned row by row with ``id_tokens`` (the same records
    re-tokenised under the new linkage key); the new side is then computed from them.

    Columns ``old_source_key``, ``new_source_key``, one row per distinct pair with both present;
    ``attrs['from_key']`` / ``attrs['to_key']`` hold the pseudonym key labels for the audit log.
    """
    new = keyset.purpose_key("pseudonym", to_version)
    old = keyset.purpose_key("pseudonym", from_version)

    def clean(values: ArrayLike) -> pa.Array:
        return pc.utf8_lower(pc.utf8_trim_whitespace(to_arrow_strings(values, what="id tokens")))

    olds_in = clean(id_tokens)
    if new_id_tokens is None:
        news_in = olds_in
    else:
        news_in = clean(new_id_tokens)
        if len(news_in) != len(olds_in):
            raise IdentifierDataError("contract_mismatch", "new_id_tokens must have one token per id token (same rows)")
    pairs = pa.table({"old": olds_in, "new": news_in}).filter(pc.and_(pc.is_valid(olds_in), pc.is_valid(news_in)))
    pairs = pairs.group_by(["old", "new"]).aggregate([]).sort_by([("old", "ascending"), ("new", "ascending")])
    olds = source_keys_from_tokens(pairs["old"].combine_chunks(), old, column="id_tokens")
    news = source_keys_from_tokens(pairs["new"].combine_chunks(), new, column="new_id_tokens")
    out = pd.DataFrame(
        {
            "old_source_key": pd.Series(olds, dtype=pd.ArrowDtype(olds.type)),
            "new_source_key": pd.Series(news, dtype=pd.ArrowDtype(news.type)),
        }
    )
    out.attrs.update(from_key=old.label, to_key=new.label)
    return out


# ----------------------------------------------------------------------------------------------
# A whole extract under its contract
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PseudonymousExtract:
    """The pseudonymous frame and what was done to produce it (safe to put in metadata)."""

    frame: pd.DataFrame
    key_labels: dict[str, str]
    keyed: dict[str, str] = field(default_factory=dict)  # id column -> source key column
    generalized: dict[str, str] = field(default_factory=dict)  # column -> generalised column
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {
            "rows": len(self.frame),
            "keys": dict(self.key_labels),
            "keyed": dict(self.keyed),
            "generalized": dict(self.generalized),
            "dropped": list(self.dropped),
            "kept": list(self.kept),
        }


def generalize(values: ArrayLike, how: str, *, column: str = "column") -> pa.Array:
    """``year_month`` -> ``"YYYY-MM"``, ``year`` -> int16 year, ``zip3`` -> first three ZIP digits."""
    if how == "year_month":
        dates = date_core(values, what=f"column {column}")
        return pc.strftime(dates, format="%Y-%m")
    if how == "year":
        return pc.year(date_core(values, what=f"column {column}")).cast(pa.int16())
    if how == "zip3":
        return pc.utf8_slice_codeunits(zip_core(to_arrow_strings(values, what=f"column {column}")), 0, 3)
    raise IdentifierDataError("contract_mismatch", f"column {column}: unknown generalisation {how!r}")


def pseudonymize(frame: pd.DataFrame, contract: ExtractContract, keyset: KeySet) -> PseudonymousExtract:
    """The pseudonymous version of an extract, following its contract's column roles.

    * id columns (``id_type``) -> their ``source_key`` (the first id column becomes ``source_key``,
      others ``<id_type>_source_key``);
    * columns with ``generalize`` -> ``<column>_<generalize>`` (``birth_date_year_month``,
      ``zip_zip3``; the original is dropped);
    * other ``direct`` identifiers (names, street address...) -> dropped;
    * ``quasi`` and ``none`` columns -> kept as they are.

    A frame column the contract does not know is refused (it could hold anything). Keep the
    ``id_token`` for the linkage area with :func:`pseudonymize_ids` / ``encode_for_linkage``.
    """
    unknown = [c for c in frame.columns if c not in contract.columns]
    if unknown:
        raise IdentifierDataError(
            "unknown_column",
            f"{contract.agency}/{contract.extract}: column(s) {', '.join(map(str, unknown))} are not in the contract; "
            "remove them before pseudonymising",
        )
    key_names = key_column_names(contract, "source_key")
    missing_ids = [c for c in key_names if c not in frame.columns and contract.columns[c].required]
    if missing_ids:
        raise IdentifierDataError(
            "missing_column", f"{contract.agency}/{contract.extract}: id column(s) {', '.join(missing_ids)} are missing"
        )
    pseud = keyset.purpose_key("pseudonym")
    out: dict[str, Any] = {}
    result_keyed: dict[str, str] = {}
    generalized: dict[str, str] = {}
    dropped: list[str] = []
    kept: list[str] = []
    for col in frame.columns:
        spec = contract.columns[col]
        if col in key_names:
            ids = pseudonymize_ids(frame[col], keyset, agency=contract.agency, id_type=str(spec.id_type), column=col)
            out[key_names[col]] = ids["source_key"]
            result_keyed[col] = key_names[col]
        elif spec.generalize is not None:
            name = f"{col}_{spec.generalize}"
            arr = generalize(frame[col], spec.generalize, column=col)
            out[name] = pd.Series(arr, index=frame.index, dtype=pd.ArrowDtype(arr.type))
            generalized[col] = name
        elif spec.privacy == "direct":
            dropped.append(col)
        else:
            out[col] = frame[col]
            kept.append(col)
    result = pd.DataFrame(out, index=frame.index)
    labels = {"pseudonym": pseud.label, "linkage": keyset.purpose_key("linkage").label}
    return PseudonymousExtract(result, labels, result_keyed, generalized, dropped, kept)
