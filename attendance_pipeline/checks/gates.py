"""Data-quality gates (DESIGN section 7): plain functions over frames, checked with Great
Expectations 1.x. No Dagster here: `checks/__init__.py` turns a `GateResult` into a check result.

Every gate builds the frame it needs (the stored frame itself, or a derived one such as one row per
employee-workday with a boolean `explained` column), states its expectations and hands both to
`validate`, the one place that talks to GX. GX is imported on first use (the import takes seconds)
and runs in one in-process ephemeral context, reused for every gate.

Gates and their default severity (error = blocking, warn = reported only):

| gate | severity | checks |
|---|---|---|
| `roster_valid` (`roster_gate`) | error | columns; not empty; (snapshot_date, userid) unique; no snapshot below `roster_min_ratio` × the previous one |
| `raw_attendance_valid` | error | columns; check_type, time_result, source_type values; `id` unique; (userid, work_date, check_type, base_check_time) unique; work_date in the window |
| `raw_approvals_valid` | error | columns; biz_type 1–5; duration_unit; (approve_id, work_date) unique; work_date in the window; begin_at ≤ end_at |
| `inputs_complete` (`completeness_gate`) | error | every active employee has ≥ 2 check points on each statutory workday, or a leave/trip approval that day |
| `hours_valid` | error | one row per employee-day; hours in range; status known; agreement with the re-derivation; per-day totals by status; rows per day = active roster |
| `mapping_valid` | error | every in-scope employee of the latest snapshot mapped; no PM account claimed twice on a day |
| `plan_valid` | error | keys unique; issue and PM user set; per user-day planned seconds = effective hours; only mapped users, with their mapped account |
| `reconciled` | error | the PM system holds exactly the plan (no missing, extra or different) |
| `no_conflicts` | warn | no remote worklog edited by a person since our push |
| `calendar_covered` | warn | every day is covered by chinese_calendar or calendar.csv |
| `unusual_patterns` | warn | late streaks; a department's hours per employee-workday halving week over week |

Thresholds come from `config/quality.yaml` (`load_quality_config`); a gate called without one
uses the defaults.
"""  # noqa: E501

from __future__ import annotations

import hashlib
import logging
import math
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from attendance_pipeline.hours.calendar import WorkCalendar
from attendance_pipeline.hours.rules import STATUSES, load_yaml_model
from attendance_pipeline.schemas import (
    EFFECTIVE_HOURS,
    RAW_APPROVALS,
    RAW_ATTENDANCE,
    RECONCILIATION,
    ROSTER,
    USER_MAPPING,
    WORKLOG_PLAN,
)

ERROR, WARN = "error", "warn"

# The grain of an expectation's verdict (issue 10: a gate protects what it guards at the grain of
# the problem). SYSTEMIC: the source or target itself is broken, the whole run stops.
# EMPLOYEE_DAY: the offending rows' (userid, work_date) are held back, everything else flows.
# REPORTED: shown in the check, nothing held (e.g. rows DingTalk returned outside the window,
# which are not stored).
SYSTEMIC, EMPLOYEE_DAY, REPORTED = "systemic", "employee_day", "reported"
# What a held-back employee-day is kept out of: "all" (published hours, payroll, worklogs) or
# "delivery" (worklogs only: the hours are computed and paid).
HOLD_ALL, HOLD_DELIVERY = "all", "delivery"
HELD_COLUMNS = ["userid", "work_date", "name", "reason", "fix"]

# Allowed values, from ../shared/contracts/dingtalk.md and the schemas.
CHECK_TYPES = ("OnDuty", "OffDuty")
TIME_RESULTS = ("Normal", "Early", "Late", "SeriousLate", "Absenteeism", "NotSigned")
SOURCE_TYPES = ("ATM", "BEACON", "DING_ATM", "USER", "BOSS", "APPROVE", "SYSTEM", "AUTO_CHECK")
BIZ_TYPES = (1, 2, 3, 4, 5)
ABSENCE_BIZ_TYPES = (2, 3)  # trip/outing and leave explain a day without check points
DURATION_UNITS = ("day", "halfDay", "hour")
MAPPING_STATUSES = ("mapped", "unmapped", "ambiguous")
WORKLOG_KINDS = ("work", "overtime")
RECONCILIATION_STATUSES = ("ok", "missing", "extra", "different", "conflict")
LATE_STATUSES = ("late", "serious_late", "late_and_early")
# Hours columns bounded by a day; overtime is only >= 0: a multi-day overtime approval is booked
# whole on its first day (docs/rules.md), so it may legitimately exceed 24 h.
DAY_HOURS_COLUMNS = ("scheduled_hours", "leave_hours", "trip_hours", "effective_hours")
HOURS_TOLERANCE = 1e-6  # both sides round hours to 2 decimals; this only absorbs float noise
RAW_FIX = (
    "DingTalk returned a malformed result for this person-day: check it in the DingTalk admin "
    "console, then re-sync the day (it is released once DingTalk serves it clean)"
)
COMPLETE_FIX = (
    "if DingTalk has not generated the results yet, re-sync the day later; otherwise approve a "
    "补卡 or leave in DingTalk, or add the day to config/overrides.csv"
)
HOURS_FIX = (
    "a rules bug: report it with these rows; the day stays as last published until the engine "
    "and the re-derivation agree"
)
PLAN_FIX = "check config/allocations.csv and config/user_mapping.csv for this person, re-run"


# ------------------------------------------------------------------------------ configuration


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


# ------------------------------------------------------------------------------ results


@dataclass
class FailedExpectation:
    """One expectation that did not hold, with the offending rows."""

    expectation: str  # GX type, e.g. "expect_column_values_to_be_in_set"
    column: str | None  # several columns joined by ", "
    detail: str  # short human text: "time_result not in {...}: 3 rows (Bogus)"
    unexpected_count: int
    sample: list[dict[str, Any]]  # up to `sample_rows` offending rows, JSON-safe
    grain: str = SYSTEMIC
    # EMPLOYEE_DAY failures: every offending (userid, work_date, name, reason, fix), not sampled.
    held: pd.DataFrame | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        return _json(
            {
                "expectation": self.expectation,
                "column": self.column,
                "detail": self.detail,
                "unexpected_count": self.unexpected_count,
                "grain": self.grain,
                "sample": self.sample,
            }
        )


@dataclass
class GateResult:
    """The outcome of one gate."""

    name: str  # the Dagster check name, e.g. "raw_attendance_valid"
    passed: bool
    severity: str  # "error" (blocking) | "warn"
    rows_checked: int
    expectations_run: int
    failures: list[FailedExpectation] = field(default_factory=list)
    covered: dict[str, Any] = field(default_factory=dict)  # what was checked (window, days, …)
    blocks: str = HOLD_ALL  # what this gate's held-back employee-days are kept out of

    @property
    def systemic(self) -> bool:
        """A failure that means the source or target is broken: the whole run stops."""
        return any(f.grain == SYSTEMIC for f in self.failures)

    @property
    def held(self) -> pd.DataFrame:
        """Every held-back employee-day, once, with its reasons and fixes joined."""
        parts = [f.held for f in self.failures if f.grain == EMPLOYEE_DAY and f.held is not None]
        parts = [p for p in parts if len(p)]
        if not parts:
            return pd.DataFrame(columns=HELD_COLUMNS)
        rows = pd.concat(parts, ignore_index=True)
        rows = rows[rows["userid"].notna() & rows["work_date"].notna()]
        if rows.empty:
            return pd.DataFrame(columns=HELD_COLUMNS)

        def joined(values: pd.Series) -> str:
            return "; ".join(dict.fromkeys(str(v) for v in values if isinstance(v, str) and v))

        out = rows.groupby(["userid", "work_date"], sort=True, as_index=False).agg(
            name=("name", "first"), reason=("reason", joined), fix=("fix", joined)
        )
        return out[HELD_COLUMNS]

    def summary(self) -> str:
        """One line a person can act on."""
        expectations = "expectation" if self.expectations_run == 1 else "expectations"
        rows = "row" if self.rows_checked == 1 else "rows"
        scope = f"{self.expectations_run} {expectations} on {self.rows_checked:,} {rows}"
        if self.passed:
            return f"{self.name}: passed ({scope})"
        details = "; ".join(f.detail for f in self.failures[:3])
        more = f"; +{len(self.failures) - 3} more" if len(self.failures) > 3 else ""
        if self.severity == ERROR and not self.systemic:
            held = self.held
            if len(held):
                days = "employee-day" if len(held) == 1 else "employee-days"
                return (
                    f"{self.name}: held back {len(held)} {days} of "
                    f"{held['userid'].nunique()} people, the rest flows: {details}{more}"
                )
            return f"{self.name}: reported (nothing held back): {details}{more}"
        word = "FAILED" if self.severity == ERROR else "WARNING"
        return f"{self.name} {word}: {len(self.failures)} of {scope} failed: {details}{more}"

    def metadata(self) -> dict[str, Any]:
        """JSON-safe metadata: what failed (with sample rows), counts and what was covered."""
        held = self.held
        return {
            "gate": self.name,
            "passed": self.passed,
            "severity": self.severity,
            "systemic": self.systemic,
            "rows_checked": self.rows_checked,
            "expectations_run": self.expectations_run,
            "failed_expectations": len(self.failures),
            "failures": [f.as_json() for f in self.failures],
            "held_back_employee_days": len(held),
            "held_back_people": int(held["userid"].nunique()) if len(held) else 0,
            "held_back": _json(held.head(50).to_dict("records")),
            "covered": _json(self.covered),
        }


# ------------------------------------------------------------------------------ GX, wrapped once


@dataclass(frozen=True)
class Expect:
    """One GX expectation by its snake_case type, with its GX arguments and a label for people.

    `show_values`: list the offending values in the detail (off for boolean flag columns, where
    the first offending row says more).
    """

    type: str
    label: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    show_values: bool = True
    grain: str = SYSTEMIC
    fix: str = ""  # what a person does about a held-back row

    @property
    def columns(self) -> list[str]:
        names = [self.kwargs.get(k) for k in ("column", "column_A", "column_B")]
        return [str(n) for n in names if n] + [str(c) for c in self.kwargs.get("column_list", ())]


def expect(
    type_: str,
    label: str,
    *,
    show_values: bool = True,
    grain: str = SYSTEMIC,
    fix: str = "",
    **kwargs: Any,
) -> Expect:
    return Expect(type_, label, kwargs, show_values, grain, fix)


def per_employee_day(item: Expect, fix: str) -> Expect:
    """The same expectation, its offending rows held back per (userid, work_date)."""
    return replace(item, grain=EMPLOYEE_DAY, fix=fix)


def reported(item: Expect) -> Expect:
    """The same expectation, shown in the check but holding nothing back."""
    return replace(item, grain=REPORTED)


@dataclass
class _GX:
    module: Any  # great_expectations
    expectations: Any  # great_expectations.expectations
    batch_definition: Any


_LOCK = threading.RLock()
_ENGINE: _GX | None = None


def _gx() -> _GX:
    """The process's GX context and pandas batch definition, created on first use."""
    global _ENGINE
    with _LOCK:
        if _ENGINE is None:
            for name in ("great_expectations", "great_expectations.core", "tzlocal"):
                logging.getLogger(name).setLevel(logging.ERROR)
            import great_expectations as gx
            import great_expectations.expectations as gxe
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )

            context = gx.get_context(
                mode="ephemeral",
                project_config=DataContextConfig(
                    analytics_enabled=False,
                    progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
                    store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                ),
            )
            source = context.data_sources.add_pandas("attendance_gates")
            asset = source.add_dataframe_asset("frame")
            _ENGINE = _GX(gx, gxe, asset.add_batch_definition_whole_dataframe("whole frame"))
        return _ENGINE


def _gx_class(gxe: Any, type_: str) -> Any:
    name = "".join(part.capitalize() for part in type_.split("_"))
    try:
        return getattr(gxe, name)
    except AttributeError:
        raise ValueError(f"unknown GX expectation {type_!r}") from None


def _run(
    frame: pd.DataFrame,
    expectations: Sequence[Expect],
    sample_columns: Sequence[str] | None,
    sample_rows: int,
) -> tuple[int, list[FailedExpectation]]:
    """(expectations run, failures) of one frame: one GX batch, one suite."""
    frame = frame.reset_index(drop=True)  # GX reports index labels: make them positions
    failures: list[FailedExpectation] = []
    runnable: list[tuple[int, Expect]] = []
    for index, item in enumerate(expectations):
        missing = [c for c in item.columns if c not in frame.columns]
        if missing:
            failures.append(
                FailedExpectation(
                    item.type,
                    ", ".join(item.columns) or None,
                    f"{item.label}: not checked, column(s) {', '.join(missing)} missing",
                    0,
                    [],
                )
            )
        else:
            runnable.append((index, item))
    if not runnable:
        return 0, failures
    engine = _gx()
    with _LOCK:
        suite = engine.module.ExpectationSuite(name="gate")
        for index, item in runnable:
            # GX returns results in its own order; `meta` carries ours.
            gx_class = _gx_class(engine.expectations, item.type)
            suite.add_expectation(gx_class(**item.kwargs, meta={"gate_index": index}))
        batch = engine.batch_definition.get_batch(batch_parameters={"dataframe": frame})
        with warnings.catch_warnings():
            # GX 1.24 reads tz-aware columns through `Series.values` (pandas 3 deprecates it; the
            # UTC values it compares are still right): keep that noise out of every run's log.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            outcome = batch.validate(
                suite,
                result_format={
                    "result_format": "COMPLETE",
                    "partial_unexpected_count": max(20, sample_rows),
                },
            )
    by_index = {int(r.expectation_config.meta["gate_index"]): r for r in outcome.results}
    for index, item in runnable:
        result = by_index[index]
        if not result.success:
            failures.append(_failure(item, result, frame, sample_columns, sample_rows))
    return len(runnable), failures


def _failure(
    item: Expect,
    result: Any,
    frame: pd.DataFrame,
    sample_columns: Sequence[str] | None,
    sample_rows: int,
) -> FailedExpectation:
    details = result.result or {}
    column = ", ".join(item.columns) or None
    raised = _raised(result.exception_info)
    if raised is not None:
        return FailedExpectation(
            item.type, column, f"{item.label}: not evaluated ({raised})", 0, []
        )
    count = int(details.get("unexpected_count") or 0)
    held = None
    if item.grain == EMPLOYEE_DAY:
        held = _held_rows(frame, list(details.get("unexpected_index_list") or []), item)
    columns = [c for c in (sample_columns or frame.columns) if c in frame.columns]
    columns += [c for c in item.columns if c not in columns]
    indexes = list(details.get("partial_unexpected_index_list") or [])[:sample_rows]
    sample = [_json(row) for row in frame.loc[indexes, columns].to_dict("records")]
    if "unexpected_count" in details:
        if item.show_values:
            seen: list[str] = []
            for value in details.get("partial_unexpected_list") or []:
                text = _short(value)
                if text not in seen:
                    seen.append(text)
            shown = ", ".join(seen[:5]) + (", …" if len(seen) > 5 else "")
        else:
            shown = "e.g. " + _describe(sample[0]) if sample else ""
        rows = "row" if count == 1 else "rows"
        detail = f"{item.label}: {count} {rows}" + (f" ({shown})" if shown else "")
    else:  # a table-level expectation: columns, row count
        mismatched = (details.get("details") or {}).get("mismatched") or {}
        if mismatched.get("missing"):
            detail = f"{item.label}: missing {', '.join(map(str, mismatched['missing']))}"
        else:
            detail = f"{item.label}: observed {_short(details.get('observed_value'))}"
    grain = item.grain if held is not None or item.grain != EMPLOYEE_DAY else SYSTEMIC
    return FailedExpectation(item.type, column, detail, count, sample, grain, held)


def _held_rows(frame: pd.DataFrame, indexes: list[Any], item: Expect) -> pd.DataFrame | None:
    """(userid, work_date, name, reason, fix) of every offending row, or None when the frame
    cannot name the employee-day (then the failure is systemic)."""
    if not {"userid", "work_date"} <= set(frame.columns):
        return None
    rows = frame.loc[[i for i in indexes if i in frame.index]]
    reasons: Any = item.label
    if "reason" in rows.columns:  # a row's own reason (user_mapping says why nobody matched)
        reasons = [
            f"{item.label}: {r}" if isinstance(r, str) and r else item.label for r in rows["reason"]
        ]
    fixes: Any = item.fix
    if "fix" in rows.columns:
        fixes = [f if isinstance(f, str) and f else item.fix for f in rows["fix"]]
    return pd.DataFrame(
        {
            "userid": rows["userid"].to_numpy(),
            "work_date": rows["work_date"].to_numpy(),
            "name": rows["name"].to_numpy() if "name" in rows.columns else None,
            "reason": reasons,
            "fix": fixes,
        }
    )


def _raised(info: Any) -> str | None:
    """The first exception message GX caught while evaluating, if any."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():  # keyed by metric when a metric failed
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
        if isinstance(value, str) and value.startswith("Error"):
            return value
    return None


def validate(
    frame: pd.DataFrame,
    expectations: Sequence[Expect],
    name: str,
    *,
    severity: str = ERROR,
    sample_columns: Sequence[str] | None = None,
    sample_rows: int = 5,
    covered: dict[str, Any] | None = None,
) -> GateResult:
    """Run `expectations` on `frame` with GX and report the failures with sample rows."""
    run, failures = _run(frame, expectations, sample_columns, sample_rows)
    return GateResult(name, not failures, severity, len(frame), run, failures, covered or {})


def _gate(
    name: str,
    severity: str,
    rows_checked: int,
    parts: Iterable[tuple[int, list[FailedExpectation]]],
    covered: dict[str, Any],
) -> GateResult:
    """A GateResult from several `_run`s (a gate that checks more than one frame)."""
    run, failures = 0, []
    for count, failed in parts:
        run += count
        failures += failed
    return GateResult(name, not failures, severity, rows_checked, run, failures, covered)


# ------------------------------------------------------------------------------ small helpers


def _json(value: Any) -> Any:
    """JSON-safe: dates and timestamps as ISO strings, numpy scalars as Python, NaN/NA as None."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray, pd.Series)):
        return [_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else (None if math.isnan(value) else str(value))
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (str, int, bool)):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _describe(row: Mapping[str, Any]) -> str:
    """`userid=013693 work_date=2026-10-09 …` (missing values and boolean flags left out)."""
    parts = []
    for column, value in row.items():
        if value is None or isinstance(value, bool):
            continue
        parts.append(f"{column}={round(value, 3) if isinstance(value, float) else value}")
    return " ".join(parts)


def _short(value: Any) -> str:
    value = _json(value)
    if isinstance(value, dict):
        return _describe(value)
    if isinstance(value, list):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _to_date(value: Any) -> date | None:
    if _missing(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def _dates(values: pd.Series) -> pd.Series:
    """A date-like column as `datetime.date` objects (None for missing), whatever its dtype."""
    return pd.Series([_to_date(v) for v in values], index=values.index, dtype=object)


KEY_TEXT_COLUMNS = ("userid", "status", "pm_user")


def _prepared(frame: pd.DataFrame, *date_columns: str) -> pd.DataFrame:
    """The frame with its date columns as `date` objects and its join keys as plain objects.

    pandas 3 cannot merge two empty Arrow-backed string columns ("cannot construct ChunkedArray
    from empty vector"), which an empty partition read from Parquet has.
    """
    changed = {c: _dates(frame[c]) for c in date_columns if c in frame.columns}
    changed |= {c: frame[c].astype(object) for c in KEY_TEXT_COLUMNS if c in frame.columns}
    return frame.assign(**changed) if changed else frame


def _flag(values: pd.Series) -> pd.Series:
    """A truthy column as plain bool (missing = False)."""
    return pd.Series([bool(v) and not _missing(v) for v in values], index=values.index)


def _set_text(values: Iterable[Any]) -> str:
    return "{" + ", ".join(str(v) for v in values) + "}"


def _quality(quality: QualityConfig | None) -> QualityConfig:
    return quality if quality is not None else QualityConfig()


def _not_null(column: str, label: str) -> Expect:
    return expect("expect_column_values_to_not_be_null", label, column=column)


def _one_of(column: str, values: Iterable[Any], suffix: str = "") -> Expect:
    """`column` takes only `values` (nulls are left to `_not_null`)."""
    allowed = list(values)
    label = f"{column} not in {_set_text(allowed)}{suffix}"
    return expect("expect_column_values_to_be_in_set", label, column=column, value_set=allowed)


def _columns(names: Sequence[str], what: str) -> Expect:
    return expect(
        "expect_table_columns_to_match_set",
        f"{what} columns",
        column_set=list(names),
        exact_match=False,
    )


def _inside_window(start: date, end: date) -> Expect:
    """Rows DingTalk returned outside the window: reported, not stored (the lake keeps a day's
    rows in that day's file), nothing held: the day they leave short is held by
    inputs_complete."""
    return reported(
        expect(
            "expect_column_values_to_be_between",
            f"work_date outside the partition {start}..{end}",
            column="work_date",
            min_value=start,
            max_value=end,
        )
    )


def _window(start: date, end: date) -> dict[str, Any]:
    return {"window": f"{start.isoformat()}..{end.isoformat()}"}


def _active_by_day(roster: pd.DataFrame, days: Sequence[date]) -> pd.DataFrame:
    """(work_date, userid, name, exempt) of each day's active, already hired employees.

    A day uses its own roster snapshot, else the nearest earlier one (else the earliest).
    `exempt`: in no DingTalk attendance group (the roster's `attendance_group_id` is null; a
    roster without that column, stored before it existed, exempts nobody).
    """
    columns = ["work_date", "userid", "name", "exempt"]
    if roster.empty or not days:
        return pd.DataFrame(columns=columns)
    people = _prepared(roster, "snapshot_date", "hired_date")
    if "active" in people.columns:
        people = people[_flag(people["active"])]
    snapshots = dict(iter(people.groupby("snapshot_date", sort=True)))
    ordered = sorted(snapshots)
    if not ordered:
        return pd.DataFrame(columns=columns)
    frames = []
    for day in days:
        earlier = [s for s in ordered if s <= day]
        part = snapshots[earlier[-1] if earlier else ordered[0]]
        if "hired_date" in part.columns:
            hired = part["hired_date"]
            part = part[[h is None or h <= day for h in hired]]
        names = part["name"] if "name" in part.columns else pd.Series(None, index=part.index)
        exempt = (
            part["attendance_group_id"].isna()
            if "attendance_group_id" in part.columns
            else pd.Series(False, index=part.index)
        )
        frames.append(
            pd.DataFrame(
                {"work_date": day, "userid": part["userid"], "name": names, "exempt": exempt}
            )
        )
    return pd.concat(frames, ignore_index=True).drop_duplicates(["work_date", "userid"])


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


# ------------------------------------------------------------------------------ raw layers


def raw_attendance_gate(
    frame: pd.DataFrame, start: date, end: date, *, quality: QualityConfig | None = None
) -> GateResult:
    """`raw_attendance_valid`: schema, allowed values, unique ids and check points, dates in the
    window."""
    frame = _prepared(frame, "work_date")
    check_point = ["userid", "work_date", "check_type", "base_check_time"]
    fix = RAW_FIX
    expectations = [
        _columns(RAW_ATTENDANCE.names, "raw_attendance"),
        _not_null("userid", "userid missing"),
        _not_null("work_date", "work_date missing"),
        *(
            per_employee_day(item, fix)
            for item in (
                _not_null("id", "id missing"),
                expect("expect_column_values_to_be_unique", "id not unique", column="id"),
                expect(
                    "expect_compound_columns_to_be_unique",
                    "duplicated check point (userid, work_date, check_type, base_check_time)",
                    column_list=check_point,
                ),
                _not_null("check_type", "check_type missing"),
                _one_of("check_type", CHECK_TYPES),
                _not_null("time_result", "time_result missing"),
                _one_of("time_result", TIME_RESULTS),
                _one_of("source_type", SOURCE_TYPES, " (or empty)"),
            )
        ),
        _inside_window(start, end),
    ]
    sample = ["id", *check_point, "time_result", "source_type"]
    rows = _quality(quality).sample_rows
    covered = {
        **_window(start, end),
        "employees": int(frame["userid"].nunique()) if "userid" in frame.columns else 0,
        "days": int(frame["work_date"].nunique()) if "work_date" in frame.columns else 0,
    }
    result = validate(
        frame,
        expectations,
        "raw_attendance_valid",
        sample_columns=sample,
        sample_rows=rows,
        covered=covered,
    )
    return _widespread(result, frame, _quality(quality))


def _widespread(result: GateResult, frame: pd.DataFrame, config: QualityConfig) -> GateResult:
    """A raw gate whose malformed rows cover more than `max_held_back_share` of some day's
    employee-days is systemic: DingTalk changed its schema or values, it is not a few people."""
    if result.systemic or not len(result.held):
        return result
    share = held_back_share_gate([result], frame, quality=config)
    if share.passed:
        return result
    failures = [
        replace(f, grain=SYSTEMIC, detail=f"{f.detail}: {WIDESPREAD}") for f in share.failures
    ]
    return replace(result, failures=[*result.failures, *failures])


WIDESPREAD = "a DingTalk schema or value change, not a few people: nothing is published"


def raw_approvals_gate(
    frame: pd.DataFrame, start: date, end: date, *, quality: QualityConfig | None = None
) -> GateResult:
    """`raw_approvals_valid`: biz types, units, unique (approval, day), dates, begin <= end."""
    frame = _prepared(frame, "work_date")
    fix = RAW_FIX
    expectations = [
        _columns(RAW_APPROVALS.names, "raw_approvals"),
        _not_null("userid", "userid missing"),
        _not_null("work_date", "work_date missing"),
        *(
            per_employee_day(item, fix)
            for item in (
                _not_null("approve_id", "approve_id missing"),
                _not_null("biz_type", "biz_type missing"),
                _one_of("biz_type", BIZ_TYPES),
                _not_null("duration_unit", "duration_unit missing"),
                _one_of("duration_unit", DURATION_UNITS),
                expect(
                    "expect_compound_columns_to_be_unique",
                    "(approve_id, work_date) not unique",
                    column_list=["approve_id", "work_date"],
                ),
                # A missing begin_at or end_at also fails here (GX compares only complete pairs).
                expect(
                    "expect_column_pair_values_a_to_be_greater_than_b",
                    "approval ends before it begins (end_at < begin_at)",
                    show_values=False,
                    column_A="end_at",
                    column_B="begin_at",
                    or_equal=True,
                ),
            )
        ),
        _inside_window(start, end),
    ]
    sample = ["approve_id", "work_date", "userid", "biz_type", "duration_unit"]
    sample += ["begin_time", "end_time", "begin_at", "end_at"]
    covered = {
        **_window(start, end),
        "approvals": int(frame["approve_id"].nunique()) if "approve_id" in frame.columns else 0,
    }
    return validate(
        frame,
        expectations,
        "raw_approvals_valid",
        sample_columns=sample,
        sample_rows=_quality(quality).sample_rows,
        covered=covered,
    )


def roster_gate(
    frame: pd.DataFrame, previous_rows: int | None, *, quality: QualityConfig | None = None
) -> GateResult:
    """`roster_valid`: not empty, one row per (snapshot_date, userid), not suddenly halved.

    The first snapshot is compared with `previous_rows` (the previous snapshot's employee count,
    when known), every later snapshot in the frame with the one before it.
    """
    config = _quality(quality)
    frame = _prepared(frame, "snapshot_date", "hired_date")
    expectations = [
        _columns(ROSTER.names, "dingtalk_roster"),
        expect(
            "expect_table_row_count_to_be_between", "roster is empty (no employees)", min_value=1
        ),
        _not_null("userid", "userid missing"),
        expect(
            "expect_compound_columns_to_be_unique",
            "(snapshot_date, userid) not unique",
            column_list=["snapshot_date", "userid"],
        ),
    ]
    parts = [_run(frame, expectations, ["snapshot_date", "userid", "name"], config.sample_rows)]
    sizes = pd.DataFrame(columns=["snapshot_date", "employees", "previous_employees", "ratio"])
    if {"snapshot_date", "userid"} <= set(frame.columns) and len(frame):
        counts = frame.groupby("snapshot_date", sort=True)["userid"].nunique()
        previous = [previous_rows, *counts.tolist()[:-1]]
        sizes = pd.DataFrame(
            {
                "snapshot_date": list(counts.index),
                "employees": counts.astype(int).tolist(),
                "previous_employees": previous,
            }
        )
        sizes["ratio"] = [
            e / p if p else None
            for e, p in zip(sizes["employees"], sizes["previous_employees"], strict=True)
        ]
        sizes["ratio"] = sizes["ratio"].astype(float)
        shrink = expect(
            "expect_column_values_to_be_between",
            f"roster shrank below {config.roster_min_ratio:g} × the previous snapshot",
            show_values=False,
            column="ratio",
            min_value=config.roster_min_ratio,
        )
        parts.append(_run(sizes, [shrink], list(sizes.columns), config.sample_rows))
    covered = {
        "snapshots": [d.isoformat() for d in sizes["snapshot_date"]],
        "employees": [int(n) for n in sizes["employees"]],
        "previous_employees": previous_rows,
        "roster_min_ratio": config.roster_min_ratio,
    }
    return _gate("roster_valid", ERROR, len(frame), parts, covered)


def completeness_gate(
    roster: pd.DataFrame,
    attendance: pd.DataFrame,
    approvals: pd.DataFrame,
    calendar: WorkCalendar,
    start: date,
    end: date,
    *,
    quality: QualityConfig | None = None,
) -> GateResult:
    """`inputs_complete`: each active employee has ≥ 2 check points on each statutory workday,
    or a leave/trip approval (biz_type 2 or 3) that day explains the gap.

    Only days the calendar calls `workday` are checked; days no calendar covers are skipped and
    listed (the `calendar_covered` gate warns about them).
    """
    workdays, uncovered = [], []
    for day in _days(start, end):
        known = calendar.day_type(day)
        if known is None:
            uncovered.append(day)
        elif known[0] == "workday":
            workdays.append(day)
    people = _active_by_day(roster, workdays)
    exempt = int(people["exempt"].astype(bool).sum()) if len(people) else 0
    people = people[~people["exempt"].astype(bool)] if len(people) else people  # never incomplete
    key = ["userid", "work_date"]

    points = _prepared(attendance, "work_date")
    points = points[points["check_type"].isin(CHECK_TYPES)] if len(points) else points
    counts = (
        points.groupby(key).size().rename("check_points").reset_index()
        if len(points)
        else pd.DataFrame(columns=[*key, "check_points"])
    )
    absences = _prepared(approvals, "work_date")
    if len(absences):
        absences = absences[absences["biz_type"].isin(ABSENCE_BIZ_TYPES)]
    explained_by = (
        absences.groupby(key)["approve_id"].agg(lambda ids: ", ".join(sorted(map(str, ids))))
        if len(absences)
        else pd.Series(dtype=object, name="approve_id")
    )
    days = people.merge(counts, on=key, how="left")
    days["check_points"] = days["check_points"].fillna(0).astype(int)
    days["leave_or_trip"] = [
        explained_by.get((u, d)) for u, d in zip(days["userid"], days["work_date"], strict=True)
    ]
    days["explained"] = (days["check_points"] >= 2) | days["leave_or_trip"].notna()
    expectations = [
        expect(
            "expect_column_values_to_be_in_set",
            "employee-workdays with fewer than 2 check points and no leave or trip approval",
            show_values=False,
            grain=EMPLOYEE_DAY,
            fix=COMPLETE_FIX,
            column="explained",
            value_set=[True],
        )
    ]
    covered = {
        **_window(start, end),
        "workdays": [d.isoformat() for d in workdays],
        "employee_workdays": len(days),
        "employees": int(days["userid"].nunique()) if len(days) else 0,
        "explained_by_approval": int(days["leave_or_trip"].notna().sum()) if len(days) else 0,
        "exempt_employee_workdays": exempt,
        "days_not_covered_by_calendar": [d.isoformat() for d in uncovered],
    }
    return validate(
        days,
        expectations,
        "inputs_complete",
        sample_columns=["userid", "name", "work_date", "check_points", "leave_or_trip"],
        sample_rows=_quality(quality).sample_rows,
        covered=covered,
    )


# ------------------------------------------------------------------------------ hours


def hours_gate(
    hours: pd.DataFrame,
    rederived: pd.DataFrame,
    roster: pd.DataFrame | None = None,
    *,
    quality: QualityConfig | None = None,
) -> GateResult:
    """`hours_valid`: the stored effective hours against their own invariants, the independent
    re-derivation (`reference.derive_frame` on the same inputs) and the roster.

    1. rows: columns; one row per (userid, work_date); the day-bounded hours columns in [0, 24],
       overtime ≥ 0; status in STATUSES; `countable` equals `effective_hours > 0`.
    2. per row: the re-derivation has the same user-days, statuses and effective hours.
    3. per partition (day) and status: the row count and the total effective hours equal the
       re-derivation's, so a day's total reconciles with its status counts exactly (both sides
       round every row to 2 decimals; the comparison allows only 1e-6 h of float noise). With
       many disagreeing rows this names the days and statuses at fault.
    4. per day, when `roster` is given: rows == the day's active rostered employees.
    """
    config = _quality(quality)
    key = ["userid", "work_date"]
    frame = _prepared(hours, "work_date")
    other = _prepared(rederived, "work_date")
    fix = HOURS_FIX
    rows = [
        _columns(EFFECTIVE_HOURS.names, "effective_hours"),
        _not_null("userid", "userid missing"),
        _not_null("work_date", "work_date missing"),
        *(
            per_employee_day(item, fix)
            for item in (
                expect(
                    "expect_compound_columns_to_be_unique",
                    "more than one row per (userid, work_date)",
                    column_list=key,
                ),
                *(
                    expect(
                        "expect_column_values_to_be_between",
                        f"{column} outside 0..24 h",
                        column=column,
                        min_value=0,
                        max_value=24,
                    )
                    for column in DAY_HOURS_COLUMNS
                ),
                expect(
                    "expect_column_values_to_be_between",
                    "overtime_hours below 0",
                    column="overtime_hours",
                    min_value=0,
                ),
                _not_null("status", "status missing"),
                expect(
                    "expect_column_values_to_be_in_set",
                    "status not a known status",
                    column="status",
                    value_set=list(STATUSES),
                ),
            )
        ),
    ]
    if {"countable", "effective_hours"} <= set(frame.columns):
        frame = frame.assign(
            countable_matches=_flag(frame["countable"]) == (frame["effective_hours"] > 0)
        )
        rows.append(
            expect(
                "expect_column_values_to_be_in_set",
                "countable is not effective_hours > 0",
                show_values=False,
                grain=EMPLOYEE_DAY,
                fix=fix,
                column="countable_matches",
                value_set=[True],
            )
        )
    sample = ["userid", "name", "work_date", "status", *DAY_HOURS_COLUMNS, "overtime_hours"]
    parts = [_run(frame, rows, sample, config.sample_rows)]

    needed = {*key, "status", "effective_hours"}
    if needed <= set(frame.columns) and needed <= set(other.columns):
        agreement = _agreement(frame, other, config)
        parts.append(agreement)
        # Day totals are compared over the rows that agree one by one: a disagreeing row is held
        # back on its own, and a day whose totals still differ means the comparison is broken.
        disagreeing = _held_keys(agreement[1])
        parts.append(
            _status_totals(_without(frame, disagreeing), _without(other, disagreeing), config)
        )
    covered: dict[str, Any] = {
        "days": sorted({d.isoformat() for d in frame.get("work_date", []) if d is not None}),
        "rederived_rows": len(other),
        "reconciliation": "per day and status: rows and total effective hours equal the "
        "re-derivation's"
        + ("; one row per active rostered employee-day" if roster is not None else ""),
    }
    if roster is not None and {"userid", "work_date"} <= set(frame.columns):
        days = sorted({d for d in frame["work_date"] if d is not None} | set(other["work_date"]))
        expected = _active_by_day(roster, days)[["userid", "work_date", "name"]]
        stored = frame[["userid", "work_date"]].drop_duplicates()
        people = expected.merge(stored, on=key, how="outer", indicator=True)
        people["present"] = people.pop("_merge").map(
            {"both": "both", "left_only": "no hours row", "right_only": "not on the roster"}
        )
        check = expect(
            "expect_column_values_to_be_in_set",
            "employee-days without exactly one row for one active rostered employee",
            show_values=False,
            grain=EMPLOYEE_DAY,
            fix=fix,
            column="present",
            value_set=["both"],
        )
        parts.append(_run(people, [check], list(people.columns), config.sample_rows))
    return _gate("hours_valid", ERROR, len(frame), parts, covered)


def _held_keys(failures: list[FailedExpectation]) -> set[tuple[Any, Any]]:
    keys: set[tuple[Any, Any]] = set()
    for failure in failures:
        if failure.held is not None:
            keys |= set(zip(failure.held["userid"], failure.held["work_date"], strict=True))
    return keys


def _without(frame: pd.DataFrame, keys: set[tuple[Any, Any]]) -> pd.DataFrame:
    if not keys:
        return frame
    pairs = pd.Series(
        list(zip(frame["userid"], frame["work_date"], strict=True)), index=frame.index
    )
    return frame[~pairs.isin(keys)]


def _agreement(
    frame: pd.DataFrame, other: pd.DataFrame, config: QualityConfig
) -> tuple[int, list[FailedExpectation]]:
    key = ["userid", "work_date"]
    mine = frame[[*key, *(["name"] if "name" in frame.columns else []), "status"]].assign(
        effective_hours=frame["effective_hours"].astype(float)
    )
    theirs = other[[*key, "status", "effective_hours"]].assign(
        effective_hours=other["effective_hours"].astype(float)
    )
    joined = mine.merge(theirs, on=key, how="outer", suffixes=("", "_rederived"), indicator=True)
    joined["present"] = joined.pop("_merge").map(
        {"both": "both", "left_only": "only stored", "right_only": "only re-derived"}
    )
    difference = (joined["effective_hours"] - joined["effective_hours_rederived"]).abs()
    joined["agrees"] = (
        (joined["present"] == "both")
        & (joined["status"] == joined["status_rederived"]).fillna(False).astype(bool)
        & (difference <= HOURS_TOLERANCE).fillna(False).astype(bool)
    )
    check = expect(
        "expect_column_values_to_be_in_set",
        "rows disagreeing with the independent re-derivation (status or effective_hours)",
        show_values=False,
        grain=EMPLOYEE_DAY,
        fix=HOURS_FIX,
        column="agrees",
        value_set=[True],
    )
    sample = ["userid", "name", "work_date", "status", "status_rederived"]
    sample += ["effective_hours", "effective_hours_rederived", "present"]
    return _run(joined, [check], sample, config.sample_rows)


def _status_totals(
    frame: pd.DataFrame, other: pd.DataFrame, config: QualityConfig
) -> tuple[int, list[FailedExpectation]]:
    group = ["work_date", "status"]

    def totals(source: pd.DataFrame) -> pd.DataFrame:
        return source.groupby(group, dropna=False).agg(
            rows=("status", "size"), hours=("effective_hours", "sum")
        )

    both = totals(frame).merge(
        totals(other), how="outer", left_index=True, right_index=True, suffixes=("", "_rederived")
    )
    both = both.fillna(0).reset_index()
    both["reconciles"] = (both["rows"] == both["rows_rederived"]) & (
        (both["hours"] - both["hours_rederived"]).abs() <= HOURS_TOLERANCE
    )
    check = expect(
        "expect_column_values_to_be_in_set",
        "day totals by status that do not reconcile with the re-derivation",
        show_values=False,
        column="reconciles",
        value_set=[True],
    )
    return _run(both, [check], list(both.columns), config.sample_rows)


# ------------------------------------------------------------------------------ delivery


MAPPING_FIX = "add `userid,pm_user` to config/user_mapping.csv"


def mapping_gate(
    mapping: pd.DataFrame,
    *,
    quality: QualityConfig | None = None,
    accounts: int | None = None,
    fixes: Mapping[str, str] | None = None,
) -> GateResult:
    """`mapping_valid`: every in-scope employee is `mapped` on every snapshot day, and no PM
    account is claimed by two employees on one day. Those employee-days are held back from
    delivery only (their hours are computed and paid).

    Systemic (the whole run stops): the PM system listed no account at all (`accounts` == 0),
    or more than `max_unmapped_share` of the latest snapshot's in-scope employees are unmapped:
    that is a broken PM connection or a wrong scope, not a few people. `fixes` gives a person's
    own fix (e.g. which e-mail a PM account needs).
    """
    config = _quality(quality)
    frame = _prepared(mapping, "snapshot_date")
    frame = frame.assign(work_date=frame["snapshot_date"]) if "snapshot_date" in frame else frame
    if "userid" in frame.columns:
        own = fixes or {}
        frame = frame.assign(fix=[own.get(str(u), MAPPING_FIX) for u in frame["userid"]])
    sample = ["snapshot_date", "userid", "name", "status", "pm_user", "reason"]
    whole = [
        _columns(USER_MAPPING.names, "user_mapping"),
        _one_of("status", MAPPING_STATUSES),
        expect(
            "expect_compound_columns_to_be_unique",
            "PM account claimed by two employees on one day",
            grain=EMPLOYEE_DAY,
            fix="add `userid,pm_user` rows to config/user_mapping.csv saying who owns the account",
            column_list=["snapshot_date", "pm_user"],
            ignore_row_if="any_value_is_missing",
        ),
    ]
    parts = [_run(frame, whole, sample, config.sample_rows)]
    latest_day = None
    in_scope = frame.iloc[0:0]
    share = None
    if {"snapshot_date", "in_scope", "status"} <= set(frame.columns) and len(frame):
        in_scope = frame[_flag(frame["in_scope"])]
        unmapped = expect(
            "expect_column_values_to_be_in_set",
            "in-scope employee not mapped to a PM account",
            grain=EMPLOYEE_DAY,
            fix=MAPPING_FIX,
            column="status",
            value_set=["mapped"],
        )
        parts.append(_run(in_scope, [unmapped], sample, config.sample_rows))
        latest_day = max(d for d in frame["snapshot_date"] if d is not None)
        latest = in_scope[in_scope["snapshot_date"] == latest_day]
        if len(latest):
            share = float((latest["status"] != "mapped").mean())
            shares = pd.DataFrame(
                {"snapshot_date": [latest_day], "in_scope": [len(latest)], "share": [share]}
            )
            limit = expect(
                "expect_column_values_to_be_between",
                f"more than {config.max_unmapped_share:.0%} of in-scope employees unmapped "
                "(a broken PM connection or a wrong scope, not a few people)",
                show_values=False,
                column="share",
                max_value=config.max_unmapped_share,
            )
            parts.append(_run(shares, [limit], list(shares.columns), config.sample_rows))
    if accounts is not None:
        listed = pd.DataFrame({"accounts": [accounts]})
        empty = expect(
            "expect_column_values_to_be_between",
            "the PM system listed no user accounts (check PM_BASE_URL, the credentials and "
            "the integration user's permission to list users)",
            column="accounts",
            min_value=1,
        )
        parts.append(_run(listed, [empty], ["accounts"], config.sample_rows))
    covered = {
        "snapshots": int(frame["snapshot_date"].nunique()) if "snapshot_date" in frame else 0,
        "latest_snapshot": latest_day.isoformat() if latest_day else None,
        "in_scope_employee_days": len(in_scope),
        "unmapped_share_latest": share,
        "max_unmapped_share": config.max_unmapped_share,
        "pm_accounts": accounts,
    }
    return replace(_gate("mapping_valid", ERROR, len(frame), parts, covered), blocks=HOLD_DELIVERY)


def plan_gate(
    plan: pd.DataFrame,
    hours: pd.DataFrame,
    mapping: pd.DataFrame,
    *,
    quality: QualityConfig | None = None,
) -> GateResult:
    """`plan_valid`: keys unique; issue and PM user set; per user-day the planned work seconds
    equal the effective hours; nobody planned unless mapped, and then to their mapped account.

    The plan books whole minutes (`split_minutes`; Jira needs ≥ 60 s), so a user-day's work
    seconds must equal round(effective_hours × 60) × 60 — the same as round(effective_hours ×
    3600) for every hours value that is a whole number of minutes (all status hours, 0.5 h steps).
    """
    config = _quality(quality)
    key = ["userid", "work_date"]
    frame = _prepared(plan, "work_date")
    sample = ["worklog_key", "work_date", "userid", "name", "pm_user", "issue", "kind", "seconds"]
    rows = [
        _columns(WORKLOG_PLAN.names, "worklog_plan"),
        _not_null("userid", "userid missing"),
        _not_null("work_date", "work_date missing"),
        *(
            per_employee_day(item, PLAN_FIX)
            for item in (
                _not_null("worklog_key", "worklog_key missing"),
                expect(
                    "expect_column_values_to_be_unique",
                    "worklog_key not unique",
                    column="worklog_key",
                ),
                _not_null("issue", "issue missing"),
                expect(
                    "expect_column_values_to_match_regex",
                    "issue empty",
                    column="issue",
                    regex=r"\S",
                ),
                _not_null("pm_user", "pm_user missing"),
                expect(
                    "expect_column_values_to_match_regex",
                    "pm_user empty",
                    column="pm_user",
                    regex=r"\S",
                ),
                _one_of("kind", WORKLOG_KINDS),
                expect(
                    "expect_column_values_to_be_between",
                    "seconds outside 60..86400",
                    column="seconds",
                    min_value=60,
                    max_value=86_400,
                ),
            )
        ),
    ]
    parts = [_run(frame, rows, sample, config.sample_rows)]
    if {*key, "kind", "seconds"} <= set(frame.columns) and len(frame):
        parts.append(_planned_vs_hours(frame, _prepared(hours, "work_date"), config))
    if {*key, "pm_user"} <= set(frame.columns) and len(frame):
        parts.append(_planned_vs_mapping(frame, _prepared(mapping, "snapshot_date"), config))
    covered = {
        "worklogs": len(frame),
        "user_days": int(frame[key].drop_duplicates().shape[0]) if len(frame) else 0,
        "seconds_rule": "work seconds per user-day == round(effective_hours * 60) * 60",
    }
    return replace(_gate("plan_valid", ERROR, len(frame), parts, covered), blocks=HOLD_DELIVERY)


def _planned_vs_hours(
    plan: pd.DataFrame, hours: pd.DataFrame, config: QualityConfig
) -> tuple[int, list[FailedExpectation]]:
    key = ["userid", "work_date"]
    work = plan[plan["kind"] == "work"]
    per_day = work.groupby(key, as_index=False).agg(
        name=("name", "first"), planned_seconds=("seconds", "sum")
    )
    effective = hours[[*key, "effective_hours"]].drop_duplicates(key)
    per_day = per_day.merge(effective, on=key, how="left")
    per_day["expected_seconds"] = np.round(per_day["effective_hours"].astype(float) * 60) * 60
    per_day["matches"] = (per_day["planned_seconds"] == per_day["expected_seconds"]).fillna(False)
    check = expect(
        "expect_column_values_to_be_in_set",
        "user-days whose planned seconds differ from effective hours × 3600",
        show_values=False,
        grain=EMPLOYEE_DAY,
        fix=PLAN_FIX,
        column="matches",
        value_set=[True],
    )
    sample = ["userid", "name", "work_date", "planned_seconds", "effective_hours"]
    return _run(per_day, [check], [*sample, "expected_seconds"], config.sample_rows)


def _planned_vs_mapping(
    plan: pd.DataFrame, mapping: pd.DataFrame, config: QualityConfig
) -> tuple[int, list[FailedExpectation]]:
    """Each plan row's mapping on its day (else the user's latest mapping)."""
    columns = ["userid", "snapshot_date", "status", "pm_user"]
    known = (
        mapping[columns] if set(columns) <= set(mapping.columns) else pd.DataFrame(columns=columns)
    )
    known = known.rename(columns={"status": "mapping_status", "pm_user": "mapped_pm_user"})
    same_day = plan.merge(
        known.rename(columns={"snapshot_date": "work_date"}),
        on=["userid", "work_date"],
        how="left",
    )
    latest = known.sort_values("snapshot_date").drop_duplicates("userid", keep="last")
    latest = latest.set_index("userid")
    gap = same_day["mapping_status"].isna()
    for column in ("mapping_status", "mapped_pm_user"):
        same_day.loc[gap, column] = same_day.loc[gap, "userid"].map(latest[column])
    same_day["mapping_status"] = same_day["mapping_status"].fillna("not in user_mapping")
    same_day["pm_user_matches"] = (same_day["pm_user"] == same_day["mapped_pm_user"]).fillna(False)
    checks = [
        expect(
            "expect_column_values_to_be_in_set",
            "worklogs for employees whose mapping is not `mapped`",
            grain=EMPLOYEE_DAY,
            fix=PLAN_FIX,
            column="mapping_status",
            value_set=["mapped"],
        ),
        expect(
            "expect_column_values_to_be_in_set",
            "worklogs whose pm_user is not the employee's mapped account",
            show_values=False,
            grain=EMPLOYEE_DAY,
            fix=PLAN_FIX,
            column="pm_user_matches",
            value_set=[True],
        ),
    ]
    sample = ["worklog_key", "work_date", "userid", "name", "pm_user"]
    sample += ["mapping_status", "mapped_pm_user"]
    return _run(same_day, checks, sample, config.sample_rows)


RECONCILIATION_SAMPLE = ["work_date", "worklog_key", "userid", "pm_user", "issue"]
RECONCILIATION_SAMPLE += ["planned_seconds", "remote_seconds", "remote_id", "status"]


def _status_counts(frame: pd.DataFrame) -> dict[str, int]:
    if "status" not in frame.columns:
        return {}
    counts = frame["status"].value_counts()
    return {s: int(counts.get(s, 0)) for s in RECONCILIATION_STATUSES}


def reconciliation_gate(recon: pd.DataFrame, *, quality: QualityConfig | None = None) -> GateResult:
    """`reconciled` (error): every key's status is known and none is missing, extra or different.

    Conflicts (a person edited a worklog since our push) pass here and are reported by the
    separate warn-only `reconciliation_conflicts_gate`, so a Dagster check per concern stays
    simple (one function, one check).
    """
    expectations = [
        _columns(RECONCILIATION.names, "worklog_reconciliation"),
        _not_null("status", "status missing"),
        _one_of("status", RECONCILIATION_STATUSES),
        expect(
            "expect_column_values_to_not_be_in_set",
            "remote worklogs missing, extra or different from the plan",
            column="status",
            value_set=["missing", "extra", "different"],
        ),
    ]
    return validate(
        recon,
        expectations,
        "reconciled",
        sample_columns=RECONCILIATION_SAMPLE,
        sample_rows=_quality(quality).sample_rows,
        covered={"statuses": _status_counts(recon)},
    )


def reconciliation_conflicts_gate(
    recon: pd.DataFrame, *, quality: QualityConfig | None = None
) -> GateResult:
    """`no_conflicts` (warn): remote worklogs a person edited since our last push."""
    check = expect(
        "expect_column_values_to_not_be_in_set",
        "remote worklogs edited by a person since our push (left alone)",
        column="status",
        value_set=["conflict"],
    )
    return validate(
        recon,
        [check],
        "no_conflicts",
        severity=WARN,
        sample_columns=RECONCILIATION_SAMPLE,
        sample_rows=_quality(quality).sample_rows,
        covered={"statuses": _status_counts(recon)},
    )


def reconciliation_gates(
    recon: pd.DataFrame, *, quality: QualityConfig | None = None
) -> tuple[GateResult, GateResult]:
    """(`reconciled`, `no_conflicts`): both results for the reconciliation asset."""
    return (
        reconciliation_gate(recon, quality=quality),
        reconciliation_conflicts_gate(recon, quality=quality),
    )


# ------------------------------------------------------------------------------ warn-only


def calendar_gate(
    days: Iterable[date], calendar: WorkCalendar, *, quality: QualityConfig | None = None
) -> GateResult:
    """`calendar_covered` (warn): chinese_calendar or calendar.csv knows every day; otherwise the
    day type follows DingTalk's schedule, and the uncovered dates are named."""
    listed = sorted({d for d in (_to_date(v) for v in days) if d is not None})
    frame = pd.DataFrame({"day": listed, "covered": [calendar.covers(d) for d in listed]})
    uncovered = [d.isoformat() for d, ok in zip(listed, frame["covered"], strict=True) if not ok]
    named = ", ".join(uncovered[:10]) + (", …" if len(uncovered) > 10 else "")
    check = expect(
        "expect_column_values_to_be_in_set",
        f"days no calendar covers ({named}; add them to config/calendar.csv)"
        if uncovered
        else "days no calendar covers",
        show_values=False,
        column="covered",
        value_set=[True],
    )
    return validate(
        frame,
        [check],
        "calendar_covered",
        severity=WARN,
        sample_columns=["day"],
        sample_rows=_quality(quality).sample_rows,
        covered={"days": len(listed), "uncovered_days": uncovered},
    )


def patterns_gate(hours: pd.DataFrame, quality: QualityConfig | None = None) -> GateResult:
    """`unusual_patterns` (warn).

    - Late streaks: an employee whose status is late, serious_late or late_and_early on
      `late_streak` consecutive workdays (`day_type == "workday"` rows, in date order).
    - Department drops: only when the hours cover two full Monday–Sunday weeks; per department
      and full week, effective hours per employee-workday (so holiday weeks and head-count
      changes do not look like drops) below `dept_drop_ratio` × the previous full week's.
    """
    config = _quality(quality)
    frame = _prepared(hours, "work_date")
    parts = []
    covered: dict[str, Any] = {"late_streak": config.late_streak}
    needed = {"userid", "work_date", "status", "day_type"}
    if needed <= set(frame.columns) and len(frame):
        streaks = _late_streaks(frame)
        check = expect(
            "expect_column_values_to_be_between",
            f"employees late on {config.late_streak} or more workdays in a row",
            show_values=False,
            column="late_streak",
            max_value=config.late_streak - 1,
        )
        parts.append(_run(streaks, [check], list(streaks.columns), config.sample_rows))
    if {"dept_id", "effective_hours"} | needed <= set(frame.columns) and len(frame):
        weeks, full_weeks = _department_weeks(frame)
        covered["full_weeks"] = [w.isoformat() for w in full_weeks]
        if len(full_weeks) >= 2:
            check = expect(
                "expect_column_values_to_be_between",
                f"departments whose hours per employee-workday fell below "
                f"{config.dept_drop_ratio:g} × the previous week's",
                show_values=False,
                column="ratio",
                min_value=config.dept_drop_ratio,
            )
            parts.append(_run(weeks, [check], list(weeks.columns), config.sample_rows))
        else:
            covered["dept_drop"] = "not checked: fewer than two full weeks"
    return _gate("unusual_patterns", WARN, len(frame), parts, covered)


def _late_streaks(frame: pd.DataFrame) -> pd.DataFrame:
    """Per employee: the longest run of late workdays, with its first and last day."""
    workdays = frame[frame["day_type"] == "workday"].sort_values(["userid", "work_date"])
    late = workdays["status"].isin(LATE_STATUSES)
    run = (~late).groupby(workdays["userid"]).cumsum()
    names = workdays.groupby("userid")["name"].first() if "name" in workdays else None
    people = pd.DataFrame({"userid": workdays["userid"].unique()})
    people["name"] = people["userid"].map(names) if names is not None else None
    lates = workdays[late].assign(run=run[late])
    if lates.empty:
        return people.assign(late_streak=0, streak_start=None, streak_end=None)
    runs = lates.groupby(["userid", "run"]).agg(
        late_streak=("work_date", "size"),
        streak_start=("work_date", "min"),
        streak_end=("work_date", "max"),
    )
    longest = runs.sort_values("late_streak").reset_index().drop_duplicates("userid", keep="last")
    people = people.merge(longest.drop(columns="run"), on="userid", how="left")
    people["late_streak"] = people["late_streak"].fillna(0).astype(int)
    return people


def _department_weeks(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[date]]:
    """(per department and full week after the first: hours per employee-workday vs the week
    before, the full weeks)."""
    first, last = min(frame["work_date"]), max(frame["work_date"])
    monday = first + timedelta(days=(7 - first.weekday()) % 7)
    full_weeks = []
    while monday + timedelta(days=6) <= last:
        full_weeks.append(monday)
        monday += timedelta(days=7)
    workdays = frame[frame["day_type"] == "workday"]
    week = workdays["work_date"].map(lambda d: d - timedelta(days=d.weekday()))
    workdays = workdays.assign(week=week)[week.isin(full_weeks)]
    per_week = workdays.groupby(["dept_id", "week"]).agg(
        hours=("effective_hours", "sum"), employee_workdays=("effective_hours", "size")
    )
    per_week["per_employee_workday"] = per_week["hours"] / per_week["employee_workdays"]
    rows = []
    for (dept, monday), row in per_week.iterrows():
        before = (dept, monday - timedelta(days=7))
        if before not in per_week.index:
            continue
        previous = float(per_week.at[before, "per_employee_workday"])
        rows.append(
            {
                "dept_id": int(dept),
                "week": monday,
                "per_employee_workday": round(float(row["per_employee_workday"]), 3),
                "previous_week": round(previous, 3),
                "ratio": float(row["per_employee_workday"]) / previous if previous > 0 else None,
            }
        )
    columns = ["dept_id", "week", "per_employee_workday", "previous_week", "ratio"]
    weeks = pd.DataFrame(rows, columns=columns)
    weeks["ratio"] = weeks["ratio"].astype(float)
    return weeks, full_weeks


def stable_sample(userids: Sequence[str], limit: int) -> set[str]:
    """At most `limit` userids, the same ones on every run (by hash, not by position)."""
    if len(userids) <= limit:
        return set(userids)
    ranked = sorted(userids, key=lambda u: hashlib.sha256(str(u).encode()).hexdigest())
    return set(ranked[:limit])


def held_back_share_gate(
    results: Sequence[GateResult],
    employee_days: pd.DataFrame,
    *,
    quality: QualityConfig | None = None,
) -> GateResult:
    """`held_back_share`: no day has more than `max_held_back_share` of its employee-days held
    back by `results`. Past that, the problem is the source's (a DingTalk change or outage that
    hits everyone), not a few people's, and the whole run stops.

    `employee_days`: one row per (userid, work_date) that the day has (the effective-hours rows).
    """
    config = _quality(quality)
    frames = [r.held[["userid", "work_date"]] for r in results if len(r.held)]
    held = (
        _prepared(pd.concat(frames, ignore_index=True), "work_date").drop_duplicates()
        if frames
        else pd.DataFrame(columns=["userid", "work_date"])
    )
    days = _prepared(employee_days[["userid", "work_date"]], "work_date").drop_duplicates()
    totals = days.groupby("work_date").size().rename("employee_days")
    counts = held.groupby("work_date").size().rename("held_back") if len(held) else None
    per_day = totals.to_frame()
    per_day["held_back"] = counts if counts is not None else 0
    per_day = per_day.fillna(0).reset_index()
    per_day["held_back"] = per_day["held_back"].astype(int)
    per_day["share"] = (per_day["held_back"] / per_day["employee_days"].clip(lower=1)).astype(float)
    check = expect(
        "expect_column_values_to_be_between",
        f"days with more than {config.max_held_back_share:.0%} of their employee-days held back "
        "(the source is broken, not a few people: see the other checks' failures)",
        show_values=False,
        column="share",
        max_value=config.max_held_back_share,
    )
    covered = {
        "max_held_back_share": config.max_held_back_share,
        "held_back_employee_days": len(held),
        "by_check": {r.name: len(r.held) for r in results},
    }
    return validate(
        per_day,
        [check],
        "held_back_share",
        sample_columns=list(per_day.columns),
        sample_rows=config.sample_rows,
        covered=covered,
    )
