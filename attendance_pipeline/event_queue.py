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
    run_key      TEXT,
    claimed_key  TEXT,
    claimed_at   TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS stream_events_pending ON stream_events (processed_at, received_at);
"""
# Columns added after the first release, for queues created before them.
LATER_COLUMNS = {
    "claimed_key": "TEXT",
    "claimed_at": "TEXT",
    "attempts": "INTEGER NOT NULL DEFAULT 0",
}
COLUMNS = "event_id, event_type, born_ms, data, deliveries, attempts"

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
    attempts: int = 0

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
            have = {row[1] for row in con.execute("PRAGMA table_info(stream_events)")}
            for name, kind in LATER_COLUMNS.items():
                if name not in have:
                    con.execute(f"ALTER TABLE stream_events ADD COLUMN {name} {kind}")

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
        """Unprocessed events, oldest first (claimed by a run or not)."""
        return self._select("processed_at IS NULL", [], limit)

    def unclaimed(self, limit: int = 1000) -> list[QueuedEvent]:
        """Unprocessed events no run has been asked to cover yet, oldest first."""
        return self._select("processed_at IS NULL AND claimed_key IS NULL", [], limit)

    def claims(self) -> dict[str, list[QueuedEvent]]:
        """Unprocessed events by the run key that claimed them."""
        with self._connect() as con:
            keys = [
                r[0]
                for r in con.execute(
                    "SELECT DISTINCT claimed_key FROM stream_events "
                    "WHERE processed_at IS NULL AND claimed_key IS NOT NULL ORDER BY 1"
                )
            ]
        where = "processed_at IS NULL AND claimed_key = ?"
        return {k: self._select(where, [k], None) for k in keys}

    def newest(self, event_types: Iterable[str]) -> int:
        """The queue position (SQLite rowid) of the newest stored event of these types; 0 if
        none. Positions only grow, so a sensor cursor can tell new events from seen ones."""
        types = list(event_types)
        marks = ", ".join("?" for _ in types)
        with self._connect() as con:
            row = con.execute(
                f"SELECT max(rowid) FROM stream_events WHERE event_type IN ({marks})", types
            ).fetchone()
        return int(row[0] or 0)

    def claim(self, event_ids: Iterable[str], run_key: str) -> None:
        """Record that the run `run_key` was requested to cover these events."""
        self._update(
            "SET claimed_key = ?, claimed_at = ? WHERE event_id = ? AND processed_at IS NULL",
            [(run_key, now_in_china().isoformat(), i) for i in event_ids],
        )

    def release(self, run_key: str) -> int:
        """The run `run_key` failed: its events wait for the next request (attempts + 1)."""
        with self._connect() as con:
            cur = con.execute(
                "UPDATE stream_events SET claimed_key = NULL, claimed_at = NULL, "
                "attempts = attempts + 1 WHERE claimed_key = ? AND processed_at IS NULL",
                [run_key],
            )
        return cur.rowcount

    def _select(self, where: str, params: list[Any], limit: int | None) -> list[QueuedEvent]:
        sql = f"SELECT {COLUMNS} FROM stream_events WHERE {where} ORDER BY received_at, event_id"
        if limit is not None:
            sql, params = sql + " LIMIT ?", [*params, limit]
        with self._connect() as con:
            rows = con.execute(sql, params).fetchall()
        return [QueuedEvent(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]

    def _update(self, clause: str, rows: list[tuple[Any, ...]]) -> int:
        if not rows:
            return 0
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            cur = con.executemany(f"UPDATE stream_events {clause}", rows)
            con.execute("COMMIT")
        return cur.rowcount

    def mark_processed(self, event_ids: Iterable[str], run_key: str) -> int:
        now = now_in_china().isoformat()
        return self._update(
            "SET processed_at = ?, run_key = ? WHERE event_id = ? AND processed_at IS NULL",
            [(now, run_key, i) for i in event_ids],
        )

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
