"""The Great Expectations wrapper every gate uses (no Dagster): expectations with their grain,
one GX run per frame, results that hold back employee-days or stop the run.

Every gate builds the frame it needs (the stored frame itself, or a derived one such as one row per
employee-workday with a boolean `explained` column), states its expectations and hands both to
`validate` (or several `run_expectations` parts to `combine`), the one place that talks to GX. GX
is imported on first use (the import takes seconds) and runs in one in-process ephemeral context,
reused for every gate. An expectation's `grain` says what a failure means: a systemic break (the
whole run stops), employee-days held back with a `fix`, or rows only reported (docs/holdback.md).
"""

from __future__ import annotations

import logging
import math
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd

from attendance_pipeline.checks.quality import QualityConfig
from attendance_pipeline.deferred_imports import GX_UNUSED, defer
from attendance_pipeline.vocabulary import Blocks, Grain

ERROR, WARN = "error", "warn"
HELD_COLUMNS = ["userid", "work_date", "name", "reason", "fix"]


@dataclass
class FailedExpectation:
    """One expectation that did not hold, with the offending rows."""

    expectation: str  # GX type, e.g. "expect_column_values_to_be_in_set"
    column: str | None  # several columns joined by ", "
    detail: str  # short human text: "time_result not in {...}: 3 rows (Bogus)"
    unexpected_count: int
    sample: list[dict[str, Any]]  # up to `sample_rows` offending rows, JSON-safe
    grain: str = Grain.SYSTEMIC
    # EMPLOYEE_DAY failures: every offending (userid, work_date, name, reason, fix), unsampled.
    held: pd.DataFrame | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        return json_safe(
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
    blocks: str = Blocks.ALL  # what this gate's held-back employee-days are kept out of

    @property
    def systemic(self) -> bool:
        """A failure that means the source or target is broken: the whole run stops."""
        return any(f.grain == Grain.SYSTEMIC for f in self.failures)

    @property
    def held(self) -> pd.DataFrame:
        """Every held-back employee-day, once, with its reasons and fixes joined."""
        parts = [
            f.held for f in self.failures if f.grain == Grain.EMPLOYEE_DAY and f.held is not None
        ]
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
            "held_back": json_safe(held.head(50).to_dict("records")),
            "covered": json_safe(self.covered),
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
    grain: str = Grain.SYSTEMIC
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
    grain: str = Grain.SYSTEMIC,
    fix: str = "",
    **kwargs: Any,
) -> Expect:
    return Expect(type_, label, kwargs, show_values, grain, fix)


def all_true(column: str, label: str, *, grain: str = Grain.SYSTEMIC, fix: str = "") -> Expect:
    """Every row's boolean `column` is true (the gate computed the verdict per row); the detail
    shows the first offending row rather than the value `False`."""
    return expect(
        "expect_column_values_to_be_in_set",
        label,
        show_values=False,
        grain=grain,
        fix=fix,
        column=column,
        value_set=[True],
    )


def per_employee_day(item: Expect, fix: str) -> Expect:
    """The same expectation, its offending rows held back per (userid, work_date)."""
    return replace(item, grain=Grain.EMPLOYEE_DAY, fix=fix)


def employee_day_rows(
    columns: Sequence[str], what: str, fix: str, items: Iterable[Expect]
) -> list[Expect]:
    """A table's row-level expectations: its columns and the (userid, work_date) that name an
    employee-day are systemic; every other row expectation holds back the offending
    employee-days with `fix`."""
    return [
        has_columns(columns, what),
        not_null("userid", "userid missing"),
        not_null("work_date", "work_date missing"),
        *(per_employee_day(item, fix) for item in items),
    ]


def reported(item: Expect) -> Expect:
    """The same expectation, shown in the check but holding nothing back."""
    return replace(item, grain=Grain.REPORTED)


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
            defer(*GX_UNUSED)  # ~80 MiB GX imports for expectations we never use
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


def run_expectations(
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
    if item.grain == Grain.EMPLOYEE_DAY:
        held = _held_rows(frame, list(details.get("unexpected_index_list") or []), item)
    columns = [c for c in (sample_columns or frame.columns) if c in frame.columns]
    columns += [c for c in item.columns if c not in columns]
    indexes = list(details.get("partial_unexpected_index_list") or [])[:sample_rows]
    sample = [json_safe(row) for row in frame.loc[indexes, columns].to_dict("records")]
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
    grain = item.grain if held is not None or item.grain != Grain.EMPLOYEE_DAY else Grain.SYSTEMIC
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
    run, failures = run_expectations(frame, expectations, sample_columns, sample_rows)
    return GateResult(name, not failures, severity, len(frame), run, failures, covered or {})


def combine(
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


def json_safe(value: Any) -> Any:
    """JSON-safe: dates and timestamps as ISO strings, numpy scalars as Python, NaN/NA as None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray, pd.Series)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else (None if math.isnan(value) else str(value))
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
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
    value = json_safe(value)
    if isinstance(value, dict):
        return _describe(value)
    if isinstance(value, list):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def to_date(value: Any) -> date | None:
    if is_missing(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def as_dates(values: pd.Series) -> pd.Series:
    """A date-like column as `datetime.date` objects (None for missing), whatever its dtype."""
    return pd.Series([to_date(v) for v in values], index=values.index, dtype=object)


KEY_TEXT_COLUMNS = ("userid", "status", "pm_user")


def prepared(frame: pd.DataFrame, *date_columns: str) -> pd.DataFrame:
    """The frame with its date columns as `date` objects and its join keys as plain objects.

    pandas 3 cannot merge two empty Arrow-backed string columns ("cannot construct ChunkedArray
    from empty vector"), which an empty partition read from Parquet has.
    """
    changed = {c: as_dates(frame[c]) for c in date_columns if c in frame.columns}
    changed |= {c: frame[c].astype(object) for c in KEY_TEXT_COLUMNS if c in frame.columns}
    return frame.assign(**changed) if changed else frame


def as_flag(values: pd.Series) -> pd.Series:
    """A truthy column as plain bool (missing = False)."""
    return pd.Series([bool(v) and not is_missing(v) for v in values], index=values.index)


def set_text(values: Iterable[Any]) -> str:
    return "{" + ", ".join(str(v) for v in values) + "}"


def or_defaults(quality: QualityConfig | None) -> QualityConfig:
    return quality if quality is not None else QualityConfig()


def not_null(column: str, label: str) -> Expect:
    return expect("expect_column_values_to_not_be_null", label, column=column)


def one_of(column: str, values: Iterable[Any], suffix: str = "") -> Expect:
    """`column` takes only `values` (nulls are left to `_not_null`)."""
    allowed = list(values)
    label = f"{column} not in {set_text(allowed)}{suffix}"
    return expect("expect_column_values_to_be_in_set", label, column=column, value_set=allowed)


def has_columns(names: Sequence[str], what: str) -> Expect:
    return expect(
        "expect_table_columns_to_match_set",
        f"{what} columns",
        column_set=list(names),
        exact_match=False,
    )


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


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
    config = or_defaults(quality)
    frames = [r.held[["userid", "work_date"]] for r in results if len(r.held)]
    held = (
        prepared(pd.concat(frames, ignore_index=True), "work_date").drop_duplicates()
        if frames
        else pd.DataFrame(columns=["userid", "work_date"])
    )
    days = prepared(employee_days[["userid", "work_date"]], "work_date").drop_duplicates()
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


def held_union(results: Sequence[GateResult]) -> pd.DataFrame:
    """Every employee-day any of `results` holds back, once."""
    parts = [r.held for r in results if len(r.held)]
    if not parts:
        return pd.DataFrame(columns=HELD_COLUMNS)
    return pd.concat(parts, ignore_index=True).drop_duplicates(["userid", "work_date"])


def warm_up() -> None:
    """Import GX and create the context now (benchmarks pay it up front)."""
    _gx()
