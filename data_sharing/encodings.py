"""Linkage encodings: keyed hashes and Bloom filters of normalised identifiers, nothing raw.

:func:`encode_for_linkage` turns one extract frame into one frame of encodings (same index, one row
per input row), computed with the **linkage** key so that an agency tokenizing at source produces
exactly the same values. Every token is ``HMAC-SHA256(linkage key, "c2c/enc/v1/<domain>" 0x1F
<normalised value>)`` truncated to 128 bits, as 32 lower-case hex characters; null where the value is
missing. Columns that share a *domain* are comparable with each other:

===================================  ===================  ==============================================
column                               domain               value hashed
===================================  ===================  ==============================================
``id_token`` (64 hex, full HMAC)     see ``pseudonyms``   ``<agency>|<id_type>|<normalised id>``
``source_key`` (only with a KeySet)  see ``pseudonyms``   HMAC(pseudonym key, id_token bytes)
``linkage_key_id``                   --                   key id of the linkage key used (not secret)
``first_name_hash``                  first_name           compact first name (``JEANLUC``)
``first_name_prefix3_hash``          first_name_prefix3   first 3 letters of it
``first_name_nysiis_hash``           first_name_nysiis    NYSIIS code of it
``first_initial_hash``               first_initial        first letter
``first_name_canonical_hash``        first_name           the formal name a short form stands for
                                                          (``BOB`` -> ``ROBERT``, :data:`~data_sharing.normalize.NICKNAMES`),
                                                          else the compact first name itself
``middle_name_hash``                 middle_name          compact middle name
``middle_initial_hash``              first_initial        its first letter (comparable with first's)
``middle_name_as_first_hash``        first_name           the middle name as a first name, so that
                                                          ``a.first_name_hash = b.middle_name_as_first_hash``
                                                          catches a middle name used as the first
``last_name_as_first_hash``          first_name           the surname as a first name (normalised like
                                                          one), so that a record with first name and
                                                          surname swapped meets the other's first name
``last_name_hash``                   last_name            compact surname, suffixes removed
``last_name_part1_hash``             last_name            first significant part (particles ignored)
``last_name_part2_hash``             last_name            last significant part
``last_name_prefix3_hash``           last_name_prefix3    first 3 letters of the compact surname
``last_name_nysiis_hash``            last_name_nysiis     NYSIIS of the compact surname
``last_name_soundex_hash``           last_name_soundex    Soundex of the compact surname
``birth_date_hash``                  birth_date           ``YYYY-MM-DD``
``birth_date_swapped_hash``          birth_date           ``YYYY-DD-MM`` when day <= 12, so
                                                          ``a.birth_date_swapped_hash = b.birth_date_hash``
                                                          catches a day/month swap
``birth_year_hash`` / ``birth_month_hash`` / ``birth_day_hash``   ``YYYY`` / ``MM`` / ``DD``
``sex_hash``                         sex                  ``F`` / ``M`` / ``X``
``zip_hash``                         zip                  5 digits
``street_address_hash``              street_address       normalised address
``last_name_birth_date_hash``        composite            surname + birth date
``first_name_birth_date_hash``       composite            first name + birth date
``first_initial_last_name_birth_year_hash``  composite    initial + surname + birth year
``name_bloom`` / ``address_bloom``   --                   Bloom filters, 128 bytes each (below)
``name_bloom_bits`` / ``address_bloom_bits``  --          number of bits set (int16)
===================================  ===================  ==============================================

``first_name_canonical_hash`` shares the ``first_name`` domain, so it equals ``first_name_hash`` of
a record carrying the formal name: ``a.first_name_canonical_hash = b.first_name_canonical_hash`` with
different first names means one is a short form of the other (or both of one formal name). The table
lists short forms that stand for one formal name only (``ALEX`` could be Alexander, Alexandra or
Alejandro, so it is not there) and leaves out short forms that are common given names in their own
right (``LIAM``, ``JAMIE``, ``CHARLIE``): for those, equal canonical forms would be weak evidence, and
twins are given such pairs of names.

Because ``last_name_hash`` and both part hashes share a domain, "García López" matches "López" by
comparing ``a.last_name_part2_hash = b.last_name_hash`` (or any cross pair). A surname of one part has
the same value in all three.

**Bloom filters** (CLK-style) hold the padded bigrams (``_GARCIALOPEZ_`` -> ``_G``, ``GA``...) of the
compact first and last names (``name_bloom``: 1024 bits, 20 positions per bigram) and of the
normalised street address (``address_bloom``: 1024 bits, 20 positions). Positions are *random
hashing*, not double hashing: each position is an independent 32-bit slice of
``HMAC(linkage key, "c2c/bloom/v1/<filter>" 0x1F <bigram> <counter>)`` modulo the length, because
the linear structure of double hashing (``h1 + i*h2``) is what published pattern-mining attacks on
CLKs exploit. Bit ``p`` is bit ``7 - p % 8`` of byte ``p // 8`` (so DuckDB's ``BLOB::BIT`` reads
positions left to right). A filter is null when none of its fields has a value. Dice similarity in
DuckDB::

    2.0 * bit_count(l.name_bloom::BIT & r.name_bloom::BIT)
        / (bit_count(l.name_bloom::BIT) + bit_count(r.name_bloom::BIT))

(:func:`dice_sql` writes it; :func:`dice` computes it in Python.)

**The hub-only layer** (:func:`hub_encode`). What an agency computes with the exported linkage key is
not what the linkage area stores: at the hub every keyed hash is passed through AES-256 under the hub-only
``linkage_hub`` key, one 16-byte token per block (a keyed pseudorandom permutation: equal tokens stay
equal, different ones stay different, so keyed equality is exactly preserved), and the bits of every
Bloom filter are moved by a permutation of the filter's positions chosen by that key (so AND, popcount
and Dice similarity are exactly preserved). Someone holding only the linkage key can compute the
agency-side encoding of any guessed name or birth date but cannot find it in the linkage area. Both
layers are invertible by the hub, so rotating ``linkage_hub`` re-encodes stored files
(:func:`hub_rekey`) without raw data. Tokenized-at-source files get the same layer on arrival, so they
link with records the hub encoded itself. Residual: a permutation keeps each bit position's frequency,
so a statistical attack on bit co-occurrence over the whole linkage area is not excluded; the linkage
area stays private to the hub (0700) either way.

Frequency attacks: the hashes of low-entropy fields (sex, birth month, day) are as guessable as the
values to anyone holding the linkage key (every agency that tokenizes at source). Keep encodings in the
linkage area; never publish them.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jellyfish
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_sharing import _crypto
from data_sharing.errors import IdentifierDataError
from data_sharing.keys import KeySet, Purpose, PurposeKey, resolve_key
from data_sharing.normalize import (
    address_core,
    canonical_first_name,
    compact_core,
    date_core,
    date_parts_core,
    name_core,
    sex_core,
    surname_core,
    to_arrow_strings,
    zip_core,
)
from data_sharing.pseudonyms import _id_prefix, _normalised_messages, key_column_names
from schemas.contracts import ExtractContract

# 2: first_name_canonical_hash added; 3: middle_name_as_first_hash and last_name_as_first_hash added (the
# other columns' values are unchanged)
ENCODING_VERSION = 3
TOKEN_BYTES = 16
_ENC_PREFIX = b"c2c/enc/v1/"
_BLOOM_PREFIX = b"c2c/bloom/v1/"
_SEP = "\x1f"
_UNIQUE_MIN = 4096


@dataclass(frozen=True)
class BloomSpec:
    """One Bloom filter column: which linkage fields feed it, its length in bits and positions per bigram."""

    name: str
    fields: tuple[str, ...]
    bits: int = 1024
    hashes: int = 20

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", self.name):
            raise ValueError("a Bloom filter's name is a lower-case column name like name_bloom")
        if self.bits <= 0 or self.bits % 64:
            raise ValueError("a Bloom filter's length must be a positive multiple of 64 bits")
        if not 1 <= self.hashes <= 256:
            raise ValueError("positions per bigram must be between 1 and 256")
        unknown = [f for f in self.fields if f not in _BLOOM_FIELDS]
        if unknown or not self.fields:
            raise ValueError(f"Bloom fields must be among {', '.join(_BLOOM_FIELDS)}")


_BLOOM_FIELDS = ("first_name", "middle_name", "last_name", "street_address")
DEFAULT_BLOOMS: tuple[BloomSpec, ...] = (
    BloomSpec("name_bloom", ("first_name", "last_name"), bits=1024, hashes=20),
    BloomSpec("address_bloom", ("street_address",), bits=1024, hashes=20),
)


# ----------------------------------------------------------------------------------------------
# Keyed tokens
# ----------------------------------------------------------------------------------------------


def _hash_values(arr: pa.Array, key: bytes, domain: str, nbytes: int = TOKEN_BYTES) -> pa.Array:
    """Keyed hash (hex, ``nbytes`` of the digest) of every distinct non-null value, taken back to rows."""
    prefix = _ENC_PREFIX + domain.encode("ascii") + _SEP.encode("ascii")
    if len(arr) >= _UNIQUE_MIN:
        enc = pc.dictionary_encode(arr)
        uniq, indices = enc.dictionary, enc.indices
    else:
        uniq, indices = arr.drop_null(), None
    digests = _crypto.hmac_sha256_batch(key, _crypto.Packed.from_arrow(uniq), prefix=prefix)
    if indices is not None:
        return _crypto.digests_to_hex_array(digests, nbytes=nbytes).take(indices)
    # Small input: every non-null row was hashed in order; place the digests back by validity.
    valid = np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)
    return _crypto.digests_to_hex_array(digests, valid, nbytes=nbytes)


def _map_unique(arr: pa.Array, fn: Any) -> pa.Array:
    """A per-value Python function (phonetic codes) applied to the distinct values only."""
    enc = pc.dictionary_encode(arr)
    mapped = pa.array([fn(v) or None for v in enc.dictionary.to_pylist()], type=pa.string())
    return mapped.take(enc.indices)


def _join(*parts: pa.Array) -> pa.Array:
    """Fields joined with 0x1F; null if any part is null."""
    return pc.binary_join_element_wise(*parts, _SEP)


# ----------------------------------------------------------------------------------------------
# Bloom filters
# ----------------------------------------------------------------------------------------------


def _padded_bytes(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The ``_value_`` strings of a normalised column as one uint8 buffer and int64 offsets ('' for null)."""
    padded = pc.fill_null(pc.binary_join_element_wise("_", arr, "_", ""), "")
    if pc.all(pc.string_is_ascii(padded)).as_py() is False:
        raise IdentifierDataError("bad_type", "Bloom filter input was not normalised to ASCII")
    packed = _crypto.Packed.from_arrow(padded)
    return np.frombuffer(packed.data, dtype=np.uint8), packed.offsets


def _bigram_masks(codes: np.ndarray, key: bytes, spec: BloomSpec) -> np.ndarray:
    """One ``bits``-long mask (as bytes) per distinct bigram code, from keyed random positions."""
    per_digest = _crypto.DIGEST_SIZE // 4
    rounds = -(-spec.hashes // per_digest)
    messages = [bytes([c >> 8, c & 0xFF, r]) for c in codes.tolist() for r in range(rounds)]
    prefix = _BLOOM_PREFIX + spec.name.encode("ascii") + _SEP.encode("ascii")
    digests = _crypto.hmac_sha256_batch(key, messages, prefix=prefix, workers=0)
    words = np.frombuffer(digests, dtype=">u4").reshape(len(codes), rounds * per_digest)[:, : spec.hashes]
    positions = (words.astype(np.uint64) % np.uint64(spec.bits)).astype(np.int64)
    masks = np.zeros((len(codes), spec.bits // 8), dtype=np.uint8)
    rows = np.repeat(np.arange(len(codes)), spec.hashes)
    flat = positions.ravel()
    np.bitwise_or.at(masks, (rows, flat // 8), (np.uint8(0x80) >> (flat % 8).astype(np.uint8)).astype(np.uint8))
    return masks


def _bloom(fields: Sequence[pa.Array], n: int, key: bytes, spec: BloomSpec) -> tuple[pa.Array, pa.Array]:
    """Filters of ``n`` rows from the bigrams of every field (OR of the fields' bigram masks).

    Vectorised by bigram *position*: rows are ordered by bigram count, so the rows having a j-th
    bigram are a prefix, and step j ORs the j-th bigram's mask into that prefix in one numpy gather.
    """
    words = spec.bits // 64
    filters = np.zeros((n, words), dtype=np.uint64)
    any_bits = np.zeros(n, dtype=bool)
    for arr in fields:
        data, offsets = _padded_bytes(arr)
        if data.size < 2:
            continue
        counts = np.maximum(np.diff(offsets) - 1, 0)
        # Every adjacent byte pair of the buffer (pairs across two values are never looked up).
        pairs = (data[:-1].astype(np.uint16) << 8) | data[1:]
        present = np.zeros(1 << 16, dtype=bool)
        present[pairs] = True
        uniq = np.flatnonzero(present)
        lut = np.zeros(1 << 16, dtype=np.int32)
        lut[uniq] = np.arange(len(uniq), dtype=np.int32)
        table = _bigram_masks(uniq, key, spec).view(np.uint64)
        pair_index = lut[pairs]
        order = np.argsort(-counts, kind="stable")
        starts = offsets[:-1][order]
        hist = np.bincount(counts)
        having = n - np.cumsum(hist)  # having[j] = rows with more than j bigrams
        acc = np.zeros((int(having[0]), words), dtype=np.uint64)
        for j in range(len(hist) - 1):
            m = int(having[j])
            acc[:m] |= table[pair_index[starts[:m] + j]]
        rows = order[: int(having[0])]
        filters[rows] |= acc
        any_bits[rows] = True
    popcount = np.bitwise_count(filters).sum(axis=1).astype(np.int16)
    validity = pa.py_buffer(np.packbits(any_bits, bitorder="little").tobytes())
    null_count = int(n - any_bits.sum())
    blooms = pa.Array.from_buffers(
        pa.binary(spec.bits // 8), n, [validity, pa.py_buffer(filters.tobytes())], null_count=null_count
    )
    bits = pa.Array.from_buffers(pa.int16(), n, [validity, pa.py_buffer(popcount.tobytes())], null_count=null_count)
    return blooms, bits


def dice(a: bytes | None, b: bytes | None) -> float | None:
    """Dice similarity of two Bloom filters (``2 |a & b| / (|a| + |b|)``); None if either is missing (None/NA)."""
    if not isinstance(a, bytes | bytearray) or not isinstance(b, bytes | bytearray):
        return None
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    total = x.bit_count() + y.bit_count()
    return 2.0 * (x & y).bit_count() / total if total else None


_COLREF = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?$")


def dice_sql(left: str, right: str) -> str:
    """DuckDB SQL for the Dice similarity of two Bloom filter columns, e.g. ``dice_sql("l.name_bloom", "r.name_bloom")``.

    Arguments are column references (checked, never values); the expression is NULL when either is.
    """
    for ref in (left, right):
        if not _COLREF.match(ref):
            raise ValueError("dice_sql takes column references like l.name_bloom or name_bloom_l")
    return (
        f"(2.0 * bit_count(({left})::BIT & ({right})::BIT) "
        f"/ nullif(bit_count(({left})::BIT) + bit_count(({right})::BIT), 0))"
    )


# ----------------------------------------------------------------------------------------------
# The hub-only layer
# ----------------------------------------------------------------------------------------------

HUB_PURPOSE: Purpose = "linkage_hub"
HUB_KEY_METADATA = "key_linkage_hub"  # parquet metadata of an encodings file: the hub key label it is under
_HUB_TOKEN_INFO = b"c2c/hub/tokens/v1"
_HUB_BLOOM_LABEL = b"c2c/hub/bloom/v1/"
BLOOM_COLUMNS = tuple(spec.name for spec in DEFAULT_BLOOMS)


def _token_key(hub: PurposeKey) -> bytes:
    return _crypto.hkdf_sha256(hub.secret, salt=None, info=_HUB_TOKEN_INFO)


def _prp_tokens(values: pd.Series, key: bytes, inverse: bool, column: str) -> pd.Series:
    """Every 32-hex token of a column through AES-256 (or its inverse); nulls stay null."""
    arr = pa.array(values.astype(pd.ArrowDtype(pa.string())).array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    valid = np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)
    present = arr.drop_null()
    if len(present) and not pc.all(pc.equal(pc.utf8_length(present), 2 * TOKEN_BYTES)).as_py():
        raise IdentifierDataError("bad_type", f"column {column}: values are not {2 * TOKEN_BYTES}-hex-character tokens")
    try:
        blocks = binascii.unhexlify(_crypto.Packed.from_arrow(present).data)
    except binascii.Error:
        raise IdentifierDataError("bad_type", f"column {column}: values are not hexadecimal tokens") from None
    text = binascii.hexlify(_crypto.aes256_prp(key, blocks, inverse=inverse))
    n = len(valid)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.where(valid, 2 * TOKEN_BYTES, 0).astype(np.int32), out=offsets[1:])
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    out = pa.Array.from_buffers(pa.string(), n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(text)], null_count=n - len(present))
    return pd.Series(out, index=values.index, dtype=pd.ArrowDtype(pa.string()), name=values.name)


_PERMUTE_CHUNK = 1024  # rows per step (1 MiB unpacked): fastest measured, and bounded memory


def _permute_blooms(values: pd.Series, hub: PurposeKey, name: str, inverse: bool) -> pd.Series:
    """The bits of every filter moved by the hub key's permutation of positions (Dice unchanged)."""
    typ = values.dtype.pyarrow_dtype if isinstance(values.dtype, pd.ArrowDtype) else pa.binary()
    arr = pa.array(values.array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_binary())
    valid = np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)
    present = arr.drop_null()
    lengths = set(pc.unique(pc.binary_length(present)).to_pylist()) if len(present) else set()
    if len(lengths) > 1:
        raise IdentifierDataError("bad_type", f"column {name}: Bloom filters of different lengths in one column")
    length = lengths.pop() if lengths else 0
    data = np.frombuffer(_crypto.Packed.from_arrow(present).data, dtype=np.uint8).reshape(len(present), length)
    out = np.empty_like(data)
    if length:
        perm = _crypto.keyed_permutation(hub.secret, _HUB_BLOOM_LABEL + f"{name}/{8 * length}".encode("ascii"), 8 * length)
        source = perm if inverse else np.argsort(perm)  # output bit q takes input bit source[q]
        for a in range(0, len(data), _PERMUTE_CHUNK):
            bits = np.unpackbits(data[a : a + _PERMUTE_CHUNK], axis=1)
            out[a : a + _PERMUTE_CHUNK] = np.packbits(bits[:, source], axis=1)
    n = len(valid)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.where(valid, length, 0), out=offsets[1:])
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    result = pa.Array.from_buffers(pa.large_binary(), n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(out.tobytes())],
                                   null_count=n - len(present)).cast(typ)
    return pd.Series(result, index=values.index, dtype=pd.ArrowDtype(typ), name=values.name)


def hub_encode(encodings: pd.DataFrame, hub: KeySet | PurposeKey, *, inverse: bool = False) -> pd.DataFrame:
    """The hub-only layer over an encodings frame (module docstring): every ``*_hash`` column through
    AES-256 under the ``linkage_hub`` key, every Bloom column's bits permuted by it. ``inverse`` takes
    the layer off (for re-keying). Other columns (source keys, bit counts, row numbers) are unchanged."""
    key = resolve_key(hub, HUB_PURPOSE)  # type: ignore[arg-type]
    token_key = _token_key(key)
    out = encodings.copy()
    for col in encodings.columns:
        if col.endswith("_hash"):
            out[col] = _prp_tokens(encodings[col], token_key, inverse, col)
        elif col in BLOOM_COLUMNS:
            out[col] = _permute_blooms(encodings[col], key, col, inverse)
    out.attrs = dict(encodings.attrs)
    return out


def hub_rekey(encodings: pd.DataFrame, old: PurposeKey | None, new: PurposeKey) -> pd.DataFrame:
    """Encodings under hub key ``old`` (None: single-keyed, written before the hub layer existed) moved
    under ``new``: how a rotation of ``linkage_hub`` re-encodes the linkage area."""
    base = encodings if old is None else hub_encode(encodings, old, inverse=True)
    return hub_encode(base, new)


def hub_label_version(label: str | None) -> int | None:
    """The version in a ``linkage_hub/v<version>/<key_id>`` label (None for None)."""
    if not label:
        return None
    parts = label.split("/")
    if len(parts) != 3 or parts[0] != HUB_PURPOSE or not parts[1].startswith("v") or not parts[1][1:].isdigit():
        raise IdentifierDataError("key_mismatch", f"an encodings file names hub key {label[:60]!r}, not a linkage_hub label")
    return int(parts[1][1:])


def rekey_encodings_file(path: Any, keyset: KeySet) -> bool:
    """Bring one encodings parquet file of the linkage area under the current ``linkage_hub`` key.

    Files record the hub key label in their metadata (``key_linkage_hub``); a file without it was written
    before the hub layer existed (single-keyed) and gets the layer now. Rewritten atomically (0600) only
    when the label differs; returns whether it was.
    """
    import pyarrow.parquet as pq

    from data_sharing._files import write_private_file

    current = keyset.purpose_key(HUB_PURPOSE)
    table = pq.read_table(path)
    meta = dict(table.schema.metadata or {})
    raw_label = meta.get(HUB_KEY_METADATA.encode())
    label = raw_label.decode() if raw_label else None
    if label == current.label:
        return False
    version = hub_label_version(label)
    old = None if version is None else keyset.purpose_key(HUB_PURPOSE, version)
    if old is not None and old.label != label:
        raise IdentifierDataError("key_mismatch", f"{path}: its hub key {label} is not in this key set")
    frame = hub_rekey(table.to_pandas(types_mapper=pd.ArrowDtype), old, current)
    out = pa.Table.from_pandas(frame, preserve_index=False)
    meta.pop(b"pandas", None)
    meta[HUB_KEY_METADATA.encode()] = current.label.encode()
    out = out.replace_schema_metadata({**(out.schema.metadata or {}), **meta})
    sink = pa.BufferOutputStream()
    pq.write_table(out, sink)
    write_private_file(path, sink.getvalue().to_pybytes(), overwrite=True)
    return True


# ----------------------------------------------------------------------------------------------
# The recipe
# ----------------------------------------------------------------------------------------------


def _column_for(contract: ExtractContract, field: str) -> str | None:
    for col, fld in contract.linkage_columns.items():
        if fld == field:
            return col
    return None


class _Encoder:
    """The encodings of one extract, column by column: ``out`` keeps the insertion order (the output's)."""

    def __init__(self, frame: pd.DataFrame, contract: ExtractContract, secret: bytes) -> None:
        self.frame = frame
        self.contract = contract
        self.secret = secret
        self.null_str = pa.nulls(len(frame), pa.string())
        self.out: dict[str, pa.Array] = {}

    def raw(self, fld: str) -> pa.Array | None:
        """The extract's column for linkage field ``fld`` as Arrow strings (None when it has none)."""
        col = _column_for(self.contract, fld)
        if col is None or col not in self.frame.columns:
            return None
        return to_arrow_strings(self.frame[col], what=f"column {col}")

    def h(self, arr: pa.Array | None, domain: str) -> pa.Array:
        return self.null_str if arr is None else _hash_values(arr, self.secret, domain)

    def comp(self, name: str, *arrays: pa.Array | None) -> None:
        """A composite (null unless every part is present)."""
        self.out[name] = self.null_str if any(a is None for a in arrays) else self.h(_join(*arrays), name.removesuffix("_hash"))  # type: ignore[arg-type]


def _encode_identifiers(enc: _Encoder, keys: KeySet | PurposeKey) -> PurposeKey | None:
    """Identifiers -> ``id_token`` (+ ``source_key`` at the hub); the pseudonym key when at the hub."""
    contract, frame, out = enc.contract, enc.frame, enc.out
    token_names = key_column_names(contract, "id_token")
    key_names = key_column_names(contract, "source_key")
    pseud = keys.purpose_key("pseudonym") if isinstance(keys, KeySet) else None
    for col, name in token_names.items():
        if col not in frame.columns:
            if contract.columns[col].required:
                raise IdentifierDataError("missing_column", f"{contract.agency}/{contract.extract}: id column {col} is missing")
            out[name] = enc.null_str
            if pseud is not None:
                out[key_names[col]] = enc.null_str
            continue
        packed, valid = _normalised_messages(frame[col], col)
        prefix = _id_prefix(contract.agency, str(contract.columns[col].id_type))
        if pseud is not None:
            both = _crypto.hmac_sha256_batch(enc.secret, packed, prefix=prefix, chain_key=pseud.secret)
            half = len(both) // 2
            out[name] = _crypto.digests_to_hex_array(both[:half], valid)
            out[key_names[col]] = _crypto.digests_to_hex_array(both[half:], valid)
        else:
            digests = _crypto.hmac_sha256_batch(enc.secret, packed, prefix=prefix)
            out[name] = _crypto.digests_to_hex_array(digests, valid)
    return pseud


def _encode_names(enc: _Encoder) -> tuple[pa.Array | None, pa.Array | None, pa.Array | None, pa.Array | None]:
    """The name hashes; (first, first initial, middle, last) normalised, for composites and Bloom filters."""
    out, h = enc.out, enc.h
    first_raw = enc.raw("first_name")
    first = None if first_raw is None else compact_core(name_core(first_raw))
    first_initial = None if first is None else pc.utf8_slice_codeunits(first, 0, 1)
    out["first_name_hash"] = h(first, "first_name")
    out["first_name_prefix3_hash"] = h(None if first is None else pc.utf8_slice_codeunits(first, 0, 3), "first_name_prefix3")
    out["first_name_nysiis_hash"] = h(None if first is None else _map_unique(first, jellyfish.nysiis), "first_name_nysiis")
    out["first_initial_hash"] = h(first_initial, "first_initial")
    out["first_name_canonical_hash"] = h(None if first is None else _map_unique(first, canonical_first_name), "first_name")

    middle_raw = enc.raw("middle_name")
    middle = None if middle_raw is None else compact_core(name_core(middle_raw))
    out["middle_name_hash"] = h(middle, "middle_name")
    out["middle_initial_hash"] = h(None if middle is None else pc.utf8_slice_codeunits(middle, 0, 1), "first_initial")
    out["middle_name_as_first_hash"] = h(middle, "first_name")

    last_raw = enc.raw("last_name")
    surname = None if last_raw is None else surname_core(last_raw)
    last = None if surname is None else surname["compact"].combine_chunks()
    out["last_name_hash"] = h(last, "last_name")
    out["last_name_part1_hash"] = h(None if surname is None else surname["first_part"].combine_chunks(), "last_name")
    out["last_name_part2_hash"] = h(None if surname is None else surname["last_part"].combine_chunks(), "last_name")
    out["last_name_prefix3_hash"] = h(None if last is None else pc.utf8_slice_codeunits(last, 0, 3), "last_name_prefix3")
    out["last_name_nysiis_hash"] = h(None if last is None else _map_unique(last, jellyfish.nysiis), "last_name_nysiis")
    out["last_name_soundex_hash"] = h(None if last is None else _map_unique(last, jellyfish.soundex), "last_name_soundex")
    out["last_name_as_first_hash"] = h(None if last_raw is None else compact_core(name_core(last_raw)), "first_name")
    return first, first_initial, middle, last


def _encode_birth_date(enc: _Encoder) -> tuple[pa.Array | None, pa.Array | None]:
    """The birth date hashes (the date, its day-month swap and its parts); (ISO date, year) for composites."""
    out, h, frame = enc.out, enc.h, enc.frame
    dob_col = _column_for(enc.contract, "birth_date")
    parts = None
    if dob_col is not None and dob_col in frame.columns:
        parts = date_parts_core(date_core(frame[dob_col], what=f"column {dob_col}"))
    iso = None if parts is None else parts["iso"].combine_chunks()
    out["birth_date_hash"] = h(iso, "birth_date")
    out["birth_date_swapped_hash"] = h(None if parts is None else parts["swapped"].combine_chunks(), "birth_date")
    year = None if parts is None else parts["year"].combine_chunks()
    out["birth_year_hash"] = h(year, "birth_year")
    out["birth_month_hash"] = h(None if parts is None else parts["month"].combine_chunks(), "birth_month")
    out["birth_day_hash"] = h(None if parts is None else parts["day"].combine_chunks(), "birth_day")
    return iso, year


def encode_for_linkage(
    frame: pd.DataFrame,
    contract: ExtractContract,
    keys: KeySet | PurposeKey,
    *,
    blooms: Sequence[BloomSpec] = DEFAULT_BLOOMS,
) -> pd.DataFrame:
    """The linkage encodings of an extract (columns in the module docstring), index as the input.

    ``keys`` is the hub's :class:`~data_sharing.keys.KeySet` (adds ``source_key``) or, at an agency
    tokenizing at source, its linkage :class:`~data_sharing.keys.PurposeKey`. Every column is
    present whatever the contract holds (null where the extract lacks the field), so frames of all
    agencies concatenate. ``attrs`` records the key labels and the encoding version.
    """
    link = resolve_key(keys, "linkage")
    n = len(frame)
    enc = _Encoder(frame, contract, link.secret)
    out, h = enc.out, enc.h

    pseud = _encode_identifiers(enc, keys)
    out["linkage_key_id"] = pa.array(np.full(n, link.key_id, dtype=object), type=pa.string())
    first, first_initial, middle, last = _encode_names(enc)
    iso, year = _encode_birth_date(enc)

    # Sex, zip, address.
    sex_raw = enc.raw("sex")
    out["sex_hash"] = h(None if sex_raw is None else sex_core(sex_raw), "sex")
    zip_raw = enc.raw("zip")
    out["zip_hash"] = h(None if zip_raw is None else zip_core(zip_raw), "zip")
    addr_raw = enc.raw("street_address")
    address = None if addr_raw is None else address_core(addr_raw)
    out["street_address_hash"] = h(address, "street_address")

    # Composites (null unless every part is present).
    enc.comp("last_name_birth_date_hash", last, iso)
    enc.comp("first_name_birth_date_hash", first, iso)
    enc.comp("first_initial_last_name_birth_year_hash", first_initial, last, year)

    # Bloom filters.
    normalised = {"first_name": first, "middle_name": middle, "last_name": last, "street_address": address}
    for spec in blooms:
        arrays = [a for a in (normalised[f] for f in spec.fields) if a is not None]
        blooms_arr, bits = _bloom(arrays, n, link.secret, spec)
        out[spec.name] = blooms_arr
        out[f"{spec.name}_bits"] = bits

    result = pd.DataFrame({name: pd.Series(arr, index=frame.index, dtype=pd.ArrowDtype(arr.type)) for name, arr in out.items()})
    labels = {"linkage": link.label}
    if pseud is not None:
        labels["pseudonym"] = pseud.label
    result.attrs.update(keys=labels, encoding_version=ENCODING_VERSION, agency=contract.agency, extract=contract.extract)
    return result
