"""Key rotation (issue 4): after `c2c keys rotate`, the next run re-keys every pseudonym, and the
published indicators are unchanged."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine

from e2e_support import isolate_env, settings_env
from pipelines.cli import main
from pipelines.runner import run_pipeline
from pipelines.settings import Settings
from synthetic.city import generate_city
from warehouse.releases import current_indicator_values, list_releases


def _values(engine) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    values = current_indicator_values(engine).drop(columns=["release_id"], errors="ignore")
    return values.sort_values(["indicator", "period", "school_id", "dimension", "group"]).reset_index(drop=True)


def _source_keys(engine) -> set[str]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return set(pd.read_sql_query("SELECT source_key FROM enrolments", conn)["source_key"])


def _child_keys(engine) -> set[str]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return set(pd.read_sql_query("SELECT child_key FROM enrolments WHERE child_key IS NOT NULL", conn)["child_key"])


def test_rotation_rekeys_pseudonyms_and_keeps_published_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    isolate_env(monkeypatch, home)
    monkeypatch.delenv("C2C_MASTER_KEY", raising=False)
    assert main(["keys", "init", "--home", str(home)]) == 0
    generate_city(250, 11, tmp_path / "city")
    env = {**settings_env(home), "C2C_DROP_DIR": str(tmp_path / "city" / "drop"), "C2C_KEY_FILE": str(home / "keys" / "master.key")}
    monkeypatch.setenv("C2C_KEY_FILE", env["C2C_KEY_FILE"])
    assert run_pipeline(Settings.from_env(env), settle_s=0, echo=lambda _m: None).ok
    engine = create_engine(f"sqlite:///{home / 'warehouse.db'}")
    before_values, before_keys, before_children = _values(engine), _source_keys(engine), _child_keys(engine)
    assert len(before_values) > 100 and before_keys and before_children

    assert main(["keys", "rotate", "--home", str(home), "--purposes", "pseudonym,landing"]) == 0
    assert run_pipeline(Settings.from_env(env), settle_s=0, echo=lambda _m: None).ok  # no new file: nightly only
    after_values, after_keys, after_children = _values(engine), _source_keys(engine), _child_keys(engine)

    assert not (before_keys & after_keys), "every source_key is re-keyed under the new pseudonym key"
    assert len(after_keys) == len(before_keys)
    assert after_children == before_children, "child keys survive the rotation (the linkage state is re-keyed)"
    pd.testing.assert_frame_equal(before_values, after_values)
    assert len(list_releases(engine)) == 2
    engine.dispose()
