"""Fairhaven Public Schools: enrolments, attendance, assessments and graduation cohorts.

Children are school-age from pre-K (~4) to grade 12 (~17); each child's years in the district follow
from the family's arrival and departure, private schooling, joining or leaving the district, and the
high-school outcome (graduating in 4 or 5 years, dropping out, still enrolled, transferring out,
rarely dying). Inside a year a student may transfer schools (two rows: the first with an exit date,
the second starting later) or leave and come back to the same school.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synthetic import _dates as D
from synthetic.fps_assessments import build_assessments
from synthetic.fps_schools import GRADES, LEVEL_NAMES, school_catalogue
from synthetic.noise import Flags, city_errors, force_difference, render_address, render_person
from synthetic.population import Population, make_ids, unique_numbers
from synthetic.profiles import FPS
from synthetic.strings import upper

# high-school planned outcomes
G4, G5, STILL, DROP, TRANSFER, DEAD = range(6)


@dataclass
class FpsResult:
    students: pd.DataFrame
    student_flags: Flags
    attendance: pd.DataFrame
    assessments: pd.DataFrame
    graduation: pd.DataFrame
    ids: pd.DataFrame  # source_id, person (index)
    schools: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


def _yn(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, "Y", "N").astype(object)


def _uniform_between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    span = np.maximum(hi - lo, 1)
    return lo + np.floor(rng.random(len(lo)) * span).astype(np.int64)


class FpsState:
    """What the steps of :func:`build_fps` share: arrays over children (``n``), candidate rows (``m``) and
    enrolment rows (``R``). Each step reads what earlier steps set and draws from ``rng`` in a fixed order."""

    # set by the steps, in order (arrays over children, then candidate rows, then enrolment rows, then ids)
    kids: np.ndarray
    n: int
    kf: np.ndarray
    kg: np.ndarray
    cohort: np.ndarray
    poverty: np.ndarray
    arrive: np.ndarray
    private: np.ndarray
    pk: np.ndarray
    plan: np.ndarray
    dropout: np.ndarray
    death: np.ndarray
    start: np.ndarray
    end: np.ndarray
    ci: np.ndarray
    yi: np.ndarray
    sy: np.ndarray
    gi: np.ndarray
    fd: np.ndarray
    ld: np.ndarray
    enroll: np.ndarray
    exit_: np.ndarray
    rows: pd.DataFrame
    R: int
    rc: np.ndarray
    rf: np.ndarray
    addr: np.ndarray
    zip_idx: np.ndarray
    u: np.ndarray
    rgi: np.ndarray
    level: np.ndarray
    kind: np.ndarray
    school_ids: np.ndarray
    school_of_row: np.ndarray
    id_str: np.ndarray
    row_id: np.ndarray
    is_second_id: np.ndarray
    n_ids: int
    pidx: np.ndarray
    r_enroll: np.ndarray
    new_last: np.ndarray
    reg_old: dict[str, np.ndarray]
    reg_new: dict[str, np.ndarray]
    race_true: np.ndarray
    race_id: np.ndarray
    rp: np.ndarray
    race_row: np.ndarray
    street: np.ndarray
    zipc: np.ndarray
    ryi: np.ndarray
    el: np.ndarray
    dis: np.ndarray
    econ: np.ndarray
    homeless: np.ndarray

    def __init__(self, pop: Population, rng: np.random.Generator) -> None:
        self.pop, self.rng = pop, rng
        self.ps, self.fams = pop.persons, pop.families
        self.as_of = pop.params.as_of
        self.years = np.array(pop.params.years, dtype=np.int64)
        self.n_years = len(self.years)
        self.counts: dict[str, int] = {}
        # ---- district calendar
        n_years = self.n_years
        self.cal_first = D.from_ymd(self.years - 1, np.full(n_years, 8), 18 + rng.integers(0, 10, n_years))
        self.cal_last = D.from_ymd(self.years, np.full(n_years, 6), 1 + rng.integers(0, 13, n_years))
        self.cal_days = rng.integers(176, 181, n_years)

    def first_day(self, sy: np.ndarray) -> np.ndarray:
        years, n_years = self.years, self.n_years
        inside = (sy >= years[0]) & (sy <= years[-1])
        return np.where(inside, self.cal_first[np.clip(sy - years[0], 0, n_years - 1)],
                        D.from_ymd(sy - 1, np.full_like(sy, 8), np.full_like(sy, 22)))

    def last_day(self, sy: np.ndarray) -> np.ndarray:
        years, n_years = self.years, self.n_years
        inside = (sy >= years[0]) & (sy <= years[-1])
        return np.where(inside, self.cal_last[np.clip(sy - years[0], 0, n_years - 1)],
                        D.from_ymd(sy, np.full_like(sy, 6), np.full_like(sy, 8)))


def build_fps(pop: Population, rng: np.random.Generator) -> FpsResult:
    c = FpsState(pop, rng)
    _children(c)
    _candidate_rows(c)
    _split_rows(c)
    _levels(c)
    schools = school_catalogue(c)
    _student_ids(c)
    _registrations(c)
    flags, out = _row_identity(c)
    _yearly_flags(c)
    students, internal = _students(c, out)
    attendance = _attendance(c, students, internal)
    assessments = build_assessments(c)
    graduation = _graduation(c)

    ids = pd.DataFrame({"source_id": c.id_str, "person": c.pidx})
    per_year = max(1, c.n_years)
    sch_enrol = pd.Series(c.school_of_row).value_counts().reindex(np.arange(len(schools)), fill_value=0).to_numpy()
    schools_df = pd.DataFrame({
        "school_id": c.school_ids, "kind": [LEVEL_NAMES[s_[1]] for s_ in schools],
        "zip": [pop.zips[s_[2]] if s_[2] >= 0 else "" for s_ in schools],
        "mean_enrolment_rows_per_year": np.round(sch_enrol / per_year, 1),
    })
    res = FpsResult(students, flags, attendance, assessments, graduation, ids, schools_df, c.counts)
    res.internal = internal  # type: ignore[attr-defined]
    res.calendar = pd.DataFrame({"sy": c.years, "first_day": c.cal_first, "last_day": c.cal_last, "days": c.cal_days})  # type: ignore[attr-defined]
    res.kg = c.kg  # type: ignore[attr-defined]
    res.kids = c.kids  # type: ignore[attr-defined]
    return res


def _children(c: FpsState) -> None:
    """Children, grades and life events (joining, leaving, the high-school plan, dropping out, dying)."""
    rng, ps, fams, as_of = c.rng, c.ps, c.fams, c.as_of
    kids = np.flatnonzero(ps.is_child.to_numpy())
    n = len(kids)
    kf = ps.family.to_numpy()[kids]
    birth = ps.birth.to_numpy()[kids]
    by, bm, bd = D.ymd(birth)
    kg = by + 6 + ((bm > 9) | ((bm == 9) & (bd > 1))).astype(np.int64)
    kg = kg + rng.choice(np.array([0, 1, -1]), size=n, p=[0.94, 0.05, 0.01])
    cohort = kg + 12
    c.poverty = fams.poverty.to_numpy()[kf]
    c.arrive = fams.arrive.to_numpy()[kf]
    leave = fams.leave.to_numpy()[kf]
    private = fams.private_school.to_numpy()[kf]
    pk = rng.random(n) < 0.55
    window_first = int(c.cal_first[0])
    join = np.where(~private & (rng.random(n) < 0.04),
                    _uniform_between(rng, np.full(n, window_first), np.full(n, as_of)), D.LONG_AGO)
    indiv_leave = np.where(rng.random(n) < 0.05,
                           _uniform_between(rng, np.full(n, window_first), np.full(n, as_of + 1)), D.NEVER)
    plan = rng.choice(6, size=n, p=[0.83, 0.045, 0.03, 0.07, 0.022, 0.003])
    hs_lo = np.maximum(c.first_day(cohort - 2), window_first + 30)
    hs_hi = c.last_day(cohort) - 20
    ev = _uniform_between(rng, hs_lo, hs_hi)
    ev_ok = (hs_hi > hs_lo) & (ev <= as_of)
    dropout = np.where((plan == DROP) & ev_ok, ev, D.NEVER)
    death = np.where((plan == DEAD) & ev_ok, ev, D.NEVER)
    indiv_leave = np.where((plan == TRANSFER) & ev_ok, np.minimum(indiv_leave, ev), indiv_leave)
    c.start = np.maximum(c.arrive, join)
    c.end = np.minimum.reduce([leave, indiv_leave, dropout, death])
    ps.loc[kids[death < D.NEVER], "death"] = death[death < D.NEVER]
    c.kids, c.n, c.kf, c.kg, c.cohort, c.private, c.pk, c.plan = kids, n, kf, kg, cohort, private, pk, plan
    c.dropout, c.death = dropout, death


def _candidate_rows(c: FpsState) -> None:
    """One candidate row per child and school year: grade, enrolment and exit dates."""
    rng, as_of, years, n_years, n, plan, kg = c.rng, c.as_of, c.years, c.n_years, c.n, c.plan, c.kg
    ci = np.repeat(np.arange(n), n_years)
    yi = np.tile(np.arange(n_years), n)
    sy = years[yi]
    gi = sy - kg[ci]
    pl = plan[ci]
    ok = ((gi >= 0) & (gi <= 12)) | ((gi == -1) & c.pk[ci]) | ((gi == 13) & ((pl == G5) | (pl == STILL))) \
        | ((gi == 14) & (pl == STILL))
    fd = c.cal_first[yi]
    ld = c.cal_last[yi]
    ok &= ~c.private[ci] & (c.start[ci] <= np.minimum(ld, as_of)) & (c.end[ci] >= fd)
    ci, yi, sy, gi, fd, ld = ci[ok], yi[ok], sy[ok], gi[ok], fd[ok], ld[ok]
    m = len(ci)
    s, e = c.start[ci], c.end[ci]
    mid_entry = s > fd
    r = rng.random(m)
    enroll = np.where(mid_entry, s + rng.integers(0, 8, m),
                      np.where(r < 0.8, fd, np.where(r < 0.92, fd + rng.integers(1, 15, m), fd - rng.integers(5, 45, m))))
    # leaving during the year: exit that day; over the summer: exit on the last day of school
    exit_ = np.where(e < c.first_day(sy + 1), np.minimum(e, ld), D.NEVER)
    pl = plan[ci]
    final_year = ((pl == G4) & (gi == 12)) | ((pl == G5) & (gi == 13))
    exit_ = np.where(final_year & (exit_ == D.NEVER) & (rng.random(m) < 0.7), ld, exit_)
    exit_ = np.where(exit_ > as_of, D.NEVER, exit_)
    exit_ = np.where(exit_ < D.NEVER, np.maximum(exit_, enroll), exit_)
    keep = enroll <= as_of
    c.ci, c.yi, c.sy, c.gi, c.fd, c.ld, c.enroll, c.exit_ = (a[keep] for a in (ci, yi, sy, gi, fd, ld, enroll, exit_))


def _split_rows(c: FpsState) -> None:
    """Mid-year transfers and returns to the same school: the enrolment rows (``c.rows``)."""
    rng, as_of, ci, enroll, exit_ = c.rng, c.as_of, c.ci, c.enroll, c.exit_
    m = len(ci)
    span_end = np.where(exit_ < D.NEVER, exit_, np.minimum(c.ld, as_of))
    moves = c.pop.fam_move[c.kf[ci]]
    in_span = (moves >= enroll[:, None] + 20) & (moves <= span_end[:, None] - 20)
    move_date = np.where(in_span[:, 0], moves[:, 0], np.where(in_span[:, 1], moves[:, 1], D.NEVER))
    moved = (move_date < D.NEVER) & (rng.random(m) < 0.6)
    long_enough = span_end - enroll > 60
    p_tr = 0.015 + 0.01 * np.clip(c.poverty[ci], 0, 2)
    r = rng.random(m)
    transfer = (moved | (r < p_tr)) & long_enough
    comeback = ~transfer & long_enough & (r > 0.997)
    t_date = np.where(moved, move_date, _uniform_between(rng, enroll + 20, span_end - 20))
    gap = np.where(comeback, rng.integers(10, 40, m), rng.integers(1, 8, m))
    second_enroll = t_date + gap
    split = (transfer | comeback) & (second_enroll <= np.minimum(span_end, as_of))
    transfer &= split
    comeback &= split
    c.counts["mid_year_transfers_planned"] = int(transfer.sum())
    idx2 = np.flatnonzero(split)
    # first part: exit at the split date; second part: a later enrolment with the original exit
    row_src = np.concatenate([np.arange(m), idx2])
    part = np.concatenate([np.zeros(m, dtype=np.int8), np.ones(len(idx2), dtype=np.int8)])
    r_enroll = np.concatenate([enroll, second_enroll[idx2]])
    r_exit = np.concatenate([np.where(split, t_date, exit_), exit_[idx2]])
    rows = pd.DataFrame({
        "c": ci[row_src], "yi": c.yi[row_src], "sy": c.sy[row_src], "gi": c.gi[row_src], "enroll": r_enroll,
        "exit": r_exit, "part": part, "transfer": transfer[row_src], "comeback": comeback[row_src],
        "moved": moved[row_src], "src": row_src,
    })
    c.rows = rows.sort_values(["c", "sy", "enroll", "part"], kind="stable").reset_index(drop=True)
    c.R = len(c.rows)
    c.rc = c.rows.c.to_numpy()
    c.rf = c.kf[c.rc]


def _levels(c: FpsState) -> None:
    """Addresses of the rows (a few keep last year's) and the kind of school each row needs."""
    rng, pop, rows, n, rc = c.rng, c.pop, c.rows, c.n, c.rc
    stale = rng.random(c.R) < 0.08
    c.addr = pop.address_at(c.rf, np.where(stale, rows.enroll.to_numpy() - 200, rows.enroll.to_numpy()))
    c.zip_idx = pop.book.zip_idx[c.addr]
    c.u = pop.book.u[c.addr]
    rgi = rows.gi.to_numpy()
    level = np.where(rgi < 0, 0, np.where(rgi <= 5, 1, np.where(rgi <= 8, 2, 3)))
    elc = rng.random(n) < 0.35
    choice = rng.random(n) < 0.07
    alt = rng.random(n) < 0.05
    kind = level.copy()
    kind = np.where((kind == 0) & ~elc[rc], 1, kind)
    kind = np.where(((kind == 1) | (kind == 2)) & (rgi >= 0) & choice[rc], 4, kind)
    kind = np.where((kind == 3) & alt[rc], 5, kind)
    c.rgi, c.level, c.kind = rgi, level, kind


def _student_ids(c: FpsState) -> None:
    """Student ids; a few children get a second id part-way (re-registered with other details)."""
    rng, rows, n, rc = c.rng, c.rows, c.n, c.rc
    rank = rows.groupby("c").cumcount().to_numpy()
    nrows_child = np.bincount(rc, minlength=n)
    enrolled_children = np.flatnonzero(nrows_child > 0)
    dup_child = np.zeros(n, dtype=bool)
    cand = np.flatnonzero(nrows_child >= 2)
    dup_child[cand[rng.random(len(cand)) < 0.006 * city_errors().reregistration]] = True
    split_at = np.where(dup_child, 1 + np.floor(rng.random(n) * np.maximum(nrows_child - 1, 1)).astype(np.int64), 10**6)
    second = rank >= split_at[rc]
    n_ids = len(enrolled_children) + int(dup_child.sum())
    id_numbers = unique_numbers(rng, n_ids, 100_000_000, 999_999_999)
    c.id_str = make_ids(id_numbers, "", 9)
    id_of_child = np.full(n, -1, dtype=np.int64)
    id_of_child[enrolled_children] = np.arange(len(enrolled_children))
    id2_of_child = np.full(n, -1, dtype=np.int64)
    id2_of_child[dup_child] = len(enrolled_children) + np.arange(int(dup_child.sum()))
    c.row_id = np.where(second, id2_of_child[rc], id_of_child[rc])
    id_child = np.empty(n_ids, dtype=np.int64)
    id_child[id_of_child[enrolled_children]] = enrolled_children
    id_child[id2_of_child[dup_child]] = np.flatnonzero(dup_child)
    c.is_second_id = np.zeros(n_ids, dtype=bool)
    c.is_second_id[id2_of_child[dup_child]] = True
    c.counts["students_with_two_ids"] = int(dup_child.sum())
    c.n_ids = n_ids
    c.pidx = c.kids[id_child]


def _registrations(c: FpsState) -> None:
    """How each student id records the child (registered once, mostly carried from year to year), under the
    surname at registration (``reg_old``) and after a change (``reg_new``, same draws); race as recorded."""
    rng, ps, pidx, n_ids = c.rng, c.ps, c.pidx, c.n_ids
    c.r_enroll = c.rows.enroll.to_numpy()
    first_enroll = np.full(n_ids, D.NEVER)
    np.minimum.at(first_enroll, c.row_id, c.r_enroll)
    truth = {
        "first": ps["first"].to_numpy()[pidx], "middle": ps.middle.to_numpy()[pidx],
        "last1": ps.last1.to_numpy()[pidx], "last2": ps.last2.to_numpy()[pidx],
        "last_sep": ps.last_sep.to_numpy()[pidx], "birth": ps.birth.to_numpy()[pidx], "sex": ps.sex.to_numpy()[pidx],
    }
    c.new_last = new_last = ps.new_last.to_numpy()[pidx]
    truth_new = dict(truth, last1=np.where(new_last != "", new_last, truth["last1"]),
                     last2=np.where(new_last != "", "", truth["last2"]),
                     last_sep=np.where(new_last != "", "", truth["last_sep"]))
    birth_max = np.minimum(first_enroll - 1, c.as_of)
    regs = []
    for is2 in (False, True):
        prof = FPS.boosted(4.0) if is2 else FPS
        sub = np.flatnonzero(c.is_second_id == is2)
        state = rng.bit_generator.state
        outs = []
        for tr in (truth, truth_new):
            rng.bit_generator.state = state
            o, f = render_person({k: v[sub] for k, v in tr.items()}, prof, rng, birth_min=D.day(dt.date(1990, 1, 1)),
                                 birth_max=birth_max[sub], with_middle=True)
            if is2:
                force_difference(o, f, np.ones(len(sub), dtype=bool), rng)
            outs.append((o, f))
        regs.append((sub, outs))
    c.reg_old, c.reg_new = {}, {}
    for sub, ((o_old, f_old), (o_new, f_new)) in regs:
        for store, o, f in ((c.reg_old, o_old, f_old), (c.reg_new, o_new, f_new)):
            for k, v in list(o.items()) + [("flag:" + k2, v2) for k2, v2 in f.items()]:
                if k not in store:
                    store[k] = np.empty(n_ids, dtype=v.dtype) if v.dtype != bool else np.zeros(n_ids, dtype=bool)
                store[k][sub] = v
    # race as the school recorded it
    c.race_true = race_true = ps.race.to_numpy()[pidx]
    alt_race = np.where(race_true == "MR", np.array(["HI", "BL", "WH", "AS"], dtype=object)[rng.integers(0, 4, n_ids)], "MR")
    race_diff = rng.random(n_ids) < 0.008
    c.race_id = np.where(race_diff, alt_race, race_true).astype(object)


def _row_identity(c: FpsState) -> tuple[Flags, dict[str, np.ndarray]]:
    """Rows: identity from the registration, surname changes, corrections, per-row variation. (flags, values)."""
    rng, ps, rows, R, row_id, r_enroll = c.rng, c.ps, c.rows, c.R, c.row_id, c.r_enroll
    reg_old, reg_new, n_ids = c.reg_old, c.reg_new, c.n_ids
    c.rp = rp = c.kids[c.rc]
    change = ps.change_date.to_numpy()[rp]
    updated = rng.random(n_ids) < 0.85
    use_new = (r_enroll >= change) & updated[row_id] & (c.new_last[row_id] != "")
    out: dict[str, np.ndarray] = {}
    for k in reg_old:
        out[k] = np.where(use_new, reg_new[k][row_id], reg_old[k][row_id]) if k.startswith(("last_name", "flag:last_name")) else reg_old[k][row_id]
    flags: Flags = {k[5:]: v for k, v in out.items() if k.startswith("flag:")}
    flags["last_name:surname_changed"] = use_new
    birth_true = ps.birth.to_numpy()[rp]
    bad_birth = out["birth"] != birth_true
    fix_year = rng.integers(0, c.n_years + 1, n_ids) + c.years[0]
    fixed = bad_birth & (rng.random(n_ids) < 0.3)[row_id] & (rows.sy.to_numpy() >= fix_year[row_id])
    fixed &= ~c.is_second_id[row_id]  # a second id keeps the detail it was re-registered with (force_difference)
    out["birth"] = np.where(fixed, birth_true, out["birth"])
    for k in ("birth_date:day_month_swap", "birth_date:day_error", "birth_date:year_error"):
        flags[k] = flags[k] & ~fixed
    middle = out["middle_name"].copy()
    drop_mid = (middle != "") & (rng.random(R) < 0.04)
    middle[drop_mid] = ""
    flags["middle_name:missing"] = flags["middle_name:missing"] | drop_mid
    row_upper = rng.random(R) < 0.01
    for fld in ("first_name", "middle_name", "last_name"):
        vals = middle if fld == "middle_name" else out[fld].copy()
        if row_upper.any():
            new = upper(vals[row_upper])
            ch = np.zeros(R, dtype=bool)
            ch[row_upper] = new != vals[row_upper]
            vals[row_upper] = new
            flags[f"{fld}:case_accent_whitespace"] = flags[f"{fld}:case_accent_whitespace"] | ch
        out[fld] = vals
    race_row = c.race_id[row_id].copy()
    race_row_diff = rng.random(R) < 0.003
    c.race_row = np.where(race_row_diff, np.where(race_row == "MR", c.race_true[row_id], "MR"), race_row).astype(object)
    flags["race_ethnicity:reported_differently"] = c.race_row != ps.race.to_numpy()[rp]
    c.street, c.zipc, aflags = render_address(c.pop.book.parts(c.addr), c.pop.book.zip[c.addr], FPS, rng)
    flags.update(aflags)
    return flags, out


def _yearly_flags(c: FpsState) -> None:
    """English learners, disability, economic disadvantage and homelessness by year, correlated."""
    rng, ps, fams, kids, n, n_years, rc = c.rng, c.ps, c.fams, c.kids, c.n, c.n_years, c.rc
    race_c = ps.race.to_numpy()[kids]
    el_p = pd.Series({"HI": 0.32, "AS": 0.28, "PI": 0.2, "AI": 0.05, "MR": 0.05, "BL": 0.04, "WH": 0.02})[race_c].to_numpy()
    el_base = rng.random(n) < el_p * np.where(c.arrive > D.LONG_AGO, 1.5, 1.0)
    el_exit = rng.integers(1, 16, n)
    sex_c = ps.sex.to_numpy()[kids]
    dis_base = rng.random(n) < np.where(sex_c == "M", 0.17, 0.10)
    dis_onset = rng.choice(np.arange(-1, 6), size=n, p=[0.15, 0.25, 0.2, 0.15, 0.12, 0.08, 0.05])
    fam_year_pov = c.poverty[:, None] + rng.normal(0, 0.3, (n, n_years))
    homeless_fy = rng.random((len(fams), n_years)) < 1 / (1 + np.exp(-(-4.6 + 1.0 * fams.poverty.to_numpy()[:, None])))
    c.pop.homeless_years = homeless_fy  # type: ignore[attr-defined]
    c.ryi = ryi = c.rows.yi.to_numpy()
    c.el = el_base[rc] & (c.rgi < el_exit[rc])
    c.dis = dis_base[rc] & (c.rgi >= dis_onset[rc])
    econ = fam_year_pov[rc, ryi] > 0.15
    c.homeless = homeless_fy[c.rf, ryi]
    econ |= c.homeless
    c.econ = econ


def _students(c: FpsState, out: dict[str, np.ndarray]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The students extract and its internal companion (truth of each row, for the city's truth and oracles)."""
    rows, rgi = c.rows, c.rgi
    students = pd.DataFrame({
        "student_id": c.id_str[c.row_id],
        "first_name": out["first_name"],
        "middle_name": np.where(out["middle_name"] == "", None, out["middle_name"]),  # type: ignore[call-overload]
        "last_name": out["last_name"],
        "birth_date": D.to_strings(out["birth"]),
        "sex": out["sex"],
        "race_ethnicity": c.race_row,
        "english_learner": _yn(c.el),
        "disability": _yn(c.dis),
        "econ_disadvantaged": _yn(c.econ),
        "homeless": _yn(c.homeless),
        "street_address": c.street,
        "zip": c.zipc,
        "school_id": c.school_ids[c.school_of_row],
        "grade_level": GRADES[np.minimum(rgi, 12) + 1],
        "school_year": rows.sy.to_numpy(),
        "enroll_date": D.to_strings(c.r_enroll),
        "exit_date": D.to_strings(rows.exit.to_numpy(), rows.exit.to_numpy() < D.NEVER),
    })
    internal = pd.DataFrame({
        "_person": c.rp, "_c": c.rc, "_id": c.row_id, "_enroll": c.r_enroll, "_exit": rows.exit.to_numpy(),
        "_gi": rgi, "_yi": c.ryi, "_school": c.school_of_row, "_econ": c.econ, "_el": c.el, "_dis": c.dis,
        "_homeless": c.homeless, "_part": rows.part.to_numpy(), "_transfer": rows.transfer.to_numpy(),
        "_comeback": rows.comeback.to_numpy(), "_addr": c.addr,
    })
    return students, internal


def _attendance(c: FpsState, students: pd.DataFrame, internal: pd.DataFrame) -> pd.DataFrame:
    """Attendance: one row per enrolment row (days enrolled and absent); ``internal`` gets both."""
    rng, R, ryi, rc, r_enroll = c.rng, c.R, c.ryi, c.rc, c.r_enroll
    fd_r, ld_r = c.cal_first[ryi], c.cal_last[ryi]
    r_exit = c.rows.exit.to_numpy()
    ov_lo = np.maximum(r_enroll, fd_r)
    ov_hi = np.minimum.reduce([np.where(r_exit < D.NEVER, r_exit, ld_r), ld_r, np.full(R, c.as_of)])
    frac = np.clip((ov_hi - ov_lo + 1) / (ld_r - fd_r + 1), 0, 1)
    days = np.where(ov_hi >= ov_lo, np.round(frac * c.cal_days[ryi]), 0).astype(np.int64)
    prop = rng.normal(0, 0.8, c.n)
    lograte = (np.log(0.034) + prop[rc] + 0.35 * c.econ + 0.6 * c.homeless + 0.2 * c.dis
               + np.select([c.rgi < 0, c.rgi == 0, c.rgi >= 9], [0.25, 0.15, 0.35], 0.0) + rng.normal(0, 0.35, R))
    rate = np.clip(np.exp(lograte), 0, 0.85)
    absent = rng.binomial(days, rate)
    attendance = pd.DataFrame({
        "student_id": students.student_id.to_numpy(), "school_id": students.school_id.to_numpy(),
        "school_year": students.school_year.to_numpy(), "days_enrolled": days, "days_absent": absent,
    })
    # two rows of one student, school and year are summed downstream: they must never be exact duplicates
    for _ in range(3):
        dup = attendance.duplicated(keep="first").to_numpy()
        if not dup.any():
            break
        a = attendance.days_absent.to_numpy().copy()
        d_ = attendance.days_enrolled.to_numpy().copy()
        bump_abs = dup & (a < d_)
        a[bump_abs] += 1
        bump_days = dup & ~bump_abs & (d_ < 200)
        d_[bump_days] += 1
        attendance["days_absent"] = a
        attendance["days_enrolled"] = d_
    internal["_days"] = attendance.days_enrolled.to_numpy()
    internal["_absent"] = attendance.days_absent.to_numpy()
    return attendance


def _graduation(c: FpsState) -> pd.DataFrame:
    """Graduation cohorts inside the window: each cohort member's outcome, under their latest id."""
    rc, rgi, years, cohort, as_of = c.rc, c.rgi, c.years, c.cohort, c.as_of
    hs_rows = (rgi >= 9) & (c.rows.sy.to_numpy() <= cohort[rc])
    coh_child = np.unique(rc[hs_rows])
    coh_child = coh_child[(cohort[coh_child] >= years[0]) & (cohort[coh_child] <= years[-1])]
    c_ = cohort[coh_child]
    c_end = c.end[coh_child]
    c_last = c.last_day(c_)
    finished = c_last <= as_of
    during_hs = c_end <= c_last
    during_5th = (c_end > c_last) & (c_end <= c.last_day(c_ + 1))
    cause = np.select(
        [c_end == c.death[coh_child], c_end == c.dropout[coh_child]], [DEAD, DROP], TRANSFER)
    pln = c.plan[coh_child]
    outcome = np.full(len(coh_child), "STILL_ENROLLED", dtype=object)
    grad5_done = (c_ + 1 <= years[-1]) & (c.last_day(c_ + 1) <= as_of)
    outcome[finished & (pln == G4)] = "GRADUATED_4YR"
    outcome[finished & (pln == G5) & grad5_done & ~during_5th] = "GRADUATED_5YR"
    ev_map = {DEAD: "DECEASED", DROP: "DROPPED_OUT", TRANSFER: "TRANSFERRED_OUT"}
    for code, label in ev_map.items():
        outcome[during_hs & (cause == code)] = label
        outcome[during_5th & ((pln == G5) | (pln == STILL)) & (cause == code)] = label
    last_by_cohort = pd.DataFrame({"c": rc[hs_rows], "id": c.row_id[hs_rows], "enroll": c.r_enroll[hs_rows]})
    last_by_cohort = last_by_cohort.sort_values(["c", "enroll"], kind="stable").drop_duplicates("c", keep="last")
    gid = last_by_cohort.set_index("c").id.reindex(coh_child).to_numpy()
    c.counts["graduation_deceased"] = int((outcome == "DECEASED").sum())
    return pd.DataFrame({"student_id": c.id_str[gid], "cohort_year": c_, "outcome": outcome})
