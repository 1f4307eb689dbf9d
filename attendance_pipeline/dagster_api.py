"""The one place that touches Dagster internals (tests/test_dagster_api.py fails loudly when an
upgrade moves them).

- The run tags that make one run cover a range of partitions (what the UI's single-run backfill
  and `attendance-pipeline sync` set). Dagster has no public constant for them.
- The latest evaluation of asset checks, read from the instance's event log (the push's
  precondition): the public API has no lookup of a check's latest result with its severity.
- Running a job in process without capturing its outputs (`execute_uncaptured`): the public
  `execute_in_process` keeps every output in memory until the run ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

PARTITION_RANGE_START_TAG: str = ASSET_PARTITION_RANGE_START_TAG
PARTITION_RANGE_END_TAG: str = ASSET_PARTITION_RANGE_END_TAG


def partition_range_tags(start: str, end: str) -> dict[str, str]:
    """Run tags for one run over the partitions start..end (inclusive keys)."""
    return {PARTITION_RANGE_START_TAG: start, PARTITION_RANGE_END_TAG: end}


@dataclass(frozen=True)
class CheckEvaluation:
    """A check's latest result as recorded by the instance."""

    passed: bool | None  # None: the check was planned but has no result
    severity: dg.AssetCheckSeverity
    run_id: str


def latest_check_evaluations(
    instance: dg.DagsterInstance, keys: Sequence[dg.AssetCheckKey]
) -> dict[dg.AssetCheckKey, CheckEvaluation | None]:
    """Each key's latest evaluation (None: never ran)."""
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(keys))
    out: dict[dg.AssetCheckKey, CheckEvaluation | None] = {}
    for key in keys:
        record = records.get(key)
        if record is None:
            out[key] = None
            continue
        event = record.event.dagster_event if record.event else None
        data = event.event_specific_data if event is not None else None
        out[key] = CheckEvaluation(
            passed=getattr(data, "passed", None),
            severity=getattr(data, "severity", dg.AssetCheckSeverity.ERROR),
            run_id=record.run_id,
        )
    return out


def execute_uncaptured(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance | None,
    *,
    run_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    partition_key: str | None = None,
    asset_selection: Sequence[dg.AssetKey] | None = None,
    raise_on_error: bool = False,
) -> dg.ExecuteInProcessResult:
    """`job.execute_in_process(...)` without keeping every step's output in memory.

    `execute_in_process` captures each output for `result.output_for_node`, so a run holds every
    frame it produced (roster, attendance, hours, ...) until it ends: a month x 1,000 employees
    kept ~160 MiB alive this way. The sync reads events only, so the capture is turned off;
    otherwise this is `JobDefinition.execute_in_process` (dagster 1.13)."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.execute_in_process import (
        core_execute_in_process,
        merge_run_tags,
        type_check_and_normalize_args,
    )

    config, _, selection, resource_defs, key, input_values = type_check_and_normalize_args(
        run_config=run_config,
        partition_key=partition_key,
        op_selection=None,
        asset_selection=asset_selection,
        input_values=None,
        resources=None,
    )
    ephemeral = job.as_ephemeral_job(
        resource_defs=resource_defs,
        input_values=input_values,
        op_selection=None,
        asset_selection=selection,
    )
    return core_execute_in_process(
        job=InMemoryJob(job_def=ephemeral),
        run_config=config,
        instance=instance,
        output_capturing_enabled=False,
        raise_on_error=raise_on_error,
        run_tags=merge_run_tags(
            job_def=job,
            partition_key=key,
            tags=tags,
            asset_selection=selection,
            instance=instance,
            run_config=config,
        ),
        asset_selection=frozenset(selection),
    )
