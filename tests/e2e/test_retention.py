"""Raw-file retention end to end: the MOU's raw_retention_days, applied by the nightly raw_retention asset.

The shipped agreements are copied to a temporary folder with ``raw_retention_days: 0`` for fps
(``C2C_AGREEMENTS_DIR``), and the pipeline runs once over a small synthetic city (module fixture).
With 0 days the fps raw files are destroyed at the next nightly run, i.e. the one that ends this run;
fhd and dhs (7 days) keep theirs. The audit log holds one ``raw_destroyed`` entry per destroyed file,
with its SHA-256, size and rule, and ``c2c audit verify`` passes. A second run still succeeds, and
``protected_file`` re-materialises from the pseudonymous staging record without the raw file.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e_support import drop_files, isolate_env, settings_env

CHILDREN = 150
SEED = 777


@dataclass
class Retained:
    home: Path
    master_key: str
    agreements: Path
    originals: dict[Path, bytes]  # relative drop path -> bytes, as generated
    summary: object

    def use(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point this test's environment back at the module's hub (the autouse fixture changed the key)."""
        monkeypatch.setenv("C2C_MASTER_KEY", self.master_key)
        monkeypatch.setenv("C2C_AGREEMENTS_DIR", str(self.agreements))
        monkeypatch.setenv("DAGSTER_HOME", str(self.home / "dagster"))

    def settings(self):  # type: ignore[no-untyped-def]
        from pipelines.settings import Settings

        return Settings.from_env(settings_env(self.home))

    def engine(self):  # type: ignore[no-untyped-def]
        from warehouse.db import make_engine

        return make_engine(self.settings().warehouse_url)


@pytest.fixture(scope="module")
def retained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Retained]:
    from pipelines.runner import run_pipeline
    from synthetic.city import generate_city

    tmp = tmp_path_factory.mktemp("retention")
    agreements = tmp / "agreements"
    shutil.copytree(Path(__file__).resolve().parents[2] / "schemas" / "agreements", agreements)
    fps = agreements / "fps.yaml"
    text = fps.read_text(encoding="utf-8")
    assert "raw_retention_days: 7" in text
    fps.write_text(text.replace("raw_retention_days: 7", "raw_retention_days: 0"), encoding="utf-8")

    generate_city(CHILDREN, SEED, tmp / "city")
    home = tmp / "home"
    shutil.copytree(tmp / "city" / "drop", home / "drop")
    originals = {p.relative_to(home / "drop"): p.read_bytes() for p in drop_files(home / "drop")}
    key = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    with pytest.MonkeyPatch.context() as mp:
        isolate_env(mp, home, C2C_AGREEMENTS_DIR=str(agreements), C2C_MASTER_KEY=key)
        state = Retained(home, key, agreements, originals, None)
        state.summary = run_pipeline(state.settings(), settle_s=0, echo=lambda _m: None)
        yield state


def _landed(home: Path, agency: str) -> list[str]:
    return sorted(p.name for p in (home / "landing" / agency).glob("*.c2cland"))


def test_fps_raw_files_are_destroyed_with_evidence_and_the_others_kept(
    retained: Retained, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from data_sharing.keys import load_keyset
    from data_sharing.landing import LandingZone
    from data_sharing.partnership import load_partnership
    from pipelines.cli import main
    from warehouse.audit import read_entries, verify
    from warehouse.manifest import ManifestStore

    retained.use(monkeypatch)
    summary = retained.summary
    assert summary.ok and summary.nightly_success, summary
    assert [f.status for f in summary.files] == ["accepted"] * 9, summary.files
    home = retained.home
    engine = retained.engine()
    entries = [e for e in ManifestStore(engine).entries() if e.status == "accepted"]
    expected_name = {e.id: f"{Path(e.rel_path).name}.{e.sha256[:16]}.c2cland" for e in entries}

    # fps: nothing left in the landing zone; fhd, dhs: every accepted file still there and readable
    assert _landed(home, "fps") == []
    zone = LandingZone(home / "landing", load_keyset(env=os.environ))
    for agency in ("fhd", "dhs"):
        mine = [e for e in entries if e.agency == agency]
        assert mine and _landed(home, agency) == sorted(expected_name[e.id] for e in mine), agency
        for e in mine:
            assert zone.read(home / "landing" / agency / expected_name[e.id]) == retained.originals[Path(e.rel_path)]

    # one raw_destroyed entry per destroyed file, with the file's SHA-256, size and the MOU's rule
    label = load_partnership(retained.agreements).agreements["fps"].label  # the module's MOUs (its C2C_AGREEMENTS_DIR)
    destroyed = [a for a in read_entries(engine) if a.event_type == "raw_destroyed"]
    subjects = [a.subject for a in destroyed]
    assert len(subjects) == len(set(subjects)), "a file was recorded as destroyed twice"
    assert all(s.startswith("fps/") for s in subjects), subjects
    fps_entries = [e for e in entries if e.agency == "fps"]
    assert len(fps_entries) == 4
    by_subject = {a.subject: a for a in destroyed}
    for e in fps_entries:
        a = by_subject.get(f"fps/{expected_name[e.id]}")
        assert a is not None, f"no raw_destroyed entry for {e.rel_path}"
        d = a.details
        assert d["plaintext_sha256"] == e.sha256 and d["size"] == e.size_bytes, (e.rel_path, d)
        assert d["retention_days"] == 0 and d["rule"] == f"{label}: raw_retention_days=0", d
        assert d["agency"] == "fps" and d["name"] == Path(e.rel_path).name and d["destroyed_at"], d
    # anything else destroyed (a quarantine file) is an fps landing file too, with its evidence
    assert set(by_subject) - {f"fps/{expected_name[e.id]}" for e in fps_entries} <= {
        s for s in subjects if ".quarantine." in s
    }

    # the nightly raw_retention asset did it, and says so in Dagster
    from dagster import AssetKey, DagsterInstance

    with DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(AssetKey("raw_retention"))
    assert event is not None and event.run_id == summary.nightly_run_id
    assert event.asset_materialization.metadata["files_destroyed"].value == len(destroyed)

    # the chain is intact, by the API and by `c2c audit verify`
    assert verify(engine).ok
    capsys.readouterr()
    assert main(["audit", "verify", "--home", str(home)]) == 0
    assert "chain intact" in capsys.readouterr().out


def _protected_materialization(result):  # type: ignore[no-untyped-def]
    mats = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "protected_file"]
    assert len(mats) == 1, [e.asset_key for e in result.get_asset_materialization_events()]
    return {k: v.value for k, v in mats[0].materialization.metadata.items()}


def test_second_run_succeeds_and_protected_file_comes_from_staging(
    retained: Retained, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import pyarrow.parquet as pq
    from dagster import AssetKey, DagsterInstance

    from stages.protect import staging_paths
    from pipelines.cli import main
    from pipelines.definitions import build_definitions
    from pipelines.runner import run_pipeline
    from warehouse.audit import read_entries
    from warehouse.manifest import ManifestStore

    retained.use(monkeypatch)
    home = retained.home
    engine = retained.engine()
    store = ManifestStore(engine)
    fps_entries = [e for e in store.entries(agency="fps") if e.status == "accepted"]
    staging = {e.rel_path: staging_paths(home / "linkage", e)[0] for e in fps_entries}
    before = {rel: p.read_bytes() for rel, p in staging.items()}
    destroyed_before = sum(a.event_type == "raw_destroyed" for a in read_entries(engine))

    # the agency drops the same fps files again: recognised by content, processed once, raw not re-landed
    for e in fps_entries:
        (home / "drop" / e.rel_path).write_bytes(retained.originals[Path(e.rel_path)])
    second = run_pipeline(retained.settings(), settle_s=0, echo=lambda _m: None)
    assert second.ok and second.nightly_success, second
    assert {f.rel_path: f.status for f in second.files} == {e.rel_path: "unchanged" for e in fps_entries}
    assert _landed(home, "fps") == []

    # re-materialise the per-file assets after intake for every fps partition: from staging, no raw file
    defs = build_definitions(retained.settings(), env={"C2C_AGREEMENTS_DIR": str(retained.agreements)})
    job = defs.resolve_job_def("intake_job")
    with DagsterInstance.get() as instance:
        for e in fps_entries:
            result = job.execute_in_process(
                instance=instance,
                partition_key=e.partition_key or e.rel_path,
                asset_selection=[AssetKey("validated_file"), AssetKey("protected_file")],
                raise_on_error=False,
            )
            assert result.success, e.rel_path
            meta = _protected_materialization(result)
            assert meta["status"] == "from_staging", (e.rel_path, meta)
            assert meta["rows_out"] == pq.read_metadata(staging[e.rel_path]).num_rows
    assert {rel: p.read_bytes() for rel, p in staging.items()} == before, "staging was rewritten"
    assert _landed(home, "fps") == []
    assert sum(a.event_type == "raw_destroyed" for a in read_entries(engine)) == destroyed_before
    capsys.readouterr()
    assert main(["audit", "verify", "--home", str(home)]) == 0


def test_reexecuting_the_intake_job_goes_on_from_staging(retained: Retained, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster import DagsterInstance

    from pipelines.definitions import build_definitions
    from warehouse.manifest import ManifestStore

    retained.use(monkeypatch)
    home = retained.home
    entry = next(e for e in ManifestStore(retained.engine()).entries(agency="fps") if e.status == "accepted")
    (home / "drop" / entry.rel_path).unlink(missing_ok=True)  # as after the first run: the file has moved
    defs = build_definitions(retained.settings(), env={"C2C_AGREEMENTS_DIR": str(retained.agreements)})
    with DagsterInstance.get() as instance:
        result = defs.resolve_job_def("intake_job").execute_in_process(
            instance=instance, partition_key=entry.partition_key or entry.rel_path, raise_on_error=False
        )
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    failed = [c.check_name for c in checks if not c.passed]
    assert not failed, f"checks failed: {failed}"
    assert result.success
    assert _protected_materialization(result)["status"] == "from_staging"
    assert _landed(home, "fps") == []
