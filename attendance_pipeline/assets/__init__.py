"""Assets, one module per stage of the flow."""

import warnings

# Dagster marks BackfillPolicy as beta at every definition; the warning helps no user.
warnings.filterwarnings("ignore", message=".*is currently in beta.*")

# ruff: noqa: E402

from attendance_pipeline.assets.ingest import dingtalk_roster, raw_approvals, raw_attendance
from attendance_pipeline.assets.warehouse_views import lake_views

ALL_ASSETS = [dingtalk_roster, raw_attendance, raw_approvals, lake_views]

__all__ = ["ALL_ASSETS", "dingtalk_roster", "lake_views", "raw_approvals", "raw_attendance"]
