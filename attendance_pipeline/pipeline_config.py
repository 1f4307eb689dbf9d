"""`config/pipeline.yaml`: rollout scope, period locks and the availability teams (validated
at load)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from attendance_pipeline.hours.rules import load_yaml_model

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class Scope(BaseModel):
    """Pilot rollout: in-scope departments (with their sub-departments) or users; empty = all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    departments: tuple[int, ...] = ()
    users: tuple[str, ...] = ()


class Team(BaseModel):
    """A team whose PM gets the weekly who-is-away message in its DingTalk group.

    The group robot's webhook URL and 加签 secret are secrets: the file names the environment
    variables that hold them, never the values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    departments: tuple[int, ...] = ()
    users: tuple[str, ...] = ()
    webhook_env: str | None = None
    secret_env: str | None = None

    @field_validator("webhook_env", "secret_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_NAME.match(value):
            raise ValueError(
                f"{value[:12]!r}… is not an environment variable name (A-Z, 0-9, _): put the "
                "webhook URL or secret in the environment and name the variable here"
            )
        return value


class Availability(BaseModel):
    """`team_availability` (docs/availability.md): how far ahead, and the teams to notify."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: int = Field(default=14, ge=7, le=31)
    teams: tuple[Team, ...] = ()


class PipelineConfig(BaseModel):
    """Settings of the pipeline itself (not of the hours rules)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: Scope = Scope()
    locked_months: tuple[str, ...] = ()
    corrections_days: int = Field(default=7, ge=1, le=60)  # the corrections schedule's window
    availability: Availability = Availability()

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
