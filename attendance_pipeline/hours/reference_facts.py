"""The payroll facts of one day, plainly (the oracle of `facts.py`; see its docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from attendance_pipeline.hours.facts import (
    OVERTIME_CLASSES,
    compensation,
    leave_entries,
    round2,
)
from attendance_pipeline.hours.rules import Rules

MINUTE_MS = 60_000


class PointLike(Protocol):
    time_result: str
    base_ms: int | None
    user_ms: int | None

    @property
    def result(self) -> str: ...


class ShiftLike(Protocol):
    on: Any
    off: Any
    scheduled_ms: int

    def status(self) -> str: ...


def day_facts(
    shifts: Sequence[ShiftLike],
    overtime: Sequence[tuple[dict[str, Any], float]],
    leave: Sequence[tuple[str, float]],
    scheduled_hours: float,
    day_type: str,
    rules: Rules,
) -> dict[str, Any]:
    """The fact columns of one day, in EFFECTIVE_HOURS order.

    `overtime`: each overtime approval with the hours it books on this day (0 when none);
    `leave`: each leave approval's label and covered hours, in approval order.
    """
    by_class = dict.fromkeys(OVERTIME_CLASSES, 0.0)
    lieu = pay = 0.0
    policy = rules.overtime.of(day_type)
    for approval, hours in overtime:
        if hours == 0:
            continue
        by_class[day_type] += hours
        how = compensation(approval.get("sub_type"), approval.get("tag_name"), policy.compensation)
        if how == "lieu":
            lieu += hours
        else:
            pay += hours * policy.rate

    labels: dict[str, float] = {}
    for label, hours in leave:
        labels[label] = labels.get(label, 0.0) + hours

    late = late_minutes = early = early_minutes = missing = 0
    absent_ms, absent_n = 0, 0
    for shift in shifts:
        on, off = shift.on, shift.off
        if on.result in ("Late", "SeriousLate"):
            late += 1
            late_minutes += max(0, (on.user_ms or 0) - (on.base_ms or 0)) // MINUTE_MS
        if off.result == "Early":
            early += 1
            early_minutes += max(0, (off.base_ms or 0) - (off.user_ms or 0)) // MINUTE_MS
        if shift.status() == "absent":
            absent_ms += shift.scheduled_ms
            absent_n += 1
        else:
            missing += (on.result == "NotSigned") + (off.result == "NotSigned")
    if scheduled_hours > 0:
        absenteeism = absent_ms / 3_600_000 / scheduled_hours
    else:
        absenteeism = absent_n / len(shifts) if shifts else 0.0

    return {
        "overtime_workday_hours": round2(by_class["workday"]),
        "overtime_restday_hours": round2(by_class["restday"]),
        "overtime_holiday_hours": round2(by_class["holiday"]),
        "overtime_lieu_hours": round2(lieu),
        "overtime_pay_hours": round2(pay),
        "leave_by_type": leave_entries(labels, scheduled_hours),
        "late_count": late,
        "late_minutes": int(late_minutes),
        "early_leave_count": early,
        "early_leave_minutes": int(early_minutes),
        "missing_punch_count": int(missing),
        "absenteeism_days": round2(absenteeism),
    }
