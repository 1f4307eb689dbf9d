"""The durable queue of DingTalk Stream events (SQLite, `data/events.sqlite`; no Dagster).

`attendance-pipeline listen` stores each event here, committed to disk, *before* it acknowledges
it, so a crash between receiving and acknowledging makes DingTalk deliver it again and the
`eventId` primary key makes the second copy a no-op: every event is stored exactly once. The
refresh sensor reads the unprocessed events and marks them processed with the run that covered
them. SQLite (WAL, synchronous FULL) rather than DuckDB: the listener is a second long-running
process beside Dagster's writers, and DuckDB allows one writer process per file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from attendance_pipeline.china_time import SHANGHAI, now_in_china

SCHEMA = """
CREATE TABLE IF NOT EXISTS stream_events (
    event_id     TEXT PRIMARY KEY,
    event_type   TEXT NOT NULL,
    born_ms      INTEGER,
    received_at  TEXT NOT NULL,
    deliveries   INTEGER NOT NULL DEFAULT 1,
    data         TEXT NOT NULL,
    processed_at TEXT,
    run_key      TEXT
);
CREATE INDEX IF NOT EXISTS stream_events_pending ON stream_events (processed_at, received_at);
"""

# What an approval event may change: its days are not in the event, so the person's recent and
# coming days are refreshed (corrections reach back a week; plans look two weeks ahead).
APPROVAL_DAYS_BACK, APPROVAL_DAYS_AHEAD = 7, 14
ROSTER_EVENTS = ("user_add_org", "user_leave_org", "user_modify_org")


@dataclass(frozen=True)
class QueuedEvent:
    event_id: str
    event_type: str
    born_ms: int | None
    data: dict[str, Any]
    deliveries: int

    def born_day(self) -> date:
        if self.born_ms is None:
            return now_in_china().date()
        return datetime.fromtimestamp(self.born_ms / 1000, tz=SHANGHAI).date()

    def users(self) -> list[str]:
        """The DingTalk userids the event is about."""
        data = self.data
        if self.event_type == "attendance_check_record":
            rows = data.get("dataList") or data.get("DataList") or []
            return sorted({str(r["userId"]) for r in rows if isinstance(r, dict) and "userId" in r})
        if self.event_type.startswith("bpms_"):
            staff = data.get("staffId")
            return [str(staff)] if staff else []
        ids = data.get("UserId") or data.get("userId") or []
        return sorted({str(i) for i in (ids if isinstance(ids, list) else [ids])})

    def days(self) -> list[date]:
        """The work days the event can change (empty for roster events)."""
        if self.event_type in ROSTER_EVENTS:
            return []
        if self.event_type == "attendance_check_record":
            found = set()
            for row in self.data.get("dataList") or self.data.get("DataList") or []:
                day = _day_of(row.get("checkTime")) if isinstance(row, dict) else None
                if day is not None:
                    found.add(day)
            if found:
                return sorted(found)
        born = self.born_day()
        return [
            born + timedelta(days=i) for i in range(-APPROVAL_DAYS_BACK, APPROVAL_DAYS_AHEAD + 1)
        ]


def _day_of(value: Any) -> date | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=SHANGHAI).date()
    if isinstance(value, str):
        if value.isdigit():
            return _day_of(int(value))
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


class EventQueue:
    """One SQLite file; every method commits before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            yield con
        finally:
            con.close()

    def store(
        self, event_id: str, event_type: str, born_ms: int | None, data: dict[str, Any]
    ) -> bool:
        """Store an event durably; False when its eventId was stored before (a redelivery)."""
        if not event_id:
            raise ValueError("a Stream event without an eventId cannot be deduplicated")
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            cur = con.execute(
                "INSERT OR IGNORE INTO stream_events "
                "(event_id, event_type, born_ms, received_at, data) VALUES (?, ?, ?, ?, ?)",
                [
                    event_id,
                    event_type,
                    born_ms,
                    now_in_china().isoformat(),
                    json.dumps(data, ensure_ascii=False, sort_keys=True),
                ],
            )
            new = cur.rowcount == 1
            if not new:
                con.execute(
                    "UPDATE stream_events SET deliveries = deliveries + 1 WHERE event_id = ?",
                    [event_id],
                )
            con.execute("COMMIT")
        return new

    def pending(self, limit: int = 1000) -> list[QueuedEvent]:
        """Unprocessed events, oldest first."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT event_id, event_type, born_ms, data, deliveries FROM stream_events "
                "WHERE processed_at IS NULL ORDER BY received_at, event_id LIMIT ?",
                [limit],
            ).fetchall()
        return [QueuedEvent(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows]

    def mark_processed(self, event_ids: Iterable[str], run_key: str) -> int:
        ids = list(event_ids)
        if not ids:
            return 0
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            cur = con.executemany(
                "UPDATE stream_events SET processed_at = ?, run_key = ? "
                "WHERE event_id = ? AND processed_at IS NULL",
                [(now_in_china().isoformat(), run_key, i) for i in ids],
            )
            con.execute("COMMIT")
        return cur.rowcount

    def counts(self) -> dict[str, int]:
        with self._connect() as con:
            total, pending, deliveries = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE processed_at IS NULL), "
                "coalesce(sum(deliveries), 0) FROM stream_events"
            ).fetchone()
        return {"events": total, "pending": pending, "deliveries": deliveries}

    def all(self) -> list[dict[str, Any]]:
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute("SELECT * FROM stream_events ORDER BY rowid")]
