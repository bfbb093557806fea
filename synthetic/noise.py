"""The error model: how an agency's record of a person differs from the truth.

Every function works on whole columns (numpy object arrays) and records, per row, which kinds of
variation it applied in a ``Flags`` mapping ``"<field>:<kind>" -> bool array``. The flags become
``truth/noise.csv`` and the hard-case counts of ``summary.json``; a flag is set only when the written
value really differs from the canonical one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthetic import _dates as D
from synthetic.names import STREET_SUFFIX, STREET_SUFFIX_LONG
from synthetic.strings import NICKNAME_TABLE, SPELLING_TABLE, _obj, concat, lower, strip_accents, typo, upper

Flags = dict[str, np.ndarray]


@dataclass(frozen=True)
class NoiseProfile:
    """Per-record probabilities of each kind of variation, for one agency's registration process."""

    nickname: float = 0.02
    spelling: float = 0.01
    first_typo: float = 0.015
    last_typo: float = 0.015
    middle_missing: float = 0.08
    middle_initial: float = 0.04
    middle_merged: float = 0.004
    compound_variant: float = 0.45
    punct_variant: float = 0.3
    dm_swap: float = 0.01
    day_error: float = 0.004
    year_error: float = 0.002
    sex_error: float = 0.002
    upper: float = 0.02
    upper_ascii: float = 0.0
    ascii: float = 0.05
    lower: float = 0.002
    extra_space: float = 0.01
    address_format: float = 0.06
    address_typo: float = 0.01
    zip_error: float = 0.003

    def boosted(self, factor: float) -> NoiseProfile:
        """The same process, sloppier: used for the second record of a duplicated person."""
        changes = {}
        for f in dataclasses.fields(self):
            if f.name in ("upper", "upper_ascii", "ascii", "lower", "compound_variant", "punct_variant"):
                continue
            changes[f.name] = min(0.5, getattr(self, f.name) * factor)
        return dataclasses.replace(self, **changes)


def _set(flags: Flags, key: str, mask: np.ndarray) -> None:
    if key in flags:
        flags[key] = flags[key] | mask
    else:
        flags[key] = mask.copy()


# ---------------------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------------------


def _style(
    fields: dict[str, np.ndarray], p: NoiseProfile, rng: np.random.Generator, flags: Flags, n: int
) -> None:
    """Case, accents and whitespace: one house style per record, plus stray spaces per field."""
    r = rng.random(n)
    cuts = np.cumsum([p.upper, p.upper_ascii, p.ascii, p.lower])
    style = np.searchsorted(cuts, r, side="right")  # 0 upper, 1 upper_ascii, 2 ascii, 3 lower, 4 as is
    spaces = rng.random((len(fields), n)) < p.extra_space
    space_kind = rng.integers(0, 3, (len(fields), n))
    for i, (name, vals) in enumerate(fields.items()):
        present = pd.Series(vals, dtype=object).fillna("").to_numpy(dtype=object) != ""
        new = vals.copy()
        for code, fn in ((0, upper), (1, lambda v: upper(strip_accents(v))), (2, strip_accents), (3, lower)):
            m = (style == code) & present
            if m.any():
                new[m] = fn(new[m])
        m = spaces[i] & present
        if m.any():
            k = space_kind[i][m]
            v = new[m]
            has_space = pd.Series(v, dtype=object).str.contains(" ", regex=False).to_numpy(dtype=bool)
            v = np.where(k == 0, concat(" ", v), v)
            v = np.where(k == 1, concat(v, " "), v)
            v = np.where((k == 2) & has_space, _obj(pd.Series(v).str.replace(" ", "  ", n=1)), v)
            v = np.where((k == 2) & ~has_space, concat(v, "  "), v)
            new[m] = v
        changed = present & (new != vals)
        _set(flags, f"{name}:case_accent_whitespace", changed)
        fields[name] = new


def render_person(
    truth: dict[str, np.ndarray],
    p: NoiseProfile,
    rng: np.random.Generator,
    *,
    birth_min: int,
    birth_max: np.ndarray,
    with_middle: bool,
) -> tuple[dict[str, np.ndarray], Flags]:
    """Render the canonical identity of ``n`` people as one agency writes them.

    ``truth`` holds ``first``, ``middle`` ('' if none), ``last1``, ``last2``, ``last_sep`` (compound
    surnames), ``birth`` (day numbers) and ``sex``.
    Birth-date errors never move a date outside ``[birth_min, birth_max]``.
    """
    n = len(truth["first"])
    flags: Flags = {}
    p = city_errors().adjust(p)
    first, middle, has_middle, merged = _render_first(truth, p, rng, flags, n, with_middle)
    fields: dict[str, np.ndarray] = {"first_name": first}
    if with_middle:
        fields["middle_name"] = _render_middle(middle, has_middle, merged, p, rng, flags, n)
    last = _render_last(truth, p, rng, flags, n)
    fields["first_name"], fields["last_name"] = city_name_errors(fields["first_name"], last, middle, rng, flags)
    birth = _render_birth(truth, p, rng, flags, n, birth_min, birth_max)

    sex = _obj(truth["sex"]).copy()
    se = (rng.random(n) < p.sex_error) & (sex != "X")
    sex[se] = np.where(sex[se] == "F", "M", "F")
    flags["sex:error"] = se

    _style(fields, p, rng, flags, n)
    out = dict(fields)
    out["birth"] = birth
    out["sex"] = sex
    return out, flags


def _render_first(
    truth: dict[str, np.ndarray], p: NoiseProfile, rng: np.random.Generator, flags: Flags, n: int, with_middle: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First name: nickname or spelling variant, a merged middle name, typos. (first, middle, has middle, merged)."""
    first = _obj(truth["first"]).copy()
    r = rng.random(n)
    nick_idx = NICKNAME_TABLE.lookup(first)
    nick = (r < p.nickname) & (nick_idx >= 0)
    if nick.any():
        first[nick] = NICKNAME_TABLE.pick(nick_idx[nick], rng)
    sp_idx = SPELLING_TABLE.lookup(first)
    spell = (r >= p.nickname) & (r < p.nickname + p.spelling) & (sp_idx >= 0) & ~nick
    if spell.any():
        first[spell] = SPELLING_TABLE.pick(sp_idx[spell], rng)
    flags["first_name:nickname"] = nick
    flags["first_name:spelling_variant"] = spell
    middle = _obj(truth["middle"]).copy()
    has_middle = middle != ""
    merged = np.zeros(n, dtype=bool)
    if with_middle:
        merged = has_middle & (rng.random(n) < p.middle_merged)
        first[merged] = concat(first[merged], " ", middle[merged])
    t = rng.random(n) < p.first_typo
    first[t] = typo(first[t], rng)
    flags["first_name:middle_merged"] = merged
    flags["first_name:typo"] = t
    return first, middle, has_middle, merged


def _render_middle(
    middle: np.ndarray, has_middle: np.ndarray, merged: np.ndarray, p: NoiseProfile, rng: np.random.Generator,
    flags: Flags, n: int,
) -> np.ndarray:
    """Middle name: blank (always when merged into the first), initial, or as is."""
    r = rng.random(n)
    missing = has_middle & ((r < p.middle_missing) | merged)
    initial = has_middle & ~missing & (r < p.middle_missing + p.middle_initial)
    out_mid = middle.copy()
    out_mid[missing] = ""
    if initial.any():
        dot = rng.random(int(initial.sum())) < 0.4
        out_mid[initial] = np.where(dot, concat(pd.Series(middle[initial]).str[0].to_numpy(object), "."),
                                    pd.Series(middle[initial]).str[0].to_numpy(object))
    flags["middle_name:missing"] = missing
    flags["middle_name:initial"] = initial
    return out_mid


def _punct_variants(part: np.ndarray, p: NoiseProfile, rng: np.random.Generator, n: int) -> np.ndarray:
    """Particles and apostrophes written another way (in place); which rows changed."""
    changed = np.zeros(n, dtype=bool)
    cand = pd.Series(part, dtype=object).str.contains("[' ]", regex=True).to_numpy(dtype=bool)
    m = cand & (rng.random(n) < p.punct_variant)
    if m.any():
        v = pd.Series(part[m])
        apostrophe = v.str.contains("'", regex=False).to_numpy(dtype=bool)
        k = rng.integers(0, 3, len(v))
        k = np.where(apostrophe, k, k % 2)  # a change of case alone would not survive upper-casing
        alt0 = v.str.replace("'", "", regex=False).str.replace(" ", "", regex=False)
        alt1 = v.str.replace("'", " ", regex=False).str.replace(" ", "", n=1, regex=False)
        alt2 = v.str.replace("'", "\u2019", regex=False)
        new = np.where(k == 0, alt0, np.where(k == 1, alt1, alt2)).astype(object)
        changed[m] |= new != part[m]
        part[m] = new
    return changed


def _render_last(truth: dict[str, np.ndarray], p: NoiseProfile, rng: np.random.Generator, flags: Flags, n: int) -> np.ndarray:
    """Last name: particles/apostrophes, compound forms, typos."""
    parts = []
    punct = np.zeros(n, dtype=bool)
    for key in ("last1", "last2"):
        part = _obj(truth[key]).copy()
        punct |= _punct_variants(part, p, rng, n)
        parts.append(part)
    last1, last2 = parts
    sep = _obj(truth["last_sep"])
    compound = sep != ""
    last = concat(last1, sep, last2)
    cv = compound & (rng.random(n) < p.compound_variant)
    if cv.any():
        k = rng.choice(4, size=n, p=[0.35, 0.35, 0.15, 0.15])
        other_sep = np.where(sep == "-", " ", "-").astype(object)
        alt = np.where(k == 0, concat(last1, other_sep, last2),
                       np.where(k == 1, last1, np.where(k == 2, last2, concat(last1, last2)))).astype(object)
        last = np.where(cv, alt, last).astype(object)
    t = rng.random(n) < p.last_typo
    last[t] = typo(last[t], rng)
    flags["last_name:punctuation_variant"] = punct
    flags["last_name:compound_variant"] = cv
    flags["last_name:typo"] = t
    return last


def _render_birth(
    truth: dict[str, np.ndarray], p: NoiseProfile, rng: np.random.Generator, flags: Flags, n: int, birth_min: int,
    birth_max: np.ndarray,
) -> np.ndarray:
    """Birth date: day/month swap, a day slip, a year slip (one at most), inside ``[birth_min, birth_max]``."""
    birth = np.asarray(truth["birth"], dtype=np.int64).copy()
    r = rng.random(n)
    swapped, ok = D.swap_day_month(birth)
    dm = (r < p.dm_swap) & ok
    slip = rng.choice(np.array([-10, -1, 1, 10]), size=n)
    day_err = (r >= p.dm_swap) & (r < p.dm_swap + p.day_error)
    year_err = (r >= p.dm_swap + p.day_error) & (r < p.dm_swap + p.day_error + p.year_error)
    cand = np.where(dm, swapped, np.where(day_err, birth + slip,
                    np.where(year_err, D.add_years(birth, np.where(slip > 0, 1, -1)), birth)))
    valid = (cand >= birth_min) & (cand <= birth_max)
    dm &= valid
    day_err &= valid
    year_err &= valid
    birth = np.where(dm | day_err | year_err, cand, birth)
    birth = city_birth_errors(birth, ~(dm | day_err | year_err), rng, flags, birth_min, birth_max)
    flags["birth_date:day_month_swap"] = dm
    flags["birth_date:day_error"] = day_err
    flags["birth_date:year_error"] = year_err
    return birth


def render_address(
    parts: dict[str, np.ndarray], zips: np.ndarray, p: NoiseProfile, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, Flags]:
    """Street address and zip as an agency writes them."""
    p = city_errors().adjust(p)
    street, fmt, ttypo = render_street(parts, p, rng)
    n = len(street)
    flags: Flags = {"street_address:format_variant": fmt, "street_address:typo": ttypo}
    zipc = _obj(zips).copy()
    ze = rng.random(n) < p.zip_error
    if ze.any():
        zs = zipc[ze].astype("<U5")
        codes = zs.view(np.uint32).reshape(-1, 5).copy()
        pos = rng.integers(1, 5, len(zs))
        rows = np.arange(len(zs))
        codes[rows, pos] = 48 + (codes[rows, pos] - 48 + rng.integers(1, 10, len(zs))) % 10
        zipc[ze] = codes.view("<U5").ravel().astype(object)
    flags["zip:typo"] = ze
    up = rng.random(n) < (p.upper + p.upper_ascii)
    if up.any():
        new = upper(street[up])
        changed = np.zeros(n, dtype=bool)
        changed[up] = new != street[up]
        street[up] = new
        flags["street_address:case_accent_whitespace"] = changed
    else:
        flags["street_address:case_accent_whitespace"] = np.zeros(n, dtype=bool)
    return street, zipc, flags


NAME_ERROR_KEYS = ("first_name:nickname", "first_name:spelling_variant", "first_name:typo", "last_name:typo",
                   "birth_date:day_month_swap", "birth_date:day_error", "birth_date:year_error")


def force_difference(out: dict[str, np.ndarray], flags: Flags, mask: np.ndarray, rng: np.random.Generator) -> None:
    """Make sure the records in ``mask`` carry at least one identity error (a typo in the first name)."""
    has = np.zeros(len(mask), dtype=bool)
    for k in NAME_ERROR_KEYS:
        if k in flags:
            has |= flags[k]
    need = mask & ~has
    if need.any():
        out["first_name"][need] = typo(out["first_name"][need], rng)
        flags["first_name:typo"] = flags["first_name:typo"] | need


def render_street(parts: dict[str, np.ndarray], p: NoiseProfile, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write addresses from components; some in another format, some with a typo in the street name."""
    num = parts["number"].astype(str).astype(object)
    street = _obj(parts["street"]).copy()
    suffix_idx = parts["suffix"]
    unit = _obj(parts["unit"])
    n = len(num)
    has_unit = unit != ""
    short = _obj(STREET_SUFFIX)[suffix_idx]
    long_ = _obj(STREET_SUFFIX_LONG)[suffix_idx]
    fmt = rng.random(n) < p.address_format
    k = rng.integers(0, 5, n)
    k = np.where((k >= 2) & ~has_unit, 0, k)
    fmt &= ~((k == 0) & (short == long_))  # "Way" has no long form
    suffix = np.where(fmt & (k == 0), long_, np.where(fmt & (k == 1), concat(short, "."), short)).astype(object)
    unit_txt = np.where(has_unit, concat(" ", unit), "").astype(object)
    unit_txt = np.where(fmt & (k == 2), "", unit_txt)
    hash_unit = fmt & (k == 3)
    if hash_unit.any():
        unit_txt[hash_unit] = concat(" #", pd.Series(unit[hash_unit], dtype=object).str.split(" ").str[-1].to_numpy(object))
    unit_txt = np.where(fmt & (k == 4), concat(",", unit_txt), unit_txt)
    t = rng.random(n) < p.address_typo
    street[t] = typo(street[t], rng)
    text = concat(num, " ", street, " ", suffix, unit_txt)
    return text, fmt, t


def street_text(parts: dict[str, np.ndarray]) -> np.ndarray:
    """The canonical form of addresses: ``<number> <street> <suffix>[ <unit>]``."""
    num = parts["number"].astype(str).astype(object)
    unit = _obj(parts["unit"])
    unit_txt = np.where(unit != "", concat(" ", unit), "").astype(object)
    return concat(num, " ", _obj(parts["street"]), " ", _obj(STREET_SUFFIX)[parts["suffix"]], unit_txt)


def flags_frame(flags: Flags, keep: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Subset every flag array to ``keep`` (index or mask)."""
    return {k: v[keep] if keep is not None else v for k, v in flags.items()}


# ---------------------------------------------------------------------------------------------------------
# City error models (issue 14): ``c2c synth --profile NAME`` (synthetic/error_profiles/NAME.yaml)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CityErrors:
    """How one city's records go wrong and how its people are related, on top of the agencies' profiles.

    Zero rates draw nothing from the random streams, so the default (all zero, factors 1) writes exactly
    the city the generator wrote before profiles existed.
    """

    name: str = "default"
    scale: dict = dataclasses.field(default_factory=dict)      # NoiseProfile field -> factor (every agency)
    name_swap: float = 0.0            # first and last name written in each other's field
    middle_as_first: float = 0.0      # the middle name (where there is one) written as the first name
    transliteration: float = 0.0      # one spelling rule (ph/f, y/i, ou/u, ...) applied to first or last name
    birth_default: float = 0.0        # birth date recorded as 01-01 of the birth year
    birth_month_error: float = 0.0    # month off by one (one digit)
    twin_rate: float = 0.028          # per later-born child: born the same day as the previous one
    same_name_siblings: float = 0.0   # per non-twin younger sibling: given an older sibling's first name
    namesakes: float = 0.0            # per child: given the first and last name of a child of another family born within a year
    reregistration: float = 1.0       # factor on each agency's rate of second ids for one person

    def adjust(self, p: NoiseProfile) -> NoiseProfile:
        if not self.scale:
            return p
        return dataclasses.replace(p, **{k: min(0.5, getattr(p, k) * float(f)) for k, f in self.scale.items()})


_CITY: list[CityErrors] = [CityErrors()]


def city_errors() -> CityErrors:
    """The error model of the city being generated (``CityErrors()`` outside ``using_city_errors``)."""
    return _CITY[-1]


class using_city_errors:  # noqa: N801 - used as a context manager
    def __init__(self, errors: CityErrors) -> None:
        self.errors = errors

    def __enter__(self) -> CityErrors:
        _CITY.append(self.errors)
        return self.errors

    def __exit__(self, *exc: object) -> None:
        _CITY.pop()


TRANSLITERATIONS = (("ph", "f"), ("f", "ph"), ("y", "i"), ("i", "y"), ("ou", "u"), ("u", "ou"), ("sh", "ch"),
                    ("ch", "sh"), ("kh", "h"), ("ck", "k"), ("c", "k"), ("k", "c"), ("ee", "i"), ("th", "t"),
                    ("z", "s"), ("s", "z"), ("j", "y"), ("w", "v"), ("v", "w"), ("mm", "m"), ("a", "ah"))


def transliterate(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each value respelt by one rule that applies to it (after its first letter); unchanged if none does."""
    out = _obj(values).copy()
    todo = np.ones(len(out), dtype=bool)
    for i in rng.permutation(len(TRANSLITERATIONS)):
        src, dst = TRANSLITERATIONS[i]
        if not todo.any():
            break
        s = pd.Series(out[todo], dtype=object)
        new = s.str[:1] + s.str[1:].str.replace(src, dst, n=1, regex=False)
        changed = (new != s).to_numpy(dtype=bool)
        idx = np.flatnonzero(todo)[changed]
        out[idx] = new.to_numpy(dtype=object)[changed]
        todo[idx] = False
    return out


def city_name_errors(first: np.ndarray, last: np.ndarray, middle: np.ndarray, rng: np.random.Generator,
                     flags: Flags) -> tuple[np.ndarray, np.ndarray]:
    """The city's extra name errors (swaps, middle as first, transliterations), one at most per record."""
    c = city_errors()
    n = len(first)
    if c.transliteration > 0:
        t = rng.random(n) < c.transliteration
        on_last = rng.random(n) < 0.4
        for arr, m, key in ((first, t & ~on_last, "first_name"), (last, t & on_last, "last_name")):
            new = transliterate(arr[m], rng)
            changed = np.zeros(n, dtype=bool)
            changed[m] = new != arr[m]
            arr[m] = new
            flags[f"{key}:transliteration"] = changed
    if c.middle_as_first > 0:
        m = (rng.random(n) < c.middle_as_first) & (middle != "") & (middle != first)
        first = np.where(m, middle, first).astype(object)
        flags["first_name:middle_as_first"] = m
    if c.name_swap > 0:
        m = (rng.random(n) < c.name_swap) & (first != last)
        first, last = np.where(m, last, first).astype(object), np.where(m, first, last).astype(object)
        flags["first_name:swapped_with_last"] = m
        flags["last_name:swapped_with_first"] = m.copy()
    return first, last


def city_birth_errors(birth: np.ndarray, untouched: np.ndarray, rng: np.random.Generator, flags: Flags,
                      birth_min: int, birth_max: np.ndarray) -> np.ndarray:
    """A default 01-01 or a month off by one, on records without another birth-date error."""
    c = city_errors()
    if c.birth_default <= 0 and c.birth_month_error <= 0:
        return birth
    n = len(birth)
    y, mo, d = D.ymd(birth)
    r = rng.random(n)
    default = untouched & (r < c.birth_default) & ~((mo == 1) & (d == 1))
    month = untouched & (r >= c.birth_default) & (r < c.birth_default + c.birth_month_error)
    new_mo = np.clip(mo + np.where(rng.random(n) < 0.5, -1, 1), 1, 12)
    new_mo = np.where(new_mo == mo, np.where(mo == 1, 2, mo - 1), new_mo)
    month_cand = D.from_ymd(y, new_mo, np.minimum(d, D.days_in_month(y, new_mo)))
    cand = np.where(default, D.from_ymd(y, np.ones_like(mo), np.ones_like(d)), np.where(month, month_cand, birth))
    ok = (cand >= birth_min) & (cand <= birth_max)
    default &= ok
    month &= ok
    flags["birth_date:default_value"] = default
    flags["birth_date:month_error"] = month
    return np.where(default | month, cand, birth)


def city_relations(persons: pd.DataFrame, rng: np.random.Generator) -> None:
    """Same-name siblings and city-wide namesakes (in place, on the population's ``persons`` frame)."""
    c = city_errors()
    if c.same_name_siblings <= 0 and c.namesakes <= 0:
        return
    kid = persons.is_child.to_numpy()
    fam = persons.family.to_numpy()
    birth = persons.birth.to_numpy()
    first = persons["first"].to_numpy(dtype=object).copy()
    if c.same_name_siblings > 0:
        # the next older child of the same family, if born a year or more earlier (never a twin)
        order = np.lexsort((birth, fam))
        prev = np.full(len(persons), -1, dtype=np.int64)
        o_prev, o_cur = order[:-1], order[1:]
        ok = kid[o_prev] & kid[o_cur] & (fam[o_prev] == fam[o_cur]) & (birth[o_cur] - birth[o_prev] >= 365)
        prev[o_cur[ok]] = o_prev[ok]
        m = (prev >= 0) & (rng.random(len(persons)) < c.same_name_siblings)
        first[m] = first[prev[m]]
        persons["first"] = first
    if c.namesakes > 0:
        kids = np.flatnonzero(kid)
        kids = kids[np.argsort(birth[kids], kind="stable")]
        m = rng.random(len(kids)) < c.namesakes
        offset = rng.integers(1, 40, len(kids))
        j = np.minimum(np.arange(len(kids)) + offset, len(kids) - 1)
        src, dst = kids[j[m]], kids[np.flatnonzero(m)]
        keep = (fam[src] != fam[dst]) & (np.abs(birth[src] - birth[dst]) < 365)
        src, dst = src[keep], dst[keep]
        for col in ("first", "last1", "last2", "last_sep"):
            vals = persons[col].to_numpy(dtype=object).copy()
            vals[dst] = vals[src]
            persons[col] = vals
