"""The monthly ledger of metered DingTalk calls: the ingest steps' own `metered_calls` metadata
in the Dagster instance (every run and process on it sees the others'), shown per run, warned
on."""

from datetime import date

import dagster as dg

from attendance_pipeline.sync import run_sync


def month_total(instance, run_id: str) -> int:
    return max(
        int(event.asset_materialization.metadata["metered_calls_this_month"].value)
        for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        if event.asset_materialization.asset_key.path[0] in ("raw_attendance", "raw_approvals")
    )


def test_runs_add_up_in_the_months_ledger(pipeline):
    sim, _, defs, instance = pipeline
    first = run_sync(defs, date(2026, 11, 2), date(2026, 11, 6), instance=instance)
    second = run_sync(defs, date(2026, 11, 9), date(2026, 11, 13), instance=instance)
    assert first.success and second.success
    assert month_total(instance, first.run_id) == first.metered_calls > 0
    assert month_total(instance, second.run_id) == first.metered_calls + second.metered_calls
    assert month_total(instance, second.run_id) == sim.calls()["metered_this_month"]


def test_a_sync_reports_the_months_use_and_warns_near_the_quota(pipeline, monkeypatch):
    sim, _, defs, instance = pipeline
    monkeypatch.setenv("DINGTALK_MONTHLY_QUOTA", "10")
    summary = run_sync(defs, date(2026, 11, 9), date(2026, 11, 13), instance=instance)
    assert summary.success
    materializations = [
        e.dagster_event.event_specific_data.materialization
        for e in instance.all_logs(summary.run_id)
        if e.dagster_event
        and e.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    ]
    approvals = next(m for m in materializations if m.asset_key.path == ["raw_approvals"])
    attendance = next(m for m in materializations if m.asset_key.path == ["raw_attendance"])
    month_total = max(
        approvals.metadata["metered_calls_this_month"].value,
        attendance.metadata["metered_calls_this_month"].value,
    )
    assert month_total == sim.calls()["metered_this_month"] == summary.metered_calls
    warnings = [
        e.user_message
        for e in instance.all_logs(summary.run_id)
        if e.level >= 30 and "DingTalk quota" in (e.user_message or "")
    ]
    assert warnings and "of 10 metered calls" in warnings[0]
