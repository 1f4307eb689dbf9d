"""Partitions: days keyed by the work date in Asia/Shanghai, and payroll months."""

from collections.abc import Callable
from datetime import date, timedelta

import dagster as dg
import pandas as pd

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


Metric = Callable[[pd.DataFrame], int | float]


def add_daily_metadata(
    context: dg.AssetExecutionContext, frame: pd.DataFrame, column: str, metrics: dict[str, Metric]
) -> None:
    """Give each partition of the run's window its own value of every metric.

    A window run (a backfill, the corrections run) materialises many partitions at once and the
    window's totals would otherwise be repeated on every day, so the UI's plots would show the
    window's total on each day. Per-day numbers are recorded only here; metrics that exist only
    per run (metered calls, retries) stay in the window-level metadata.
    """
    by_day = dict(iter(frame.groupby(frame[column].astype(str), sort=False))) if len(frame) else {}
    empty = frame.iloc[0:0]
    for key in context.partition_keys:
        day = by_day.get(key, empty)
        context.add_asset_metadata(
            {name: metric(day) for name, metric in metrics.items()}, partition_key=key
        )


def rows(frame: pd.DataFrame) -> int:
    return len(frame)


def distinct(column: str) -> Metric:
    return lambda frame: int(frame[column].nunique())


def total(column: str, scale: float = 1.0) -> Metric:
    return lambda frame: float(frame[column].sum() / scale) if len(frame) else 0.0


def counted(column: str, value: str) -> Metric:
    return lambda frame: int((frame[column] == value).sum())
