"""The worklog ledger in DuckDB: what we pushed, per key, and the days held back from the push
(plain SQL and pandas, no Dagster)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import pandas as pd

from attendance_pipeline.pm.push import Outcome
from attendance_pipeline.schemas import PUSHED_WORKLOGS, empty_frame, to_table
from attendance_pipeline.vocabulary import PushAction
from attendance_pipeline.warehouse import ensure_table

WRITTEN = (PushAction.CREATED, PushAction.UPDATED, PushAction.UNCHANGED, PushAction.DELETED)


@dataclass(frozen=True)
class LedgerView:
    """What the ledger says about a window."""

    last_pushed: dict[str, int]  # seconds we last wrote per key (deleted keys left out)
    pm_users: set[str]  # accounts we wrote to
    issues: set[str]
    accounts: dict[str, set[str]]  # userid → the PM accounts we wrote their worklogs to


def read_ledger(con: duckdb.DuckDBPyConnection, system: str, start: date, end: date) -> LedgerView:
    """The ledger's view of start..end for `system` (real pushes only, not dry runs)."""
    ensure_table(con, "worklog_ledger", PUSHED_WORKLOGS)
    marks = ", ".join(f"'{a.value}'" for a in WRITTEN)
    latest = con.execute(
        f"""
        SELECT worklog_key, action, seconds FROM (
            SELECT *, row_number() OVER (PARTITION BY worklog_key ORDER BY pushed_at DESC) AS n
            FROM worklog_ledger
            WHERE pm_system = ? AND work_date BETWEEN ? AND ? AND NOT dry_run
              AND action IN ({marks})
        ) WHERE n = 1
        """,
        [system, start, end],
    ).fetchall()
    targets = con.execute(
        "SELECT DISTINCT userid, pm_user, issue FROM worklog_ledger "
        "WHERE pm_system = ? AND work_date BETWEEN ? AND ?",
        [system, start, end],
    ).fetchall()
    accounts: dict[str, set[str]] = {}
    for userid, pm_user, _ in targets:
        if userid and pm_user:
            accounts.setdefault(str(userid), set()).add(str(pm_user))
    return LedgerView(
        last_pushed={k: s for k, action, s in latest if action != PushAction.DELETED},
        pm_users={r[1] for r in targets if r[1]},
        issues={r[2] for r in targets if r[2]},
        accounts=accounts,
    )


def held_days(
    withheld: pd.DataFrame, mapping: pd.DataFrame, pushed_accounts: dict[str, set[str]]
) -> tuple[set[tuple[str, date]], set[tuple[str, date]]]:
    """(held-back (userid, work_date), the same days as (pm_user, work_date)).

    `withheld`: open `held_back` rows; a person's PM account comes from the day's mapping or, for
    someone no longer mapped, from what the ledger says we pushed for them."""
    held = {
        (str(u), d.date() if hasattr(d, "date") else d)
        for u, d in zip(withheld["userid"], pd.to_datetime(withheld["work_date"]), strict=True)
    }
    accounts = {userid: set(pm_users) for userid, pm_users in pushed_accounts.items()}
    for userid, pm_user in zip(mapping["userid"], mapping["pm_user"], strict=True):
        if isinstance(pm_user, str) and pm_user:
            accounts.setdefault(str(userid), set()).add(pm_user)
    frozen = {(pm_user, day) for userid, day in held for pm_user in accounts.get(userid, ())}
    return held, frozen


def outcome_frame(
    outcomes: list[Outcome], system: str, dry_run: bool, pushed_at: datetime
) -> pd.DataFrame:
    """One ledger row per outcome."""
    rows = [
        {
            "worklog_key": o.key,
            "userid": o.userid,
            "work_date": o.work_date,
            "pm_system": system,
            "pm_user": o.pm_user,
            "issue": o.issue,
            "seconds": o.seconds,
            "remote_id": o.remote_id,
            "action": o.action,
            "pushed_at": pushed_at,
            "remote_seconds": o.remote_seconds,
            "dry_run": dry_run,
            "message": o.message,
        }
        for o in outcomes
    ]
    return (
        pd.DataFrame(rows, columns=PUSHED_WORKLOGS.names) if rows else empty_frame(PUSHED_WORKLOGS)
    )


def append_outcomes(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> int:
    """Append a push's outcomes to `worklog_ledger` (by column name); returns rows written."""
    ensure_table(con, "worklog_ledger", PUSHED_WORKLOGS)
    con.register("_outcomes", to_table(frame, PUSHED_WORKLOGS, "worklog_ledger"))
    try:
        con.execute("INSERT INTO worklog_ledger BY NAME SELECT * FROM _outcomes")
    finally:
        con.unregister("_outcomes")
    return len(frame)
