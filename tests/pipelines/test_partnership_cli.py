"""`c2c partnership export DIR` / `c2c partnership check DIR`, run as a clerk would (subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def c2c(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("C2C_")}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_export_then_check_the_reference_partnership(tmp_path: Path) -> None:
    out = c2c("partnership", "export", str(tmp_path / "city"))
    assert out.returncode == 0, out.stderr
    files = sorted(str(p.relative_to(tmp_path / "city")) for p in (tmp_path / "city").rglob("*.yaml"))
    assert len(files) == 22 and "partnership.yaml" in files and "linkage/settings.yaml" in files
    assert "extracts/fps/students.yaml" in files and "indicators/kindergarten_mmr2.yaml" in files
    check = c2c("partnership", "check", str(tmp_path / "city"))
    assert check.returncode == 0, check.stderr
    assert "fps: Fairhaven Public Schools: assessments (school_assessment), attendance (school_attendance)" in check.stdout
    assert "indicators: 8 definitions" in check.stdout and "is consistent" in check.stdout
    again = c2c("partnership", "export", str(tmp_path / "city"))  # never over a city's files
    assert again.returncode == 2 and "not an empty folder" in again.stderr and "Traceback" not in again.stderr


def test_check_names_each_problem_on_one_line(tmp_path: Path) -> None:
    city = tmp_path / "city"
    assert c2c("partnership", "export", str(city)).returncode == 0
    att = city / "extracts" / "fps" / "attendance.yaml"
    att.write_text(att.read_text().replace("role: school_attendance", "role: school_attendence"))
    (city / "partnership.yaml").write_text((city / "partnership.yaml").read_text().replace("[fps, fhd, dhs]", "[fps, fhd]"))
    imm = city / "extracts" / "fhd" / "immunizations.yaml"
    imm.unlink()
    out = c2c("partnership", "check", str(city))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines == [  # files first: a contract that does not load is reported before cross-checks run
        f"c2c: {att}: role 'school_attendence' is not a known role (one of: health_encounter, health_immunization, "
        "health_person, school_assessment, school_attendance, school_enrolment, school_graduation, services_person, "
        "services_program_spell)",
        f"c2c: the partnership in {city} has 1 problem(s); nothing was changed",
    ]
    att.write_text(att.read_text().replace("role: school_attendence", "role: school_attendance"))
    out = c2c("partnership", "check", str(city))
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 4, lines
    assert lines[0] == f"c2c: {city / 'agreements' / 'fhd.yaml'}: extracts.immunizations: has no contract file {imm}"
    assert lines[1] == f"c2c: {city / 'partnership.yaml'}: agencies: does not list 'dhs', which has an MOU agreements/dhs.yaml"
    assert lines[2] == (f"c2c: {city / 'indicators' / 'kindergarten_mmr2.yaml'}: kind: cross_agency_immunization reads role "
                        "health_immunization, which no extract of the partnership has")


def test_check_refuses_an_indicator_whose_role_no_agency_sends(tmp_path: Path) -> None:
    city = tmp_path / "city"
    assert c2c("partnership", "export", str(city)).returncode == 0
    for extract in ("encounters", "immunizations", "patients"):  # a city without a health department
        (city / "extracts" / "fhd" / f"{extract}.yaml").unlink()
    (city / "agreements" / "fhd.yaml").unlink()
    settings = city / "partnership.yaml"
    settings.write_text(settings.read_text().replace("[fps, fhd, dhs]", "[fps, dhs]"))
    out = c2c("partnership", "check", str(city))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 3, lines  # kindergarten_mmr2 and well_child_visit, then the count
    assert "kindergarten_mmr2.yaml: kind: cross_agency_immunization reads role health_immunization, which no extract" in lines[0]
    assert "well_child_visit.yaml: kind: cross_agency_visit reads role health_encounter" in lines[1]


def test_the_partnership_is_a_setting(tmp_path: Path) -> None:
    from pipelines.definitions import build_definitions
    from pipelines.settings import Settings

    assert Settings.from_env({"C2C_HOME": str(tmp_path)}).partnership is None  # the packaged reference
    settings = Settings.from_env({"C2C_HOME": str(tmp_path), "C2C_PARTNERSHIP": str(REPO / "schemas/partnerships/lakeshore")})
    assert settings.partnership == REPO / "schemas/partnerships/lakeshore"
    assert Settings.from_env(settings.environment()).partnership == settings.partnership  # UI/daemon see the same
    resource = build_definitions(settings, env={}).resources["partnership"]
    assert resource.load().agencies == ["family_services", "lc_health", "north_usd", "south_usd"]


def test_synth_for_another_partnership(tmp_path: Path) -> None:
    out = c2c("synth", "--partnership", str(REPO / "schemas/partnerships/lakeshore"), "--children", "200", "--seed", "3",
              "--out", str(tmp_path / "city"))
    assert out.returncode == 0, out.stderr
    lines = [ln.strip() for ln in out.stdout.splitlines() if ln.startswith("  ") and ": " in ln and "rows" in ln]
    assert len(lines) == 14 and any(ln.startswith("south_usd/enrollment: ") for ln in lines), out.stdout
    assert sorted(p.name for p in (tmp_path / "city" / "drop").iterdir()) == ["family_services", "lc_health", "north_usd", "south_usd"]
