"""The delivery layer's gates (`mapping_valid`, `plan_valid`, `reconciled`, `no_conflicts`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from attendance_pipeline.checks.gx import (
    ERROR,
    WARN,
    FailedExpectation,
    GateResult,
    all_true,
    as_flag,
    combine,
    employee_day_rows,
    expect,
    has_columns,
    not_null,
    one_of,
    or_defaults,
    prepared,
    run_expectations,
    validate,
)
from attendance_pipeline.checks.quality import QualityConfig
from attendance_pipeline.schemas import RECONCILIATION, USER_MAPPING, WORKLOG_PLAN
from attendance_pipeline.vocabulary import (
    Blocks,
    Grain,
    MappingStatus,
    ReconciliationStatus,
    WorklogKind,
    values,
)

PLAN_FIX = "check config/allocations.csv and config/user_mapping.csv for this person, re-run"


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
    config = or_defaults(quality)
    frame = prepared(mapping, "snapshot_date")
    frame = frame.assign(work_date=frame["snapshot_date"]) if "snapshot_date" in frame else frame
    if "userid" in frame.columns:
        own = fixes or {}
        frame = frame.assign(fix=[own.get(str(u), MAPPING_FIX) for u in frame["userid"]])
    sample = ["snapshot_date", "userid", "name", "status", "pm_user", "reason"]
    whole = [
        has_columns(USER_MAPPING.names, "user_mapping"),
        one_of("status", values(MappingStatus)),
        expect(
            "expect_compound_columns_to_be_unique",
            "PM account claimed by two employees on one day",
            grain=Grain.EMPLOYEE_DAY,
            fix="add `userid,pm_user` rows to config/user_mapping.csv saying who owns the account",
            column_list=["snapshot_date", "pm_user"],
            ignore_row_if="any_value_is_missing",
        ),
    ]
    parts = [run_expectations(frame, whole, sample, config.sample_rows)]
    latest_day = None
    in_scope = frame.iloc[0:0]
    share = None
    if {"snapshot_date", "in_scope", "status"} <= set(frame.columns) and len(frame):
        in_scope = frame[as_flag(frame["in_scope"])]
        unmapped = expect(
            "expect_column_values_to_be_in_set",
            "in-scope employee not mapped to a PM account",
            grain=Grain.EMPLOYEE_DAY,
            fix=MAPPING_FIX,
            column="status",
            value_set=["mapped"],
        )
        parts.append(run_expectations(in_scope, [unmapped], sample, config.sample_rows))
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
            parts.append(
                run_expectations(shares, [limit], list(shares.columns), config.sample_rows)
            )
    if accounts is not None:
        listed = pd.DataFrame({"accounts": [accounts]})
        empty = expect(
            "expect_column_values_to_be_between",
            "the PM system listed no user accounts (check PM_BASE_URL, the credentials and "
            "the integration user's permission to list users)",
            column="accounts",
            min_value=1,
        )
        parts.append(run_expectations(listed, [empty], ["accounts"], config.sample_rows))
    covered = {
        "snapshots": int(frame["snapshot_date"].nunique()) if "snapshot_date" in frame else 0,
        "latest_snapshot": latest_day.isoformat() if latest_day else None,
        "in_scope_employee_days": len(in_scope),
        "unmapped_share_latest": share,
        "max_unmapped_share": config.max_unmapped_share,
        "pm_accounts": accounts,
    }
    return replace(
        combine("mapping_valid", ERROR, len(frame), parts, covered), blocks=Blocks.DELIVERY
    )


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
    config = or_defaults(quality)
    key = ["userid", "work_date"]
    frame = prepared(plan, "work_date")
    sample = ["worklog_key", "work_date", "userid", "name", "pm_user", "issue", "kind", "seconds"]
    rows = [
        *employee_day_rows(
            WORKLOG_PLAN.names,
            "worklog_plan",
            PLAN_FIX,
            (
                not_null("worklog_key", "worklog_key missing"),
                expect(
                    "expect_column_values_to_be_unique",
                    "worklog_key not unique",
                    column="worklog_key",
                ),
                not_null("issue", "issue missing"),
                expect(
                    "expect_column_values_to_match_regex",
                    "issue empty",
                    column="issue",
                    regex=r"\S",
                ),
                not_null("pm_user", "pm_user missing"),
                expect(
                    "expect_column_values_to_match_regex",
                    "pm_user empty",
                    column="pm_user",
                    regex=r"\S",
                ),
                one_of("kind", values(WorklogKind)),
                expect(
                    "expect_column_values_to_be_between",
                    "seconds outside 60..86400",
                    column="seconds",
                    min_value=60,
                    max_value=86_400,
                ),
            ),
        ),
    ]
    parts = [run_expectations(frame, rows, sample, config.sample_rows)]
    if {*key, "kind", "seconds"} <= set(frame.columns) and len(frame):
        parts.append(_planned_vs_hours(frame, prepared(hours, "work_date"), config))
    if {*key, "pm_user"} <= set(frame.columns) and len(frame):
        parts.append(_planned_vs_mapping(frame, prepared(mapping, "snapshot_date"), config))
    covered = {
        "worklogs": len(frame),
        "user_days": int(frame[key].drop_duplicates().shape[0]) if len(frame) else 0,
        "seconds_rule": "work seconds per user-day == round(effective_hours * 60) * 60",
    }
    return replace(combine("plan_valid", ERROR, len(frame), parts, covered), blocks=Blocks.DELIVERY)


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
    check = all_true(
        "matches",
        "user-days whose planned seconds differ from effective hours × 3600",
        grain=Grain.EMPLOYEE_DAY,
        fix=PLAN_FIX,
    )
    sample = ["userid", "name", "work_date", "planned_seconds", "effective_hours"]
    return run_expectations(per_day, [check], [*sample, "expected_seconds"], config.sample_rows)


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
            grain=Grain.EMPLOYEE_DAY,
            fix=PLAN_FIX,
            column="mapping_status",
            value_set=["mapped"],
        ),
        all_true(
            "pm_user_matches",
            "worklogs whose pm_user is not the employee's mapped account",
            grain=Grain.EMPLOYEE_DAY,
            fix=PLAN_FIX,
        ),
    ]
    sample = ["worklog_key", "work_date", "userid", "name", "pm_user"]
    sample += ["mapping_status", "mapped_pm_user"]
    return run_expectations(same_day, checks, sample, config.sample_rows)


RECONCILIATION_SAMPLE = ["work_date", "worklog_key", "userid", "pm_user", "issue"]
RECONCILIATION_SAMPLE += ["planned_seconds", "remote_seconds", "remote_id", "status"]


def _status_counts(frame: pd.DataFrame) -> dict[str, int]:
    if "status" not in frame.columns:
        return {}
    counts = frame["status"].value_counts()
    return {s: int(counts.get(s, 0)) for s in values(ReconciliationStatus)}


def reconciliation_gate(recon: pd.DataFrame, *, quality: QualityConfig | None = None) -> GateResult:
    """`reconciled` (error): every key's status is known and none is missing, extra or different.

    Conflicts (a person edited a worklog since our push) pass here and are reported by the
    separate warn-only `reconciliation_conflicts_gate`, so a Dagster check per concern stays
    simple (one function, one check).
    """
    expectations = [
        has_columns(RECONCILIATION.names, "worklog_reconciliation"),
        not_null("status", "status missing"),
        one_of("status", values(ReconciliationStatus)),
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
        sample_rows=or_defaults(quality).sample_rows,
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
        sample_rows=or_defaults(quality).sample_rows,
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
