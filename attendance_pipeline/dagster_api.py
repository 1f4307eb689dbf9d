"""The one place that touches Dagster internals (tests/test_dagster_api.py fails loudly when an
upgrade moves them).

- The run tags that make one run cover a range of partitions (what the UI's single-run backfill
  and `attendance-pipeline sync` set). Dagster has no public constant for them.
- The latest evaluation of asset checks, read from the instance's event log (the push's
  precondition): the public API has no lookup of a check's latest result with its severity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
