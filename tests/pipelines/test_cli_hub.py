"""`c2c init`, `c2c.yaml`, `c2c status` and errors for people, driven as a person would: the CLI as a subprocess.

Every user error is exactly one line on stderr that names what to do, exit code 2, nothing on stdout
and no traceback (unless --debug).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.settings import Settings, SettingsError, check_warehouse_url
from tests.conftest import PG_URL, students_csv

REPO = Path(__file__).resolve().parents[2]


def c2c_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("C2C_") and k != "DAGSTER_HOME"}
    env.update({"C2C_HOME": str(home), "C2C_DATA_DOCS": "0", "C2C_TODAY": "2026-11-23"}, **extra)
    return env


def c2c(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, check=False)


def assert_user_error(res: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr and res.stdout == "", (res.stdout, res.stderr)
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------------------------
# Settings: flags > environment > c2c.yaml > defaults


def test_settings_precedence_env_over_yaml_over_default(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "c2c.yaml").write_text("drop: /srv/drop\nwarehouse: sqlite:////srv/wh.db\nschema: hub\n", encoding="utf-8")
    s = Settings.from_env({"C2C_HOME": str(home)})
    assert (s.drop_dir, s.warehouse_url, s.warehouse_schema) == (Path("/srv/drop"), "sqlite:////srv/wh.db", "hub")
    assert s.config_file == home / "c2c.yaml"
    s = Settings.from_env({"C2C_HOME": str(home), "C2C_DROP_DIR": "/other"})
    assert s.drop_dir == Path("/other") and s.warehouse_url == "sqlite:////srv/wh.db"
    bare = Settings.from_env({"C2C_HOME": str(tmp_path / "fresh")})
    assert bare.drop_dir == tmp_path / "fresh" / "drop" and bare.config_file is None


def test_settings_refuse_an_unknown_yaml_key(tmp_path: Path) -> None:
    (tmp_path / "c2c.yaml").write_text("warehose: sqlite:///x.db\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="unknown setting.*warehose"):
        Settings.from_env({"C2C_HOME": str(tmp_path)})


@pytest.mark.parametrize(("url", "needle"), [
    ("postgres://u:secret@db:5432/hub", "use postgresql+psycopg2://u:***@db:5432/hub"),
    ("mysql://u@db/hub", "unsupported warehouse URL scheme 'mysql'"),
    ("postgresql+psycopg2://db:5432", "names no database"),
    ("not a url", "not a URL"),
])
def test_check_warehouse_url_shows_the_fix(url: str, needle: str) -> None:
    with pytest.raises(SettingsError) as err:
        check_warehouse_url(url)
    assert needle in str(err.value) and "secret" not in str(err.value)


# ---------------------------------------------------------------------------------------------------
# Errors for people (subprocess)


def test_run_with_a_missing_drop_folder_is_an_error_and_publishes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    res = c2c("run", "--drop", str(tmp_path / "no/such/dir"), env=c2c_env(home, C2C_MASTER_KEY=os.environ["C2C_MASTER_KEY"]))
    assert_user_error(res, "drop folder", "does not exist", f"c2c init --drop {tmp_path / 'no/such/dir'}")
    assert not (tmp_path / "no").exists()
    assert not (home / "warehouse.db").exists()  # no warehouse made, so no release


def test_missing_key_set_is_one_line_with_the_init_hint_and_no_summary(tmp_path: Path, drop: Path) -> None:
    res = c2c("run", "--drop", str(drop), env=c2c_env(tmp_path / "home"))
    assert_user_error(res, "no key set at", "`c2c init`", "`c2c keys init`")


def test_keys_show_without_keys_gives_the_hint(tmp_path: Path) -> None:
    res = c2c("keys", "show", env=c2c_env(tmp_path / "home"))
    assert res.returncode == 2 and res.stdout == ""
    assert "`c2c keys init`" in res.stderr and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("url", "needle"), [
    ("postgres://127.0.0.1:5432/test", "postgresql+psycopg2://127.0.0.1:5432/test"),
    ("oracle://db/hub", "unsupported warehouse URL scheme"),
])
def test_run_with_a_misspelt_warehouse_url(tmp_path: Path, drop: Path, url: str, needle: str) -> None:
    res = c2c("run", "--drop", str(drop), "--warehouse", url, env=c2c_env(tmp_path / "home"))
    assert_user_error(res, needle)


@pytest.mark.parametrize(("url", "needle"), [
    (PG_URL.replace(":5432/", ":1/"), "cannot open the warehouse"),
    (PG_URL.rsplit("/", 1)[0] + "/c2c_no_such_database", "does not exist"),
])
def test_run_with_an_unreachable_warehouse(tmp_path: Path, drop: Path, pg_available: bool, url: str, needle: str) -> None:
    if not pg_available:
        pytest.skip("PostgreSQL is not reachable")
    env = c2c_env(tmp_path / "home", C2C_MASTER_KEY=os.environ["C2C_MASTER_KEY"])
    assert_user_error(c2c("run", "--drop", str(drop), "--warehouse", url, env=env), needle, "--warehouse")
    debug = c2c("run", "--drop", str(drop), "--warehouse", url, "--debug", env=env)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_a_read_command_does_not_create_an_empty_warehouse(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert_user_error(c2c("manifest", env=c2c_env(home)), "no warehouse at", "c2c init")
    assert_user_error(c2c("status", env=c2c_env(home)), "no warehouse at")
    assert not (home / "warehouse.db").exists()


# ---------------------------------------------------------------------------------------------------
# init -> run -> manifest/status all read c2c.yaml


def test_init_writes_c2c_yaml_and_every_command_reads_it(tmp_path: Path) -> None:
    home, drop, wh = tmp_path / "home", tmp_path / "share" / "drop", tmp_path / "db" / "hub.db"
    env = c2c_env(home)  # no C2C_MASTER_KEY: init creates the key file
    res = c2c("init", "--drop", str(drop), "--warehouse", f"sqlite:///{wh}", env=env)
    assert res.returncode == 0, res.stderr
    config = yaml.safe_load((home / "c2c.yaml").read_text())
    assert config == {"drop": str(drop), "warehouse": f"sqlite:///{wh}"}
    assert stat.S_IMODE((home / "c2c.yaml").stat().st_mode) == 0o600
    assert drop.is_dir() and (home / "keys" / "master.key").exists() and wh.exists()
    again = c2c("init", env=env)  # idempotent: keeps keys and settings
    assert again.returncode == 0 and "kept the existing key set" in again.stdout
    assert yaml.safe_load((home / "c2c.yaml").read_text()) == config

    (drop / "fps").mkdir()
    (drop / "fps" / "students_20260815.csv").write_bytes(students_csv(3))
    (drop / "fps" / "students_20260816.csv").write_bytes(b"studentid\nS1\n")  # refused: left in the drop folder
    run = c2c("run", "--settle", "0", env=env)  # no flag: the drop folder and warehouse come from c2c.yaml
    assert run.returncode == 3 and "1 accepted, 1 refused" in run.stdout, run.stdout + run.stderr
    listed = c2c("manifest", env=env)
    assert listed.returncode == 0 and "fps/students_20260815.csv" in listed.stdout and "2 file(s)" in listed.stdout
    assert not (home / "warehouse.db").exists()  # nothing looked at a default SQLite warehouse

    status = c2c("status", env=env)
    assert status.returncode == 0, status.stderr
    assert "0 new file(s) to take in, 0 still being written, 1 refused and left as it was (replace or remove)" in status.stdout
    assert "audit head:      entry " in status.stdout
    # today 2026-11-23: fps's newest file is 100 days old (> 7), fhd and dhs never sent one
    assert ("agencies late:   dhs (newest as-of never, every 31 days), fhd (newest as-of never, every 7 days), "
            "fps (newest as-of 2026-08-15, every 7 days)") in status.stdout
    assert "current release: 1, published " in status.stdout
    assert str(home / "c2c.yaml") in status.stdout and "last run:" in status.stdout
    assert len(status.stdout.splitlines()) <= 24  # one screen


def test_synth_help_explains_every_option() -> None:
    res = c2c("synth", "--help", env=c2c_env(Path("/nonexistent")))
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    for option, words in (("--children", "exactly this many children in the city"), ("--seed", "byte-identical"), ("--out", "truth"),
                          ("--as-of", "YYYY-MM-DD")):
        assert option in text and words in text, option


def test_synth_children_is_exact(tmp_path: Path) -> None:
    """--children 3000 "gave 3,750 children": the older siblings of the early school years' graduation
    cohorts came on top. Now the city holds exactly 3,000 children, older siblings included; the first
    line says how many are aged 0-18 (counted here from the birth dates: born after 2007-08-15)."""
    import pandas as pd

    res = c2c("synth", "--children", "3000", "--seed", "7", "--out", str(tmp_path / "city"), env=c2c_env(tmp_path / "h"))
    assert res.returncode == 0, res.stderr
    persons = pd.read_csv(tmp_path / "city" / "truth" / "persons.csv", dtype=str)
    kids = persons[persons.role == "child"]
    assert len(kids) == 3000 and (kids.is_child == "true").all() and (persons[persons.role != "child"].is_child == "false").all()
    young = int((kids.birth_date > "2007-08-15").sum())
    assert young == int((kids.aged_0_18_at_as_of == "true").sum())
    older = 3000 - young
    assert 0 < older < young
    assert res.stdout.splitlines()[0].startswith(
        f"c2c synth: a synthetic city of 3,000 children ({young:,} aged 0-18 on 2026-08-15, {older:,} older siblings "
        "still school-age in the years covered; seed 7)")


@pytest.mark.parametrize("children", [1, 7, 64, 500])
def test_synth_children_is_exact_for_any_size(tmp_path: Path, children: int) -> None:
    """Exactly N children for small and odd sizes too (the last family is cut at the N-th child)."""
    from stages.synth import generate_city

    import pandas as pd

    generate_city(children, 11, tmp_path)
    persons = pd.read_csv(tmp_path / "truth" / "persons.csv", dtype=str)
    assert int((persons.role == "child").sum()) == children


def test_output_closed_early_is_one_line_not_an_internal_error(tmp_path: Path) -> None:
    """`c2c status | head -1`: a reader that went away is said as such (exit 1), not "internal error"."""
    env = c2c_env(tmp_path / "home")
    assert c2c("init", env=env).returncode == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before c2c writes
    try:
        res = subprocess.run([sys.executable, "-m", "pipelines.cli", "status"], env=env, cwd=REPO, stdout=write_end,
                             stderr=subprocess.PIPE, text=True, timeout=300, check=False)
    finally:
        os.close(write_end)
    assert res.returncode == 1
    assert res.stderr == "c2c: the output was closed before the command finished (broken pipe)\n", res.stderr
