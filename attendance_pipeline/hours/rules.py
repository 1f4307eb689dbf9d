"""Effective-hours rules: `config/rules.yaml` and `config/overrides.csv`, validated at load.

A bad file is one `ConfigError` naming the file, the line and the field; nothing runs. The
default rules are docs/rules.md's table; `rules_version` is a hash of the effective rules and
is stored on every output row.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from datetime import date, time
from pathlib import Path
from typing import Any, Literal, TypeVar

import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from attendance_pipeline.config_files import ConfigError, decode_config_text, open_config_csv
from attendance_pipeline.vocabulary import Status, values

# The statuses of docs/rules.md in precedence order (attendance_pipeline.vocabulary.Status).
STATUSES = values(Status)

DEFAULT_STATUS_HOURS: dict[str, float] = {
    "exempt": 8,  # the default is `standard_day_hours` whatever it is (see Rules)
    "rest": 0,
    "leave": 0,
    "business_trip": 8,
    "absent": 0,
    "missing_punch": 4,
    "late_and_early": 6,
    "serious_late": 6,
    "late": 7,
    "early_leave": 7,
    "normal": 8,
}


# The working time assumed for an `exempt` employee (no DingTalk schedule) when an hourly leave or
# trip is measured against their day; the break is `Rules.break_` as for everyone.
NOMINAL_SHIFT = (time(9, 0), time(18, 0))


def _check_status_hours(value: dict[str, float]) -> dict[str, float]:
    for status, hours in value.items():
        if status not in DEFAULT_STATUS_HOURS:
            raise ValueError(
                f"unknown status `{status}`; expected one of {', '.join(DEFAULT_STATUS_HOURS)}"
            )
        if not 0 <= hours <= 24:
            raise ValueError(f"`{status}` must be between 0 and 24 hours, not {hours}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExceptionMatch(_Strict):
    """Who an exception applies to: any listed department, title or user."""

    dept_ids: tuple[int, ...] = ()
    titles: tuple[str, ...] = ()
    userids: tuple[str, ...] = ()


class ExceptionRule(_Strict):
    """例外规则: other status hours for selected departments, titles or users."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    match: ExceptionMatch
    status_hours: dict[str, float]

    @field_validator("status_hours")
    @classmethod
    def _hours_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        return _check_status_hours(value)


class BreakTime(_Strict):
    start: time = time(12, 0)
    end: time = time(13, 0)


class OvertimeClass(_Strict):
    """What a company does with one class of overtime (劳动法 art. 44) unless the approval says."""

    compensation: Literal["pay", "lieu"]
    # Paid hours x rate = overtime pay hours; a 调休 (lieu) hour is credited 1:1 to the balance.
    rate: float = Field(gt=0, le=10)


class OvertimePolicy(_Strict):
    """Per day class: a workday evening (incl. 调休 make-up days), a rest day, a holiday."""

    workday: OvertimeClass = OvertimeClass(compensation="pay", rate=1.5)
    restday: OvertimeClass = OvertimeClass(compensation="lieu", rate=2)
    holiday: OvertimeClass = OvertimeClass(compensation="pay", rate=3)

    def of(self, day_type: str) -> OvertimeClass:
        return {"workday": self.workday, "restday": self.restday, "holiday": self.holiday}[day_type]


class LeaveType(_Strict):
    """A leave type's paid share (0-1) and whether it draws on the 调休 balance."""

    paid: float = Field(ge=0, le=1)
    lieu: bool = False

    @model_validator(mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        # `年假: 1` is short for `年假: {paid: 1}`.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"paid": value}
        return value


DEFAULT_LEAVE_TYPES: dict[str, LeaveType] = {
    "年假": LeaveType(paid=1),
    "事假": LeaveType(paid=0),
    "病假": LeaveType(paid=0.6),
    "调休": LeaveType(paid=1, lieu=True),
    "婚假": LeaveType(paid=1),
    "产假": LeaveType(paid=1),
    "陪产假": LeaveType(paid=1),
    "丧假": LeaveType(paid=1),
}


class Rules(_Strict):
    """The effective rules (defaults filled in)."""

    standard_day_hours: float = Field(default=8, gt=0, le=24)
    break_: BreakTime = Field(default_factory=BreakTime, alias="break")
    hour_leave_rounding: float = Field(default=0.5, gt=0, le=8)
    push_overtime: bool = False
    # Exempt days (in no attendance group) have no punches, so no evidence of work: not pushed
    # to the PM system unless the company says so.
    push_exempt: bool = False
    # Validated even when defaulted: `exempt` follows `standard_day_hours` unless it is set.
    status_hours: dict[str, float] = Field(default_factory=dict, validate_default=True)
    exceptions: tuple[ExceptionRule, ...] = ()
    # Payroll (docs/payroll.md): what overtime becomes, and each leave type's paid share.
    overtime: OvertimePolicy = Field(default_factory=OvertimePolicy)
    leave_types: dict[str, LeaveType] = Field(default_factory=dict, validate_default=True)
    unlisted_leave_paid: float = Field(default=0, ge=0, le=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("status_hours")
    @classmethod
    def _complete(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        day = float(info.data.get("standard_day_hours", DEFAULT_STATUS_HOURS["exempt"]))
        return {**DEFAULT_STATUS_HOURS, "exempt": day, **_check_status_hours(value)}

    @field_validator("leave_types")
    @classmethod
    def _with_defaults(cls, value: dict[str, LeaveType]) -> dict[str, LeaveType]:
        for name in value:
            if not name.strip():
                raise ValueError("a leave type needs a name")
        return {**DEFAULT_LEAVE_TYPES, **value}

    def leave_paid_share(self, leave_type: str) -> float:
        """The paid share of a leave type; types rules.yaml does not list get
        `unlisted_leave_paid`."""
        found = self.leave_types.get(leave_type)
        return float(found.paid) if found is not None else float(self.unlisted_leave_paid)

    def lieu_leave_types(self) -> list[str]:
        """Leave types taken from the 调休 balance."""
        return [name for name, kind in self.leave_types.items() if kind.lieu]

    @property
    def version(self) -> str:
        """A short hash of the effective rules: equal rules, equal version."""
        canonical = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def hours_for(self, status: str, exception: ExceptionRule | None) -> float:
        if exception is not None and status in exception.status_hours:
            return float(exception.status_hours[status])
        return float(self.status_hours[status])


M = TypeVar("M", bound=BaseModel)


def load_yaml_model(path: Path, model: type[M], message: Callable[[Any], str] | None = None) -> M:
    """Read a YAML config file into a pydantic model; a missing or empty file means defaults.

    Any mistake is one `ConfigError` naming the file, the line and the field.
    """
    if not path.exists():
        return model()
    text, _ = decode_config_text(path)
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    if data is None:
        return model()
    if not isinstance(data, dict):
        raise ConfigError(f"{path} line 1: the file must be a mapping of settings")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(part) for part in error["loc"] if part != "[key]"]
        where = yaml_line(root, loc)
        field = ".".join(loc) or "(top level)"
        raise ConfigError(
            f"{path} line {where}: `{field}`: {(message or _message)(error)}"
        ) from None


def load_rules(path: Path) -> Rules:
    """Read and validate `rules.yaml`; a missing file means the default rules."""
    return load_yaml_model(path, Rules)


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown setting (check the spelling)"
    if error["type"] == "literal_error":
        return f"must be one of {error.get('ctx', {}).get('expected', '?')}"
    if error["type"] == "model_type":
        if error["loc"] and error["loc"][0] == "leave_types":
            return "must be a paid share between 0 and 1, or {paid: <share>, lieu: true}"
        return "must be a mapping of settings"
    if error["type"] in ("float_parsing", "float_type"):
        return "must be a number of hours"
    if error["type"] in ("bool_parsing", "bool_type"):
        return "must be true or false"
    return str(error["msg"]).removeprefix("Value error, ")


def yaml_line(root: yaml.Node | None, loc: list[str]) -> int:
    """The 1-based line of the YAML node at `loc`, or of its nearest existing parent."""
    node, line = root, 1
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            name = "break" if part == "break_" else part
            for key, value in node.value:
                if str(key.value) == name:
                    child, line = value, key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            child = node.value[int(part)]
            line = child.start_mark.line + 1
        node = child
    return line


OVERRIDE_COLUMNS = ("userid", "date", "hours", "reason", "author")


def load_overrides(path: Path) -> pd.DataFrame:
    """Read `overrides.csv` (the manual 补录 channel): userid, date, hours, reason, author.

    Every row is checked; the first problem is a `ConfigError` naming the line and column.
    """
    columns = {"userid": "string", "date": "object", "hours": "float64", "reason": "string"}
    empty = pd.DataFrame(
        {c: pd.Series(dtype=t) for c, t in {**columns, "author": "string"}.items()}
    )
    if not path.exists():
        return empty
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, date], int] = {}
    with open_config_csv(path) as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in OVERRIDE_COLUMNS if c not in header]
        if missing:
            raise ConfigError(f"{path} line 1: missing column(s) {', '.join(missing)}")
        for raw in reader:
            line = reader.line_num
            row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            if not any(row.values()):
                continue
            userid = row["userid"]
            if not userid:
                raise ConfigError(f"{path} line {line}: `userid` is empty")
            try:
                day = date.fromisoformat(row["date"])
            except ValueError:
                raise ConfigError(
                    f"{path} line {line}: `date` {row['date']!r} is not YYYY-MM-DD"
                ) from None
            try:
                hours = float(row["hours"])
            except ValueError:
                raise ConfigError(
                    f"{path} line {line}: `hours` {row['hours']!r} must be a number of hours"
                ) from None
            if not 0 <= hours <= 24:
                raise ConfigError(f"{path} line {line}: `hours` {hours} must be between 0 and 24")
            if not row["reason"]:
                raise ConfigError(f"{path} line {line}: `reason` is empty (say why, for audit)")
            if not row["author"]:
                raise ConfigError(f"{path} line {line}: `author` is empty (who decided this)")
            if (userid, day) in seen:
                raise ConfigError(
                    f"{path} line {line}: a second override for {userid} on {day} "
                    f"(first on line {seen[(userid, day)]})"
                )
            seen[(userid, day)] = line
            rows.append(
                {
                    "userid": userid,
                    "date": day,
                    "hours": hours,
                    "reason": row["reason"],
                    "author": row["author"],
                }
            )
    if not rows:
        return empty
    return pd.DataFrame(rows).astype({"userid": "string", "reason": "string", "author": "string"})
