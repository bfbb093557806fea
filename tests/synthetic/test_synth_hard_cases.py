"""The hard cases are really in the files, in the numbers summary.json claims."""

from __future__ import annotations

import unicodedata
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from synth_support import City  # type: ignore[import-not-found]
from synthetic.names import NICKNAMES, SPELLING_GROUPS


def norm(s: str) -> str:
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    return " ".join(s.casefold().split())


def _person_rows(city: City, agency: str, extract: str, id_col: str) -> pd.DataFrame:
    df = city.extract(agency, extract)
    return df.assign(person_id=city.person_of.reindex(df[id_col].to_numpy()).to_numpy())


def test_twins(city: City) -> None:
    p = city.truth("persons").set_index("person_id")
    twins = p[p.twin_of != ""]
    assert len(twins) == 2 * city.summary.hard_cases["twin_pairs"] > 0
    other = p.loc[twins.twin_of.to_numpy()]
    assert (other.twin_of.to_numpy() == twins.index.to_numpy()).all()
    for col in ("family_id", "birth_date", "last_name"):
        assert (other[col].to_numpy() == twins[col].to_numpy()).all(), col
    assert (other.first_name.to_numpy() != twins.first_name.to_numpy()).all()
    assert (twins.is_child == "true").all()
    st = _person_rows(city, "fps", "students", "student_id")[["person_id", "school_year"]].drop_duplicates()
    pairs = st.merge(st, on="school_year")
    pairs = pairs[pairs.person_id_x < pairs.person_id_y]
    both = pairs[p.twin_of.reindex(pairs.person_id_x.to_numpy()).to_numpy() == pairs.person_id_y.to_numpy()]
    n_both = both[["person_id_x", "person_id_y"]].drop_duplicates().shape[0]
    assert n_both == city.summary.hard_cases["twin_pairs_both_in_students"] > 0


def test_siblings_share_surname_and_address(city: City) -> None:
    p = city.truth("persons")
    kids = p[p.is_child == "true"]
    sizes = kids.groupby("family_id").size()
    assert int((sizes * (sizes - 1) // 2).sum()) == city.summary.hard_cases["sibling_pairs"] > 0
    assert (kids.groupby("family_id").last_name.nunique() == 1).all()
    assert city.summary.hard_cases["sibling_pairs_in_students_same_year_same_address"] > 0


def test_parents_are_never_confusable_with_their_children(city: City) -> None:
    p = city.truth("persons")
    kids = p[p.is_child == "true"]
    adults = p[p.is_child == "false"]
    assert set(adults.role) == {"mother", "father"}
    m = adults.merge(kids, on="family_id", suffixes=("_parent", "_child"))
    assert (m.first_name_parent != m.first_name_child).all()
    assert (m.last_name_parent == m.last_name_child).all()
    gap = (pd.to_datetime(m.birth_date_child) - pd.to_datetime(m.birth_date_parent)).dt.days / 365.25
    assert gap.min() >= 14
    ids = city.truth("identities")
    in_dhs = ids[(ids.agency == "dhs") & ids.person_id.isin(adults.person_id)].person_id.nunique()
    assert in_dhs == city.summary.hard_cases["parents_in_dhs"] > 0
    in_fhd = ids[(ids.id_type == "patient") & ids.person_id.isin(adults.person_id)].person_id.nunique()
    assert in_fhd == city.summary.hard_cases["parents_in_fhd"] > 0


def test_identities_cover_every_identifier_in_every_file(city: City) -> None:
    ids = city.truth("identities")
    persons = set(city.truth("persons").person_id)
    assert set(ids.person_id) <= persons
    assert not ids.duplicated(["agency", "id_type", "source_id"]).any()
    checked = 0
    for (agency, extract), contract in city.contracts.items():
        df = city.extract(agency, extract)
        for col, id_type in contract.id_columns.items():
            values = set(df[col][df[col] != ""])
            known = set(ids.source_id[(ids.agency == agency) & (ids.id_type == id_type)])
            assert values <= known, f"{agency}/{extract}.{col}: {len(values - known)} ids missing from identities.csv"
            checked += 1
    assert checked >= 10
    # and nothing in identities.csv that no file carries
    every = set()
    for (agency, extract), contract in city.contracts.items():
        for col in contract.id_columns:
            every |= set(city.extract(agency, extract)[col])
    assert set(ids.source_id) <= every


@pytest.mark.parametrize(("id_type", "label", "agency", "extract", "id_col"), [
    ("student", "students", "fps", "students", "student_id"),
    ("patient", "patients", "fhd", "patients", "patient_id"),
    ("client", "clients", "dhs", "clients", "client_id"),
])
def test_within_agency_duplicate_persons(city: City, id_type: str, label: str, agency: str, extract: str,
                                         id_col: str) -> None:
    ids = city.truth("identities")
    per = ids[ids.id_type == id_type].groupby("person_id").size()
    twice = per[per >= 2].index
    assert len(twice) == city.summary.hard_cases[f"{label}_with_two_ids"] > 0
    df = _person_rows(city, agency, extract, id_col)
    cols = ["first_name", "last_name", "birth_date", "sex"]
    for person in twice[:50]:
        recs = df[df.person_id == person].drop_duplicates(id_col)
        assert recs[id_col].nunique() >= 2
        assert len(recs[cols].drop_duplicates()) >= 2, f"{person}: both records identical"


def test_noise_log_matches_summary_and_points_at_real_records(city: City) -> None:
    noise = city.truth("noise")
    counts = noise.groupby(["field", "kind"]).size()
    for (fld, kind), n in counts.items():
        assert city.summary.hard_cases[f"records_{fld}_{kind}"] == n
    st = city.extract("fps", "students")
    keys = {
        ("fps", "students"): set(st.student_id + "|" + st.school_id + "|" + st.school_year + "|" + st.enroll_date),
        ("fhd", "patients"): set(city.extract("fhd", "patients").patient_id),
        ("dhs", "clients"): set(city.extract("dhs", "clients").client_id),
    }
    for (agency, extract), grp in noise.groupby(["agency", "extract"]):
        assert set(grp.record_key) <= keys[(agency, extract)]
    for kind in ("nickname", "spelling_variant", "typo", "day_month_swap", "missing", "compound_variant",
                 "case_accent_whitespace", "surname_changed", "format_variant"):
        assert (noise.kind == kind).any(), kind


def _flagged(city: City, agency: str, extract: str, id_col: str) -> pd.DataFrame:
    """Records of one file joined to their truth and to the set of their noise flags."""
    df = _person_rows(city, agency, extract, id_col)
    if extract == "students":
        df["record_key"] = df.student_id + "|" + df.school_id + "|" + df.school_year + "|" + df.enroll_date
    else:
        df["record_key"] = df[id_col]
    noise = city.truth("noise")
    noise = noise[(noise.agency == agency) & (noise.extract == extract)]
    kinds = (noise.field + ":" + noise.kind).groupby(noise.record_key).agg(set)
    df["noise"] = kinds.reindex(df.record_key.to_numpy()).to_numpy()
    df["noise"] = df.noise.apply(lambda f: f if isinstance(f, set) else set())
    truth = city.truth("persons").set_index("person_id")
    return df.join(truth, on="person_id", rsuffix="_true")


SOURCES = [("fps", "students", "student_id"), ("fhd", "patients", "patient_id"), ("dhs", "clients", "client_id")]


@pytest.mark.parametrize(("agency", "extract", "id_col"), SOURCES)
def test_birth_date_noise_is_what_the_log_says(city: City, agency: str, extract: str, id_col: str) -> None:
    df = _flagged(city, agency, extract, id_col)
    swapped = df.noise.apply(lambda f: "birth_date:day_month_swap" in f)
    other = df.noise.apply(lambda f: bool(f & {"birth_date:day_error", "birth_date:year_error"}))
    t = df.birth_date_true.str.split("-", expand=True)
    swap_of_truth = t[0] + "-" + t[2] + "-" + t[1]
    assert (df.birth_date[swapped] == swap_of_truth[swapped]).all()
    assert (df.birth_date[swapped] != df.birth_date_true[swapped]).all()
    assert ((df.birth_date != df.birth_date_true) == (swapped | other)).all()
    assert int(swapped.sum()) > 0 or agency == "dhs"


@pytest.mark.parametrize(("agency", "extract", "id_col"), SOURCES)
def test_first_name_variants_are_what_the_log_says(city: City, agency: str, extract: str, id_col: str) -> None:
    df = _flagged(city, agency, extract, id_col)
    pure = df.noise.apply(lambda f: not (f & {"first_name:typo", "first_name:middle_merged"}))
    nick = df.noise.apply(lambda f: "first_name:nickname" in f) & pure
    nick_ok = [norm(w) in {norm(n) for n in NICKNAMES.get(t, [])} for w, t in
               zip(df.first_name[nick], df.first_name_true[nick], strict=True)]
    assert all(nick_ok) and len(nick_ok) > 0
    spell = df.noise.apply(lambda f: "first_name:spelling_variant" in f) & pure
    groups = {n: {norm(m) for m in g} for g in SPELLING_GROUPS for n in g}
    spell_ok = [norm(w) in groups.get(t, set()) and w != t for w, t in
                zip(df.first_name[spell], df.first_name_true[spell], strict=True)]
    assert all(spell_ok)
    clean = df.noise.apply(lambda f: not any(k.startswith("first_name:") for k in f))
    assert (df.first_name[clean] == df.first_name_true[clean]).all()


@pytest.mark.parametrize(("agency", "extract", "id_col"), SOURCES)
def test_surname_changes_show_the_new_surname(city: City, agency: str, extract: str, id_col: str) -> None:
    df = _flagged(city, agency, extract, id_col)
    changed = df.noise.apply(lambda f: "last_name:surname_changed" in f)
    other = df.noise.apply(lambda f: bool(f & {"last_name:typo", "last_name:punctuation_variant"}))
    sel = changed & ~other
    assert (df.last_name[sel].map(norm) == df.new_last_name[sel].map(norm)).all()
    assert (df.new_last_name[changed] != "").all()
    clean = df.noise.apply(lambda f: not any(k.startswith("last_name:") for k in f))
    assert (df.last_name[clean] == df.last_name_true[clean]).all()


def test_missing_middle_names_are_logged(city: City) -> None:
    df = _flagged(city, "fps", "students", "student_id")
    missing = (df.middle_name == "") & (df.middle_name_true != "")
    logged = df.noise.apply(lambda f: "middle_name:missing" in f)
    assert (missing == logged).all()
    assert int(missing.sum()) == city.summary.hard_cases["records_middle_name_missing"] > 0


def test_surname_change_counts(city: City) -> None:
    p = city.truth("persons")
    changed = p[p.new_last_name != ""]
    assert len(changed) == city.summary.hard_cases["persons_with_surname_change"] > 0
    assert (changed.surname_change_date != "").all()
    assert (changed.new_last_name != changed.last_name).all()


def test_mid_year_transfers(city: City) -> None:
    st = _person_rows(city, "fps", "students", "student_id")
    schools = st.groupby(["person_id", "school_year"]).school_id.nunique()
    movers = schools[schools >= 2]
    assert len(movers) == city.summary.hard_cases["mid_year_transfers"] > 0
    sub = st.set_index(["person_id", "school_year"]).loc[movers.index].reset_index()
    for _, grp in list(sub.groupby(["person_id", "school_year"]))[:200]:
        grp = grp.sort_values("enroll_date")
        for (_, a), (_, b) in pairwise(grp.iterrows()):
            assert a.exit_date != "" and a.exit_date <= b.enroll_date
    returns = st.groupby(["person_id", "school_year", "school_id"]).size()
    assert int((returns >= 2).sum()) == city.summary.hard_cases["same_school_returns_in_year"]


def test_families_move_and_children_appear_at_several_addresses(city: City) -> None:
    a = city.truth("addresses")
    moved = a.groupby("family_id").size()
    assert int((moved >= 2).sum()) == city.summary.hard_cases["families_moved_within_city"] > 0
    st = _person_rows(city, "fps", "students", "student_id")
    n_addr = st.assign(a=st.street_address.map(norm)).groupby("person_id").a.nunique()
    assert (n_addr >= 2).sum() > 0
    assert city.summary.hard_cases["children_recorded_at_two_or_more_addresses"] > 0


def test_children_known_to_only_one_agency(city: City) -> None:
    ids = city.truth("identities")
    p = city.truth("persons")
    kids = p[p.is_child == "true"].person_id
    agencies = ids[ids.id_type != "medicaid"].groupby("person_id").agency.agg(lambda a: "+".join(sorted(set(a))))
    where = agencies.reindex(kids.to_numpy()).fillna("")
    for agency in ("fps", "fhd", "dhs"):
        assert int((where == agency).sum()) == city.summary.hard_cases[f"children_only_in_{agency}"] > 0
    assert int((where == "").sum()) == city.summary.hard_cases["children_in_no_agency"]


def test_retests_and_graduation_outcomes(city: City) -> None:
    a = city.extract("fps", "assessments").drop_duplicates()
    retests = (a.groupby(["student_id", "school_year", "subject"]).size() >= 2).sum()
    assert int(retests) == city.summary.hard_cases["assessment_retests"] > 0
    g = city.extract("fps", "graduation").outcome.value_counts()
    for outcome in ("GRADUATED_4YR", "GRADUATED_5YR", "DROPPED_OUT", "STILL_ENROLLED", "TRANSFERRED_OUT"):
        assert g.get(outcome, 0) == city.summary.hard_cases[f"graduation_{outcome.lower()}"] > 0


def test_dropouts_and_transfers_leave_the_enrolment_file(city: City) -> None:
    """A student who dropped out, transferred out or died has an exit date on their last enrolment, no later
    than the cohort year (or the fifth year, for a student who stayed on)."""
    g = _person_rows(city, "fps", "graduation", "student_id")
    st = _person_rows(city, "fps", "students", "student_id")
    gone = g[g.outcome.isin(["DROPPED_OUT", "TRANSFERRED_OUT", "DECEASED"])]
    last = st.sort_values("enroll_date").groupby("person_id").tail(1).set_index("person_id")
    rows = last.loc[gone.person_id]
    assert (rows.exit_date != "").all()
    assert (rows.school_year.astype(int).to_numpy() <= gone.cohort_year.astype(int).to_numpy() + 1).all()


def test_doses_recorded_twice(city: City) -> None:
    imm = _person_rows(city, "fhd", "immunizations", "patient_id")
    mmr = imm[imm.vaccine_code.isin(["03", "94"])]
    per_dose = mmr.groupby(["person_id", "administered_date"]).patient_id.nunique()
    assert (per_dose >= 2).sum() == city.summary.hard_cases["mmr_doses_in_two_patient_records"] > 0
    assert city.summary.hard_cases["exact_duplicate_rows_fhd_immunizations"] > 0
    codes = mmr.groupby(["patient_id", "administered_date"]).vaccine_code.nunique()
    assert int((codes >= 2).sum()) > 0


def test_name_styles_differ_between_agencies(city: City) -> None:
    """Accents and case: schools keep accents, human services never has them, clinics upper-case many."""
    st, pa, cl = (city.extract(a, e) for a, e in (("fps", "students"), ("fhd", "patients"), ("dhs", "clients")))
    accented = lambda s: s.str.contains("[áéíóúñÁÉÍÓÚÑ]", regex=True).mean()  # noqa: E731
    upper = lambda s: (s == s.str.upper()).mean()  # noqa: E731
    assert accented(st.last_name) > accented(cl.last_name)
    assert upper(pa.last_name) > 0.25 > upper(st.last_name)
    assert np.isclose(upper(pa.first_name), upper(pa.last_name), atol=0.05)


@pytest.mark.parametrize(("agency", "extract", "id_col"), SOURCES)
@pytest.mark.parametrize("fld", ["first_name", "last_name"])
def test_a_logged_name_error_survives_case_and_accent_folding(city: City, agency: str, extract: str, id_col: str,
                                                             fld: str) -> None:
    """A record logged with one name error really differs from the truth once case, accents and spaces are
    normalised (no typo that an upper-casing house style silently undoes)."""
    df = _flagged(city, agency, extract, id_col)
    errors = df.noise.apply(lambda f: {k for k in f if k.startswith(fld + ":")
                                       and not k.endswith((":case_accent_whitespace", ":surname_changed"))})
    one = errors.apply(len) == 1
    truth = df[f"{fld}_true"] if fld == "first_name" else df.last_name_true
    if fld == "last_name":
        changed = df.noise.apply(lambda f: "last_name:surname_changed" in f)
        truth = truth.where(~changed, df.new_last_name)
    written = df[fld][one].map(norm)
    assert one.sum() > 0
    assert (written != truth[one].map(norm)).all()
