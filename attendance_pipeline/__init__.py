"""attendance_pipeline: DingTalk attendance to PM-system worklogs and payroll hours."""

__version__ = "0.1.0"
