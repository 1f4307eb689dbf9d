"""Partitions: days keyed by the work date in Asia/Shanghai."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from attendance_pipeline.settings import load_settings

DAILY = dg.DailyPartitionsDefinition(
    start_date=load_settings().partitions_start.isoformat(),
    timezone="Asia/Shanghai",
)


def window_dates(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """The first and last work date (inclusive) of the run's partition window."""
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()
