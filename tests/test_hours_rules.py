"""docs/rules.md, row by row, against the reference implementation (`hours/reference.py`).

Expected numbers are worked out by hand from the rules page (default 09:00-18:00 shift with a
12:00-13:00 break: 8 scheduled hours), never read back from the implementation.
"""

from __future__ import annotations

import random
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attendance_pipeline.hours.calendar import WorkCalendar
from attendance_pipeline.hours.engine import derive_effective_hours
from attendance_pipeline.hours.reference import derive_day, derive_frame
from attendance_pipeline.hours.rules import (
    STATUSES,
    BreakTime,
    ConfigError,
    ExceptionMatch,
    ExceptionRule,
    Rules,
    load_overrides,
    load_rules,
)
from attendance_pipeline.schemas import EFFECTIVE_HOURS, to_table
from tests import hours_cases
from tests.hours_cases import Company, Pt, Shift, row_of

D = "2026-11-03"  # a Tuesday, a workday


@pytest.fixture(autouse=True, params=sorted(hours_cases.IMPLEMENTATIONS))
def implementation(request: pytest.FixtureRequest) -> Any:
    """Run every case through the reference and through the vectorised engine."""
    hours_cases.CURRENT[0] = request.param
    yield request.param
    hours_cases.CURRENT[0] = "reference"


D2 = "2026-11-04"
SATURDAY = "2026-11-07"


def one_day(**kwargs: Any) -> Company:
    """A one-week company with user u1; `kwargs` describe 2026-11-03."""
    return Company("2026-11-01", "2026-11-07").day(D, **kwargs)


def assert_row(row: dict[str, Any], **expected: Any) -> None:
    got = {key: row[key] for key in expected}
    assert got == expected, row["explanation"]


# ------------------------------------------------------------------------------ the status table

STATUS_TABLE = [
    # (on, off, status, effective hours)
    (("Normal", "08:59"), ("Normal", "18:01"), "normal", 8.0),
    (("Late", "09:17"), ("Normal", "18:02"), "late", 7.0),
    (("SeriousLate", "10:05"), ("Normal", "18:02"), "serious_late", 6.0),
    (("Normal", "08:50"), ("Early", "17:20"), "early_leave", 7.0),
    (("Late", "09:17"), ("Early", "17:20"), "late_and_early", 6.0),
    (("SeriousLate", "10:05"), ("Early", "17:20"), "late_and_early", 6.0),
    ("NotSigned", ("Normal", "18:02"), "missing_punch", 4.0),
    (("Normal", "08:58"), "NotSigned", "missing_punch", 4.0),
    (("Late", "09:30"), "NotSigned", "missing_punch", 4.0),
    ("NotSigned", ("Early", "17:00"), "missing_punch", 4.0),
    (("Absenteeism", "11:30"), ("Normal", "18:02"), "absent", 0.0),
    ("Absenteeism", "NotSigned", "absent", 0.0),
    ("NotSigned", "NotSigned", "absent", 0.0),
]


@pytest.mark.parametrize(("on", "off", "status", "hours"), STATUS_TABLE)
def test_every_judged_status_of_the_table(on, off, status, hours):
    row = one_day(on=on, off=off).row(D)
    assert_row(
        row,
        status=status,
        effective_hours=hours,
        scheduled_hours=8.0,
        leave_hours=0.0,
        rule_id=status,
        countable=hours > 0,
        day_type="workday",
        calendar_source="chinese_calendar",
    )
    assert status in row["explanation"] and f"(rule {status})" in row["explanation"]


def test_rest_day_without_check_points():
    row = Company("2026-11-01", "2026-11-07").user("u1").row(SATURDAY)
    assert_row(
        row,
        status="rest",
        effective_hours=0.0,
        scheduled_hours=0.0,
        countable=False,
        rule_id="rest",
        day_type="restday",
    )
    assert "rest day" in row["explanation"]


@pytest.mark.parametrize("points", ["approved", "not_signed"])
def test_full_day_leave(points):
    company = Company("2026-11-01", "2026-11-07").leave(D, sub_type="年假")
    if points == "approved":  # how DingTalk reports a covered day
        company.day(
            D,
            on=Pt("Normal", source="APPROVE", approve_id="ap001"),
            off=Pt("Normal", source="APPROVE", approve_id="ap001"),
        )
    else:
        company.day(D, on="NotSigned", off="NotSigned")
    row = company.row(D)
    assert_row(
        row,
        status="leave",
        effective_hours=0.0,
        leave_hours=8.0,
        scheduled_hours=8.0,
        rule_id="leave",
    )
    assert "年假 (day) 8 h" in row["explanation"]


def test_multi_day_leave_covers_each_day():
    company = Company("2026-11-01", "2026-11-07").leave("2026-11-03", "2026-11-05", sub_type="病假")
    for d in ("2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06"):
        company.day(d, on="NotSigned", off="NotSigned")
    frame = company.derive()
    for d in ("2026-11-03", "2026-11-04", "2026-11-05"):
        assert_row(row_of(frame, d), status="leave", effective_hours=0.0, leave_hours=8.0)
    assert_row(row_of(frame, "2026-11-06"), status="absent", leave_hours=0.0)


def test_full_day_trip_earns_business_trip_hours():
    company = Company("2026-11-01", "2026-11-07").trip(D).day(D, on="NotSigned", off="NotSigned")
    assert_row(
        company.row(D),
        status="business_trip",
        effective_hours=8.0,
        trip_hours=8.0,
        leave_hours=0.0,
        rule_id="business_trip",
        countable=True,
    )


def test_override_wins_on_a_normal_day_and_keeps_the_other_hours():
    company = one_day().override(D, 5, reason="补录 system outage", author="王经理")
    company.overtime(f"{D} 19:00", f"{D} 21:00")
    row = company.row(D)
    assert_row(
        row,
        status="override",
        effective_hours=5.0,
        rule_id="override",
        scheduled_hours=8.0,
        overtime_hours=2.0,
        countable=True,
    )
    assert "override 5 h by 王经理: 补录 system outage" in row["explanation"]


@pytest.mark.parametrize(
    ("build", "leave", "trip"),
    [
        (lambda c: c.day(D, on=("Late", "09:40"), off=("Early", "16:00")), 0.0, 0.0),
        (lambda c: c.leave(D).day(D, on="NotSigned", off="NotSigned"), 8.0, 0.0),
        (lambda c: c.trip(D).day(D), 0.0, 8.0),
        (lambda c: c.day(D, on="Absenteeism", off="NotSigned"), 0.0, 0.0),
        (lambda c: c.user("u1"), 0.0, 0.0),  # a rest day
    ],
)
def test_override_wins_over_everything(build, leave, trip):
    company = Company("2026-11-01", "2026-11-07")
    build(company)
    company.override(D, 6.5)
    assert_row(
        company.row(D),
        status="override",
        effective_hours=6.5,
        rule_id="override",
        leave_hours=leave,
        trip_hours=trip,
    )


def test_override_of_zero_hours_is_not_countable():
    row = one_day().override(D, 0, reason="unpaid day off agreed").row(D)
    assert_row(row, status="override", effective_hours=0.0, countable=False)


def test_override_without_roster_row_makes_no_row():
    company = Company("2026-11-01", "2026-11-07").user("u1").override("2026-11-20", 8)
    assert len(company.derive()) == 7


# ------------------------------------------------------------------------- approval-backed points


@pytest.mark.parametrize(
    ("point", "hours"),
    [
        (Pt("NotSigned", proc_inst_id="a1b2c3-proc"), 8.0),
        (Pt("NotSigned", approve_id="4850378c0ee83"), 8.0),
        (Pt("Normal", "09:05", source="APPROVE"), 8.0),  # a 补卡 make-up punch
        (Pt("Late", "09:17", approve_id="4850378c0ee83"), 8.0),
        (Pt("SeriousLate", "10:30", source="APPROVE"), 8.0),
        (Pt("Absenteeism", "11:30", proc_inst_id="p"), 8.0),
        (Pt("Late", "09:17", source="BOSS"), 7.0),  # a manager's edit is not an approval
        (Pt("Late", "09:17", approve_id="", proc_inst_id=""), 7.0),  # empty is not set
    ],
)
def test_approval_backed_point_counts_as_normal(point, hours):
    row = one_day(on=point).row(D)
    assert row["effective_hours"] == hours, row["explanation"]
    if hours == 8.0:
        assert row["status"] == "normal"


def test_approval_backed_offduty():
    row = one_day(off=Pt("Early", "16:30", approve_id="x")).row(D)
    assert_row(row, status="normal", effective_hours=8.0)


def test_make_up_punch_approval_itself_is_ignored():
    # A 补卡 (biz_type 4) or field work (5) approval does nothing by itself: only the check
    # point it rewrote counts.
    company = one_day(on="NotSigned").approval(
        4, f"{D} 09:00", f"{D} 09:00", unit="hour", tag="补卡"
    )
    company.approval(5, D, unit="day", tag="外勤")
    assert_row(company.row(D), status="missing_punch", effective_hours=4.0, leave_hours=0.0)


# ------------------------------------------------------------------------------ half-day leave


def test_half_day_leave_am_covers_the_onduty_point():
    company = one_day(on="NotSigned").leave(f"{D} AM", f"{D} AM", unit="halfDay", sub_type="事假")
    row = company.row(D)
    assert_row(row, status="normal", leave_hours=4.0, effective_hours=4.0, rule_id="normal")
    assert "4 h leave → 4 h" in row["explanation"]


def test_half_day_leave_pm_covers_the_offduty_point():
    company = one_day(off="NotSigned").leave(f"{D} PM", f"{D} PM", unit="halfDay")
    assert_row(company.row(D), status="normal", leave_hours=4.0, effective_hours=4.0)


def test_half_day_leave_am_does_not_cover_the_offduty_point():
    company = one_day(on="NotSigned", off=("Early", "17:00"))
    company.leave(f"{D} AM", f"{D} AM", unit="halfDay")
    # OnDuty forgiven, OffDuty Early still counts: early_leave 7 − 4 h leave.
    assert_row(company.row(D), status="early_leave", leave_hours=4.0, effective_hours=3.0)


def test_half_day_am_to_pm_is_the_whole_day():
    company = one_day(on="NotSigned", off="NotSigned").leave(f"{D} AM", f"{D} PM", unit="halfDay")
    assert_row(company.row(D), status="leave", leave_hours=8.0, effective_hours=0.0)


def test_half_day_spanning_two_days():
    company = Company("2026-11-01", "2026-11-07").leave(f"{D} PM", f"{D2} AM", unit="halfDay")
    company.day(D, on=("Normal", "08:55"), off="NotSigned")
    company.day(D2, on="NotSigned", off=("Normal", "18:10"))
    frame = company.derive()
    assert_row(row_of(frame, D), status="normal", leave_hours=4.0, effective_hours=4.0)
    assert_row(row_of(frame, D2), status="normal", leave_hours=4.0, effective_hours=4.0)


def test_half_day_spanning_three_days_covers_the_middle_day_whole():
    company = Company("2026-11-01", "2026-11-07").leave(f"{D} PM", "2026-11-05 AM", unit="halfDay")
    company.day(D, off="NotSigned").day(D2, on="NotSigned", off="NotSigned")
    company.day("2026-11-05", on="NotSigned")
    frame = company.derive()
    assert_row(row_of(frame, D), effective_hours=4.0, leave_hours=4.0)
    assert_row(row_of(frame, D2), status="leave", effective_hours=0.0, leave_hours=8.0)
    assert_row(row_of(frame, "2026-11-05"), effective_hours=4.0, leave_hours=4.0)


def test_half_day_is_half_of_the_scheduled_time():
    # A short day (09:00-15:00, 5 scheduled hours): half a day is 2.5 h.
    company = Company("2026-11-01", "2026-11-07").leave(f"{D} PM", f"{D} PM", unit="halfDay")
    company.day(D, shifts=[Shift(("Normal", "08:50"), "NotSigned", "09:00", "15:00")])
    assert_row(
        company.row(D), scheduled_hours=5.0, leave_hours=2.5, status="normal", effective_hours=2.5
    )


# ------------------------------------------------------------------------------ hourly leave


@pytest.mark.parametrize(
    ("begin", "end", "leave", "effective"),
    [
        ("11:00", "14:00", 2.0, 6.0),  # across the break: 3 h − 1 h break
        ("12:00", "13:00", 0.0, 8.0),  # only the break
        ("16:00", "18:00", 2.0, 6.0),  # touching the end
        ("14:00", "15:10", 1.0, 7.0),  # 1.1667 → 1.0
        ("14:00", "15:15", 1.5, 6.5),  # 1.25 → 1.5 (halves round up)
        ("14:00", "15:20", 1.5, 6.5),  # 1.3333 → 1.5
        ("14:00", "14:10", 0.0, 8.0),  # 0.1667 → 0
        ("14:00", "14:15", 0.5, 7.5),  # 0.25 → 0.5
        ("14:00", "15:44", 1.5, 6.5),  # 1.7333 → 1.5
        ("14:00", "15:45", 2.0, 6.0),  # 1.75 → 2.0
        ("07:00", "10:00", 1.0, 7.0),  # only the part inside the shift
        ("17:00", "20:00", 1.0, 7.0),
        ("18:00", "20:00", 0.0, 8.0),  # outside the shift
        ("08:00", "19:00", 8.0, 0.0),  # the whole shift: status leave
    ],
)
def test_hourly_leave(begin, end, leave, effective):
    company = one_day().leave(f"{D} {begin}", f"{D} {end}", unit="hour", sub_type="事假")
    row = company.row(D)
    assert_row(row, leave_hours=leave, effective_hours=effective)
    assert row["status"] == ("leave" if leave == 8.0 else "normal")


@pytest.mark.parametrize("off", [("Early", "16:00"), "NotSigned"])
def test_hourly_leave_touching_the_end_covers_the_offduty_point(off):
    company = one_day(off=off).leave(f"{D} 16:00", f"{D} 18:00", unit="hour")
    assert_row(company.row(D), status="normal", leave_hours=2.0, effective_hours=6.0)


def test_hourly_leave_ending_before_the_offduty_point_does_not_cover_it():
    company = one_day(off=("Early", "16:00")).leave(f"{D} 16:00", f"{D} 17:59", unit="hour")
    # 1.98 h → 2.0, but the 18:00 OffDuty point is outside [16:00, 17:59]: early_leave 7 − 2.
    assert_row(company.row(D), status="early_leave", leave_hours=2.0, effective_hours=5.0)


def test_hourly_leave_covering_the_onduty_point_forgives_lateness():
    company = one_day(on=("Late", "11:02")).leave(f"{D} 09:00", f"{D} 11:00", unit="hour")
    assert_row(company.row(D), status="normal", leave_hours=2.0, effective_hours=6.0)


def test_hourly_leave_point_boundaries_are_both_included():
    # The leave ends exactly at the OffDuty base time: the point is covered though 0 h are.
    company = one_day(off="NotSigned").leave(f"{D} 18:00", f"{D} 20:00", unit="hour")
    assert_row(company.row(D), status="normal", leave_hours=0.0, effective_hours=8.0)


def test_several_hourly_leaves_are_rounded_each_then_summed():
    company = one_day()
    company.leave(f"{D} 09:00", f"{D} 09:15", unit="hour")  # 0.25 → 0.5
    company.leave(f"{D} 14:00", f"{D} 14:15", unit="hour")  # 0.25 → 0.5
    assert_row(company.row(D), leave_hours=1.0, effective_hours=7.0)


def test_leave_hours_are_capped_at_the_scheduled_hours():
    company = one_day(on="NotSigned", off="NotSigned").leave(D)
    company.leave(f"{D} 09:00", f"{D} 12:00", unit="hour")
    assert_row(company.row(D), status="leave", leave_hours=8.0, effective_hours=0.0)


def test_hour_leave_rounding_step_comes_from_the_rules():
    rules = Rules(hour_leave_rounding=0.25)
    company = one_day().leave(f"{D} 14:00", f"{D} 15:10", unit="hour")
    # 1.1667 → 1.25 at a quarter-hour step.
    assert_row(company.row(D, rules=rules), leave_hours=1.25, effective_hours=6.75)


def test_break_comes_from_the_rules():
    rules = Rules.model_validate({"break": BreakTime(start=time(11, 30), end=time(13, 0))})
    company = one_day().leave(f"{D} 11:00", f"{D} 14:00", unit="hour")
    # Scheduled 9 h − 1.5 h break = 7.5 h; leave 3 h − 1.5 h = 1.5 h; normal 8 × 7.5/8 − 1.5.
    assert_row(
        company.row(D, rules=rules), scheduled_hours=7.5, leave_hours=1.5, effective_hours=6.0
    )


# ------------------------------------------------------------------------------ trips


def test_partial_trip_backs_the_points_it_covers_without_deduction():
    company = one_day(off="NotSigned").trip(f"{D} 14:00", f"{D} 18:00", unit="hour", tag="外出")
    assert_row(
        company.row(D), status="normal", trip_hours=4.0, leave_hours=0.0, effective_hours=8.0
    )


def test_partial_trip_does_not_forgive_points_it_does_not_cover():
    company = one_day(on=("Late", "09:30")).trip(f"{D} 14:00", f"{D} 18:00", unit="hour")
    assert_row(company.row(D), status="late", trip_hours=4.0, effective_hours=7.0)


def test_half_leave_and_half_trip_is_a_trip_minus_the_leave():
    company = one_day(on="NotSigned", off="NotSigned")
    company.leave(f"{D} AM", f"{D} AM", unit="halfDay").trip(f"{D} PM", f"{D} PM", unit="halfDay")
    row = company.row(D)
    assert_row(
        row,
        status="business_trip",
        leave_hours=4.0,
        trip_hours=4.0,
        effective_hours=4.0,
        rule_id="business_trip",
    )
    assert "4 h leave → 4 h" in row["explanation"]


def test_leave_that_covers_the_day_wins_over_a_trip():
    company = one_day(on="NotSigned", off="NotSigned").leave(D).trip(D)
    assert_row(company.row(D), status="leave", leave_hours=8.0, trip_hours=8.0, effective_hours=0.0)


def test_trip_with_hourly_leave():
    company = one_day().trip(D).leave(f"{D} 16:00", f"{D} 18:00", unit="hour")
    assert_row(
        company.row(D), status="business_trip", trip_hours=8.0, leave_hours=2.0, effective_hours=6.0
    )


def test_trip_on_a_day_without_scheduled_hours_is_not_a_trip_day():
    # A lone OnDuty point: scheduled 0 h, so a whole-day trip covers 0 h (rules.md 4 needs
    # scheduled_hours > 0 and trip_hours > 0).
    company = Company("2026-11-01", "2026-11-07").trip(D).point(D, "OnDuty", "NotSigned", "09:00")
    assert_row(
        company.row(D), status="normal", scheduled_hours=0.0, trip_hours=0.0, effective_hours=0.0
    )


# ------------------------------------------------------------------------------ overtime


def test_overtime_on_a_rest_day():
    company = Company("2026-11-01", "2026-11-07").overtime(f"{SATURDAY} 10:00", f"{SATURDAY} 16:30")
    row = company.row(SATURDAY)
    assert_row(
        row,
        status="rest",
        effective_hours=0.0,
        overtime_hours=6.5,
        countable=False,
        day_type="restday",
    )
    assert "overtime 6.5 h" in row["explanation"]


def test_overtime_on_a_workday_evening_is_kept_apart():
    company = one_day(off=("Normal", "21:35")).overtime(f"{D} 19:00", f"{D} 21:30")
    assert_row(company.row(D), status="normal", effective_hours=8.0, overtime_hours=2.5)


def test_overtime_counts_only_on_its_start_day():
    company = Company("2026-11-01", "2026-11-07").day(D).day(D2)
    company.overtime(f"{D} 22:00", f"{D} 25:30")  # until 01:30 the next day: 3.5 h, no break
    approvals = company.frames()[2]
    assert set(approvals["work_date"]) == {date(2026, 11, 3), date(2026, 11, 4)}
    frame = company.derive()
    assert_row(row_of(frame, D), overtime_hours=3.5, effective_hours=8.0)
    assert_row(row_of(frame, D2), overtime_hours=0.0, effective_hours=8.0)


@pytest.mark.parametrize(
    ("begin", "end", "unit", "hours"),
    [
        (f"{D} 12:00", f"{D} 13:10", "hour", 1.0),  # no break deduction; 1.1667 → 1.0
        (f"{D} 19:00", f"{D} 19:45", "hour", 1.0),  # 0.75 → 1.0
        (f"{D} PM", f"{D} PM", "halfDay", 4.0),
        (f"{D} AM", f"{D2} AM", "halfDay", 12.0),  # three halves, all on the start day
        (D, D2, "day", 16.0),
    ],
)
def test_overtime_by_unit(begin, end, unit, hours):
    company = one_day().overtime(begin, end, unit=unit)
    assert_row(company.row(D), overtime_hours=hours, effective_hours=8.0, leave_hours=0.0)


def test_overtime_never_covers_check_points():
    company = one_day(off=("Early", "17:00")).overtime(f"{D} 17:00", f"{D} 19:00")
    assert_row(company.row(D), status="early_leave", effective_hours=7.0, overtime_hours=2.0)


# ------------------------------------------------------------------------- exceptions (例外规则)

EXCEPTIONS = Rules(
    exceptions=(
        ExceptionRule(
            id="field-sales", match=ExceptionMatch(dept_ids=(20,)), status_hours={"late": 8}
        ),
        ExceptionRule(
            id="sales-managers",
            match=ExceptionMatch(titles=("销售经理",)),
            status_hours={"late": 8, "serious_late": 7.5},
        ),
        ExceptionRule(
            id="u7-late", match=ExceptionMatch(userids=("u7",)), status_hours={"late": 8}
        ),
        ExceptionRule(
            id="drivers", match=ExceptionMatch(titles=("司机",)), status_hours={"early_leave": 8}
        ),
        ExceptionRule(
            id="u8-late", match=ExceptionMatch(userids=("u8",)), status_hours={"late": 8}
        ),
    )
)


@pytest.mark.parametrize(
    ("userid", "dept_ids", "title", "on", "off", "status", "hours", "rule_id"),
    [
        (
            "u2",
            (30, 20),
            "工程师",
            ("Late", "09:20"),
            ("Normal", "18:00"),
            "late",
            8.0,
            "field-sales",
        ),
        (
            "u3",
            (31,),
            "销售经理",
            ("Late", "09:20"),
            ("Normal", "18:00"),
            "late",
            8.0,
            "sales-managers",
        ),
        (
            "u3",
            (31,),
            "销售经理",
            ("SeriousLate", "10:20"),
            ("Normal", "18:00"),
            "serious_late",
            7.5,
            "sales-managers",
        ),
        ("u7", (31,), "工程师", ("Late", "09:20"), ("Normal", "18:00"), "late", 8.0, "u7-late"),
        # The exception matches but does not set this status: the table's hours, rule = status.
        (
            "u2",
            (20,),
            "工程师",
            ("Normal", "09:00"),
            ("Early", "17:00"),
            "early_leave",
            7.0,
            "early_leave",
        ),
        ("u7", (31,), "工程师", ("Normal", "09:00"), ("Normal", "18:00"), "normal", 8.0, "normal"),
        # The first matching exception is the employee's; a later one is not consulted.
        ("u8", (31,), "司机", ("Late", "09:20"), ("Normal", "18:00"), "late", 7.0, "late"),
        (
            "u8",
            (31,),
            "司机",
            ("Normal", "09:00"),
            ("Early", "17:00"),
            "early_leave",
            8.0,
            "drivers",
        ),
        # No exception matches.
        ("u9", (31,), "工程师", ("Late", "09:20"), ("Normal", "18:00"), "late", 7.0, "late"),
    ],
)
def test_exceptions(userid, dept_ids, title, on, off, status, hours, rule_id):
    company = Company("2026-11-01", "2026-11-07").user(userid, dept_ids=dept_ids, title=title)
    company.day(D, on=on, off=off, user=userid)
    row = company.row(D, userid, rules=EXCEPTIONS)
    assert_row(row, status=status, effective_hours=hours, rule_id=rule_id, dept_id=dept_ids[0])
    assert f"(rule {rule_id})" in row["explanation"]


def test_exception_for_trip_hours_with_partial_leave():
    rules = Rules(
        exceptions=(
            ExceptionRule(
                id="abroad",
                match=ExceptionMatch(dept_ids=(40,)),
                status_hours={"business_trip": 10},
            ),
        )
    )
    company = Company("2026-11-01", "2026-11-07").user("u1", dept_ids=(40,))
    company.day(D, on="NotSigned", off="NotSigned").trip(f"{D} PM", f"{D} PM", unit="halfDay")
    company.leave(f"{D} AM", f"{D} AM", unit="halfDay")
    assert_row(
        company.row(D, rules=rules), status="business_trip", effective_hours=6.0, rule_id="abroad"
    )


def test_configured_status_hours():
    rules = Rules(status_hours={"late": 7.5, "missing_punch": 0})
    frame = (
        Company("2026-11-01", "2026-11-07")
        .day(D, on=("Late", "09:10"))
        .day(D2, on="NotSigned")
        .derive(rules)
    )
    assert_row(row_of(frame, D), status="late", effective_hours=7.5)
    assert_row(row_of(frame, D2), status="missing_punch", effective_hours=0.0, countable=False)


# ------------------------------------------------------------------------------ calendar


@pytest.mark.parametrize(
    ("day", "points", "day_type", "status", "hours"),
    [
        ("2026-10-10", True, "workday", "normal", 8.0),  # 调休 make-up Saturday
        ("2026-10-10", False, "workday", "rest", 0.0),  # no scheduled points: still rest
        ("2026-10-01", False, "holiday", "rest", 0.0),  # National Day
        ("2026-10-01", True, "holiday", "normal", 8.0),  # scheduled on a holiday: hours count
        ("2026-10-03", False, "holiday", "rest", 0.0),
        ("2026-11-07", True, "restday", "late", 7.0),
    ],
)
def test_hours_never_depend_on_the_calendar_alone(day, points, day_type, status, hours):
    company = Company("2026-09-28", "2026-11-08").user("u1")
    if points:
        company.day(day, on=("Late", "09:20") if status == "late" else ("Normal", "08:50"))
    assert_row(
        company.row(day),
        day_type=day_type,
        calendar_source="chinese_calendar",
        status=status,
        effective_hours=hours,
    )


def test_year_without_any_calendar_falls_back_to_dingtalk_schedule():
    company = Company("2027-01-01", "2027-01-10").day("2027-01-05")
    frame = company.derive()
    assert_row(
        row_of(frame, "2027-01-05"),
        day_type="workday",
        calendar_source="dingtalk_schedule",
        status="normal",
        effective_hours=8.0,
    )
    for d in ("2027-01-01", "2027-01-04", "2027-01-09"):
        assert_row(
            row_of(frame, d), day_type="restday", calendar_source="dingtalk_schedule", status="rest"
        )


def test_year_covered_by_calendar_csv(tmp_path: Path):
    csv = tmp_path / "calendar.csv"
    csv.write_text(
        "date,kind,name\n2027-01-01,holiday,元旦\n2027-01-09,workday,调休\n", encoding="utf-8"
    )
    calendar = WorkCalendar.load(csv)
    company = Company("2027-01-01", "2027-01-10").day("2027-01-05").day("2027-01-10")
    frame = company.derive(calendar=calendar)
    expected = {
        "2027-01-01": ("holiday", "rest"),  # listed
        "2027-01-04": ("workday", "rest"),  # weekday not listed: workday, but no points
        "2027-01-05": ("workday", "normal"),
        "2027-01-09": ("workday", "rest"),  # listed make-up Saturday without points
        "2027-01-10": ("restday", "normal"),  # a Sunday not listed, with scheduled points
    }
    for d, (day_type, status) in expected.items():
        assert_row(
            row_of(frame, d), day_type=day_type, calendar_source="calendar.csv", status=status
        )


# ------------------------------------------------------------------------------ exempt

OWNERS = ExceptionRule(
    id="owners",
    match=ExceptionMatch(titles=("总经理",)),
    status_hours={"exempt": 10},
)


def exempt_week(first: str = "2026-11-01", last: str = "2026-11-07", **user: Any) -> Company:
    """u1 in no attendance group (null `attendance_group_id`), nothing else declared."""
    return Company(first, last).user("u1", exempt=True, **user)


def test_exempt_workday_earns_the_standard_day():
    row = exempt_week().row(D)
    assert_row(
        row,
        status="exempt",
        effective_hours=8.0,
        scheduled_hours=8.0,
        leave_hours=0.0,
        trip_hours=0.0,
        countable=True,
        rule_id="exempt",
        day_type="workday",
        calendar_source="chinese_calendar",
    )
    assert row["explanation"] == (
        "in no attendance group (does not punch) → exempt → 8 h (rule exempt)"
    )


@pytest.mark.parametrize(
    ("day", "day_type", "hours"),
    [
        ("2026-11-07", "restday", 0.0),  # Saturday
        ("2026-11-08", "restday", 0.0),  # Sunday
        ("2026-10-01", "holiday", 0.0),  # National Day
        ("2026-10-10", "workday", 8.0),  # 调休 make-up Saturday
        ("2026-09-30", "workday", 8.0),  # Wednesday before the holiday
    ],
)
def test_exempt_hours_follow_the_statutory_calendar(day, day_type, hours):
    row = exempt_week("2026-09-28", "2026-11-08").row(day)
    assert_row(
        row,
        status="exempt",
        effective_hours=hours,
        scheduled_hours=hours,
        day_type=day_type,
        calendar_source="chinese_calendar",
        rule_id="exempt",
        countable=hours > 0,
    )
    if day_type != "workday":
        assert row["explanation"] == (
            f"in no attendance group (does not punch); not a workday ({day_type}) "
            "→ exempt → 0 h (rule exempt)"
        )


@pytest.mark.parametrize(
    ("begin", "end", "unit", "leave"),
    [
        (f"{D} AM", f"{D} AM", "halfDay", 4.0),
        (f"{D} PM", f"{D} PM", "halfDay", 4.0),
        (f"{D} 14:00", f"{D} 16:00", "hour", 2.0),
        (f"{D} 11:00", f"{D} 14:00", "hour", 2.0),  # the break is not leave
        (f"{D} 17:00", f"{D} 20:00", "hour", 1.0),  # only the overlap with 09:00-18:00
        (f"{D} 09:10", f"{D} 10:20", "hour", 1.0),  # 1 h 10 min rounds to 1 h (step 0.5)
        (f"{D} 09:10", f"{D} 10:25", "hour", 1.5),  # 1.25 h: halves round up
    ],
)
def test_exempt_partial_leave_is_deducted_from_the_standard_day(begin, end, unit, leave):
    row = exempt_week().leave(begin, end, unit=unit, sub_type="事假").row(D)
    assert_row(
        row,
        status="exempt",
        scheduled_hours=8.0,
        leave_hours=leave,
        effective_hours=8.0 - leave,
        rule_id="exempt",
    )
    assert row["explanation"].endswith(
        f"→ exempt 8 h − {leave:g} h leave → {8 - leave:g} h (rule exempt)"
    ), row["explanation"]
    assert row["explanation"].startswith(
        f"in no attendance group (does not punch); leave 事假 ({unit}) {leave:g} h of 8 h"
    )


def test_exempt_full_day_leave_is_leave():
    company = exempt_week().leave("2026-11-03", "2026-11-04", sub_type="年假")
    company.leave("2026-11-05 AM", "2026-11-05 PM", unit="halfDay")
    frame = company.derive()
    for d in ("2026-11-03", "2026-11-04", "2026-11-05"):
        assert_row(
            row_of(frame, d),
            status="leave",
            effective_hours=0.0,
            leave_hours=8.0,
            scheduled_hours=8.0,
            rule_id="leave",
            countable=False,
        )
    assert row_of(frame, D)["explanation"] == (
        "in no attendance group (does not punch); leave 年假 (day) 8 h of 8 h scheduled "
        "→ leave → 0 h (rule leave)"
    )
    # The leave runs over a Saturday: nothing scheduled, nothing deducted.
    weekend = exempt_week().leave("2026-11-06", "2026-11-07").derive()
    assert_row(row_of(weekend, "2026-11-07"), status="exempt", leave_hours=0.0, effective_hours=0.0)


def test_exempt_trip_is_a_business_trip():
    company = exempt_week().trip(D).trip("2026-11-04 AM", unit="halfDay")
    company.leave("2026-11-04 PM", unit="halfDay")
    frame = company.derive()
    assert_row(row_of(frame, D), status="business_trip", effective_hours=8.0, trip_hours=8.0)
    assert_row(
        row_of(frame, "2026-11-04"),
        status="business_trip",
        trip_hours=4.0,
        leave_hours=4.0,
        effective_hours=4.0,
    )
    # A trip on a rest day is no trip day: nothing is scheduled.
    saturday = exempt_week().trip(SATURDAY).row(SATURDAY)
    assert_row(saturday, status="exempt", effective_hours=0.0, trip_hours=0.0)


def test_exempt_overtime_is_still_counted():
    company = exempt_week().overtime(f"{SATURDAY} 10:00", f"{SATURDAY} 14:30")
    company.overtime(f"{D} 19:00", f"{D} 21:00")
    frame = company.derive()
    saturday = row_of(frame, SATURDAY)
    assert_row(saturday, status="exempt", effective_hours=0.0, overtime_hours=4.5)
    assert "overtime 4.5 h" in saturday["explanation"]
    assert_row(row_of(frame, D), status="exempt", effective_hours=8.0, overtime_hours=2.0)


def test_an_override_wins_over_exempt():
    company = exempt_week().override(D, 5).override(SATURDAY, 3).leave("2026-11-04")
    company.override("2026-11-04", 2)
    frame = company.derive()
    assert_row(row_of(frame, D), status="override", effective_hours=5.0, rule_id="override")
    assert row_of(frame, D)["explanation"] == (
        "override 5 h by 王经理: 补录 system outage → override → 5 h (rule override)"
    )
    assert_row(row_of(frame, SATURDAY), status="override", effective_hours=3.0)
    assert_row(row_of(frame, "2026-11-04"), status="override", effective_hours=2.0, leave_hours=8.0)


def test_exceptions_may_set_exempt_hours():
    rules = Rules(exceptions=(OWNERS,))
    company = exempt_week(title="总经理").user("u2", exempt=True)
    company.leave(f"{D2} AM", unit="halfDay")
    frame = company.derive(rules)
    assert_row(row_of(frame, D), status="exempt", effective_hours=10.0, rule_id="owners")
    assert row_of(frame, D)["explanation"].endswith("→ exempt → 10 h (rule owners)")
    assert_row(row_of(frame, D2), status="exempt", effective_hours=6.0, rule_id="owners")
    # Rest days earn nothing whatever the exempt hours; the exception set no hours used.
    assert_row(row_of(frame, SATURDAY), status="exempt", effective_hours=0.0, rule_id="exempt")
    # Someone the exception does not match keeps the base rules.
    assert_row(row_of(frame, D, "u2"), status="exempt", effective_hours=8.0, rule_id="exempt")


def test_configured_exempt_hours_and_their_default():
    assert Rules().status_hours["exempt"] == 8
    shorter = Rules(standard_day_hours=7.5)
    assert shorter.status_hours["exempt"] == 7.5
    frame = exempt_week().leave(f"{D2} PM", unit="halfDay").derive(shorter)
    assert_row(row_of(frame, D), status="exempt", effective_hours=7.5, scheduled_hours=7.5)
    assert_row(row_of(frame, D2), effective_hours=3.75, leave_hours=3.75, scheduled_hours=7.5)
    fixed = Rules(standard_day_hours=7.5, status_hours={"exempt": 6})
    assert_row(exempt_week().row(D, rules=fixed), effective_hours=6.0, scheduled_hours=7.5)


def test_exempt_check_points_are_not_read():
    # Someone in no attendance group has no schedule; stray check points change nothing.
    company = exempt_week().day(D, on=("Late", "09:40"), off="NotSigned").day(SATURDAY)
    frame = company.derive()
    assert_row(row_of(frame, D), status="exempt", effective_hours=8.0, scheduled_hours=8.0)
    assert_row(row_of(frame, SATURDAY), status="exempt", effective_hours=0.0)


def test_exempt_is_per_roster_day():
    # u1 joins an attendance group on Wednesday: exempt before, judged by the punches after.
    company = exempt_week().user("u2").day(D, on=("Late", "09:20")).day(D2, on=("Late", "09:20"))
    company.day(D, user="u2", on=("Late", "09:20"))
    roster, attendance, approvals, overrides = company.frames()
    joined = (roster["userid"] == "u1") & (roster["snapshot_date"] >= date(2026, 11, 4))
    roster.loc[joined, "attendance_group_id"] = 9001
    derive = hours_cases.IMPLEMENTATIONS[hours_cases.CURRENT[0]]
    frame = derive(roster, attendance, approvals, overrides, Rules(), WorkCalendar())
    assert_row(row_of(frame, D), status="exempt", effective_hours=8.0)
    assert_row(row_of(frame, D2), status="late", effective_hours=7.0)
    assert_row(row_of(frame, "2026-11-05"), status="rest", effective_hours=0.0)
    assert_row(row_of(frame, D, "u2"), status="late", effective_hours=7.0)


def test_roster_without_the_attendance_group_column_has_nobody_exempt():
    # Stored roster partitions from before the column: today's behaviour.
    company = Company("2026-11-01", "2026-11-07", attendance_groups=False).user("u1", exempt=True)
    roster = company.frames()[0]
    assert "attendance_group_id" not in roster.columns
    row = company.row(D)
    assert_row(row, status="rest", effective_hours=0.0, rule_id="rest")
    assert "rest day (no scheduled check points)" in row["explanation"]


def test_exempt_without_any_calendar_takes_monday_to_friday():
    company = (
        Company("2027-01-01", "2027-01-10").user("u1", exempt=True).day("2027-01-05", user="u2")
    )
    frame = company.derive()
    note = "no calendar covers the date: Monday–Friday are workdays"
    for d, day_type, hours in (
        ("2027-01-01", "workday", 8.0),  # a Friday: no calendar says it is 元旦
        ("2027-01-05", "workday", 8.0),
        ("2027-01-09", "restday", 0.0),
    ):
        row = row_of(frame, d)
        assert_row(
            row,
            status="exempt",
            day_type=day_type,
            calendar_source="weekdays",
            effective_hours=hours,
        )
        assert note in row["explanation"]
    assert row_of(frame, "2027-01-05")["explanation"] == (
        f"in no attendance group (does not punch); {note} → exempt → 8 h (rule exempt)"
    )
    # Punching colleagues keep DingTalk's schedule as the fallback.
    assert_row(
        row_of(frame, "2027-01-05", "u2"),
        status="normal",
        calendar_source="dingtalk_schedule",
        day_type="workday",
    )


def test_exempt_follows_calendar_csv(tmp_path: Path):
    csv = tmp_path / "calendar.csv"
    csv.write_text(
        "date,kind,name\n2027-01-01,holiday,元旦\n2027-01-09,workday,调休\n", encoding="utf-8"
    )
    frame = (
        Company("2027-01-01", "2027-01-10")
        .user("u1", exempt=True)
        .derive(calendar=WorkCalendar.load(csv))
    )
    for d, day_type, hours in (
        ("2027-01-01", "holiday", 0.0),
        ("2027-01-04", "workday", 8.0),
        ("2027-01-09", "workday", 8.0),
        ("2027-01-10", "restday", 0.0),
    ):
        assert_row(
            row_of(frame, d),
            status="exempt",
            day_type=day_type,
            calendar_source="calendar.csv",
            effective_hours=hours,
        )


# ------------------------------------------------------------------------------ roster


def test_user_hired_mid_month_has_rows_from_the_hire_date_only():
    company = Company("2026-11-01", "2026-11-30").user("u1").user("u2", hired="2026-11-10")
    company.day("2026-11-05", user="u2")  # stray data before the hire date
    company.day("2026-11-10", user="u2")
    frame = company.derive()
    u2 = frame[frame["userid"] == "u2"]
    assert len(u2) == 21 and min(u2["work_date"]) == date(2026, 11, 10)
    assert len(frame[frame["userid"] == "u1"]) == 30
    assert_row(row_of(frame, "2026-11-10", "u2"), status="normal", effective_hours=8.0)


def test_inactive_roster_rows_make_no_rows():
    company = (
        Company("2026-11-01", "2026-11-07").user("u1").user("u2", active=False).day(D, user="u2")
    )
    assert set(company.derive()["userid"]) == {"u1"}


def test_frame_shape_order_and_schema():
    company = Company("2026-11-01", "2026-11-03").user("u2", name="李四", dept_ids=(), title=None)
    company.user("u1", name="张三", dept_ids=(20, 30)).day(D, user="u1")
    frame = company.derive()
    assert list(frame.columns) == EFFECTIVE_HOURS.names
    keys = list(zip(frame["work_date"], frame["userid"], strict=True))
    assert keys == sorted(keys) and len(keys) == 6
    assert to_table(frame, EFFECTIVE_HOURS, "test").schema == EFFECTIVE_HOURS
    assert_row(row_of(frame, D, "u1"), name="张三", dept_id=20, rules_version=Rules().version)
    assert row_of(frame, D, "u2")["dept_id"] is None


def test_empty_roster_gives_an_empty_frame_with_the_columns():
    company = Company("2026-11-01", "2026-11-03")
    roster, attendance, approvals, overrides = company.frames()
    frame = derive_frame(
        roster.iloc[0:0], attendance, approvals, overrides, Rules(), WorkCalendar()
    )
    assert frame.empty and list(frame.columns) == EFFECTIVE_HOURS.names


def test_timestamps_in_another_zone_give_the_same_rows():
    company = one_day(on=("Late", "09:17"), off=("Early", "17:40"))
    company.leave(f"{D} 11:00", f"{D} 14:00", unit="hour")
    roster, attendance, approvals, overrides = company.frames()
    utc_attendance = attendance.assign(
        base_check_time=attendance["base_check_time"].dt.tz_convert("UTC"),
        user_check_time=attendance["user_check_time"].dt.tz_convert("UTC"),
    )
    utc_approvals = approvals.assign(
        begin_at=approvals["begin_at"].dt.tz_convert("UTC"),
        end_at=approvals["end_at"].dt.tz_convert("UTC"),
    )
    args = (Rules(), WorkCalendar())
    shanghai = derive_frame(roster, attendance, approvals, overrides, *args)
    utc = derive_frame(roster, utc_attendance, utc_approvals, overrides, *args)
    pd.testing.assert_frame_equal(shanghai, utc)
    row = row_of(utc, D)
    assert_row(row, status="late_and_early", leave_hours=2.0, effective_hours=4.0)
    assert "OnDuty Late 09:17, OffDuty Early 17:40" in row["explanation"]


# ------------------------------------------------------------------------------ shifts


def test_multi_shift_day_sums_shifts_and_reports_the_worst():
    shifts = [
        Shift(("Normal", "07:55"), ("Normal", "12:01"), "08:00", "12:00"),
        Shift(("Late", "13:47"), ("Normal", "17:31"), "13:30", "17:30"),
    ]
    row = Company("2026-11-01", "2026-11-07").day(D, shifts=shifts).row(D)
    # 4 h normal (8 × 4/8) + 4 h late (7 × 4/8 = 3.5).
    assert_row(row, scheduled_hours=8.0, status="late", effective_hours=7.5, rule_id="late")
    assert "OnDuty Late 13:47" in row["explanation"]


def test_multi_shift_pairs_by_base_time_whatever_the_row_order():
    shifts = [
        Shift(("Late", "13:47"), ("Normal", "17:31"), "13:30", "17:30"),
        Shift("NotSigned", ("Normal", "12:01"), "08:00", "12:00"),
    ]
    row = Company("2026-11-01", "2026-11-07").day(D, shifts=shifts).row(D)
    # missing_punch 4 × 4/8 = 2, late 7 × 4/8 = 3.5.
    assert_row(row, scheduled_hours=8.0, status="missing_punch", effective_hours=5.5)


def test_multi_shift_with_a_shift_over_the_break_and_partial_leave():
    shifts = [
        Shift(("Normal", "08:58"), ("Normal", "13:31"), "09:00", "13:30"),  # 4.5 − 0.5 break
        Shift(("Normal", "13:59"), ("Normal", "18:01"), "14:00", "18:00"),
    ]
    company = Company("2026-11-01", "2026-11-07").day(D, shifts=shifts)
    company.leave(f"{D} 12:30", f"{D} 14:30", unit="hour")  # 13:00-13:30 + 14:00-14:30 = 1 h
    assert_row(
        company.row(D), scheduled_hours=7.5, leave_hours=1.0, status="normal", effective_hours=6.5
    )


def test_multi_shift_exception_hours_used_in_any_shift_name_the_exception():
    rules = Rules(
        exceptions=(
            ExceptionRule(
                id="flex", match=ExceptionMatch(userids=("u1",)), status_hours={"normal": 9}
            ),
        )
    )
    shifts = [
        Shift(("Normal", "07:55"), ("Normal", "12:01"), "08:00", "12:00"),
        Shift(("Late", "13:47"), ("Normal", "17:31"), "13:30", "17:30"),
    ]
    row = Company("2026-11-01", "2026-11-07").day(D, shifts=shifts).row(D, rules=rules)
    # normal 9 × 4/8 = 4.5 + late 7 × 4/8 = 3.5; status late, hours set partly by `flex`.
    assert_row(row, status="late", effective_hours=8.0, rule_id="flex")


def test_missing_offduty_side_is_a_not_signed_point_with_no_scheduled_time():
    row = (
        Company("2026-11-01", "2026-11-07").point(D, "OnDuty", ("Normal", "08:55"), "09:00").row(D)
    )
    assert_row(row, status="missing_punch", scheduled_hours=0.0, effective_hours=0.0)
    assert "OnDuty Normal 08:55" in row["explanation"]


def test_missing_onduty_side_of_a_not_signed_offduty_is_absent():
    row = Company("2026-11-01", "2026-11-07").point(D, "OffDuty", "NotSigned", "18:00").row(D)
    assert_row(row, status="absent", scheduled_hours=0.0, effective_hours=0.0)


def test_odd_counts_pair_the_first_points_and_leave_the_last_alone():
    company = Company("2026-11-01", "2026-11-07").day(
        D, shifts=[Shift(("Normal", "07:55"), ("Normal", "12:01"), "08:00", "12:00")]
    )
    company.point(D, "OnDuty", ("Normal", "13:29"), "13:30")
    # Shift 1: 4 h normal = 4; shift 2 (OnDuty only): missing_punch × 0 h.
    assert_row(company.row(D), scheduled_hours=4.0, status="missing_punch", effective_hours=4.0)


def test_pairing_is_by_index_even_when_a_middle_side_is_missing():
    # The morning OffDuty is missing: OnDuty 08:00 pairs with OffDuty 17:30 (8.5 h after the
    # break) and OnDuty 13:30 is left alone with an invented OffDuty (0 h).
    company = Company("2026-11-01", "2026-11-07")
    company.point(D, "OnDuty", ("Normal", "07:55"), "08:00")
    company.point(D, "OnDuty", ("Normal", "13:29"), "13:30")
    company.point(D, "OffDuty", ("Normal", "17:31"), "17:30")
    assert_row(company.row(D), scheduled_hours=8.5, status="missing_punch", effective_hours=8.5)


def test_the_invented_side_can_be_covered_by_leave():
    company = Company("2026-11-01", "2026-11-07").point(D, "OnDuty", ("Normal", "08:55"), "09:00")
    company.leave(f"{D} PM", f"{D} PM", unit="halfDay")
    assert_row(company.row(D), status="normal", scheduled_hours=0.0, effective_hours=0.0)


def test_offduty_after_midnight_keeps_its_work_date():
    company = one_day(off=("Normal", "25:10"))
    assert_row(company.row(D), status="normal", effective_hours=8.0)
    assert "OffDuty Normal 01:10" in company.row(D)["explanation"]


# ------------------------------------------------------------------------------ explanation


def test_reference_explanation_format():
    # The wording is the reference's own (documented in its module docstring); other tests only
    # ask for the status, the hours, the rule and the points' type, result and HH:MM.
    row = one_day(on=("Late", "09:17"), off=("Normal", "18:02")).row(D)
    assert row["explanation"] == "OnDuty Late 09:17, OffDuty Normal 18:02 → late → 7 h (rule late)"
    company = one_day(on=("Normal", "09:00"), off=("Normal", "18:00"))
    company.leave(f"{D} 16:00", f"{D} 18:00", unit="hour", sub_type="事假")
    assert company.row(D)["explanation"] == (
        "OnDuty Normal 09:00, OffDuty Normal (approval) 18:00; "
        "leave 事假 (hour) 2 h of 8 h scheduled → normal 8 h − 2 h leave → 6 h (rule normal)"
    )


# ------------------------------------------------------------------------------ config files


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("standard_day_hours: 8\nstatus_hours:\n  late: [7\n", ["line 4", "not valid YAML"]),
        (
            "status_hours:\n  late: 7\nlunch_break: 1\n",
            ["line 3", "`lunch_break`", "unknown setting"],
        ),
        (
            "standard_day_hours: 8\nstatus_hours:\n  normal: 8\n  late: seven\n",
            ["line 4", "`status_hours.late`", "must be a number of hours"],
        ),
        ("standard_day_hours: eight\n", ["line 1", "`standard_day_hours`", "must be a number"]),
        (
            "exceptions:\n  - id: field-sales\n    match:\n      dept_ids: [20]\n"
            "    status_hours:\n      late: 8\n  - id: drivers\n    match:\n"
            "      titles: [司机]\n    status_hours:\n      tardy: 8\n",
            ["line 10", "`exceptions.1.status_hours`", "unknown status `tardy`"],
        ),
        (
            "exceptions:\n  - id: field-sales\n    match:\n      depts: [20]\n"
            "    status_hours: {}\n",
            ["line 4", "`exceptions.0.match.depts`", "unknown setting"],
        ),
        ("break:\n  start: '12:00'\n  end: noon\n", ["line 3", "`break.end`"]),
        (
            "push_exempt: false\nstatus_hours:\n  exempt: a full day\n",
            ["line 3", "`status_hours.exempt`", "must be a number of hours"],
        ),
        ("status_hours:\n  exempt: 30\n", ["`status_hours`", "`exempt` must be between 0 and 24"]),
        (
            "push_overtime: false\npush_exempt: maybe\n",
            ["line 2", "`push_exempt`", "true or false"],
        ),
        ("push_exempt: [yes]\n", ["line 1", "`push_exempt`", "true or false"]),
        ("- late\n", ["line 1", "mapping"]),
        (
            "overtime:\n  workday: {compensation: pay, rate: 1.5}\n"
            "  restday: {compensation: money, rate: 2}\n",
            ["line 3", "`overtime.restday.compensation`", "one of 'pay' or 'lieu'"],
        ),
        ("overtime:\n  holiday: {compensation: pay}\n", ["line 2", "`overtime.holiday.rate`"]),
        ("leave_types:\n  年假: 1\n  病假: 1.5\n", ["line 3", "`leave_types.病假.paid`", "1"]),
        ("leave_types:\n  病假: lots\n", ["line 2", "`leave_types.病假`", "paid share"]),
        ("unlisted_leave_paid: -1\n", ["line 1", "`unlisted_leave_paid`"]),
    ],
)
def test_rules_yaml_errors_name_file_line_and_field(tmp_path, text, fragments):
    path = write(tmp_path / "rules.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message, message


def test_rules_yaml_missing_or_empty_means_defaults(tmp_path):
    assert load_rules(tmp_path / "absent.yaml") == Rules()
    assert load_rules(write(tmp_path / "rules.yaml", "")) == Rules()


def test_rules_yaml_exempt_settings(tmp_path):
    shipped = load_rules(Path(__file__).resolve().parent.parent / "config" / "rules.yaml")
    assert shipped.status_hours["exempt"] == 8 and shipped.push_exempt is False
    assert Rules().push_exempt is False
    path = write(
        tmp_path / "rules.yaml",
        "push_exempt: true\nstandard_day_hours: 7\nexceptions:\n  - id: owners\n    match:\n"
        "      titles: [总经理]\n    status_hours:\n      exempt: 0\n",
    )
    rules = load_rules(path)
    assert rules.push_exempt is True and rules.status_hours["exempt"] == 7
    assert rules.hours_for("exempt", rules.exceptions[0]) == 0


def test_rules_yaml_payroll_settings_and_their_defaults(tmp_path):
    shipped = load_rules(Path(__file__).resolve().parent.parent / "config" / "rules.yaml")
    defaults = Rules()
    assert shipped.overtime == defaults.overtime and shipped.leave_types == defaults.leave_types
    assert (defaults.overtime.workday.rate, defaults.overtime.restday.rate) == (1.5, 2)
    assert defaults.overtime.holiday.rate == 3 and defaults.overtime.restday.compensation == "lieu"
    assert defaults.leave_paid_share("事假") == 0 and defaults.leave_paid_share("年假") == 1
    assert defaults.leave_paid_share("育儿假") == 0 and defaults.lieu_leave_types() == ["调休"]
    rules = load_rules(
        write(
            tmp_path / "rules.yaml",
            "overtime:\n  restday: {compensation: pay, rate: 2}\nleave_types:\n  病假: 0.8\n"
            "  育儿假: {paid: 1}\n  倒休: {paid: 1, lieu: true}\nunlisted_leave_paid: 0.5\n",
        )
    )
    assert rules.overtime.restday.compensation == "pay" and rules.overtime.workday.rate == 1.5
    assert rules.leave_paid_share("病假") == 0.8 and rules.leave_paid_share("年假") == 1
    assert rules.leave_paid_share("育儿假") == 1 and rules.leave_paid_share("其他") == 0.5
    assert sorted(rules.lieu_leave_types()) == ["倒休", "调休"]
    assert rules.version != defaults.version


def test_rules_yaml_loads_exceptions(tmp_path):
    path = write(
        tmp_path / "rules.yaml",
        "status_hours:\n  late: 7.5\nexceptions:\n  - id: field-sales\n    match:\n"
        "      dept_ids: [20]\n    status_hours:\n      late: 8\n",
    )
    rules = load_rules(path)
    assert rules.status_hours["late"] == 7.5 and rules.status_hours["normal"] == 8
    assert rules.exceptions[0].id == "field-sales"
    assert rules.hours_for("late", rules.exceptions[0]) == 8


OVERRIDE_HEADER = "userid,date,hours,reason,author\n"


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        (
            "u1,2026-11-03,5,补录,王经理\nu2,2026-11-31,5,补录,王经理\n",
            ["line 3", "`date`", "2026-11-31"],
        ),
        ("u1,03/11/2026,5,补录,王经理\n", ["line 2", "`date`", "YYYY-MM-DD"]),
        ("u1,2026-11-03,five,补录,王经理\n", ["line 2", "`hours`", "'five'"]),
        ("u1,2026-11-03,25,补录,王经理\n", ["line 2", "`hours`", "between 0 and 24"]),
        ("u1,2026-11-03,-1,补录,王经理\n", ["line 2", "`hours`", "between 0 and 24"]),
        ("u1,2026-11-03,5,,王经理\n", ["line 2", "`reason`", "empty"]),
        ("u1,2026-11-03,5,补录,\n", ["line 2", "`author`", "empty"]),
        (",2026-11-03,5,补录,王经理\n", ["line 2", "`userid`", "empty"]),
        (
            "u1,2026-11-03,5,补录,王经理\nu1,2026-11-03,6,again,王经理\n",
            ["line 3", "second override", "u1", "2026-11-03", "first on line 2"],
        ),
    ],
)
def test_overrides_csv_errors_name_file_line_and_field(tmp_path, body, fragments):
    path = write(tmp_path / "overrides.csv", OVERRIDE_HEADER + body)
    with pytest.raises(ConfigError) as caught:
        load_overrides(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message, message


def test_overrides_csv_missing_column(tmp_path):
    path = write(tmp_path / "overrides.csv", "userid,date,hours,reason\nu1,2026-11-03,5,补录\n")
    with pytest.raises(ConfigError, match=r"line 1: missing column\(s\) author"):
        load_overrides(path)


def test_overrides_csv_line_numbers_count_blank_lines(tmp_path):
    body = "u1,2026-11-03,5,补录,王经理\n\nu1,2026-11-03,6,again,王经理\n"
    path = write(tmp_path / "overrides.csv", OVERRIDE_HEADER + body)
    with pytest.raises(ConfigError, match="line 4"):
        load_overrides(path)


def test_loaded_overrides_drive_the_derivation(tmp_path):
    path = write(
        tmp_path / "overrides.csv",
        OVERRIDE_HEADER + "u1,2026-11-03,5.5,补录 system outage,王经理\n\n",
    )
    company = one_day(on="NotSigned", off="NotSigned")
    roster, attendance, approvals, _ = company.frames()
    frame = derive_frame(
        roster, attendance, approvals, load_overrides(path), Rules(), WorkCalendar()
    )
    assert_row(row_of(frame, D), status="override", effective_hours=5.5)
    empty = load_overrides(tmp_path / "absent.csv")
    frame = derive_frame(roster, attendance, approvals, empty, Rules(), WorkCalendar())
    assert_row(row_of(frame, D), status="absent", effective_hours=0.0)


def test_rules_version_is_stable_for_equal_rules_and_changes_with_a_number(tmp_path):
    explicit = write(
        tmp_path / "rules.yaml",
        "standard_day_hours: 8\nbreak:\n  start: '12:00'\n  end: '13:00'\n"
        "hour_leave_rounding: 0.5\nstatus_hours:\n  late: 7\n  normal: 8\n",
    )
    assert load_rules(explicit).version == Rules().version == Rules().version
    assert Rules(status_hours={"late": 6.5}).version != Rules().version
    assert Rules(hour_leave_rounding=0.25).version != Rules().version
    assert EXCEPTIONS.version != Rules().version
    # `exempt` defaults to the standard day: spelling the default out changes nothing.
    assert Rules(status_hours={"exempt": 8}).version == Rules().version
    assert Rules(status_hours={"exempt": 7}).version != Rules().version
    assert Rules(push_exempt=True).version != Rules().version
    assert Rules.model_validate(Rules().model_dump(by_alias=True)).version == Rules().version
    frame = one_day().derive(Rules(status_hours={"late": 6.5}))
    assert set(frame["rules_version"]) == {Rules(status_hours={"late": 6.5}).version}


# ------------------------------------------------------------------------------ properties

DAY = date(2026, 11, 3)
RESULTS = ("Normal", "Normal", "Normal", "Late", "SeriousLate", "Early", "Absenteeism", "NotSigned")
RULE_VARIANTS = (
    Rules(),
    EXCEPTIONS,
    Rules.model_validate(
        {"hour_leave_rounding": 0.25, "break": BreakTime(start=time(11, 30), end=time(13, 30))}
    ),
    Rules(
        status_hours={"late": 8, "missing_punch": 2, "exempt": 7},
        exceptions=(
            ExceptionRule(
                id="flex",
                match=ExceptionMatch(dept_ids=(20,), titles=("司机",)),
                status_hours={"normal": 7.5, "missing_punch": 3, "business_trip": 6, "exempt": 9},
            ),
        ),
    ),
    Rules(standard_day_hours=7.5, exceptions=(OWNERS,)),
    Rules.model_validate(
        {
            "overtime": {
                "workday": {"compensation": "lieu", "rate": 1},
                "restday": {"compensation": "pay", "rate": 2},
                "holiday": {"compensation": "lieu", "rate": 3},
            }
        }
    ),
)


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def point_strategy(draw: st.DrawFn, base: int) -> Pt:
    result = draw(st.sampled_from(RESULTS))
    punch = min(1439, max(0, base + draw(st.integers(-90, 90))))
    backing = draw(st.sampled_from(("none", "none", "none", "approve", "APPROVE", "proc")))
    return Pt(
        result,
        None if result == "NotSigned" else hhmm(punch),
        source="APPROVE" if backing == "APPROVE" else None,
        approve_id="ax" if backing == "approve" else None,
        proc_inst_id="px" if backing == "proc" else None,
    )


@st.composite
def points_strategy(draw: st.DrawFn) -> list[Shift]:
    """0-3 non-overlapping shifts inside the day; the last one sometimes misses a side.

    (A side missing from an earlier shift would pair the i-th OnDuty with the i-th OffDuty of
    different shifts; those overlapping intervals can schedule more than 24 h, see the notes.)
    """
    n = draw(st.sampled_from((1, 1, 1, 0, 2, 3)))
    marks = sorted(draw(st.lists(st.integers(0, 95), min_size=2 * n, max_size=2 * n, unique=True)))
    shifts = []
    for i in range(n):
        start, end = marks[2 * i] * 15, marks[2 * i + 1] * 15
        on: Pt | None = draw(point_strategy(start))
        off: Pt | None = draw(point_strategy(end))
        if i == n - 1:
            missing = draw(st.sampled_from(("none",) * 8 + ("on", "off")))
            on, off = (None if missing == "on" else on), (None if missing == "off" else off)
        shifts.append(Shift(on, off, hhmm(start), hhmm(end)))
    return shifts


@st.composite
def approval_strategy(draw: st.DrawFn, day: date = DAY) -> tuple[int, str, str, str]:
    """One approval overlapping `day` (biz types 4 and 5 are ignored by the rules)."""
    biz = draw(st.sampled_from((1, 2, 2, 3, 3, 3, 4, 5)))
    unit = draw(st.sampled_from(("day", "halfDay", "hour")))
    if unit == "day":
        first = day - timedelta(days=draw(st.integers(0, 1)))
        last = day + timedelta(days=draw(st.integers(0, 1)))
        return biz, unit, first.isoformat(), last.isoformat()
    if unit == "halfDay":
        a = draw(st.integers(-2, 1))  # half index relative to the day's AM
        b = draw(st.integers(max(a, 0), 3))
        text = [
            f"{(day + timedelta(days=h // 2)).isoformat()} {'AM' if h % 2 == 0 else 'PM'}"
            for h in (a, b)
        ]
        return biz, unit, text[0], text[1]
    begin = draw(st.integers(-12, 95)) * 15
    end = begin + draw(st.integers(1, 48)) * 5
    on = day.isoformat()
    return biz, unit, f"{on} {hhmm(begin) if begin >= 0 else '00:00'}", f"{on} {hhmm(end)}"


@st.composite
def day_strategy(draw: st.DrawFn) -> tuple[Company, Rules, float | None]:
    company = Company(DAY, DAY).user(
        "u1",
        dept_ids=draw(st.sampled_from(((20,), (31,), (31, 20), ()))),
        title=draw(st.sampled_from(("工程师", "司机", "销售经理", "总经理", None))),
        exempt=draw(st.sampled_from((False, False, False, True))),
    )
    company.day(DAY, shifts=draw(points_strategy()))
    for biz, unit, begin, end in draw(st.lists(approval_strategy(), max_size=3)):
        company.approval(biz, begin, end, unit=unit, tag="t")
    with_override = draw(st.sampled_from((False, False, False, False, False, True)))
    override = draw(st.integers(0, 96)) / 4 if with_override else None
    if override is not None:
        company.override(DAY, override)
    return company, draw(st.sampled_from(RULE_VARIANTS)), override


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(day_strategy())
def test_property_hours_are_bounded_and_overrides_win(case):
    company, rules, override = case
    row = company.row(DAY, rules=rules)
    hours = row["effective_hours"]
    assert 0 <= hours <= 24
    for column in ("scheduled_hours", "leave_hours", "trip_hours", "overtime_hours"):
        assert row[column] >= 0
    assert (
        row["leave_hours"] <= row["scheduled_hours"] and row["trip_hours"] <= row["scheduled_hours"]
    )
    assert row["countable"] == (hours > 0)
    assert row["status"] in STATUSES and row["rules_version"] == rules.version
    assert row["status"] in row["explanation"] and f"(rule {row['rule_id']})" in row["explanation"]
    if override is not None:
        assert (row["status"], row["rule_id"], hours) == ("override", "override", override)
        return
    exception_ids = {e.id for e in rules.exceptions}
    assert row["rule_id"] == row["status"] or row["rule_id"] in exception_ids
    if "u1" in company.exempt:  # a workday: the standard day, whatever the check points
        assert row["status"] in ("exempt", "leave", "business_trip")
        assert row["scheduled_hours"] == rules.standard_day_hours
    else:
        assert row["status"] != "exempt"
    most = max(
        [
            *rules.status_hours.values(),
            *(h for e in rules.exceptions for h in e.status_hours.values()),
        ]
    )
    stretch = max(1.0, row["scheduled_hours"] / rules.standard_day_hours)
    assert hours <= most * stretch + 0.005
    if row["scheduled_hours"] == 0:
        assert hours == 0 or row["status"] == "rest" or row["status"] == "override"


@FAST
@given(day_strategy(), st.randoms(use_true_random=False))
def test_property_same_inputs_same_rows_whatever_the_row_order(case, rnd: random.Random):
    company, rules, _ = case
    roster, attendance, approvals, overrides = company.frames()
    first = derive_frame(roster, attendance, approvals, overrides, rules, WorkCalendar())

    def shuffled(frame: pd.DataFrame) -> pd.DataFrame:
        order = list(range(len(frame)))
        rnd.shuffle(order)
        return frame.iloc[order].reset_index(drop=True)

    # The same inputs again, in another row order and with rules rebuilt from their dump.
    again = derive_frame(
        roster,
        shuffled(attendance),
        shuffled(approvals),
        overrides,
        Rules.model_validate(rules.model_dump()),
        WorkCalendar(),
    )
    pd.testing.assert_frame_equal(first, again)
    assert set(first["rules_version"]) == {rules.version}

    # derive_day on the raw rows gives the frame's row.
    override = overrides.to_dict("records")
    day_row = derive_day(
        userid="u1",
        work_date=DAY,
        name=roster["name"].iloc[0],
        dept_ids=list(roster["dept_ids"].iloc[0]),
        title=None if pd.isna(roster["title"].iloc[0]) else roster["title"].iloc[0],
        points=attendance.to_dict("records"),
        approvals=approvals.to_dict("records"),
        override=override[0] if override else None,
        rules=rules,
        day_type="workday",
        calendar_source="chinese_calendar",
        exempt="u1" in company.exempt,
    )
    assert list(day_row) == EFFECTIVE_HOURS.names
    assert day_row == row_of(first, DAY)


WINDOW = (date(2026, 9, 30), date(2026, 10, 11))  # National Day, a weekend, a 调休 Saturday


@st.composite
def window_strategy(draw: st.DrawFn) -> tuple[Company, Rules]:
    """Three people over WINDOW, some in no attendance group, with check points, approvals and
    overrides on random days (the roster column also missing entirely now and then)."""
    company = Company(*WINDOW, attendance_groups=draw(st.sampled_from((True, True, True, False))))
    days = [WINDOW[0] + timedelta(days=i) for i in range((WINDOW[1] - WINDOW[0]).days + 1)]
    for userid in ("u1", "u2", "u3"):
        company.user(
            userid,
            dept_ids=draw(st.sampled_from(((20,), (31,), ()))),
            title=draw(st.sampled_from(("工程师", "司机", "总经理", None))),
            exempt=draw(st.booleans()),
        )
        for day in draw(st.lists(st.sampled_from(days), max_size=5, unique=True)):
            company.day(day, shifts=draw(points_strategy()), user=userid)
        for day in draw(st.lists(st.sampled_from(days), max_size=4)):
            biz, unit, begin, end = draw(approval_strategy(day))
            # Leave types and 调休/加班费 overtime, so the payroll facts are compared too.
            sub = draw(st.sampled_from(("", "调休", "加班费", "年假", "病假")))
            company.approval(biz, begin, end, unit=unit, sub_type=sub, tag="t", user=userid)
        for day in draw(st.lists(st.sampled_from(days), max_size=1)):
            company.override(day, draw(st.integers(0, 40)) / 4, user=userid)
    return company, draw(st.sampled_from(RULE_VARIANTS))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(window_strategy())
def test_property_engine_and_reference_agree_row_by_row(case):
    if hours_cases.CURRENT[0] != "engine":  # one run compares both implementations
        return
    company, rules = case
    inputs = (*company.frames(), rules, WorkCalendar())
    rows = [
        to_table(derive(*inputs), EFFECTIVE_HOURS, "test").to_pandas()
        for derive in (derive_effective_hours, derive_frame)
    ]
    pd.testing.assert_frame_equal(rows[0], rows[1])
    exempt = company.exempt if company.attendance_groups else set()
    assert (set(rows[0].loc[rows[0]["status"] == "exempt", "userid"])) <= exempt
