"""The DingTalk layers' gates: the roster snapshot and the raw attendance and approvals
(`roster_valid`, `raw_attendance_valid`, `raw_approvals_valid`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pandas as pd

from attendance_pipeline.checks.gx import (
    ERROR,
    Expect,
    GateResult,
    combine,
    employee_day_rows,
    expect,
    has_columns,
    held_back_share_gate,
    not_null,
    one_of,
    or_defaults,
    prepared,
    reported,
    run_expectations,
    validate,
)
from attendance_pipeline.checks.quality import QualityConfig
from attendance_pipeline.schemas import RAW_APPROVALS, RAW_ATTENDANCE, ROSTER
from attendance_pipeline.vocabulary import (
    BizType,
    CheckType,
    DurationUnit,
    Grain,
    SourceType,
    TimeResult,
    values,
)

RAW_FIX = (
    "DingTalk returned a malformed result for this person-day: check it in the DingTalk admin "
    "console, then re-sync the day (it is released once DingTalk serves it clean)"
)


def inside_window(start: date, end: date) -> Expect:
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


def window_covered(start: date, end: date) -> dict[str, Any]:
    return {"window": f"{start.isoformat()}..{end.isoformat()}"}


def raw_attendance_gate(
    frame: pd.DataFrame, start: date, end: date, *, quality: QualityConfig | None = None
) -> GateResult:
    """`raw_attendance_valid`: schema, allowed values, unique ids and check points, dates in the
    window."""
    frame = prepared(frame, "work_date")
    check_point = ["userid", "work_date", "check_type", "base_check_time"]
    fix = RAW_FIX
    expectations = [
        *employee_day_rows(
            RAW_ATTENDANCE.names,
            "raw_attendance",
            fix,
            (
                not_null("id", "id missing"),
                expect("expect_column_values_to_be_unique", "id not unique", column="id"),
                expect(
                    "expect_compound_columns_to_be_unique",
                    "duplicated check point (userid, work_date, check_type, base_check_time)",
                    column_list=check_point,
                ),
                not_null("check_type", "check_type missing"),
                one_of("check_type", values(CheckType)),
                not_null("time_result", "time_result missing"),
                one_of("time_result", values(TimeResult)),
                one_of("source_type", values(SourceType), " (or empty)"),
            ),
        ),
        inside_window(start, end),
    ]
    sample = ["id", *check_point, "time_result", "source_type"]
    rows = or_defaults(quality).sample_rows
    covered = {
        **window_covered(start, end),
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
    return _widespread(result, frame, or_defaults(quality))


def _widespread(result: GateResult, frame: pd.DataFrame, config: QualityConfig) -> GateResult:
    """A raw gate whose malformed rows cover more than `max_held_back_share` of some day's
    employee-days is systemic: DingTalk changed its schema or values, it is not a few people."""
    if result.systemic or not len(result.held):
        return result
    share = held_back_share_gate([result], frame, quality=config)
    if share.passed:
        return result
    failures = [
        replace(f, grain=Grain.SYSTEMIC, detail=f"{f.detail}: {WIDESPREAD}") for f in share.failures
    ]
    return replace(result, failures=[*result.failures, *failures])


WIDESPREAD = "a DingTalk schema or value change, not a few people: nothing is published"


def raw_approvals_gate(
    frame: pd.DataFrame, start: date, end: date, *, quality: QualityConfig | None = None
) -> GateResult:
    """`raw_approvals_valid`: biz types, units, unique (approval, day), dates, begin <= end."""
    frame = prepared(frame, "work_date")
    fix = RAW_FIX
    expectations = [
        *employee_day_rows(
            RAW_APPROVALS.names,
            "raw_approvals",
            fix,
            (
                not_null("approve_id", "approve_id missing"),
                not_null("biz_type", "biz_type missing"),
                one_of("biz_type", values(BizType)),
                not_null("duration_unit", "duration_unit missing"),
                one_of("duration_unit", values(DurationUnit)),
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
            ),
        ),
        inside_window(start, end),
    ]
    sample = ["approve_id", "work_date", "userid", "biz_type", "duration_unit"]
    sample += ["begin_time", "end_time", "begin_at", "end_at"]
    covered = {
        **window_covered(start, end),
        "approvals": int(frame["approve_id"].nunique()) if "approve_id" in frame.columns else 0,
    }
    return validate(
        frame,
        expectations,
        "raw_approvals_valid",
        sample_columns=sample,
        sample_rows=or_defaults(quality).sample_rows,
        covered=covered,
    )


def roster_gate(
    frame: pd.DataFrame, previous_rows: int | None, *, quality: QualityConfig | None = None
) -> GateResult:
    """`roster_valid`: not empty, one row per (snapshot_date, userid), not suddenly halved.

    The first snapshot is compared with `previous_rows` (the previous snapshot's employee count,
    when known), every later snapshot in the frame with the one before it.
    """
    config = or_defaults(quality)
    frame = prepared(frame, "snapshot_date", "hired_date")
    expectations = [
        has_columns(ROSTER.names, "dingtalk_roster"),
        expect(
            "expect_table_row_count_to_be_between", "roster is empty (no employees)", min_value=1
        ),
        not_null("userid", "userid missing"),
        expect(
            "expect_compound_columns_to_be_unique",
            "(snapshot_date, userid) not unique",
            column_list=["snapshot_date", "userid"],
        ),
    ]
    parts = [
        run_expectations(
            frame, expectations, ["snapshot_date", "userid", "name"], config.sample_rows
        )
    ]
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
        parts.append(run_expectations(sizes, [shrink], list(sizes.columns), config.sample_rows))
    covered = {
        "snapshots": [d.isoformat() for d in sizes["snapshot_date"]],
        "employees": [int(n) for n in sizes["employees"]],
        "previous_employees": previous_rows,
        "roster_min_ratio": config.roster_min_ratio,
    }
    return combine("roster_valid", ERROR, len(frame), parts, covered)
