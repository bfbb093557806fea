"""The SPEC's indicators computed straight from a synthetic city's ground truth (tests and benchmarks only).

An independent reference for ``warehouse.indicators``: pandas over the city's drop extracts (the clean
facts, as the agencies reported them) with every record's **true person** (``truth/identities.csv``) as
the child identity where the pipeline uses its linked ``child_key``. It follows the text of SPEC.md ("What
the cabinet publishes" and "Details that every implementation must share"); the parameters are the SPEC's
(below), not read from ``schemas/indicators`` and no SQL or code is shared with the warehouse, so the
comparison can fail.

* :func:`load_city_facts` reads ``<city>/drop`` and ``<city>/truth`` (call it before the pipeline runs:
  intake empties the drop folder); :func:`with_identity` swaps the child identity, e.g. for
  :func:`pipeline_identity` (each record's ``child_key`` as the pipeline linked it);
* :func:`truth_indicator_rows`: one row per indicator, period, school (or ``ALL``), dimension and group,
  with ``numerator``/``denominator`` before disclosure control, and ``flagged``: how many of the cell's
  units belong to a student with a record-linkage error that can move the cell;
* :func:`linkage_errors`: which true students the pipeline's linkage gets wrong, per agency: ``fps``
  (their school ids split over several child keys, or merged with another person's), ``fhd``/``dhs``
  (the other agency's ids linked to them differ from their own);
* :func:`measure`: for a city the pipeline ran over, the pipeline's rows (``compute_indicator_rows``, what
  ``publish_release`` protects), the reference under the true identity (*truth*) and under the
  pipeline's linkage (*replay*), compared cell by cell (:func:`compare_rows`, :func:`agreement_summary`).

Reading the comparison. *pipeline == replay* in every cell says the warehouse computes what the SPEC says
given its linkage. *pipeline vs truth* then differs only through linkage errors: a student the pipeline
links exactly as the truth does contributes the same unit (same school, attributes from the same row, same
health or human-services records) to the same cells on both sides; so a cell's numerator and denominator
differ by at most the flagged units in it, on the truth side or the pipeline side (``bound`` =
max(flag_t, flag_r)), and its rate by at most ``2 * bound / denominator``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from sqlalchemy import Engine

CITY = "ALL"
ALL = "all"
UNKNOWN = "UNKNOWN"  # a blank attribute (the warehouse publishes the same group name)
ATTRS = ("race_ethnicity", "sex", "english_learner", "disability", "econ_disadvantaged", "homeless")
STUDENT_DIMS = (ALL, *ATTRS)
KEY = ["indicator", "period", "school_id", "dimension", "group"]

# SPEC.md, "What the cabinet publishes" (the parameters, written out here on purpose).
CHRONIC_MIN_DAYS = 10
CHRONIC_PER_TEN = 1  # days_absent / days_enrolled >= 0.10  <=>  10 * days_absent >= days_enrolled
ASSESSMENTS = {  # indicator: (grade_level, subject, lowest level counted, highest level counted)
    "kindergarten_readiness": ("KG", "KRA", 3, 3),
    "grade3_reading": ("03", "ELA", 3, 4),
    "grade8_math": ("08", "MATH", 3, 4),
}
GRAD_EXCLUDED = ("TRANSFERRED_OUT", "DECEASED")
GRAD_NUMERATOR = ("GRADUATED_4YR",)
MMR_CODES = ("03", "94")
MMR_DOSES = 2
MMR_CUTOFF = (9, 1)  # strictly before September 1 of the school year's start
WELL_CHILD = ("WELL_CHILD",)
NONE_PROGRAM = "NONE"
CITY_ONLY_PROGRAMS = ("CHILD_WELFARE", "FOSTER_CARE")

SCHOOL_ONLY = ("chronic_absence", "kindergarten_readiness", "grade3_reading", "grade8_math", "hs_graduation_4yr")
CROSS_AGENCY = {"kindergarten_mmr2": "fhd", "well_child_visit": "fhd", "chronic_absence/program": "dhs"}
"""Cross-agency indicators (``chronic_absence/program`` is chronic_absence's ``program`` dimension) and the
agency they link schools to."""

_EXTRACTS = {
    "students": ("fps", "student_id", "student"), "attendance": ("fps", "student_id", "student"),
    "assessments": ("fps", "student_id", "student"), "graduation": ("fps", "student_id", "student"),
    "immunizations": ("fhd", "patient_id", "patient"), "encounters": ("fhd", "patient_id", "patient"),
    "program_enrollments": ("dhs", "client_id", "client"),
}


@dataclass(frozen=True)
class CityFacts:
    """The fact extracts of a city as strings (blank -> None), exact duplicate rows dropped, each with
    ``row`` (its 0-based row in the file) and ``person`` (the child identity, see :func:`with_identity`;
    None until an identity is attached)."""

    frames: dict[str, pd.DataFrame]
    identities: pd.DataFrame  # truth/identities.csv: agency, id_type, source_id, person_id

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.frames[name]


def _read(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig")
    df.columns = [c.strip() for c in df.columns]
    return df.replace("", None)


def _latest(city: Path, agency: str, extract: str) -> Path:
    files = sorted(p for p in (city / "drop" / agency).glob(f"{extract}_*.csv") if not p.name.endswith(".tokens.csv"))
    if not files:
        raise FileNotFoundError(f"{city}/drop/{agency}: no {extract}_*.csv (read the city before the pipeline takes it in)")
    return files[-1]


def load_city_facts(city: Path) -> CityFacts:
    """Read a generated city's fact extracts and identities, with the **true** person as identity."""
    city = Path(city)
    ids = _read(city / "truth" / "identities.csv")
    frames: dict[str, pd.DataFrame] = {}
    for name, (agency, _id_col, _id_type) in _EXTRACTS.items():
        df = _read(_latest(city, agency, name))
        df = df[~df.duplicated(keep="first")].copy()  # intake: exact duplicate rows count once
        df["row"] = df.index.to_numpy()
        frames[name] = df.reset_index(drop=True)
    for name, cols in (("students", ["school_year"]), ("attendance", ["school_year", "days_enrolled", "days_absent"]),
                       ("assessments", ["school_year", "performance_level"]), ("graduation", ["cohort_year"])):
        for c in cols:
            frames[name][c] = pd.to_numeric(frames[name][c]).astype("Int64")
    facts = CityFacts(frames, ids)
    return with_identity(facts, truth_identity(facts))


def truth_identity(facts: CityFacts) -> pd.DataFrame:
    """agency, id_type, source_id, person: every agency id's true person."""
    return facts.identities.rename(columns={"person_id": "person"})[["agency", "id_type", "source_id", "person"]]


def with_identity(facts: CityFacts, identity: pd.DataFrame) -> CityFacts:
    """The same facts with ``person`` from ``identity`` (agency, id_type, source_id, person); an id
    missing from it gets no person (its rows are not counted)."""
    frames = {}
    for name, (agency, id_col, id_type) in _EXTRACTS.items():
        sel = identity[(identity.agency == agency) & (identity.id_type == id_type)]
        person = pd.Series(sel.person.to_numpy(), index=sel.source_id.to_numpy())
        person = person[~person.index.duplicated()]
        df = facts.frames[name].copy()
        df["person"] = person.reindex(df[id_col].to_numpy()).to_numpy()
        frames[name] = df
    return CityFacts(frames, facts.identities)


SourceKeys = Callable[[np.ndarray, str, str], Any]
"""``(ids, agency, id_type) -> source keys``, one per id in order: the pipeline's own pseudonyms, keyed with
the hub's key set. The caller supplies it (e.g. over ``data_sharing.pseudonyms.pseudonymize_ids``): the oracle
holds no key and does not import the key layer (tests/architecture/test_layers.py)."""


def pipeline_identity(facts: CityFacts, crosswalk: pd.DataFrame, source_keys: SourceKeys) -> pd.DataFrame:
    """agency, id_type, source_id, person (+ source_key, person_id): every agency id's identity **as the
    pipeline links it**: its ``child_key`` in ``crosswalk`` (source_key, agency, child_key), else its
    own ``source_key`` from ``source_keys`` (a record linked to nobody is a person of its own, as in the warehouse)."""
    ids = facts.identities
    parts = []
    for agency, id_type in (("fps", "student"), ("fhd", "patient"), ("dhs", "client")):
        sel = ids[(ids.agency == agency) & (ids.id_type == id_type)]
        sk = pd.Series(source_keys(sel.source_id.to_numpy(), agency, id_type)).astype(str).to_numpy()
        parts.append(pd.DataFrame({"agency": agency, "id_type": id_type, "source_id": sel.source_id.to_numpy(),
                                   "person_id": sel.person_id.to_numpy(), "source_key": sk}))
    out = pd.concat(parts, ignore_index=True)
    cw = crosswalk[["source_key", "child_key"]].drop_duplicates("source_key")
    out = out.merge(cw, on="source_key", how="left")
    out["person"] = out.child_key.where(out.child_key.notna(), "sk:" + out.source_key)
    return out[["agency", "id_type", "source_id", "person", "source_key", "person_id"]]


# -------------------------------------------------------------------------------------------------
# Units: one row per counted student (period, school_id, person, attributes, num; program)


def student_years(st: pd.DataFrame) -> pd.DataFrame:
    """The row with the latest ``enroll_date`` per person and school year (ties: the later row; blank
    dates sort first): person, period, school_id, grade_level and the attributes."""
    st = st[st.person.notna() & st.school_year.notna() & st.school_id.notna()]
    st = st.assign(_has=st.enroll_date.notna(), _d=st.enroll_date.fillna(""))
    st = st.sort_values(["person", "school_year", "_has", "_d", "row"], kind="stable")
    last = st.drop_duplicates(["person", "school_year"], keep="last")
    out = last[["person", "school_year", "school_id", "grade_level", *ATTRS]].rename(columns={"school_year": "period"})
    for a in ATTRS:
        out[a] = out[a].fillna(UNKNOWN)
    return out.reset_index(drop=True)


def _chronic_units(f: CityFacts, sy: pd.DataFrame) -> dict[str, pd.DataFrame]:
    att = f["attendance"]
    att = att[att.person.notna() & att.school_year.notna() & att.school_id.notna()]
    school = (att.groupby(["person", "school_year", "school_id"], as_index=False)[["days_enrolled", "days_absent"]].sum()
              .rename(columns={"school_year": "period"}))
    city = school.groupby(["person", "period"], as_index=False)[["days_enrolled", "days_absent"]].sum().assign(school_id=CITY)
    out = {}
    attrs = sy[["person", "period", *ATTRS]]
    for level, u in (("school", school), ("city", city)):
        u = u.merge(attrs, on=["person", "period"], how="inner")  # attributes from the year's enrolment
        u = u[u.days_enrolled >= CHRONIC_MIN_DAYS]
        u = u.assign(num=(u.days_absent * 10 >= u.days_enrolled * CHRONIC_PER_TEN).astype(bool))
        out[level] = u[["period", "school_id", "person", *ATTRS, "num"]].reset_index(drop=True)
    return out


def _windows(period: pd.Series) -> tuple[pd.Series, pd.Series]:
    p = period.astype("int64")
    start = pd.to_datetime((p - 1).astype(str) + "-07-01")
    end = pd.to_datetime(p.astype(str) + "-06-30")
    return start, end


def memberships(f: CityFacts, periods: list[int]) -> pd.DataFrame:
    """person, period, program: every human-services enrolment overlapping a school year (distinct)."""
    pe = f["program_enrollments"]
    pe = pe[pe.person.notna() & pe.program.notna() & pe.start_date.notna()]
    w = pd.DataFrame({"period": pd.Series(periods, dtype="int64")})
    w["ws"], w["we"] = _windows(w.period)
    m = pe[["person", "program", "start_date", "end_date"]].merge(w, how="cross")
    start = pd.to_datetime(m.start_date)
    end = pd.to_datetime(m.end_date)
    hit = (start <= m.we) & (end.isna() | (end >= m.ws))
    return m.loc[hit, ["person", "period", "program"]].drop_duplicates().reset_index(drop=True)


def _program_units(chronic: dict[str, pd.DataFrame], member: pd.DataFrame) -> dict[str, pd.DataFrame]:
    out = {}
    for level, u in chronic.items():
        j = u.merge(member, on=["person", "period"], how="left")
        j["program"] = j.program.fillna(NONE_PROGRAM)
        if level == "school":
            j = j[~j.program.isin(CITY_ONLY_PROGRAMS)]
        out[level] = j.reset_index(drop=True)
    return out


def _assessment_units(f: CityFacts, sy: pd.DataFrame, grade: str, subject: str, lo: int, hi: int) -> pd.DataFrame:
    a = f["assessments"]
    a = a[(a.grade_level == grade) & (a.subject == subject) & a.performance_level.notna() & a.person.notna()
          & a.school_year.notna()]
    best = a.groupby(["person", "school_year"], as_index=False).performance_level.max().rename(columns={"school_year": "period"})
    u = best.merge(sy, on=["person", "period"], how="inner")
    u["num"] = ((u.performance_level >= lo) & (u.performance_level <= hi)).astype(bool)
    return u[["period", "school_id", "person", *ATTRS, "num"]]


def _graduation_units(f: CityFacts) -> pd.DataFrame:
    g = f["graduation"]
    g = g[g.person.notna() & g.cohort_year.notna() & g.outcome.notna()]
    g = g.sort_values(["person", "cohort_year", "row"], kind="stable").drop_duplicates(["person", "cohort_year"], keep="last")
    g = g[~g.outcome.isin(GRAD_EXCLUDED)]
    st = f["students"]
    st = st[st.person.notna() & st.school_year.notna() & st.school_id.notna()]
    j = g[["person", "cohort_year", "outcome"]].merge(st, on="person", how="inner")
    j = j[j.school_year <= j.cohort_year]
    j = j.assign(_has=j.enroll_date.notna(), _d=j.enroll_date.fillna(""))
    j = j.sort_values(["person", "cohort_year", "_has", "_d", "row"], kind="stable").drop_duplicates(["person", "cohort_year"], keep="last")
    for a in ATTRS:
        j[a] = j[a].fillna(UNKNOWN)
    j["num"] = j.outcome.isin(GRAD_NUMERATOR)
    return j.rename(columns={"cohort_year": "period"})[["period", "school_id", "person", *ATTRS, "num"]]


def _mmr_units(f: CityFacts, sy: pd.DataFrame) -> pd.DataFrame:
    kg = sy[sy.grade_level == "KG"]
    imm = f["immunizations"]
    imm = imm[imm.person.notna() & imm.vaccine_code.isin(MMR_CODES) & imm.administered_date.notna()]
    doses = imm[["person", "administered_date"]].drop_duplicates()  # one dose per child and date
    j = kg[["person", "period"]].merge(doses, on="person", how="inner")
    cutoff = (j.period - 1).astype("int64").astype(str) + f"-{MMR_CUTOFF[0]:02d}-{MMR_CUTOFF[1]:02d}"
    j = j[pd.to_datetime(j.administered_date) < pd.to_datetime(cutoff)]
    n = j.groupby(["person", "period"]).size().rename("doses").reset_index()
    u = kg.merge(n, on=["person", "period"], how="left")
    u["num"] = u.doses.fillna(0) >= MMR_DOSES
    return u[["period", "school_id", "person", *ATTRS, "num"]]


def _visit_units(f: CityFacts, sy: pd.DataFrame) -> pd.DataFrame:
    enc = f["encounters"]
    enc = enc[enc.person.notna() & enc.encounter_type.isin(WELL_CHILD) & enc.encounter_date.notna()]
    d = pd.to_datetime(enc.encounter_date)
    visits = pd.DataFrame({"person": enc.person.to_numpy(), "period": (d.dt.year + (d.dt.month >= 7)).astype("int64").to_numpy()})
    visits = visits.drop_duplicates().assign(visit=True)
    u = sy.merge(visits, on=["person", "period"], how="left")
    u["num"] = u.visit.notna()
    return u[["period", "school_id", "person", *ATTRS, "num"]]


# -------------------------------------------------------------------------------------------------
# Cells


def _cells(units: pd.DataFrame, indicator: str, dims: tuple[str, ...], flagged: set[str]) -> pd.DataFrame:
    u = units.assign(flag=units.person.isin(flagged), period=units.period.astype("int64"))
    parts = []
    for dim in dims:
        g = u.assign(group=ALL) if dim == ALL else u.assign(group=u[dim])
        c = g.groupby(["period", "school_id", "group"], as_index=False).agg(
            numerator=("num", "sum"), denominator=("num", "size"), flagged=("flag", "sum"))
        c.insert(2, "dimension", dim)
        parts.append(c)
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "indicator", indicator)
    return out


def truth_indicator_rows(facts: CityFacts, errors: Mapping[str, set[str]] | None = None) -> pd.DataFrame:
    """Every SPEC indicator under the facts' identity: ``KEY`` + numerator, denominator (before disclosure
    control), ``flagged`` (units of the cell whose person is in ``errors[agency]`` for an agency the
    indicator reads: ``fps`` always, ``fhd`` or ``dhs`` for the cross-agency ones; 0 without ``errors``)
    and ``kind`` (``school_only`` or ``cross_agency``). ``errors``: :func:`linkage_errors` (true
    identity) or :func:`pipeline_errors` (the pipeline's)."""
    errors = errors or {}
    fps_err = set(errors.get("fps", set()))
    sy = student_years(facts["students"])
    periods = sorted(int(p) for p in sy.period.unique())
    frames = []
    chronic = _chronic_units(facts, sy)
    for level in ("school", "city"):
        frames.append(_cells(chronic[level], "chronic_absence", STUDENT_DIMS, fps_err))
    prog = _program_units(chronic, memberships(facts, periods))
    dhs_err = fps_err | set(errors.get("dhs", set()))
    for level in ("school", "city"):
        frames.append(_cells(prog[level], "chronic_absence", ("program",), dhs_err))
    per_school: list[tuple[str, pd.DataFrame, set[str]]] = [
        (name, _assessment_units(facts, sy, *spec), fps_err) for name, spec in ASSESSMENTS.items()
    ]
    per_school.append(("hs_graduation_4yr", _graduation_units(facts), fps_err))
    fhd_err = fps_err | set(errors.get("fhd", set()))
    per_school.append(("kindergarten_mmr2", _mmr_units(facts, sy), fhd_err))
    per_school.append(("well_child_visit", _visit_units(facts, sy), fhd_err))
    for name, units, flagged in per_school:  # every student counts at one school: the city adds them up
        frames.append(_cells(units, name, STUDENT_DIMS, flagged))
        frames.append(_cells(units.assign(school_id=CITY), name, STUDENT_DIMS, flagged))
    rows = pd.concat(frames, ignore_index=True)
    rows = rows[rows.denominator >= 1]
    for c in ("period", "numerator", "denominator", "flagged"):
        rows[c] = rows[c].astype("int64")
    rows["kind"] = np.where(rows.indicator.isin(["kindergarten_mmr2", "well_child_visit"]) | (rows.dimension == "program"),
                            "cross_agency", "school_only")
    return rows.sort_values(KEY, kind="stable").reset_index(drop=True)


# -------------------------------------------------------------------------------------------------
# Linkage errors against the truth


def linkage_errors(identity: pd.DataFrame) -> dict[str, set[str]]:
    """True students (person ids with school records) whose records the pipeline links wrongly, per agency.

    ``identity``: :func:`pipeline_identity` (each id's true ``person_id`` and the pipeline's ``person``).
    ``fps``: the student's school ids are under two or more child keys, or share one with another
    person's school ids (within-agency deduplication; ``fps_split`` and ``fps_merged`` tell the two
    apart). ``fhd``/``dhs``: that agency's ids sharing a child
    key with the student's school ids differ from the student's own ids there (a missed or a false link).
    """
    fps = identity[identity.agency == "fps"]
    split = fps.groupby("person_id").person.nunique()
    owners = fps.groupby("person").person_id.nunique()
    merged = set(owners[owners > 1].index)
    out = {"fps_split": set(split[split > 1].index), "fps_merged": set(fps[fps.person.isin(merged)].person_id)}
    out["fps"] = out["fps_split"] | out["fps_merged"]
    students = fps[["person_id", "person"]].drop_duplicates()
    for agency in ("fhd", "dhs"):
        other = identity[identity.agency == agency][["source_id", "person", "person_id"]].rename(columns={"person_id": "owner"})
        linked = students.merge(other, on="person", how="inner")[["person_id", "source_id", "owner"]].drop_duplicates()
        wrong = set(linked.loc[linked.owner != linked.person_id, "person_id"])
        got = linked[linked.owner == linked.person_id].groupby("person_id").source_id.nunique()
        own = other[other.owner.isin(students.person_id)].groupby("owner").source_id.nunique()
        missed = own.sub(got.reindex(own.index).fillna(0))
        out[agency] = wrong | set(missed[missed > 0].index)
    return {k: {str(x) for x in v} for k, v in out.items()}


def pipeline_errors(errors: Mapping[str, set[str]], identity: pd.DataFrame) -> dict[str, set[str]]:
    """:func:`linkage_errors` in the pipeline's terms: a child key is flagged for an agency when a flagged
    true student has school ids under it."""
    fps = identity[identity.agency == "fps"]
    return {a: set(fps.loc[fps.person_id.isin(v), "person"].astype(str)) for a, v in errors.items()}


def warehouse_crosswalk(engine: Engine) -> pd.DataFrame:
    """source_key, agency, child_key of every person record in the warehouse's partner tier."""
    from sqlalchemy import select

    from warehouse.models import Enrolment, HealthPatient, HumanServicesClient

    parts = []
    with engine.connect() as conn:
        for agency, model in (("fps", Enrolment), ("fhd", HealthPatient), ("dhs", HumanServicesClient)):
            t = model.__table__
            rows = conn.execute(select(t.c.source_key, t.c.child_key).distinct()).all()
            parts.append(pd.DataFrame(rows, columns=["source_key", "child_key"]).assign(agency=agency))
    return pd.concat(parts, ignore_index=True)[["source_key", "agency", "child_key"]]


def pipeline_indicator_rows(engine: Engine) -> pd.DataFrame:
    """The warehouse's indicator rows before disclosure control (``compute_indicator_rows``, the function
    ``publish_release`` protects and publishes): ``KEY`` + numerator, denominator."""
    from schemas.indicators import load_indicator_definitions
    from schemas.roles import ROLES
    from warehouse.indicators import compute_indicator_rows

    ks = dict.fromkeys(ROLES, 1)  # k only decides suppression, which these rows come before
    with engine.begin() as conn:
        rows = compute_indicator_rows(conn, load_indicator_definitions(), ks)
    return rows[[*KEY, "numerator", "denominator"]].reset_index(drop=True)


@dataclass(frozen=True)
class Agreement:
    """Everything measured on one city: the three row sets, their comparison and the linkage errors."""

    pipeline: pd.DataFrame  # warehouse, before disclosure control
    truth: pd.DataFrame  # reference, true identities
    replay: pd.DataFrame  # reference, the pipeline's linkage as identity
    cells: pd.DataFrame  # compare_rows(pipeline, truth, replay)
    errors: dict[str, set[str]]  # linkage_errors (true person ids)
    error_rates: dict[str, Any]


def measure(facts: CityFacts, engine: Engine, source_keys: SourceKeys) -> Agreement:
    """Compute the three row sets for a city the pipeline has run over (``facts`` read before the run);
    ``source_keys``: the pipeline's pseudonyms of agency ids (:data:`SourceKeys`)."""
    ident = pipeline_identity(facts, warehouse_crosswalk(engine), source_keys)
    errors = linkage_errors(ident)
    truth = truth_indicator_rows(facts, errors)
    replay = truth_indicator_rows(with_identity(facts, ident), pipeline_errors(errors, ident))
    pipeline = pipeline_indicator_rows(engine)
    return Agreement(pipeline, truth, replay, compare_rows(pipeline, truth, replay), errors, linkage_error_rates(errors, facts))


# -------------------------------------------------------------------------------------------------
# Comparison


def compare_rows(pipeline: pd.DataFrame, truth: pd.DataFrame, replay: pd.DataFrame | None = None) -> pd.DataFrame:
    """Outer join on ``KEY`` (a cell missing on one side counts 0 of 0 there): num_p, den_p (pipeline),
    num_t, den_t, flag_t (truth), and with ``replay`` num_r, den_r, flag_r; d_num, d_den, d_rate
    (pipeline - truth), ``exact``, ``bound`` = max(flag_t, flag_r) (how far linkage errors alone can move
    the cell) and ``replay_exact`` (pipeline equals the replay)."""
    def side(df: pd.DataFrame, sfx: str) -> pd.DataFrame:
        cols = {"numerator": f"num_{sfx}", "denominator": f"den_{sfx}", "flagged": f"flag_{sfx}"}
        return df[[*KEY, *[c for c in cols if c in df.columns]]].rename(columns=cols)

    c = side(pipeline, "p").drop(columns=["flag_p"], errors="ignore").merge(side(truth, "t"), on=KEY, how="outer")
    if replay is not None:
        c = c.merge(side(replay, "r"), on=KEY, how="outer")
    for col in c.columns:
        if col[:4] in ("num_", "den_") or col.startswith("flag_"):
            c[col] = c[col].fillna(0).astype("int64")
    cross = c.indicator.isin(["kindergarten_mmr2", "well_child_visit"]) | (c.dimension == "program")
    c["kind"] = np.where(cross, "cross_agency", "school_only")
    c["family"] = np.where(c.dimension == "program", "chronic_absence/program", c.indicator)
    c["d_num"] = c.num_p - c.num_t
    c["d_den"] = c.den_p - c.den_t
    rp = np.where(c.den_p > 0, c.num_p / c.den_p.clip(lower=1), np.nan)
    rt = np.where(c.den_t > 0, c.num_t / c.den_t.clip(lower=1), np.nan)
    c["d_rate"] = rp - rt
    c["exact"] = (c.d_num == 0) & (c.d_den == 0)
    if replay is not None:
        c["bound"] = np.maximum(c.flag_t, c.flag_r)
        c["replay_exact"] = (c.num_p == c.num_r) & (c.den_p == c.den_r)
    else:
        c["bound"] = c.flag_t
    return c.sort_values(KEY, kind="stable").reset_index(drop=True)


def agreement_summary(cmp: pd.DataFrame) -> pd.DataFrame:
    """Per indicator family: cells, exact, differing (and differing with no linkage error in the cell),
    max |d_num|, |d_den|, |d_rate| over cells (and over cells with a true denominator of at least 11, the
    largest k), cells beyond ``bound``, cells where the pipeline differs from the replay, and the city-wide
    rate over every period (``ALL``/``all``; for the program family every program pooled), pipeline and
    truth, with the summed ``bound`` of those city rows."""
    out = []
    for fam, g in cmp.groupby("family", sort=True):
        city = g[(g.school_id == CITY) & ((g.dimension == ALL) | (g.dimension == "program"))]
        num_p, den_p, num_t, den_t = (int(city[c].sum()) for c in ("num_p", "den_p", "num_t", "den_t"))
        rate_p = num_p / den_p if den_p else float("nan")
        rate_t = num_t / den_t if den_t else float("nan")
        over = (g.d_num.abs() > g.bound) | (g.d_den.abs() > g.bound)
        rates = np.abs(g.d_rate.to_numpy())
        out.append({
            "indicator": fam, "kind": g.kind.iloc[0], "cells": len(g), "exact": int(g.exact.sum()),
            "differing": int((~g.exact).sum()), "differing_unflagged": int((~g.exact & (g.bound == 0)).sum()),
            "max_abs_d_num": int(g.d_num.abs().max()), "max_abs_d_den": int(g.d_den.abs().max()),
            "max_abs_d_rate": float(np.nanmax(rates)) if np.isfinite(rates).any() else 0.0,
            "max_abs_d_rate_den_ge_11": float(np.nanmax(big)) if np.isfinite(big := rates[g.den_t.to_numpy() >= 11]).any() else 0.0,
            "cells_beyond_bound": int(over.sum()),
            "replay_differing": int((~g.replay_exact).sum()) if "replay_exact" in g else None,
            "city_bound": int(city.bound.sum()),
            "city_rate_pipeline": rate_p, "city_rate_truth": rate_t, "city_rate_diff": rate_p - rate_t,
            "city_den_pipeline": den_p, "city_den_truth": den_t,
        })
    return pd.DataFrame(out)


def linkage_error_rates(errors: Mapping[str, set[str]], facts: CityFacts) -> dict[str, Any]:
    """How many true students (with a students row) each kind of linkage error touches, and the share."""
    students = set(student_years(facts["students"]).person)
    n = len(students)
    out: dict[str, Any] = {"students_total": n}
    for a in ("fps", "fps_split", "fps_merged", "fhd", "dhs"):
        k = len(set(errors.get(a, set())) & students)
        out[a] = {"students": k, "share": k / n if n else 0.0}
    return out


__all__ = [
    "CROSS_AGENCY", "KEY", "SCHOOL_ONLY", "Agreement", "CityFacts", "agreement_summary", "compare_rows",
    "linkage_error_rates", "linkage_errors", "load_city_facts", "measure", "memberships", "pipeline_errors",
    "pipeline_identity", "pipeline_indicator_rows", "student_years", "truth_identity", "truth_indicator_rows",
    "warehouse_crosswalk", "with_identity",
]

