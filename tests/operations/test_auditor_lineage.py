"""Issue 8, item 1: an auditor follows a published indicator back to the files it came from, in the UI.

The pipeline runs on a small synthetic city into a real Dagster instance (``run_pipeline``, a local
DAGSTER_HOME); ``dagster-webserver`` is started on a free local port over that instance and everything
is read back through its GraphQL API, the way the UI reads it: asset descriptions, owners, groups,
kinds; every materialisation's ``dagster/*`` table metadata; the per-file facts; and the column lineage,
walked from the release's published columns through ``warehouse_tables`` and ``protected_file`` to the
extract fields of ``intake_file``, reaching every dropped file's SHA-256 (computed here with hashlib).
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from pathlib import Path

import pytest

from assets.lineage import KIND_COLUMNS, TABLE_KEYS, staging_lineage
from pipelines.runner import run_pipeline
from pipelines.settings import Settings
from tests.operations.ops_support import city_env, graphql, sha256_by_drop_name, small_city, webserver

STAGES = {"intake", "privacy", "validation", "linkage", "warehouse", "indicators"}
ASSETS = [
    "intake_file", "validated_file", "protected_file", "current_snapshots", "raw_retention", "data_quality_scorecard",
    "linked_persons", "warehouse_tables", "indicator_release", "cabinet_report",
]
TABLE_ASSETS = [a for a in ASSETS if a != "cabinet_report"]  # the report is pages, not a table

NODES = """query { assetNodes { assetKey { path } description groupName kinds
  owners { __typename ... on TeamAssetOwner { team } ... on UserAssetOwner { email } } } }"""

MATERIALISATIONS = """query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { __typename ... on Asset {
  assetMaterializations(limit: 1000) { partition runId metadataEntries { label __typename
    ... on TextMetadataEntry { text } ... on IntMetadataEntry { intValue } ... on BoolMetadataEntry { boolValue }
    ... on JsonMetadataEntry { jsonString } ... on PathMetadataEntry { path } ... on MarkdownMetadataEntry { mdStr }
    ... on FloatMetadataEntry { floatValue }
    ... on TableSchemaMetadataEntry { schema { columns { name type } } }
    ... on TableColumnLineageMetadataEntry { lineage { columnName columnDeps { assetKey { path } columnName } } }
  } } } } }"""


def _value(entry: dict) -> object:
    kind = entry["__typename"]
    if kind == "TableSchemaMetadataEntry":
        return {c["name"]: c["type"] for c in entry["schema"]["columns"]}
    if kind == "TableColumnLineageMetadataEntry":
        return {
            e["columnName"]: {("/".join(d["assetKey"]["path"]), d["columnName"]) for d in e["columnDeps"]}
            for e in entry["lineage"]
        }
    if kind == "JsonMetadataEntry":
        return json.loads(entry["jsonString"])
    for field in ("text", "intValue", "boolValue", "path", "mdStr", "floatValue"):
        if field in entry:
            return entry[field]
    raise AssertionError(f"unexpected metadata entry type {kind} ({entry['label']})")


def _materialisations(url: str, asset: str) -> list[dict]:
    data = graphql(url, MATERIALISATIONS, {"key": {"path": [asset]}})["assetOrError"]
    assert data["__typename"] == "Asset", f"{asset}: {data['__typename']}"
    out = []
    for m in data["assetMaterializations"]:
        meta = {e["label"]: _value(e) for e in m["metadataEntries"]}
        out.append({"partition": m["partition"], "run_id": m["runId"], "meta": meta})
    return out


@pytest.mark.slow
def test_release_lineage_reaches_every_contributing_file_through_the_ui_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("C2C_") and v != "C2C_MASTER_KEY"]:
        monkeypatch.delenv(var)
    drop = small_city(tmp_path / "city")
    dropped = sha256_by_drop_name(drop)  # before the run: accepted files move into the landing zone
    data_rows = {n: len((drop / n).read_bytes().splitlines()) - 1 for n in dropped}  # no quoted newlines in the city
    assert len(dropped) == 4
    env = city_env(tmp_path / "home", drop)
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    summary = run_pipeline(Settings.from_env(env), settle_s=0, echo=lambda _m: None)
    assert summary.ok and summary.counts == {"accepted": 4}, summary
    assert summary.release and summary.release["release_id"] == 1

    with webserver(env) as url:
        nodes = {"/".join(n["assetKey"]["path"]): n for n in graphql(url, NODES)["assetNodes"]}
        mats = {asset: _materialisations(url, asset) for asset in ASSETS}

    # --- every asset: description, owners, a group per stage, kinds
    assert sorted(nodes) == sorted(ASSETS)
    for name, node in nodes.items():
        assert node["description"] and len(node["description"]) > 40, name
        assert node["owners"] == [{"__typename": "TeamAssetOwner", "team": "city-data-office"}], name
        assert node["groupName"] in STAGES, name
        assert node["kinds"], name
    assert {n["groupName"] for n in nodes.values()} == STAGES

    # --- every materialisation carries the four dagster/* table keys
    for asset, found in mats.items():
        assert found, f"{asset} was never materialised"
        if asset not in TABLE_ASSETS:
            continue
        for m in found:
            missing = [k for k in TABLE_KEYS if k not in m["meta"]]
            assert not missing, f"{asset} {m['partition']}: no {missing}"
            assert isinstance(m["meta"]["dagster/row_count"], int)

    # --- per file: path (the drop name), SHA-256, MOU id and version, key ids (never keys), rows
    intake = {m["partition"]: m["meta"] for m in mats["intake_file"]}
    validated = {m["partition"]: m["meta"] for m in mats["validated_file"]}
    protected = {m["partition"]: m["meta"] for m in mats["protected_file"]}
    assert sorted(intake) == sorted(validated) == sorted(protected) == sorted(dropped)
    for name, meta in intake.items():
        assert meta["file"] == name == meta["dagster/table_name"]
        assert meta["status"] == "accepted" and meta["sha256"] == dropped[name]
        assert re.fullmatch(r"MOU-[A-Z]+-CITY-\d{4}", str(meta["mou_id"])) and int(meta["mou_version"]) >= 1
        assert re.fullmatch(r"landing/v\d+/[0-9a-f]{12}", meta["key_ids"]["landing"])
        assert meta["rows_in"] == data_rows[name]
        v = validated[name]
        assert v["sha256"] == dropped[name] and v["mou_id"] == meta["mou_id"]
        assert v["rows_in"] == meta["rows_in"] == v["rows_accepted"] + v["rows_quarantined"] + v["rows_refused"] + v["rows_repeated"]
        assert v["dagster/row_count"] == v["rows_accepted"] and v["rows_refused"] == 0
        p = protected[name]
        assert p["sha256"] == dropped[name] and p["rows_out"] == v["rows_accepted"] == p["dagster/row_count"]
        # linkage_hub: the hub-only layer over the encodings, only where the file has encodings (person extracts)
        assert {"pseudonym", "linkage"} <= set(p["key_ids"]) <= {"pseudonym", "linkage", "linkage_hub"}
        assert all(re.fullmatch(r"(pseudonym|linkage|linkage_hub)/v\d+/[0-9a-f]{12}", k) for k in p["key_ids"].values())

    assert any("linkage_hub" in m["key_ids"] for m in protected.values())  # the person extracts' encodings

    # --- the release lists exactly the dropped files as its contributors
    release = mats["indicator_release"][-1]["meta"]
    assert set(release["contributing_sha256"]) == set(dropped.values())
    assert {f["file"]: f["sha256"] for f in release["contributing_files"]} == dropped
    assert set(release["source_sha256"]) <= set(dropped.values())
    assert release["dagster/table_name"] == "indicator_values" and release["dagster/row_count"] == summary.release["rows"]

    # --- walk the column lineage: published column -> warehouse column -> pseudonymous column -> extract field
    by_sha = {meta["sha256"]: name for name, meta in intake.items()}
    warehouse = mats["warehouse_tables"][-1]["meta"]
    files_of_table = {t: [by_sha[s] for s in shas] for t, shas in warehouse["source_files_by_table"].items()}
    linked = mats["linked_persons"][-1]["meta"]

    def walk(column: str) -> tuple[set[str], set[tuple[str, str]]]:
        """(drop names, (drop name, extract field)) a published column leads back to."""
        files: set[str] = set()
        fields: set[tuple[str, str]] = set()
        for asset, wcol in release["dagster/column_lineage"][column]:
            assert asset == "warehouse_tables" and wcol in warehouse["dagster/column_schema"], wcol
            table = wcol.split(".", 1)[0]
            for asset2, scol in warehouse["dagster/column_lineage"][wcol]:
                if asset2 == "linked_persons":  # child keys: the person files the linkage read
                    assert scol in linked["dagster/column_schema"]
                    files |= {by_sha[s] for s in linked["source_sha256"]}
                    continue
                assert asset2 == "protected_file"
                for name in files_of_table.get(table, []):  # a table no file was loaded into: none
                    assert scol in protected[name]["dagster/column_schema"], (name, scol)
                    files.add(name)
                    for asset3, field in protected[name]["dagster/column_lineage"][scol]:
                        assert asset3 == "intake_file" and field in intake[name]["dagster/column_schema"], (name, field)
                        fields.add((name, field))
        return files, fields

    reached: set[str] = set()
    fields: dict[str, set[tuple[str, str]]] = {}
    for column in ("period", "school_id", "group", "numerator", "denominator", "rate", "suppressed"):
        files, fields[column] = walk(column)
        reached |= files
    assert {dropped[n] for n in reached} == set(dropped.values()), "lineage reaches every contributing file"
    students, attendance, programs = "fps/students_20260815.csv", "fps/attendance_20260815.csv", "dhs/program_enrollments_20260815.csv"
    assert {(attendance, "days_absent"), (attendance, "days_enrolled"), (attendance, "student_id")} <= fields["numerator"]
    assert {(students, "race_ethnicity"), (students, "homeless"), (programs, "program")} <= fields["group"]
    assert (attendance, "school_year") in fields["period"]
    assert intake[attendance]["dagster/column_schema"]["days_absent"] == "integer"  # the contract's type


def test_kind_columns_cover_every_kind_and_exist_in_the_models() -> None:
    """KIND_COLUMNS (lineage of the published columns) reads exactly the tables of each kind's roles."""
    from typing import get_args

    from assets.lineage import DIMENSION_COLUMNS, warehouse_tables_schema
    from schemas.indicators import KINDS as KIND_SPECS
    from schemas.indicators import Dimension, load_indicator_definitions
    from schemas.roles import ROLES
    from warehouse.indicators import KINDS

    assert set(KIND_COLUMNS) == set(KINDS) == set(KIND_SPECS)
    assert set(DIMENSION_COLUMNS) == set(get_args(Dimension))
    columns = {c.name for c in warehouse_tables_schema().columns}
    for kind, spec in KIND_COLUMNS.items():
        named = {c for cols in spec.values() for c in cols}
        tables = {c.split(".", 1)[0] for c in named}
        assert tables == {ROLES[r].table for r in KIND_SPECS[kind].roles}, kind
        for c in named:
            table, col = c.split(".", 1)
            assert col == "*" or c in columns, (kind, c)
    for d in load_indicator_definitions().values():
        assert all(c in columns for dim in d.dimensions for c in DIMENSION_COLUMNS[dim])


def test_declared_staging_lineage_matches_the_protection_step(tmp_path: Path) -> None:
    """The lineage derived from a contract alone equals what data_sharing.protect reports for real rows."""
    import pandas as pd

    from data_sharing.intake import read_extract_table
    from data_sharing.keys import load_keyset
    from data_sharing.partnership import load_partnership
    from data_sharing.protect import protect_raw

    small_city(tmp_path / "city", children=20, extracts=("fps/students", "fps/attendance", "fhd/patients", "dhs/clients"))
    keyset = load_keyset(tmp_path / "no-key-file", env=os.environ)  # C2C_MASTER_KEY from the test environment
    parts = load_partnership()
    checked = defaultdict(int)
    for path in sorted((tmp_path / "city" / "drop").glob("*/*.csv")):
        terms = parts.terms(path.parent.name, path.name.rsplit("_", 1)[0])
        frame = read_extract_table(path.read_bytes()).to_pandas(types_mapper=pd.ArrowDtype)
        protected = protect_raw(frame, terms.contract, keyset)
        declared = staging_lineage(terms.contract)
        assert {**protected.column_lineage, "row_number": []} == declared, path.name
        assert list(protected.staging.columns) == [c for c in declared if c in protected.staging.columns]
        checked[terms.agency] += 1
    assert dict(checked) == {"dhs": 1, "fhd": 1, "fps": 2}
