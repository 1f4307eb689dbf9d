"""The `sync` job on the dagster-celery executor, for tests/test_celery_executor.py.

A module of its own (not a test module) so that the Celery worker can import it: the executor
sends each step with a pointer to `celery_sync`, and the worker rebuilds the job from the same
environment (ATTENDANCE_*, DINGTALK_*) the test process set."""

from __future__ import annotations

import dagster as dg
from dagster_celery import celery_executor

from attendance_pipeline.automation import DAILY_STAGES
from attendance_pipeline.definitions import build_definitions
from attendance_pipeline.settings import load_settings

celery_sync_job = dg.define_asset_job(
    "sync_on_celery",
    selection=dg.AssetSelection.groups(*DAILY_STAGES),
    executor_def=celery_executor,
    description="The daily stages, each step a Celery task.",
)


def celery_sync() -> dg.JobDefinition:
    defs = dg.Definitions.merge(
        build_definitions(load_settings(env_file=None)), dg.Definitions(jobs=[celery_sync_job])
    )
    return defs.resolve_job_def("sync_on_celery")
