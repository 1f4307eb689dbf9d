"""`report_diff.reconcile` on a real DuckDB warehouse: DingTalk's per-day report values against
the pipeline's per-day facts, differences found with the right person, measure and days."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from attendance_pipeline import report_diff
from attendance_pipeline.china_time import SHANGHAI
from attendance_pipeline.hours.calendar import WorkCalendar
from attendance_pipeline.hours.engine import derive_effective_hours
from attendance_pipeline.hours.rules import Rules
from attendance_pipeline.schemas import EFFECTIVE_HOURS, to_table
from attendance_pipeline.warehouse import replace_rows
from tests.hours_cases import Company

TOLERANCE = {"days": 0, "count": 0, "minutes": 5, "hours": 0.5}
PULLED = datetime(2026, 11, 2, 4, 0, tzinfo=SHANGHAI)


def company() -> Company:
    c = Company("2026-10-01", "2026-10-31")
    for user in ("u1", "u2"):
        c.user(user, name=f"员工{user}")
        for day in pd.date_range("2026-10-12", "2026-10-30").date:
            if day.weekday() < 5:
                c.day(day.isoformat(), on="Normal", off="Normal", user=user)
    c.day("2026-10-20", on=("Late", "09:12"), off="Normal", user="u1")
    c.leave("2026-10-21", sub_type="年假", user="u2")
    c.approval(1, "2026-10-22 19:00", "2026-10-22 21:00", unit="hour", tag="加班", user="u2")
    return c


def warehouse(path: Path) -> tuple[duckdb.DuckDBPyConnection, pd.DataFrame]:
    days = derive_effective_hours(*company().frames(), Rules(), WorkCalendar())
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    replace_rows(
        con, "effective_hours", EFFECTIVE_HOURS, to_table(days, EFFECTIVE_HOURS, "test"), "true", []
    )
    return con, days


def agreeing_report(days: pd.DataFrame) -> pd.DataFrame:
    """What DingTalk would report if it agreed with every day (one row per measure column)."""
    rows = []
    for r in days.itertuples():
        values = {
            ("should_attendance_days", "应出勤天数"): 0.0
            if r.status in ("rest", "exempt")
            else 1.0,
            ("late_count", "迟到次数"): r.late_count,
            ("late_minutes", "迟到时长"): r.late_minutes,
            ("early_leave_count", "早退次数"): r.early_leave_count,
            ("early_leave_minutes", "早退时长"): r.early_leave_minutes,
            ("missing_punch_count", "上班缺卡次数"): r.missing_punch_count,
            ("missing_punch_count", "下班缺卡次数"): 0,
            ("absenteeism_days", "旷工天数"): r.absenteeism_days,
            ("overtime_workday_hours", "工作日加班"): r.overtime_workday_hours,
            ("overtime_restday_hours", "休息日加班"): r.overtime_restday_hours,
            ("overtime_holiday_hours", "节假日加班"): r.overtime_holiday_hours,
        }
        for entry in r.leave_by_type:
            values[(report_diff.LEAVE_PREFIX + entry["leave_type"], entry["leave_type"])] = entry[
                "hours"
            ]
        for (measure, column), value in values.items():
            rows.append(
                {"month": "2026-10", "userid": r.userid, "work_date": r.work_date,
                 "measure": measure, "column_name": column, "column_id": None,
                 "value": float(value), "pulled_on": PULLED.date(), "pulled_at": PULLED}
            )  # fmt: skip
    return pd.DataFrame(rows)


def store(con: duckdb.DuckDBPyConnection, report: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(report, schema=report_diff.DINGTALK_REPORT, preserve_index=False)
    report_diff.store_report(con, "2026-10", table)


def test_no_differences_where_dingtalk_agrees(tmp_path: Path) -> None:
    con, days = warehouse(tmp_path / "w.duckdb")
    assert days["late_count"].sum() == 1  # the fixture has something to compare
    store(con, agreeing_report(days))
    diff = report_diff.reconcile(con, "2026-10", TOLERANCE, pulled_on=PULLED.date())
    assert diff.num_rows == 0


def test_each_injected_difference_is_found_with_person_measure_and_days(tmp_path: Path) -> None:
    con, days = warehouse(tmp_path / "w.duckdb")
    report = agreeing_report(days)

    def bump(userid: str, day: str, measure: str, delta: float) -> None:
        hit = (
            (report["userid"] == userid)
            & (report["work_date"] == date.fromisoformat(day))
            & (report["measure"] == measure)
        )
        assert hit.sum() >= 1
        report.loc[hit[hit].index[0], "value"] += delta

    bump("u1", "2026-10-27", "late_count", 1)
    bump("u1", "2026-10-27", "late_minutes", 3)  # within the 5-minute tolerance
    bump("u2", "2026-10-21", "leave:年假", -4)
    bump("u2", "2026-10-22", "overtime_workday_hours", 1.5)
    store(con, report)
    diff = report_diff.reconcile(con, "2026-10", TOLERANCE, pulled_on=PULLED.date()).to_pandas()
    found = {
        (r.userid, r.measure): ([d.isoformat() for d in r.days], r.difference, r.within_tolerance)
        for r in diff.itertuples()
    }
    assert found == {
        ("u1", "late_count"): (["2026-10-27"], -1.0, False),
        ("u1", "late_minutes"): (["2026-10-27"], -3.0, True),
        ("u2", "leave:年假"): (["2026-10-21"], 4.0, False),
        ("u2", "overtime_workday_hours"): (["2026-10-22"], -1.5, False),
    }
    late = diff[diff["measure"] == "late_count"].iloc[0]
    assert late["name"] == "员工u1" and late["column_name"] == "迟到次数"
    assert "2026-10-27: pipeline 0" in late["explanation"] and "normal" in late["explanation"]


def test_should_attend_days_compared_only_within_15_days_of_the_pull(tmp_path: Path) -> None:
    con, days = warehouse(tmp_path / "w.duckdb")
    report = agreeing_report(days)
    # DingTalk's documented quirk: 应出勤天数 is 0 more than 15 days before the call.
    old = (report["measure"] == "should_attendance_days") & (
        pd.to_datetime(report["work_date"]) < pd.Timestamp("2026-10-18")
    )
    report.loc[old, "value"] = 0.0
    store(con, report)
    diff = report_diff.reconcile(con, "2026-10", TOLERANCE, pulled_on=PULLED.date())
    assert diff.num_rows == 0
    # Pulled at the month's end instead, the same zeros are real differences.
    late = report_diff.reconcile(con, "2026-10", TOLERANCE, pulled_on=date(2026, 10, 31))
    assert set(late.column("measure").to_pylist()) == {"should_attendance_days"}


def test_a_held_back_day_is_named_as_such(tmp_path: Path) -> None:
    con, days = warehouse(tmp_path / "w.duckdb")
    report = agreeing_report(days)
    # The day is held back: not published, so the pipeline has no row for it.
    con.execute("DELETE FROM effective_hours WHERE userid = 'u1' AND work_date = DATE '2026-10-20'")
    con.execute(
        """CREATE TABLE held_back AS SELECT 'inputs_complete' AS "check", 'u1' AS userid,
           DATE '2026-10-20' AS work_date, 'all' AS blocks, NULL::TIMESTAMPTZ AS released_at"""
    )
    store(con, report)
    diff = report_diff.reconcile(con, "2026-10", TOLERANCE, pulled_on=PULLED.date()).to_pandas()
    late = diff[diff["measure"] == "late_count"].iloc[0]
    assert [d.isoformat() for d in late["days"]] == ["2026-10-20"]
    assert "held back by inputs_complete" in late["explanation"]
