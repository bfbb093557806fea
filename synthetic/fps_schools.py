"""Fairhaven Public Schools' school catalogue: schools sized from the enrolment they serve, and each
enrolment row's school (catchment by zip and address, choice and alternative schools, transfers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from synthetic.fps import FpsState

#: grade levels by grade index + 1 (pre-K is grade -1)
GRADES = np.array(["PK", "KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"], dtype=object)
LEVEL_NAMES = {0: "early_learning", 1: "elementary", 2: "middle", 3: "high", 4: "choice_k8", 5: "alternative_high"}
LEVEL_PREFIX = {0: "P", 1: "E", 2: "M", 3: "H", 4: "C", 5: "A"}
TARGET_SIZE = {1: 400, 2: 560, 3: 760}


def school_catalogue(c: FpsState) -> list[tuple[str, int, int]]:
    """The school catalogue, sized from the enrolment it serves; each row's school (``c.school_of_row``)."""
    rng, kind, zip_idx = c.rng, c.kind, c.zip_idx
    per_year = max(1, c.n_years)
    schools: list[tuple[str, int, int]] = []
    catch_base: dict[tuple[int, int], tuple[int, np.ndarray]] = {}
    next_no = {k: 1 for k in LEVEL_PREFIX}
    for lvl in (1, 2, 3):
        for z in range(len(c.pop.zips)):
            cnt = int(((kind == lvl) & (zip_idx == z)).sum())
            k = max(1, int(np.ceil(cnt / per_year / TARGET_SIZE[lvl])))
            w = rng.dirichlet(np.full(k, 5.0))
            cuts = np.cumsum(w)[:-1]
            base = len(schools)
            for _ in range(k):
                schools.append((f"{LEVEL_PREFIX[lvl]}{next_no[lvl]:03d}", lvl, z))
                next_no[lvl] += 1
            catch_base[(lvl, z)] = (base, cuts)
    special = {}
    for lvl, target, alpha in ((0, 70, 2.0), (4, 110, 0.7), (5, 60, 1.5)):
        cnt = int((kind == lvl).sum())
        k = max(1, int(round(cnt / per_year / target)))
        base = len(schools)
        for _ in range(k):
            schools.append((f"{LEVEL_PREFIX[lvl]}{next_no[lvl]:03d}", lvl, -1))
            next_no[lvl] += 1
        special[lvl] = (base, 0.85 * rng.dirichlet(np.full(k, alpha)) + 0.15 / k)  # no school of one pupil
    c.school_ids = np.array([s_[0] for s_ in schools], dtype=object)
    school_level = np.array([s_[1] for s_ in schools])

    def catchment(lvl_arr: np.ndarray, z_arr: np.ndarray, u_arr: np.ndarray) -> np.ndarray:
        out = np.full(len(lvl_arr), -1, dtype=np.int64)
        for (lvl, z), (base, cuts) in catch_base.items():
            msk = (lvl_arr == lvl) & (z_arr == z)
            if msk.any():
                out[msk] = base + np.searchsorted(cuts, u_arr[msk], side="right")
        return out

    child_pick = {lvl: base + rng.choice(len(w), size=c.n, p=w) for lvl, (base, w) in special.items()}
    school_of_row = catchment(kind, zip_idx, c.u)
    for lvl in (0, 4, 5):
        msk = kind == lvl
        school_of_row[msk] = child_pick[lvl][c.rc[msk]]
    c.school_of_row = _second_parts(c, school_of_row, school_level, catchment(np.where(c.level == 0, 1, c.level), zip_idx, c.u))
    return schools


def _second_parts(c: FpsState, school_of_row: np.ndarray, school_level: np.ndarray, moved_school: np.ndarray) -> np.ndarray:
    """Second parts of transfers: another school of the same level (the new neighbourhood's after a move);
    second parts of returns: the same school."""
    rng, rows = c.rng, c.rows
    part2 = (rows.part.to_numpy() == 1) & rows.transfer.to_numpy()
    prev = np.r_[-1, school_of_row[:-1]]
    pool_level = np.where(c.level == 0, 1, c.level)
    by_level = {lvl: np.flatnonzero(school_level == lvl) for lvl in (1, 2, 3)}
    rand_other = np.full(c.R, -1, dtype=np.int64)
    for lvl, pool in by_level.items():
        msk = part2 & (pool_level == lvl)
        if msk.any():
            rand_other[msk] = pool[rng.integers(0, len(pool), int(msk.sum()))]
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
    rows["addr"] = c.addr
    return school_of_row
