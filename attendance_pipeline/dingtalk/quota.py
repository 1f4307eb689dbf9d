"""The monthly quota of metered DingTalk calls.

DingTalk does not report quota use, so the pipeline counts its own: every ingest step records
its `metered_calls` as asset metadata, the month's total is read back from the Dagster instance
(`assets/metadata.metered_calls_since`), and a warning comes past `WARN_SHARE` of the quota (free
edition: 5,000 metered calls per month for all of a company's internal apps).
"""

from __future__ import annotations

import os

DEFAULT_MONTHLY_QUOTA = 5000
WARN_SHARE = 0.8


def monthly_quota() -> int:
    """`DINGTALK_MONTHLY_QUOTA` (default 5,000, the free edition's)."""
    text = os.environ.get("DINGTALK_MONTHLY_QUOTA", str(DEFAULT_MONTHLY_QUOTA))
    try:
        return max(1, int(text))
    except ValueError:
        raise ValueError(
            f"environment variable DINGTALK_MONTHLY_QUOTA={text!r} is not a whole number"
        ) from None
