"""Issue 14, item 4: the daily stages on the dagster-celery executor, every step a Celery task
on a worker process, with a real Redis broker on loopback (`scripts/redis up`, Debian's
redis-server). The tables equal those of the same days run in process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import pytest

from attendance_pipeline.dagster_api import partition_range_tags
from tests.conftest import _pipeline
from tests.service_scripts import REPO, start_service
from tests.test_targeted_refresh import sync

DAYS = ("2026-11-18", "2026-11-19")
TABLES = ("effective_hours", "held_back")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return start_service("redis", 10 * 60, ("REDIS_URL",))["REDIS_URL"]


def tables(settings: Any) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        found = {}
        for name in TABLES:
            frame = con.execute(f"SELECT * FROM {name}").df()
            moments = [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
            frame = frame.drop(columns=moments)
            keys = [c for c in ("userid", "work_date", "check") if c in frame.columns]
            found[name] = frame.sort_values(keys).reset_index(drop=True)
        return found


def start_worker(broker: str, folder: Path, log: Path) -> subprocess.Popen[bytes]:
    """A Celery worker for dagster-celery's app (queue `dagster`), as `dagster-celery worker
    start` runs it, with the broker in a `dagster_celery_config` module on its path."""
    config = folder / "celery_config"
    config.mkdir()
    (config / "dagster_celery_config.py").write_text(
        f"broker_url = {broker!r}\nresult_backend = {broker!r}\n", encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(config), str(REPO)])}
    celery = Path(sys.executable).with_name("celery")
    args = [str(celery), "-A", "dagster_celery.app", "worker", "--prefetch-multiplier=1"]
    args += ["-Q", "dagster", "-n", f"attendance-{os.getpid()}@%h", "--concurrency", "2"]
    args += ["--loglevel", "INFO"]
    handle = log.open("wb")
    return subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)


@pytest.mark.slow
def test_the_sync_job_runs_on_celery_workers_and_gives_the_in_process_tables(
    dingtalk_sim, tmp_path, monkeypatch, redis_url
):
    _, local, defs, instance = _pipeline(dingtalk_sim, tmp_path / "in-process", monkeypatch)
    assert sync(defs, instance, *(pd.Timestamp(d).date() for d in DAYS)).success
    expected = tables(local)

    _, settings, _, _ = _pipeline(dingtalk_sim, tmp_path / "celery", monkeypatch)
    from tests.celery_job import celery_sync

    log = tmp_path / "worker.log"
    worker = start_worker(redis_url, tmp_path, log)
    try:
        (tmp_path / "dagster_home").mkdir()
        with dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as persistent:
            started = time.monotonic()
            result = dg.execute_job(
                dg.reconstructable(celery_sync),
                instance=persistent,
                run_config={"execution": {"config": {"broker": redis_url, "backend": redis_url}}},
                tags=partition_range_tags(*DAYS),
                raise_on_error=False,
            )
            elapsed = time.monotonic() - started
            assert result.success, [
                e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"
            ]
            steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
            engine = [e.message or "" for e in result.all_events if e.is_engine_event]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    worker_log = log.read_text(encoding="utf-8", errors="replace")
    # Every step was a Celery task that a worker process ran.
    assert len(steps) >= 10, steps
    assert any("celery" in message.lower() for message in engine), engine[:5]
    assert worker_log.count("execute_plan") >= len(steps), worker_log[-2000:]
    assert "succeeded" in worker_log
    assert elapsed < 600
    got = tables(settings)
    for name in TABLES:
        pd.testing.assert_frame_equal(got[name], expected[name], check_dtype=False, obj=name)
    assert len(got["effective_hours"]) > 0
