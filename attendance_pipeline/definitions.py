"""The Dagster code location: `dagster dev` in the repository root loads this module."""

from __future__ import annotations

import dagster as dg

from attendance_pipeline.assets import ALL_ASSETS
from attendance_pipeline.assets.partitions import DAILY
from attendance_pipeline.resources import build_resources
from attendance_pipeline.settings import load_settings

settings = load_settings()

sync_job = dg.define_asset_job(
    "sync",
    selection=dg.AssetSelection.all(),
    partitions_def=DAILY,
    description="Every asset for a range of work days, as one run.",
)

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=[sync_job],
    resources=build_resources(settings),
)
