"""String primitives of the error model: typos, accents and case, variant tables (whole numpy object columns)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from synthetic.names import NICKNAMES, SPELLING_GROUPS

_ACCENTED = "ÁÉÍÓÚÜÑÀÈÌÒÙÂÊÎÔÛÄËÏÖÇÃÕáéíóúüñàèìòùâêîôûäëïöçãõ"
_PLAIN = "AEIOUUNAEIOUAEIOUAEIOCAOaeiouunaeiouaeiouaeiocao"
_ASCII_TABLE = str.maketrans(_ACCENTED, _PLAIN)
_LETTERS = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8).astype(np.uint32)
# code point -> lower-case ASCII letter it folds to (Latin-1 and Latin Extended-A), for typos that must stay
# visible after an agency strips accents and changes case
_FOLD = np.arange(0x250, dtype=np.uint32)
_FOLD[[ord(c) for c in _ACCENTED]] = [ord(c) for c in _PLAIN]
_FOLD[65:91] += 32


def _obj(values: np.ndarray | list) -> np.ndarray:
    return np.asarray(values, dtype=object)


def typo(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One keyboard slip per value: substitution, transposition, deletion or a doubled letter.

    Always returns a different, non-empty string.
    """
    vals = _obj(values)
    n = len(vals)
    if n == 0:
        return vals.copy()
    u = vals.astype(str)
    w = u.dtype.itemsize // 4
    codes = np.zeros((n, w + 2), dtype=np.uint32)
    codes[:, :w] = u.view(np.uint32).reshape(n, w)
    length = (codes != 0).sum(axis=1)
    kind = rng.choice(4, size=n, p=[0.4, 0.25, 0.2, 0.15])
    # A letter (never a space, hyphen or apostrophe), rarely the first one.
    is_letter = ((codes >= 65) & (codes <= 90)) | ((codes >= 97) & (codes <= 122)) | ((codes >= 192) & (codes < 0x250))
    is_letter[:, w:] = False
    keys = rng.random((n, w + 2)) * is_letter
    keys[:, 0] *= 0.1
    pos = keys.argmax(axis=1).astype(np.int64)
    rows = np.arange(n)
    cols = np.arange(w + 2)[None, :]
    at = codes[rows, pos]
    nxt = codes[rows, np.minimum(pos + 1, w + 1)]
    nxt_letter = is_letter[rows, np.minimum(pos + 1, w + 1)]
    transpose = (kind == 1) & (pos + 1 < length) & (at != nxt) & nxt_letter
    delete = (kind == 2) & (length >= 4)
    double = (kind == 3) & (length >= 2)
    subst = ~(transpose | delete | double)
    out = codes.copy()
    # substitution: a different letter, keeping the case of the original
    letter = _LETTERS[rng.integers(0, 26, n)]
    is_upper = (at >= 65) & (at <= 90)
    letter = np.where(is_upper, letter - 32, letter)
    at_fold = _FOLD[np.minimum(at, 0x24F)]
    at_fold = np.where(at_fold < 0x250, _FOLD[np.minimum(at_fold, 0x24F)], at_fold)
    same = (letter | 32) == (at_fold | 32)
    letter = np.where(same, np.where(letter % 32 == 26, letter - 1, letter + 1), letter)
    out[rows[subst], pos[subst]] = letter[subst]
    if transpose.any():
        r, p = rows[transpose], pos[transpose]
        out[r, p], out[r, p + 1] = codes[r, p + 1], codes[r, p]
    if delete.any():
        idx = np.minimum(cols + (cols >= pos[delete][:, None]), w + 1)
        out[delete] = np.take_along_axis(codes[delete], idx, axis=1)
    if double.any():
        idx = cols - (cols > pos[double][:, None])
        out[double] = np.take_along_axis(codes[double], idx, axis=1)
    res = np.ascontiguousarray(out).view(f"<U{w + 2}").ravel()
    return res.astype(object)


def strip_accents(values: np.ndarray) -> np.ndarray:
    return pd.Series(_obj(values), dtype=object).str.translate(_ASCII_TABLE).to_numpy(dtype=object)


def upper(values: np.ndarray) -> np.ndarray:
    return pd.Series(_obj(values), dtype=object).str.upper().to_numpy(dtype=object)


def lower(values: np.ndarray) -> np.ndarray:
    return pd.Series(_obj(values), dtype=object).str.lower().to_numpy(dtype=object)


def concat(*parts: np.ndarray | str) -> np.ndarray:
    """Element-wise string concatenation of object arrays and constants."""
    out: Any = None
    for p in parts:
        p = p if isinstance(p, str) else _obj(p)
        out = p if out is None else out + p
    return _obj(out)


class VariantTable:
    """name -> list of alternatives, looked up for whole columns at once."""

    def __init__(self, mapping: dict[str, list[str]]) -> None:
        keys = sorted(mapping)
        self.index = pd.Index(keys)
        counts = np.array([len(mapping[k]) for k in keys])
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.counts = counts
        self.flat = _obj([v for k in keys for v in mapping[k]])

    def lookup(self, names: np.ndarray) -> np.ndarray:
        return self.index.get_indexer(pd.Index(_obj(names)))

    def pick(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        choice = rng.integers(0, self.counts[idx])
        return self.flat[self.starts[idx] + choice]


NICKNAME_TABLE = VariantTable(NICKNAMES)
SPELLING_TABLE = VariantTable({n: [m for m in group if m != n] for group in SPELLING_GROUPS for n in group})


def is_nickname_of(formal: str, written: str) -> bool:
    return written in NICKNAMES.get(formal, [])


def is_spelling_variant_of(formal: str, written: str) -> bool:
    return any(formal in g and written in g and formal != written for g in SPELLING_GROUPS)
