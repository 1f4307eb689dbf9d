"""The production instance (deploy/production/dagster.yaml) on a real PostgreSQL server: a sync
records its runs, materialisations and gate results there, the push reads the gates back from it
(and refuses while one fails), the pools hold one step at a time, and the password stays in the
environment only."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from attendance_pipeline.checks.specs import GATES, failing_gates
from attendance_pipeline.dagster_api import partition_range_tags
from attendance_pipeline.definitions import build_definitions
from attendance_pipeline.settings import load_settings
from attendance_pipeline.sync import SyncSummary, run_sync
from tests.conftest import resource
from tests.postgres_fixture import PostgresServer
from tests.test_blocking import break_dingtalk

pytestmark = pytest.mark.postgres

PRODUCTION_YAML = Path(__file__).resolve().parent.parent / "deploy" / "production" / "dagster.yaml"
SYNC_ASSETS = {
    key.to_user_string()
    for key in build_definitions(load_settings(env_file=None))
    .resolve_job_def("sync")
    .asset_layer.executable_asset_keys
}
# Three workdays (Monday to Wednesday) keep each sync short: with dagster-postgres every event is
# written over a new connection (NullPool), so run time grows with the partitions.
DAYS = (date(2026, 11, 9), date(2026, 11, 11))
DAY_KEYS = {"2026-11-09", "2026-11-10", "2026-11-11"}


@pytest.fixture
def production_instance(
    postgres_database: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    """`DAGSTER_HOME` with a copy of the production dagster.yaml, on this test's own database."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PRODUCTION_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for name, value in postgres_database.env().items():
        monkeypatch.setenv(name, value)
    instance = dg.DagsterInstance.get()
    yield instance
    instance.dispose()


def with_jira(pipeline, pm_url: str) -> dg.Definitions:
    settings, defs = pipeline[1], pipeline[2]
    return build_definitions(
        settings, {"dingtalk": defs.resources["dingtalk"], "pm": resource("jira", pm_url)}
    )


def push_only_run(
    defs: dg.Definitions, instance: dg.DagsterInstance, start: date, end: date
) -> dg.ExecuteInProcessResult:
    """Materialise only `pushed_worklogs` for start..end, as a separate run from the UI would."""
    push_only = dg.define_asset_job("push_only", selection=["pushed_worklogs"])
    job = dg.Definitions.merge(defs, dg.Definitions(jobs=[push_only])).resolve_job_def("push_only")
    return job.execute_in_process(
        instance=instance,
        tags=partition_range_tags(start.isoformat(), end.isoformat()),
        raise_on_error=False,
    )


def asset_name(stored_key: str) -> str:
    return dg.AssetKey.from_db_string(stored_key).to_user_string()  # type: ignore[union-attr]


WAREHOUSE_TABLES = ("held_back", "worklog_ledger", "sync_errors")


def materialised_partitions(db: PostgresServer, run_id: str) -> dict[str, set[str]]:
    """asset -> partitions materialised by the run, read from PostgreSQL's event_logs."""
    found: dict[str, set[str]] = {}
    for key, partition in db.query(
        "SELECT asset_key, partition FROM event_logs "
        "WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
        (run_id,),
    ):
        found.setdefault(asset_name(key), set()).add(partition)
    return found


def check_statuses(db: PostgresServer, run_id: str) -> dict[str, str]:
    """'asset:check' -> execution status of the run's checks, from asset_check_executions."""
    return {
        f"{asset_name(key)}:{name}": status
        for key, name, status in db.query(
            "SELECT asset_key, check_name, execution_status FROM asset_check_executions "
            "WHERE run_id = %s",
            (run_id,),
        )
    }


def test_a_sync_is_recorded_in_postgres_and_the_push_reads_its_gates_from_there(
    pipeline, pm_sim, production_instance, postgres_database
):
    instance, db = production_instance, postgres_database
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    pm, url = pm_sim()
    defs = with_jira(pipeline, url)

    summary = run_sync(defs, *DAYS, instance=instance)
    assert summary.success, summary.render()
    # The push asked the instance (PostgreSQL) for the gates, found them passing, and wrote.
    assert summary.worklogs["created"] == len(pm.worklogs("jira")) > 0
    assert failing_gates(instance) == []

    runs = dict(db.query("SELECT run_id, status FROM runs"))
    jobs = dict(db.query("SELECT run_id, pipeline_name FROM runs"))
    assert runs[summary.run_id] == "SUCCESS" and jobs[summary.run_id] == "sync"
    assert sorted(jobs.values()) == ["payroll", "sync"]  # the days lie in one payroll month
    assert set(runs.values()) == {"SUCCESS"}

    partitions = materialised_partitions(db, summary.run_id)
    # The warehouse tables a step reports writing are declared, unpartitioned assets.
    tables = {name: partitions.pop(name) for name in WAREHOUSE_TABLES if name in partitions}
    assert tables == {"worklog_ledger": {None}}
    assert set(partitions) == SYNC_ASSETS and len(SYNC_ASSETS) == 10
    for asset in SYNC_ASSETS:
        assert partitions[asset] == DAY_KEYS, asset
    payroll_run = next(run for run, job in jobs.items() if job == "payroll")
    # November is still open at the simulator's clock: DingTalk's report is not pulled yet, and
    # the reconciliation says so; both are recorded for the month.
    assert materialised_partitions(db, payroll_run) == {
        name: {"2026-11-01"}
        for name in ("payroll_monthly", "dingtalk_report", "dingtalk_report_diff")
    }

    checks = check_statuses(db, summary.run_id)
    blocking = {f"{a}:{n}" for a, n, is_blocking, _ in GATES if is_blocking}
    # The sync run's gates; the monthly report check runs in the payroll run.
    assert {f"{a}:{n}" for a, n, _, _ in GATES if a != "dingtalk_report_diff"} <= set(checks)
    assert "dingtalk_report_diff:dingtalk_report_agrees" in check_statuses(db, payroll_run)
    assert {checks[gate] for gate in blocking} == {"SUCCEEDED"}, checks

    # Again for the same days: recorded as a second run; nothing new to write.
    writes = pm.calls()["writes"]
    again = run_sync(defs, *DAYS, instance=instance)
    assert again.success, again.render()
    assert again.worklogs["created"] == again.worklogs["updated"] == 0
    assert pm.calls()["writes"] == writes
    assert db.query("SELECT status, count(*) FROM runs GROUP BY status") == [("SUCCESS", 4)]
    assert materialised_partitions(db, again.run_id)["pushed_worklogs"] == DAY_KEYS


WORKDAY = date(2026, 11, 10)


def test_a_separate_push_refuses_while_postgres_holds_a_failed_gate(
    pipeline, pm_sim, production_instance, postgres_database
):
    instance, db = production_instance, postgres_database
    sim = pipeline[0]
    pm, url = pm_sim()
    defs = with_jira(pipeline, url)
    # A clean dry run leaves a plan in the lake (and writes nothing); then DingTalk changes its
    # values for everyone that day (a systemic break) and the sync's gate fails.
    day = WORKDAY
    assert run_sync(defs, day, day, instance=instance, dry_run=True).success
    break_dingtalk(sim, "time_result_renamed")

    failed = run_sync(defs, day, day, instance=instance)
    assert not failed.success
    assert check_statuses(db, failed.run_id)["raw_attendance:raw_attendance_valid"] == "FAILED"
    # The gate lookup reads PostgreSQL: the failed gate, and the gates that run skipped.
    problems = failing_gates(instance)
    assert f"raw_attendance:raw_attendance_valid failed in run {failed.run_id}" in problems
    assert all(problem.endswith(f"failed in run {failed.run_id}") for problem in problems)

    # Someone launches only the push: it reads the failed gate from PostgreSQL and refuses.
    push = push_only_run(defs, instance, day, day)
    assert not push.success
    failure = push.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert failure is not None and "raw_attendance:raw_attendance_valid" in str(failure.description)
    assert pm.calls()["writes"] == 0 and pm.worklogs("jira") == []
    assert dict(db.query("SELECT run_id, status FROM runs"))[push.run_id] == "FAILURE"


def test_pools_allow_one_step_at_a_time_and_the_password_stays_in_the_environment(
    pipeline, production_instance, postgres_database
):
    instance, db = production_instance, postgres_database
    defs = pipeline[2]
    config = instance.get_concurrency_config()
    assert config.pool_config.default_pool_limit == 1
    assert config.pool_config.pool_granularity is not None
    assert config.pool_config.pool_granularity.value == "op"
    queue = config.run_queue_config
    assert queue is not None and queue.max_concurrent_runs == 4
    assert {limit["key"] for limit in queue.tag_concurrency_limits} == {
        "attendance/trigger",
        "dagster/backfill",
    }

    # Another run holds the only `dingtalk` slot: the sync's ingestion steps wait for it.
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default("dingtalk")
    holder = str(uuid.uuid4())
    assert storage.claim_concurrency_slot("dingtalk", holder, "someone_elses_pull").is_claimed
    day = date(2026, 11, 10)
    result: list[SyncSummary] = []
    sync = threading.Thread(
        target=lambda: result.append(run_sync(defs, day, day, instance=instance))
    )
    sync.start()
    try:
        deadline = time.monotonic() + 30
        while storage.get_concurrency_info("dingtalk").pending_step_count == 0:
            assert time.monotonic() < deadline, "the sync never asked for a dingtalk slot"
            assert sync.is_alive(), "the sync finished although the only dingtalk slot was taken"
            time.sleep(0.1)
        time.sleep(1)
        assert sync.is_alive() and not result
        info = storage.get_concurrency_info("dingtalk")
        assert (info.slot_count, info.active_slot_count) == (1, 1)
        assert info.active_run_ids == {holder}
    finally:
        storage.free_concurrency_slots_for_run(holder)
        sync.join(timeout=120)
    assert not sync.is_alive() and result and result[0].success, result
    # Both pools were created from the default (limit 1), as the production yaml says.
    limits = {pool.name: (pool.limit, pool.from_default) for pool in storage.get_pool_limits()}
    assert limits == {"dingtalk": (1, True), "warehouse": (1, True)}
    assert db.query('SELECT concurrency_key, "limit" FROM concurrency_limits ORDER BY 1') == [
        ("dingtalk", 1),
        ("warehouse", 1),
    ]

    # The password is nowhere but in the environment: not in the yaml, not in DAGSTER_HOME, not in
    # any table Dagster wrote (runs, event logs, snapshots, check results, ...).
    password = db.password
    home = Path(instance.root_directory)
    assert (home / "dagster.yaml").read_text() == PRODUCTION_YAML.read_text()
    for path in home.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    assert password not in str(instance.get_ref())
    tables = [t for (t,) in db.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    assert {"runs", "event_logs", "asset_check_executions", "snapshots"} <= set(tables)
    for table in tables:
        hits = db.query(
            f'SELECT count(*) FROM "{table}" AS t WHERE strpos(t::text, %s) > 0', (password,)
        )
        assert hits == [(0,)], table
    for (body,) in db.query("SELECT snapshot_body FROM snapshots"):  # zlib-compressed JSON
        assert password.encode() not in zlib.decompress(bytes(body))
    assert db.query("SELECT count(*) FROM event_logs")[0][0] > 50
