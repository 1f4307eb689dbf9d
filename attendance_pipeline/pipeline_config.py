"""`config/pipeline.yaml`: rollout scope and period locks (validated at load)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from attendance_pipeline.hours.rules import load_yaml_model

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class Scope(BaseModel):
    """Pilot rollout: in-scope departments (with their sub-departments) or users; empty = all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    departments: tuple[int, ...] = ()
    users: tuple[str, ...] = ()


class PipelineConfig(BaseModel):
    """Settings of the pipeline itself (not of the hours rules)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: Scope = Scope()
    locked_months: tuple[str, ...] = ()
    corrections_days: int = Field(default=7, ge=1, le=60)  # the corrections schedule's window

    @field_validator("locked_months")
    @classmethod
    def _months(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for month in value:
            if not MONTH.match(str(month)):
                raise ValueError(f"{month!r} is not a month in YYYY-MM form")
        return value


def load_pipeline_config(path: Path) -> PipelineConfig:
    """Read `pipeline.yaml`; a missing file means everyone in scope and nothing locked."""
    return load_yaml_model(path, PipelineConfig, _message)


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown setting (check the spelling)"
    return str(error["msg"]).removeprefix("Value error, ")
