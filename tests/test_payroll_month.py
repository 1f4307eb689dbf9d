"""Payroll for a Chinese finance team: overtime by class, 调休, leave by type and DingTalk's counts.

Days are derived by the real engine from hand-made DingTalk inputs (tests/hours_cases.py),
published to a real DuckDB warehouse, and summed by `finance.compute_payroll`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from attendance_pipeline import finance
from attendance_pipeline.hours.calendar import WorkCalendar
from attendance_pipeline.hours.engine import derive_effective_hours
from attendance_pipeline.hours.rules import Rules
from attendance_pipeline.schemas import EFFECTIVE_HOURS, to_table
from attendance_pipeline.warehouse import replace_rows
from tests.hours_cases import Company

OCTOBER = ("2026-10-01", "2026-10-31")


def october(*, overtime: bool = True) -> Company:
    """u1 works a normal October: every scheduled workday 09:00-18:00 on time."""
    c = Company(*OCTOBER)
    c.user("u1", name="张三")
    calendar = WorkCalendar()
    for day in pd.date_range(*OCTOBER).date:
        kind = calendar.day_type(day)
        if kind is not None and kind[0] == "workday":
            c.day(day.isoformat(), on="Normal", off="Normal")
    if overtime:
        # Workday evening (Tue 13th), a real Saturday (17th), National Day (1st, a holiday).
        c.approval(1, "2026-10-13 19:00", "2026-10-13 21:00", unit="hour", tag="加班")
        c.approval(1, "2026-10-17 10:00", "2026-10-17 14:00", unit="hour", tag="加班")
        c.approval(1, "2026-10-01 09:00", "2026-10-01 13:00", unit="hour", tag="加班")
    return c


def publish(path: Path, frame: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    replace_rows(
        con,
        "effective_hours",
        EFFECTIVE_HOURS,
        to_table(frame, EFFECTIVE_HOURS, "test"),
        "true",
        [],
    )
    return con


def payroll(
    tmp_path: Path, c: Company, rules: Rules, name: str = "w.duckdb"
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    days = derive_effective_hours(*c.frames(), rules, WorkCalendar())
    con = publish(tmp_path / name, days)
    monthly, leave = finance.compute_payroll(con, "2026-10", finance.LeavePolicy.from_rules(rules))
    assert finance.write_month(con, "2026-10", monthly, leave) == monthly.num_rows
    row = con.sql("SELECT * FROM payroll_monthly WHERE userid = 'u1'").df().iloc[0].to_dict()
    leave_rows = con.sql("SELECT * FROM payroll_leave ORDER BY leave_type").df()
    con.close()
    return row, leave_rows, days


RULES = Rules.model_validate(
    {
        "overtime": {
            "workday": {"compensation": "pay", "rate": 1.5},
            "restday": {"compensation": "lieu", "rate": 2},
            "holiday": {"compensation": "pay", "rate": 3},
        }
    }
)


def test_overtime_classes_land_in_their_columns_and_lieu_grows_the_balance(
    tmp_path: Path,
) -> None:
    row, _, days = payroll(tmp_path, october(), RULES)
    assert row["overtime_workday_hours"] == 2.0
    assert row["overtime_restday_hours"] == 4.0
    assert row["overtime_holiday_hours"] == 4.0
    assert row["overtime_hours"] == 10.0
    # Paid: the workday (1.5x) and the holiday (3x); the Saturday became 调休.
    assert row["overtime_paid_hours"] == 6.0
    assert row["overtime_pay_hours"] == 2 * 1.5 + 4 * 3
    assert row["lieu_credited_hours"] == 4.0
    assert row["lieu_balance_hours"] == 4.0
    assert row["lieu_taken_hours"] == 0.0
    # Per day, each class is on its own day.
    by_day = days.set_index("work_date")
    assert by_day.loc[date(2026, 10, 1), "overtime_holiday_hours"] == 4.0
    assert by_day.loc[date(2026, 10, 13), "overtime_workday_hours"] == 2.0
    assert by_day.loc[date(2026, 10, 17), "overtime_restday_hours"] == 4.0
    assert by_day.loc[date(2026, 10, 17), "overtime_lieu_hours"] == 4.0
    # Effective hours do not change with overtime, per day and for the month.
    plain, _, plain_days = payroll(tmp_path, october(overtime=False), RULES, "plain.duckdb")
    # October 2026: National Day until the 7th, the 10th (Saturday) a make-up workday: 18 days.
    assert row["effective_hours"] == plain["effective_hours"] == 18 * 8
    assert days["effective_hours"].tolist() == plain_days["effective_hours"].tolist()
    assert plain["lieu_balance_hours"] == 0.0


def test_the_approval_says_which_and_wins_over_the_class_default(tmp_path: Path) -> None:
    c = october(overtime=False)
    # A workday evening the employee chose 调休 for, a Saturday paid as 加班费.
    c.approval(1, "2026-10-14 19:00", "2026-10-14 22:00", unit="hour", sub_type="调休", tag="加班")
    c.approval(
        1, "2026-10-18 09:00", "2026-10-18 11:00", unit="hour", sub_type="加班费", tag="加班"
    )
    row, _, _ = payroll(tmp_path, c, RULES)
    assert row["overtime_workday_hours"] == 3.0 and row["overtime_restday_hours"] == 2.0
    assert row["lieu_credited_hours"] == 3.0
    assert row["overtime_paid_hours"] == 2.0
    assert row["overtime_pay_hours"] == 2 * 2.0


def test_lieu_taken_draws_the_balance_down_across_months(tmp_path: Path) -> None:
    c = october()  # 4 h credited on Saturday the 17th
    c.leave("2026-10-20 AM", "2026-10-20 AM", unit="halfDay", sub_type="调休")
    row, leave, _ = payroll(tmp_path, c, RULES)
    assert row["lieu_credited_hours"] == 4.0
    assert row["lieu_taken_hours"] == 4.0
    assert row["lieu_balance_hours"] == 0.0
    assert leave[["leave_type", "hours", "days"]].values.tolist() == [["调休", 4.0, 0.5]]


def test_five_leave_types_in_one_month_with_paid_shares(tmp_path: Path) -> None:
    c = october(overtime=False)
    c.leave("2026-10-12", sub_type="年假")
    c.leave("2026-10-13 AM", "2026-10-13 AM", unit="halfDay", sub_type="事假")
    c.leave("2026-10-14 14:00", "2026-10-14 18:00", unit="hour", sub_type="病假")
    c.leave("2026-10-15", "2026-10-16", sub_type="婚假")
    c.leave("2026-10-19", sub_type="丧假")
    c.leave("2026-10-20", sub_type="育儿假")  # a type rules.yaml does not list
    rules = Rules.model_validate(
        {"leave_types": {"年假": {"paid": 1}, "事假": {"paid": 0}, "病假": {"paid": 0.6},
                         "婚假": {"paid": 1}, "丧假": {"paid": 1}},
         "unlisted_leave_paid": 0.5}
    )  # fmt: skip
    row, leave, _ = payroll(tmp_path, c, rules)
    got = {r.leave_type: (r.hours, r.days, r.paid_share, r.paid_hours) for r in leave.itertuples()}
    assert got == {
        "年假": (8.0, 1.0, 1.0, 8.0),
        "事假": (4.0, 0.5, 0.0, 0.0),
        "病假": (4.0, 0.5, 0.6, 2.4),
        "婚假": (16.0, 2.0, 1.0, 16.0),
        "丧假": (8.0, 1.0, 1.0, 8.0),
        "育儿假": (8.0, 1.0, 0.5, 4.0),
    }
    assert row["leave_hours"] == 48.0
    assert row["paid_leave_hours"] == pytest.approx(38.4)
    assert row["unpaid_leave_hours"] == pytest.approx(9.6)
    assert row["lieu_taken_hours"] == 0.0


def test_late_early_missing_and_absent_counts_as_dingtalk_names_them(tmp_path: Path) -> None:
    c = Company(*OCTOBER)
    c.user("u1")
    c.day("2026-10-12", on=("Late", "09:17"), off="Normal")
    c.day("2026-10-13", on=("Late", "09:03"), off=("Early", "17:55"))
    c.day("2026-10-14", on="Normal", off="NotSigned")
    c.day("2026-10-15", on="NotSigned", off="NotSigned")
    c.day("2026-10-16", on="Normal", off="Normal")
    row, _, _ = payroll(tmp_path, c, Rules())
    assert (row["late_count"], row["late_minutes"]) == (2, 20)
    assert (row["early_leave_count"], row["early_leave_minutes"]) == (1, 5)
    assert row["missing_punch_count"] == 1
    assert row["absenteeism_days"] == 1.0
    assert row["late_days"] == 2 and row["absent_days"] == 1


def test_rerun_is_byte_identical_and_locked_months_freeze_leave_rows(tmp_path: Path) -> None:
    c = october()
    c.leave("2026-10-12", sub_type="年假")
    days = derive_effective_hours(*c.frames(), RULES, WorkCalendar())
    con = publish(tmp_path / "w.duckdb", days)
    policy = finance.LeavePolicy.from_rules(RULES)
    monthly, leave = finance.compute_payroll(con, "2026-10", policy)
    assert finance.write_month(con, "2026-10", monthly, leave) > 0
    before = con.sql("SELECT * FROM payroll_monthly").df()
    again, again_leave = finance.compute_payroll(con, "2026-10", policy)
    assert finance.write_month(con, "2026-10", again, again_leave) == 0
    pd.testing.assert_frame_equal(con.sql("SELECT * FROM payroll_monthly").df(), before)
    finance.lock_month(con, "2026-10", "财务")
    assert con.execute("SELECT bool_and(locked) FROM payroll_leave").fetchone() == (True,)
    with pytest.raises(finance.PayrollError, match="locked"):
        finance.compute_payroll(con, "2026-10", policy)
    con.close()
