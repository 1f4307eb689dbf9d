"""The project's vocabulary, defined once: every stored status, type and action is one of these.

`StrEnum` members are plain strings, so they compare equal to the values stored in Parquet and
DuckDB (`frame["status"] == Status.LATE`), and `values(Enum)` gives the tuple a schema check or
a SQL `IN` list needs. DingTalk's own values come from ../shared/contracts/dingtalk.md.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


def values(enum: type[StrEnum] | type[IntEnum]) -> tuple:
    """The plain values of an enum, in definition order."""
    return tuple(member.value for member in enum)


# ------------------------------------------------------------------------------ DingTalk


class CheckType(StrEnum):
    ON_DUTY = "OnDuty"
    OFF_DUTY = "OffDuty"


class TimeResult(StrEnum):
    NORMAL = "Normal"
    EARLY = "Early"
    LATE = "Late"
    SERIOUS_LATE = "SeriousLate"
    ABSENTEEISM = "Absenteeism"
    NOT_SIGNED = "NotSigned"


class SourceType(StrEnum):
    ATM = "ATM"
    BEACON = "BEACON"
    DING_ATM = "DING_ATM"
    USER = "USER"
    BOSS = "BOSS"
    APPROVE = "APPROVE"
    SYSTEM = "SYSTEM"
    AUTO_CHECK = "AUTO_CHECK"


class BizType(IntEnum):
    """An approval's `bizType`."""

    OVERTIME = 1
    TRIP = 2  # business trip or outing (出差/外出)
    LEAVE = 3
    MAKE_UP_PUNCH = 4  # 补卡
    FIELD_WORK = 5  # 外勤


# Approvals that explain a workday without check points.
ABSENCE_BIZ_TYPES = (BizType.TRIP.value, BizType.LEAVE.value)


class DurationUnit(StrEnum):
    DAY = "day"
    HALF_DAY = "halfDay"
    HOUR = "hour"


# ------------------------------------------------------------------------------ hours


class Status(StrEnum):
    """An employee-day's status (docs/rules.md), in precedence order: `override` wins over
    everything; an `exempt` employee (in no attendance group) is `leave`/`business_trip` when an
    approval covers the day and `exempt` otherwise; the rest in this order, first match wins."""

    OVERRIDE = "override"
    EXEMPT = "exempt"
    REST = "rest"
    LEAVE = "leave"
    BUSINESS_TRIP = "business_trip"
    ABSENT = "absent"
    MISSING_PUNCH = "missing_punch"
    LATE_AND_EARLY = "late_and_early"
    SERIOUS_LATE = "serious_late"
    LATE = "late"
    EARLY_LEAVE = "early_leave"
    NORMAL = "normal"


LATE_STATUSES = (Status.LATE_AND_EARLY.value, Status.SERIOUS_LATE.value, Status.LATE.value)


class DayType(StrEnum):
    WORKDAY = "workday"
    RESTDAY = "restday"
    HOLIDAY = "holiday"


# ------------------------------------------------------------------------------ delivery


class MappingStatus(StrEnum):
    MAPPED = "mapped"
    UNMAPPED = "unmapped"
    AMBIGUOUS = "ambiguous"


class WorklogKind(StrEnum):
    WORK = "work"
    OVERTIME = "overtime"


class PushAction(StrEnum):
    """What happened to one worklog key (a `worklog_ledger` row)."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    FAILED = "failed"


class ReconciliationStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    EXTRA = "extra"
    DIFFERENT = "different"
    CONFLICT = "conflict"


# ------------------------------------------------------------------------------ gates


class Grain(StrEnum):
    """The grain of an expectation's verdict (a gate protects what it guards at the grain of the
    problem)."""

    SYSTEMIC = "systemic"  # the source or the target is broken: the whole run stops
    EMPLOYEE_DAY = "employee_day"  # the offending (userid, work_date) are held back
    REPORTED = "reported"  # shown in the check, nothing held


class Blocks(StrEnum):
    """What a held-back employee-day is kept out of (`held_back.blocks`)."""

    ALL = "all"  # published hours, payroll and worklogs
    DELIVERY = "delivery"  # worklogs only: the hours are computed and paid
