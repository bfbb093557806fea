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
from synthetic.noise import Flags, city_errors, force_difference, render_address, render_person
from synthetic.population import Population, make_ids, unique_numbers
from synthetic.profiles import FPS
from synthetic.strings import upper

GRADES = np.array(["PK", "KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"], dtype=object)
# high-school planned outcomes
G4, G5, STILL, DROP, TRANSFER, DEAD = range(6)
LEVEL_NAMES = {0: "early_learning", 1: "elementary", 2: "middle", 3: "high", 4: "choice_k8", 5: "alternative_high"}
LEVEL_PREFIX = {0: "P", 1: "E", 2: "M", 3: "H", 4: "C", 5: "A"}
TARGET_SIZE = {1: 400, 2: 560, 3: 760}
ASSESSED_GRADES = {3, 4, 5, 6, 7, 8, 11}
PROFICIENT = {
    "ELA": {3: 0.47, 4: 0.46, 5: 0.48, 6: 0.44, 7: 0.45, 8: 0.46, 11: 0.52},
    "MATH": {3: 0.45, 4: 0.42, 5: 0.38, 6: 0.36, 7: 0.35, 8: 0.35, 11: 0.28},
}


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


def build_fps(pop: Population, rng: np.random.Generator) -> FpsResult:
    P = pop.params
    as_of = P.as_of
    ps = pop.persons
    fams = pop.families
    years = np.array(P.years, dtype=np.int64)
    n_years = len(years)
    counts: dict[str, int] = {}

    # ---- district calendar
    cal_first = D.from_ymd(years - 1, np.full(n_years, 8), 18 + rng.integers(0, 10, n_years))
    cal_last = D.from_ymd(years, np.full(n_years, 6), 1 + rng.integers(0, 13, n_years))
    cal_days = rng.integers(176, 181, n_years)

    def first_day(sy: np.ndarray) -> np.ndarray:
        inside = (sy >= years[0]) & (sy <= years[-1])
        return np.where(inside, cal_first[np.clip(sy - years[0], 0, n_years - 1)],
                        D.from_ymd(sy - 1, np.full_like(sy, 8), np.full_like(sy, 22)))

    def last_day(sy: np.ndarray) -> np.ndarray:
        inside = (sy >= years[0]) & (sy <= years[-1])
        return np.where(inside, cal_last[np.clip(sy - years[0], 0, n_years - 1)],
                        D.from_ymd(sy, np.full_like(sy, 6), np.full_like(sy, 8)))

    # ---- children, grades and life events
    kids = np.flatnonzero(ps.is_child.to_numpy())
    n = len(kids)
    kf = ps.family.to_numpy()[kids]
    birth = ps.birth.to_numpy()[kids]
    by, bm, bd = D.ymd(birth)
    kg = by + 6 + ((bm > 9) | ((bm == 9) & (bd > 1))).astype(np.int64)
    kg = kg + rng.choice(np.array([0, 1, -1]), size=n, p=[0.94, 0.05, 0.01])
    cohort = kg + 12
    poverty = fams.poverty.to_numpy()[kf]
    arrive = fams.arrive.to_numpy()[kf]
    leave = fams.leave.to_numpy()[kf]
    private = fams.private_school.to_numpy()[kf]
    pk = rng.random(n) < 0.55
    window_first = int(cal_first[0])
    join = np.where(~private & (rng.random(n) < 0.04),
                    _uniform_between(rng, np.full(n, window_first), np.full(n, as_of)), D.LONG_AGO)
    indiv_leave = np.where(rng.random(n) < 0.05,
                           _uniform_between(rng, np.full(n, window_first), np.full(n, as_of + 1)), D.NEVER)
    plan = rng.choice(6, size=n, p=[0.83, 0.045, 0.03, 0.07, 0.022, 0.003])
    hs_lo = np.maximum(first_day(cohort - 2), window_first + 30)
    hs_hi = last_day(cohort) - 20
    ev = _uniform_between(rng, hs_lo, hs_hi)
    ev_ok = (hs_hi > hs_lo) & (ev <= as_of)
    dropout = np.where((plan == DROP) & ev_ok, ev, D.NEVER)
    death = np.where((plan == DEAD) & ev_ok, ev, D.NEVER)
    indiv_leave = np.where((plan == TRANSFER) & ev_ok, np.minimum(indiv_leave, ev), indiv_leave)
    start = np.maximum(arrive, join)
    end = np.minimum.reduce([leave, indiv_leave, dropout, death])
    ps.loc[kids[death < D.NEVER], "death"] = death[death < D.NEVER]

    # ---- one candidate row per child and school year
    ci = np.repeat(np.arange(n), n_years)
    yi = np.tile(np.arange(n_years), n)
    sy = years[yi]
    gi = sy - kg[ci]
    pl = plan[ci]
    ok = ((gi >= 0) & (gi <= 12)) | ((gi == -1) & pk[ci]) | ((gi == 13) & ((pl == G5) | (pl == STILL))) \
        | ((gi == 14) & (pl == STILL))
    fd = cal_first[yi]
    ld = cal_last[yi]
    ok &= ~private[ci] & (start[ci] <= np.minimum(ld, as_of)) & (end[ci] >= fd)
    ci, yi, sy, gi, fd, ld = ci[ok], yi[ok], sy[ok], gi[ok], fd[ok], ld[ok]
    m = len(ci)
    s, e = start[ci], end[ci]
    mid_entry = s > fd
    r = rng.random(m)
    enroll = np.where(mid_entry, s + rng.integers(0, 8, m),
                      np.where(r < 0.8, fd, np.where(r < 0.92, fd + rng.integers(1, 15, m), fd - rng.integers(5, 45, m))))
    # leaving during the year: exit that day; over the summer: exit on the last day of school
    exit_ = np.where(e < first_day(sy + 1), np.minimum(e, ld), D.NEVER)
    pl = plan[ci]
    final_year = ((pl == G4) & (gi == 12)) | ((pl == G5) & (gi == 13))
    exit_ = np.where(final_year & (exit_ == D.NEVER) & (rng.random(m) < 0.7), ld, exit_)
    exit_ = np.where(exit_ > as_of, D.NEVER, exit_)
    exit_ = np.where(exit_ < D.NEVER, np.maximum(exit_, enroll), exit_)
    keep = enroll <= as_of
    ci, yi, sy, gi, fd, ld, enroll, exit_ = (a[keep] for a in (ci, yi, sy, gi, fd, ld, enroll, exit_))
    m = len(ci)

    # ---- mid-year transfers and returns to the same school
    span_end = np.where(exit_ < D.NEVER, exit_, np.minimum(ld, as_of))
    moves = pop.fam_move[kf[ci]]
    in_span = (moves >= enroll[:, None] + 20) & (moves <= span_end[:, None] - 20)
    move_date = np.where(in_span[:, 0], moves[:, 0], np.where(in_span[:, 1], moves[:, 1], D.NEVER))
    moved = (move_date < D.NEVER) & (rng.random(m) < 0.6)
    long_enough = span_end - enroll > 60
    p_tr = 0.015 + 0.01 * np.clip(poverty[ci], 0, 2)
    r = rng.random(m)
    transfer = (moved | (r < p_tr)) & long_enough
    comeback = ~transfer & long_enough & (r > 0.997)
    t_date = np.where(moved, move_date, _uniform_between(rng, enroll + 20, span_end - 20))
    gap = np.where(comeback, rng.integers(10, 40, m), rng.integers(1, 8, m))
    second_enroll = t_date + gap
    split = (transfer | comeback) & (second_enroll <= np.minimum(span_end, as_of))
    transfer &= split
    comeback &= split
    counts["mid_year_transfers_planned"] = int(transfer.sum())
    idx2 = np.flatnonzero(split)
    # first part: exit at the split date; second part: a later enrolment with the original exit
    row_src = np.concatenate([np.arange(m), idx2])
    part = np.concatenate([np.zeros(m, dtype=np.int8), np.ones(len(idx2), dtype=np.int8)])
    r_enroll = np.concatenate([enroll, second_enroll[idx2]])
    r_exit = np.concatenate([np.where(split, t_date, exit_), exit_[idx2]])
    rows = pd.DataFrame({
        "c": ci[row_src], "yi": yi[row_src], "sy": sy[row_src], "gi": gi[row_src], "enroll": r_enroll,
        "exit": r_exit, "part": part, "transfer": transfer[row_src], "comeback": comeback[row_src],
        "moved": moved[row_src], "src": row_src,
    })
    rows = rows.sort_values(["c", "sy", "enroll", "part"], kind="stable").reset_index(drop=True)
    R = len(rows)
    rc = rows.c.to_numpy()
    rf = kf[rc]

    # ---- addresses (a few rows keep last year's address) and school levels
    stale = rng.random(R) < 0.08
    addr = pop.address_at(rf, np.where(stale, rows.enroll.to_numpy() - 200, rows.enroll.to_numpy()))
    zip_idx = pop.book.zip_idx[addr]
    u = pop.book.u[addr]
    rgi = rows.gi.to_numpy()
    level = np.where(rgi < 0, 0, np.where(rgi <= 5, 1, np.where(rgi <= 8, 2, 3)))
    elc = rng.random(n) < 0.35
    choice = rng.random(n) < 0.07
    alt = rng.random(n) < 0.05
    kind = level.copy()
    kind = np.where((kind == 0) & ~elc[rc], 1, kind)
    kind = np.where(((kind == 1) | (kind == 2)) & (rgi >= 0) & choice[rc], 4, kind)
    kind = np.where((kind == 3) & alt[rc], 5, kind)
    per_year = max(1, n_years)

    # ---- the school catalogue, sized from the enrolment it serves
    schools = []
    school_of_row = np.full(R, -1, dtype=np.int64)
    catch_base: dict[tuple[int, int], tuple[int, np.ndarray]] = {}
    next_no = {k: 1 for k in LEVEL_PREFIX}
    n_zip = len(pop.zips)
    for lvl in (1, 2, 3):
        for z in range(n_zip):
            cnt = int(((kind == lvl) & (zip_idx == z)).sum())
            k = max(1, int(np.ceil(cnt / per_year / TARGET_SIZE[lvl])))
            w = rng.dirichlet(np.full(k, 5.0))
            cuts = np.cumsum(w)[:-1]
            base = len(schools)
            for j in range(k):
                schools.append((f"{LEVEL_PREFIX[lvl]}{next_no[lvl]:03d}", lvl, z))
                next_no[lvl] += 1
            catch_base[(lvl, z)] = (base, cuts)
    special = {}
    for lvl, target, alpha in ((0, 70, 2.0), (4, 110, 0.7), (5, 60, 1.5)):
        cnt = int((kind == lvl).sum())
        k = max(1, int(round(cnt / per_year / target)))
        base = len(schools)
        for j in range(k):
            schools.append((f"{LEVEL_PREFIX[lvl]}{next_no[lvl]:03d}", lvl, -1))
            next_no[lvl] += 1
        special[lvl] = (base, 0.85 * rng.dirichlet(np.full(k, alpha)) + 0.15 / k)  # no school of one pupil
    school_ids = np.array([s_[0] for s_ in schools], dtype=object)
    school_level = np.array([s_[1] for s_ in schools])

    def catchment(lvl_arr: np.ndarray, z_arr: np.ndarray, u_arr: np.ndarray) -> np.ndarray:
        out = np.full(len(lvl_arr), -1, dtype=np.int64)
        for (lvl, z), (base, cuts) in catch_base.items():
            msk = (lvl_arr == lvl) & (z_arr == z)
            if msk.any():
                out[msk] = base + np.searchsorted(cuts, u_arr[msk], side="right")
        return out

    child_pick = {lvl: base + rng.choice(len(w), size=n, p=w) for lvl, (base, w) in special.items()}
    school_of_row = catchment(kind, zip_idx, u)
    for lvl in (0, 4, 5):
        msk = kind == lvl
        school_of_row[msk] = child_pick[lvl][rc[msk]]
    # second parts of transfers: another school of the same level (the new neighbourhood's after a move)
    part2 = (rows.part.to_numpy() == 1) & rows.transfer.to_numpy()
    prev = np.r_[-1, school_of_row[:-1]]
    pool_level = np.where(level == 0, 1, level)
    by_level = {lvl: np.flatnonzero(school_level == lvl) for lvl in (1, 2, 3)}
    rand_other = np.full(R, -1, dtype=np.int64)
    for lvl, pool in by_level.items():
        msk = part2 & (pool_level == lvl)
        if msk.any():
            rand_other[msk] = pool[rng.integers(0, len(pool), int(msk.sum()))]
    moved_school = catchment(pool_level, zip_idx, u)
    new_school = np.where(rows.moved.to_numpy() & (moved_school != prev), moved_school, rand_other)
    for lvl, pool in by_level.items():  # never "transfer" into the same school
        msk = part2 & (new_school == prev) & (pool_level == lvl)
        if msk.any():
            pos = np.searchsorted(pool, prev[msk])
            new_school[msk] = pool[(pos + 1) % len(pool)]
    school_of_row = np.where(part2, new_school, school_of_row)
    comeback2 = (rows.part.to_numpy() == 1) & rows.comeback.to_numpy()
    school_of_row = np.where(comeback2, prev, school_of_row)
    assert (school_of_row >= 0).all()
    rows["school"] = school_of_row
    rows["addr"] = addr

    # ---- student ids; a few children get a second id part-way (re-registered with other details)
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
    id_str = make_ids(id_numbers, "", 9)
    id_of_child = np.full(n, -1, dtype=np.int64)
    id_of_child[enrolled_children] = np.arange(len(enrolled_children))
    id2_of_child = np.full(n, -1, dtype=np.int64)
    id2_of_child[dup_child] = len(enrolled_children) + np.arange(int(dup_child.sum()))
    row_id = np.where(second, id2_of_child[rc], id_of_child[rc])
    id_child = np.empty(n_ids, dtype=np.int64)
    id_child[id_of_child[enrolled_children]] = enrolled_children
    id_child[id2_of_child[dup_child]] = np.flatnonzero(dup_child)
    is_second_id = np.zeros(n_ids, dtype=bool)
    is_second_id[id2_of_child[dup_child]] = True
    counts["students_with_two_ids"] = int(dup_child.sum())

    # ---- how each student id records the child (registered once, mostly carried from year to year)
    r_enroll = rows.enroll.to_numpy()
    first_enroll = np.full(n_ids, D.NEVER)
    np.minimum.at(first_enroll, row_id, r_enroll)
    pidx = kids[id_child]
    truth = {
        "first": ps["first"].to_numpy()[pidx], "middle": ps.middle.to_numpy()[pidx],
        "last1": ps.last1.to_numpy()[pidx], "last2": ps.last2.to_numpy()[pidx],
        "last_sep": ps.last_sep.to_numpy()[pidx], "birth": ps.birth.to_numpy()[pidx], "sex": ps.sex.to_numpy()[pidx],
    }
    new_last = ps.new_last.to_numpy()[pidx]
    truth_new = dict(truth, last1=np.where(new_last != "", new_last, truth["last1"]),
                     last2=np.where(new_last != "", "", truth["last2"]),
                     last_sep=np.where(new_last != "", "", truth["last_sep"]))
    birth_max = np.minimum(first_enroll - 1, as_of)
    regs = []
    for is2 in (False, True):
        prof = FPS.boosted(4.0) if is2 else FPS
        sub = np.flatnonzero(is_second_id == is2)
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
    reg_old = {}
    reg_new = {}
    for sub, ((o_old, f_old), (o_new, f_new)) in regs:
        for store, o, f in ((reg_old, o_old, f_old), (reg_new, o_new, f_new)):
            for k, v in list(o.items()) + [("flag:" + k2, v2) for k2, v2 in f.items()]:
                if k not in store:
                    store[k] = np.empty(n_ids, dtype=v.dtype) if v.dtype != bool else np.zeros(n_ids, dtype=bool)
                store[k][sub] = v
    # race as the school recorded it
    race_true = ps.race.to_numpy()[pidx]
    alt_race = np.where(race_true == "MR", np.array(["HI", "BL", "WH", "AS"], dtype=object)[rng.integers(0, 4, n_ids)], "MR")
    race_diff = rng.random(n_ids) < 0.008
    race_id = np.where(race_diff, alt_race, race_true).astype(object)

    # ---- rows: identity from the registration, surname changes, corrections, per-row variation
    rp = kids[rc]
    change = ps.change_date.to_numpy()[rp]
    updated = rng.random(n_ids) < 0.85
    use_new = (r_enroll >= change) & updated[row_id] & (new_last[row_id] != "")
    out: dict[str, np.ndarray] = {}
    for k in reg_old:
        out[k] = np.where(use_new, reg_new[k][row_id], reg_old[k][row_id]) if k.startswith(("last_name", "flag:last_name")) else reg_old[k][row_id]
    flags: Flags = {k[5:]: v for k, v in out.items() if k.startswith("flag:")}
    flags["last_name:surname_changed"] = use_new
    birth_true = ps.birth.to_numpy()[rp]
    bad_birth = out["birth"] != birth_true
    fix_year = rng.integers(0, n_years + 1, n_ids) + years[0]
    fixed = bad_birth & (rng.random(n_ids) < 0.3)[row_id] & (rows.sy.to_numpy() >= fix_year[row_id])
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
    race_row = race_id[row_id].copy()
    race_row_diff = rng.random(R) < 0.003
    race_row = np.where(race_row_diff, np.where(race_row == "MR", race_true[row_id], "MR"), race_row).astype(object)
    flags["race_ethnicity:reported_differently"] = race_row != ps.race.to_numpy()[rp]
    street, zipc, aflags = render_address(pop.book.parts(addr), pop.book.zip[addr], FPS, rng)
    flags.update(aflags)

    # ---- yearly flags, correlated
    race_c = ps.race.to_numpy()[kids]
    el_p = pd.Series({"HI": 0.32, "AS": 0.28, "PI": 0.2, "AI": 0.05, "MR": 0.05, "BL": 0.04, "WH": 0.02})[race_c].to_numpy()
    el_base = rng.random(n) < el_p * np.where(arrive > D.LONG_AGO, 1.5, 1.0)
    el_exit = rng.integers(1, 16, n)
    sex_c = ps.sex.to_numpy()[kids]
    dis_base = rng.random(n) < np.where(sex_c == "M", 0.17, 0.10)
    dis_onset = rng.choice(np.arange(-1, 6), size=n, p=[0.15, 0.25, 0.2, 0.15, 0.12, 0.08, 0.05])
    fam_year_pov = poverty[:, None] + rng.normal(0, 0.3, (n, n_years))
    homeless_fy = rng.random((len(fams), n_years)) < 1 / (1 + np.exp(-(-4.6 + 1.0 * fams.poverty.to_numpy()[:, None])))
    pop.homeless_years = homeless_fy  # type: ignore[attr-defined]
    ryi = rows.yi.to_numpy()
    el = el_base[rc] & (rgi < el_exit[rc])
    dis = dis_base[rc] & (rgi >= dis_onset[rc])
    econ = fam_year_pov[rc, ryi] > 0.15
    homeless = homeless_fy[rf, ryi]
    econ |= homeless

    students = pd.DataFrame({
        "student_id": id_str[row_id],
        "first_name": out["first_name"],
        "middle_name": np.where(out["middle_name"] == "", None, out["middle_name"]),
        "last_name": out["last_name"],
        "birth_date": D.to_strings(out["birth"]),
        "sex": out["sex"],
        "race_ethnicity": race_row,
        "english_learner": _yn(el),
        "disability": _yn(dis),
        "econ_disadvantaged": _yn(econ),
        "homeless": _yn(homeless),
        "street_address": street,
        "zip": zipc,
        "school_id": school_ids[school_of_row],
        "grade_level": GRADES[np.minimum(rgi, 12) + 1],
        "school_year": rows.sy.to_numpy(),
        "enroll_date": D.to_strings(r_enroll),
        "exit_date": D.to_strings(rows.exit.to_numpy(), rows.exit.to_numpy() < D.NEVER),
    })
    internal = pd.DataFrame({
        "_person": rp, "_c": rc, "_id": row_id, "_enroll": r_enroll, "_exit": rows.exit.to_numpy(),
        "_gi": rgi, "_yi": ryi, "_school": school_of_row, "_econ": econ, "_el": el, "_dis": dis,
        "_homeless": homeless, "_part": rows.part.to_numpy(), "_transfer": rows.transfer.to_numpy(),
        "_comeback": rows.comeback.to_numpy(), "_addr": addr,
    })

    # ---- attendance: one row per enrolment row
    fd_r, ld_r = cal_first[ryi], cal_last[ryi]
    r_exit = rows.exit.to_numpy()
    ov_lo = np.maximum(r_enroll, fd_r)
    ov_hi = np.minimum.reduce([np.where(r_exit < D.NEVER, r_exit, ld_r), ld_r, np.full(R, as_of)])
    frac = np.clip((ov_hi - ov_lo + 1) / (ld_r - fd_r + 1), 0, 1)
    days = np.where(ov_hi >= ov_lo, np.round(frac * cal_days[ryi]), 0).astype(np.int64)
    prop = rng.normal(0, 0.8, n)
    lograte = (np.log(0.034) + prop[rc] + 0.35 * econ + 0.6 * homeless + 0.2 * dis
               + np.select([rgi < 0, rgi == 0, rgi >= 9], [0.25, 0.15, 0.35], 0.0) + rng.normal(0, 0.35, R))
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

    # ---- assessments, from each student's latest row of the year
    last_row = ~pd.Series(rc * 10_000 + rows.sy.to_numpy()).duplicated(keep="last").to_numpy()
    lr = np.flatnonzero(last_row)
    lc, lyi, lgi = rc[lr], ryi[lr], rgi[lr]
    lsy = years[lyi]
    in_rows = pd.DataFrame({"c": rc, "sy": rows.sy.to_numpy(), "lo": r_enroll,
                            "hi": np.where(r_exit < D.NEVER, r_exit, D.NEVER)})
    ability = rng.normal(0, 1, n)

    def enrolled_on(when: np.ndarray) -> np.ndarray:
        # whether the child of each latest row had a row covering the date that year
        key = in_rows.c.to_numpy() * 10_000 + in_rows.sy.to_numpy()
        lkey = lc * 10_000 + lsy
        pos = np.searchsorted(lkey, key)
        pos = np.clip(pos, 0, len(lkey) - 1)
        hit = (in_rows.lo.to_numpy() <= when[pos]) & (in_rows.hi.to_numpy() >= when[pos]) & (lkey[pos] == key)
        res = np.zeros(len(lr), dtype=bool)
        np.logical_or.at(res, pos[hit], True)
        return res

    assess = []
    # KRA in the fall of kindergarten
    kra_day = D.from_ymd(lsy - 1, np.full(len(lr), 10), np.full(len(lr), 1))
    kra = (lgi == 0) & enrolled_on(kra_day) & (rng.random(len(lr)) < 0.93) & (kra_day <= as_of)
    spring = D.from_ymd(lsy, np.full(len(lr), 4), np.full(len(lr), 15))
    tested = np.isin(lgi, list(ASSESSED_GRADES)) & enrolled_on(spring) & (spring <= as_of)
    l_econ, l_el, l_dis = econ[lr], el[lr], dis[lr]
    base = ability[lc] - 0.35 * l_econ - 0.45 * l_el - 0.7 * l_dis
    kz = 0.8 * base + rng.normal(0, 0.6, len(lr))
    ki = np.flatnonzero(kra)
    if len(ki):
        z = kz[ki]
        t1, t2 = np.quantile(z, [0.27, 0.55])
        level = 1 + (z >= t1) + (z >= t2)
        score = np.clip(np.round(262 + 12 * z), 202, 298).astype(np.int64)
        assess.append(pd.DataFrame({"li": ki, "subject": "KRA", "z": z, "level": level, "score": score}))
    for subject in ("ELA", "MATH"):
        z = 0.85 * base - (0.35 * l_el if subject == "ELA" else 0.1 * l_el) + rng.normal(0, 0.5, len(lr))
        sel = tested & (rng.random(len(lr)) < 0.96)
        for g, prof in PROFICIENT[subject].items():
            gi_sel = np.flatnonzero(sel & (lgi == g))
            if len(gi_sel) == 0:
                continue
            zz = z[gi_sel]
            q = [0.55 * (1 - prof), 1 - prof, 1 - 0.4 * prof]
            th = np.quantile(zz, q)
            level = 1 + (zz >= th[0]) + (zz >= th[1]) + (zz >= th[2])
            score = np.clip(np.round(2100 + 40 * g + 90 * zz), 1800, 3000).astype(np.int64)
            df = pd.DataFrame({"li": gi_sel, "subject": subject, "z": zz, "level": level, "score": score})
            df["th0"], df["th1"], df["th2"], df["g"] = th[0], th[1], th[2], g
            assess.append(df)
    a = pd.concat(assess, ignore_index=True) if assess else pd.DataFrame(columns=["li", "subject", "z", "level", "score"])
    a["score"] = a.score.astype("Int64")
    a.loc[rng.random(len(a)) < 0.02, "score"] = pd.NA
    # retests: a second result the same year (never identical to the first)
    ret = (a.subject != "KRA").to_numpy() & (rng.random(len(a)) < 0.02)
    rt = a[ret].copy()
    if len(rt):
        rt["z"] = rt.z + np.abs(rng.normal(0.3, 0.3, len(rt)))
        rt["level"] = 1 + (rt.z >= rt.th0).astype(int) + (rt.z >= rt.th1) + (rt.z >= rt.th2)
        sc = np.clip(np.round(2100 + 40 * rt.g + 90 * rt.z), 1800, 3000).astype(np.int64)
        same = sc == a.score[ret].fillna(-1).to_numpy()
        rt["score"] = pd.array(np.where(same, sc + 1, sc), dtype="Int64")
    counts["assessment_retests"] = int(len(rt))
    a = pd.concat([a, rt], ignore_index=True)
    li = a.li.to_numpy().astype(np.int64)
    assessments = pd.DataFrame({
        "student_id": id_str[row_id[lr[li]]], "school_year": lsy[li], "grade_level": GRADES[np.minimum(lgi[li], 12) + 1],
        "subject": a.subject.to_numpy(), "scale_score": a.score.to_numpy(), "performance_level": a.level.to_numpy().astype(np.int64),
    })

    # ---- graduation cohorts inside the window
    hs_rows = (rgi >= 9) & (rows.sy.to_numpy() <= cohort[rc])
    coh_child = np.unique(rc[hs_rows])
    coh_child = coh_child[(cohort[coh_child] >= years[0]) & (cohort[coh_child] <= years[-1])]
    c_ = cohort[coh_child]
    c_end = end[coh_child]
    c_last = last_day(c_)
    finished = c_last <= as_of
    during_hs = c_end <= c_last
    during_5th = (c_end > c_last) & (c_end <= last_day(c_ + 1))
    cause = np.select(
        [c_end == death[coh_child], c_end == dropout[coh_child]], [DEAD, DROP], TRANSFER)
    pln = plan[coh_child]
    outcome = np.full(len(coh_child), "STILL_ENROLLED", dtype=object)
    grad5_done = (c_ + 1 <= years[-1]) & (last_day(c_ + 1) <= as_of)
    outcome[finished & (pln == G4)] = "GRADUATED_4YR"
    outcome[finished & (pln == G5) & grad5_done & ~during_5th] = "GRADUATED_5YR"
    ev_map = {DEAD: "DECEASED", DROP: "DROPPED_OUT", TRANSFER: "TRANSFERRED_OUT"}
    for code, label in ev_map.items():
        outcome[during_hs & (cause == code)] = label
        outcome[during_5th & ((pln == G5) | (pln == STILL)) & (cause == code)] = label
    last_by_cohort = pd.DataFrame({"c": rc[hs_rows], "id": row_id[hs_rows], "enroll": r_enroll[hs_rows]})
    last_by_cohort = last_by_cohort.sort_values(["c", "enroll"], kind="stable").drop_duplicates("c", keep="last")
    gid = last_by_cohort.set_index("c").id.reindex(coh_child).to_numpy()
    graduation = pd.DataFrame({"student_id": id_str[gid], "cohort_year": c_, "outcome": outcome})
    counts["graduation_deceased"] = int((outcome == "DECEASED").sum())

    ids = pd.DataFrame({"source_id": id_str, "person": pidx})
    sch_enrol = pd.Series(school_of_row).value_counts().reindex(np.arange(len(schools)), fill_value=0).to_numpy()
    schools_df = pd.DataFrame({
        "school_id": school_ids, "kind": [LEVEL_NAMES[s_[1]] for s_ in schools],
        "zip": [pop.zips[s_[2]] if s_[2] >= 0 else "" for s_ in schools],
        "mean_enrolment_rows_per_year": np.round(sch_enrol / per_year, 1),
    })
    res = FpsResult(students, flags, attendance, assessments, graduation, ids, schools_df, counts)
    res.internal = internal  # type: ignore[attr-defined]
    res.calendar = pd.DataFrame({"sy": years, "first_day": cal_first, "last_day": cal_last, "days": cal_days})  # type: ignore[attr-defined]
    res.kg = kg  # type: ignore[attr-defined]
    res.kids = kids  # type: ignore[attr-defined]
    return res
