"""The one place the c2c Dagster code location is assembled (`defs`)."""

from dagster import Definitions, EnvVar, in_process_executor

from assets.intake import current_snapshots, intake_file
from assets.jobs import intake_job, nightly_job
from assets.linkage import linked_persons
from assets.privacy import protected_file
from assets.report import cabinet_report
from assets.resources import AlertsResource, C2CPaths, KeysResource, PartnershipResource, WarehouseResource
from assets.retention import raw_retention
from assets.schedules import nightly_schedule
from assets.scorecard import data_quality_scorecard
from assets.sensors import drop_folder_sensor
from assets.validation import validated_file
from assets.warehouse import indicator_release, warehouse_tables
from pipelines.alerts import run_failure_alert_sensor
from pipelines.auditkey import use_hub_audit_key
from pipelines.hardening import apply_umask
from pipelines.settings import MASTER_KEY_ENV, Settings, process_env_agrees, process_environment


def _env_or(var: str, value: str, env: dict[str, str]) -> str | EnvVar:
    """Show an environment-sourced setting as an EnvVar in the UI; otherwise the plain value.

    An EnvVar is read from the process environment when the run starts, so it is used only when the
    mapping given agrees with this process's environment.
    """
    return EnvVar(var) if env.get(var) and process_env_agrees(var, env[var]) else value


def build_definitions(settings: Settings | None = None, env: dict[str, str] | None = None) -> Definitions:
    env = process_environment() if env is None else env
    settings = settings or Settings.from_env(env)
    settings.apply_process_defaults()  # hashing helpers and linkage memory for the runs of this process
    use_hub_audit_key(env.get("C2C_KEY_FILE") or settings.key_file, env.get("C2C_WAREHOUSE_URL") or settings.warehouse_url,
                      settings.warehouse_schema, settings.key_env())  # the warehouse's audit chain is keyed with the hub's audit key
    return Definitions(
        assets=[
            intake_file, validated_file, protected_file, current_snapshots, raw_retention, data_quality_scorecard,
            linked_persons, warehouse_tables, indicator_release, cabinet_report,
        ],
        jobs=[intake_job, nightly_job],
        sensors=[drop_folder_sensor, run_failure_alert_sensor],
        schedules=[nightly_schedule(settings.nightly_cron, settings.timezone)],
        resources={
            "c2c_paths": C2CPaths(
                home=str(settings.home),
                drop_dir=_env_or("C2C_DROP_DIR", str(settings.drop_dir), env),
                landing_dir=_env_or("C2C_LANDING_DIR", str(settings.landing_dir), env),
                linkage_dir=_env_or("C2C_LINKAGE_DIR", str(settings.linkage_dir), env),
                timezone=settings.timezone,
                today_override=settings.today_override.isoformat() if settings.today_override else "",
                data_docs=settings.data_docs,
                drop_settle_s=settings.drop_settle_s,
                drop_max_files=settings.drop_max_files,
                drop_max_bytes=settings.drop_max_bytes,
                drop_max_file_bytes=settings.drop_max_file_bytes,
                drop_max_line_bytes=settings.drop_max_line_bytes,
            ),
            "warehouse": WarehouseResource(
                url=_env_or("C2C_WAREHOUSE_URL", settings.warehouse_url, env),
                db_schema=settings.warehouse_schema or "",
            ),
            # the master key reaches the runs as an EnvVar (resolved in the run's process, never shown in the UI)
            "keys": KeysResource(key_file=_env_or("C2C_KEY_FILE", str(settings.key_file), env),
                                 master_key=EnvVar(MASTER_KEY_ENV) if settings.master_key else ""),
            "alerts": AlertsResource(file=str(settings.alerts_file or ""),
                                     webhook=_env_or("C2C_ALERT_WEBHOOK", settings.alert_webhook or "", env)),
            "partnership": PartnershipResource(
                agreements_dir=env.get("C2C_AGREEMENTS_DIR") or str(settings.agreements_dir or ""),
                extracts_dir=env.get("C2C_EXTRACTS_DIR") or str(settings.extracts_dir or ""),
                root=str(settings.partnership or ""),
            ),
        },
        executor=in_process_executor,
    )


apply_umask()  # the code location is loaded by the webserver, daemon and run workers: their files are private too
defs = build_definitions()
