"""Thresholds of the quality gates (`config/quality.yaml`), validated at load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from attendance_pipeline.hours.rules import load_yaml_model


class ReportTolerance(BaseModel):
    """How far a person-month may differ from DingTalk's report before the warn check fires."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: float = Field(default=0, ge=0)
    count: float = Field(default=0, ge=0)
    minutes: float = Field(default=5, ge=0)
    hours: float = Field(default=0.5, ge=0)

    def by_unit(self) -> dict[str, float]:
        return self.model_dump()


class QualityConfig(BaseModel):
    """Thresholds of the gates (`config/quality.yaml`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roster_min_ratio: float = Field(default=0.5, gt=0, le=1)
    late_streak: int = Field(default=5, ge=2, le=366)
    dept_drop_ratio: float = Field(default=0.5, gt=0, le=1)
    sample_rows: int = Field(default=5, ge=1, le=100)
    # hours_valid re-derives at most this many employees (a stable sample; ~400 rows/s) and at
    # most this many employee-days, so a long backfill window re-derives fewer people.
    rederive_max_employees: int = Field(default=100, ge=1)
    rederive_max_employee_days: int = Field(default=3100, ge=1)
    # Systemic thresholds: past these a problem is the source's or target's, not a person's.
    max_unmapped_share: float = Field(default=0.5, ge=0, le=1)
    max_held_back_share: float = Field(default=0.2, ge=0, le=1)
    # dingtalk_report_agrees (warn): per person-month and measure, by unit.
    report_tolerance: ReportTolerance = Field(default_factory=ReportTolerance)

    def rederive_sample_size(self, window_days: int) -> int:
        """Employees to re-derive for a window of `window_days` days (at least one)."""
        by_days = self.rederive_max_employee_days // max(1, window_days)
        return max(1, min(self.rederive_max_employees, by_days))


def load_quality_config(path: Path) -> QualityConfig:
    """Read and validate `quality.yaml`; a missing or empty file means the defaults."""
    return load_yaml_model(path, QualityConfig, _config_message)


def _config_message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        known = ", ".join(QualityConfig.model_fields)
        return f"unknown setting (check the spelling; known: {known})"
    if error["type"] in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number"
    if error["type"] in ("float_parsing", "float_type"):
        return "must be a number"
    return str(error["msg"]).removeprefix("Value error, ")
