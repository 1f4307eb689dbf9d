"""One roster pull: departments, people, who punches, who left (plain Python, no Dagster).

DingTalk knows only today's roster, so a past day's snapshot is today's people minus those hired
after it, plus the leavers (from the HR API) up to their last work day, with the rest of a
leaver's row from the latest stored snapshot that still had them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
from upath import UPath

from attendance_pipeline.dingtalk.client import DingTalkClient
from attendance_pipeline.dingtalk.errors import DingTalkHrmPermissionError
from attendance_pipeline.dingtalk.records import roster_frame, stored_roster_users, with_leavers


@dataclass(frozen=True)
class RosterPull:
    """A window's roster snapshots and what the pull learnt on the way."""

    frame: pd.DataFrame  # ROSTER rows, one per person per snapshot date
    departments: dict[int, str]  # id → name, for reports
    leavers: int | str  # how many left (or why they are unavailable)
    last_work_dates: dict[str, date]


def pull_roster(
    client: DingTalkClient,
    snapshot_dates: list[date],
    pulled_at: datetime,
    stored_snapshots: UPath,
    warn: Any = None,
) -> RosterPull:
    """The roster for `snapshot_dates`; `warn(text)` hears why leavers are missing, if they are."""
    departments = client.list_departments()
    users = client.list_users([1, *(int(d["dept_id"]) for d in departments)])
    # Who punches: {userid: group id}; absent = in no attendance group. The member list needs an
    # operator: an admin (the boss is one in every DingTalk company).
    admins = [u for u in users if u.get("admin")] or [u for u in users if u.get("boss")] or users
    groups = client.attendance_group_map(str(admins[0]["userid"])) if admins else {}
    note: int | str
    try:
        leavers = client.leavers(since=min(snapshot_dates)) if snapshot_dates else []
    except DingTalkHrmPermissionError as exc:
        if warn is not None:
            warn(f"Leavers unavailable, syncing without them: {exc}")
        leavers, note = [], f"unavailable: {exc}"
    else:
        note = len(leavers)
    stored = stored_roster_users(stored_snapshots, {lv["userid"] for lv in leavers})
    users, groups, last_work_dates = with_leavers(users, groups, leavers, stored)
    frame = roster_frame(users, snapshot_dates, pulled_at, departments, groups, last_work_dates)
    names = {int(d["dept_id"]): str(d.get("name") or d["dept_id"]) for d in departments}
    return RosterPull(frame, names, note, dict(last_work_dates))
