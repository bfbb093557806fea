"""The nightly schedule (cron and time zone from configuration; default 02:00 America/New_York)."""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from pipelines.jobs import nightly_job
from pipelines.settings import Settings


def nightly_schedule(settings: Settings) -> ScheduleDefinition:
    return ScheduleDefinition(
        name="nightly_schedule",
        job=nightly_job,
        cron_schedule=settings.nightly_cron,
        execution_timezone=settings.timezone,
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Materialises the cross-agency assets at '{settings.nightly_cron}' ({settings.timezone}).",
    )
