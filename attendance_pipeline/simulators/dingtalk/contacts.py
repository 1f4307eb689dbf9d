"""The contacts (通讯录) APIs: ``department/listsubid``, ``department/listsub`` and ``user/list``
(legacy host, not metered). Leavers drop out of ``user/list`` once their last work day is past."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from attendance_pipeline.simulators.dingtalk.company import ROOT_DEPT_ID, Company
from attendance_pipeline.simulators.dingtalk.protocol import (
    BadParam,
    CompanyApi,
    Reply,
    Request,
    Route,
    int_param,
    ok_result,
)

MAX_USER_PAGE = 100


class ContactsApi(CompanyApi):
    def __init__(self, company: Company, today: Callable[[], date]) -> None:
        super().__init__(company, today)
        self._depts = {d["dept_id"]: d for d in company.departments()}
        self._children: dict[int, list[int]] = {ROOT_DEPT_ID: []}
        for d in company.departments():
            self._children.setdefault(d["dept_id"], [])
            self._children.setdefault(d["parent_id"], []).append(d["dept_id"])
        self._members: dict[int, list[dict[str, Any]]] = {}
        for u in company.users():
            for dept in u["dept_id_list"]:
                self._members.setdefault(dept, []).append(u)

    def routes(self) -> list[Route]:
        return [
            Route("/topapi/v2/department/listsubid", "POST", "org", self._listsubid),
            Route("/topapi/v2/department/listsub", "POST", "org", self._listsub),
            Route("/topapi/v2/user/list", "POST", "org", self._user_list),
        ]

    def _org_body(self, req: Request) -> tuple[dict[str, Any], int]:
        body = req.json_object()
        dept_id = int_param(body.get("dept_id"), "dept_id")
        if dept_id != ROOT_DEPT_ID and dept_id not in self._depts:
            raise BadParam("部门不存在", 60003)
        return body, dept_id

    def _listsubid(self, req: Request) -> Reply:
        _, dept_id = self._org_body(req)
        return ok_result(req, {"dept_id_list": list(self._children.get(dept_id, []))})

    def _listsub(self, req: Request) -> Reply:
        _, dept_id = self._org_body(req)
        return ok_result(req, [dict(self._depts[c]) for c in self._children.get(dept_id, [])])

    def _user_list(self, req: Request) -> Reply:
        body, dept_id = self._org_body(req)
        cursor = body.get("cursor", 0)
        cursor = 0 if cursor is None else int_param(cursor, "cursor")
        size = body.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_USER_PAGE:
            raise BadParam(f"size must be 1..{MAX_USER_PAGE}", 40069)
        if cursor < 0:
            raise BadParam("cursor must be >= 0")
        today = self._today()
        members = [
            u
            for u in self._members.get(dept_id, [])
            if not self.company.has_left(u["userid"], today)
        ]
        page = [
            {**u, "dept_id_list": list(u["dept_id_list"])} for u in members[cursor : cursor + size]
        ]
        has_more = cursor + size < len(members)
        result: dict[str, Any] = {"has_more": has_more, "list": page}
        if has_more:
            result["next_cursor"] = cursor + size
        return ok_result(req, result)
