"""The approvals query (new host ``POST /v1.0/attendance/approvals/query``, metered): leave,
trips, overtime and 补卡 overlapping a window of at most 30 days, for up to 50 people."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from attendance_pipeline.simulators.dingtalk.protocol import (
    MAX_USERS_PER_CALL,
    BadParam,
    CompanyApi,
    Reply,
    Request,
    Route,
    int_param,
    json_reply,
)

MAX_APPROVAL_SPAN_MS = 30 * 86_400_000


class ApprovalsApi(CompanyApi):
    def routes(self) -> list[Route]:
        return [Route("/v1.0/attendance/approvals/query", "POST", "metered", self._query)]

    def _query(self, req: Request) -> Reply:
        body = req.json_object()
        raw = body.get("userIds")
        if not isinstance(raw, str):
            raise BadParam("userIds must be a comma-separated string")
        users = list(dict.fromkeys(u.strip() for u in raw.split(",") if u.strip()))
        if not users:
            raise BadParam("userIds is empty")
        if len(users) > MAX_USERS_PER_CALL:
            raise BadParam(f"userIds has {len(users)} userids; at most {MAX_USERS_PER_CALL}")
        biz_raw = body.get("bizTypes")
        biz_types: set[int] | None = None
        if biz_raw is not None:
            if not isinstance(biz_raw, list):
                raise BadParam("bizTypes must be a list of integers")
            biz_types = {int_param(b, "bizTypes") for b in biz_raw} or None
        t_from = int_param(body.get("fromDateTime"), "fromDateTime")
        t_to = int_param(body.get("toDateTime"), "toDateTime")
        if t_to < t_from:
            raise BadParam("toDateTime is before fromDateTime")
        if t_to - t_from > MAX_APPROVAL_SPAN_MS:
            raise BadParam("fromDateTime and toDateTime may be at most 30 days apart")
        today = self._today()
        horizon = today - timedelta(days=self._history_days)
        result: list[dict[str, Any]] = []
        for uid in users:
            for a in self.company.approvals_between_ms(
                uid, t_from, t_to, today, served_from=horizon
            ):
                if biz_types is None or a["bizType"] in biz_types:
                    result.append(a)
        return json_reply({"result": result})
