"""The linkage area's layout has one owner (LinkageArea): the names on disk stay what hubs already hold."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from data_sharing.linkage import LinkageArea


@dataclass(frozen=True)
class _Entry:
    agency: str
    extract: str
    artifact_name: str


def test_the_layout_keeps_its_names(tmp_path: Path) -> None:
    area = LinkageArea(tmp_path)
    entry = _Entry("fps", "students", "00000001-0123456789abcdef.parquet")
    assert area.staging(entry) == tmp_path / "staging" / "fps" / "students" / entry.artifact_name
    assert area.encodings(entry) == tmp_path / "encodings" / "fps" / "students" / entry.artifact_name
    assert area.validation_rows(entry) == tmp_path / "validation" / "fps" / "students" / entry.artifact_name
    assert area.profile("fps", "students") == tmp_path / "profiles" / "fps" / "students.json"
    assert area.state_db == tmp_path / "linkage.duckdb" and area.duckdb_tmp == tmp_path / "duckdb_tmp"
    assert area.model_file("m1") == tmp_path / "models" / "m1.json"
    assert area.crosswalk == tmp_path / "crosswalk.parquet" and area.quality == tmp_path / "linkage_quality.json"
    assert area.queue == tmp_path / "review" / "queue.csv"
    assert area.pending_decisions == tmp_path / "review" / "decisions.csv"
    assert area.review_lock == tmp_path / "review" / ".decisions.lock"
    assert area.claimed_decisions("run1") == tmp_path / "review" / "decisions.claimed.run1.csv"
    assert area.applied_decisions("run1") == tmp_path / "review" / "decisions.applied.run1.csv"
    assert area.nightly_inputs == tmp_path / "nightly_inputs.json"
    assert LinkageArea.of(tmp_path) == area and LinkageArea.of(area) is area


def test_writers_replace_whole_files(tmp_path: Path) -> None:
    area = LinkageArea(tmp_path)
    assert area.read_crosswalk() is None and area.read_quality() is None and area.latest_model() is None
    area.write_crosswalk(pd.DataFrame({"source_key": ["a"], "child_key": ["c"]}))
    assert area.read_crosswalk().to_dict("records") == [{"source_key": "a", "child_key": "c"}]
    area.write_quality({"persons": 1})
    assert area.read_quality() == {"persons": 1}
    area.write_queue(pd.DataFrame({"run_id": ["r"], "source_key_l": ["a"]}))
    assert area.queue.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        ["crosswalk.parquet", "linkage_quality.json", "review", "queue.csv"])  # no temporary file left
    area.models_dir.mkdir()
    for i, name in enumerate(("b.json", "a.json")):
        (area.models_dir / name).write_text("{}")
        os.utime(area.models_dir / name, (1_000_000 + i, 1_000_000 + i))
    assert area.latest_model() == area.models_dir / "a.json"  # the newest, not the last by name


def test_key_records_keep_their_formats(tmp_path: Path) -> None:
    area = LinkageArea(tmp_path)
    assert area.linkage_keys.label() is None and not area.linkage_keys.changed("pseudonym/v1")
    area.linkage_keys.record("pseudonym/v1")
    area.warehouse_keys.record("pseudonym/v1")
    assert json.loads((tmp_path / "linkage_keys.json").read_text()) == {"pseudonym": "pseudonym/v1"}
    assert json.loads((tmp_path / "warehouse_state.json").read_text()) == {"pseudonym_key": "pseudonym/v1"}
    assert area.warehouse_keys.changed("pseudonym/v2") and not area.warehouse_keys.changed("pseudonym/v1")
