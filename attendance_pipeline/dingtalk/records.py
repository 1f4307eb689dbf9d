"""DingTalk replies to typed frames with the lake's schemas (pure pandas, no Dagster).

All epoch milliseconds become Asia/Shanghai timestamps; `workDate` becomes the calendar date in
China, so an OffDuty punch at 00:30 keeps the work date DingTalk gave it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from upath import UPath

from attendance_pipeline.china_time import (
    SHANGHAI,
    date_to_ms,
    local_datetime,
    ms_to_date,
    ms_to_datetime,
)
from attendance_pipeline.dingtalk.errors import DingTalkBadReply
from attendance_pipeline.schemas import RAW_APPROVALS, RAW_ATTENDANCE, ROSTER, empty_frame


def department_ancestors(dept_ids: Sequence[int], parents: dict[int, int | None]) -> list[int]:
    """The user's departments, then their parents, grandparents… nearest first, each once."""
    seen: list[int] = []
    level = [int(d) for d in dept_ids]
    while level:
        next_level = []
        for dept in level:
            if dept not in seen:
                seen.append(dept)
                parent = parents.get(dept)
                if parent is not None:
                    next_level.append(int(parent))
        level = next_level
    return seen


def roster_frame(
    users: Sequence[dict[str, Any]],
    snapshot_dates: Iterable[date],
    pulled_at: datetime,
    departments: Sequence[dict[str, Any]] = (),
    attendance_groups: Mapping[str, int] | None = None,
    last_work_dates: Mapping[str, date] | None = None,
) -> pd.DataFrame:
    """One row per user per snapshot date; a user appears from their hire date on, and a leaver
    up to and including their last work day.

    `departments` ({dept_id, parent_id}) give `dept_ancestors`, used for recursive scopes and
    department allocations; the root (1) is every department's last ancestor.
    `attendance_groups` ({userid: group id}) fills `attendance_group_id`; a user missing from it
    is in no attendance group (null). Without the map the column stays null for everyone.
    `last_work_dates` ({userid: date}) marks leavers.
    """
    groups = attendance_groups or {}
    leaving = last_work_dates or {}
    parents: dict[int, int | None] = {1: None}
    for dept in departments:
        parent = dept.get("parent_id")
        parents[int(dept["dept_id"])] = int(parent) if parent is not None else 1
    base = []
    for user in users:
        hired_ms = user.get("hired_date")
        base.append(
            {
                "userid": str(user["userid"]),
                "unionid": user.get("unionid"),
                "name": user.get("name"),
                "dept_ids": [int(d) for d in user.get("dept_id_list", [])],
                "dept_ancestors": department_ancestors(
                    [int(d) for d in user.get("dept_id_list", [])], parents
                ),
                "title": user.get("title"),
                "job_number": user.get("job_number"),
                "hired_date": ms_to_date(int(hired_ms)) if hired_ms is not None else None,
                "active": bool(user.get("active", True)),
                "leader": bool(user.get("leader", False)),
                "attendance_group_id": groups.get(str(user["userid"])),
                "last_work_date": leaving.get(str(user["userid"])),
                "email": user.get("email"),
                "org_email": user.get("org_email"),
                "mobile": user.get("mobile"),
            }
        )
    rows = []
    for snapshot in snapshot_dates:
        for user in base:
            hired = user["hired_date"]
            if hired is not None and hired > snapshot:
                continue
            last = user["last_work_date"]
            if last is not None and last < snapshot:
                continue
            rows.append({"snapshot_date": snapshot, **user, "pulled_at": pulled_at})
    if not rows:
        return empty_frame(ROSTER)
    frame = _typed(pd.DataFrame(rows), ROSTER.names)
    frame["attendance_group_id"] = frame["attendance_group_id"].astype("Int64")
    return frame


def stored_roster_users(folder: UPath, userids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The latest stored roster row of each userid (newest snapshot file first) as a
    user/list-shaped dict plus its `attendance_group_id`: what the pipeline last knew of people
    user/list no longer returns. E-mail and mobile come along (kept in the lake for matching)."""
    wanted = set(userids)
    found: dict[str, dict[str, Any]] = {}
    if not wanted or not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.parquet"), reverse=True):
        missing = sorted(wanted - found.keys())
        with path.open("rb") as handle:
            rows = pq.read_table(handle, filters=[("userid", "in", missing)]).to_pandas()
        for row in rows.to_dict("records"):
            hired = row.get("hired_date")
            group = row.get("attendance_group_id")
            user: dict[str, Any] = {
                "userid": str(row["userid"]),
                "dept_id_list": [int(d) for d in row.get("dept_ids", [])],
                "hired_date": date_to_ms(hired) if isinstance(hired, date) else None,
                "attendance_group_id": None if group is None or pd.isna(group) else int(group),
            }
            for key in ("unionid", "name", "title", "job_number", "active", "leader"):
                user[key] = row.get(key)
            for key in ("email", "org_email", "mobile"):
                user[key] = row.get(key) or None
            found[user["userid"]] = {k: v for k, v in user.items() if v is not None}
        if found.keys() >= wanted:
            break
    return found


def with_leavers(
    users: Sequence[dict[str, Any]],
    groups: Mapping[str, int],
    leavers: Sequence[Mapping[str, Any]],
    stored: Mapping[str, dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, int], dict[str, date]]:
    """Today's user/list plus the leavers it no longer returns: (users, groups, last work dates).

    A leaver's name and departments come from the HR API where it has them, else from their
    latest stored roster row (`stored`); their attendance group, which DingTalk drops when they
    leave, from that stored row, else the company's most common group. Someone still in
    user/list keeps their user/list fields and only gains a last work date.
    """
    out = [dict(u) for u in users]
    group_map = dict(groups)
    current = {str(u["userid"]) for u in users}
    counts = Counter(groups.values())
    usual = counts.most_common(1)[0][0] if counts else None
    last_work_dates: dict[str, date] = {}
    for leaver in leavers:
        userid = str(leaver["userid"])
        last_work_dates[userid] = leaver["last_work_date"]
        if userid in current:
            continue
        user = dict(stored.get(userid, {}))
        user["userid"] = userid
        if leaver.get("name"):
            user["name"] = leaver["name"]
        if leaver.get("dept_ids"):
            user["dept_id_list"] = list(leaver["dept_ids"])
        user.setdefault("dept_id_list", [])
        group = user.pop("attendance_group_id", None)
        group = group if group is not None else group_map.get(userid, usual)
        if group is not None:
            group_map[userid] = int(group)
        out.append(user)
        current.add(userid)
    return out, group_map, last_work_dates


def attendance_frame(records: Sequence[dict[str, Any]], pulled_at: datetime) -> pd.DataFrame:
    """One row per DingTalk check point, keyed by `id`."""
    if not records:
        return empty_frame(RAW_ATTENDANCE)
    rows = []
    for record in records:
        with _field_errors("attendance/list", "record", record.get("id")):
            rows.append(
                {
                    "id": int(record["id"]),
                    "record_id": _optional_int(record.get("recordId")),
                    "userid": str(record["userId"]),
                    "work_date": ms_to_date(int(record["workDate"])),
                    "check_type": record["checkType"],
                    "time_result": record["timeResult"],
                    "location_result": record.get("locationResult"),
                    "source_type": record.get("sourceType"),
                    "base_check_time": _optional_ts(record.get("baseCheckTime")),
                    "user_check_time": _optional_ts(record.get("userCheckTime")),
                    "group_id": _optional_int(record.get("groupId")),
                    "plan_id": _optional_int(record.get("planId")),
                    "proc_inst_id": _optional_str(record.get("procInstId")),
                    "approve_id": _optional_str(record.get("approveId")),
                    "pulled_at": pulled_at,
                }
            )
    return _typed(pd.DataFrame(rows), RAW_ATTENDANCE.names)


@contextmanager
def _field_errors(api: str, what: str, key: Any) -> Iterator[None]:
    """A reply field that is missing or of the wrong type, as an error naming API, row and field
    (DingTalk changed its schema: the sync stops before anything is stored)."""
    try:
        yield
    except KeyError as exc:
        raise DingTalkBadReply(api, f"{what} {key}: field {exc.args[0]!r} missing") from None
    except (TypeError, ValueError) as exc:
        raise DingTalkBadReply(
            api, f"{what} {key}: a field has an unexpected value ({exc})"
        ) from None


def approval_interval(approval: dict[str, Any]) -> tuple[datetime, datetime]:
    """The [begin, end) interval an approval covers, in China time, from its `durationUnit`.

    `day`: whole days, begin 00:00 to the day after end; `halfDay`: AM is the first half of the
    day and PM the second (split at 12:00); `hour`: the wall times given.
    """
    unit = approval.get("durationUnit")
    begin, end = str(approval["beginTime"]), str(approval.get("endTime", approval["beginTime"]))
    try:
        if unit == "day":
            first, last = date.fromisoformat(begin[:10]), date.fromisoformat(end[:10])
            return local_datetime(first), local_datetime(last + timedelta(days=1))
        if unit == "halfDay":
            return _half_day(begin, start=True), _half_day(end, start=False)
        if unit == "hour":
            return (
                datetime.strptime(begin, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI),
                datetime.strptime(end, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI),
            )
    except ValueError as exc:
        raise DingTalkBadReply(
            "attendance/approvals/query",
            f"approval {approval.get('approveId')}: times {begin!r}..{end!r} do not match "
            f"durationUnit {unit!r}",
        ) from exc
    raise DingTalkBadReply(
        "attendance/approvals/query",
        f"approval {approval.get('approveId')}: unknown durationUnit {unit!r}",
    )


def approvals_frame(
    approvals: Sequence[dict[str, Any]], start: date, end: date, pulled_at: datetime
) -> pd.DataFrame:
    """One row per (approval, day in start..end it overlaps)."""
    rows = []
    for approval in approvals:
        with _field_errors("attendance/approvals/query", "approval", approval.get("approveId")):
            rows.extend(_approval_days(approval, start, end, pulled_at))
    if not rows:
        return empty_frame(RAW_APPROVALS)
    frame = pd.DataFrame(rows).sort_values(["work_date", "userid", "approve_id"])
    return _typed(frame, RAW_APPROVALS.names)


def _approval_days(
    approval: dict[str, Any], start: date, end: date, pulled_at: datetime
) -> list[dict[str, Any]]:
    rows = []
    begin_at, end_at = approval_interval(approval)
    day = max(begin_at.date(), start)
    while day <= end and local_datetime(day) < end_at:
        if local_datetime(day + timedelta(days=1)) > begin_at:
            rows.append(
                {
                    "work_date": day,
                    "approve_id": str(approval["approveId"]),
                    "userid": str(approval["userId"]),
                    "biz_type": int(approval["bizType"]),
                    "sub_type": approval.get("subType"),
                    "tag_name": approval.get("tagName"),
                    "calculate_model": _optional_int(approval.get("calculateModel")),
                    "duration_unit": approval["durationUnit"],
                    "begin_time": str(approval["beginTime"]),
                    "end_time": str(approval.get("endTime", approval["beginTime"])),
                    "begin_at": begin_at,
                    "end_at": end_at,
                    "pulled_at": pulled_at,
                }
            )
        day += timedelta(days=1)
    return rows


def _half_day(text: str, *, start: bool) -> datetime:
    day = date.fromisoformat(text[:10])
    half = text[10:].strip().upper()
    if half not in ("AM", "PM"):
        raise ValueError(f"half day {text!r} must end in AM or PM")
    if start:
        return local_datetime(day, time(0) if half == "AM" else time(12))
    return local_datetime(day, time(12)) if half == "AM" else local_datetime(day + timedelta(1))


def _typed(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame.reindex(columns=columns).reset_index(drop=True)


def _optional_int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _optional_ts(value: Any) -> datetime | None:
    return None if value is None else ms_to_datetime(int(value))
