"""Disclosure control for one indicator-period table (SPEC, "Disclosure rules").

The cabinet publishes ``indicator_values`` one indicator and period at a time. This module decides which
rows of one such table are withheld and why:

1. **Primary.** A row is suppressed if ``denominator < k`` (``small_denominator``), else if ``numerator``
   or ``denominator - numerator`` is between 1 and ``k - 1`` (``small_count``). Zero is not small.
2. **Complementary.** No suppressed numerator or denominator may be derivable *exactly* from the
   published rows by any combination of the exact-sum relations (:func:`build_relations`):

   a. for the city and for each school, the groups of a (non-overlapping) dimension add up to the
      school's ``all`` row;
   b. when the schools add up to the city (every indicator but ``chronic_absence``), for every
      (non-overlapping) dimension and group -- ``all``/``all`` included -- the schools' rows add up to
      the city (``ALL``) row.

   A group with denominator 0 has no row: a missing member of a relation is a *known zero*, i.e.
   published, never an unknown.

Public API
----------
``protect_table(table, *, schools_add_up=None, overlapping_dimensions={"program"})``
    returns a copy with ``suppressed`` (bool) and ``suppression_reason`` (``small_denominator`` |
    ``small_count`` | ``complementary`` | None). Numerator, denominator (and ``rate`` if present) are
    left **untouched** so the warehouse can audit the decision; :func:`redact` nulls them for
    publication.
``build_relations(table, ...)``
    the exact-sum relations as :class:`Relation` objects (index labels of the total row and its parts).
``derivable_cells(table, ...)``
    index labels of suppressed rows whose numerator or denominator is exactly derivable from the
    published rows. Needs only the table's keys and its ``suppressed`` column (values may be nulled).
``primary_reasons(table)``
    rule 1 alone.

Method
------
Numerators and denominators obey the same relations, and a row is either wholly published or wholly
suppressed, so both systems have the same matrix ``A`` (one row per relation: +1 on the total, -1 on
each part) and the same unknown columns ``U`` (the suppressed rows). A suppressed cell ``x_i`` is exactly
derivable iff ``e_i`` lies in the row space of ``A[:, U]``, whatever the published values are. The same
holds for ``denominator - numerator`` and for any mix of the two systems (the combined matrix is
block-diagonal ``[[A, 0], [0, A]]``), so one test covers all three.

The test is exact: sparse Gauss-Jordan elimination over the rationals (Python ``int``, promoted to
``fractions.Fraction`` only when a pivot does not divide; no floating point). Pivots are taken only in
unknown columns; published columns are carried along in the same rows. After elimination

* ``x_i`` is derivable iff ``i`` is a pivot and its pivot row has no other unknown entry
  (the row then reads ``x_i = combination of published cells``);
* rows without a pivot involve published cells only (``Z`` rows).

Suppressing one more published cell ``j`` makes a derivable ``x_i`` underivable iff ``j`` appears in
``x_i``'s pivot row and in no ``Z`` row (otherwise ``j`` would itself be derivable and the old
certificate survives). Suppressing a cell never makes another suppressed cell derivable, so the
derivable set only shrinks as cells are added, and the incremental update is a single pivot.

Rows are eliminated local relations first (short rows), the long school-to-city relations last, which
keeps fill-in to the few school-to-city rows: a 40-school table takes about 10 ms, a 400-school one
under 0.1 s (``bench/bench_disclosure.py``, ``docs/benchmarks.md``).

Complementary suppression follows the SPEC's reference method:

* while some relation has exactly one suppressed member, suppress its published part with the smallest
  denominator (ties: smallest numerator, school id, group, then dimension and row position); the total
  is taken only when no part is published (a one-part relation). Among several such relations the one
  whose candidate sorts first goes first.
* then, while a suppressed cell is still derivable (taken in the same order), suppress one more cell:
  the first, in the same order, that is a member of a relation holding the derivable cell and makes it
  underivable; failing that, the first cell of its certificate that does; failing that (no single cell
  can), the first member of a relation holding it, and the loop goes on.

Known limitation (also true of the SPEC's definition): only linear derivation is considered. Bounds
(counts are >= 0, a present row has denominator >= 1, numerator <= denominator) can still narrow a
suppressed value, e.g. two suppressed rows whose denominators are known to sum to 2 are both 1.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Hashable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
import pandas as pd

CITY = "ALL"
"""``school_id`` of the city-wide rows."""
ALL = "all"
"""``dimension`` and ``group`` of a school's (or the city's) total row."""
DEFAULT_OVERLAPPING: frozenset[str] = frozenset({"program"})
"""Dimensions whose groups overlap; they are never part of a sum relation."""
NON_ADDITIVE_INDICATORS: frozenset[str] = frozenset({"chronic_absence"})
"""Indicators whose schools do not add up to the city (a student counts at every school attended)."""

SMALL_DENOMINATOR = "small_denominator"
SMALL_COUNT = "small_count"
COMPLEMENTARY = "complementary"

KEY_COLUMNS = ("school_id", "dimension", "group")
REQUIRED_COLUMNS = (*KEY_COLUMNS, "numerator", "denominator", "k")

Number = int | Fraction


class DisclosureError(ValueError):
    """The table cannot be protected as given (malformed, or a claimed sum relation does not hold)."""


@dataclass(frozen=True)
class Relation:
    """An exact sum: the rows labelled ``parts`` add up to the row labelled ``total``.

    Labels are the table's index labels. ``kind`` is ``"groups"`` (a dimension's groups add up to the
    ``all`` row of ``school_id``) or ``"schools"`` (the schools' rows for ``dimension``/``group`` add up
    to the city row). Members absent from the table are known zeros and are not listed.
    """

    kind: Literal["groups", "schools"]
    school_id: str
    dimension: str
    group: str
    total: Hashable
    parts: tuple[Hashable, ...]

    @property
    def members(self) -> tuple[Hashable, ...]:
        return (self.total, *self.parts)


# --------------------------------------------------------------------------------------------------
# Input checks and rule 1


def _check_keys(table: pd.DataFrame, *, values: bool) -> None:
    needed = REQUIRED_COLUMNS if values else KEY_COLUMNS
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise DisclosureError(f"table lacks column(s) {missing}")
    if not table.index.is_unique:
        raise DisclosureError("table index must be unique (row labels identify cells)")
    for col in ("indicator", "period"):
        if col in table.columns and table[col].nunique(dropna=False) > 1:
            raise DisclosureError(f"one indicator and period at a time: column {col!r} has several values")
    keys = table[list(KEY_COLUMNS)]
    if keys.isna().any().any():
        raise DisclosureError("school_id, dimension and group must not be blank")
    dup = keys.astype(str).duplicated(keep=False)
    if dup.any():
        first = table.loc[dup, list(KEY_COLUMNS)].iloc[0].tolist()
        raise DisclosureError(f"duplicate row for school/dimension/group {first}")
    bad_all = (table["dimension"] == ALL) != (table["group"] == ALL)
    if bad_all.any():
        first = table.loc[bad_all, list(KEY_COLUMNS)].iloc[0].tolist()
        raise DisclosureError(f"dimension 'all' goes with group 'all' and only with it: {first}")


def _int_array(table: pd.DataFrame, col: str) -> np.ndarray:
    s = table[col]
    if s.isna().any():
        raise DisclosureError(f"column {col!r} has blanks; protect the table before nulling values")
    arr = s.to_numpy()
    as_int = arr.astype(np.int64)
    if not np.array_equal(as_int, arr.astype(float)):
        raise DisclosureError(f"column {col!r} must hold integers")
    return as_int


def _values(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = _int_array(table, "numerator")
    d = _int_array(table, "denominator")
    k = _int_array(table, "k")
    if (k < 1).any():
        raise DisclosureError("k (minimum cell size) must be at least 1")
    if (d < 1).any():
        raise DisclosureError("rows exist only for denominators of at least 1")
    if ((n < 0) | (n > d)).any():
        raise DisclosureError("numerator must lie between 0 and the denominator")
    return n, d, k


def _primary(n: np.ndarray, d: np.ndarray, k: np.ndarray) -> list[str | None]:
    small_den = d < k
    f = d - n
    small_cnt = ((n >= 1) & (n <= k - 1)) | ((f >= 1) & (f <= k - 1))
    return [
        SMALL_DENOMINATOR if sd else SMALL_COUNT if sc else None
        for sd, sc in zip(small_den.tolist(), small_cnt.tolist(), strict=True)
    ]


def primary_reasons(table: pd.DataFrame) -> pd.Series:
    """Rule 1 alone: ``small_denominator`` / ``small_count`` / None for every row."""
    _check_keys(table, values=True)
    n, d, k = _values(table)
    return pd.Series(_primary(n, d, k), index=table.index, dtype=object, name="suppression_reason")


# --------------------------------------------------------------------------------------------------
# Relations


def _resolve_add_up(table: pd.DataFrame, schools_add_up: bool | None) -> bool:
    if schools_add_up is not None:
        return bool(schools_add_up)
    if "indicator" in table.columns and len(table):
        return str(table["indicator"].iloc[0]) not in NON_ADDITIVE_INDICATORS
    return True  # the conservative choice: more relations can only mean more protection


def _relations_by_position(
    table: pd.DataFrame, schools_add_up: bool, overlapping: Collection[str]
) -> list[tuple[str, str, str, str, int, list[int]]]:
    """(kind, school, dimension, group, total position, part positions), deterministic order."""
    schools = table["school_id"].astype(str).tolist()
    dims = table["dimension"].astype(str).tolist()
    groups = table["group"].astype(str).tolist()
    where: dict[tuple[str, str, str], int] = {}
    by_school_dim: dict[tuple[str, str], list[int]] = {}
    by_dim_group: dict[tuple[str, str], list[int]] = {}
    for pos, (s, dim, g) in enumerate(zip(schools, dims, groups, strict=True)):
        where[(s, dim, g)] = pos
        if dim in overlapping:
            continue
        if dim != ALL:
            by_school_dim.setdefault((s, dim), []).append(pos)
        if s != CITY:
            by_dim_group.setdefault((dim, g), []).append(pos)

    out: list[tuple[str, str, str, str, int, list[int]]] = []
    for (s, dim), parts in sorted(by_school_dim.items(), key=lambda kv: (kv[0][0] != CITY, kv[0])):
        total = where.get((s, ALL, ALL))
        if total is None:
            raise DisclosureError(f"school {s!r} has {dim!r} rows but no 'all' row")
        out.append(("groups", s, dim, ALL, total, sorted(parts, key=lambda p: groups[p])))
    if schools_add_up:
        for (dim, g), parts in sorted(by_dim_group.items()):
            total = where.get((CITY, dim, g))
            if total is None:
                raise DisclosureError(
                    f"schools have {dim!r}/{g!r} rows but the city has none; do the schools add up?"
                )
            out.append(("schools", CITY, dim, g, total, sorted(parts, key=lambda p: schools[p])))
    return out


def build_relations(
    table: pd.DataFrame,
    *,
    schools_add_up: bool | None = None,
    overlapping_dimensions: Collection[str] = DEFAULT_OVERLAPPING,
) -> list[Relation]:
    """Every exact-sum relation of one indicator-period table, by index label.

    ``schools_add_up=None`` reads the ``indicator`` column when there is one (False for
    ``chronic_absence``) and otherwise assumes True. Only the key columns are read. Relations without a
    present part are omitted (all parts are known zeros). Raises :class:`DisclosureError` when a
    relation's total row is missing although parts are present (rows exist for every denominator >= 1).
    """
    _check_keys(table, values=False)
    add_up = _resolve_add_up(table, schools_add_up)
    labels = table.index
    return [
        Relation(kind, s, dim, g, labels[t], tuple(labels[p] for p in parts))  # type: ignore[arg-type]
        for kind, s, dim, g, t, parts in _relations_by_position(table, add_up, frozenset(overlapping_dimensions))
    ]


# --------------------------------------------------------------------------------------------------
# Exact elimination


class _Elimination:
    """Sparse Gauss-Jordan elimination of the relation matrix, pivoting in unknown columns only.

    ``rows[r]`` maps column -> nonzero coefficient (int or Fraction). ``col_rows[c]`` is the set of rows
    with a nonzero in column ``c``. ``ucount[r]`` counts the unknown columns of row ``r``.
    """

    def __init__(self, n_cols: int, relations: list[tuple[int, list[int]]], unknown: list[bool]) -> None:
        self.unknown = list(unknown)
        self.rows: list[dict[int, Number]] = []
        self.col_rows: list[set[int]] = [set() for _ in range(n_cols)]
        for r, (total, parts) in enumerate(relations):
            row: dict[int, Number] = {total: 1}
            for p in parts:
                row[p] = -1
            self.rows.append(row)
            for c in row:
                self.col_rows[c].add(r)
        self.ucount = [sum(1 for c in row if self.unknown[c]) for row in self.rows]
        self.pivot_col: list[int | None] = [None] * len(self.rows)
        self.pivot_row: dict[int, int] = {}
        self.derivable: set[int] = set()
        # Short (local) relations first: their pivots spill only into the long school-to-city rows.
        for r in sorted(range(len(self.rows)), key=lambda r: (len(self.rows[r]), r)):
            if self.ucount[r] > 0:
                self._pivot(r, self._choose_column(r))

    # -- queries ------------------------------------------------------------------------------
    def pivot_row_of(self, c: int) -> dict[int, Number]:
        return self.rows[self.pivot_row[c]]

    def in_zero_row(self, c: int) -> bool:
        """Does a row without an unknown (a relation among published cells only) involve ``c``?"""
        return any(self.pivot_col[r] is None for r in self.col_rows[c])

    # -- updates ------------------------------------------------------------------------------
    def add_unknown(self, c: int) -> None:
        if self.unknown[c]:
            return
        self.unknown[c] = True
        for r in self.col_rows[c]:
            self.ucount[r] += 1
            self._refresh(r)
        zero_rows = [r for r in self.col_rows[c] if self.pivot_col[r] is None]
        if zero_rows:
            self._pivot(min(zero_rows, key=lambda r: (len(self.rows[r]), r)), c)

    def _choose_column(self, r: int) -> int:
        best: tuple[int, int, int] | None = None
        for c, v in self.rows[r].items():
            if self.unknown[c]:
                cand = (0 if abs(v) == 1 else 1, len(self.col_rows[c]), c)
                if best is None or cand < best:
                    best = cand
        assert best is not None
        return best[2]

    def _pivot(self, r: int, c: int) -> None:
        self.pivot_col[r] = c
        self.pivot_row[c] = r
        for s in list(self.col_rows[c]):
            if s != r:
                self._eliminate(s, r, c)
                self._refresh(s)
        self._refresh(r)

    def _eliminate(self, s: int, r: int, c: int) -> None:
        """Row s -= (s[c] / r[c]) * row r, exactly."""
        rs, rr = self.rows[s], self.rows[r]
        num, den = rs[c], rr[c]
        factor: Number = Fraction(num) / den if num % den else num // den  # type: ignore[operator]
        unknown, col_rows = self.unknown, self.col_rows
        count = self.ucount[s]
        for col, v in rr.items():
            old = rs.get(col)
            new = (0 if old is None else old) - factor * v
            if new == 0:
                if old is not None:
                    del rs[col]
                    col_rows[col].discard(s)
                    if unknown[col]:
                        count -= 1
            else:
                if isinstance(new, Fraction) and new.denominator == 1:
                    new = new.numerator
                rs[col] = new
                if old is None:
                    col_rows[col].add(s)
                    if unknown[col]:
                        count += 1
        self.ucount[s] = count

    def _refresh(self, r: int) -> None:
        c = self.pivot_col[r]
        if c is None:
            return
        if self.ucount[r] == 1:
            self.derivable.add(c)
        else:
            self.derivable.discard(c)


def _derivable_positions(
    n_cols: int, relations: list[tuple[int, list[int]]], suppressed: list[bool]
) -> set[int]:
    return set(_Elimination(n_cols, relations, suppressed).derivable)


def derivable_cells(
    table: pd.DataFrame,
    *,
    schools_add_up: bool | None = None,
    overlapping_dimensions: Collection[str] = DEFAULT_OVERLAPPING,
    suppressed: Iterable[bool] | None = None,
) -> set[Hashable]:
    """Index labels of suppressed rows whose numerator or denominator is exactly derivable.

    The suppression pattern is the table's ``suppressed`` column unless ``suppressed`` is given.
    Numerators, denominators and rates are not read, so a redacted (nulled) table works. By the
    argument in the module docstring a numerator is derivable iff its denominator is (and iff
    ``denominator - numerator`` is), so one set answers all three.
    """
    _check_keys(table, values=False)
    mask = table["suppressed"].tolist() if suppressed is None else list(suppressed)
    if len(mask) != len(table):
        raise DisclosureError("suppressed has the wrong length")
    mask = [bool(m) for m in mask]
    add_up = _resolve_add_up(table, schools_add_up)
    rels = _relations_by_position(table, add_up, frozenset(overlapping_dimensions))
    positions = _derivable_positions(len(table), [(t, p) for *_, t, p in rels], mask)
    return {table.index[p] for p in sorted(positions)}


# --------------------------------------------------------------------------------------------------
# Protection


def _complementary(
    n_cols: int,
    relations: list[tuple[int, list[int]]],
    suppressed: list[bool],
    rank: list[int],
) -> list[bool]:
    """Add complementary suppressions to ``suppressed`` (a copy is returned)."""
    sup = list(suppressed)
    rel_of: list[list[int]] = [[] for _ in range(n_cols)]
    for ri, (total, parts) in enumerate(relations):
        for c in (total, *parts):
            rel_of[c].append(ri)

    # Phase 1: relations with exactly one suppressed member.
    count = [sum(sup[c] for c in (t, *p)) for t, p in relations]
    ordered_parts = [sorted(p, key=rank.__getitem__) for _, p in relations]
    ptr = [0] * len(relations)

    def candidate(ri: int) -> int | None:
        parts = ordered_parts[ri]
        i = ptr[ri]
        while i < len(parts) and sup[parts[i]]:
            i += 1
        ptr[ri] = i
        if i < len(parts):
            return parts[i]
        total = relations[ri][0]
        return None if sup[total] else total

    heap: list[tuple[int, int]] = []
    for ri in range(len(relations)):
        if count[ri] == 1:
            cand = candidate(ri)
            if cand is not None:
                heap.append((rank[cand], ri))
    heapq.heapify(heap)
    while heap:
        key, ri = heapq.heappop(heap)
        if count[ri] != 1:
            continue
        cand = candidate(ri)
        if cand is None:
            continue
        if rank[cand] != key:
            heapq.heappush(heap, (rank[cand], ri))
            continue
        sup[cand] = True
        for rj in rel_of[cand]:
            count[rj] += 1
            if count[rj] == 1:
                c2 = candidate(rj)
                if c2 is not None:
                    heapq.heappush(heap, (rank[c2], rj))

    # Phase 2: cells still derivable by combining relations.
    elim = _Elimination(n_cols, relations, sup)
    while elim.derivable:
        i = min(elim.derivable, key=rank.__getitem__)
        certificate = [c for c in elim.pivot_row_of(i) if not elim.unknown[c]]
        holding = sorted(
            {c for ri in rel_of[i] for c in (relations[ri][0], *relations[ri][1]) if not sup[c]},
            key=rank.__getitem__,
        )
        in_cert = set(certificate)
        effective = [c for c in sorted(certificate, key=rank.__getitem__) if not elim.in_zero_row(c)]
        effective_holding = [c for c in holding if c in in_cert and not elim.in_zero_row(c)]
        choice_list = effective_holding or effective or holding or sorted(certificate, key=rank.__getitem__)
        if not choice_list:  # unreachable for consistent data with denominators >= 1
            raise DisclosureError("cannot protect: a suppressed cell is pinned by the relations alone")
        j = choice_list[0]
        sup[j] = True
        elim.add_unknown(j)
    return sup


def _rank(table: pd.DataFrame, n: np.ndarray, d: np.ndarray) -> list[int]:
    """Position of every row in the tie-break order: denominator, numerator, school, group, dimension."""
    keys = list(
        zip(
            d.tolist(),
            n.tolist(),
            table["school_id"].astype(str).tolist(),
            table["group"].astype(str).tolist(),
            table["dimension"].astype(str).tolist(),
            range(len(table)),
            strict=True,
        )
    )
    order = sorted(range(len(keys)), key=keys.__getitem__)
    rank = [0] * len(keys)
    for pos, row in enumerate(order):
        rank[row] = pos
    return rank


def protect_table(
    table: pd.DataFrame,
    *,
    schools_add_up: bool | None = None,
    overlapping_dimensions: Collection[str] = DEFAULT_OVERLAPPING,
    check_sums: bool = True,
) -> pd.DataFrame:
    """Apply the SPEC's disclosure rules to one indicator-period table.

    ``table`` has one row per school (or ``ALL``), dimension and group with ``school_id``,
    ``dimension``, ``group``, ``numerator``, ``denominator`` (integers, denominator >= 1) and ``k`` (the
    minimum cell size for that row). Other columns are carried through. ``schools_add_up`` says whether
    the schools add up to the city (False for ``chronic_absence``; ``None`` reads the ``indicator``
    column, else True). Groups of ``overlapping_dimensions`` are never part of a relation.

    Returns a copy with ``suppressed`` (bool) and ``suppression_reason`` (``small_denominator``,
    ``small_count``, ``complementary`` or None). Values are **not** nulled; use :func:`redact`.

    With ``check_sums`` (default) every relation must hold exactly on both numerators and denominators,
    otherwise :class:`DisclosureError` is raised: a relation that does not hold means the flags are
    wrong for this table (or the aggregation is), and the protection would rest on a false premise.
    """
    _check_keys(table, values=True)
    n, d, k = _values(table)
    add_up = _resolve_add_up(table, schools_add_up)
    overlapping = frozenset(overlapping_dimensions)
    rels = _relations_by_position(table, add_up, overlapping)
    pos_rels = [(t, p) for *_, t, p in rels]
    if check_sums:
        problems = []
        for kind, s, dim, g, t, parts in rels:
            for name, arr in (("numerator", n), ("denominator", d)):
                got = int(arr[parts].sum())
                if got != int(arr[t]):
                    where = f"school {s!r} {dim!r}" if kind == "groups" else f"schools' {dim!r}/{g!r}"
                    problems.append(f"{where}: {name}s of the parts sum to {got}, total is {int(arr[t])}")
        if problems:
            shown = "; ".join(problems[:5])
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise DisclosureError(f"sum relations do not hold: {shown}{more}")

    reasons = _primary(n, d, k)
    primary = [r is not None for r in reasons]
    final = _complementary(len(table), pos_rels, primary, _rank(table, n, d))
    for i, (was, now) in enumerate(zip(primary, final, strict=True)):
        if now and not was:
            reasons[i] = COMPLEMENTARY

    out = table.copy()
    out["suppressed"] = pd.Series(final, index=table.index, dtype=bool)
    out["suppression_reason"] = pd.Series(reasons, index=table.index, dtype=object)
    return out


def redact(protected: pd.DataFrame) -> pd.DataFrame:
    """Null numerator, denominator and rate of suppressed rows (the published form).

    ``numerator``/``denominator`` become nullable ``Int64``; ``rate`` (computed when absent) a float
    at full precision, NaN when suppressed.
    """
    out = protected.copy()
    mask = out["suppressed"].astype(bool)
    num = out["numerator"].astype("Int64")
    den = out["denominator"].astype("Int64")
    out["rate"] = (num.astype("Float64") / den.astype("Float64")).astype(float)
    out["numerator"] = num.mask(mask)
    out["denominator"] = den.mask(mask)
    out.loc[mask, "rate"] = np.nan
    return out
