"""The drop-folder sensor: one run per complete file, keyed by the file's path and SHA-256.

The cursor (JSON) remembers what each file looked like on the last tick, so a file still being written is
taken only once its size and modification time have not changed for the settle time (``C2C_DROP_SETTLE_S``)
and on two ticks in a row (or its ``.done`` marker appears), and a
file already handed on is not requested again. The run key carries the file's SHA-256, so the same
content is processed once even if the cursor is lost; a corrected re-send (new content) gets a new run.
"""

import json
import os

from dagster import (
    AddDynamicPartitionsRequest,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets import names
from data_sharing.dropfolder import ReadyEntry, scan_drop_folder
from assets.jobs import intake_job
from assets.partitions import DROP_FILES
from assets.resources import C2CPaths

SENSOR_INTERVAL_S = 30
TICK_BUDGET_S = 40.0  # Dagster stops a sensor tick at 60 s; leave the rest for the next tick
MAX_RUNS_PER_TICK = 200


def run_request_for(ready: ReadyEntry) -> RunRequest:
    rel = ready.entry.rel_path
    plain = ready.partition_key == rel
    op_config = {"rel_path": rel} if plain else {"fs_path_hex": os.fsencode(rel).hex()}
    return RunRequest(
        run_key=ready.run_key,
        partition_key=ready.partition_key,
        run_config={"ops": {names.INTAKE_FILE: {"config": op_config}}},
        tags={names.TAG_STAGE: "intake", names.TAG_FILE: ready.partition_key, names.TAG_SHA256: ready.fingerprint},
    )


def _load_cursor(raw: str | None) -> dict | None:
    if not raw:
        return None
    try:
        state = json.loads(raw)
    except json.JSONDecodeError:
        return None  # a damaged cursor costs one re-hash of the folder; run keys still dedupe
    return state if isinstance(state, dict) else None


@sensor(
    name="drop_folder_sensor",
    job=intake_job,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description="Watches <drop>/<agency>/ and requests one intake run per complete file (dynamic partition per file).",
)
def drop_folder_sensor(context: SensorEvaluationContext, c2c_paths: C2CPaths) -> SensorResult | SkipReason:
    scan = scan_drop_folder(
        c2c_paths.drop,
        _load_cursor(context.cursor),
        time_budget_s=TICK_BUDGET_S,
        max_ready=MAX_RUNS_PER_TICK,
        settle_s=c2c_paths.drop_settle_s,
        two_looks=True,
        limits=c2c_paths.drop_limits(),
    )
    for agency, left in sorted(scan.over_limit.items()):
        context.log.info(
            f"{agency or 'top of the drop folder'}: {left} complete file(s) over the per-run limits "
            f"({c2c_paths.drop_max_files} files, {c2c_paths.drop_max_bytes:,} bytes) left for the next tick"
        )
    cursor = json.dumps(scan.state, sort_keys=True, separators=(",", ":"))
    if not scan.ready:
        waiting = f"; {len(scan.waiting)} file(s) still being written" if scan.waiting else ""
        context.update_cursor(cursor)
        return SkipReason(f"No new complete files in {c2c_paths.drop}{waiting}.")
    keys = sorted({r.partition_key for r in scan.ready})
    existing = set(context.instance.get_dynamic_partitions(DROP_FILES))
    new_keys = [k for k in keys if k not in existing]
    if scan.deferred:
        context.log.info(f"{scan.deferred} complete file(s) left for the next tick (tick budget reached)")
    return SensorResult(
        run_requests=[run_request_for(r) for r in scan.ready],
        dynamic_partitions_requests=[AddDynamicPartitionsRequest(DROP_FILES, new_keys)] if new_keys else [],
        cursor=cursor,
    )
