"""Assets, one module per stage of the flow."""

import warnings

# Dagster marks BackfillPolicy as beta at every definition; the warning helps no user.
warnings.filterwarnings("ignore", message=".*is currently in beta.*")

# ruff: noqa: E402

from attendance_pipeline.assets.delivery import (
    pm_users,
    pushed_worklogs,
    user_mapping,
    worklog_plan,
    worklog_reconciliation,
)
from attendance_pipeline.assets.finance import payroll_monthly
from attendance_pipeline.assets.hours import effective_hours
from attendance_pipeline.assets.ingest import dingtalk_roster, raw_approvals, raw_attendance
from attendance_pipeline.assets.warehouse_views import lake_views

DAILY_ASSETS = [
    dingtalk_roster,
    raw_attendance,
    raw_approvals,
    lake_views,
    effective_hours,
    pm_users,
    user_mapping,
    worklog_plan,
    pushed_worklogs,
    worklog_reconciliation,
]
MONTHLY_ASSETS = [payroll_monthly]
ALL_ASSETS = [*DAILY_ASSETS, *MONTHLY_ASSETS]

__all__ = [
    "ALL_ASSETS",
    "DAILY_ASSETS",
    "MONTHLY_ASSETS",
    "dingtalk_roster",
    "effective_hours",
    "lake_views",
    "payroll_monthly",
    "pm_users",
    "pushed_worklogs",
    "raw_approvals",
    "raw_attendance",
    "user_mapping",
    "worklog_plan",
    "worklog_reconciliation",
]
