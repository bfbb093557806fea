"""A synthetic city for any partnership: the reference city, re-expressed in the partnership's files.

:func:`generate_partnership_city` generates the reference (Fairhaven-shaped) city under ``out/reference``
(its ``truth/`` is the ground truth of both), then writes ``out/drop/<agency>/<extract>_<date>.csv`` for
every extract of the partnership, by **role**, never by agency id:

* every reference extract's rows go to the partnership's extracts of the same role; when several agencies
  share a role (school districts), a school's rows go to one district (schools dealt round-robin in id
  order), and rows without a school follow the student's latest enrolment; a student keeps one id per
  district (the district's prefix + the reference id), so a student who changes district has two ids that
  linkage must join;
* columns map through the contracts: role fields by the role, identifiers by their ``linkage`` field or
  ``id_type`` position; codes map by their position in the two contracts' code lists (a partnership lists
  a role field's codes in the reference order, extra codes after);
* a partnership extract whose role's reference rows are taken by an earlier extract of its agency (a second
  extract of one role, e.g. dental screenings beside clinic visits) gets every third of those rows, with its
  own first code where the codes cannot be mapped.

``out/truth/identities.csv`` is rewritten for the partnership's agency ids and id types. The same people and
facts are in ``out/reference``: the truth oracle (``synthetic.truth_indicators``) computes the indicators
there, independently of the partnership's names and codes.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd

from schemas.partnership import Partnership
from schemas.contracts import ExtractContract, load_extract_contracts


def _code_map(ref: ExtractContract, ref_col: str, target: ExtractContract, col: str) -> dict[str, str] | None:
    a, b = ref.columns[ref_col].codes, target.columns[col].codes
    if not a or not b:
        return None
    if len(b) < len(a):
        return {}
    return dict(zip(a, b, strict=False))


def _column_map(ref: ExtractContract, target: ExtractContract) -> dict[str, str]:
    """target column -> reference column."""
    out: dict[str, str] = {}
    ref_fields, fields = ref.role_fields, target.role_fields
    for field, col in fields.items():
        if field in ref_fields:
            out[col] = ref_fields[field]
    by_link = {spec.linkage: name for name, spec in ref.columns.items() if spec.linkage}
    for name, spec in target.columns.items():
        if spec.linkage and spec.linkage in by_link and name not in out:
            out[name] = by_link[spec.linkage]
    ref_ids, ids = list(ref.id_columns), list(target.id_columns)
    for i, name in enumerate(ids):
        if i < len(ref_ids):
            out[name] = ref_ids[i]
    return out


def _mappable(ref: ExtractContract, target: ExtractContract) -> bool:
    """Every code column of ``target`` fed from ``ref`` maps code for code."""
    cmap = _column_map(ref, target)
    return all(_code_map(ref, cmap[c], target, c) != {} for c, spec in target.columns.items() if spec.codes and c in cmap)


def _districts(schools: list[str], agencies: list[str]) -> dict[str, str]:
    return {s: agencies[i % len(agencies)] for i, s in enumerate(sorted(schools))}


def _student_district(students: pd.DataFrame, district_of: dict[str, str]) -> pd.DataFrame:
    """student_id, year, agency: the district of each student's latest enrolment up to each year."""
    st = students.assign(agency=students.school_id.map(district_of), year=pd.to_numeric(students.school_year))
    st = st.sort_values(["student_id", "year", "enroll_date"], kind="stable")
    return st.drop_duplicates(["student_id", "year"], keep="last")[["student_id", "year", "agency"]]


def _split_rows(df: pd.DataFrame, ref: ExtractContract, agencies: list[str], district_of: dict[str, str],
                latest: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    if len(agencies) == 1:
        return {agencies[0]: df}
    if "school_id" in df.columns:
        who = df.school_id.map(district_of)
    else:  # follow the student's latest enrolment up to the row's period
        assert latest is not None and ref.period_column is not None
        year = pd.to_numeric(df[ref.period_column])
        key = df.assign(year=year)[["student_id", "year"]].reset_index()
        merged = pd.merge_asof(key.sort_values("year"), latest.sort_values("year"), on="year", by="student_id")
        who = merged.set_index("index").agency.reindex(df.index)
        first = latest.sort_values("year").drop_duplicates("student_id").set_index("student_id").agency
        who = who.fillna(df.student_id.map(first))
    return {a: df[who.to_numpy() == a] for a in agencies}


def _write(df: pd.DataFrame, ref: ExtractContract, target: ExtractContract, path: Path, prefix: str,
           codes_fallback: bool) -> tuple[int, pd.DataFrame]:
    cmap = _column_map(ref, target)
    out = pd.DataFrame(index=df.index)
    for name, spec in target.columns.items():
        src = cmap.get(name)
        values = df[src] if src in df.columns else pd.Series("", index=df.index)
        values = values.fillna("").astype(str)
        if src is not None and src in df.columns and spec.codes:
            mapping = _code_map(ref, src, target, name)
            if mapping:
                values = values.map(lambda v, m=mapping: m.get(v, v) if v else v)
            elif codes_fallback or mapping == {}:
                values = values.where(values == "", next(iter(spec.codes)))
        if name in target.id_columns:
            values = values.where(values == "", prefix + values)
        out[name] = values
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    ids = pd.DataFrame()
    if target.id_columns:
        col = next(iter(target.id_columns))
        ids = pd.DataFrame({"ref": df[cmap[col]].to_numpy(), "new": out[col].to_numpy()})
    return len(out), ids


def generate_partnership_city(partnership: Partnership, children: int, seed: int, out: Path,
                              as_of: dt.date = dt.date(2026, 8, 15)) -> dict[tuple[str, str], int]:
    """Write a synthetic city for ``partnership`` under ``out`` (see the module doc); rows per extract."""
    from synthetic.city import generate_city

    out = Path(out)
    ref_dir = out / "reference"
    generate_city(children, seed, ref_dir, as_of=as_of)
    ref_contracts = load_extract_contracts()
    stamp = as_of.strftime("%Y%m%d")
    frames = {k: pd.read_csv(ref_dir / "drop" / k[0] / f"{k[1]}_{stamp}.csv", dtype=str, keep_default_na=False)
              for k in ref_contracts}
    students_key = next(k for k, c in ref_contracts.items() if c.role == "school_enrolment")
    schools = sorted(frames[students_key].school_id.unique())
    school_agencies = sorted({a for a, _ in partnership.extracts_of_role("school_enrolment")})
    district_of = _districts(schools, school_agencies)
    latest = _student_district(frames[students_key], district_of)
    rows: dict[tuple[str, str], int] = {}
    id_maps: list[pd.DataFrame] = []
    for ref_key, ref in sorted(ref_contracts.items()):
        targets = partnership.extracts_of_role(str(ref.role))
        by_agency: dict[str, list[str]] = {}
        for agency, extract in targets:
            by_agency.setdefault(agency, []).append(extract)
        parts = _split_rows(frames[ref_key], ref, sorted(by_agency), district_of, latest)
        for agency, extracts in sorted(by_agency.items()):
            for i, extract in enumerate(sorted(extracts, key=lambda e: (not _mappable(ref, partnership.contracts[(agency, e)]), e))):
                df = parts[agency] if i == 0 else parts[agency].iloc[::3]
                target = partnership.contracts[(agency, extract)]
                prefix = f"{agency[:1].upper()}{school_agencies.index(agency) if agency in school_agencies else ''}-"
                path = out / "drop" / agency / f"{extract}_{stamp}.csv"
                rows[(agency, extract)], ids = _write(df, ref, target, path, prefix, codes_fallback=i > 0)
                if len(ids) and ref.describes_people:
                    id_maps.append(ids.assign(agency=agency, id_type=next(iter(target.id_columns.values())),
                                              ref_agency=ref.agency))
    _write_identities(ref_dir, out, id_maps)
    return rows


def _write_identities(ref_dir: Path, out: Path, id_maps: list[pd.DataFrame]) -> None:
    truth = out / "truth"
    shutil.copytree(ref_dir / "truth", truth, dirs_exist_ok=True)
    ids = pd.read_csv(ref_dir / "truth" / "identities.csv", dtype=str, keep_default_na=False)
    rows = []
    for m in id_maps:
        m = m.drop_duplicates("new")
        sel = ids[ids.agency == m.ref_agency.iloc[0]].drop_duplicates("source_id").set_index("source_id").person_id
        rows.append(pd.DataFrame({"agency": m.agency, "id_type": m.id_type, "source_id": m.new,
                                  "person_id": sel.reindex(m.ref.to_numpy()).to_numpy()}))
    pd.concat(rows, ignore_index=True).dropna().to_csv(truth / "identities.csv", index=False)
