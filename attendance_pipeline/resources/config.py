"""The company's configuration folder (`ATTENDANCE_CONFIG_DIR`) as a Dagster resource."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from attendance_pipeline.checks.quality import QualityConfig, load_quality_config
from attendance_pipeline.hours.calendar import WorkCalendar
from attendance_pipeline.hours.rules import Rules, load_overrides, load_rules
from attendance_pipeline.pipeline_config import PipelineConfig, load_pipeline_config
from attendance_pipeline.pm.mapping import load_explicit_mapping
from attendance_pipeline.pm.plan import load_allocations


class ConfigFolder(dg.ConfigurableResource):
    """rules.yaml, overrides.csv, calendar.csv and pipeline.yaml, validated when read."""

    path: str

    def path_of(self, name: str) -> Path:
        return Path(self.path) / name

    def rules(self) -> Rules:
        return load_rules(Path(self.path) / "rules.yaml")

    def overrides(self) -> pd.DataFrame:
        return load_overrides(Path(self.path) / "overrides.csv")

    def calendar(self) -> WorkCalendar:
        return WorkCalendar.load(Path(self.path) / "calendar.csv")

    def quality(self) -> QualityConfig:
        return load_quality_config(Path(self.path) / "quality.yaml")

    def pipeline(self) -> PipelineConfig:
        return load_pipeline_config(Path(self.path) / "pipeline.yaml")

    def check_all(self) -> None:
        """Read every file once, so a mistake is reported before any work starts."""
        self.rules()
        self.overrides()
        self.calendar()
        self.pipeline()
        self.quality()
        load_allocations(self.path_of("allocations.csv"))
        load_explicit_mapping(self.path_of("user_mapping.csv"))
