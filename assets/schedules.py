"""The nightly schedule (cron and time zone from configuration; default 02:00 America/New_York)."""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from assets.jobs import nightly_job


def nightly_schedule(cron: str, timezone: str) -> ScheduleDefinition:
    return ScheduleDefinition(
        name="nightly_schedule",
        job=nightly_job,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Materialises the cross-agency assets at '{cron}' ({timezone}).",
    )
