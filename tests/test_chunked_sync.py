"""Issue 14, item 3: a long sync is processed a month at a time (one run per calendar month, at
most 31 days), so memory stays that of a month; a failed month stops the sync and says where to
resume. bench/bench_memory.py measures the memory."""

from __future__ import annotations

import io
from datetime import date

import dagster as dg
import pytest

from attendance_pipeline.assets.partitions import BACKFILL, MAX_DAYS_PER_RUN
from attendance_pipeline.dagster_api import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from attendance_pipeline.sync import month_windows, run_sync


def sync_runs(instance: dg.DagsterInstance) -> list[tuple[str, str, dg.DagsterRunStatus]]:
    runs = instance.get_runs(filters=dg.RunsFilter(job_name="sync"))
    return sorted(
        (r.tags[PARTITION_RANGE_START_TAG], r.tags[PARTITION_RANGE_END_TAG], r.status) for r in runs
    )


@pytest.mark.parametrize(
    ("start", "end", "cap", "windows"),
    [
        ("2026-10-30", "2026-11-02", 31, [("10-30", "10-31"), ("11-01", "11-02")]),
        ("2026-11-01", "2026-11-30", 31, [("11-01", "11-30")]),
        (
            "2026-01-01",
            "2026-01-20",
            7,
            [("01-01", "01-07"), ("01-08", "01-14"), ("01-15", "01-20")],
        ),
        ("2026-02-27", "2026-03-01", 31, [("02-27", "02-28"), ("03-01", "03-01")]),
    ],
)
def test_month_windows_cut_at_each_first_of_the_month(start, end, cap, windows):
    got = month_windows(date.fromisoformat(start), date.fromisoformat(end), cap)
    assert [(f"{a:%m-%d}", f"{b:%m-%d}") for a, b in got] == windows


def test_backfills_run_a_month_at_most_per_run():
    assert BACKFILL.max_partitions_per_run == MAX_DAYS_PER_RUN == 31


def test_a_sync_across_a_month_end_is_one_run_per_month(pipeline):
    sim, settings, defs, instance = pipeline
    out = io.StringIO()
    summary = run_sync(defs, date(2026, 10, 30), date(2026, 11, 2), instance=instance, out=out)
    assert summary.success, summary.render()
    assert sync_runs(instance) == [
        ("2026-10-30", "2026-10-31", dg.DagsterRunStatus.SUCCESS),
        ("2026-11-01", "2026-11-02", dg.DagsterRunStatus.SUCCESS),
    ]
    assert "run 1/2: 2026-10-30..2026-10-31" in out.getvalue()
    for day in ("2026-10-30", "2026-10-31", "2026-11-01", "2026-11-02"):
        assert (settings.lake_dir / "effective_hours" / f"{day}.parquet").exists()
    assert summary.window == (date(2026, 10, 30), date(2026, 11, 2))
    # The summary adds up the metered calls of both runs (DingTalk counted the same).
    assert summary.metered_calls == sim.calls()["metered_this_month"] > 0
    # The payroll months of the whole range were built after the two runs.
    payroll = instance.get_runs(filters=dg.RunsFilter(job_name="payroll"))
    assert {r.tags["dagster/partition"] for r in payroll} == {"2026-10-01", "2026-11-01"}


def test_a_failed_month_stops_the_sync_and_says_where_to_resume(pipeline):
    sim, settings, defs, instance = pipeline
    sim.deny_api("attendance/list")
    summary = run_sync(
        defs, date(2026, 10, 30), date(2026, 11, 2), instance=instance, out=io.StringIO()
    )
    assert not summary.success
    [(first, last, status)] = sync_runs(instance)  # the November run was never started
    assert (first, last, status) == ("2026-10-30", "2026-10-31", dg.DagsterRunStatus.FAILURE)
    assert any("resume with --start 2026-11-01 --end 2026-11-02" in f for f in summary.failures)
    assert not (settings.lake_dir / "raw_attendance" / "2026-11-01.parquet").exists()
