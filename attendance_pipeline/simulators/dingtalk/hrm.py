"""The HR (智能人事) dismission APIs on the new host: ``hrm/employees/dismissions`` (who has left,
paged) and ``hrm/employees/dimissionInfos`` (their details). Not attendance or approval APIs, so
not metered (assumption); behind their own permission (``deny_api("hrm")``)."""

from __future__ import annotations

import json
from typing import Any

from attendance_pipeline.simulators.dingtalk.protocol import (
    BadParam,
    CompanyApi,
    Reply,
    Request,
    Route,
    json_reply,
    query_int,
)

MAX_HRM_PAGE = 50  # dismissions `maxResults` and dimissionInfos `userIdList` (documented 50)
HRM_APIS = ("hrm/employees/dismissions", "hrm/employees/dimissionInfos")


class HrmApi(CompanyApi):
    def routes(self) -> list[Route]:
        return [
            Route("/v1.0/hrm/employees/dismissions", "GET", "org", self._dismissions),
            Route("/v1.0/hrm/employees/dimissionInfos", "GET", "org", self._dimission_infos),
        ]

    def _dismissions(self, req: Request) -> Reply:
        """``GET /v1.0/hrm/employees/dismissions?maxResults=&nextToken=``."""
        max_results = query_int(req.query, "maxResults", None)
        token = query_int(req.query, "nextToken", 0)
        if not 1 <= max_results <= MAX_HRM_PAGE:
            raise BadParam(f"maxResults must be 1..{MAX_HRM_PAGE}")
        if token < 0:
            raise BadParam("nextToken must be >= 0")
        ids = [d["userId"] for d in self.company.leavers(self._today())]
        page = ids[token : token + max_results]
        has_more = token + max_results < len(ids)
        body: dict[str, Any] = {"userIdList": page, "hasMore": has_more}
        if has_more:
            body["nextToken"] = token + max_results
        return json_reply(body)

    def _dimission_infos(self, req: Request) -> Reply:
        """``GET /v1.0/hrm/employees/dimissionInfos?userIdList=["a","b"]`` (the SDK sends the list
        as a JSON array string); people who have not left are left out."""
        raw = req.query.get("userIdList")
        try:
            ids = json.loads(raw) if raw is not None else None
        except ValueError:
            ids = None
        if not isinstance(ids, list) or not ids or not all(isinstance(u, str) for u in ids):
            raise BadParam('userIdList must be a JSON array of userids, e.g. ["a","b"]')
        if len(ids) > MAX_HRM_PAGE:
            raise BadParam(f"userIdList has {len(ids)} userids; at most {MAX_HRM_PAGE}")
        today = self._today()
        infos = []
        for uid in dict.fromkeys(ids):
            info = self.company.dimission(uid, today) if self.company.has_user(uid) else None
            if info is not None:
                infos.append(info)
        return json_reply({"result": infos})
