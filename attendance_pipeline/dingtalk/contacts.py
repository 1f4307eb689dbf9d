"""Contacts (通讯录) reads: the department tree and its users. Not metered."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from attendance_pipeline.dingtalk.errors import DingTalkBadReply
from attendance_pipeline.dingtalk.transport import DingTalkTransport, field


class ContactsApi(DingTalkTransport):
    """`department/listsub` and `user/list`, walked and paged."""

    def list_departments(self) -> list[dict[str, Any]]:
        """Every department under the root, walking `listsub` one level at a time."""
        found: list[dict[str, Any]] = []
        level = [1]
        seen = {1}
        while level:
            replies = self._map(
                lambda dept_id: self._legacy(
                    "department/listsub",
                    "/topapi/v2/department/listsub",
                    {"dept_id": dept_id, "language": "zh_CN"},
                ),
                level,
            )
            next_level = []
            for reply in replies:
                for dept in field(reply, "result", "department/listsub", list):
                    dept_id = int(dept["dept_id"])
                    if dept_id not in seen:
                        seen.add(dept_id)
                        found.append(dept)
                        next_level.append(dept_id)
            level = next_level
        return found

    def list_users(self, dept_ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Every user of the given departments (default: the whole tree), once each.

        A person in two departments is listed by both; they are merged by `userid` with the union
        of their `dept_id_list`.
        """
        if dept_ids is None:
            dept_ids = [1, *(int(d["dept_id"]) for d in self.list_departments())]
        pages = self._map(self._users_of_department, list(dept_ids))
        merged: dict[str, dict[str, Any]] = {}
        for users in pages:
            for user in users:
                userid = user.get("userid")
                if not isinstance(userid, str) or not userid:
                    raise DingTalkBadReply("user/list", f"a user has no `userid`: {sorted(user)}")
                if userid in merged:
                    known = merged[userid].setdefault("dept_id_list", [])
                    known.extend(d for d in user.get("dept_id_list", []) if d not in known)
                else:
                    merged[userid] = dict(user)
        return [merged[k] for k in sorted(merged)]

    def _users_of_department(self, dept_id: int) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = []
        cursor = 0
        while True:
            reply = self._legacy(
                "user/list",
                "/topapi/v2/user/list",
                {"dept_id": dept_id, "cursor": cursor, "size": self.options.user_page_size},
            )
            result = field(reply, "result", "user/list", dict)
            users.extend(result.get("list") or [])
            if not result.get("has_more"):
                return users
            cursor = result["next_cursor"]
