"""Targeted refreshes: a run that re-pulls a few people's days and leaves everyone else's alone.

The Stream sensor (`refresh.py`) starts `sync` runs tagged with the people an event is about
(`attendance/users`, a JSON list of userids). The ingest assets then pull only those people from
DingTalk and merge them into the stored partitions of the window: every other person's rows are
written back exactly as they were. The roster is read from the stored snapshots (it costs no
DingTalk call and nobody's snapshot changes), unless the run is a roster refresh
(`attendance/roster: pull`, after a hire, a leaver or a department change) or a day of the
window has no stored snapshot yet. Everything downstream recomputes from the stored partitions,
and the diff-based push writes only the worklogs that changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date

import pandas as pd
import pyarrow.parquet as pq
from upath import UPath

from attendance_pipeline.china_time import days

USERS_TAG = "attendance/users"
ROSTER_TAG = "attendance/roster"  # "pull": re-pull the roster; else the stored snapshots
TRIGGER_TAG = "attendance/trigger"


class TargetedRunError(ValueError):
    """A run tag that does not say which users to refresh."""


def users_tag(userids: Iterable[str]) -> dict[str, str]:
    return {USERS_TAG: json.dumps(sorted(set(userids)), ensure_ascii=False)}


def tagged_users(tags: Mapping[str, str]) -> list[str] | None:
    """The users a targeted run refreshes; None for an ordinary (whole company) run."""
    raw = tags.get(USERS_TAG)
    if raw is None:
        return None
    try:
        users = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TargetedRunError(f"run tag {USERS_TAG}: not JSON ({exc.msg})") from exc
    if not isinstance(users, list) or not all(isinstance(u, str) and u for u in users):
        raise TargetedRunError(f"run tag {USERS_TAG}: expected a JSON list of userids")
    return sorted(set(users))


def stored_partitions(lake_dir: str, asset: str, start: date, end: date) -> pd.DataFrame | None:
    """The stored partitions of `asset` for start..end as one frame; None when a day of the
    window was never written (a targeted merge needs every day's rows of everyone else)."""
    folder = UPath(lake_dir) / asset
    frames = []
    for day in days(start, end):
        path = folder / f"{day.isoformat()}.parquet"
        if not path.exists():
            return None
        with path.open("rb") as handle:
            frames.append(pq.read_table(handle).to_pandas())
    non_empty = [f for f in frames if len(f)]
    if not non_empty:
        return frames[0].iloc[0:0] if frames else None
    return pd.concat(non_empty, ignore_index=True)


def latest_snapshot(
    lake_dir: str, asset: str, on_or_before: date
) -> tuple[date, pd.DataFrame] | None:
    """The latest stored partition of `asset` on or before the day, with its day; None if none."""
    folder = UPath(lake_dir) / asset
    if not folder.exists():
        return None
    stored = []
    for path in folder.iterdir():
        try:
            day = date.fromisoformat(path.name.removesuffix(".parquet"))
        except ValueError:
            continue
        if path.name.endswith(".parquet") and day <= on_or_before:
            stored.append((day, path))
    if not stored:
        return None
    day, path = max(stored)
    with path.open("rb") as handle:
        return day, pq.read_table(handle).to_pandas()


def merge_users(stored: pd.DataFrame, fresh: pd.DataFrame, users: Iterable[str]) -> pd.DataFrame:
    """`stored` with the rows of `users` replaced by `fresh` (which holds only those users)."""
    wanted = set(users)
    stray = set(fresh["userid"]) - wanted
    if stray:
        raise TargetedRunError(f"the refresh pulled rows of users it did not ask for: {stray}")
    kept = stored[~stored["userid"].isin(wanted)]
    parts = [p for p in (kept, fresh) if len(p)]
    if not parts:
        return stored.iloc[0:0]
    return pd.concat(parts, ignore_index=True)
