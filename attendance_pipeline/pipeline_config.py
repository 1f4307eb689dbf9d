"""`config/pipeline.yaml`: rollout scope and period locks (validated at load)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from attendance_pipeline.hours.rules import ConfigError, yaml_line

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

    @field_validator("locked_months")
    @classmethod
    def _months(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for month in value:
            if not MONTH.match(str(month)):
                raise ValueError(f"{month!r} is not a month in YYYY-MM form")
        return value


def load_pipeline_config(path: Path) -> PipelineConfig:
    """Read `pipeline.yaml`; a missing file means everyone in scope and nothing locked."""
    if not path.exists():
        return PipelineConfig()
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML") from None
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(part) for part in error["loc"]]
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling)"
        raise ConfigError(
            f"{path} line {yaml_line(root, loc)}: `{'.'.join(loc)}`: {message}"
        ) from None
