"""The Dagster code location: `dagster dev` in the repository root loads this module."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from attendance_pipeline.assets import ALL_ASSETS, DAILY_ASSETS, MONTHLY_ASSETS
from attendance_pipeline.assets.partitions import DAILY, MONTHLY
from attendance_pipeline.automation import alert_on_run_failure, corrections_sync, daily_sync
from attendance_pipeline.checks import ALL_CHECKS
from attendance_pipeline.resources import build_resources
from attendance_pipeline.settings import Settings, load_settings

sync_job = dg.define_asset_job(
    "sync",
    selection=dg.AssetSelection.assets(*DAILY_ASSETS),
    partitions_def=DAILY,
    description="Every daily asset for a range of work days, as one run.",
)
payroll_job = dg.define_asset_job(
    "payroll",
    selection=dg.AssetSelection.assets(*MONTHLY_ASSETS),
    partitions_def=MONTHLY,
    description="Payroll months from effective hours.",
)


def build_definitions(
    settings: Settings, resources: Mapping[str, object] | None = None
) -> dg.Definitions:
    """The code location for `settings`; `resources` replace the default ones by key."""
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_CHECKS,
        jobs=[sync_job, payroll_job],
        schedules=[daily_sync, corrections_sync],
        sensors=[alert_on_run_failure],
        resources={**build_resources(settings), **(resources or {})},
    )


settings = load_settings()
defs = build_definitions(settings)
