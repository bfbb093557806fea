"""The synthetic city: agency extracts with known ground truth, for the demo, tests and benchmarks.

``generate_city(children, seed, out)`` writes, for the school years ``first_school_year`` ..
``last_school_year`` as of ``as_of``:

- ``out/drop/<agency>/<extract>_<YYYYMMDD>.csv``: the nine extracts of SPEC.md, each a complete
  snapshot conforming to its contract in ``schemas/extracts`` (columns in contract order);
- ``out/truth/``: what the pipeline must never read: ``persons.csv`` (who everyone really is),
  ``identities.csv`` (every agency identifier -> its person), ``addresses.csv`` (family address
  histories), ``schools.csv``, ``noise.csv`` (every record that differs from the truth, and how) and
  ``summary.json`` (parameters, row counts, the count of every injected hard case, headline rates).

Everything is drawn from ``numpy.random.default_rng`` seeded by ``seed`` (never the clock, never
``hash()``): the same arguments give byte-identical files.

Command line: ``python -m synthetic --children 5000 --seed 1 --out /tmp/city``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from schemas.contracts import load_extract_contracts
from synthetic import _dates as D
from synthetic.dhs import build_dhs
from synthetic.fhd import build_fhd
from synthetic.fps import build_fps
from synthetic.noise import Flags, city_errors, using_city_errors
from synthetic.population import Params, Population, build_population

EXTRACTS: tuple[tuple[str, str], ...] = (
    ("fps", "students"), ("fps", "attendance"), ("fps", "assessments"), ("fps", "graduation"),
    ("fhd", "patients"), ("fhd", "encounters"), ("fhd", "immunizations"),
    ("dhs", "clients"), ("dhs", "program_enrollments"),
)
# Extracts without a unique key may carry exact duplicate rows (intake counts them once).
DUPLICATE_ROWS_IN = (("fps", "attendance"), ("fps", "assessments"))

PERSONS_COLUMNS = [
    "person_id", "family_id", "role", "is_child", "aged_0_18_at_as_of", "first_name", "middle_name", "last_name",
    "birth_date", "sex", "race_ethnicity", "twin_of", "new_last_name", "surname_change_date", "death_date",
    "family_arrival_date", "family_departure_date",
]
IDENTITIES_COLUMNS = ["agency", "id_type", "source_id", "person_id"]
NOISE_COLUMNS = ["agency", "extract", "record_key", "field", "kind"]


@dataclass(frozen=True)
class CitySummary:
    """What ``generate_city`` wrote: paths, row counts per extract and the injected hard cases."""

    out: Path
    files: dict[tuple[str, str], Path]
    truth: dict[str, Path]
    rows: dict[tuple[str, str], int]
    hard_cases: dict[str, int]
    rates: dict[str, float]

    def format(self) -> str:
        lines = [f"synthetic city written to {self.out}"]
        for key, path in self.files.items():
            lines.append(f"  {key[0]}/{key[1]:<20} {self.rows[key]:>10,} rows  {path.relative_to(self.out)}")
        lines.append("  truth: " + ", ".join(p.name for p in self.truth.values()))
        lines.append("hard cases:")
        lines.extend(f"  {k:<52} {v:>10,}" for k, v in self.hard_cases.items())
        lines.append("rates (truth, for plausibility):")
        lines.extend(f"  {k:<52} {v:>10.3f}" for k, v in self.rates.items())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


# ---------------------------------------------------------------------------------------------------------


def _check_args(children: int, as_of: dt.date, first: int, last: int) -> None:
    if not isinstance(children, int | np.integer) or children < 1:
        raise ValueError(f"children must be a positive whole number, not {children!r}")
    if first > last:
        raise ValueError(f"first_school_year ({first}) is after last_school_year ({last})")
    if D.day(dt.date(last - 1, 7, 1)) > D.day(as_of):
        raise ValueError(
            f"school year {last} starts on {last - 1}-07-01, after as_of {as_of.isoformat()}: "
            f"use last_school_year <= {as_of.year + (as_of.month >= 7)}"
        )
    if first < 2000:
        raise ValueError("first_school_year must be 2000 or later (the contracts' lower bound)")


def _needs_quoting(table: pa.Table) -> bool:
    for col in table.columns:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            for ch in (",", '"', "\n", "\r"):
                if pc.any(pc.match_substring(col, ch)).as_py():
                    return True
    return False


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(None)
    quoting = "needed" if _needs_quoting(table) else "none"
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(include_header=True, quoting_style=quoting))


def _inject_duplicates(df: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Repeat ``n`` random rows, each copy at a random position."""
    if n <= 0 or len(df) == 0:
        return df
    n = min(n, len(df))
    src = rng.choice(len(df), size=n, replace=False)
    pos = rng.integers(0, len(df) + 1, n)
    order = np.insert(np.arange(len(df)), pos, src)
    return df.iloc[order].reset_index(drop=True)


def _noise_rows(agency: str, extract: str, keys: np.ndarray, flags: Flags) -> pd.DataFrame:
    parts = []
    for name in sorted(flags):
        idx = np.flatnonzero(flags[name])
        if len(idx) == 0:
            continue
        fld, kind = name.split(":")
        parts.append(pd.DataFrame({"agency": agency, "extract": extract, "record_key": keys[idx], "field": fld,
                                   "kind": kind}))
    if not parts:
        return pd.DataFrame(columns=NOISE_COLUMNS)
    return pd.concat(parts, ignore_index=True)


def _pairs(groups: pd.DataFrame, by: list[str], person: str = "person") -> pd.DataFrame:
    """Distinct unordered pairs of people sharing the values of ``by``."""
    g = groups[by + [person]].drop_duplicates()
    m = g.merge(g, on=by, suffixes=("_a", "_b"))
    m = m[m[f"{person}_a"] < m[f"{person}_b"]]
    return m[[f"{person}_a", f"{person}_b"]].drop_duplicates()


# ---------------------------------------------------------------------------------------------------------


def generate_city(
    children: int,
    seed: int,
    out: Path,
    *,
    as_of: dt.date = dt.date(2026, 8, 15),
    first_school_year: int = 2022,
    last_school_year: int = 2026,
    profile: str = "default",
) -> CitySummary:
    """Generate the synthetic city's nine extracts and its ground truth under ``out``; see the module doc.

    ``profile`` names a city error profile (``synthetic/error_profiles/<name>.yaml``, or a YAML path).
    """
    from synthetic.profiles import load_profile

    with using_city_errors(load_profile(profile)):
        return _generate_city(children, seed, out, as_of=as_of, first_school_year=first_school_year,
                              last_school_year=last_school_year)


def _generate_city(
    children: int,
    seed: int,
    out: Path,
    *,
    as_of: dt.date,
    first_school_year: int,
    last_school_year: int,
) -> CitySummary:
    _check_args(children, as_of, first_school_year, last_school_year)
    out = Path(out)
    params = Params(int(children), int(seed), D.day(as_of), int(first_school_year), int(last_school_year))
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(5)]
    pop = build_population(params, streams[0])
    fps = build_fps(pop, streams[1])
    fhd = build_fhd(pop, streams[2], fps.kg, fps.kids)  # type: ignore[attr-defined]
    dhs = build_dhs(pop, streams[3], pop.homeless_years)  # type: ignore[attr-defined]
    tables = _export_order(fps, fhd, dhs, streams[4])
    files, rows = _write_extracts(tables, out, as_of.strftime("%Y%m%d"))

    truth_dir = out / "truth"
    truth: dict[str, Path] = {}
    persons = _truth_persons(pop)
    truth["persons"] = truth_dir / "persons.csv"
    _write_csv(persons[PERSONS_COLUMNS], truth["persons"])
    idf = _truth_identities(pop, fps, fhd, dhs)
    truth["identities"] = truth_dir / "identities.csv"
    _write_csv(idf[IDENTITIES_COLUMNS], truth["identities"])
    truth["addresses"] = truth_dir / "addresses.csv"
    _write_csv(_truth_addresses(pop, persons), truth["addresses"])
    truth["schools"] = truth_dir / "schools.csv"
    _write_csv(fps.schools, truth["schools"])
    noise = _truth_noise(fps, fhd, dhs)
    truth["noise"] = truth_dir / "noise.csv"
    _write_csv(noise[NOISE_COLUMNS], truth["noise"])

    hard, rates, noise_by_agency = _hard_cases(pop, fps, fhd, dhs, tables, idf, noise)
    ps = pop.persons
    summary = {
        "generator": "synthetic.city.generate_city",
        "parameters": {"children": int(children), "seed": int(seed), "as_of": as_of.isoformat(),
                       "first_school_year": int(first_school_year), "last_school_year": int(last_school_year)},
        "files": {f"{a}/{e}": {"path": str(files[(a, e)].relative_to(out)), "rows": rows[(a, e)]} for a, e in EXTRACTS},
        "truth_files": {k: str(v.relative_to(out)) for k, v in truth.items()} | {"summary": "truth/summary.json"},
        "population": {"persons": int(len(ps)), "children_aged_0_18": int(ps.aged_0_18.sum()),
                       "children_all": int(ps.is_child.sum()), "adults": int((~ps.is_child).sum()),
                       "families": int(len(pop.families)), "schools": int(len(fps.schools))},
        "hard_cases": hard,
        "noise_records_by_agency": noise_by_agency,
        "rates": rates,
    }
    if city_errors().name != "default":
        summary["error_profile"] = dataclasses.asdict(city_errors())
    truth["summary"] = truth_dir / "summary.json"
    truth["summary"].write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return CitySummary(out=out, files=files, truth=truth, rows=rows, hard_cases=hard, rates=rates)


def _export_order(fps, fhd, dhs, rng: np.random.Generator) -> dict[tuple[str, str], pd.DataFrame]:  # noqa: ANN001
    """The extracts in the order an agency system would export them (never grouped by family), with repeats."""
    si = fps.internal
    order = np.lexsort((si._enroll.to_numpy(), fps.students.student_id.to_numpy().astype(str),
                        si._school.to_numpy(), fps.students.school_year.to_numpy()))
    students = fps.students.iloc[order].reset_index(drop=True)
    attendance = fps.attendance.iloc[order].reset_index(drop=True)
    assessments = fps.assessments.iloc[np.argsort(fps.assessments.school_year.to_numpy(), kind="stable")]
    graduation = fps.graduation.sort_values(["cohort_year", "student_id"], kind="stable")
    patients = fhd.patients.sort_values("patient_id", kind="stable")
    clients = dhs.clients.sort_values("client_id", kind="stable")
    enrol = dhs.program_enrollments.sort_values(["client_id", "start_date", "program"], kind="stable")
    tables = {
        ("fps", "students"): students, ("fps", "attendance"): attendance, ("fps", "assessments"): assessments,
        ("fps", "graduation"): graduation, ("fhd", "patients"): patients, ("fhd", "encounters"): fhd.encounters,
        ("fhd", "immunizations"): fhd.immunizations, ("dhs", "clients"): clients,
        ("dhs", "program_enrollments"): enrol,
    }
    for key in DUPLICATE_ROWS_IN:
        n_dup = int(np.clip(round(len(tables[key]) * 1e-4), 3, 200))
        tables[key] = _inject_duplicates(tables[key].reset_index(drop=True), n_dup, rng)
    return tables


def _write_extracts(
    tables: dict[tuple[str, str], pd.DataFrame], out: Path, stamp: str
) -> tuple[dict[tuple[str, str], Path], dict[tuple[str, str], int]]:
    """Each extract in its contract's columns (``tables`` keeps those) under ``out/drop``: (paths, rows)."""
    contracts = load_extract_contracts()
    files: dict[tuple[str, str], Path] = {}
    rows: dict[tuple[str, str], int] = {}
    for key in EXTRACTS:
        cols = contracts[key].column_names
        df = tables[key]
        missing = [c for c in cols if c not in df.columns]
        assert not missing, f"{key}: generator lacks columns {missing}"
        df = df[cols]
        tables[key] = df
        path = out / "drop" / key[0] / f"{key[1]}_{stamp}.csv"
        _write_csv(df, path)
        files[key] = path
        rows[key] = len(df)
    return files, rows


def _truth_persons(pop: Population) -> pd.DataFrame:
    ps, fams = pop.persons, pop.families
    person_id = ps.person_id.to_numpy()
    pf = ps.family.to_numpy()
    last = (ps.last1 + ps.last_sep + ps.last2).to_numpy()
    twin = ps.twin_of.to_numpy()
    return pd.DataFrame({
        "person_id": person_id,
        "family_id": (pd.Series(pf + 1).astype(str).str.zfill(6).radd("f")).to_numpy(),
        "role": ps.role.to_numpy(),
        "is_child": np.where(ps.is_child.to_numpy(), "true", "false"),
        "aged_0_18_at_as_of": np.where(ps.aged_0_18.to_numpy(), "true", "false"),
        "first_name": ps["first"].to_numpy(),
        "middle_name": np.where(ps.middle.to_numpy() == "", None, ps.middle.to_numpy()),
        "last_name": last,
        "birth_date": D.to_strings(ps.birth.to_numpy()),
        "sex": ps.sex.to_numpy(),
        "race_ethnicity": ps.race.to_numpy(),
        "twin_of": np.where(twin >= 0, person_id[np.maximum(twin, 0)], None),
        "new_last_name": np.where(ps.new_last.to_numpy() == "", None, ps.new_last.to_numpy()),
        "surname_change_date": D.to_strings(ps.change_date.to_numpy(), ps.change_date.to_numpy() < D.NEVER),
        "death_date": D.to_strings(ps.death.to_numpy(), ps.death.to_numpy() < D.NEVER),
        "family_arrival_date": D.to_strings(fams.arrive.to_numpy()[pf], fams.arrive.to_numpy()[pf] > D.LONG_AGO),
        "family_departure_date": D.to_strings(fams.leave.to_numpy()[pf], fams.leave.to_numpy()[pf] < D.NEVER),
    })


def _truth_identities(pop: Population, fps, fhd, dhs) -> pd.DataFrame:  # noqa: ANN001
    """Every agency identifier -> its person (``person`` position and ``person_id``)."""
    idf = pd.concat([
        pd.DataFrame({"agency": "fps", "id_type": "student", "source_id": fps.ids.source_id, "person": fps.ids.person}),
        pd.DataFrame({"agency": "fhd", "id_type": fhd.ids.id_type, "source_id": fhd.ids.source_id, "person": fhd.ids.person}),
        pd.DataFrame({"agency": "dhs", "id_type": "client", "source_id": dhs.ids.source_id, "person": dhs.ids.person}),
    ], ignore_index=True)
    idf["person_id"] = pop.persons.person_id.to_numpy()[idf.person.to_numpy()]
    return idf.sort_values(["agency", "id_type", "source_id"], kind="stable").reset_index(drop=True)


def _truth_addresses(pop: Population, persons: pd.DataFrame) -> pd.DataFrame:
    """Family address histories: one row per address slot used, with its validity."""
    book, fams = pop.book, pop.families
    pf = pop.persons.family.to_numpy()
    fam_rows, slot_rows = np.nonzero(pop.fam_addr >= 0)
    aid = pop.fam_addr[fam_rows, slot_rows]
    start = np.where(slot_rows == 0, fams.arrive.to_numpy()[fam_rows], pop.fam_move[fam_rows, np.maximum(slot_rows - 1, 0)])
    nxt = np.where(slot_rows < 2, pop.fam_move[fam_rows, np.minimum(slot_rows, 1)], D.NEVER)
    nxt = np.where((slot_rows < 2) & (pop.fam_addr[fam_rows, np.minimum(slot_rows + 1, 2)] >= 0), nxt, D.NEVER)
    end = np.minimum(np.where(nxt < D.NEVER, nxt - 1, D.NEVER), fams.leave.to_numpy()[fam_rows])
    return pd.DataFrame({
        "family_id": persons.family_id.to_numpy()[np.searchsorted(pf, fam_rows)],
        "slot": slot_rows, "street_address": book.text[aid], "zip": book.zip[aid],
        "valid_from": D.to_strings(start, start > D.LONG_AGO), "valid_to": D.to_strings(end, end < D.NEVER),
    })


def _truth_noise(fps, fhd, dhs) -> pd.DataFrame:  # noqa: ANN001
    """The noise log: every record that differs from the truth, and how."""
    st_keys = (fps.students.student_id + "|" + fps.students.school_id + "|" + fps.students.school_year.astype(str)
               + "|" + fps.students.enroll_date).to_numpy()
    return pd.concat([
        _noise_rows("fps", "students", st_keys, fps.student_flags),
        _noise_rows("fhd", "patients", fhd.patients.patient_id.to_numpy(), fhd.patient_flags),
        _noise_rows("dhs", "clients", dhs.clients.client_id.to_numpy(), dhs.client_flags),
    ], ignore_index=True)


def _hard_cases(pop: Population, fps, fhd, dhs, tables, idf: pd.DataFrame, noise: pd.DataFrame):  # noqa: ANN001
    hard: dict[str, int] = {}
    _people_cases(pop, fps, fhd, dhs, hard)
    _identifier_cases(pop, idf, hard)
    _file_cases(fps, fhd, dhs, tables, hard)
    # noise, across agencies and per agency
    # records (students rows, patients, clients) per kind of variation, e.g. records_birth_date_day_month_swap
    for (fld, kind), n in noise.groupby(["field", "kind"]).size().items():
        hard[f"records_{fld}_{kind}"] = int(n)
    noise_by_agency = {
        agency: {f"{f}:{k}": int(n) for (f, k), n in grp.groupby(["field", "kind"]).size().items()}
        for agency, grp in noise.groupby("agency")
    }
    # headline rates on the truth (plausibility, not the pipeline's answer)
    rates = _truth_rates(pop, fps, fhd, dhs, tables, idf)
    return hard, rates, noise_by_agency


def _people_cases(pop: Population, fps, fhd, dhs, hard: dict[str, int]) -> None:  # noqa: ANN001
    """Twins, siblings, surname changes, moves, arrivals and departures."""
    ps = pop.persons
    is_child = ps.is_child.to_numpy()
    pf = ps.family.to_numpy()
    si = fps.internal
    hard["twin_pairs"] = int((ps.twin_of.to_numpy() >= 0).sum() // 2)
    st_people = pd.DataFrame({"person": si._person.to_numpy(), "sy": fps.students.school_year.to_numpy(),
                              "fam": pf[si._person.to_numpy()], "addr": si._addr.to_numpy()})
    tw = ps.twin_of.to_numpy()
    twin_pairs = _pairs(st_people, ["fam", "sy"])
    tp = twin_pairs[tw[twin_pairs.person_a.to_numpy()] == twin_pairs.person_b.to_numpy()]
    hard["twin_pairs_both_in_students"] = int(len(tp))
    kids_per_fam = np.bincount(pf[is_child], minlength=len(pop.families))
    hard["sibling_pairs"] = int((kids_per_fam * (kids_per_fam - 1) // 2).sum())
    hard["sibling_pairs_in_students_same_year_same_address"] = int(len(_pairs(st_people, ["fam", "sy", "addr"])))
    hard["persons_with_surname_change"] = int((ps.new_last.to_numpy() != "").sum())
    fa = pop.fam_addr
    hard["families_moved_within_city"] = int((fa[:, 1] >= 0).sum())
    hard["families_arrived_during_window"] = int((pop.families.arrive.to_numpy() > D.LONG_AGO).sum())
    hard["families_left_during_window"] = int((pop.families.leave.to_numpy() < D.NEVER).sum())
    addr_seen = pd.concat([
        pd.DataFrame({"person": si._person.to_numpy(), "addr": si._addr.to_numpy()}),
        pd.DataFrame({"person": fhd.ids.person.to_numpy()[fhd.ids.id_type.to_numpy() == "patient"], "addr": fhd.addr}),
        pd.DataFrame({"person": dhs.ids.person.to_numpy(), "addr": dhs.addr}),
    ]).drop_duplicates()
    n_addr = addr_seen.groupby("person").size()
    hard["children_recorded_at_two_or_more_addresses"] = int((n_addr[is_child[n_addr.index.to_numpy()]] >= 2).sum())


def _identifier_cases(pop: Population, idf: pd.DataFrame, hard: dict[str, int]) -> None:
    """People with two ids of one agency; children per combination of agencies; parents known to agencies."""
    is_child = pop.persons.is_child.to_numpy()
    per = idf.groupby(["id_type", "person"]).size()
    for id_type, label in (("student", "students"), ("patient", "patients"), ("client", "clients")):
        s = per.xs(id_type, level="id_type") if id_type in per.index.get_level_values(0) else pd.Series(dtype=int)
        hard[f"{label}_with_two_ids"] = int((s >= 2).sum())
    bits = np.zeros(len(pop.persons), dtype=np.int64)
    for bit, agency in enumerate(("fps", "fhd", "dhs")):
        bits[idf.person.to_numpy()[idf.agency.to_numpy() == agency]] |= 1 << bit
    kid_bits = bits[is_child]
    hard["children_only_in_fps"] = int((kid_bits == 1).sum())
    hard["children_only_in_fhd"] = int((kid_bits == 2).sum())
    hard["children_only_in_dhs"] = int((kid_bits == 4).sum())
    hard["children_in_all_three_agencies"] = int((kid_bits == 7).sum())
    hard["children_in_no_agency"] = int((kid_bits == 0).sum())
    adults_ids = idf[~is_child[idf.person.to_numpy()]]
    hard["parents_in_dhs"] = int(adults_ids[adults_ids.agency == "dhs"].person.nunique())
    hard["parents_in_fhd"] = int(adults_ids[(adults_ids.agency == "fhd") & (adults_ids.id_type == "patient")].person.nunique())


def _file_cases(fps, fhd, dhs, tables, hard: dict[str, int]) -> None:  # noqa: ANN001
    """Exact repeats, transfers and returns, retests, graduation outcomes, doses recorded twice, open spells."""
    si = fps.internal
    for key in (("fps", "attendance"), ("fps", "assessments"), ("fhd", "immunizations")):
        df = tables[key]
        hard[f"exact_duplicate_rows_{key[0]}_{key[1]}"] = int(df.duplicated().sum())
    sy_schools = pd.DataFrame({"person": si._person.to_numpy(), "sy": fps.students.school_year.to_numpy(),
                               "school": fps.students.school_id.to_numpy()})
    n_sch = sy_schools.drop_duplicates().groupby(["person", "sy"]).size()
    hard["mid_year_transfers"] = int((n_sch >= 2).sum())
    hard["same_school_returns_in_year"] = int((sy_schools.groupby(["person", "sy", "school"]).size() >= 2).sum())
    st = fps.students
    hard["mid_year_entries"] = int(((si._part.to_numpy() == 0) & (si._enroll.to_numpy() >= D.from_ymd(
        st.school_year.to_numpy() - 1, np.full(len(st), 10), np.full(len(st), 1)))).sum())
    hard["enrolment_rows_with_exit_date"] = int(st.exit_date.notna().sum())
    a = fps.assessments
    a_rows = a.drop_duplicates()
    hard["assessment_retests"] = int((a_rows.groupby(["student_id", "school_year", "subject"]).size() >= 2).sum())
    g = fps.graduation.outcome.value_counts()
    for outcome in ("GRADUATED_4YR", "GRADUATED_5YR", "DROPPED_OUT", "STILL_ENROLLED", "TRANSFERRED_OUT", "DECEASED"):
        hard[f"graduation_{outcome.lower()}"] = int(g.get(outcome, 0))
    hard["immunization_doses_in_two_patient_records"] = int(fhd.counts["doses_in_two_patient_records"])
    hard["mmr_doses_in_two_patient_records"] = int(fhd.counts["mmr_doses_in_two_patient_records"])
    hard["mmr_dose_recorded_under_both_codes"] = int(fhd.counts["mmr_dose_recorded_under_both_codes"])
    hard["program_spells_ongoing"] = int(dhs.program_enrollments.end_date.isna().sum())


def _truth_rates(pop: Population, fps, fhd, dhs, tables, idf: pd.DataFrame) -> dict[str, float]:  # noqa: ANN001
    ps = pop.persons
    is_child = ps.is_child.to_numpy()
    rates: dict[str, float] = {}
    att = tables[("fps", "attendance")].drop_duplicates()
    id_person = pd.Series(idf.person.to_numpy(), index=idf.source_id.to_numpy())
    id_person = id_person[~id_person.index.duplicated()]
    att = att.assign(person=id_person.reindex(att.student_id.to_numpy()).to_numpy())
    city = att.groupby(["person", "school_year"])[["days_enrolled", "days_absent"]].sum()
    city = city[city.days_enrolled >= 10]
    rates["chronic_absence"] = float((city.days_absent / city.days_enrolled >= 0.10).mean()) if len(city) else 0.0
    a = tables[("fps", "assessments")]
    best = a.groupby(["student_id", "school_year", "grade_level", "subject"]).performance_level.max().reset_index()
    for name, grade, subject, lvl in (("kindergarten_readiness", "KG", "KRA", 3), ("grade3_reading", "03", "ELA", 3),
                                      ("grade8_math", "08", "MATH", 3)):
        sel = best[(best.grade_level == grade) & (best.subject == subject)]
        rates[name] = float((sel.performance_level >= lvl).mean()) if len(sel) else 0.0
    g = tables[("fps", "graduation")]
    den = g[~g.outcome.isin(["TRANSFERRED_OUT", "DECEASED"])]
    rates["hs_graduation_4yr"] = float((den.outcome == "GRADUATED_4YR").mean()) if len(den) else 0.0
    # kindergarten MMR2 through the true identities
    st = tables[("fps", "students")]
    kg = st[st.grade_level == "KG"][["student_id", "school_year"]].drop_duplicates()
    kg = kg.assign(person=id_person.reindex(kg.student_id.to_numpy()).to_numpy())[["person", "school_year"]].drop_duplicates()
    imm = tables[("fhd", "immunizations")]
    mmr = imm[imm.vaccine_code.isin(["03", "94"])].drop_duplicates(["patient_id", "administered_date"])
    mmr = mmr.assign(person=id_person.reindex(mmr.patient_id.to_numpy()).to_numpy())
    mmr = mmr[["person", "administered_date"]].drop_duplicates()
    m = kg.merge(mmr, on="person", how="left")
    cutoff = (m.school_year - 1).astype(str) + "-09-01"
    m["before"] = m.administered_date.notna() & (m.administered_date < cutoff)
    doses = m.groupby(["person", "school_year"]).before.sum()
    patients_people = np.unique(idf[idf.id_type == "patient"].person.to_numpy())
    has_record = np.isin(doses.index.get_level_values(0).to_numpy(), patients_people)
    rates["kindergarten_mmr2_all_kg"] = float((doses >= 2).mean()) if len(doses) else 0.0
    rates["kindergarten_mmr2_kg_with_health_record"] = float((doses[has_record] >= 2).mean()) if has_record.any() else 0.0
    # well-child visits among students with a health record
    enc = tables[("fhd", "encounters")]
    wc = enc[enc.encounter_type == "WELL_CHILD"]
    wc = wc.assign(person=id_person.reindex(wc.patient_id.to_numpy()).to_numpy(),
                   school_year=wc.encounter_date.str[:4].astype(int) + (wc.encounter_date.str[5:7].astype(int) >= 7))
    wc = wc[["person", "school_year"]].drop_duplicates().assign(visit=True)
    stud = st[["student_id", "school_year"]].drop_duplicates()
    stud = stud.assign(person=id_person.reindex(stud.student_id.to_numpy()).to_numpy())[["person", "school_year"]]
    stud = stud.drop_duplicates()
    stud = stud[np.isin(stud.person.to_numpy(), patients_people)]
    w = stud.merge(wc, on=["person", "school_year"], how="left")
    rates["well_child_visit_students_with_health_record"] = float(w.visit.notna().mean()) if len(w) else 0.0
    kids = np.flatnonzero(is_child & ps.aged_0_18.to_numpy())
    rates["share_children_0_18_with_patient_record"] = float(np.isin(kids, patients_people).mean())
    dhs_people = idf[idf.agency == "dhs"].person.unique()
    rates["share_children_0_18_with_dhs_record"] = float(np.isin(kids, dhs_people).mean())
    fams_with_kids = np.unique(ps.family.to_numpy()[kids])
    rates["share_families_with_dhs_record"] = float(
        np.isin(fams_with_kids, np.unique(ps.family.to_numpy()[dhs_people])).mean())
    rates["econ_disadvantaged_rows"] = float((st.econ_disadvantaged == "Y").mean())
    rates["english_learner_rows"] = float((st.english_learner == "Y").mean())
    rates["disability_rows"] = float((st.disability == "Y").mean())
    rates["homeless_rows"] = float((st.homeless == "Y").mean())
    return {k: round(v, 4) for k, v in rates.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synthetic", description="Generate the synthetic city.")
    parser.add_argument("--children", type=int, required=True, help="children in the city, exactly (older school-age siblings included)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="folder to write drop/ and truth/ into")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2026, 8, 15))
    parser.add_argument("--first-school-year", type=int, default=2022)
    parser.add_argument("--last-school-year", type=int, default=2026)
    parser.add_argument("--profile", default="default", help="city error profile (synthetic/error_profiles/)")
    args = parser.parse_args(argv)
    summary = generate_city(args.children, args.seed, args.out, as_of=args.as_of,
                            first_school_year=args.first_school_year, last_school_year=args.last_school_year,
                            profile=args.profile)
    print(summary.format())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
