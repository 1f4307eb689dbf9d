"""Wiring of held-back employee-days: one transaction publishes what passed and records what was
held back (`attendance_pipeline.holdback`), then newly held days are reported in the run log,
`sync_errors` and the DingTalk group robot."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date

import dagster as dg
import duckdb
import pandas as pd

from attendance_pipeline import holdback
from attendance_pipeline.assets.metadata import key_for
from attendance_pipeline.checks.gx import GateResult
from attendance_pipeline.china_time import now_in_china
from attendance_pipeline.dingtalk.robot import send_markdown
from attendance_pipeline.warehouse import append_sync_error


def publish_and_record(
    context: dg.AssetExecutionContext,
    con: duckdb.DuckDBPyConnection,
    results: Sequence[GateResult],
    start: date,
    end: date,
    *,
    publish: Callable[[duckdb.DuckDBPyConnection], int] | None = None,
    checked: Mapping[str, Collection[str]] | None = None,
    names: Mapping[str, str] | None = None,
) -> int:
    """In one transaction: `publish` (the rows that passed), then each gate's hold-backs and
    releases for start..end. Returns what `publish` wrote. `checked` names, per gate, the people
    it looked at when it checked a sample; `names` fills in names the gate's rows lack."""
    now = now_in_china()
    changes: list[holdback.HoldChanges] = []
    con.execute("BEGIN TRANSACTION")
    try:
        written = publish(con) if publish is not None else 0
        for result in results:
            changes.append(
                holdback.record(
                    con,
                    result.name,
                    _named(result.held, names or {}),
                    start,
                    end,
                    blocks=result.blocks,
                    now=now,
                    run_id=context.run_id,
                    checked_userids=(checked or {}).get(result.name),
                )
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    report(context, con, changes, f"{start}..{end}")
    new = sum(len(c.new) for c in changes)
    released = sum(c.released for c in changes)
    if new or released:
        context.log_event(
            dg.AssetMaterialization(
                key_for(context, "held_back"),
                metadata={
                    "new": new,
                    "released": released,
                    "still_held": sum(c.still_held for c in changes),
                    "checks": ", ".join(c.check for c in changes),
                },
            )
        )
    if new:
        context.log_event(
            dg.AssetMaterialization(
                key_for(context, "sync_errors"), metadata={"rows_appended": new}
            )
        )
    return written


def _named(held: pd.DataFrame, names: Mapping[str, str]) -> pd.DataFrame:
    if held.empty or not names:
        return held
    known = held["userid"].map(lambda u: names.get(str(u)))
    return held.assign(name=held["name"].where(held["name"].notna(), known))


def names_of(frame: pd.DataFrame) -> dict[str, str]:
    """userid → name from any frame with both columns."""
    people = frame.dropna(subset=["name"]).drop_duplicates("userid", keep="last")
    return dict(zip(people["userid"].astype(str), people["name"].astype(str), strict=True))


def report(
    context: dg.AssetExecutionContext,
    con: duckdb.DuckDBPyConnection,
    changes: Sequence[holdback.HoldChanges],
    window: str,
) -> None:
    """Newly held days → run log, `sync_errors` (one row each) and the group robot; releases →
    run log."""
    lines = []
    for change in changes:
        if change.released:
            context.log.info(f"{change.check}: released {change.released} employee-day(s)")
        for row in change.new.itertuples(index=False):
            day = f"{pd.Timestamp(row.work_date):%Y-%m-%d}"
            append_sync_error(
                con,
                "pipeline",
                change.check,
                day,
                str(row.userid),
                "HeldBack",
                f"{row.name or row.userid} {day}: {row.reason}. Fix: {row.fix}",
            )
        if len(change.new):
            people = change.new.drop_duplicates("userid")
            names = ", ".join(
                str(n or u) for n, u in zip(people["name"], people["userid"], strict=True)
            )
            context.log.warning(
                f"{change.check}: held back {len(change.new)} new employee-day(s) of "
                f"{len(people)} people ({names[:300]}); first: {change.new.iloc[0]['reason']}"
            )
            lines.append(
                f"- **{change.check}**: {len(change.new)} employee-day(s) of {len(people)} "
                f"people ({names[:200]}). {change.new.iloc[0]['reason']}. "
                f"Fix: {change.new.iloc[0]['fix']}"
            )
    webhook = os.environ.get("DINGTALK_ROBOT_WEBHOOK")
    if lines and webhook:
        try:
            send_markdown(
                webhook,
                os.environ.get("DINGTALK_ROBOT_SECRET"),
                "attendance_pipeline: days held back",
                f"### attendance_pipeline: days held back ({window})\n\n"
                + "\n".join(lines)
                + "\n\nThe rest of the run went on. Query `held_back` in the warehouse for all.",
            )
        except RuntimeError as exc:  # an alert must never fail the load
            context.log.warning(f"DingTalk robot alert not sent: {exc}")
