"""`attendance-pipeline sync`: every asset for a range of days, as one run, with a summary."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from attendance_pipeline.china_time import today_in_china

REPO_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_TEMPLATE = REPO_ROOT / "deploy" / "dagster.yaml"


class SyncUsageError(ValueError):
    """A bad date range or argument: nothing was run."""


@dataclass
class AssetSummary:
    """What one asset wrote in the run."""

    rows: int = 0
    has_rows: bool = False
    metered_calls: int = 0
    partitions: int = 0


@dataclass
class SyncSummary:
    """The outcome of one sync run."""

    run_id: str
    success: bool
    assets: dict[str, AssetSummary] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)

    @property
    def metered_calls(self) -> int:
        return sum(a.metered_calls for a in self.assets.values())

    def render(self) -> str:
        lines = [f"run {self.run_id}: {'succeeded' if self.success else 'FAILED'}"]
        for name, asset in self.assets.items():
            rows = f"{asset.rows:>9} rows" if asset.has_rows else f"{'':>14}"
            lines.append(
                f"  {name:<20} {rows}  {asset.partitions:>4} partitions"
                + (f"  {asset.metered_calls} metered calls" if asset.metered_calls else "")
            )
        lines.append(f"  metered DingTalk calls: {self.metered_calls}")
        lines.extend(f"  failed: {failure}" for failure in self.failures)
        lines.extend(f"  failed check: {check}" for check in self.failed_checks)
        return "\n".join(lines)


def parse_range(
    start: str, end: str, first_partition: date, today: date | None = None
) -> tuple[date, date]:
    """Validate a CLI date range; a mistake names the argument and what is allowed."""
    parsed = []
    for flag, text in (("--start", start), ("--end", end)):
        try:
            parsed.append(date.fromisoformat(text))
        except ValueError:
            raise SyncUsageError(f"{flag} {text!r} is not a date in YYYY-MM-DD form") from None
    first, last = parsed
    today = today or today_in_china()
    if last < first:
        raise SyncUsageError(f"--end {last} is before --start {first}")
    if first < first_partition:
        raise SyncUsageError(
            f"--start {first} is before the first partition {first_partition} "
            "(set ATTENDANCE_START_DATE to go further back)"
        )
    if last >= today:
        raise SyncUsageError(
            f"--end {last} has not ended yet in China (today is {today}); DingTalk publishes a "
            f"day's results after it ends, so the latest day to sync is {today - timedelta(1)}"
        )
    return first, last


def prepare_dagster_home(default: Path) -> Path:
    """`DAGSTER_HOME` (else `default`), created with the project's `deploy/dagster.yaml`."""
    home = Path(os.environ.get("DAGSTER_HOME") or default).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(INSTANCE_TEMPLATE, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def dagster_instance() -> dg.DagsterInstance:
    """The persistent instance (`DAGSTER_HOME`, default `./.dagster_home`)."""
    prepare_dagster_home(Path(".dagster_home"))
    return dg.DagsterInstance.get()


def run_sync(
    defs: dg.Definitions,
    start: date,
    end: date,
    *,
    instance: dg.DagsterInstance | None = None,
    dry_run: bool = False,
    out: TextIO = sys.stdout,
) -> SyncSummary:
    """Materialise every asset for start..end in one run and summarise what it wrote."""
    job = defs.resolve_job_def("sync")
    out.write(
        f"sync {start}..{end} ({(end - start).days + 1} days){' dry run' if dry_run else ''}\n"
    )
    out.flush()
    result = job.execute_in_process(
        instance=instance,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: start.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: end.isoformat(),
            "attendance/dry_run": str(dry_run).lower(),
        },
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        raise_on_error=False,
    )
    summary = SyncSummary(run_id=result.run_id, success=result.success)
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            name = materialization.asset_key.to_user_string()
            metadata: dict[str, Any] = {k: v.value for k, v in materialization.metadata.items()}
            asset = summary.assets.setdefault(name, AssetSummary())
            asset.partitions += 1
            # Run-level counts are attached once per step; keep the largest (they are equal).
            if "rows" in metadata:
                asset.has_rows = True
                asset.rows = max(asset.rows, int(metadata["rows"]))
            asset.metered_calls = max(asset.metered_calls, int(metadata.get("metered_calls", 0)))
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            failure = event.step_failure_data
            error = failure.error if failure else None
            while error is not None and error.cause is not None:
                error = error.cause  # the root cause is what a person can act on
            message = error.message.strip() if error else "failed"
            summary.failures.append(f"{event.step_key}: {message}")
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if evaluation is not None and not getattr(evaluation, "passed", True):
                summary.failed_checks.append(
                    f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"  # type: ignore[union-attr]
                )
    if summary.failed_checks:
        summary.success = False
    out.write(summary.render() + "\n")
    return summary
