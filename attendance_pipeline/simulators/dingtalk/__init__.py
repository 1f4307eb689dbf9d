"""The DingTalk Open API simulator: a deterministic company served over real HTTP."""

from attendance_pipeline.simulators.dingtalk.cli import main_dingtalk
from attendance_pipeline.simulators.dingtalk.company import Company
from attendance_pipeline.simulators.dingtalk.server import (
    DingTalkSimConfig,
    DingTalkSimulator,
    RunningSimulator,
)

__all__ = [
    "Company",
    "DingTalkSimConfig",
    "DingTalkSimulator",
    "RunningSimulator",
    "main_dingtalk",
]
