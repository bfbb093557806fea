"""Runs started by `c2c run` belong to the c2c code location, as runs launched from the UI do.

`c2c run` executes its jobs in its own process (``execute_in_process``: no code server, no daemon, the
speed cron needs). A run created that way has no *repository origin*, and the Dagster UI leaves it
out of the overview timeline and the job's run list (dagster-io/dagster#17707). The runs it creates
here carry the origin the webserver gives runs it launches itself: the code location of
``workspace.yaml`` (``c2c``, module ``pipelines.definitions``) and the singleton repository of its
``Definitions``; from it Dagster also tags the run with its repository label and code location.

Dagster 1.13 has no public way to give an in-process run an origin (``dagster job launch``, the
GraphQL client and sensors all go through the run coordinator, which needs the daemon and a code
server and starts a new process per run). So this module is the one place that reads Dagster's
internal origin types; ``tests/pipelines/test_launch.py`` fails if they move.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from pathlib import Path

from dagster import DagsterInstance

ROOT = Path(__file__).resolve().parent.parent
LOCATION_NAME = "c2c"
"""``workspace.yaml``'s ``location_name``."""
MODULE_NAME = "pipelines.definitions"
REPOSITORY_NAME = "__repository__"
"""The name Dagster gives the one repository of a module's ``Definitions``."""


def job_origin(job_name: str):  # type: ignore[no-untyped-def]
    """The origin the webserver (``-w workspace.yaml``) records for a run of ``job_name`` it launches, or
    None when this Dagster no longer has these internal types: the run then goes ahead without an origin
    (listed under "runs", not the timeline) rather than failing a night; ``tests/pipelines/test_launch.py``
    fails so the upgrade is noticed."""
    try:
        from dagster._core.remote_origin import (
            ManagedGrpcPythonEnvCodeLocationOrigin,
            RemoteJobOrigin,
            RemoteRepositoryOrigin,
        )
        from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    except ImportError:
        return None

    location = ManagedGrpcPythonEnvCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(
            executable_path=sys.executable, module_name=MODULE_NAME, working_directory=str(ROOT)),
        location_name=LOCATION_NAME,
    )
    return RemoteJobOrigin(repository_origin=RemoteRepositoryOrigin(location, REPOSITORY_NAME), job_name=job_name)


@contextlib.contextmanager
def runs_of_code_location(instance: DagsterInstance) -> Iterator[DagsterInstance]:
    """Within the block, every run ``instance`` creates for a job (``execute_in_process``) carries the
    c2c code location's origin. The instance is left as it was afterwards."""
    create = instance.create_run_for_job

    @functools.wraps(create)
    def create_with_origin(job_def, *args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("remote_job_origin") is None:
            kwargs["remote_job_origin"] = job_origin(job_def.name)
        return create(job_def, *args, **kwargs)

    instance.create_run_for_job = create_with_origin  # type: ignore[method-assign]
    try:
        yield instance
    finally:
        del instance.create_run_for_job
