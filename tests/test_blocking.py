"""Systemic breaks still block everything (issue 10): a raw schema or value change at DingTalk,
or a PM system that lists no accounts, fails its gate with ERROR severity and the cause in the
metadata; zero worklogs reach the PM system, the published finance tables stay exactly as they
were, and the sync exits 1 — within one run, and when the push runs later in a separate run."""

from datetime import date

import dagster as dg
import duckdb
import pytest

from attendance_pipeline.dagster_api import partition_range_tags
from attendance_pipeline.definitions import build_definitions
from attendance_pipeline.pm.jira import JiraWorklogStore
from attendance_pipeline.sync import EXIT_FAILED, EXIT_OK, run_sync
from tests.conftest import resource
from tests.test_delivery import WEEK

PUBLISHED = {
    "effective_hours": "SELECT * FROM effective_hours ORDER BY userid, work_date",
    "payroll_monthly": "SELECT * FROM payroll_monthly ORDER BY month, kind, userid, original_date",
    "held_back": 'SELECT * FROM held_back ORDER BY "check", userid, work_date, first_seen',
}


def published(settings) -> dict[str, list[tuple]]:
    """Every published table's rows, every column (computed_at included)."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        names = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        tables = {r[0] for r in names}
        return {t: con.execute(sql).fetchall() for t, sql in PUBLISHED.items() if t in tables}


def break_dingtalk(sim, kind: str) -> None:
    """DingTalk changes its reply for everyone (the source itself is broken)."""
    company = sim.company
    original = type(company).attendance.__get__(company)

    def attendance(userid, day, today):
        records = original(userid, day, today)
        if kind == "time_result_renamed":  # an enum change: every value lower-cased
            return [{**r, "timeResult": r["timeResult"].lower()} for r in records]
        if kind == "duplicated_everywhere":  # every check point twice, under new ids
            return [*records, *({**r, "id": r["id"] + 10_000_000} for r in records)]
        raise AssertionError(kind)

    company.attendance = attendance  # type: ignore[method-assign]


def push_only_run(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """Materialise only `pushed_worklogs` for WEEK, as a separate run from the UI would."""
    push_only = dg.define_asset_job("push_only", selection=["pushed_worklogs"])
    job = dg.Definitions.merge(defs, dg.Definitions(jobs=[push_only])).resolve_job_def("push_only")
    return job.execute_in_process(
        instance=instance,
        tags=partition_range_tags(WEEK[0].isoformat(), WEEK[1].isoformat()),
        raise_on_error=False,
    )


def check_evaluation(instance, asset: str, name: str):
    key = dg.AssetCheckKey(dg.AssetKey(asset), name)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    return record.event.dagster_event.event_specific_data


def with_jira(pipeline, pm_sim):
    sim, settings, defs, instance = pipeline
    pm, url = pm_sim()
    defs = build_definitions(
        settings, {"dingtalk": defs.resources["dingtalk"], "pm": resource("jira", url)}
    )
    return sim, settings, defs, instance, pm


@pytest.mark.parametrize(
    ("kind", "asset", "check", "cause"),
    [
        ("time_result_renamed", "raw_attendance", "raw_attendance_valid", "normal"),
        ("duplicated_everywhere", "raw_attendance", "raw_attendance_valid", "duplicated"),
        ("empty_pm_user_list", "user_mapping", "mapping_valid", "no user accounts"),
    ],
)
def test_a_systemic_break_blocks_everything(
    pipeline, pm_sim, monkeypatch, kind, asset, check, cause
):
    sim, settings, defs, instance, pm = with_jira(pipeline, pm_sim)
    clean = run_sync(defs, *WEEK, instance=instance)
    assert clean.exit_code == EXIT_OK, clean.render()
    before, writes = published(settings), pm.calls()["writes"]
    assert before["effective_hours"] and before["payroll_monthly"]

    if kind == "empty_pm_user_list":
        monkeypatch.setattr(JiraWorklogStore, "list_users", lambda self: [])
    else:
        break_dingtalk(sim, kind)
    summary = run_sync(defs, *WEEK, instance=instance)
    assert summary.exit_code == EXIT_FAILED, summary.render()
    assert f"{asset}:{check}" in summary.failed_checks, summary.render()
    evaluation = check_evaluation(instance, asset, check)
    assert evaluation.passed is False and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert cause in str(evaluation.metadata["failures"].value), evaluation.metadata
    assert f"BLOCKED by {asset}:{check}" in summary.render()
    assert pm.calls()["writes"] == writes
    assert published(settings) == before


def test_a_later_separate_push_refuses_while_a_systemic_gate_fails(pipeline, pm_sim):
    sim, _, defs, instance, pm = with_jira(pipeline, pm_sim)
    # A clean dry run leaves a plan in the lake (and writes nothing).
    assert run_sync(defs, *WEEK, instance=instance, dry_run=True).success
    # DingTalk then changes its values for everyone: the gate fails, downstream is skipped.
    break_dingtalk(sim, "time_result_renamed")
    assert run_sync(defs, *WEEK, instance=instance).exit_code == EXIT_FAILED
    # Someone launches only the push, for the same days, in a separate run.
    result = push_only_run(defs, instance)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "raw_attendance:raw_attendance_valid" in failure.description
    assert pm.calls()["writes"] == 0 and pm.worklogs("jira") == []

    # Fixed at the source and re-run: the gates pass and the push goes through.
    sim.company.attendance = type(sim.company).attendance.__get__(sim.company)
    fixed = run_sync(defs, *WEEK, instance=instance)
    assert fixed.exit_code == EXIT_OK, fixed.render()
    assert len(pm.worklogs("jira")) == fixed.worklogs["created"] > 0


def test_a_clean_month_passes_every_gate(pipeline, pm_sim):
    _, _, defs, instance, _ = with_jira(pipeline, pm_sim)
    month = (date(2026, 10, 1), date(2026, 10, 31))
    summary = run_sync(defs, *month, instance=instance)
    assert summary.success and not summary.failed_checks, summary.render()
    evaluations = [
        e.dagster_event.event_specific_data
        for e in instance.all_logs(summary.run_id)
        if e.dagster_event
        and e.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    assert {e.check_name for e in evaluations} >= {
        "roster_valid", "raw_attendance_valid", "raw_approvals_valid", "inputs_complete",
        "hours_valid", "held_back_share", "mapping_valid", "plan_valid", "reconciled",
    }  # fmt: skip
    blocking = {"inputs_complete", "hours_valid", "held_back_share", "raw_attendance_valid"}
    assert all(e.passed for e in evaluations if e.check_name in blocking)
    assert all(e.passed for e in evaluations if e.severity == dg.AssetCheckSeverity.ERROR)
