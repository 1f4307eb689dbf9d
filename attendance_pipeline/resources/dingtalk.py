"""The DingTalk client as a Dagster resource; credentials arrive through `EnvVar`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import dagster as dg

from attendance_pipeline.china_time import today_in_china
from attendance_pipeline.dingtalk import DingTalkClient, DingTalkOptions


class DingTalkResource(dg.ConfigurableResource):
    """Where DingTalk is and how hard to push it. Secrets are never logged or shown."""

    base_url: str
    api_base_url: str
    app_key: str
    app_secret: str
    qps: int = 20
    workers: int = 4
    max_attempts: int = 8
    max_retry_seconds: float = 180.0
    backoff_initial_s: float = 0.5
    ban_pause_s: float | None = None
    horizon_days: int = 180
    today: str | None = None  # YYYY-MM-DD; for the horizon check against a simulator's clock
    credentials_hint: str = "DINGTALK_APP_KEY and DINGTALK_APP_SECRET"  # named when rejected

    def clock_today(self) -> date:
        """DingTalk's today: the configured clock (a simulator's) or today in China."""
        return date.fromisoformat(self.today) if self.today else today_in_china()

    def client(self, progress: Callable[[str, int, int], None] | None = None) -> DingTalkClient:
        """A fresh client for one run (its counters measure that run)."""
        return DingTalkClient(
            DingTalkOptions(
                base_url=self.base_url,
                api_base_url=self.api_base_url,
                app_key=self.app_key,
                app_secret=self.app_secret,
                qps=self.qps,
                workers=self.workers,
                max_attempts=self.max_attempts,
                max_retry_seconds=self.max_retry_seconds,
                backoff_initial_s=self.backoff_initial_s,
                ban_pause_s=self.ban_pause_s,
                horizon_days=self.horizon_days,
                today=date.fromisoformat(self.today) if self.today else None,
                credentials_hint=self.credentials_hint,
            ),
            progress=progress,
        )
