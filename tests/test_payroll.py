"""End to end on the simulator: a synced month's effective hours equal the simulator's ground
truth run through the rules, payroll equals the sum of its days, re-running changes nothing, and
a late 补卡 changes exactly one day (or, in a locked month, adds an adjustment row)."""

import json
from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest

from attendance_pipeline.china_time import days, now_in_china
from attendance_pipeline.cli import main
from attendance_pipeline.dingtalk.records import approvals_frame, attendance_frame, roster_frame
from attendance_pipeline.finance import lock_month
from attendance_pipeline.hours.calendar import WorkCalendar
from attendance_pipeline.hours.reference import derive_frame
from attendance_pipeline.hours.rules import load_overrides, load_rules
from attendance_pipeline.sync import run_sync
from tests.conftest import SIM_TODAY

pytestmark = pytest.mark.slow

OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))


def table(settings, sql: str, params=()) -> pd.DataFrame:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql, list(params)).df()


def truth_through_rules(sim, settings, start: date, end: date) -> pd.DataFrame:
    """The simulator's ground truth, parsed and run through the reference implementation."""
    now = now_in_china()
    # Everyone employed in the window: today's people and the leavers up to their last day.
    roster = roster_frame(
        sim.company.users(), days(start, end), now, (), sim.company.group_map(), _last_days(sim)
    )
    attendance = attendance_frame(sim.truth_attendance(start, end), now)
    approvals = approvals_frame(sim.truth_approvals(start, end), start, end, now)
    config = settings.config_dir
    return derive_frame(
        roster,
        attendance,
        approvals,
        load_overrides(config / "overrides.csv"),
        load_rules(config / "rules.yaml"),
        WorkCalendar.load(config / "calendar.csv"),
    )


def test_a_synced_month_equals_ground_truth_and_payroll_sums_its_days(pipeline):
    sim, settings, defs, instance = pipeline
    assert run_sync(defs, *OCTOBER, instance=instance).success

    stored = table(settings, "SELECT * FROM effective_hours ORDER BY work_date, userid")
    expected = truth_through_rules(sim, settings, *OCTOBER)
    assert len(stored) == len(expected) == _employee_days(sim)
    columns = [
        *("userid", "work_date", "status", "effective_hours", "leave_hours", "trip_hours"),
        *("overtime_hours", "scheduled_hours", "day_type", "rule_id", "rules_version"),
    ]
    left = stored[columns].assign(work_date=stored["work_date"].astype(str))
    right = expected[columns].assign(work_date=expected["work_date"].astype(str))
    pd.testing.assert_frame_equal(
        left.reset_index(drop=True), right.reset_index(drop=True), check_dtype=False
    )
    assert {"normal", "late", "leave", "rest", "missing_punch"} <= set(stored["status"])

    payroll = table(settings, "SELECT * FROM payroll_monthly WHERE month = '2026-10'")
    sums = stored.groupby("userid")[["effective_hours", "overtime_hours", "leave_hours"]].sum()
    merged = payroll.set_index("userid").join(sums, rsuffix="_days")
    assert len(merged) == stored["userid"].nunique()
    for column in ("effective_hours", "overtime_hours", "leave_hours"):
        assert (merged[column] - merged[f"{column}_days"]).abs().max() < 1e-6
    assert {"email", "mobile", "org_email"}.isdisjoint(payroll.columns)
    assert {"email", "mobile", "org_email"}.isdisjoint(stored.columns)

    # Re-running the month changes nothing.
    again = run_sync(defs, *OCTOBER, instance=instance)
    assert again.success
    pd.testing.assert_frame_equal(
        stored, table(settings, "SELECT * FROM effective_hours ORDER BY work_date, userid")
    )
    payroll_again = table(settings, "SELECT * FROM payroll_monthly WHERE month = '2026-10'")
    pd.testing.assert_frame_equal(
        payroll.drop(columns="computed_at").sort_values("userid").reset_index(drop=True),
        payroll_again.drop(columns="computed_at").sort_values("userid").reset_index(drop=True),
    )


def _last_days(sim) -> dict[str, date]:
    return {
        leaver["userId"]: pd.Timestamp(leaver["lastWorkDay"], unit="ms", tz="Asia/Shanghai").date()
        for leaver in sim.company.leavers()
    }


def _employee_days(sim) -> int:
    """October's employee-days: from each person's hire date to their last work day."""
    last = _last_days(sim)
    count = 0
    for user in sim.company.users():
        hired = pd.Timestamp(user["hired_date"], unit="ms", tz="Asia/Shanghai").date()
        leaves = last.get(user["userid"], date.max)
        count += sum(1 for d in days(*OCTOBER) if hired <= d <= leaves)
    return count


def month_end_correction(sim) -> tuple[date, date, date]:
    """(work day, clock before, clock after): a 补卡 arriving after its month has ended."""
    for first in (date(2026, m, 1) for m in (10, 9, 8, 7, 6)):
        end = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        before = end + timedelta(days=1)
        sim.set_today(SIM_TODAY)  # every approval of those days is visible by now
        for approval in sim.truth_approvals(end - timedelta(days=6), end):
            day = date.fromisoformat(approval["beginTime"][:10])
            if approval["bizType"] != 4 or not first <= day <= end:
                continue
            sim.set_today(before)
            early = sim.truth_attendance(day, day, [approval["userId"]])
            sim.set_today(day + timedelta(days=6))
            late = sim.truth_attendance(day, day, [approval["userId"]])
            sim.set_today(SIM_TODAY)
            if early != late:
                return day, before, day + timedelta(days=6)
    raise AssertionError("the simulator generated no 补卡 arriving after its month ended")


def changed_user_days(sim, start: date, end: date, before: date, after: date) -> set:
    """(userid, day) whose DingTalk results differ between two clocks, from ground truth."""
    sim.set_today(before)
    old = {r["id"]: r for r in sim.truth_attendance(start, end)}
    sim.set_today(after)
    new = {r["id"]: r for r in sim.truth_attendance(start, end)}
    changed = set()
    for key in old.keys() | new.keys():
        record = new.get(key) or old[key]
        if old.get(key) != new.get(key):
            day = pd.Timestamp(record["workDate"], unit="ms", tz="Asia/Shanghai").date()
            changed.add((record["userId"], str(day)))
    return changed


def test_a_late_correction_changes_only_its_day_and_locked_months_get_adjustments(pipeline, capsys):
    sim, settings, defs, instance = pipeline
    day, before_clock, after_clock = month_end_correction(sim)
    month = f"{day:%Y-%m}"
    start = day.replace(day=1)
    end = before_clock - timedelta(days=1)
    expected_days = changed_user_days(sim, start, end, before_clock, after_clock)
    assert any(d == str(day) for _, d in expected_days)

    sim.set_today(before_clock)
    assert run_sync(defs, start, end, instance=instance).success
    before = table(settings, "SELECT * FROM effective_hours ORDER BY work_date, userid")
    paid = table(settings, "SELECT * FROM payroll_monthly WHERE month = ?", [month])
    assert main(["payroll", "--month", month, "--lock", "--by", "finance-test"]) == 0

    sim.set_today(after_clock)  # the 补卡 approvals have arrived
    assert run_sync(defs, start, end, instance=instance).success
    after = table(settings, "SELECT * FROM effective_hours ORDER BY work_date, userid")
    moved = (after["effective_hours"] != before["effective_hours"]) | (
        after["status"] != before["status"]
    )
    changed = after[moved]
    assert {(r.userid, f"{r.work_date:%Y-%m-%d}") for r in changed.itertuples()} == expected_days
    assert set(before.loc[changed.index, "status"]) <= {"missing_punch", "absent"}

    # The locked month did not move; the next open month explains the difference.
    still = table(settings, "SELECT * FROM payroll_monthly WHERE month = ?", [month])
    pd.testing.assert_frame_equal(
        paid.drop(columns="locked").sort_values("userid").reset_index(drop=True),
        still.drop(columns="locked").sort_values("userid").reset_index(drop=True),
    )
    assert still["locked"].all()
    following = f"{(end + timedelta(days=1)):%Y-%m}"
    adjustments = table(
        settings,
        "SELECT * FROM payroll_monthly WHERE month = ? AND kind = 'adjustment'",
        [following],
    )
    expected = {
        (row.userid, f"{row.work_date:%Y-%m-%d}"): row.effective_hours
        - before.loc[i, "effective_hours"]
        for i, row in changed.iterrows()
    }
    got = {
        (row.userid, f"{row.original_date:%Y-%m-%d}"): row.effective_hours
        for row in adjustments.itertuples()
    }
    assert got == pytest.approx(expected)

    capsys.readouterr()
    assert main(["payroll", "--month", following, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sum(1 for r in rows if r["kind"] == "adjustment") == len(adjustments)


def test_locking_an_empty_month_is_refused(pipeline, capsys):
    _, settings, _, _ = pipeline
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        duckdb.connect(str(settings.warehouse_path)) as con,
        pytest.raises(ValueError, match="has no rows yet"),
    ):
        lock_month(con, "2026-09", "me")
    assert main(["payroll", "--month", "2026-9"]) == 2
    assert "is not YYYY-MM" in capsys.readouterr().err
