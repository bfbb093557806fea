"""The DuckDB connection linkage works in: a memory budget by default, spill files in the linkage area."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from data_sharing.linkage import model as lm
from data_sharing.linkage.model import MEMORY_LIMIT_ENV, linkage_memory_limit, work_connection
from pipelines.settings import Settings


def _setting(con, name: str) -> str:  # noqa: ANN001
    return con.execute("select current_setting(?)", [name]).fetchall()[0][0]


def _configure(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    """The process default the doors set from ``C2C_LINKAGE_MEMORY_LIMIT`` (pipelines.settings), restored after."""
    monkeypatch.setattr(lm, "_configured_memory_limit", None)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, value or "")
    lm.configure_memory_limit(Settings.from_env().linkage_memory_limit)


def _physical(monkeypatch: pytest.MonkeyPatch, gib: int) -> None:
    real = os.sysconf
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": gib * 2**30 // 4096}
    monkeypatch.setattr(lm.os, "sysconf", lambda name: pages[name] if name in pages else real(name))


def test_default_is_a_sixth_of_the_physical_memory_capped_at_8_gib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _configure(monkeypatch, None)
    _physical(monkeypatch, 6)
    assert linkage_memory_limit() == "1024MiB"
    con = work_connection(tmp_path)
    try:
        assert _setting(con, "memory_limit") == "1.0 GiB"
    finally:
        con.close()
    _physical(monkeypatch, 64)  # a sixth would be 10.7 GiB: capped
    assert linkage_memory_limit() == "8192MiB"
    con = work_connection(tmp_path)
    try:
        assert _setting(con, "memory_limit") == "8.0 GiB"
    finally:
        con.close()


def test_environment_variable_and_argument_override_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _configure(monkeypatch, "1500MiB")
    con = work_connection(tmp_path, threads=1)
    try:
        assert _setting(con, "memory_limit") == "1.4 GiB"
        assert _setting(con, "threads") == 1
    finally:
        con.close()
    con = work_connection(tmp_path, memory_limit="2GiB")  # the argument wins over the environment
    try:
        assert _setting(con, "memory_limit") == "2.0 GiB"
    finally:
        con.close()
    _configure(monkeypatch, "lots")
    with pytest.raises(ValueError, match=MEMORY_LIMIT_ENV):
        work_connection(tmp_path)


def test_what_does_not_fit_spills_into_the_linkage_area(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _configure(monkeypatch, "64MiB")
    area = tmp_path / "area"
    con = work_connection(area, threads=1)
    try:
        assert Path(_setting(con, "temp_directory")) == area / "duckdb_tmp"
        # ~150 MB of table data in a database limited to 64 MiB: DuckDB must offload blocks to disk
        con.execute("create table t as select range as i, md5(range::varchar) as s from range(2000000)")
        assert con.execute("select count(*), count(distinct s) from t").fetchall() == [(2_000_000, 2_000_000)]
        files = [Path(p) for (p,) in con.execute("select path from duckdb_temporary_files()").fetchall()]
        assert files, "nothing spilled"
        assert all(p.parent == area / "duckdb_tmp" for p in files)
        assert sum(p.stat().st_size for p in files) > 10 * 2**20
    finally:
        con.close()
