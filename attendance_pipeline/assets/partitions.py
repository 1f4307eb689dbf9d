"""Partitions: days keyed by the work date in Asia/Shanghai, and payroll months.

Assets are declared with the default first day; the definitions function puts the configured one
(`ATTENDANCE_START_DATE`) on every asset with `with_partitions`, so no setting is read at import.
"""

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import dagster as dg

from attendance_pipeline.settings import DEFAULT_START


def daily(start: date) -> dg.DailyPartitionsDefinition:
    """Work days from `start`, keyed by the date in China."""
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone="Asia/Shanghai")


def monthly(start: date) -> dg.MonthlyPartitionsDefinition:
    """Payroll months from `start`'s month; the running month is a partition too (end_offset=1),
    so payroll can be followed as it fills."""
    return dg.MonthlyPartitionsDefinition(
        start_date=start.replace(day=1).isoformat(), timezone="Asia/Shanghai", end_offset=1
    )


DAILY = daily(DEFAULT_START)
MONTHLY = monthly(DEFAULT_START)

# A backfill runs in windows of at most a month: each run works on its whole window at once (one
# DingTalk pull per API, one write per table), and peak memory stays that of a month however long
# the backfill (issue 14; a single 180-day run peaked at 1.2 GiB for 1,000 people).
MAX_DAYS_PER_RUN = 31
BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_DAYS_PER_RUN)


def with_partitions(assets: Sequence[Any], start: date) -> list[Any]:
    """The assets with their daily and monthly partitions starting at `start`."""
    by_kind = {
        dg.DailyPartitionsDefinition: daily(start),
        dg.MonthlyPartitionsDefinition: monthly(start),
    }

    def configured(spec: dg.AssetSpec) -> dg.AssetSpec:
        replacement = by_kind.get(type(spec.partitions_def))  # type: ignore[arg-type]
        return spec if replacement is None else spec.replace_attributes(partitions_def=replacement)

    return list(dg.map_asset_specs(configured, assets))


def window_dates(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """The first and last work date (inclusive) of the run's partition window."""
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


def with_pool_suffix(assets: Sequence[Any], suffix: str) -> list[Any]:
    """The assets with each op's concurrency pool `p` renamed `p_<suffix>`: an organisation's
    DingTalk calls and warehouse writes queue behind its own, not behind another's."""
    renamed: list[Any] = []
    for asset in assets:
        executable = isinstance(asset, dg.AssetsDefinition) and asset.is_executable
        op = asset.node_def if executable else None
        if not isinstance(op, dg.OpDefinition) or not op.pool:
            renamed.append(asset)
            continue
        # Dagster has no public way to change an op's pool after decoration; the copy is the
        # same op (function, ins, outs, tags, resources) under the new pool.
        copy = op.with_replaced_properties(name=op.name)
        copy._pool = f"{op.pool}_{suffix}"
        attributes = {**asset.get_attributes_dict(), "node_def": copy}
        renamed.append(dg.AssetsDefinition.dagster_internal_init(**attributes))
    return renamed
