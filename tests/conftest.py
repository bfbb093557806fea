"""Shared fixtures: a drop folder, warehouses on SQLite and PostgreSQL, and CSV writers.

PostgreSQL tests use 127.0.0.1:5432 database `test`, each in its own schema, and fail (not skip) when
CI=true and the server is unreachable.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from data_sharing.partnership import load_partnership
from schemas.partnership import Partnership

# The modules that take longest, heaviest first: CPU seconds (user+sys, subprocesses included) of each module
# run alone with `-n 0` on this 2-core machine, 2026-12-07 (in brackets). xdist hands whole modules to workers
# in collection order (--dist loadscope --no-loadscope-reorder: by default it orders modules by their number
# of tests, which put these one-test modules last), so these go first and the short ones fill in behind them;
# otherwise one long module started last leaves the other core idle.
HEAVY_MODULES = (
    "tests/e2e/test_canary.py",  # [84] sqlite + postgresql, Data Docs on
    "tests/operations/test_killed_run.py",  # [77] three hubs, two runs at a time
    "tests/operations/test_incremental_night.py",  # [~55] two hubs, three nights (added with issue 16)
    "tests/linkage/test_spark_backend.py",  # [~50] a JVM (local Spark) and two links of one city (issue 19)
    "tests/e2e/test_tokenized_city.py",  # [48]
    "tests/linkage/test_linkage_estimates.py",  # [48]
    "tests/e2e/test_second_partnership.py",  # [47]
    "tests/e2e/test_renamed_partnership.py",  # [41]
    "tests/e2e/test_truth_indicators.py",  # [40]
    "tests/e2e/test_retention.py",  # [39]
    "tests/e2e/test_review_cli.py",  # [38]
    "tests/operations/test_quiet_night.py",  # [38]
    "tests/e2e/test_linkage_cli.py",  # [36]
    "tests/operations/test_ui_browser.py",  # [36]
    "tests/reports/test_cabinet_report.py",  # [35]
    "tests/e2e/test_key_rotation.py",  # [34]
    "tests/security/test_ops_run.py",  # [33]
    "tests/e2e/test_report_canary.py",  # [31]
    "tests/pipelines/test_cli_hub.py",  # [~40 wall] c2c init and status as subprocesses
    "tests/operations/test_refused_again.py",  # [~20] two nights of c2c run as subprocesses
    "tests/linkage/test_linkage_name_variants.py",  # [~20] a 1,500-child sloppy city
    "tests/operations/test_auditor_lineage.py",  # [28]
    "tests/pipelines/test_audit_report.py",  # [24]
    "tests/security/test_ops_ui.py",  # [21]
)


# Test temp folders in RAM (/dev/shm) when the machine has one with room: a pipeline run makes ~2,000
# fdatasync calls (Dagster writes each event to SQLite in its own transaction; the warehouse, manifest and
# audit log commit often), ~3.5 s of waiting per run on this machine's disk, ~0 on tmpfs. Nothing the tests
# assert depends on the file system (modes, renames, locks and links behave the same on tmpfs); the system
# temp folder the leak scans watch stays where it is. `--basetemp DIR` chooses the folder as usual.
RAM_TMP_MIN_FREE = 4 << 30
_RAM_TMP = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.option.basetemp or hasattr(config, "workerinput"):  # chosen, or an xdist worker (its controller chose)
        return
    shm = Path("/dev/shm")
    try:
        usable = shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= RAM_TMP_MIN_FREE
    except OSError:
        usable = False
    if usable:
        for stale in shm.glob("c2c-pytest-*"):  # left by a run that failed or was killed over a day ago
            try:
                if stale.is_dir() and not stale.is_symlink() and stale.stat().st_mtime < time.time() - 86400:
                    shutil.rmtree(stale, ignore_errors=True)
            except OSError:
                pass
        config.option.basetemp = tempfile.mkdtemp(prefix="c2c-pytest-", dir=shm)
        config.stash[_RAM_TMP] = config.option.basetemp


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The RAM temp folder goes when every test passed; after a failure it stays for a look (path printed)."""
    ram_tmp = session.config.stash.get(_RAM_TMP, None)
    if ram_tmp and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        shutil.rmtree(ram_tmp, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    ram_tmp = config.stash.get(_RAM_TMP, None)
    if ram_tmp and exitstatus != 0:
        terminalreporter.write_line(f"test temp folders kept in RAM: {ram_tmp} (remove it when done)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heaviest modules first, each module's tests kept together and in their own order."""
    rank = {m: i for i, m in enumerate(HEAVY_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


PG_URL = os.environ.get("C2C_TEST_PG_URL", "postgresql+psycopg2://127.0.0.1:5432/test")
TODAY = dt.date(2026, 11, 23)

STUDENT_HEADER = [
    "student_id", "first_name", "middle_name", "last_name", "birth_date", "sex", "race_ethnicity",
    "english_learner", "disability", "econ_disadvantaged", "homeless", "street_address", "zip", "school_id",
    "grade_level", "school_year", "enroll_date", "exit_date",
]


def student_row(i: int, school_year: int = 2026, school: str = "SCH1") -> list[str]:
    """A synthetic student row (made-up values)."""
    return [
        f"S{i:05d}", f"Testfirst{i}", "", f"Testlast{i}", "2015-02-03", "F", "WH", "N", "N", "N", "N",
        f"{i} Test Street", "02100", school, "05", str(school_year), f"{school_year - 1}-08-20", "",
    ]


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def students_csv(n: int, years: Sequence[int] = (2026,)) -> bytes:
    rows = [student_row(i, y) for y in years for i in range(n)]
    return csv_bytes(STUDENT_HEADER, rows)


@pytest.fixture(autouse=True)
def master_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with a fresh random master key from the environment (as a secret manager gives it).

    No key ever sits in the repository; tests that exercise key files unset it.
    """
    import base64
    import secrets

    value = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    monkeypatch.setenv("C2C_MASTER_KEY", value)
    monkeypatch.delenv("C2C_KEY_FILE", raising=False)
    # GX Data Docs cost ~3 s per file; tests that check them turn them on (C2C_DATA_DOCS=1).
    monkeypatch.setenv("C2C_DATA_DOCS", "0")
    return value


@pytest.fixture(scope="session")
def partnership() -> Partnership:
    return load_partnership()


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    root = tmp_path / "drop"
    for agency in ("fps", "fhd", "dhs"):
        (root / agency).mkdir(parents=True)
    return root


def _pg_reachable() -> bool:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_available() -> bool:
    ok = _pg_reachable()
    if not ok and os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL at {PG_URL} is unreachable and CI=true: PostgreSQL tests must run in CI")
    return ok


@pytest.fixture
def pg_schema(pg_available: bool) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    if not pg_available:
        pytest.skip(f"PostgreSQL at {PG_URL} is unreachable (set CI=true to make this a failure)")
    schema = f"c2c_test_{uuid.uuid4().hex[:10]}"
    yield schema
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS " + conn.dialect.identifier_preparer.quote_schema(schema) + " CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """(url, schema) of an empty warehouse, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}", None
    schema = request.getfixturevalue("pg_schema")
    return PG_URL, schema
