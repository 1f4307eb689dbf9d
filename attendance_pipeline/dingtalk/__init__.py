"""The DingTalk source: client, errors and reply parsing (plain Python, no Dagster)."""

from attendance_pipeline.dingtalk.client import DingTalkClient, DingTalkOptions
from attendance_pipeline.dingtalk.errors import (
    DingTalkAuthError,
    DingTalkBadReply,
    DingTalkBadRequest,
    DingTalkError,
    DingTalkHorizonError,
    DingTalkHrmPermissionError,
    DingTalkPermissionError,
    DingTalkQuotaExceeded,
    DingTalkUnavailable,
)

__all__ = [
    "DingTalkAuthError",
    "DingTalkBadReply",
    "DingTalkBadRequest",
    "DingTalkClient",
    "DingTalkError",
    "DingTalkHorizonError",
    "DingTalkHrmPermissionError",
    "DingTalkOptions",
    "DingTalkPermissionError",
    "DingTalkQuotaExceeded",
    "DingTalkUnavailable",
]
