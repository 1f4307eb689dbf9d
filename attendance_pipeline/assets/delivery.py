"""Delivery to the PM system: accounts, identity mapping, the worklog plan, the push and the
reconciliation. Thin wiring around `attendance_pipeline.pm`."""

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from attendance_pipeline.assets import holds
from attendance_pipeline.assets import metadata as meta
from attendance_pipeline.assets.partitions import BACKFILL, DAILY, window_dates
from attendance_pipeline.checks import delivery as delivery_gates
from attendance_pipeline.checks.specs import check_result, failing_gates, specs_for
from attendance_pipeline.china_time import days, now_in_china
from attendance_pipeline.holdback import open_holds, split_held
from attendance_pipeline.pm.ledger import (
    LedgerView,
    append_outcomes,
    held_days,
    outcome_frame,
    read_ledger,
)
from attendance_pipeline.pm.mapping import load_explicit_mapping, map_days, mapping_fixes
from attendance_pipeline.pm.plan import (
    load_allocations,
    plan_days,
    planned_worklogs,
)
from attendance_pipeline.pm.push import ACTIONS, push_window
from attendance_pipeline.pm.reconcile import reconcile
from attendance_pipeline.resources.config import ConfigFolder
from attendance_pipeline.resources.delivery import PMResource
from attendance_pipeline.resources.warehouse import WarehouseResource
from attendance_pipeline.schemas import (
    PM_USERS,
    PUSHED_WORKLOGS,
    RECONCILIATION,
    USER_MAPPING,
    empty_frame,
)
from attendance_pipeline.vocabulary import Blocks, MappingStatus, ReconciliationStatus, values
from attendance_pipeline.warehouse import record_sync_error

# PM calls already retry inside the adapters; a step retry covers what is left (the PM system
# down for a while). Refusals (failing gates) are not retried.
PM_RETRY = dg.RetryPolicy(
    max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

DELIVERY: dict[str, Any] = {
    "partitions_def": DAILY,
    "backfill_policy": BACKFILL,
    "io_manager_key": "lake_io_manager",
    "group_name": "delivery",
}


class PushConfig(dg.Config):
    """Run configuration of the push (also set by `sync --dry-run`)."""

    dry_run: bool = False


def _dry_run(context: dg.AssetExecutionContext, config: PushConfig) -> bool:
    return config.dry_run or context.run.tags.get("attendance/dry_run") == "true"


@dg.asset(
    **DELIVERY,
    metadata=meta.lake_metadata("snapshot_date"),
    kinds={"parquet"},
    retry_policy=PM_RETRY,
    description="The PM system's accounts (daily snapshot), for identity matching.",
)
def pm_users(context: dg.AssetExecutionContext, pm: PMResource) -> pd.DataFrame:
    start, end = window_dates(context)
    store = pm.store()
    accounts = store.list_users() if store is not None else []
    rows = [
        {
            "snapshot_date": day,
            "pm_system": pm.system,
            "pm_user": a.pm_user,
            "login": a.login,
            "email": a.email,
            "name": a.name,
            "active": a.active,
        }
        for day in days(start, end)
        for a in accounts
    ]
    frame = pd.DataFrame(rows, columns=PM_USERS.names) if rows else empty_frame(PM_USERS)
    meta.record(context, frame, "snapshot_date", {"accounts": len(accounts)}, {"rows": meta.rows})
    return frame


@dg.asset(
    **DELIVERY,
    pool="warehouse",  # records its held-back employee-days in DuckDB
    metadata=meta.lake_metadata("snapshot_date"),
    kinds={"parquet", "duckdb"},
    check_specs=specs_for("user_mapping"),
    description="DingTalk user → PM account, per day, with the strategy used or why not.",
)
def user_mapping(
    context: dg.AssetExecutionContext,
    company_config: ConfigFolder,
    pm: PMResource,
    warehouse: WarehouseResource,
    dingtalk_roster: pd.DataFrame,
    pm_users: pd.DataFrame,
) -> Iterator[dg.Output[pd.DataFrame] | dg.AssetCheckResult]:
    scope = company_config.pipeline().scope
    explicit = load_explicit_mapping(company_config.path_of("user_mapping.csv"))
    frame = map_days(dingtalk_roster, pm_users, explicit, scope)
    if len(frame):
        frame["pm_system"] = pm.system
    else:
        frame = empty_frame(USER_MAPPING)
    latest = frame[frame["snapshot_date"] == frame["snapshot_date"].max()] if len(frame) else frame
    problems = latest[(latest["status"] != MappingStatus.MAPPED) & latest["in_scope"]]
    meta.record(
        context,
        frame,
        "snapshot_date",
        window={
            "problems": meta.preview(
                problems,
                ["userid", "name", "status", "reason"],
                rows=len(problems),
                empty="every in-scope employee is mapped",
            ),
        },
        daily={
            "rows": meta.rows,
            **{s: meta.counted("status", s) for s in values(MappingStatus)},
            "in_scope_not_mapped": lambda day: int(
                ((day["status"] != MappingStatus.MAPPED) & day["in_scope"]).sum()
            ),
        },
    )
    frame = frame[USER_MAPPING.names]
    if pm.system == "none":
        yield dg.Output(frame)
        yield dg.AssetCheckResult(
            check_name="mapping_valid",
            passed=True,
            description="PM_SYSTEM=none: nothing is pushed, so nobody needs a PM account",
        )
        return
    start, end = window_dates(context)
    result = delivery_gates.mapping_gate(
        frame,
        quality=company_config.quality(),
        accounts=int(pm_users["pm_user"].nunique()) if len(pm_users) else 0,
        fixes=mapping_fixes(frame, dingtalk_roster),
    )
    if not result.systemic:
        with warehouse.connect() as con:
            holds.publish_and_record(context, con, [result], start, end)
    yield dg.Output(frame)
    yield check_result("user_mapping", result)


@dg.asset(
    **DELIVERY,
    pool="warehouse",  # reads and records held-back employee-days in DuckDB
    metadata=meta.lake_metadata("work_date"),
    kinds={"parquet", "duckdb"},
    check_specs=specs_for("worklog_plan"),
    description="Worklogs to hold in the PM system: countable hours of mapped, in-scope people "
    "split over issues by config/allocations.csv, each with a deterministic worklog_key.",
)
def worklog_plan(
    context: dg.AssetExecutionContext,
    company_config: ConfigFolder,
    pm: PMResource,
    warehouse: WarehouseResource,
    effective_hours: pd.DataFrame,
    dingtalk_roster: pd.DataFrame,
    user_mapping: pd.DataFrame,
) -> Iterator[dg.Output[pd.DataFrame] | dg.AssetCheckResult]:
    start, end = window_dates(context)
    rules = company_config.rules()
    allocations = load_allocations(company_config.path_of("allocations.csv"))
    # Employee-days whose hours were held back are not planned (nor published, nor paid yet).
    with warehouse.connect() as con:
        withheld = open_holds(con, start, end, blocks=[Blocks.ALL])
    effective_hours, held_hours = split_held(effective_hours, withheld)
    frame, skipped = plan_days(
        effective_hours,
        dingtalk_roster,
        user_mapping,
        allocations,
        company_config.pipeline().scope,
        pm.system,
        rules.push_overtime,
        rules.push_exempt,
    )
    if len(held_hours):
        skipped = pd.concat([held_hours, skipped], ignore_index=True)
    result = delivery_gates.plan_gate(
        frame, effective_hours, user_mapping, quality=company_config.quality()
    )
    if not result.systemic:
        with warehouse.connect() as con:
            holds.publish_and_record(context, con, [result], start, end)
    meta.record(
        context,
        frame,
        "work_date",
        window={
            "employee_days_skipped": len(skipped),
            "skipped": meta.preview(skipped, rows=20, empty="none"),
            "preview": meta.preview(frame, ["work_date", "name", "issue", "kind", "seconds"]),
        },
        daily={"rows": meta.rows, "hours": meta.total("seconds", scale=3600)},
    )
    yield dg.Output(frame)
    yield check_result("worklog_plan", result)


def _ledger_and_holds(
    warehouse: WarehouseResource, system: str, start: date, end: date, mapping: pd.DataFrame
) -> tuple[LedgerView, set[tuple[str, date]], set[tuple[str, date]]]:
    """(the ledger's view of the window, held (userid, day), held (pm_user, day)), in one read."""
    with warehouse.connect() as con:
        ledger = read_ledger(con, system, start, end)
        withheld = open_holds(con, start, end)
    held, frozen = held_days(withheld, mapping, ledger.accounts)
    return ledger, held, frozen


@dg.asset(
    **DELIVERY,
    pool="warehouse",
    # Automated runs (the automation daemon) push when the plan or mapping is updated. Dagster's
    # `all_deps_blocking_checks_passed` cannot tell a WARN result (employee-days held back, the
    # rest must flow) from an ERROR one, so every run, automated or not, is guarded by the push's
    # own precondition instead: no systemic (ERROR) gate failure stands (`failing_gates`), and
    # held-back days are left alone.
    retry_policy=PM_RETRY,
    automation_condition=dg.AutomationCondition.eager(),
    metadata=meta.lake_metadata("work_date"),
    kinds={"parquet", "duckdb"},
    description="Pushes the plan to the PM system exactly once (create/update/delete by key; "
    "human edits are conflicts, left alone). Outcomes go to the DuckDB worklog_ledger.",
)
def pushed_worklogs(
    context: dg.AssetExecutionContext,
    config: PushConfig,
    pm: PMResource,
    warehouse: WarehouseResource,
    worklog_plan: pd.DataFrame,
    user_mapping: pd.DataFrame,
) -> pd.DataFrame:
    start, end = window_dates(context)
    dry_run = _dry_run(context, config)
    warehouse_path = Path(warehouse.path)
    store = pm.store()
    if store is None:
        context.add_output_metadata(
            output_name="result", metadata={"rows": 0, "skipped": "PM_SYSTEM=none: nothing pushed"}
        )
        return empty_frame(PUSHED_WORKLOGS)
    problems = failing_gates(context.instance, meta.key_prefix(context))
    if problems and not dry_run:
        message = "; ".join(problems)
        record_sync_error(
            warehouse_path, pm.system, "push", f"{start}..{end}", "", "Blocked", message
        )
        raise dg.Failure(
            description="refusing to push: blocking quality gates are failing or have not run "
            f"({message}). Fix the data, re-run the upstream assets, then push.",
            metadata={"failing_gates": dg.MetadataValue.json(problems)},
            allow_retries=False,
        )
    ledger, held, frozen = _ledger_and_holds(warehouse, pm.system, start, end, user_mapping)
    # Held-back employee-days are left exactly as the PM system holds them: not written, not
    # deleted, until a later run releases them.
    outcomes = push_window(
        store,
        [p for p in planned_worklogs(worklog_plan) if (p.userid, p.work_date) not in held],
        start,
        end,
        list_users=ledger.pm_users | set(user_mapping["pm_user"].dropna()),
        list_issues=ledger.issues,
        last_pushed=ledger.last_pushed,
        frozen=frozen,
        dry_run=dry_run,
        progress=lambda done, total: (
            context.log.info(f"{done}/{total} writes") if done % 100 == 0 or done == total else None
        ),
    )
    frame = outcome_frame(outcomes, pm.system, dry_run, now_in_china())
    with warehouse.connect() as con:
        appended = append_outcomes(con, frame)
    context.log_event(
        dg.AssetMaterialization(
            meta.key_for(context, "worklog_ledger"), metadata={"rows_appended": appended}
        )
    )
    meta.record(
        context,
        frame,
        "work_date",
        window={
            "dry_run": dry_run,
            "held_back_employee_days": len(held),
            "preview": meta.preview(
                frame[frame["action"] != "unchanged"],
                ["work_date", "pm_user", "issue", "seconds", "action", "message"],
                rows=15,
            ),
        },
        daily={
            "rows": meta.rows,
            **{action: meta.counted("action", action) for action in ACTIONS},
        },
    )
    failed = frame[frame["action"] == "failed"]
    for row in failed.itertuples():
        day, key = str(row.work_date), str(row.worklog_key)
        record_sync_error(warehouse_path, pm.system, "write", day, key, "WriteFailed", row.message)
    if len(failed):
        raise dg.Failure(
            description=f"{len(failed)} worklog write(s) failed; the ledger has the details. "
            f"First: {failed.iloc[0]['message']}",
            metadata={"failed": len(failed)},
        )
    return frame


@dg.asset(
    **DELIVERY,
    deps=["pushed_worklogs"],
    metadata=meta.lake_metadata("work_date"),
    kinds={"parquet"},
    check_specs=specs_for("worklog_reconciliation"),
    description="Re-reads the PM system and compares it with the plan, key by key.",
)
def worklog_reconciliation(
    context: dg.AssetExecutionContext,
    pm: PMResource,
    warehouse: WarehouseResource,
    worklog_plan: pd.DataFrame,
    user_mapping: pd.DataFrame,
) -> Iterator[dg.Output[pd.DataFrame] | dg.AssetCheckResult]:
    start, end = window_dates(context)
    store = pm.store()
    if store is None:
        context.add_output_metadata(
            output_name="result", metadata={"rows": 0, "skipped": "PM_SYSTEM=none"}
        )
        frame = empty_frame(RECONCILIATION)
        yield dg.Output(frame)
        yield check_result(
            "worklog_reconciliation",
            delivery_gates.reconciliation_gate(frame),
        )
        yield check_result(
            "worklog_reconciliation",
            delivery_gates.reconciliation_conflicts_gate(frame),
        )
        return
    ledger, held, frozen = _ledger_and_holds(warehouse, pm.system, start, end, user_mapping)
    users = ledger.pm_users | set(user_mapping["pm_user"].dropna()) | set(worklog_plan["pm_user"])
    issues = ledger.issues | set(worklog_plan["issue"])
    remote = [
        r
        for r in store.list_worklogs(sorted(users), sorted(issues), start, end)
        if (r.pm_user, r.work_date) not in frozen
    ]
    planned = [p for p in planned_worklogs(worklog_plan) if (p.userid, p.work_date) not in held]
    frame = reconcile(planned, remote, ledger.last_pushed)
    meta.record(
        context,
        frame,
        "work_date",
        window={"held_back_employee_days": len(held)},
        daily={
            "rows": meta.rows,
            **{s: meta.counted("status", s) for s in values(ReconciliationStatus)},
        },
    )
    yield dg.Output(frame)
    if context.run.tags.get("attendance/dry_run") == "true":
        for name in ("reconciled", "no_conflicts"):
            yield dg.AssetCheckResult(
                check_name=name,
                passed=True,
                description="dry run: nothing was written, so the remote is not expected to "
                "hold the plan (see the metadata for the difference)",
            )
        return
    yield check_result("worklog_reconciliation", delivery_gates.reconciliation_gate(frame))
    yield check_result(
        "worklog_reconciliation",
        delivery_gates.reconciliation_conflicts_gate(frame),
    )
