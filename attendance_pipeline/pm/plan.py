"""Worklog planning: countable effective hours → worklogs per PM issue (pure pandas).

`config/allocations.csv` says which issues get an employee's hours and in what shares: rows for
the user win; otherwise the rows of the nearest department among the user's departments and
their ancestors (dept 1, the root, catches everyone). Shares are split in whole minutes with the
largest-remainder method, so the parts add up exactly to the day's hours.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from attendance_pipeline.config_files import ConfigError, open_config_csv
from attendance_pipeline.pipeline_config import Scope
from attendance_pipeline.pm.base import PlannedWorklog, worklog_key
from attendance_pipeline.schemas import WORKLOG_PLAN, empty_frame
from attendance_pipeline.vocabulary import MappingStatus

SKIPPED_COLUMNS = ["work_date", "userid", "name", "hours", "reason"]
# What planning reads of an effective_hours row.
PLANNED_FROM = ("work_date", "userid", "name", "dept_id", "status", "effective_hours",
                "overtime_hours", "rules_version")  # fmt: skip
EXEMPT_SKIPPED = "exempt (in no attendance group); set push_exempt: true in rules.yaml to push"


@dataclass(frozen=True)
class Allocation:
    issue: str
    share: float


@dataclass(frozen=True)
class Allocations:
    by_user: dict[str, tuple[Allocation, ...]]
    by_dept: dict[int, tuple[Allocation, ...]]

    def for_person(self, userid: str, dept_ancestors: list[int]) -> tuple[Allocation, ...]:
        if userid in self.by_user:
            return self.by_user[userid]
        for dept in dept_ancestors:
            if dept in self.by_dept:
                return self.by_dept[dept]
        return ()


def load_allocations(path: Path) -> Allocations:
    """`allocations.csv`: userid,dept_id,issue,share (one of userid/dept_id per row)."""
    by_user: dict[str, list[Allocation]] = {}
    by_dept: dict[int, list[Allocation]] = {}
    if path.exists():
        with open_config_csv(path) as handle:
            reader = csv.DictReader(handle)
            missing = {"userid", "dept_id", "issue", "share"} - set(reader.fieldnames or [])
            if missing:
                raise ConfigError(f"{path} line 1: missing column(s) {', '.join(sorted(missing))}")
            for line, row in enumerate(reader, start=2):
                cells = {k: (v or "").strip() for k, v in row.items() if k}
                if not any(cells.values()):
                    continue
                userid, dept, issue = cells["userid"], cells["dept_id"], cells["issue"]
                if bool(userid) == bool(dept):
                    raise ConfigError(
                        f"{path} line {line}: give exactly one of `userid`, `dept_id`"
                    )
                if not issue:
                    raise ConfigError(f"{path} line {line}: `issue` is empty")
                try:
                    share = float(cells["share"] or "1")
                except ValueError:
                    raise ConfigError(
                        f"{path} line {line}: `share` {cells['share']!r} must be a number"
                    ) from None
                if share <= 0:
                    raise ConfigError(f"{path} line {line}: `share` must be above 0")
                if userid:
                    by_user.setdefault(userid, []).append(Allocation(issue, share))
                else:
                    try:
                        by_dept.setdefault(int(dept), []).append(Allocation(issue, share))
                    except ValueError:
                        raise ConfigError(
                            f"{path} line {line}: `dept_id` {dept!r} must be a number"
                        ) from None
    return Allocations(
        {k: tuple(v) for k, v in by_user.items()}, {k: tuple(v) for k, v in by_dept.items()}
    )


def split_minutes(total_minutes: int, shares: list[float]) -> list[int]:
    """Whole minutes per share adding up exactly to the total (largest remainder)."""
    return list(_split(total_minutes, tuple(shares)))


@lru_cache(maxsize=65536)
def _split(total_minutes: int, shares: tuple[float, ...]) -> tuple[int, ...]:
    # A plan asks for the same few (minutes, shares) pairs thousands of times.
    weights = np.asarray(shares, dtype=float)
    exact = total_minutes * weights / weights.sum()
    parts = np.floor(exact).astype(int)
    left = total_minutes - int(parts.sum())
    order = np.argsort(-(exact - parts), kind="stable")
    parts[order[:left]] += 1
    return tuple(int(p) for p in parts)


def dept_list(values: Any) -> list[int]:
    """A roster list column's value (department ids or ancestors) as ints; null is empty."""
    return [int(v) for v in values] if values is not None else []


def in_scope(userid: str, dept_ancestors: list[int], scope: Scope) -> bool:
    if not scope.departments and not scope.users:
        return True
    return userid in scope.users or any(d in scope.departments for d in dept_ancestors)


def plan_days(
    hours: pd.DataFrame,
    roster: pd.DataFrame,
    mapping: pd.DataFrame,
    allocations: Allocations,
    scope: Scope,
    pm_system: str,
    push_overtime: bool = False,
    push_exempt: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`plan_worklogs` for each work day of `hours` against that day's roster and mapping
    snapshots (`snapshot_date`); the plans and the skipped days of all days, concatenated."""
    mapping_of = dict(list(mapping.groupby("snapshot_date", sort=False)))
    roster_of = dict(list(roster.groupby("snapshot_date", sort=False)))
    plans, skipped = [], []
    for day, rows in hours.groupby("work_date", sort=True):
        plan, skips = plan_worklogs(
            rows,
            roster_of.get(day, roster.iloc[:0]),
            mapping_of.get(day, mapping.iloc[:0]),
            allocations,
            scope,
            pm_system,
            push_overtime,
            push_exempt,
        )
        plans.append(plan)
        skipped.append(skips)
    if not plans:
        return empty_frame(WORKLOG_PLAN), pd.DataFrame(columns=SKIPPED_COLUMNS)
    return pd.concat(plans, ignore_index=True), pd.concat(skipped, ignore_index=True)


def plan_worklogs(
    hours: pd.DataFrame,
    roster: pd.DataFrame,
    mapping: pd.DataFrame,
    allocations: Allocations,
    scope: Scope,
    pm_system: str,
    push_overtime: bool = False,
    push_exempt: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(plan with WORKLOG_PLAN columns, skipped in-scope employee-days with the reason).

    `push_overtime`, `push_exempt`: the rules flags of the same names. An `exempt` day (in no
    attendance group: no punches, so no evidence of work) is planned only with `push_exempt`;
    otherwise it is skipped with the reason, overtime included.
    """
    # Plain dicts: a pandas lookup per employee-day costs ~100 µs, a dict lookup ~0.1 µs.
    # Columns as Python lists first: iterating Arrow-backed columns costs ~2 µs a value.
    people = roster.drop_duplicates(["snapshot_date", "userid"])
    ancestors_of = {
        (snapshot, userid): dept_list(value)
        for snapshot, userid, value in zip(
            people["snapshot_date"].tolist(),
            people["userid"].tolist(),
            people["dept_ancestors"].tolist(),
            strict=True,
        )
    }
    userids = mapping["userid"].tolist()
    status_of = dict(zip(userids, mapping["status"].tolist(), strict=True))
    reason_of = dict(zip(userids, mapping["reason"].tolist(), strict=True))
    pm_user_of = dict(zip(userids, mapping["pm_user"].tolist(), strict=True))
    rows, skipped = [], []
    for day in hours[list(PLANNED_FROM)].astype(object).itertuples(index=False):
        ancestors = ancestors_of.get((day.work_date, day.userid), [])
        if not in_scope(day.userid, ancestors, scope):
            continue
        amounts = [("work", float(day.effective_hours))]
        if push_overtime and day.overtime_hours > 0:
            amounts.append(("overtime", float(day.overtime_hours)))
        amounts = [(kind, h) for kind, h in amounts if h > 0]
        if not amounts:
            continue
        if day.status == "exempt" and not push_exempt:
            skipped.append(_skip(day, EXEMPT_SKIPPED))
            continue
        status = status_of.get(day.userid, MappingStatus.UNMAPPED.value)
        if status != "mapped":
            reason = reason_of.get(day.userid, "not in the day's user mapping")
            skipped.append(_skip(day, f"{status}: {reason}"))
            continue
        split = allocations.for_person(day.userid, ancestors)
        if not split:
            skipped.append(_skip(day, "no allocation in config/allocations.csv"))
            continue
        pm_user = str(pm_user_of[day.userid])
        for kind, amount in amounts:
            minutes = split_minutes(round(amount * 60), [a.share for a in split])
            for allocation, part in zip(split, minutes, strict=True):
                if part <= 0:
                    continue
                key = worklog_key(day.userid, day.work_date, allocation.issue, kind)
                rows.append(
                    {
                        "work_date": day.work_date,
                        "worklog_key": key,
                        "userid": day.userid,
                        "name": day.name,
                        "dept_id": day.dept_id,
                        "pm_system": pm_system,
                        "pm_user": pm_user,
                        "issue": allocation.issue,
                        "kind": kind,
                        "seconds": part * 60,
                        "day_hours": amount,
                        "comment": f"{day.name or day.userid} {day.work_date} {kind}: "
                        f"{_hours(part)} of {amount:g} h ({day.status})",
                        "rules_version": day.rules_version,
                    }
                )
    plan = pd.DataFrame(rows, columns=WORKLOG_PLAN.names)
    skipped_frame = pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)
    return plan.sort_values(["work_date", "userid", "issue", "kind"]).reset_index(drop=True), (
        skipped_frame
    )


def planned_worklogs(plan: pd.DataFrame) -> list[PlannedWorklog]:
    return [
        PlannedWorklog(
            worklog_key=row.worklog_key,
            userid=row.userid,
            work_date=row.work_date,
            pm_user=row.pm_user,
            issue=row.issue,
            seconds=int(row.seconds),
            kind=row.kind,
            comment=row.comment,
        )
        for row in plan.itertuples(index=False)
    ]


def _skip(day: object, reason: str) -> dict[str, object]:
    return {
        "work_date": getattr(day, "work_date"),  # noqa: B009
        "userid": getattr(day, "userid"),  # noqa: B009
        "name": getattr(day, "name"),  # noqa: B009
        "hours": getattr(day, "effective_hours"),  # noqa: B009
        "reason": reason,
    }


def _hours(minutes: int) -> str:
    return f"{minutes / 60:g} h"
