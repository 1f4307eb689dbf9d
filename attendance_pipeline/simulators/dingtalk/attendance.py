"""The attendance APIs (all metered): ``attendance/list`` (results), ``attendance/listRecord``
(punches), the attendance groups (``getsimplegroups`` and ``group/memberusers/list``) and the
planned shifts of a day (``listschedule``). Work dates older than ``history_days`` are silently
not served; fixed-shift groups' plans only 15 days ahead, as DingTalk documents."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from attendance_pipeline.simulators.dingtalk.protocol import (
    BadParam,
    CompanyApi,
    Reply,
    Request,
    Route,
    cursor_param,
    int_param,
    json_reply,
    ok_result,
    parse_datetime,
    parse_work_date,
    user_list,
)

MAX_ATTENDANCE_LIMIT = 50
MAX_ATTENDANCE_DAYS = 7
MAX_GROUP_PAGE = 10  # getsimplegroups `size` (documented maximum 10)
MAX_SCHEDULE_PAGE = 200  # listschedule `size` (documented maximum and default 200)
SCHEDULE_DAYS_AHEAD = 15  # "固定班制只能查到未来15天的排班信息"
GROUP_MEMBER_PAGE = 100  # memberusers/list rows per page: assumption (no size parameter)


class AttendanceApi(CompanyApi):
    def routes(self) -> list[Route]:
        return [
            Route("/attendance/list", "POST", "metered", self._list),
            Route("/attendance/listRecord", "POST", "metered", self._list_record),
            Route("/topapi/attendance/getsimplegroups", "POST", "metered", self._simple_groups),
            Route(
                "/topapi/attendance/group/memberusers/list",
                "POST",
                "metered",
                self._group_member_users,
            ),
            Route("/topapi/attendance/listschedule", "POST", "metered", self._list_schedule),
        ]

    def _list(self, req: Request) -> Reply:
        body = req.json_object()
        d_from = parse_work_date(body.get("workDateFrom"), "workDateFrom")
        d_to = parse_work_date(body.get("workDateTo"), "workDateTo")
        users = user_list(body.get("userIdList"), "userIdList")
        offset = int_param(body.get("offset", 0), "offset")
        limit = int_param(body.get("limit"), "limit")
        if offset < 0:
            raise BadParam("offset must be >= 0")
        if not 1 <= limit <= MAX_ATTENDANCE_LIMIT:
            raise BadParam(f"limit must be 1..{MAX_ATTENDANCE_LIMIT}")
        if d_to < d_from:
            raise BadParam("workDateTo is before workDateFrom")
        if (d_to - d_from).days + 1 > MAX_ATTENDANCE_DAYS:
            raise BadParam("时间跨度太大", 41041)
        records: list[dict[str, Any]] = []
        if not body.get("isI18n"):
            today = self._today()
            d = max(d_from, today - timedelta(days=self._history_days))
            while d <= d_to:
                for uid in users:
                    records.extend(self.company.attendance(uid, d, today))
                d += timedelta(days=1)
        page = records[offset : offset + limit]
        return json_reply(
            {
                "errcode": 0,
                "errmsg": "ok",
                "hasMore": offset + limit < len(records),
                "recordresult": page,
                "request_id": req.request_id,
            }
        )

    def _list_record(self, req: Request) -> Reply:
        body = req.json_object()
        users = user_list(body.get("userIds"), "userIds")
        t_from = parse_datetime(body.get("checkDateFrom"), "checkDateFrom")
        t_to = parse_datetime(body.get("checkDateTo"), "checkDateTo")
        if t_to < t_from:
            raise BadParam("checkDateTo is before checkDateFrom")
        if t_to - t_from > timedelta(days=MAX_ATTENDANCE_DAYS):
            raise BadParam("时间跨度太大", 41041)
        lo, hi = int(t_from.timestamp() * 1000), int(t_to.timestamp() * 1000)
        today = self._today()
        horizon = today - timedelta(days=self._history_days)
        out: list[dict[str, Any]] = []
        d = max(t_from.date() - timedelta(days=1), horizon)
        while d <= t_to.date():
            for uid in users:
                for rec in self.company.attendance(uid, d, today):
                    if "recordId" in rec and lo <= rec["userCheckTime"] <= hi:
                        punch = {k: v for k, v in rec.items() if k not in ("id", "recordId")}
                        out.append({"id": rec["recordId"], **punch, "isLegal": "Y"})
            d += timedelta(days=1)
        out.sort(key=lambda r: (r["userCheckTime"], r["id"]))
        return json_reply(
            {"errcode": 0, "errmsg": "ok", "recordresult": out, "request_id": req.request_id}
        )

    def _simple_groups(self, req: Request) -> Reply:
        """Legacy ``POST /topapi/attendance/getsimplegroups`` ``{offset, size}``."""
        body = req.json_object()
        offset, size = offset_size(body, MAX_GROUP_PAGE)
        groups = self.company.groups(self._today())
        page = groups[offset : offset + size]
        return ok_result(req, {"has_more": offset + size < len(groups), "groups": page})

    def _group_member_users(self, req: Request) -> Reply:
        """Legacy ``POST /topapi/attendance/group/memberusers/list`` ``{op_user_id, group_id,
        cursor}``: every member's userid, however they were added (by department or person)."""
        body = req.json_object()
        op = body.get("op_user_id")
        if not isinstance(op, str) or not self.company.has_user(op):
            raise BadParam("op_user_id must be the userid of an existing user")
        group_id = int_param(body.get("group_id"), "group_id")
        cursor = cursor_param(body)
        today = self._today()
        if group_id not in {g["group_id"] for g in self.company.groups(today)}:
            raise BadParam(f"考勤组不存在: {group_id}")
        members = self.company.group_members(group_id, today)
        page = members[cursor : cursor + GROUP_MEMBER_PAGE]
        has_more = cursor + GROUP_MEMBER_PAGE < len(members)
        result: dict[str, Any] = {"has_more": has_more, "result": page}
        if has_more:
            result["cursor"] = cursor + GROUP_MEMBER_PAGE
        return ok_result(req, result)

    def _list_schedule(self, req: Request) -> Reply:
        """Legacy ``POST /topapi/attendance/listschedule`` ``{workDate, offset, size}``: the
        company's planned check points of one day (only the date part of ``workDate`` counts)."""
        body = req.json_object()
        day = parse_work_date(body.get("workDate"), "workDate")
        offset, size = offset_size(body, MAX_SCHEDULE_PAGE)
        today = self._today()
        served = today - timedelta(days=self._history_days) <= day
        served = served and day <= today + timedelta(days=SCHEDULE_DAYS_AHEAD)
        plans = self.company.schedules(day) if served else []
        page = plans[offset : offset + size]
        return ok_result(req, {"has_more": offset + size < len(plans), "schedules": page})


def offset_size(body: dict[str, Any], maximum: int) -> tuple[int, int]:
    """A legacy TOP API's ``{offset, size}`` page: offset >= 0 (default 0), size 1..maximum
    (default maximum)."""
    offset = int_param(body.get("offset", 0), "offset")
    size = int_param(body.get("size", maximum), "size")
    if offset < 0:
        raise BadParam("offset must be >= 0")
    if not 1 <= size <= maximum:
        raise BadParam(f"size must be 1..{maximum}")
    return offset, size
