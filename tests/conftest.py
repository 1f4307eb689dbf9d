"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from attendance_pipeline.simulators.dingtalk import (
    DingTalkSimConfig,
    DingTalkSimulator,
    RunningSimulator,
)


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
