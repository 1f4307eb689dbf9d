"""The finance stage's gate: payroll beside DingTalk's own 考勤报表 (warn only).

A difference between the pipeline and DingTalk's report is something for HR to look at (a late
补卡, an override, a rule the company set differently in DingTalk), never a reason to hold pay:
`dingtalk_report_agrees` reports the person-months beyond `report_tolerance`.
"""

from __future__ import annotations

import pandas as pd

from attendance_pipeline.checks.gx import WARN, GateResult, expect, validate


def report_gate(diff: pd.DataFrame, compared: bool, sample_rows: int = 5) -> GateResult:
    """`dingtalk_report_agrees` (warn): every person-month and measure of `dingtalk_report_diff`
    within its tolerance. Passes vacuously (saying so) when the month was never pulled."""
    frame = diff.copy()
    frame["days"] = frame["days"].map(
        lambda days: ", ".join(str(d) for d in days) if days is not None else ""
    )
    check = expect(
        "expect_column_values_to_be_in_set",
        "person-months differing from DingTalk's report beyond the tolerance "
        "(table dingtalk_report_diff)",
        show_values=False,
        column="within_tolerance",
        value_set=[True],
    )
    return validate(
        frame,
        [check],
        "dingtalk_report_agrees",
        severity=WARN,
        sample_columns=["userid", "name", "measure", "pipeline_value", "dingtalk_value", "days"],
        sample_rows=sample_rows,
        covered={
            "compared": compared,
            "differences": len(frame),
            "beyond_tolerance": int((~frame["within_tolerance"].astype(bool)).sum()),
        },
    )
