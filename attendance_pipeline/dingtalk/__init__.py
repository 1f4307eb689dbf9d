"""The DingTalk source: client, errors and reply parsing (plain Python, no Dagster)."""

from attendance_pipeline.dingtalk import errors
from attendance_pipeline.dingtalk.client import DingTalkClient, DingTalkOptions
from attendance_pipeline.dingtalk.errors import *  # noqa: F403 (the errors' own __all__)

__all__ = ["DingTalkClient", "DingTalkOptions", *errors.__all__]
