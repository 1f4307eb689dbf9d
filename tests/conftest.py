"""Shared pytest fixtures and helpers."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import pytest

from attendance_pipeline.definitions import build_definitions
from attendance_pipeline.resources.delivery import PMResource
from attendance_pipeline.resources.dingtalk import DingTalkResource
from attendance_pipeline.settings import load_settings
from attendance_pipeline.simulators.dingtalk import (
    DingTalkSimConfig,
    DingTalkSimulator,
    RunningSimulator,
)
from attendance_pipeline.simulators.pm import PMSimConfig, PMSimulator

pytest_plugins = ["tests.redmine_fixture", "tests.postgres_fixture", "tests.s3_fixture"]


@pytest.fixture
def dingtalk_sim() -> Iterator[Callable[..., tuple[DingTalkSimulator, str]]]:
    """Factory: dingtalk_sim(**config_overrides) -> (sim, url).

    Every server started is stopped at teardown.
    """
    running: list[RunningSimulator] = []

    def start(**overrides: Any) -> tuple[DingTalkSimulator, str]:
        base = DingTalkSimConfig(seed=7, employees=60, today=date(2026, 11, 20), latency_ms=0)
        sim = DingTalkSimulator(replace(base, **overrides))
        server = sim.serve(host="127.0.0.1", port=0)
        running.append(server)
        return sim, server.url

    yield start
    for server in running:
        server.stop()


SIM_TODAY = date(2026, 11, 20)
REPO_CONFIG = Path(__file__).resolve().parent.parent / "config"


@pytest.fixture
def pipeline(pipeline_for):
    """(sim, settings, defs, instance): the pipeline on a fresh simulator, data and config."""
    return pipeline_for()


@pytest.fixture
def pipeline_for(dingtalk_sim, tmp_path, monkeypatch):
    """Factory: pipeline_for(**simulator_overrides) -> (sim, settings, defs, instance)."""

    def build(**overrides: Any):
        return _pipeline(dingtalk_sim, tmp_path, monkeypatch, **overrides)

    return build


def _pipeline(dingtalk_sim, tmp_path, monkeypatch, **overrides: Any):
    sim, url = dingtalk_sim(today=SIM_TODAY, **overrides)
    monkeypatch.setenv("ATTENDANCE_DATA_DIR", str(tmp_path / "data"))
    shutil.copytree(REPO_CONFIG, tmp_path / "config")
    monkeypatch.setenv("ATTENDANCE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DINGTALK_BASE_URL", url)
    monkeypatch.setenv("DINGTALK_API_BASE_URL", url)
    monkeypatch.delenv("DINGTALK_APP_KEY", raising=False)
    monkeypatch.setenv("PM_SYSTEM", "none")  # PM tests bring their own PM system
    settings = load_settings(env_file=None)
    defs = build_definitions(
        settings,
        {
            "dingtalk": DingTalkResource(
                base_url=url,
                api_base_url=url,
                app_key="sim-key",
                app_secret="sim-secret",
                today=SIM_TODAY.isoformat(),
            )
        },
    )
    instance = dg.DagsterInstance.ephemeral()
    return sim, settings, defs, instance


def read_view(settings, view: str) -> pd.DataFrame:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(f"SELECT * FROM {view}").df()


def find_late_correction(sim) -> date:
    """A work date whose 补卡 approval arrives more than a day later (from ground truth)."""
    sim.set_today(SIM_TODAY)
    for approval in sim.truth_approvals(date(2026, 10, 1), date(2026, 11, 12)):
        if approval["bizType"] != 4:
            continue
        day = date.fromisoformat(approval["beginTime"][:10])
        sim.set_today(day + timedelta(days=1))
        early = sim.truth_attendance(day, day, [approval["userId"]])
        sim.set_today(day + timedelta(days=6))
        if early != sim.truth_attendance(day, day, [approval["userId"]]):
            return day
    raise AssertionError("the simulator generated no late 补卡 correction")


@pytest.fixture
def pm_sim():
    started = []

    def start(**overrides):
        config = {"seed": 7, "employees": 60, "today": SIM_TODAY, **overrides}
        sim = PMSimulator(PMSimConfig(**config))
        running = sim.serve(port=0)
        started.append((sim, running))
        return sim, running.url

    yield start
    for sim, running in started:
        running.stop()
        sim.close()


def resource(system: str, url: str) -> PMResource:
    return PMResource(
        system=system,
        base_url=url,
        user="sim-user",
        token="sim-token",
        workspace_id="100",
        user_passwords='{"*": "sim-pass-{account}"}',
    )
