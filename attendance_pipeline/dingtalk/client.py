"""DingTalk Open API client: the parts of the API this pipeline reads, in one object.

Plain Python (no Dagster import). The Dagster resource in `resources/dingtalk.py` builds one of
these per run. Following `shared/contracts/dingtalk.md`, the work is shared out as:

- `transport`: one cached access token, at most `qps` calls per second per API, bounded retries
  (the project's one mechanism, `http_retry`) and the classification of both hosts' replies, and
  the count of metered calls that were served;
- `contacts`: the department tree and its users (de-duplicated by `userid`);
- `attendance`: results (50 users x 7 days per call, paged, de-duplicated by `id`) and groups;
- `approvals`: approvals (50 users x 30 days per call, de-duplicated by `approveId`);
- `hrm`: leavers, with their last work day;
- `report`: DingTalk's own smart-report columns (考勤报表) per person and day.
"""

from __future__ import annotations

from attendance_pipeline.dingtalk.approvals import ALL_BIZ_TYPES, ApprovalsApi
from attendance_pipeline.dingtalk.attendance import AttendanceApi
from attendance_pipeline.dingtalk.contacts import ContactsApi
from attendance_pipeline.dingtalk.hrm import HrmApi, Leaver
from attendance_pipeline.dingtalk.report import ReportApi
from attendance_pipeline.dingtalk.transport import (
    APPROVALS_QUERY,
    ATTENDANCE_LIST,
    DingTalkOptions,
)


class DingTalkClient(ContactsApi, AttendanceApi, ApprovalsApi, HrmApi, ReportApi):
    """A client for the parts of the DingTalk Open API this pipeline reads."""


__all__ = [
    "ALL_BIZ_TYPES",
    "APPROVALS_QUERY",
    "ATTENDANCE_LIST",
    "DingTalkClient",
    "DingTalkOptions",
    "Leaver",
]
