"""The hours layer's gates (`inputs_complete`, `hours_valid`, `held_back_share` via gx,
`calendar_covered`, `unusual_patterns`)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from attendance_pipeline.checks.dingtalk import (
    raw_approvals_gate,
    raw_attendance_gate,
    window_covered,
)
from attendance_pipeline.checks.gx import (
    ERROR,
    WARN,
    FailedExpectation,
    GateResult,
    all_true,
    as_flag,
    combine,
    days_between,
    employee_day_rows,
    expect,
    held_back_share_gate,
    held_union,
    not_null,
    or_defaults,
    prepared,
    run_expectations,
    to_date,
    validate,
)
from attendance_pipeline.checks.quality import QualityConfig
from attendance_pipeline.hours.calendar import WorkCalendar
from attendance_pipeline.hours.reference import derive_frame
from attendance_pipeline.hours.rules import STATUSES, Rules
from attendance_pipeline.schemas import EFFECTIVE_HOURS
from attendance_pipeline.vocabulary import (
    ABSENCE_BIZ_TYPES,
    LATE_STATUSES,
    CheckType,
    Grain,
    values,
)

# Hours columns bounded by a day; overtime is only >= 0: a multi-day overtime approval is booked
# whole on its first day (docs/rules.md), so it may legitimately exceed 24 h.
DAY_HOURS_COLUMNS = ("scheduled_hours", "leave_hours", "trip_hours", "effective_hours")
HOURS_TOLERANCE = 1e-6  # both sides round hours to 2 decimals; this only absorbs float noise
# Hours columns bounded by a day; overtime is only >= 0: a multi-day overtime approval is booked
# whole on its first day (docs/rules.md), so it may legitimately exceed 24 h.
COMPLETE_FIX = (
    "if DingTalk has not generated the results yet, re-sync the day later; otherwise approve a "
    "补卡 or leave in DingTalk, or add the day to config/overrides.csv"
)
HOURS_FIX = (
    "a rules bug: report it with these rows; the day stays as last published until the engine "
    "and the re-derivation agree"
)


def active_by_day(roster: pd.DataFrame, days: Sequence[date]) -> pd.DataFrame:
    """(work_date, userid, name, exempt) of each day's active, already hired employees.

    A day uses its own roster snapshot, else the nearest earlier one (else the earliest).
    `exempt`: in no DingTalk attendance group (the roster's `attendance_group_id` is null; a
    roster without that column, stored before it existed, exempts nobody).
    """
    columns = ["work_date", "userid", "name", "exempt"]
    if roster.empty or not days:
        return pd.DataFrame(columns=columns)
    people = prepared(roster, "snapshot_date", "hired_date")
    if "active" in people.columns:
        people = people[as_flag(people["active"])]
    snapshots = dict(iter(people.groupby("snapshot_date", sort=True)))
    ordered = sorted(snapshots)
    if not ordered:
        return pd.DataFrame(columns=columns)
    frames = []
    for day in days:
        earlier = [s for s in ordered if s <= day]
        part = snapshots[earlier[-1] if earlier else ordered[0]]
        if "hired_date" in part.columns:
            hired = part["hired_date"]
            part = part[[h is None or h <= day for h in hired]]
        names = part["name"] if "name" in part.columns else pd.Series(None, index=part.index)
        exempt = (
            part["attendance_group_id"].isna()
            if "attendance_group_id" in part.columns
            else pd.Series(False, index=part.index)
        )
        frames.append(
            pd.DataFrame(
                {"work_date": day, "userid": part["userid"], "name": names, "exempt": exempt}
            )
        )
    return pd.concat(frames, ignore_index=True).drop_duplicates(["work_date", "userid"])


def completeness_gate(
    roster: pd.DataFrame,
    attendance: pd.DataFrame,
    approvals: pd.DataFrame,
    calendar: WorkCalendar,
    start: date,
    end: date,
    *,
    quality: QualityConfig | None = None,
) -> GateResult:
    """`inputs_complete`: each active employee has ≥ 2 check points on each statutory workday,
    or a leave/trip approval (biz_type 2 or 3) that day explains the gap.

    Only days the calendar calls `workday` are checked; days no calendar covers are skipped and
    listed (the `calendar_covered` gate warns about them).
    """
    workdays, uncovered = [], []
    for day in days_between(start, end):
        known = calendar.day_type(day)
        if known is None:
            uncovered.append(day)
        elif known[0] == "workday":
            workdays.append(day)
    people = active_by_day(roster, workdays)
    exempt = int(people["exempt"].astype(bool).sum()) if len(people) else 0
    people = people[~people["exempt"].astype(bool)] if len(people) else people  # never incomplete
    key = ["userid", "work_date"]

    points = prepared(attendance, "work_date")
    points = points[points["check_type"].isin(values(CheckType))] if len(points) else points
    counts = (
        points.groupby(key).size().rename("check_points").reset_index()
        if len(points)
        else pd.DataFrame(columns=[*key, "check_points"])
    )
    absences = prepared(approvals, "work_date")
    if len(absences):
        absences = absences[absences["biz_type"].isin(ABSENCE_BIZ_TYPES)]
    explained_by = (
        absences.groupby(key)["approve_id"].agg(lambda ids: ", ".join(sorted(map(str, ids))))
        if len(absences)
        else pd.Series(dtype=object, name="approve_id")
    )
    days = people.merge(counts, on=key, how="left")
    days["check_points"] = days["check_points"].fillna(0).astype(int)
    days["leave_or_trip"] = [
        explained_by.get((u, d)) for u, d in zip(days["userid"], days["work_date"], strict=True)
    ]
    days["explained"] = (days["check_points"] >= 2) | days["leave_or_trip"].notna()
    expectations = [
        all_true(
            "explained",
            "employee-workdays with fewer than 2 check points and no leave or trip approval",
            grain=Grain.EMPLOYEE_DAY,
            fix=COMPLETE_FIX,
        )
    ]
    covered = {
        **window_covered(start, end),
        "workdays": [d.isoformat() for d in workdays],
        "employee_workdays": len(days),
        "employees": int(days["userid"].nunique()) if len(days) else 0,
        "explained_by_approval": int(days["leave_or_trip"].notna().sum()) if len(days) else 0,
        "exempt_employee_workdays": exempt,
        "days_not_covered_by_calendar": [d.isoformat() for d in uncovered],
    }
    return validate(
        days,
        expectations,
        "inputs_complete",
        sample_columns=["userid", "name", "work_date", "check_points", "leave_or_trip"],
        sample_rows=or_defaults(quality).sample_rows,
        covered=covered,
    )


def hours_gate(
    hours: pd.DataFrame,
    rederived: pd.DataFrame,
    roster: pd.DataFrame | None = None,
    *,
    quality: QualityConfig | None = None,
) -> GateResult:
    """`hours_valid`: the stored effective hours against their own invariants, the independent
    re-derivation (`reference.derive_frame` on the same inputs) and the roster.

    1. rows: columns; one row per (userid, work_date); the day-bounded hours columns in [0, 24],
       overtime ≥ 0; status in STATUSES; `countable` equals `effective_hours > 0`.
    2. per row: the re-derivation has the same user-days, statuses and effective hours.
    3. per partition (day) and status: the row count and the total effective hours equal the
       re-derivation's, so a day's total reconciles with its status counts exactly (both sides
       round every row to 2 decimals; the comparison allows only 1e-6 h of float noise). With
       many disagreeing rows this names the days and statuses at fault.
    4. per day, when `roster` is given: rows == the day's active rostered employees.
    """
    config = or_defaults(quality)
    key = ["userid", "work_date"]
    frame = prepared(hours, "work_date")
    other = prepared(rederived, "work_date")
    fix = HOURS_FIX
    rows = [
        *employee_day_rows(
            EFFECTIVE_HOURS.names,
            "effective_hours",
            fix,
            (
                expect(
                    "expect_compound_columns_to_be_unique",
                    "more than one row per (userid, work_date)",
                    column_list=key,
                ),
                *(
                    expect(
                        "expect_column_values_to_be_between",
                        f"{column} outside 0..24 h",
                        column=column,
                        min_value=0,
                        max_value=24,
                    )
                    for column in DAY_HOURS_COLUMNS
                ),
                expect(
                    "expect_column_values_to_be_between",
                    "overtime_hours below 0",
                    column="overtime_hours",
                    min_value=0,
                ),
                not_null("status", "status missing"),
                expect(
                    "expect_column_values_to_be_in_set",
                    "status not a known status",
                    column="status",
                    value_set=list(STATUSES),
                ),
            ),
        ),
    ]
    if {"countable", "effective_hours"} <= set(frame.columns):
        frame = frame.assign(
            countable_matches=as_flag(frame["countable"]) == (frame["effective_hours"] > 0)
        )
        rows.append(
            all_true(
                "countable_matches",
                "countable is not effective_hours > 0",
                grain=Grain.EMPLOYEE_DAY,
                fix=fix,
            )
        )
    sample = ["userid", "name", "work_date", "status", *DAY_HOURS_COLUMNS, "overtime_hours"]
    parts = [run_expectations(frame, rows, sample, config.sample_rows)]

    needed = {*key, "status", "effective_hours"}
    if needed <= set(frame.columns) and needed <= set(other.columns):
        agreement = _agreement(frame, other, config)
        parts.append(agreement)
        # Day totals are compared over the rows that agree one by one: a disagreeing row is held
        # back on its own, and a day whose totals still differ means the comparison is broken.
        disagreeing = _held_keys(agreement[1])
        parts.append(
            _status_totals(_without(frame, disagreeing), _without(other, disagreeing), config)
        )
    covered: dict[str, Any] = {
        "days": sorted({d.isoformat() for d in frame.get("work_date", []) if d is not None}),
        "rederived_rows": len(other),
        "reconciliation": "per day and status: rows and total effective hours equal the "
        "re-derivation's"
        + ("; one row per active rostered employee-day" if roster is not None else ""),
    }
    if roster is not None and {"userid", "work_date"} <= set(frame.columns):
        days = sorted({d for d in frame["work_date"] if d is not None} | set(other["work_date"]))
        expected = active_by_day(roster, days)[["userid", "work_date", "name"]]
        stored = frame[["userid", "work_date"]].drop_duplicates()
        people = expected.merge(stored, on=key, how="outer", indicator=True)
        people["present"] = people.pop("_merge").map(
            {"both": "both", "left_only": "no hours row", "right_only": "not on the roster"}
        )
        check = expect(
            "expect_column_values_to_be_in_set",
            "employee-days without exactly one row for one active rostered employee",
            show_values=False,
            grain=Grain.EMPLOYEE_DAY,
            fix=fix,
            column="present",
            value_set=["both"],
        )
        parts.append(run_expectations(people, [check], list(people.columns), config.sample_rows))
    return combine("hours_valid", ERROR, len(frame), parts, covered)


def _held_keys(failures: list[FailedExpectation]) -> set[tuple[Any, Any]]:
    keys: set[tuple[Any, Any]] = set()
    for failure in failures:
        if failure.held is not None:
            keys |= set(zip(failure.held["userid"], failure.held["work_date"], strict=True))
    return keys


def _without(frame: pd.DataFrame, keys: set[tuple[Any, Any]]) -> pd.DataFrame:
    if not keys:
        return frame
    pairs = pd.Series(
        list(zip(frame["userid"], frame["work_date"], strict=True)), index=frame.index
    )
    return frame[~pairs.isin(keys)]


def _agreement(
    frame: pd.DataFrame, other: pd.DataFrame, config: QualityConfig
) -> tuple[int, list[FailedExpectation]]:
    key = ["userid", "work_date"]
    mine = frame[[*key, *(["name"] if "name" in frame.columns else []), "status"]].assign(
        effective_hours=frame["effective_hours"].astype(float)
    )
    theirs = other[[*key, "status", "effective_hours"]].assign(
        effective_hours=other["effective_hours"].astype(float)
    )
    joined = mine.merge(theirs, on=key, how="outer", suffixes=("", "_rederived"), indicator=True)
    joined["present"] = joined.pop("_merge").map(
        {"both": "both", "left_only": "only stored", "right_only": "only re-derived"}
    )
    difference = (joined["effective_hours"] - joined["effective_hours_rederived"]).abs()
    joined["agrees"] = (
        (joined["present"] == "both")
        & (joined["status"] == joined["status_rederived"]).fillna(False).astype(bool)
        & (difference <= HOURS_TOLERANCE).fillna(False).astype(bool)
    )
    check = all_true(
        "agrees",
        "rows disagreeing with the independent re-derivation (status or effective_hours)",
        grain=Grain.EMPLOYEE_DAY,
        fix=HOURS_FIX,
    )
    sample = ["userid", "name", "work_date", "status", "status_rederived"]
    sample += ["effective_hours", "effective_hours_rederived", "present"]
    return run_expectations(joined, [check], sample, config.sample_rows)


def _status_totals(
    frame: pd.DataFrame, other: pd.DataFrame, config: QualityConfig
) -> tuple[int, list[FailedExpectation]]:
    group = ["work_date", "status"]

    def totals(source: pd.DataFrame) -> pd.DataFrame:
        return source.groupby(group, dropna=False).agg(
            rows=("status", "size"), hours=("effective_hours", "sum")
        )

    both = totals(frame).merge(
        totals(other), how="outer", left_index=True, right_index=True, suffixes=("", "_rederived")
    )
    both = both.fillna(0).reset_index()
    both["reconciles"] = (both["rows"] == both["rows_rederived"]) & (
        (both["hours"] - both["hours_rederived"]).abs() <= HOURS_TOLERANCE
    )
    check = all_true(
        "reconciles", "day totals by status that do not reconcile with the re-derivation"
    )
    return run_expectations(both, [check], list(both.columns), config.sample_rows)


def calendar_gate(
    days: Iterable[date], calendar: WorkCalendar, *, quality: QualityConfig | None = None
) -> GateResult:
    """`calendar_covered` (warn): chinese_calendar or calendar.csv knows every day; otherwise the
    day type follows DingTalk's schedule, and the uncovered dates are named."""
    listed = sorted({d for d in (to_date(v) for v in days) if d is not None})
    frame = pd.DataFrame({"day": listed, "covered": [calendar.covers(d) for d in listed]})
    uncovered = [d.isoformat() for d, ok in zip(listed, frame["covered"], strict=True) if not ok]
    named = ", ".join(uncovered[:10]) + (", …" if len(uncovered) > 10 else "")
    check = expect(
        "expect_column_values_to_be_in_set",
        f"days no calendar covers ({named}; add them to config/calendar.csv)"
        if uncovered
        else "days no calendar covers",
        show_values=False,
        column="covered",
        value_set=[True],
    )
    return validate(
        frame,
        [check],
        "calendar_covered",
        severity=WARN,
        sample_columns=["day"],
        sample_rows=or_defaults(quality).sample_rows,
        covered={"days": len(listed), "uncovered_days": uncovered},
    )


def patterns_gate(hours: pd.DataFrame, quality: QualityConfig | None = None) -> GateResult:
    """`unusual_patterns` (warn).

    - Late streaks: an employee whose status is late, serious_late or late_and_early on
      `late_streak` consecutive workdays (`day_type == "workday"` rows, in date order).
    - Department drops: only when the hours cover two full Monday–Sunday weeks; per department
      and full week, effective hours per employee-workday (so holiday weeks and head-count
      changes do not look like drops) below `dept_drop_ratio` × the previous full week's.
    """
    config = or_defaults(quality)
    frame = prepared(hours, "work_date")
    parts = []
    covered: dict[str, Any] = {"late_streak": config.late_streak}
    needed = {"userid", "work_date", "status", "day_type"}
    if needed <= set(frame.columns) and len(frame):
        streaks = _late_streaks(frame)
        check = expect(
            "expect_column_values_to_be_between",
            f"employees late on {config.late_streak} or more workdays in a row",
            show_values=False,
            column="late_streak",
            max_value=config.late_streak - 1,
        )
        parts.append(run_expectations(streaks, [check], list(streaks.columns), config.sample_rows))
    if {"dept_id", "effective_hours"} | needed <= set(frame.columns) and len(frame):
        weeks, full_weeks = _department_weeks(frame)
        covered["full_weeks"] = [w.isoformat() for w in full_weeks]
        if len(full_weeks) >= 2:
            check = expect(
                "expect_column_values_to_be_between",
                f"departments whose hours per employee-workday fell below "
                f"{config.dept_drop_ratio:g} × the previous week's",
                show_values=False,
                column="ratio",
                min_value=config.dept_drop_ratio,
            )
            parts.append(run_expectations(weeks, [check], list(weeks.columns), config.sample_rows))
        else:
            covered["dept_drop"] = "not checked: fewer than two full weeks"
    return combine("unusual_patterns", WARN, len(frame), parts, covered)


def _late_streaks(frame: pd.DataFrame) -> pd.DataFrame:
    """Per employee: the longest run of late workdays, with its first and last day."""
    workdays = frame[frame["day_type"] == "workday"].sort_values(["userid", "work_date"])
    late = workdays["status"].isin(LATE_STATUSES)
    run = (~late).groupby(workdays["userid"]).cumsum()
    names = workdays.groupby("userid")["name"].first() if "name" in workdays else None
    people = pd.DataFrame({"userid": workdays["userid"].unique()})
    people["name"] = people["userid"].map(names) if names is not None else None
    lates = workdays[late].assign(run=run[late])
    if lates.empty:
        return people.assign(late_streak=0, streak_start=None, streak_end=None)
    runs = lates.groupby(["userid", "run"]).agg(
        late_streak=("work_date", "size"),
        streak_start=("work_date", "min"),
        streak_end=("work_date", "max"),
    )
    longest = runs.sort_values("late_streak").reset_index().drop_duplicates("userid", keep="last")
    people = people.merge(longest.drop(columns="run"), on="userid", how="left")
    people["late_streak"] = people["late_streak"].fillna(0).astype(int)
    return people


def _department_weeks(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[date]]:
    """(per department and full week after the first: hours per employee-workday vs the week
    before, the full weeks)."""
    first, last = min(frame["work_date"]), max(frame["work_date"])
    monday = first + timedelta(days=(7 - first.weekday()) % 7)
    full_weeks = []
    while monday + timedelta(days=6) <= last:
        full_weeks.append(monday)
        monday += timedelta(days=7)
    workdays = frame[frame["day_type"] == "workday"]
    week = workdays["work_date"].map(lambda d: d - timedelta(days=d.weekday()))
    workdays = workdays.assign(week=week)[week.isin(full_weeks)]
    per_week = workdays.groupby(["dept_id", "week"]).agg(
        hours=("effective_hours", "sum"), employee_workdays=("effective_hours", "size")
    )
    per_week["per_employee_workday"] = per_week["hours"] / per_week["employee_workdays"]
    rows = []
    for (dept, monday), row in per_week.iterrows():
        before = (dept, monday - timedelta(days=7))
        if before not in per_week.index:
            continue
        previous = float(per_week.at[before, "per_employee_workday"])
        rows.append(
            {
                "dept_id": int(dept),
                "week": monday,
                "per_employee_workday": round(float(row["per_employee_workday"]), 3),
                "previous_week": round(previous, 3),
                "ratio": float(row["per_employee_workday"]) / previous if previous > 0 else None,
            }
        )
    columns = ["dept_id", "week", "per_employee_workday", "previous_week", "ratio"]
    weeks = pd.DataFrame(rows, columns=columns)
    weeks["ratio"] = weeks["ratio"].astype(float)
    return weeks, full_weeks


def stable_sample(userids: Sequence[str], limit: int) -> set[str]:
    """At most `limit` userids, the same ones on every run (by hash, not by position)."""
    if len(userids) <= limit:
        return set(userids)
    ranked = sorted(userids, key=lambda u: hashlib.sha256(str(u).encode()).hexdigest())
    return set(ranked[:limit])


@dataclass(frozen=True)
class HoursVerdict:
    """Every gate's verdict on one window of effective hours (what the hours step publishes)."""

    raw: list[GateResult]  # the raw gates again, on exactly the rows the hours were derived from
    complete: GateResult
    valid: GateResult
    share: GateResult
    calendar: GateResult
    patterns: GateResult
    sample: set[str]  # the people `hours_valid` re-derived

    @property
    def broken_inputs(self) -> list[GateResult]:
        return [r for r in self.raw if r.systemic]

    @property
    def judged(self) -> list[GateResult]:
        """The gates whose held-back employee-days stay out of the published hours."""
        return [*self.raw, self.complete, self.valid]

    @property
    def systemic(self) -> list[GateResult]:
        return [r for r in (self.complete, self.valid, self.share) if r.systemic]

    @property
    def held(self) -> pd.DataFrame:
        return held_union(self.judged)

    @property
    def checks(self) -> list[GateResult]:
        """The effective_hours asset's own checks."""
        return [self.complete, self.valid, self.share, self.calendar, self.patterns]


def judge_hours(
    hours: pd.DataFrame,
    roster: pd.DataFrame,
    attendance: pd.DataFrame,
    approvals: pd.DataFrame,
    overrides: pd.DataFrame,
    rules: Rules,
    calendar: WorkCalendar,
    start: date,
    end: date,
    quality: QualityConfig,
) -> HoursVerdict:
    """Judge each employee-day of start..end before anything is published (write, audit,
    publish). The independent re-derivation runs one day at a time (~400 rows/s): past
    `rederive_max_employees` (or `rederive_max_employee_days` over the window) a stable sample of
    employees is re-derived and compared, so the check's cost does not grow with the window."""
    raw = [
        raw_attendance_gate(attendance, start, end, quality=quality),
        raw_approvals_gate(approvals, start, end, quality=quality),
    ]
    complete = completeness_gate(
        roster, attendance, approvals, calendar, start, end, quality=quality
    )
    size = quality.rederive_sample_size((end - start).days + 1)
    sample = stable_sample(roster["userid"].unique().tolist(), size)
    mine, people, points, approved = (
        f[f["userid"].isin(sample)] for f in (hours, roster, attendance, approvals)
    )
    rederived = derive_frame(people, points, approved, overrides, rules, calendar)
    valid = hours_gate(mine, rederived, people, quality=quality)
    share = held_back_share_gate([*raw, complete, valid], hours, quality=quality)
    return HoursVerdict(
        raw=raw,
        complete=complete,
        valid=valid,
        share=share,
        calendar=calendar_gate(hours["work_date"].unique(), calendar, quality=quality),
        patterns=patterns_gate(hours, quality),
        sample=sample,
    )
