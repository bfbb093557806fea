"""County Department of Human Services: clients (children and their parents) and program spells.

About a third of the children's families are known to human services. Household programs (SNAP, TANF,
housing assistance, homeless services) enrol every member of the family present at the time; WIC enrols
children under 5 with their mother; child-care subsidies children under 13; child welfare and foster
care single children (rare). Spells have start and end dates, the end blank while ongoing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synthetic import _dates as D
from synthetic.noise import Flags, city_errors, force_difference, render_address, render_person
from synthetic.population import Population, make_ids, unique_numbers
from synthetic.profiles import DHS

PROGRAMS = np.array(["SNAP", "TANF", "WIC", "CHILD_CARE_SUBSIDY", "CHILD_WELFARE", "FOSTER_CARE",
                     "HOUSING_ASSISTANCE", "HOMELESS_SERVICES"], dtype=object)
SNAP, TANF, WIC, CCS, CW, FC, HA, HS = range(8)


@dataclass
class DhsResult:
    clients: pd.DataFrame
    client_flags: Flags
    program_enrollments: pd.DataFrame
    ids: pd.DataFrame  # source_id, person
    counts: dict[str, int] = field(default_factory=dict)


def _spells(rng: np.random.Generator, owner: np.ndarray, lo: np.ndarray, hi: np.ndarray, mean_days: float,
            max_spells: int, p_more: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to ``max_spells`` consecutive spells per owner starting inside ``[lo, hi]``."""
    owners, starts, ends = [], [], []
    cur = lo + np.floor(rng.random(len(owner)) * np.maximum(hi - lo, 1)).astype(np.int64)
    alive = np.ones(len(owner), dtype=bool)
    for i in range(max_spells):
        dur = 30 + np.round(rng.exponential(mean_days, len(owner))).astype(np.int64)
        owners.append(owner[alive])
        starts.append(cur[alive])
        ends.append((cur + dur)[alive])
        cur = cur + dur + 30 + np.round(rng.exponential(300, len(owner))).astype(np.int64)
        alive &= (rng.random(len(owner)) < p_more) & (cur <= hi)
    return np.concatenate(owners), np.concatenate(starts), np.concatenate(ends)


def build_dhs(pop: Population, rng: np.random.Generator, homeless_years: np.ndarray) -> DhsResult:
    P = pop.params
    ps = pop.persons
    fams = pop.families
    counts: dict[str, int] = {}
    pf = ps.family.to_numpy()
    lookback = P.window_start - 3 * 365
    f_lo = np.maximum(fams.arrive.to_numpy(), lookback)
    f_hi = np.minimum(fams.leave.to_numpy(), P.as_of)
    dhs_fam = fams.dhs.to_numpy() & (f_hi > f_lo)
    fs = _family_spells(pop, rng, homeless_years, dhs_fam, f_lo, f_hi)

    # every member of the family alive and born during the spell
    birth = ps.birth.to_numpy()
    members = pd.DataFrame({"person": np.arange(len(ps)), "fam": pf})
    members = members[dhs_fam[pf]]
    rows = fs.merge(members, on="fam", how="inner")
    rp = rows.person.to_numpy()
    r_start = np.maximum(rows.start.to_numpy(), birth[rp])
    r_end = rows.end.to_numpy()
    rows = pd.DataFrame({"person": rp, "prog": rows.prog.to_numpy(), "start": r_start, "end": r_end})
    indiv = _individual_spells(pop, rng, dhs_fam, f_lo, f_hi)
    rows = pd.concat([rows] + [pd.DataFrame({"person": a, "prog": b, "start": c, "end": d}) for a, b, c, d in indiv],
                     ignore_index=True)
    rows = _clip_spells(pop, rows)
    rec_person, rec_second, rec_id, enrollments = _client_records(pop, rng, rows, counts)
    clients, flags, addr = _client_rows(pop, rng, rec_person, rec_second, rec_id, enrollments)
    ids = pd.DataFrame({"id_type": "client", "source_id": rec_id, "person": rec_person})
    res = DhsResult(clients, flags, enrollments, ids, counts)
    res.addr = addr  # type: ignore[attr-defined]
    return res


def _family_spells(pop: Population, rng: np.random.Generator, homeless_years: np.ndarray, dhs_fam: np.ndarray,
                   f_lo: np.ndarray, f_hi: np.ndarray) -> pd.DataFrame:
    """Household programs' spells (SNAP, TANF, housing, homeless services): fam, prog, start, end."""
    fam_idx = np.flatnonzero(dhs_fam)
    poverty = pop.families.poverty.to_numpy()
    fam_spells = []  # (family, program, start, end)
    for prog, share, mean_days, max_sp, p_more in ((SNAP, 0.8, 540, 3, 0.35), (TANF, 0.22, 300, 2, 0.2),
                                                   (HA, 0.2, 1100, 1, 0.0)):
        sel = fam_idx[rng.random(len(fam_idx)) < share * np.clip(0.8 + 0.2 * poverty[fam_idx], 0.5, 1.5)]
        o, s, e = _spells(rng, sel, f_lo[sel], f_hi[sel], mean_days, max_sp, p_more)
        fam_spells.append((o, np.full(len(o), prog), s, e))
    # homeless services around the school years a family was homeless, and some others
    years = np.array(pop.params.years)
    hf, hy = np.nonzero(homeless_years & dhs_fam[:, None])
    take = rng.random(len(hf)) < 0.7
    hf, hy = hf[take], hy[take]
    hs_start = D.sy_start(years[hy]) + rng.integers(0, 330, len(hy))
    extra = fam_idx[rng.random(len(fam_idx)) < 0.03]
    extra_start = f_lo[extra] + np.floor(rng.random(len(extra)) * np.maximum(f_hi[extra] - f_lo[extra], 1)).astype(np.int64)
    o = np.concatenate([hf, extra])
    s = np.concatenate([hs_start, extra_start])
    e = s + 20 + np.round(rng.exponential(120, len(o))).astype(np.int64)
    fam_spells.append((o, np.full(len(o), HS), s, e))
    return pd.DataFrame({
        "fam": np.concatenate([x[0] for x in fam_spells]), "prog": np.concatenate([x[1] for x in fam_spells]),
        "start": np.concatenate([x[2] for x in fam_spells]), "end": np.concatenate([x[3] for x in fam_spells]),
    })


def _individual_spells(pop: Population, rng: np.random.Generator, dhs_fam: np.ndarray, f_lo: np.ndarray,
                       f_hi: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """WIC (under 5, with the mother), child care (under 13), child welfare, foster care: (person, prog, start, end)."""
    ps = pop.persons
    pf = ps.family.to_numpy()
    birth = ps.birth.to_numpy()
    role = ps.role.to_numpy()
    kids_in = np.flatnonzero(ps.is_child.to_numpy() & dhs_fam[pf])
    k_lo = np.maximum(birth[kids_in], f_lo[pf[kids_in]])
    k_hi = f_hi[pf[kids_in]]
    indiv = []
    # WIC
    wic_hi = np.minimum(D.add_years(birth[kids_in], 5), k_hi)
    sel = (wic_hi > k_lo) & (rng.random(len(kids_in)) < 0.6)
    ws = k_lo[sel] + np.floor(rng.random(int(sel.sum())) * np.minimum(np.maximum(wic_hi[sel] - k_lo[sel], 1), 400)).astype(np.int64)
    we = np.minimum(ws + 60 + np.round(rng.exponential(700, len(ws))).astype(np.int64), wic_hi[sel])
    indiv.append((kids_in[sel], np.full(len(ws), WIC), ws, we))
    mothers = pd.Series(np.flatnonzero(role == "mother"), index=pf[role == "mother"])
    mom = mothers.reindex(pf[kids_in[sel]]).to_numpy()
    has_mom = ~np.isnan(mom)
    mom_end = np.minimum(we, ws + 365)
    indiv.append((mom[has_mom].astype(np.int64), np.full(int(has_mom.sum()), WIC), ws[has_mom], mom_end[has_mom]))
    # child care subsidy
    cc_hi = np.minimum(D.add_years(birth[kids_in], 13), k_hi)
    sel = (cc_hi > k_lo) & (rng.random(len(kids_in)) < 0.22)
    o, s, e = _spells(rng, kids_in[sel], k_lo[sel], cc_hi[sel], 420, 2, 0.3)
    indiv.append((o, np.full(len(o), CCS), s, e))
    # child welfare, and foster care (mostly children known to child welfare)
    sel_cw = rng.random(len(kids_in)) < 0.03
    o, s, e = _spells(rng, kids_in[sel_cw], k_lo[sel_cw], k_hi[sel_cw], 240, 2, 0.15)
    indiv.append((o, np.full(len(o), CW), s, e))
    sel_fc = (sel_cw & (rng.random(len(kids_in)) < 0.25)) | (rng.random(len(kids_in)) < 0.002)
    o, s, e = _spells(rng, kids_in[sel_fc], k_lo[sel_fc], k_hi[sel_fc], 420, 1, 0.0)
    indiv.append((o, np.full(len(o), FC), s, e))
    return indiv


def _clip_spells(pop: Population, rows: pd.DataFrame) -> pd.DataFrame:
    """Spells clipped to life in the city and to the as-of date (open when ending after it), one per start."""
    ps, fams, as_of = pop.persons, pop.families, pop.params.as_of
    pf = ps.family.to_numpy()
    birth = ps.birth.to_numpy()
    rp = rows.person.to_numpy()
    start = np.maximum.reduce([rows.start.to_numpy(), birth[rp], fams.arrive.to_numpy()[pf[rp]],
                               np.full(len(rp), D.day(dt.date(1990, 1, 1)))])
    end = np.minimum.reduce([rows.end.to_numpy(), fams.leave.to_numpy()[pf[rp]], ps.death.to_numpy()[rp]])
    ok = (start <= as_of) & (end >= start)
    rows = pd.DataFrame({"person": rp[ok], "prog": rows.prog.to_numpy()[ok], "start": start[ok], "end": end[ok]})
    rows["end"] = np.where(rows.end.to_numpy() > as_of, D.NEVER, rows.end.to_numpy())
    rows = rows.sort_values(["person", "prog", "start", "end"], kind="stable")
    return rows.drop_duplicates(["person", "prog", "start"], keep="last").reset_index(drop=True)


def _client_records(
    pop: Population, rng: np.random.Generator, rows: pd.DataFrame, counts: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """Clients: everyone with a spell; a few get a second client id. (record's person, is second, id, enrollments)."""
    n_p = len(pop.persons)
    is_child = pop.persons.is_child.to_numpy()
    who = np.unique(rows.person.to_numpy())
    dup = np.zeros(n_p, dtype=bool)
    dup[who] = rng.random(len(who)) < city_errors().reregistration * np.where(is_child[who], 0.012, 0.008)
    dup_who = np.flatnonzero(dup)
    counts["clients_with_two_ids"] = int(dup.sum())
    rec_person = np.concatenate([who, dup_who])
    rec_second = np.concatenate([np.zeros(len(who), dtype=bool), np.ones(len(dup_who), dtype=bool)])
    n_rec = len(rec_person)
    rec_id = make_ids(unique_numbers(rng, n_rec, 100_000_000, 999_999_999), "D", 9)
    first_rec = np.full(n_p, -1, dtype=np.int64)
    first_rec[who] = np.arange(len(who))
    second_rec = np.full(n_p, -1, dtype=np.int64)
    second_rec[dup_who] = len(who) + np.arange(len(dup_who))
    ep = rows.person.to_numpy()
    on_second = (second_rec[ep] >= 0) & (rng.random(len(ep)) < 0.4)
    rec_of_row = np.where(on_second, second_rec[ep], first_rec[ep])
    # a second id must hold at least one spell (it was opened for one)
    no_rows = np.setdiff1d(np.arange(len(who), n_rec), rec_of_row)
    if len(no_rows):
        pos = pd.Series(np.arange(len(ep))).groupby(ep).first().reindex(rec_person[no_rows]).to_numpy()
        rec_of_row[pos] = no_rows
    enrollments = pd.DataFrame({
        "client_id": rec_id[rec_of_row], "program": PROGRAMS[rows.prog.to_numpy()],
        "start_date": D.to_strings(rows.start.to_numpy()),
        "end_date": D.to_strings(rows.end.to_numpy(), rows.end.to_numpy() < D.NEVER),
        "_rec": rec_of_row, "_start": rows.start.to_numpy(), "_end": rows.end.to_numpy(),
        "_person": ep,
    })
    enrollments = enrollments.drop_duplicates(["client_id", "program", "start_date"]).reset_index(drop=True)
    counts["parents_with_spells"] = int(np.unique(ep[~is_child[ep]]).size)
    return rec_person, rec_second, rec_id, enrollments


def _client_rows(pop: Population, rng: np.random.Generator, rec_person: np.ndarray, rec_second: np.ndarray,
                 rec_id: np.ndarray, enrollments: pd.DataFrame) -> tuple[pd.DataFrame, Flags, np.ndarray]:
    """How each client record names the person (as of its latest spell): (clients, flags, address of each record)."""
    ps, as_of = pop.persons, pop.params.as_of
    p_ = rec_person
    n_rec = len(p_)
    by_person = pd.Series(enrollments._start.to_numpy()).groupby(enrollments._person.to_numpy())
    updated = by_person.max().reindex(p_).to_numpy()
    opened = by_person.min().reindex(p_).to_numpy()
    updated = np.where(rng.random(n_rec) < 0.85, updated, opened).astype(np.int64)
    new_last = ps.new_last.to_numpy()[p_]
    use_new = (new_last != "") & (updated >= ps.change_date.to_numpy()[p_]) & (rng.random(n_rec) < 0.75)
    truth = {
        "first": ps["first"].to_numpy()[p_], "middle": ps.middle.to_numpy()[p_],
        "last1": np.where(use_new, new_last, ps.last1.to_numpy()[p_]),
        "last2": np.where(use_new, "", ps.last2.to_numpy()[p_]),
        "last_sep": np.where(use_new, "", ps.last_sep.to_numpy()[p_]),
        "birth": ps.birth.to_numpy()[p_], "sex": ps.sex.to_numpy()[p_],
    }
    out: dict[str, np.ndarray] = {}
    flags: Flags = {}
    for is2 in (False, True):
        sub = np.flatnonzero(rec_second == is2)
        shown, shown_flags = render_person({k: v[sub] for k, v in truth.items()}, DHS.boosted(4.0) if is2 else DHS, rng,
                                           birth_min=D.day(dt.date(1900, 1, 1)), birth_max=np.full(len(sub), as_of),
                                           with_middle=False)
        if is2:
            force_difference(shown, shown_flags, np.ones(len(sub), dtype=bool), rng)
        for k, v in shown.items():
            out.setdefault(k, np.empty(n_rec, dtype=v.dtype))[sub] = v
        for k, v in shown_flags.items():
            flags.setdefault(k, np.zeros(n_rec, dtype=bool))[sub] = v
    flags["last_name:surname_changed"] = use_new
    addr = pop.address_at(ps.family.to_numpy()[p_], updated)
    street, zipc, aflags = render_address(pop.book.parts(addr), pop.book.zip[addr], DHS, rng)
    flags.update(aflags)
    clients = pd.DataFrame({
        "client_id": rec_id, "first_name": out["first_name"], "last_name": out["last_name"],
        "birth_date": D.to_strings(out["birth"]), "sex": out["sex"], "street_address": street, "zip": zipc,
    })
    return clients, flags, addr
