"""`c2c linkage train` retrains the model on the current encodings; the nightly run then uses the newest model."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e_support import isolate_env, settings_env
from pipelines.cli import main
from pipelines.runner import run_pipeline
from pipelines.settings import Settings
from synthetic.city import generate_city


def test_linkage_train_writes_a_new_versioned_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    isolate_env(monkeypatch, home, C2C_DATA_DOCS="0")
    generate_city(300, 5, tmp_path / "city")
    env = {**settings_env(home), "C2C_DROP_DIR": str(tmp_path / "city" / "drop")}
    assert run_pipeline(Settings.from_env(env), settle_s=0, echo=lambda _m: None).ok
    models = sorted((home / "linkage" / "models").glob("*.json"))
    assert len(models) == 1  # the first night trained one
    assert (home / "linkage" / "crosswalk.parquet").exists()
    assert main(["linkage", "train", "--home", str(home)]) == 0
    assert len(list((home / "linkage" / "models").glob("*.json"))) == 2
