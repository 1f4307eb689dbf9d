"""Asset checks (data-quality gates), declared beside the layers they guard.

The gates themselves are plain Great Expectations code (`checks/gx.py` and one module per stage);
this module turns a `GateResult` into a Dagster `AssetCheckResult` and lists the check specs each
asset declares.

A gate's verdict is per employee-day: a blocking gate that only holds back employee-days reports
a failed result of WARN severity (the UI shows who and why; downstream steps run, without those
days), and only a systemic break is a failed result of ERROR severity, which stops every
downstream step of the same run. `pushed_worklogs` also asks the instance for the latest results
of these checks before writing anything (`failing_gates`): it refuses while a systemic failure
stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

from attendance_pipeline.dagster_api import latest_check_evaluations

# (asset, check name, blocking, description). Blocking = ERROR severity.
GATES: list[tuple[str, str, bool, str]] = [
    ("dingtalk_roster", "roster_valid", True,
     "unique employees per day; not empty; not suddenly halved against the previous snapshot"),
    ("raw_attendance", "raw_attendance_valid", True,
     "schema, allowed values, unique ids and check points, work dates inside the partition"),
    ("raw_approvals", "raw_approvals_valid", True,
     "allowed biz types and units, unique (approval, day), days inside the partition"),
    ("effective_hours", "inputs_complete", True,
     "every active employee has check points on each statutory workday, or an approval"),
    ("effective_hours", "hours_valid", True,
     "one row per employee-day; 0-24 h; hours agree with an independent re-derivation"),
    ("effective_hours", "held_back_share", True,
     "no day with more than max_held_back_share of its employee-days held back"),
    ("effective_hours", "calendar_covered", False,
     "the holiday calendar covers every day (else day types follow DingTalk's schedule)"),
    ("effective_hours", "unusual_patterns", False,
     "late streaks and departments whose hours halve week over week"),
    ("user_mapping", "mapping_valid", True,
     "every in-scope employee mapped (else held back from delivery); no PM account claimed "
     "twice; the PM system lists accounts; at most max_unmapped_share unmapped"),
    ("worklog_plan", "plan_valid", True,
     "unique keys; planned seconds per user-day equal effective hours; issue and PM user set"),
    ("worklog_reconciliation", "reconciled", True,
     "the PM system holds exactly the plan: nothing missing, extra or different"),
    ("worklog_reconciliation", "no_conflicts", False,
     "no worklog edited by a person since our last push"),
    ("dingtalk_report_diff", "dingtalk_report_agrees", False,
     "payroll agrees with DingTalk's own report within report_tolerance, per person-month"),
]  # fmt: skip


def push_preconditions(prefix: Sequence[str] = ()) -> list[dg.AssetCheckKey]:
    """The gates whose latest result must be passing before anything is pushed (for the
    organisation whose keys start with `prefix`)."""
    return [
        dg.AssetCheckKey(dg.AssetKey([*prefix, asset]), name)
        for asset, name, blocking, _ in GATES
        if blocking and asset not in ("worklog_reconciliation",)
    ]


def specs_for(asset: str) -> list[dg.AssetCheckSpec]:
    """The check specs an asset declares (its body yields their results)."""
    return [
        dg.AssetCheckSpec(name, asset=asset, blocking=blocking, description=description)
        for owner, name, blocking, description in GATES
        if owner == asset
    ]


def check_result(asset: str, result: Any) -> dg.AssetCheckResult:
    """A `GateResult` as a Dagster check result (metadata: what failed, counts, sample rows).

    A blocking gate is ERROR (stops downstream) only for a systemic failure; one that holds back
    employee-days, or only reports rows, is WARN so the rest flows."""
    blocking = next(b for owner, name, b, _ in GATES if owner == asset and name == result.name)
    stops = blocking and result.systemic
    return dg.AssetCheckResult(
        # No asset_key: each gate's op has one asset, so Dagster takes it, under an
        # organisation's `<org>/` prefix too.
        check_name=result.name,
        passed=bool(result.passed),
        severity=dg.AssetCheckSeverity.ERROR if stops else dg.AssetCheckSeverity.WARN,
        description=result.summary(),
        metadata={
            key: dg.MetadataValue.json(value) if isinstance(value, (dict, list)) else value
            for key, value in result.metadata().items()
        },
    )


def failing_gates(instance: dg.DagsterInstance, prefix: Sequence[str] = ()) -> list[str]:
    """Push preconditions whose latest evaluation failed systemically (ERROR) or never ran.

    Held-back employee-days (a WARN result) do not stop the push: the pusher leaves exactly
    those days alone (`held_back`)."""
    problems = []
    for key, evaluation in latest_check_evaluations(instance, push_preconditions(prefix)).items():
        label = f"{key.asset_key.to_user_string()}:{key.name}"
        if evaluation is None:
            problems.append(f"{label} has never run")
        elif evaluation.passed is not True and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            problems.append(f"{label} failed in run {evaluation.run_id}")
    return problems
