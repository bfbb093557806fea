"""Fairhaven Health Department: patients, clinic encounters and the immunization registry.

Most children (~80%) and some parents are patients; a few children have two patient records. Well-child
visits are frequent for infants and roughly yearly later; immunizations follow the childhood schedule
with realistic delays and gaps (MMR dose 1 at 12-15 months, dose 2 at 4-6 years, some late, some
never), and some doses are recorded twice (in one record, or once in each of a child's two records).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synthetic import _dates as D
from synthetic.noise import Flags, city_errors, force_difference, render_address, render_person
from synthetic.population import Population, make_ids, unique_numbers
from synthetic.profiles import FHD

SICK_CODES = np.array(["J06.9", "J02.9", "H66.90", "J20.9", "R50.9", "A08.4", "B34.9", "L30.9", "J45.909",
                       "K52.9", "R10.9", "H10.9", "J30.9", "R05.9", "L20.9"], dtype=object)
ED_CODES = np.array(["S09.90XA", "S93.401A", "J45.901", "R10.9", "T78.40XA", "S52.501A", "R56.9", "J05.0",
                     "S01.81XA", "R11.2"], dtype=object)
INPATIENT_CODES = np.array(["J18.9", "A41.9", "J45.52", "J21.9", "E86.0", "K35.80", "N39.0"], dtype=object)

# (vaccine CVX, dose age window in days from birth, share of adherent children who get it)
SCHEDULE = [
    ("08", 0, 3, 0.97), ("08", 28, 70, 0.95), ("08", 180, 540, 0.93),
    ("116", 55, 80, 0.8), ("116", 115, 140, 0.78), ("116", 175, 200, 0.7),
    ("20", 55, 80, 0.96), ("20", 115, 140, 0.95), ("20", 175, 210, 0.94), ("20", 450, 560, 0.88),
    ("20", 1460, 2190, 0.86),
    ("49", 55, 80, 0.95), ("49", 115, 140, 0.94), ("49", 365, 460, 0.9),
    ("133", 55, 80, 0.95), ("133", 115, 140, 0.94), ("133", 175, 210, 0.92), ("133", 365, 460, 0.88),
    ("10", 55, 80, 0.96), ("10", 115, 140, 0.95), ("10", 180, 540, 0.93), ("10", 1460, 2190, 0.87),
    ("83", 365, 700, 0.85), ("83", 550, 1100, 0.75),
    ("115", 4015, 4745, 0.85), ("165", 4015, 4745, 0.6), ("165", 4200, 5100, 0.5),
    ("114", 4015, 4745, 0.85), ("136", 5840, 6200, 0.6),
]
FLU_CODES = np.array(["141", "150", "88", "140"], dtype=object)


@dataclass
class FhdResult:
    patients: pd.DataFrame
    patient_flags: Flags
    encounters: pd.DataFrame
    immunizations: pd.DataFrame
    ids: pd.DataFrame  # source_id, person, id_type
    counts: dict[str, int] = field(default_factory=dict)


def _between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo + np.floor(rng.random(len(lo)) * np.maximum(hi - lo + 1, 1)).astype(np.int64)


@dataclass
class _Patients:
    """Per-person arrays of the population and the patient records drawn for them."""

    pop: Population
    rng: np.random.Generator
    counts: dict[str, int]
    is_child: np.ndarray
    role: np.ndarray
    birth: np.ndarray
    death: np.ndarray
    arrive: np.ndarray
    leave: np.ndarray
    life_end: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    reg: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    who: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # persons with a (first) record
    rec_person: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rec_second: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    rec_id: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    first_rec: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    second_rec: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def n_p(self) -> int:
        return len(self.birth)

    @property
    def n_rec(self) -> int:
        return len(self.rec_person)


def build_fhd(pop: Population, rng: np.random.Generator, kg: np.ndarray, kids: np.ndarray) -> FhdResult:
    ps, fams = pop.persons, pop.families
    pf = ps.family.to_numpy()
    ctx = _Patients(
        pop, rng, {}, ps.is_child.to_numpy(), ps.role.to_numpy(), ps.birth.to_numpy(), ps.death.to_numpy(),
        fams.arrive.to_numpy()[pf], fams.leave.to_numpy()[pf],
    )
    _register_patients(ctx, fams.fhd.to_numpy()[pf])
    # ---- medicaid: a per-person id, shown on most of the person's records
    poverty = fams.poverty.to_numpy()[pf]
    has_mcd = rng.random(ctx.n_p) < np.clip(np.where(ctx.is_child, 0.45, 0.3) + 0.25 * poverty, 0.02, 0.95)
    mcd_num = unique_numbers(rng, ctx.n_p, 100_000_000, 999_999_999)
    mcd_id = make_ids(mcd_num, "MA", 9)
    shown = has_mcd[ctx.rec_person] & (rng.random(ctx.n_rec) < 0.85)
    patients, flags, addr = _patient_rows(ctx, mcd_id, shown)
    encounters = _encounters(ctx)
    immunizations = _immunizations(ctx, kg, kids)
    rp = ctx.rec_person
    ids = pd.concat([
        pd.DataFrame({"id_type": "patient", "source_id": ctx.rec_id, "person": rp}),
        pd.DataFrame({"id_type": "medicaid", "source_id": mcd_id[rp[shown]], "person": rp[shown]}).drop_duplicates(),
    ], ignore_index=True)
    res = FhdResult(patients, flags, encounters, immunizations, ids, ctx.counts)
    res.addr = addr  # type: ignore[attr-defined]
    return res


def _register_patients(ctx: _Patients, fam_fhd: np.ndarray) -> None:
    """Who is a patient, when registered, and the few re-registered under a second record."""
    rng, n_p, is_child, role = ctx.rng, ctx.n_p, ctx.is_child, ctx.role
    P = ctx.pop.params
    r = rng.random(n_p)
    patient = np.where(is_child, (fam_fhd & (r < 0.985)) | (~fam_fhd & (r < 0.05)),
                       fam_fhd & (r < np.where(role == "mother", 0.4, 0.2)))
    ctx.life_end = np.minimum.reduce([ctx.leave, ctx.death, np.full(n_p, P.as_of)])
    ctx.reg = np.maximum.reduce([ctx.birth, ctx.arrive, np.full(n_p, P.window_start - 5 * 365)])
    patient &= ctx.reg <= ctx.life_end
    who = np.flatnonzero(patient)
    dup = np.zeros(n_p, dtype=bool)
    dup[who] = rng.random(len(who)) < city_errors().reregistration * np.where(is_child[who], 0.015, 0.005)
    ctx.counts["patients_with_two_ids"] = int(dup.sum())
    dup_who = np.flatnonzero(dup)
    ctx.who = who
    ctx.rec_person = np.concatenate([who, dup_who])
    ctx.rec_second = np.concatenate([np.zeros(len(who), dtype=bool), np.ones(len(dup_who), dtype=bool)])
    ctx.rec_id = make_ids(unique_numbers(rng, ctx.n_rec, 10_000_000, 99_999_999), "FH", 8)
    ctx.first_rec = np.full(n_p, -1, dtype=np.int64)
    ctx.first_rec[who] = np.arange(len(who))
    ctx.second_rec = np.full(n_p, -1, dtype=np.int64)
    ctx.second_rec[dup_who] = len(who) + np.arange(len(dup_who))


def _patient_rows(ctx: _Patients, mcd_id: np.ndarray, shown: np.ndarray) -> tuple[pd.DataFrame, Flags, np.ndarray]:
    """How each record names the person, as of its last update: (patients, flags, address of each record)."""
    rng, pop, n_rec, rp = ctx.rng, ctx.pop, ctx.n_rec, ctx.rec_person
    ps, as_of = pop.persons, pop.params.as_of
    lo, hi = ctx.reg[rp], ctx.life_end[rp]
    updated = _between(rng, lo, hi)
    updated = np.where(rng.random(n_rec) < 0.7, hi, updated)
    new_last = ps.new_last.to_numpy()[rp]
    use_new = (new_last != "") & (updated >= ps.change_date.to_numpy()[rp]) & (rng.random(n_rec) < 0.7)
    truth = {
        "first": ps["first"].to_numpy()[rp], "middle": ps.middle.to_numpy()[rp],
        "last1": np.where(use_new, new_last, ps.last1.to_numpy()[rp]),
        "last2": np.where(use_new, "", ps.last2.to_numpy()[rp]),
        "last_sep": np.where(use_new, "", ps.last_sep.to_numpy()[rp]),
        "birth": ctx.birth[rp], "sex": ps.sex.to_numpy()[rp],
    }
    out: dict[str, np.ndarray] = {}
    flags: Flags = {}
    for is2 in (False, True):
        sub = np.flatnonzero(ctx.rec_second == is2)
        o, f = render_person({k: v[sub] for k, v in truth.items()}, FHD.boosted(4.0) if is2 else FHD, rng,
                             birth_min=D.day(dt.date(1900, 1, 1)), birth_max=np.full(len(sub), as_of),
                             with_middle=False)
        if is2:
            force_difference(o, f, np.ones(len(sub), dtype=bool), rng)
        for k, v in list(o.items()):
            out.setdefault(k, np.empty(n_rec, dtype=v.dtype))[sub] = v
        for k, v in f.items():
            flags.setdefault(k, np.zeros(n_rec, dtype=bool))[sub] = v
    flags["last_name:surname_changed"] = use_new
    stale = rng.random(n_rec) < 0.2
    addr_day = np.where(stale, lo, updated)
    addr = pop.address_at(ps.family.to_numpy()[rp], addr_day)
    street, zipc, aflags = render_address(pop.book.parts(addr), pop.book.zip[addr], FHD, rng)
    flags.update(aflags)
    patients = pd.DataFrame({
        "patient_id": ctx.rec_id, "first_name": out["first_name"], "last_name": out["last_name"],
        "birth_date": D.to_strings(out["birth"]), "sex": out["sex"], "street_address": street, "zip": zipc,
        "medicaid_id": np.where(shown, mcd_id[rp], None),
    })
    return patients, flags, addr


def _encounters(ctx: _Patients) -> pd.DataFrame:
    """Clinic encounters, school year by school year."""
    rng, who, birth, is_child = ctx.rng, ctx.who, ctx.birth, ctx.is_child
    years = np.array(ctx.pop.params.years, dtype=np.int64)
    pp = np.repeat(who, len(years))
    yy = np.tile(years, len(who))
    lo_y = np.maximum.reduce([D.sy_start(yy), ctx.reg[pp], birth[pp]])
    hi_y = np.minimum(D.sy_end(yy), ctx.life_end[pp])
    live = hi_y >= lo_y
    pp, yy, lo_y, hi_y = pp[live], yy[live], lo_y[live], hi_y[live]
    age = (D.sy_start(yy) - birth[pp]) / 365.25
    child = is_child[pp]
    k = len(pp)
    n_well = np.where(~child, 0, np.where(age < 1, rng.poisson(4.5, k), np.where(age < 3, rng.poisson(2.2, k),
                      (rng.random(k) < 0.64).astype(np.int64) + (rng.random(k) < 0.04))))
    n_sick = rng.poisson(np.where(child & (age < 5), 1.3, np.where(child, 0.7, 0.8)))
    n_ed = rng.poisson(np.where(child, 0.13, 0.17), k)
    n_in = rng.poisson(np.where(child, 0.01, 0.02), k)
    parts = []
    for etype, cnt in (("WELL_CHILD", n_well), ("SICK_VISIT", n_sick), ("ED_VISIT", n_ed), ("INPATIENT", n_in)):
        parts.append(pd.DataFrame({"i": np.repeat(np.arange(k), cnt), "etype": etype}))
    enc = pd.concat(parts, ignore_index=True)
    ei = enc.i.to_numpy()
    e_date = _between(rng, lo_y[ei], hi_y[ei])
    e_person = pp[ei]
    e_type = enc.etype.to_numpy().astype(object)
    m_e = len(ei)
    e_age = e_date - birth[e_person]
    diag = np.empty(m_e, dtype=object)
    well = e_type == "WELL_CHILD"
    diag[well] = np.where(e_age[well] < 8, "Z00.110", np.where(e_age[well] < 29, "Z00.111",
                          np.where(rng.random(int(well.sum())) < 0.85, "Z00.129", "Z00.121")))
    for etype, codes in (("SICK_VISIT", SICK_CODES), ("ED_VISIT", ED_CODES), ("INPATIENT", INPATIENT_CODES)):
        msk = e_type == etype
        diag[msk] = codes[rng.integers(0, len(codes), int(msk.sum()))]
    nodot = rng.random(m_e) < 0.05
    diag[nodot] = pd.Series(diag[nodot], dtype=object).str.replace(".", "", regex=False).to_numpy(object)
    diag = np.where(rng.random(m_e) < 0.12, None, diag)  # type: ignore[call-overload]
    second_rec = ctx.second_rec
    e_rec = np.where((second_rec[e_person] >= 0) & (rng.random(m_e) < 0.35), second_rec[e_person], ctx.first_rec[e_person])
    enc_num = unique_numbers(rng, m_e, 1_000_000_000, 9_999_999_999)
    enc_id = make_ids(enc_num, "E", 10)
    order = np.lexsort((enc_num, e_date))
    return pd.DataFrame({
        "encounter_id": enc_id[order], "patient_id": ctx.rec_id[e_rec[order]],
        "encounter_date": D.to_strings(e_date[order]), "encounter_type": e_type[order], "diagnosis_code": diag[order],
    })


def _immunizations(ctx: _Patients, kg: np.ndarray, kids: np.ndarray) -> pd.DataFrame:
    """The immunization registry: scheduled and flu doses, as recorded (some twice, some in both records)."""
    ch = ctx.who[ctx.is_child[ctx.who]]
    kg_of = np.full(ctx.n_p, 0, dtype=np.int64)
    kg_of[kids] = kg
    imm = _childhood_doses(ctx, ch, kg_of)
    imm_person = ch[imm.k.to_numpy()]
    flu = _flu_doses(ctx)
    imm = pd.DataFrame({"person": imm_person, "code": imm.code.to_numpy(), "date": imm.date.to_numpy()})
    imm = pd.concat([imm, flu], ignore_index=True)
    ip = imm.person.to_numpy()
    idate = imm.date.to_numpy()
    # only what happened by the as-of date, while alive; history from before an arrival is often missing
    hist_kept = ctx.rng.random(ctx.n_p) < 0.7
    ok = ((idate <= np.minimum(ctx.pop.params.as_of, ctx.death[ip])) & (idate >= ctx.birth[ip])
          & ((idate >= ctx.arrive[ip]) | hist_kept[ip]))
    ok &= idate <= ctx.leave[ip]
    return _dose_rows(ctx, imm[ok].reset_index(drop=True))


def _childhood_doses(ctx: _Patients, ch: np.ndarray, kg_of: np.ndarray) -> pd.DataFrame:
    """The childhood schedule for child patients ``ch``: k (position in ``ch``), code, date."""
    rng, birth = ctx.rng, ctx.birth
    nc = len(ch)
    adherence = rng.choice(4, size=nc, p=[0.88, 0.07, 0.025, 0.025])  # full, delayed, partial, none
    delay = np.where(adherence == 1, 1.35, 1.0)
    recs = []
    for code, a_lo, a_hi, share in SCHEDULE:
        got = (rng.random(nc) < share) & (adherence != 3) & ((adherence != 2) | (rng.random(nc) < 0.5))
        idx = np.flatnonzero(got)
        age_days = a_lo + np.floor(rng.random(len(idx)) * (a_hi - a_lo + 1) * delay[idx]).astype(np.int64)
        recs.append(pd.DataFrame({"k": idx, "code": code, "date": birth[ch[idx]] + age_days}))
    # MMR / MMRV: dose 1 at 12-15 months; dose 2 before kindergarten for most, late for some
    mmr_class = rng.choice(4, size=nc, p=[0.925, 0.035, 0.02, 0.02])  # on time, late dose 2, one dose, none
    mmr_class = np.where(adherence == 3, 3, mmr_class)
    b = birth[ch]
    d1 = np.where(rng.random(nc) < 0.85, b + 365 + rng.integers(0, 92, nc), b + 457 + rng.integers(0, 280, nc))
    kg_sept1 = D.from_ymd(kg_of[ch] - 1, np.full(nc, 9), np.full(nc, 1))
    lo2 = np.maximum(D.add_years(b, 4), d1 + 28)
    hi2 = np.minimum(D.add_years(b, 6), kg_sept1 - 1)
    ontime_ok = hi2 >= lo2
    skew = rng.random(nc) ** 1.6  # most second doses soon after the 4th birthday
    d2_on = lo2 + np.floor(skew * np.maximum(hi2 - lo2, 0)).astype(np.int64)
    d2_late = np.maximum(kg_sept1, d1 + 28) + rng.integers(1, 400, nc)
    has1 = mmr_class <= 2
    has2 = mmr_class <= 1
    d2 = np.where((mmr_class == 0) & ontime_ok, d2_on, d2_late)
    code1 = np.where(rng.random(nc) < 0.1, "94", "03")
    code2 = np.where(rng.random(nc) < 0.25, "94", "03")
    i1, i2 = np.flatnonzero(has1), np.flatnonzero(has2)
    recs.append(pd.DataFrame({"k": i1, "code": code1[i1], "date": d1[i1]}))
    recs.append(pd.DataFrame({"k": i2, "code": code2[i2], "date": d2[i2]}))
    # varicella, unless the MMR dose was MMRV
    v1 = np.flatnonzero(has1 & (code1 == "03") & (rng.random(nc) < 0.95))
    v2 = np.flatnonzero(has2 & (code2 == "03") & (rng.random(nc) < 0.93))
    recs.append(pd.DataFrame({"k": v1, "code": "21", "date": d1[v1]}))
    recs.append(pd.DataFrame({"k": v2, "code": "21", "date": d2[v2]}))
    return pd.concat(recs, ignore_index=True)


def _flu_doses(ctx: _Patients) -> pd.DataFrame:
    """Flu seasons inside the window, for everyone who is a patient: person, code, date."""
    rng, who = ctx.rng, ctx.who
    years = np.array(ctx.pop.params.years, dtype=np.int64)
    fl_p = np.repeat(who, len(years))
    fl_y = np.tile(years, len(who))
    season_lo = D.from_ymd(fl_y - 1, np.full(len(fl_y), 9), np.full(len(fl_y), 15))
    season_hi = D.from_ymd(fl_y, np.full(len(fl_y), 3), np.full(len(fl_y), 31))
    got_flu = rng.random(len(fl_p)) < np.where(ctx.is_child[fl_p], 0.45, 0.35)
    flu_date = _between(rng, season_lo, season_hi)
    ok_flu = got_flu & (flu_date >= ctx.birth[fl_p] + 183)
    return pd.DataFrame({"person": fl_p[ok_flu], "code": FLU_CODES[rng.integers(0, len(FLU_CODES), int(ok_flu.sum()))],
                         "date": flu_date[ok_flu]})


def _dose_rows(ctx: _Patients, imm: pd.DataFrame) -> pd.DataFrame:
    """The registry rows of doses ``imm`` (person, code, date), by patient record, date and code."""
    rng, counts, second_rec, rec_id, n_rec = ctx.rng, ctx.counts, ctx.second_rec, ctx.rec_id, ctx.n_rec
    ip = imm.person.to_numpy()
    m_i = len(imm)
    is_mmr = imm.code.isin(["03", "94"]).to_numpy()
    # a child with two records: each dose in one record, or in both
    has2rec = second_rec[ip] >= 0
    where = rng.choice(3, size=m_i, p=[0.55, 0.2, 0.25])  # first, second, both
    rec_a = np.where(has2rec & (where == 1), second_rec[ip], ctx.first_rec[ip])
    both = has2rec & (where == 2)
    counts["doses_in_two_patient_records"] = int(both.sum())
    counts["mmr_doses_in_two_patient_records"] = int((both & is_mmr).sum())
    # the same MMR dose recorded a second time under the other code (registry + clinic)
    other_code = is_mmr & (rng.random(m_i) < 0.004)
    counts["mmr_dose_recorded_under_both_codes"] = int(other_code.sum())
    codes_all = np.array(sorted(set(c for c, *_ in SCHEDULE) | {"03", "94", "21"} | set(FLU_CODES)), dtype=object)
    code_idx = np.searchsorted(codes_all, imm.code.to_numpy().astype(str).astype(object))
    other_idx = np.searchsorted(codes_all, np.where(imm.code.to_numpy() == "03", "94", "03").astype(object))
    rows_rec = np.concatenate([rec_a, second_rec[ip][both], rec_a[other_code]])
    rows_code = np.concatenate([code_idx, code_idx[both], other_idx[other_code]])
    rows_date = np.concatenate([imm.date.to_numpy(), imm.date.to_numpy()[both], imm.date.to_numpy()[other_code]])
    rec_rank = np.empty(n_rec, dtype=np.int64)
    rec_rank[np.argsort(rec_id)] = np.arange(n_rec)
    rank_rec = np.argsort(rec_id)
    key = (rec_rank[rows_rec] * 100_000 + (rows_date - D.day(dt.date(1900, 1, 1)))) * 64 + rows_code
    key = np.sort(key)  # by record, date, code; a dose lands once in each record here
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key
    # the same dose recorded twice in one record: exact duplicate rows
    is_mmr_row = np.isin(codes_all[key % 64], ["03", "94"])
    twice = rng.random(len(key)) < np.where(is_mmr_row, 0.004, 0.0005)
    key = np.sort(np.concatenate([key, key[twice]]))
    k_rec = key // 64 // 100_000
    k_date = key // 64 % 100_000 + D.day(dt.date(1900, 1, 1))
    counts["immunization_doses_recorded_twice_same_record"] = int(twice.sum())
    return pd.DataFrame({"patient_id": rec_id[rank_rec[k_rec]], "vaccine_code": codes_all[key % 64],
                         "administered_date": D.to_strings(k_date)})
