"""A per-month count of metered DingTalk calls, shared by every run on this data directory.

DingTalk does not report quota use, so the pipeline keeps its own ledger (a small JSON file,
updated under an exclusive file lock) and warns when a month approaches the quota (free edition:
5,000 metered calls per month for all of a company's internal apps).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

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


def add_metered(path: Path, month: str, calls: int) -> int:
    """Add `calls` to `month` in the ledger at `path`; returns the month's total."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        text = handle.read()
        ledger: dict[str, int] = json.loads(text) if text.strip() else {}
        ledger[month] = ledger.get(month, 0) + calls
        handle.seek(0)
        handle.truncate()
        json.dump(ledger, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
        return ledger[month]
