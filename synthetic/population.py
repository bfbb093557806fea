"""The true population of the synthetic city: families, children, parents and their addresses.

Children are grouped into families (siblings share surname and address, a few are twins); each family
has one or two parents born decades earlier. ``children`` is the exact number of children the city
holds: those aged 0-18 on the as-of date and their older siblings who were still school-age inside the
school-year window (the graduation cohorts of the early years; ``is_child`` with ``aged_0_18`` False).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from synthetic import _dates as D
from synthetic.names import (
    ADULT_GIVEN,
    CHILD_GIVEN,
    DIRECTIONS,
    MIDDLE,
    RACE_SHARES,
    STREET_SUFFIX,
    STREET_SUFFIX_WEIGHTS,
    STREET_WORDS,
    SURNAMES,
)
from synthetic.noise import city_errors, city_relations, street_text


def make_ids(numbers: np.ndarray, prefix: str, width: int) -> np.ndarray:
    """``prefix`` + zero-padded numbers, as an object array of strings."""
    if len(numbers) == 0:
        return np.zeros(0, dtype=object)
    digits = np.char.zfill(np.asarray(numbers, dtype=np.int64).astype(str), width).astype(object)
    return (prefix + digits) if prefix else digits


def unique_numbers(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """``n`` distinct integers in ``[lo, hi)``, in random order."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    step = max(2, (hi - lo) // n)
    vals = lo + np.cumsum(rng.integers(1, step, n))
    return rng.permutation(vals)

MIXED_SOURCES = np.array(["HI", "BL", "WH", "AS"], dtype=object)


@dataclass(frozen=True)
class Params:
    children: int
    seed: int
    as_of: int  # day number
    first_sy: int
    last_sy: int

    @property
    def window_start(self) -> int:
        return int(D.sy_start(self.first_sy))

    @property
    def years(self) -> list[int]:
        return list(range(self.first_sy, self.last_sy + 1))


@dataclass
class AddressBook:
    """Address components, one entry per address id."""

    number: np.ndarray
    street: np.ndarray
    suffix: np.ndarray
    unit: np.ndarray
    zip: np.ndarray
    zip_idx: np.ndarray
    u: np.ndarray  # position inside the zip area (drives school catchments)
    text: np.ndarray

    def parts(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        return {"number": self.number[ids], "street": self.street[ids], "suffix": self.suffix[ids],
                "unit": self.unit[ids]}


@dataclass
class Population:
    params: Params
    families: pd.DataFrame
    persons: pd.DataFrame
    book: AddressBook
    fam_addr: np.ndarray  # (F, 3) address ids per slot, -1 unused
    fam_move: np.ndarray  # (F, 2) day of move into slot 1 and 2 (NEVER if none)
    zips: np.ndarray

    def address_at(self, family: np.ndarray, when: np.ndarray) -> np.ndarray:
        """The family's address id on each date (the first address before the family arrived)."""
        family = np.asarray(family)
        when = np.asarray(when)
        slot = (when >= self.fam_move[family, 0]).astype(np.int64) + (when >= self.fam_move[family, 1])
        return self.fam_addr[family, slot]


def _draw_given(rng: np.random.Generator, groups: np.ndarray, sexes: np.ndarray, adult: bool) -> np.ndarray:
    tables = ADULT_GIVEN if adult else CHILD_GIVEN
    out = np.empty(len(groups), dtype=object)
    sex_for_table = np.where(sexes == "X", np.where(rng.random(len(sexes)) < 0.5, "F", "M"), sexes)
    for (g, s), table in tables.items():
        m = (groups == g) & (sex_for_table == s)
        if m.any():
            out[m] = table.draw(rng, int(m.sum()))
    return out


def _name_group(rng: np.random.Generator, race: np.ndarray) -> np.ndarray:
    """The name tables a person's names come from: their group, a random one for two-or-more races."""
    race = np.asarray(race, dtype=object)
    mixed = MIXED_SOURCES[rng.integers(0, len(MIXED_SOURCES), len(race))]
    return np.where(race == "MR", mixed, race).astype(object)


def _draw_surnames(rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
    out = np.empty(len(groups), dtype=object)
    for g, table in SURNAMES.items():
        m = groups == g
        if m.any():
            out[m] = table.draw(rng, int(m.sum()))
    return out


def _family_batch(rng: np.random.Generator, params: Params, size: int, child_min: int) -> pd.DataFrame:
    """Children of ``size`` candidate families (birth order, birth dates), before trimming to the window."""
    k = rng.choice(np.arange(1, 7), size=size, p=[0.33, 0.36, 0.19, 0.08, 0.03, 0.01])
    b1 = rng.integers(child_min - 12 * 365, params.as_of + 1, size=size)
    fam = np.repeat(np.arange(size), k)
    starts = np.concatenate([[0], np.cumsum(k)[:-1]])
    order = np.arange(len(fam)) - np.repeat(starts, k)
    gap = np.round(365.25 * (1.0 + rng.gamma(2.0, 1.1, len(fam)))).astype(np.int64)
    twin = (rng.random(len(fam)) < city_errors().twin_rate) & (order > 0)
    twin[1:] &= ~twin[:-1]  # no triplets
    gap = np.where(twin, 0, gap)
    gap[order == 0] = 0
    cum = np.cumsum(gap)
    cum -= np.repeat(cum[starts], k)
    birth = b1[fam] + cum
    return pd.DataFrame({"fam": fam, "order": order, "birth": birth, "b1": b1[fam]})


class _Families(NamedTuple):
    """The families' frame and the arrays drawn for it (people index these by family)."""

    frame: pd.DataFrame
    race: np.ndarray
    last1: np.ndarray
    last2: np.ndarray
    last_sep: np.ndarray
    arrive: np.ndarray
    leave: np.ndarray


def build_population(params: Params, rng: np.random.Generator) -> Population:
    """Draw the population of ``params`` from ``rng``: each step below draws in a fixed order (seeded output)."""
    kids, b1 = _draw_children(params, rng)
    families = _draw_families(params, rng, b1)
    book, fam_addr, moves, zips = _draw_addresses(params, rng, families)
    persons = _draw_members(params, rng, kids, b1, families.race)
    _draw_names(rng, persons, families)
    _draw_surname_changes(params, rng, persons, families)
    city_relations(persons, rng)  # same-name siblings and namesakes of the city's error profile (none by default)
    return Population(params, families.frame, _order_and_ids(persons), book, fam_addr, moves, zips)


def _draw_children(params: Params, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """Families and their children, until exactly ``children`` (every child the city holds, older
    school-age siblings included); (children, first births)."""
    as_of = params.as_of
    child_min = int(D.from_ymd(np.array([params.first_sy - 20]), np.array([9]), np.array([2]))[0])
    counted_after = int(D.add_years(np.array([as_of]), -19)[0])  # born after this: aged 0-18 on as_of
    batches = []
    counted_total = 0
    fam_offset = 0
    batch_size = max(64, math.ceil(params.children / 1.5))
    while counted_total < params.children:
        b = _family_batch(rng, params, batch_size, child_min)
        b = b[(b.birth >= child_min) & (b.birth <= as_of)].copy()
        b["aged_0_18"] = b.birth > counted_after
        b["counted"] = True
        b["fam"] += fam_offset
        fam_offset += batch_size
        counted_total += int(b.counted.sum())
        batches.append(b)
        batch_size = max(64, math.ceil((params.children - counted_total) / 1.2))
    kids = pd.concat(batches, ignore_index=True)
    cum = np.cumsum(kids.counted.to_numpy())
    # the child that reaches the target; later children of that family that count are dropped, later families too
    cut = int(np.searchsorted(cum, params.children)) if params.children > 0 else -1
    last_fam = kids.fam.iloc[cut] if cut >= 0 else -1
    keep = (kids.fam < last_fam) | ((kids.fam == last_fam) & ((cum <= params.children) | ~kids.counted))
    if params.children == 0:
        keep[:] = False
    kids = kids[keep.to_numpy()].reset_index(drop=True)
    _, fam_new = np.unique(kids.fam.to_numpy(), return_inverse=True)
    kids["fam"] = fam_new
    return kids, kids.groupby("fam").b1.first().to_numpy()


def _draw_families(params: Params, rng: np.random.Generator, b1: np.ndarray) -> _Families:
    """Family attributes: race, poverty, surnames, arrival and departure, the agencies they use."""
    as_of, n_fam = params.as_of, len(b1)
    races = np.array(list(RACE_SHARES), dtype=object)
    race = rng.choice(races, size=n_fam, p=np.array(list(RACE_SHARES.values())))
    pov_shift = pd.Series({"HI": 0.3, "BL": 0.35, "AI": 0.3, "PI": 0.2, "WH": -0.3, "AS": -0.2, "MR": 0.0})
    poverty = rng.normal(0, 1, n_fam) + pov_shift[race].to_numpy()
    sur_group = _name_group(rng, race)
    last1 = _draw_surnames(rng, sur_group)
    last2 = _draw_surnames(rng, sur_group)
    compound = np.where(race == "HI", rng.random(n_fam) < 0.22, rng.random(n_fam) < 0.03) & (last1 != last2)
    last_sep = np.where(compound, np.where((race == "HI") & (rng.random(n_fam) < 0.7), " ", "-"), "").astype(object)
    last2 = np.where(compound, last2, "").astype(object)
    window_start = params.window_start
    r = rng.random(n_fam)
    arrive = np.where(r < 0.10, rng.integers(window_start, max(window_start + 1, as_of - 30), n_fam), D.LONG_AGO)
    leave = np.where((r >= 0.10) & (r < 0.21), rng.integers(window_start + 30, as_of + 1, n_fam), D.NEVER)
    frame = pd.DataFrame({
        "race": race, "poverty": poverty, "last1": last1, "last2": last2, "last_sep": last_sep,
        "arrive": arrive, "leave": leave,
        "private_school": rng.random(n_fam) < np.clip(0.11 - 0.04 * poverty, 0.01, 0.3),
        "fhd": rng.random(n_fam) < np.clip(0.79 + 0.04 * poverty, 0.5, 0.95),
        "dhs": rng.random(n_fam) < 1 / (1 + np.exp(-(-0.75 + 1.1 * poverty))),
        "first_birth": b1,
    })
    return _Families(frame, race, last1, last2, last_sep, arrive, leave)


def _street_names(rng: np.random.Generator, n_streets: int) -> np.ndarray:
    words = STREET_WORDS[rng.integers(0, len(STREET_WORDS), n_streets)]
    ordinal = rng.random(n_streets) < 0.12
    nums = rng.integers(1, 60, n_streets)
    suf = np.where(nums % 10 == 1, "st", np.where(nums % 10 == 2, "nd", np.where(nums % 10 == 3, "rd", "th")))
    suf = np.where((nums >= 11) & (nums <= 13), "th", suf)
    words = np.where(ordinal, (nums.astype(str).astype(object) + suf.astype(object)), words).astype(object)
    direction = np.where(rng.random(n_streets) < 0.15, DIRECTIONS[0], "")
    direction = np.where(direction != "", np.array(DIRECTIONS, dtype=object)[rng.integers(0, 4, n_streets)], "")
    return np.where(direction != "", direction.astype(object) + " " + words, words).astype(object)


def _draw_addresses(
    params: Params, rng: np.random.Generator, families: _Families
) -> tuple[AddressBook, np.ndarray, np.ndarray, np.ndarray]:
    """A street catalogue, three address slots per family, up to two moves; (book, slots, moves, zips)."""
    as_of, window_start, n_fam = params.as_of, params.window_start, len(families.frame)
    arrive, leave = families.arrive, families.leave
    n_zip = int(np.clip(round(params.children / 6000), 3, 30))
    zips = np.array([f"{24601 + 3 * i:05d}" for i in range(n_zip)], dtype=object)
    n_streets = max(40, n_fam // 20)
    street_names = _street_names(rng, n_streets)
    street_suffix = rng.choice(len(STREET_SUFFIX), size=n_streets, p=STREET_SUFFIX_WEIGHTS)
    street_zip = rng.integers(0, n_zip, n_streets)
    street_u = rng.random(n_streets)
    n_addr = 3 * n_fam
    st = rng.integers(0, n_streets, n_addr)
    number = np.minimum(9999, 1 + np.floor(np.exp(rng.normal(6.2, 1.1, n_addr)))).astype(np.int64)
    has_unit = rng.random(n_addr) < 0.22
    unit_no = rng.integers(1, 40, n_addr).astype(str).astype(object)
    unit_letter = np.array(["", "A", "B", "C"], dtype=object)[rng.integers(0, 4, n_addr)]
    unit_kind = np.array(["Apt", "Unit", "Apt"], dtype=object)[rng.integers(0, 3, n_addr)]
    unit = np.where(has_unit, unit_kind + " " + unit_no + unit_letter, "").astype(object)
    book = AddressBook(
        number=number, street=street_names[st], suffix=street_suffix[st], unit=unit,
        zip=zips[street_zip[st]], zip_idx=street_zip[st],
        u=np.clip(street_u[st] + rng.normal(0, 0.02, n_addr), 0, 0.999999), text=np.empty(0, dtype=object),
    )
    book.text = street_text(book.parts(np.arange(n_addr)))
    fam_addr = np.arange(n_addr).reshape(n_fam, 3)
    n_moves = rng.choice(3, size=n_fam, p=[0.62, 0.29, 0.09])
    lo = np.maximum(window_start - 2 * 365, arrive + 30)
    hi = np.minimum(as_of, leave - 30)
    span = np.maximum(hi - lo, 1)
    moves = np.sort(lo[:, None] + np.floor(rng.random((n_fam, 2)) * span[:, None]).astype(np.int64), axis=1)
    valid = (np.arange(2)[None, :] < n_moves[:, None]) & (hi > lo)[:, None]
    moves = np.where(valid, moves, D.NEVER)
    moves[:, 1] = np.where(moves[:, 1] - moves[:, 0] < 60, D.NEVER, moves[:, 1])
    fam_addr[:, 1] = np.where(moves[:, 0] < D.NEVER, fam_addr[:, 1], -1)
    fam_addr[:, 2] = np.where(moves[:, 1] < D.NEVER, fam_addr[:, 2], -1)
    return book, fam_addr, moves, zips


def _draw_members(
    params: Params, rng: np.random.Generator, kids: pd.DataFrame, b1: np.ndarray, race: np.ndarray
) -> pd.DataFrame:
    """The children's sex and the parents (a mother in most families, a father in many): one row each."""
    as_of, n_fam = params.as_of, len(b1)
    n_kids = len(kids)
    kfam = kids.fam.to_numpy()
    kbirth = kids.birth.to_numpy()
    sex = np.where(rng.random(n_kids) < 0.488, "F", "M").astype(object)
    teen = kbirth < D.add_years(np.array([as_of]), -12)[0]
    sex = np.where(teen & (rng.random(n_kids) < 0.004), "X", sex).astype(object)
    r = rng.random(n_fam)
    has_mother = r < 0.92
    has_father = np.where(has_mother, rng.random(n_fam) < 0.62, True)
    mother_age = np.clip(rng.normal(27.5, 5.5, n_fam), 17, 42)
    mother_birth = b1 - np.round(mother_age * 365.25).astype(np.int64)
    father_birth = mother_birth - np.round(rng.normal(2.0, 3.5, n_fam) * 365.25).astype(np.int64)
    father_birth = np.minimum(father_birth, b1 - 17 * 365)
    m_idx = np.flatnonzero(has_mother)
    f_idx = np.flatnonzero(has_father)
    pfam = np.concatenate([m_idx, f_idx])
    pbirth = np.concatenate([mother_birth[m_idx], father_birth[f_idx]])
    prole = np.array(["mother"] * len(m_idx) + ["father"] * len(f_idx), dtype=object)
    psex = np.where(prole == "mother", "F", "M").astype(object)

    fam_ = np.concatenate([kfam, pfam])
    persons = pd.DataFrame({
        "family": fam_,
        "role": np.concatenate([np.full(n_kids, "child", dtype=object), prole]),
        "birth": np.concatenate([kbirth, pbirth]).astype(np.int64),
        "sex": np.concatenate([sex, psex]),
        "aged_0_18": np.concatenate([kids.aged_0_18.to_numpy(), np.zeros(len(pfam), dtype=bool)]),
    })
    persons["is_child"] = persons.role == "child"
    persons["race"] = race[fam_]
    return persons


def _draw_names(rng: np.random.Generator, persons: pd.DataFrame, families: _Families) -> None:
    """First, middle and family surnames (in place); every member of a family has their own first name."""
    fam_ = persons.family.to_numpy()
    group = _name_group(rng, persons.race.to_numpy())
    adult = ~persons.is_child.to_numpy()
    first = np.where(adult, _draw_given(rng, group, persons.sex.to_numpy(), True),
                     _draw_given(rng, group, persons.sex.to_numpy(), False))
    persons["first"] = first
    # twins included; parents never share a child's
    for _ in range(30):
        dup = persons.duplicated(["family", "first"]).to_numpy()
        if not dup.any():
            break
        persons.loc[dup, "first"] = np.where(
            adult[dup], _draw_given(rng, group[dup], persons.sex.to_numpy()[dup], True),
            _draw_given(rng, group[dup], persons.sex.to_numpy()[dup], False))
    dup = persons.duplicated(["family", "first"]).to_numpy()
    if dup.any():  # a last resort for tiny name tables: a suffix letter keeps them apart
        persons.loc[dup, "first"] = persons.loc[dup, "first"] + "a"
    sx = persons.sex.to_numpy()
    mid_sex = np.where(sx == "X", "F", sx)
    middle = np.empty(len(persons), dtype=object)
    for s in ("F", "M"):
        m = mid_sex == s
        middle[m] = MIDDLE[s].draw(rng, int(m.sum()))
    no_middle = rng.random(len(persons)) < np.where(adult, 0.3, 0.14)
    middle = np.where(no_middle | (middle == persons["first"].to_numpy()), "", middle).astype(object)
    persons["middle"] = middle
    persons["last1"] = families.last1[fam_]
    persons["last2"] = families.last2[fam_]
    persons["last_sep"] = families.last_sep[fam_]


def _draw_surname_changes(params: Params, rng: np.random.Generator, persons: pd.DataFrame, families: _Families) -> None:
    """Surname changes (adoption, a parent's marriage; mothers' marriages and divorces), in place; no deaths."""
    fam_ = persons.family.to_numpy()
    adult = ~persons.is_child.to_numpy()
    n_p = len(persons)
    lo = np.maximum(persons.birth.to_numpy() + 365, np.maximum(params.window_start - 365, families.arrive[fam_]))
    hi = np.minimum(params.as_of, families.leave[fam_])
    change = (rng.random(n_p) < np.where(persons.role == "mother", 0.025, np.where(adult, 0.0, 0.01))) & (hi > lo)
    change_date = np.where(change, lo + np.floor(rng.random(n_p) * np.maximum(hi - lo, 1)).astype(np.int64),
                           D.NEVER)
    new_last = np.where(change, _draw_surnames(rng, _name_group(rng, persons.race.to_numpy())), "").astype(object)
    same = new_last == persons.last1.to_numpy()
    change &= ~same
    persons["new_last"] = np.where(change, new_last, "")
    persons["change_date"] = np.where(change, change_date, D.NEVER)
    persons["death"] = D.NEVER


def _order_and_ids(persons: pd.DataFrame) -> pd.DataFrame:
    """Families together, children by birth, then parents; person ids; twins (two children born the same day)."""
    persons["_o"] = np.where(persons.role == "child", 0, np.where(persons.role == "mother", 1, 2))
    persons = persons.sort_values(["family", "_o", "birth"], kind="stable").drop(columns="_o").reset_index(drop=True)
    persons["person_id"] = make_ids(np.arange(1, len(persons) + 1), "p", 7)
    kidsmask = persons.is_child.to_numpy()
    key = persons.family.to_numpy() * 10**7 + persons.birth.to_numpy()
    twin_of = np.full(len(persons), -1, dtype=np.int64)
    same_next = kidsmask[:-1] & kidsmask[1:] & (key[:-1] == key[1:])
    i = np.flatnonzero(same_next)
    twin_of[i] = i + 1
    twin_of[i + 1] = i
    persons["twin_of"] = twin_of
    return persons
