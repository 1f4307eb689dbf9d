"""Attendance results (`attendance/list`, metered) and attendance groups.

Results are cut to the contract's limits (50 users x 7 days), paged until `hasMore` is false and
de-duplicated by `id`. Groups (`docs/dingtalk.md` gives every parameter and where its name comes
from): `attendance_group_map` pages legacy `getsimplegroups` and each group's
`group/memberusers/list`. Planned shifts: `schedules` pages legacy `listschedule` for one day.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import Any

from attendance_pipeline.china_time import dingtalk_date_string
from attendance_pipeline.dingtalk.errors import DingTalkBadReply
from attendance_pipeline.dingtalk.transport import (
    ATTENDANCE_LIST,
    GROUP_MEMBERS,
    GROUPS_LIST,
    SCHEDULE_LIST,
    DingTalkTransport,
    field,
    unique_by,
)

log = logging.getLogger(__name__)

SCHEDULE_PAGE = 200  # listschedule `size`: documented maximum and default


class AttendanceApi(DingTalkTransport):
    """Attendance results per check point, and who is in which attendance group."""

    def attendance(self, userids: Sequence[str], start: date, end: date) -> list[dict[str, Any]]:
        """Attendance results (one record per scheduled check point) for start..end inclusive."""
        tasks = self._user_windows(
            ATTENDANCE_LIST, userids, start, end, self.options.attendance_span_days
        )
        results = self._map(lambda task: self._attendance_chunk(*task), tasks, ATTENDANCE_LIST)
        required = ("userId", "workDate", "checkType", "timeResult")
        return unique_by(ATTENDANCE_LIST, results, "id", int, required, "record")

    def attendance_groups(self) -> list[dict[str, Any]]:
        """Every attendance group (legacy `getsimplegroups`, offset/size pages): group_id,
        group_name, type, member_count, ..."""
        groups: list[dict[str, Any]] = []
        offset = 0
        size = self.options.group_page_size
        while True:
            reply = self._legacy(
                GROUPS_LIST, "/topapi/attendance/getsimplegroups", {"offset": offset, "size": size}
            )
            result = field(reply, "result", GROUPS_LIST, dict)
            page = result.get("groups") or []
            if not isinstance(page, list):
                raise DingTalkBadReply(GROUPS_LIST, "`result.groups` is not a list")
            for group in page:
                if "group_id" not in group:
                    raise DingTalkBadReply(GROUPS_LIST, "a group has no `group_id`")
            groups.extend(page)
            if not result.get("has_more") or not page:
                return groups
            offset += size

    def schedules(self, day: date) -> list[dict[str, Any]]:
        """The company's planned check points of `day` (legacy `listschedule`, offset/size
        pages of 200): userid, check_type, plan_check_time, group_id, class_id, ... A person
        with no entry has no shift that day; fixed groups are planned only 15 days ahead."""
        plans: list[dict[str, Any]] = []
        offset, size = 0, SCHEDULE_PAGE
        while True:
            reply = self._legacy(
                SCHEDULE_LIST,
                "/topapi/attendance/listschedule",
                {"workDate": dingtalk_date_string(day), "offset": offset, "size": size},
            )
            result = field(reply, "result", SCHEDULE_LIST, dict)
            page = result.get("schedules") or []
            if not isinstance(page, list):
                raise DingTalkBadReply(SCHEDULE_LIST, "`result.schedules` is not a list")
            for plan in page:
                missing = {"userid", "check_type", "plan_check_time"} - set(plan)
                if missing:
                    raise DingTalkBadReply(
                        SCHEDULE_LIST, f"a schedule has no {', '.join(sorted(missing))}"
                    )
            plans.extend(page)
            if not result.get("has_more") or not page:
                return plans
            offset += size

    def attendance_group_members(self, group_id: int, op_user_id: str) -> list[str]:
        """Userids of one group's members, however they were added (`memberusers/list`)."""
        members: list[str] = []
        cursor: int = 0
        while True:
            reply = self._legacy(
                GROUP_MEMBERS,
                "/topapi/attendance/group/memberusers/list",
                {"op_user_id": op_user_id, "group_id": int(group_id), "cursor": cursor},
            )
            result = field(reply, "result", GROUP_MEMBERS, dict)
            members.extend(str(u) for u in result.get("result") or [])
            if not result.get("has_more"):
                return members
            if result.get("cursor") is None:
                raise DingTalkBadReply(GROUP_MEMBERS, "`has_more` without a `cursor`")
            cursor = int(result["cursor"])

    def attendance_group_map(self, op_user_id: str) -> dict[str, int]:
        """{userid: attendance group id} for the whole company; people absent from the map are in
        no attendance group (they do not punch). `op_user_id`: an admin's userid, which the
        member-list API requires as the operator."""
        groups = self.attendance_groups()
        ids = [int(g["group_id"]) for g in groups]
        lists = self._map(lambda gid: self.attendance_group_members(gid, op_user_id), ids)
        found: dict[str, int] = {}
        for group_id, members in zip(ids, lists, strict=True):
            for userid in members:
                if found.setdefault(userid, group_id) != group_id:
                    log.warning(
                        "DingTalk: %s is in attendance groups %s and %s; keeping the first",
                        userid,
                        found[userid],
                        group_id,
                    )
        return found

    def _attendance_chunk(
        self, chunk: list[str], window: tuple[date, date]
    ) -> list[dict[str, Any]]:
        first, last = window
        records: list[dict[str, Any]] = []
        offset = 0
        while True:
            reply = self._legacy(
                ATTENDANCE_LIST,
                "/attendance/list",
                {
                    "workDateFrom": dingtalk_date_string(first),
                    "workDateTo": dingtalk_date_string(last),
                    "userIdList": chunk,
                    "offset": offset,
                    "limit": self.options.page_size,
                    "isI18n": False,
                },
            )
            page = reply.get("recordresult") or []
            if not isinstance(page, list):
                raise DingTalkBadReply(ATTENDANCE_LIST, "`recordresult` is not a list")
            records.extend(page)
            if not reply.get("hasMore"):
                return records
            offset += self.options.page_size
