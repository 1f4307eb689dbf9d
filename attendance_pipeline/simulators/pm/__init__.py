"""The PM-system simulator: Jira, Tempo, TAPD and ZenTao worklog APIs over real HTTP."""

from attendance_pipeline.simulators.http import RunningSimulator
from attendance_pipeline.simulators.pm.accounts import Account, Directory
from attendance_pipeline.simulators.pm.server import PMSimConfig, PMSimulator, main_pm

__all__ = [
    "Account",
    "Directory",
    "PMSimConfig",
    "PMSimulator",
    "RunningSimulator",
    "main_pm",
]
