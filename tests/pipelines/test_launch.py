"""Runs `c2c run` creates carry the c2c code location's origin (issue 17, item 10): the UI lists them
under their job and in the overview timeline only then. Read back from a real (temporary) instance."""

from __future__ import annotations

import yaml
from dagster import DagsterInstance, RunsFilter, instance_for_test, job, op

from pipelines.launch import LOCATION_NAME, MODULE_NAME, REPOSITORY_NAME, ROOT, runs_of_code_location


@op
def _one() -> int:
    return 1


@job
def tiny_job() -> None:
    _one()


def test_the_names_are_the_workspace_and_definitions_ones() -> None:
    entry = yaml.safe_load((ROOT / "workspace.yaml").read_text(encoding="utf-8"))["load_from"][0]["python_module"]
    assert (entry["location_name"], entry["module_name"]) == (LOCATION_NAME, MODULE_NAME)
    from pipelines.definitions import defs

    assert defs.get_repository_def().name == REPOSITORY_NAME


def test_runs_in_the_block_have_the_origin_and_the_instance_is_restored_after() -> None:
    with instance_for_test() as instance:
        assert isinstance(instance, DagsterInstance)
        with runs_of_code_location(instance):
            inside = tiny_job.execute_in_process(instance=instance).run_id
        outside = tiny_job.execute_in_process(instance=instance).run_id

        run = instance.get_run_by_id(inside)
        assert run is not None and run.remote_job_origin is not None
        origin = run.remote_job_origin
        assert origin.job_name == "tiny_job"
        assert origin.repository_origin.repository_name == "__repository__"
        assert origin.repository_origin.code_location_origin.location_name == "c2c"
        assert run.tags["dagster/code_location"] == "c2c"
        # what the UI's run list of a job filters on: the job's name and its repository's label
        listed = instance.get_runs(RunsFilter(job_name="tiny_job", tags={".dagster/repository": "__repository__@c2c"}))
        assert [r.run_id for r in listed] == [inside]

        plain = instance.get_run_by_id(outside)
        assert plain is not None and plain.remote_job_origin is None
        assert "dagster/code_location" not in plain.tags
