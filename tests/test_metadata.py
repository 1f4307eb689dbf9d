"""Materialisation metadata that plots over time in the UI: numbers per partition, not the totals
of whatever window the run happened to cover."""

from datetime import date

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq

from attendance_pipeline.sync import run_sync
from tests.conftest import resource
from tests.test_delivery import with_pm

WEEK = (date(2026, 11, 9), date(2026, 11, 13))

# asset -> (partition column, {metadata key: how to compute it from that day's stored rows})
PLOTTED = {
    "dingtalk_roster": ("snapshot_date", {"rows": len, "employees": lambda f: f.userid.nunique()}),
    "raw_attendance": ("work_date", {"rows": len, "employees": lambda f: f.userid.nunique()}),
    "raw_approvals": ("work_date", {"rows": len, "approvals": lambda f: f.approve_id.nunique()}),
    "effective_hours": (
        "work_date",
        {
            "rows": len,
            "effective_hours_total": lambda f: f.effective_hours.sum(),
            "overtime_hours_total": lambda f: f.overtime_hours.sum(),
        },
    ),
    "pm_users": ("snapshot_date", {"rows": len}),
    "user_mapping": (
        "snapshot_date",
        {
            "rows": len,
            "mapped": lambda f: (f.status == "mapped").sum(),
            "unmapped": lambda f: (f.status == "unmapped").sum(),
        },
    ),
    "worklog_plan": ("work_date", {"rows": len, "hours": lambda f: f.seconds.sum() / 3600}),
    "pushed_worklogs": (
        "work_date",
        {
            "created": lambda f: (f.action == "created").sum(),
            "updated": lambda f: (f.action == "updated").sum(),
            "deleted": lambda f: (f.action == "deleted").sum(),
        },
    ),
    "worklog_reconciliation": ("work_date", {"ok": lambda f: (f.status == "ok").sum()}),
}


WAREHOUSE_TABLES = {"held_back", "worklog_ledger", "sync_errors"}


def materializations(instance: dg.DagsterInstance, run_id: str) -> dict[tuple[str, str], dict]:
    """Per (asset, day); the warehouse tables a step reports writing are not partitioned."""
    found = {}
    for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        m = event.asset_materialization
        assert m is not None
        if m.asset_key.to_user_string() in WAREHOUSE_TABLES:
            assert m.partition is None
            continue
        assert m.partition is not None
        found[(m.asset_key.to_user_string(), m.partition)] = m.metadata
    return found


def stored_day(settings, asset: str, day: str) -> pd.DataFrame:
    return pq.read_table(settings.lake_dir / asset / f"{day}.parquet").to_pandas()


def test_a_window_run_records_each_days_own_numbers(pipeline, pm_sim):
    _, url = pm_sim()
    _, settings, defs, instance = with_pm(pipeline, resource("jira", url))
    summary = run_sync(defs, *WEEK, instance=instance)
    assert summary.success, summary.render()
    events = materializations(instance, summary.run_id)
    days = [str(d.date()) for d in pd.date_range(*WEEK)]

    for asset, (_, metrics) in PLOTTED.items():
        for day in days:
            metadata = events[(asset, day)]
            frame = stored_day(settings, asset, day)
            for key, compute in metrics.items():
                value = metadata[key]
                # Int/Float values are what the UI plots across materialisations.
                assert isinstance(value, dg.IntMetadataValue | dg.FloatMetadataValue), (asset, key)
                assert value.value == compute(frame), (asset, day, key, value.value)

    # Not the window's total repeated: the days add up to it.
    attendance_rows = [events[("raw_attendance", d)]["rows"].value for d in days]
    assert sum(attendance_rows) == sum(len(stored_day(settings, "raw_attendance", d)) for d in days)
    assert max(attendance_rows) < sum(attendance_rows)
    created = sum(events[("pushed_worklogs", d)]["created"].value for d in days)
    assert created == summary.worklogs["created"] > 0
    # Metered calls exist only per run: every partition of the run carries the run's number.
    calls = {events[("raw_attendance", d)]["metered_calls"].value for d in days}
    assert len(calls) == 1 and calls.pop() > 0


def test_a_one_day_run_and_a_window_run_record_the_same_numbers_for_that_day(pipeline):
    _, _, defs, instance = pipeline
    day = WEEK[0]
    single = run_sync(defs, day, day, instance=instance)
    window = run_sync(defs, *WEEK, instance=instance)
    assert single.success and window.success
    alone = materializations(instance, single.run_id)
    within = materializations(instance, window.run_id)
    for asset in ("raw_attendance", "effective_hours", "user_mapping"):
        for key in PLOTTED[asset][1]:
            assert alone[(asset, str(day))][key] == within[(asset, str(day))][key], (asset, key)
