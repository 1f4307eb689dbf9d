"""Held-back employee-days in DuckDB: write, audit, publish (plain SQL, no Dagster).

A gate's verdict is per employee-day. The days it fails are *held back* with a reason and a fix:
recorded in the warehouse table `held_back` and kept out of what the gate guards (the published
`effective_hours` and payroll for `blocks = 'all'`, the PM system for `blocks = 'delivery'`).
Everything else flows in the same run. The first run whose gate finds the day good again
releases it (`released_at`), and it flows like any other day.

One open row per (check, userid, work_date); a released row stays as history, and a day held
again later gets a new row. `"check"` is an SQL keyword: quote it in queries.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from attendance_pipeline.pm.plan import SKIPPED_COLUMNS
from attendance_pipeline.schemas import TS
from attendance_pipeline.warehouse import ensure_table, table_exists

HELD_BACK = pa.schema(
    [
        ("check", pa.string()),  # the gate, e.g. inputs_complete
        ("userid", pa.string()),
        ("work_date", pa.date32()),
        ("name", pa.string()),
        ("reason", pa.string()),
        ("fix", pa.string()),
        ("blocks", pa.string()),  # all | delivery
        ("first_seen", TS),
        ("last_seen", TS),
        ("released_at", TS),  # null while held
        ("run_id", pa.string()),  # the run that last saw it
    ]
)

KEY_SCHEMA = pa.schema([("userid", pa.string()), ("work_date", pa.date32())])
INCOMING = pa.schema(
    [
        ("userid", pa.string()),
        ("work_date", pa.date32()),
        ("name", pa.string()),
        ("reason", pa.string()),
        ("fix", pa.string()),
    ]
)


@dataclass(frozen=True)
class HoldChanges:
    """What one `record` call changed."""

    check: str
    new: pd.DataFrame  # rows held for the first time (userid, work_date, name, reason, fix)
    still_held: int
    released: int


def _keys(frame: pd.DataFrame) -> pa.Table:
    keys = frame[["userid", "work_date"]].drop_duplicates() if len(frame) else frame
    if not len(keys):
        return KEY_SCHEMA.empty_table()
    return pa.Table.from_pandas(
        pd.DataFrame(
            {
                "userid": keys["userid"].astype(str).to_numpy(),
                "work_date": pd.to_datetime(keys["work_date"]).dt.date.to_numpy(),
            }
        ),
        schema=KEY_SCHEMA,
        preserve_index=False,
    )


def _incoming(held: pd.DataFrame) -> pa.Table:
    if not len(held):
        return INCOMING.empty_table()
    frame = pd.DataFrame(
        {
            "userid": held["userid"].astype(str).to_numpy(),
            "work_date": pd.to_datetime(held["work_date"]).dt.date.to_numpy(),
            "name": [v if isinstance(v, str) else None for v in held["name"]],
            "reason": held["reason"].astype(str).to_numpy(),
            "fix": held["fix"].astype(str).to_numpy(),
        }
    ).drop_duplicates(["userid", "work_date"])
    return pa.Table.from_pandas(frame, schema=INCOMING, preserve_index=False)


def record(
    con: duckdb.DuckDBPyConnection,
    check: str,
    held: pd.DataFrame,
    start: date,
    end: date,
    *,
    blocks: str,
    now: datetime,
    run_id: str,
    checked_userids: Collection[str] | None = None,
) -> HoldChanges:
    """Record `check`'s verdict for start..end: hold what `held` lists, release what it no longer
    lists. `checked_userids` limits the release to the people the check looked at (a gate that
    checks a sample must not release the others). Call inside the caller's transaction."""
    ensure_table(con, "held_back", HELD_BACK)
    con.register("_held", _incoming(held))
    try:
        con.execute(
            """
            UPDATE held_back h SET last_seen = ?, reason = i.reason, fix = i.fix,
                   name = coalesce(i.name, h.name), run_id = ?
            FROM _held i
            WHERE h."check" = ? AND h.released_at IS NULL
              AND h.userid = i.userid AND h.work_date = i.work_date
            """,
            [now, run_id, check],
        )
        new = con.execute(
            """
            SELECT i.* FROM _held i
            WHERE NOT EXISTS (
                SELECT 1 FROM held_back h
                WHERE h."check" = ? AND h.released_at IS NULL
                  AND h.userid = i.userid AND h.work_date = i.work_date)
            ORDER BY i.work_date, i.userid
            """,
            [check],
        ).df()
        con.execute(
            """
            INSERT INTO held_back BY NAME
            SELECT ? AS "check", i.userid, i.work_date, i.name, i.reason, i.fix, ? AS blocks,
                   ?::TIMESTAMPTZ AS first_seen, ?::TIMESTAMPTZ AS last_seen,
                   NULL::TIMESTAMPTZ AS released_at, ? AS run_id
            FROM _held i
            WHERE NOT EXISTS (
                SELECT 1 FROM held_back h
                WHERE h."check" = ? AND h.released_at IS NULL
                  AND h.userid = i.userid AND h.work_date = i.work_date)
            """,
            [check, blocks, now, now, run_id, check],
        )
        people = sorted(set(checked_userids)) if checked_userids is not None else None
        released = con.execute(
            f"""
            UPDATE held_back h SET released_at = ?, run_id = ?
            WHERE h."check" = ? AND h.released_at IS NULL AND h.work_date BETWEEN ? AND ?
              {"AND list_contains(?, h.userid)" if people is not None else ""}
              AND NOT EXISTS (
                SELECT 1 FROM _held i WHERE i.userid = h.userid AND i.work_date = h.work_date)
            RETURNING 1
            """,
            [now, run_id, check, start, end, *([people] if people is not None else [])],
        ).fetchall()
    finally:
        con.unregister("_held")
    return HoldChanges(check, new, len(held) - len(new), len(released))


def open_holds(
    con: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    blocks: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Employee-days held back now in start..end (optionally only those that block `blocks`)."""
    columns = [f.name for f in HELD_BACK]
    if not table_exists(con, "held_back"):
        return pd.DataFrame(columns=columns)
    where = "released_at IS NULL AND work_date BETWEEN ? AND ?"
    params: list[object] = [start, end]
    if blocks is not None:
        where += " AND list_contains(?, blocks)"
        params.append(list(blocks))
    return con.execute(
        f'SELECT * FROM held_back WHERE {where} ORDER BY work_date, userid, "check"', params
    ).df()


def publish_effective_hours(
    con: duckdb.DuckDBPyConnection,
    rows: pa.Table,
    start: date,
    end: date,
    held: pd.DataFrame,
) -> int:
    """Replace start..end of the published `effective_hours` with `rows`, except the held-back
    employee-days: those keep what was published before (or stay absent). Returns rows written.
    Call inside the caller's transaction."""
    from attendance_pipeline.schemas import EFFECTIVE_HOURS

    ensure_table(con, "effective_hours", EFFECTIVE_HOURS)
    con.register("_keep", _keys(held))
    con.register("_incoming", rows)
    try:
        con.execute(
            """
            DELETE FROM effective_hours e WHERE e.work_date BETWEEN ? AND ?
              AND NOT EXISTS (
                SELECT 1 FROM _keep k WHERE k.userid = e.userid AND k.work_date = e.work_date)
            """,
            [start, end],
        )
        written = con.execute(
            """
            INSERT INTO effective_hours BY NAME
            SELECT * FROM _incoming i WHERE NOT EXISTS (
                SELECT 1 FROM _keep k WHERE k.userid = i.userid AND k.work_date = i.work_date)
            RETURNING 1
            """
        ).fetchall()
    finally:
        con.unregister("_keep")
        con.unregister("_incoming")
    return len(written)


def split_held(hours: pd.DataFrame, withheld: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the hours to plan, the held-back ones as the plan's skipped rows with their reason).

    `withheld`: `open_holds` rows; `hours`: effective-hours rows."""
    if withheld.empty or hours.empty:
        return hours, pd.DataFrame(columns=SKIPPED_COLUMNS)
    reasons: dict[tuple[str, Any], str] = {}
    for check, userid, day, reason in zip(
        withheld["check"],
        withheld["userid"],
        pd.to_datetime(withheld["work_date"]).dt.date,
        withheld["reason"],
        strict=True,
    ):
        text = f"held back by {check}: {reason}"
        key = (str(userid), day)
        reasons[key] = f"{reasons[key]}; {text}" if key in reasons else text
    keys = list(zip(hours["userid"], pd.to_datetime(hours["work_date"]).dt.date, strict=True))
    held = pd.Series([k in reasons for k in keys], index=hours.index)
    skipped = hours[held]
    rows = pd.DataFrame(
        {
            "work_date": skipped["work_date"].to_numpy(),
            "userid": skipped["userid"].to_numpy(),
            "name": skipped["name"].to_numpy(),
            "hours": skipped["effective_hours"].to_numpy(),
            "reason": [reasons[k] for k, h in zip(keys, held, strict=True) if h],
        },
        columns=SKIPPED_COLUMNS,
    )
    return hours[~held], rows
