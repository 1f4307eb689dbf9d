"""The DingTalk Open API simulator: a deterministic company served over real HTTP."""

from attendance_pipeline.simulators.dingtalk.company import Company
from attendance_pipeline.simulators.dingtalk.server import (
    DingTalkSimConfig,
    DingTalkSimulator,
    RunningSimulator,
    main_dingtalk,
)

__all__ = [
    "Company",
    "DingTalkSimConfig",
    "DingTalkSimulator",
    "RunningSimulator",
    "main_dingtalk",
]
