"""Partitions: days keyed by the work date in Asia/Shanghai, and payroll months."""

from datetime import date, timedelta

import dagster as dg

from attendance_pipeline.settings import load_settings

_START = load_settings().partitions_start

DAILY = dg.DailyPartitionsDefinition(start_date=_START.isoformat(), timezone="Asia/Shanghai")

# The running month is a partition too (end_offset=1), so payroll can be followed as it fills.
MONTHLY = dg.MonthlyPartitionsDefinition(
    start_date=_START.replace(day=1).isoformat(), timezone="Asia/Shanghai", end_offset=1
)


def window_dates(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """The first and last work date (inclusive) of the run's partition window."""
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()
