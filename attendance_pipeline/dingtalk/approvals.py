"""Approvals (`attendance/approvals/query` on the new host, metered): leave, trips, overtime,
make-up punches and field work, cut to 50 users x 30 days and de-duplicated by `approveId`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from attendance_pipeline.china_time import date_to_ms
from attendance_pipeline.dingtalk.transport import (
    APPROVALS_QUERY,
    DingTalkTransport,
    field,
    unique_by,
)

ALL_BIZ_TYPES = (1, 2, 3, 4, 5)


class ApprovalsApi(DingTalkTransport):
    """Approvals overlapping a range of days."""

    def approvals(
        self,
        userids: Sequence[str],
        start: date,
        end: date,
        biz_types: Sequence[int] = ALL_BIZ_TYPES,
    ) -> list[dict[str, Any]]:
        """Approvals of the users overlapping start 00:00 .. end 24:00 (China time)."""
        tasks = self._user_windows(
            APPROVALS_QUERY, userids, start, end, self.options.approvals_span_days
        )

        def fetch(task: tuple[list[str], tuple[date, date]]) -> list[dict[str, Any]]:
            chunk, (first, last) = task
            reply = self._new_host(
                APPROVALS_QUERY,
                "/v1.0/attendance/approvals/query",
                {
                    "userIds": ",".join(chunk),
                    "bizTypes": list(biz_types),
                    "fromDateTime": date_to_ms(first),
                    "toDateTime": date_to_ms(last + timedelta(days=1)) - 1,
                },
            )
            return list(field(reply, "result", APPROVALS_QUERY, list))

        pages = self._map(fetch, tasks, APPROVALS_QUERY)
        required = ("userId", "bizType", "durationUnit", "beginTime")
        return unique_by(APPROVALS_QUERY, pages, "approveId", str, required, "approval")
