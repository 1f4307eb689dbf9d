"""Leavers end to end: someone who left mid-window stays in the roster snapshots up to their last
work day (from the HR API, with the rest of their row from the lake), so their results are pulled
up to that day and none after; without the HR permission the sync goes on without them."""

import logging
from datetime import date, timedelta

import dagster as dg
import duckdb
import pandas as pd

from attendance_pipeline.sync import run_sync
from tests.conftest import SIM_TODAY, read_view


def _leaver(sim) -> tuple[str, date]:
    latest = sim.company.leavers()[0]  # last work day 10 days before the simulator's anchor
    last = pd.Timestamp(latest["lastWorkDay"], unit="ms", tz="Asia/Shanghai").date()
    assert last == SIM_TODAY - timedelta(days=10)
    return latest["userId"], last


def _roster_metadata(instance) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey("dingtalk_roster"))
    return event.asset_materialization.metadata


def test_a_leaver_is_synced_up_to_the_last_work_day(pipeline):
    sim, settings, defs, instance = pipeline
    userid, last = _leaver(sim)
    # First a week while they still work here: the lake learns their title and group.
    sim.set_today(last - timedelta(days=1))
    before = (last - timedelta(days=8), last - timedelta(days=2))
    assert run_sync(defs, *before, instance=instance).success
    known = read_view(settings, "roster")
    known = known[known["userid"] == userid].iloc[-1]
    assert pd.isna(known["last_work_date"])

    # A week after they left, a window around the last work day.
    sim.set_today(last + timedelta(days=7))
    assert userid not in {u["userid"] for u in sim.truth_users()}
    start, end = last - timedelta(days=3), last + timedelta(days=3)
    summary = run_sync(defs, start, end, instance=instance)
    assert summary.success, summary.render()

    roster = read_view(settings, "roster")
    mine = roster[(roster["userid"] == userid) & (roster["snapshot_date"] >= pd.Timestamp(start))]
    assert sorted(mine["snapshot_date"].dt.date) == [start + timedelta(days=k) for k in range(4)]
    assert set(mine["last_work_date"].dt.date) == {last}
    truth = {u["userid"]: u for u in sim.company.users()}[userid]
    assert set(mine["name"]) == {truth["name"]}
    assert set(mine["title"].dropna()) == {known["title"]} != set()  # from the stored snapshot
    assert set(mine["attendance_group_id"]) == {known["attendance_group_id"]}
    others = roster[roster["userid"] != userid]
    assert others["last_work_date"].isna().all()
    meta = _roster_metadata(instance)
    assert meta["leavers"].value == 1

    attendance = read_view(settings, "raw_attendance")
    theirs = attendance[attendance["userid"] == userid]
    days = set(theirs["work_date"].dt.date)
    assert days and max(days) == last  # a workday, pulled although user/list no longer has them
    window = sim.truth_attendance(start, end)
    assert sorted(attendance[attendance["work_date"] >= pd.Timestamp(start)]["id"]) == sorted(
        r["id"] for r in window
    )

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        hours = con.execute(
            "SELECT work_date FROM effective_hours WHERE userid = ? AND work_date >= ?",
            [userid, start],
        ).df()
        month = f"{last:%Y-%m}"
        paid = con.execute(
            "SELECT effective_hours, workdays FROM payroll_monthly "
            "WHERE month = ? AND userid = ? AND kind = 'regular'",
            [month, userid],
        ).fetchall()
        days_of_month = con.execute(
            "SELECT max(work_date), sum(effective_hours), count(*) FILTER (WHERE status <> 'rest') "
            "FROM effective_hours WHERE userid = ? AND strftime(work_date, '%Y-%m') = ?",
            [userid, month],
        ).fetchone()
    assert max(hours["work_date"].dt.date) == last
    assert len(hours) == 4
    # Their last payroll month is paid up to the last work day, not short, and nothing after.
    assert days_of_month[0] == last
    assert paid == [(days_of_month[1], days_of_month[2])] and paid[0][0] > 0


def test_without_the_hr_permission_the_sync_goes_on_without_leavers(pipeline):
    sim, settings, defs, instance = pipeline
    userid, last = _leaver(sim)
    sim.set_today(last + timedelta(days=7))
    sim.deny_api("hrm")
    start, end = last - timedelta(days=3), last + timedelta(days=3)
    summary = run_sync(defs, start, end, instance=instance)
    assert summary.success, summary.render()
    roster = read_view(settings, "roster")
    assert userid not in set(roster["userid"])
    assert roster["last_work_date"].isna().all()
    note = _roster_metadata(instance)["leavers"].value
    assert note.startswith("unavailable: ") and "智能人事" in note
    warnings = [
        entry.user_message
        for run in instance.get_runs()
        for entry in instance.all_logs(run.run_id)
        if entry.level == logging.WARNING and "Leavers unavailable" in entry.user_message
    ]
    assert warnings and "智能人事" in warnings[0]
    # People in no attendance group are in the roster with a null group.
    no_group = set(sim.truth_groups()["no_group"])
    groups = roster.drop_duplicates("userid").set_index("userid")["attendance_group_id"]
    assert no_group and set(groups[groups.isna()].index) == no_group
