"""Nothing leaks (issue 4 item 5): canary identifiers go in at the drop folder and must come out nowhere.

A small synthetic city is generated; some students, patients and clients get unmistakable canary
names, addresses, agency ids and birth dates (ids carried into their attendance, assessments,
graduation, encounters, immunizations and program rows, so references hold). One extra canary student
row is invalid (impossible birth date) and is quarantined; an attendance row and an encounter of
unknown canary ids fail their reference checks (warnings in the feedback reports). A second batch,
dropped before the `c2c run` door, adds a corrected students snapshot (accepted), a patients file with
a broken canary row and a clients file without its header row (both refused: their reasons must not
quote the row).

The whole pipeline runs with a real Dagster instance under the home directory, first through
``run_pipeline`` and then through ``c2c run --verbose`` (CLI, plus ``c2c manifest`` and ``c2c audit
export``), on a SQLite and on a PostgreSQL warehouse. Then every byte written anywhere under the home
directory except the landing zone (SQLite warehouse, Dagster run/event/schedule storage and compute
logs, linkage-area parquet, profiles, feedback reports) is scanned, with SQLite tables and parquet
values also decoded, together with every table of the PostgreSQL schema, captured stdout/stderr, Python
logging records and warnings; files written outside the home meanwhile (new temp-folder entries,
``~/.dagster``, the repository tree) are scanned for the unmistakable canaries (not the dates, which
other processes may write). Each canary value is searched case-insensitively (so lower, upper and mixed
case), in its normalised forms (uppercase without spaces, the pipeline's own name / address / id
normalisation, dates as YYYYMMDD and MM/DD/YYYY) and by its distinctive stem. The landing-zone files
must not hold the canaries in cleartext, but must decrypt to content that does (so the canaries really
went through). Control: every canary value is in the raw drop files before the run.

Failure reports name the canary by label and the place by path and offset, never the value.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from e2e_support import (
    AS_OF,
    Doc,
    changed_outside,
    drop_files,
    file_docs,
    find_needles,
    isolate_env,
    pg_docs,
    read_csv,
    settings_env,
    temp_entries,
    warehouse_args,
    write_csv,
)

CHILDREN = 150
SEED = 20260815
SECOND_AS_OF = "20260901"
STEMS = ("qxcanary", "zzyzxcanary", "wqcanary", "canaryvale", "canarys0", "canaryp0", "canarym0", "canaryc0")


@dataclass
class Canaries:
    """label -> value of every canary put in the drop files, and the kind of each."""

    values: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # name | address | id | date

    def add(self, label: str, kind: str, value: str) -> str:
        assert value not in self.values.values() or self.kinds.get(label) == kind
        self.values[label] = value
        self.kinds[label] = kind
        return value

    def needles(self, kinds: tuple[str, ...] = ("name", "address", "id", "date")) -> dict[str, str]:
        """label~variant -> value: the value, its normalised forms, and the distinctive stems."""
        from data_sharing.normalize import compact_name, normalize_address, normalize_agency_id, normalize_name

        out: dict[str, str] = {}
        for label, value in self.values.items():
            kind = self.kinds[label]
            if kind not in kinds:
                continue
            variants = {"raw": value, "nospace": "".join(value.split()).upper()}
            if kind == "name":
                variants["normalize_name"] = str(normalize_name([value])[0])
                variants["compact_name"] = str(compact_name([value])[0])
            elif kind == "address":
                norm = str(normalize_address([value])[0])
                variants["normalize_address"] = norm
                variants["normalize_address_nospace"] = norm.replace(" ", "")
            elif kind == "id":
                variants["normalize_agency_id"] = str(normalize_agency_id([value])[0])
            elif kind == "date":
                y, m, d = value.split("-")
                variants["yyyymmdd"] = f"{y}{m}{d}"
                variants["mm/dd/yyyy"] = f"{m}/{d}/{y}"
            seen: set[str] = set()
            for variant, text in variants.items():
                if text.lower() not in seen:
                    seen.add(text.lower())
                    out[f"{label}~{variant}"] = text
        for stem in STEMS:
            out[f"stem:{stem}"] = stem
        return out


def _free_date(start: dt.date, corpus: str, taken: set[str]) -> str:
    """A date on or before ``start`` whose ISO and YYYYMMDD forms occur nowhere in ``corpus``."""
    day = start
    for _ in range(2000):
        day -= dt.timedelta(days=1)
        iso = day.isoformat()
        if iso not in corpus and day.strftime("%Y%m%d") not in corpus and iso not in taken:
            taken.add(iso)
            return iso
    raise AssertionError("no free canary date found")


def _replace_ids(path: Path, column: str, mapping: dict[str, str]) -> int:
    header, rows = read_csv(path)
    i = header.index(column)
    n = 0
    for row in rows:
        if row[i] in mapping:
            row[i] = mapping[row[i]]
            n += 1
    write_csv(path, header, rows)
    return n


def inject_canaries(drop: Path) -> tuple[Canaries, dict[str, list[str]]]:
    """Put canary identifiers into a synthetic city's drop folder (in place); returns them and the
    canary student rows (for the second batch)."""
    corpus = "\n".join(p.read_text(encoding="utf-8") for p in drop_files(drop))
    taken: set[str] = set()
    c = Canaries()

    # ---- fps: two students, everywhere their id appears
    sh, srows = read_csv(drop / f"fps/students_{AS_OF}.csv")
    col = {name: i for i, name in enumerate(sh)}
    att_ids = {r[0] for r in read_csv(drop / f"fps/attendance_{AS_OF}.csv")[1]}
    ass_ids = {r[0] for r in read_csv(drop / f"fps/assessments_{AS_OF}.csv")[1]}
    candidates = sorted({r[col["student_id"]] for r in srows} & att_ids & ass_ids)
    assert len(candidates) >= 2, "the synthetic city has too few students with attendance and assessments"
    fps_ids = {}
    for n, (tag, sid) in enumerate(zip("ab", candidates[:2], strict=True), 1):
        rows = [r for r in srows if r[col["student_id"]] == sid]
        born = min(dt.date.fromisoformat(r[col["birth_date"]]) for r in rows)
        new_id = c.add(f"fps_{tag}.student_id", "id", f"CANARYS000{n}")
        fps_ids[sid] = new_id
        values = {
            "student_id": new_id,
            "first_name": c.add(f"fps_{tag}.first_name", "name", f"Qxcanaryfirstfps{tag}"),
            "middle_name": c.add(f"fps_{tag}.middle_name", "name", f"Wqcanarymiddlefps{tag}"),
            "last_name": c.add(f"fps_{tag}.last_name", "name", f"Zzyzxcanarylastfps{tag}"),
            "street_address": c.add(f"fps_{tag}.street_address", "address", f"424{n} Canaryvale Qz Road"),
            "birth_date": c.add(f"fps_{tag}.birth_date", "date", _free_date(born, corpus, taken)),
        }
        for r in rows:
            for k, v in values.items():
                r[col[k]] = v
    # one more canary student whose only row is invalid (impossible birth date): quarantined
    template = next(r for r in srows if r[col["student_id"]] == fps_ids[candidates[0]])
    bad = list(template)
    bad_date = next(d for d in ("2013-02-30", "2012-02-31", "2011-04-31", "2014-06-31") if d not in corpus)
    for k, v in {
        "student_id": c.add("fps_q.student_id", "id", "CANARYS0009"),
        "first_name": c.add("fps_q.first_name", "name", "Qxcanaryfirstfpsq"),
        "middle_name": c.add("fps_q.middle_name", "name", "Wqcanarymiddlefpsq"),
        "last_name": c.add("fps_q.last_name", "name", "Zzyzxcanarylastfpsq"),
        "street_address": c.add("fps_q.street_address", "address", "4249 Canaryvale Qz Road"),
        "birth_date": c.add("fps_q.birth_date", "date", bad_date),
    }.items():
        bad[col[k]] = v
    srows.append(bad)
    write_csv(drop / f"fps/students_{AS_OF}.csv", sh, srows)
    for extract in ("attendance", "assessments", "graduation"):
        _replace_ids(drop / f"fps/{extract}_{AS_OF}.csv", "student_id", fps_ids)
    # an attendance row of a canary student the students extract does not know: a failed reference
    ah, arows = read_csv(drop / f"fps/attendance_{AS_OF}.csv")
    orphan = list(arows[0])
    orphan[ah.index("student_id")] = c.add("fps_o.student_id", "id", "CANARYS0007")
    write_csv(drop / f"fps/attendance_{AS_OF}.csv", ah, arows + [orphan])

    # ---- fhd: one patient with a Medicaid id, with encounters and immunizations
    ph, prows = read_csv(drop / f"fhd/patients_{AS_OF}.csv")
    pc_ = {name: i for i, name in enumerate(ph)}
    enc_ids = {r[1] for r in read_csv(drop / f"fhd/encounters_{AS_OF}.csv")[1]}
    imm_ids = {r[0] for r in read_csv(drop / f"fhd/immunizations_{AS_OF}.csv")[1]}
    patient = next(
        r for r in sorted(prows) if r[pc_["medicaid_id"]] and r[pc_["patient_id"]] in enc_ids & imm_ids
    )
    old_pid = patient[pc_["patient_id"]]
    for r in prows:
        if r[pc_["patient_id"]] == old_pid:
            r[pc_["patient_id"]] = c.add("fhd_a.patient_id", "id", "CANARYP0001")
            r[pc_["medicaid_id"]] = c.add("fhd_a.medicaid_id", "id", "CANARYM0001")
            r[pc_["first_name"]] = c.add("fhd_a.first_name", "name", "Qxcanaryfirstfhda")
            r[pc_["last_name"]] = c.add("fhd_a.last_name", "name", "Zzyzxcanarylastfhda")
            r[pc_["street_address"]] = c.add("fhd_a.street_address", "address", "4244 Canaryvale Qz Road")
            r[pc_["birth_date"]] = c.add(
                "fhd_a.birth_date", "date", _free_date(dt.date.fromisoformat(r[pc_["birth_date"]]), corpus, taken)
            )
    write_csv(drop / f"fhd/patients_{AS_OF}.csv", ph, prows)
    _replace_ids(drop / f"fhd/encounters_{AS_OF}.csv", "patient_id", {old_pid: "CANARYP0001"})
    _replace_ids(drop / f"fhd/immunizations_{AS_OF}.csv", "patient_id", {old_pid: "CANARYP0001"})
    eh, erows = read_csv(drop / f"fhd/encounters_{AS_OF}.csv")  # an encounter of an unknown canary patient
    orphan = list(erows[0])
    orphan[eh.index("encounter_id")] = "E0000000001"
    orphan[eh.index("patient_id")] = c.add("fhd_o.patient_id", "id", "CANARYP0007")
    write_csv(drop / f"fhd/encounters_{AS_OF}.csv", eh, erows + [orphan])

    # ---- dhs: one client with program enrolments
    ch, crows = read_csv(drop / f"dhs/clients_{AS_OF}.csv")
    cc = {name: i for i, name in enumerate(ch)}
    prog_ids = {r[0] for r in read_csv(drop / f"dhs/program_enrollments_{AS_OF}.csv")[1]}
    client = next(r for r in sorted(crows) if r[cc["client_id"]] in prog_ids)
    old_cid = client[cc["client_id"]]
    for r in crows:
        if r[cc["client_id"]] == old_cid:
            r[cc["client_id"]] = c.add("dhs_a.client_id", "id", "CANARYC0001")
            r[cc["first_name"]] = c.add("dhs_a.first_name", "name", "Qxcanaryfirstdhsa")
            r[cc["last_name"]] = c.add("dhs_a.last_name", "name", "Zzyzxcanarylastdhsa")
            r[cc["street_address"]] = c.add("dhs_a.street_address", "address", "4245 Canaryvale Qz Road")
            r[cc["birth_date"]] = c.add(
                "dhs_a.birth_date", "date", _free_date(dt.date.fromisoformat(r[cc["birth_date"]]), corpus, taken)
            )
    write_csv(drop / f"dhs/clients_{AS_OF}.csv", ch, crows)
    _replace_ids(drop / f"dhs/program_enrollments_{AS_OF}.csv", "client_id", {old_cid: "CANARYC0001"})
    return c, {"students_header": sh, "students": srows, "patients_header": ph, "patients": prows,
               "clients": crows}


def second_batch(drop: Path, c: Canaries, first: dict) -> dict[str, Path]:
    """The files dropped before the CLI run: one accepted correction and two refused files."""
    sh, srows = first["students_header"], [list(r) for r in first["students"]]
    col = {name: i for i, name in enumerate(sh)}
    new_address = c.add("fps_a.street_address_2", "address", "4250 Canaryvale Qz Road")
    for r in srows:
        if r[col["student_id"]] == c.values["fps_a.student_id"]:
            r[col["street_address"]] = new_address
    students = drop / f"fps/students_{SECOND_AS_OF}.csv"
    write_csv(students, sh, srows)

    # patients: a canary row with one field too many (refused: malformed CSV; the reason names the row)
    ph = first["patients_header"]
    broken = [
        c.add("fhd_x.patient_id", "id", "CANARYP0002"), c.add("fhd_x.first_name", "name", "Qxcanaryfirstfhdx"),
        c.add("fhd_x.last_name", "name", "Zzyzxcanarylastfhdx"), c.values["fhd_a.birth_date"], "F",
        c.add("fhd_x.street_address", "address", "4251 Canaryvale Qz Road"), "24601",
        c.add("fhd_x.medicaid_id", "id", "CANARYM0002"), "Qxcanaryextrafhdx",
    ]
    c.add("fhd_x.extra_field", "name", "Qxcanaryextrafhdx")
    patients = drop / f"fhd/patients_{SECOND_AS_OF}.csv"
    write_csv(patients, ph, [list(r) for r in first["patients"][:3]] + [broken] + [list(r) for r in first["patients"][3:6]])

    # clients: no header row, the first line is a canary client (refused: missing header; never echoed)
    canary_client = [
        c.add("dhs_x.client_id", "id", "CANARYC0002"), c.add("dhs_x.first_name", "name", "Qxcanaryfirstdhsx"),
        c.add("dhs_x.last_name", "name", "Zzyzxcanarylastdhsx"), c.values["dhs_a.birth_date"], "M",
        c.add("dhs_x.street_address", "address", "4252 Canaryvale Qz Road"), "24603",
    ]
    clients = drop / f"dhs/clients_{SECOND_AS_OF}.csv"
    rows = [canary_client] + [list(r) for r in first["clients"][:4]]
    write_csv(clients, rows[0], rows[1:])
    return {"students": students, "patients": patients, "clients": clients}


@pytest.fixture(scope="module")
def city_drop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic city, generated once for this module (no canaries: those go into copies)."""
    from synthetic.city import generate_city

    out = tmp_path_factory.mktemp("city")
    generate_city(CHILDREN, SEED, out)
    return out / "drop"


def test_nothing_leaks(
    tmp_path: Path,
    city_drop: Path,
    warehouse_target: tuple[str, str | None],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from data_sharing.keys import load_keyset
    from data_sharing.landing import LandingZone
    from pipelines.cli import main
    from pipelines.runner import run_pipeline
    from pipelines.settings import Settings

    home = tmp_path  # the SQLite warehouse of `warehouse_target` is tmp_path/warehouse.db: inside the home
    drop = home / "drop"
    shutil.copytree(city_drop, drop)
    canaries, first = inject_canaries(drop)
    isolate_env(monkeypatch, home)
    caplog.set_level(logging.DEBUG)

    # Control: the canaries are really in the raw drop files (so a clean scan means something).
    raw = b"\n".join(p.read_bytes() for p in drop_files(drop))
    missing = [label for label, value in canaries.values.items() if value.encode() not in raw]
    assert not missing, f"canaries not in the drop files before the run: {missing}"
    assert find_needles([Doc("drop", raw)], canaries.needles()), "the scanner finds nothing in the raw files"

    temp_before, started = temp_entries(), time.time() - 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # door 1: the in-process runner
        settings = Settings.from_env(settings_env(home, warehouse_target, data_docs=True))
        summary = run_pipeline(settings, settle_s=0, verbose=False)
        assert summary.ok, summary
        assert summary.counts == {"accepted": 9}, summary.files
        # the invalid canary student is held back; the orphan attendance / encounter rows are warned about
        held = {f.rel_path.split("_20")[0]: f.quarantined for f in summary.files if f.quarantined}
        assert held == {"fps/students": 1}, held
        for feedback, rule in (("fps/feedback/attendance", "attendance_student_enrolled"),
                               ("fhd/feedback/encounters", "encounter_patient_known")):
            assert rule in (drop / f"{feedback}_{AS_OF}.csv").read_text(encoding="utf-8"), feedback
        assert not drop_files(drop), "accepted files should have moved out of the drop folder"

        # door 2: `c2c run --verbose` over a second batch
        batch = second_batch(drop, canaries, first)
        refused_raw = {k: p.read_bytes() for k, p in batch.items() if k != "students"}
        code = main(["run", "--home", str(home), "--settle", "0", "--verbose", *warehouse_args(warehouse_target)])
        main(["manifest", "--home", str(home), *warehouse_args(warehouse_target)])
        main(["audit", "export", "--home", str(home), *warehouse_args(warehouse_target)])
        assert main(["audit", "verify", "--home", str(home), *warehouse_args(warehouse_target)]) == 0
    out, err = capfd.readouterr()
    assert code == 3, err[-2000:]  # finished, with refused files
    assert "2 refused" in out and "1 accepted" in out, out[-2000:]
    # the refused files stay where the agency dropped them, untouched; nothing else is left there
    for key, data in refused_raw.items():
        assert batch[key].read_bytes() == data
    assert sorted(drop_files(drop)) == sorted(batch[k] for k in refused_raw)

    # ---- what may hold the canaries: the landing zone, encrypted
    landing = home / "landing"
    zone = LandingZone(landing, load_keyset(home / "keys" / "master.key", env=os.environ))
    landed = sorted(landing.rglob("*.c2cland"))
    assert landed, "nothing in the landing zone"
    clear_hits = find_needles([Doc(str(p), p.read_bytes()) for p in landed], canaries.needles())
    assert not clear_hits, "canaries in cleartext in the landing zone:\n" + "\n".join(clear_hits)
    plain = [Doc(str(p), zone.read(p)) for p in landed]
    for label in ("fps_a.first_name", "fps_q.first_name", "fhd_a.medicaid_id", "dhs_a.client_id", "fps_a.street_address_2"):
        assert find_needles(plain, {label: canaries.values[label]}), f"{label} did not reach the landing zone"
    assert any(".quarantine." in p.name for p in landed), "no encrypted quarantine file"

    # ---- everything else
    docs = file_docs(home, exclude=[landing, *(batch[k] for k in refused_raw)])
    if warehouse_target[1]:
        docs += pg_docs(*warehouse_target)  # type: ignore[arg-type]
    docs.append(Doc("captured stdout", out.encode("utf-8", "replace")))
    docs.append(Doc("captured stderr", err.encode("utf-8", "replace")))
    log_text = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''} {r.stack_info or ''}" for r in caplog.records
    )
    docs.append(Doc("python logging (caplog)", log_text.encode("utf-8", "replace")))
    docs.append(Doc("python warnings", "\n".join(str(w.message) for w in caught).encode("utf-8", "replace")))

    # the scanners see what is there: file names, manifest rows and Dagster events are in the dumps
    labels = "\n".join(d.label for d in docs)
    assert "dagster" in labels and "[sqlite table event_logs]" in labels, labels[:2000]
    assert "[parquet values]" in labels and "feedback" in labels
    warehouse_docs = [d for d in docs if "warehouse.db" in d.label or d.label.startswith("postgresql")]
    assert find_needles(warehouse_docs, {"manifest row": f"clients_{SECOND_AS_OF}.csv"}), "warehouse dump is empty"
    dagster_docs = [d for d in docs if "/dagster/" in d.label]
    assert find_needles(dagster_docs, {"dagster event": f"students_{SECOND_AS_OF}.csv"}), "Dagster dump is empty"

    hits = find_needles(docs, canaries.needles())
    # outside the home only unmistakable values are searched: other processes may write common dates
    hits += find_needles(changed_outside(started, temp_before), canaries.needles(kinds=("name", "address", "id")))
    assert not hits, f"{len(hits)} canary occurrence(s) outside the landing zone:\n" + "\n".join(hits[:60])


def test_header_fused_with_first_row_is_never_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    """An export whose header line lost its line break carries the first client on the header line.

    The file is refused (right), but its reason must name positions, never the values of that row.
    """
    from pipelines.runner import run_pipeline
    from pipelines.settings import Settings

    home = tmp_path
    isolate_env(monkeypatch, home)
    c = Canaries()
    header = ["client_id", "first_name", "last_name", "birth_date", "sex", "street_address", "zip"]
    first = [
        c.add("dhs_h.client_id", "id", "CANARYC0003"), c.add("dhs_h.first_name", "name", "Qxcanaryfirstdhsh"),
        c.add("dhs_h.last_name", "name", "Zzyzxcanarylastdhsh"), "2013-05-06", "F",
        c.add("dhs_h.street_address", "address", "4253 Canaryvale Qz Road"), "24601",
    ]
    data = ",".join(header + first) + "\nD000000001,Ann,Berry,2012-01-02,F,12 Main St,24601\n"
    dropped = home / "drop" / "dhs" / f"clients_{AS_OF}.csv"
    dropped.parent.mkdir(parents=True)
    dropped.write_text(data, encoding="utf-8")
    assert all(v in data for v in c.values.values())  # control

    summary = run_pipeline(Settings.from_env(settings_env(home, data_docs=True)), settle_s=0, verbose=True)
    out, err = capfd.readouterr()
    assert [f.status for f in summary.files] == ["refused"]
    docs = file_docs(home, exclude=[home / "landing", dropped]) + [Doc("stdout", out.encode()), Doc("stderr", err.encode())]
    hits = find_needles(docs, c.needles(kinds=("name", "id", "address")))
    assert not hits, "values of the fused first row were echoed:\n" + "\n".join(hits[:40])
