"""Helpers for the hostile-drop tests (issue #20 items 1, 2, 3, 5, 10): resources as the assets get them,
a guard against hanging, and intake runs through the real Dagster job."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import dagster

from assets.resources import C2CPaths, KeysResource, PartnershipResource, WarehouseResource
from pipelines.definitions import build_definitions
from pipelines.settings import Settings
from warehouse.db import make_engine
from warehouse.manifest import ManifestStore

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def settings_for(tmp_path: Path, drop: Path, **env: str) -> Settings:
    base = {"C2C_HOME": str(tmp_path), "C2C_DROP_DIR": str(drop), "C2C_TODAY": "2026-11-23", "C2C_DROP_SETTLE_S": "0"}
    return Settings.from_env({**base, **env})


def resources(settings: Settings) -> tuple[C2CPaths, WarehouseResource, PartnershipResource, KeysResource]:
    paths = C2CPaths(
        home=str(settings.home), drop_dir=str(settings.drop_dir), landing_dir=str(settings.landing_dir),
        linkage_dir=str(settings.linkage_dir), today_override=settings.today_override.isoformat(),
        drop_settle_s=settings.drop_settle_s, drop_max_files=settings.drop_max_files,
        drop_max_bytes=settings.drop_max_bytes, drop_max_file_bytes=settings.drop_max_file_bytes,
        drop_max_line_bytes=settings.drop_max_line_bytes,
    )
    return paths, WarehouseResource(url=settings.warehouse_url), PartnershipResource(), KeysResource(key_file=str(settings.key_file), master_key=settings.master_key or "")


def manifest(settings: Settings) -> list:
    engine = make_engine(settings.warehouse_url)
    try:
        return ManifestStore(engine).entries()
    finally:
        engine.dispose()


@contextlib.contextmanager
def no_hang(seconds: int = 10) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the block takes longer than ``seconds``."""

    def _alarm(signum, frame):  # type: ignore[no-untyped-def]
        raise TimeoutError(f"blocked for more than {seconds} s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def dagster_instance(tmp_path: Path) -> Iterator[dagster.DagsterInstance]:
    (tmp_path / "dagster").mkdir(exist_ok=True)
    with dagster.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield instance


def run_intake(instance: dagster.DagsterInstance, settings: Settings, rel: str, sha256: str | None = None):  # type: ignore[no-untyped-def]
    """One intake run for ``rel`` as the sensor or ``c2c run`` launches it (the scan's SHA-256 as a tag)."""
    job = build_definitions(settings, env={}).resolve_job_def("intake_job")
    if rel not in instance.get_dynamic_partitions("drop_files"):
        instance.add_dynamic_partitions("drop_files", [rel])
    tags = {"c2c/stage": "intake", "c2c/file": rel}
    if sha256:
        tags["c2c/sha256"] = sha256
    return job.execute_in_process(
        instance=instance, partition_key=rel,
        run_config={"ops": {"intake_file": {"config": {"rel_path": rel}}}, **QUIET}, tags=tags, raise_on_error=False,
    )
