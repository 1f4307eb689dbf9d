"""Reconciliation: what the PM system holds against the plan, key by key (no Dagster).

It reads the same diff as the pusher (`push.decide`), so "reconciled" means exactly "the pusher
would write nothing": create → missing, update → different, delete → extra (no longer planned,
or a duplicate), conflict → conflict, unchanged → ok.
"""

from __future__ import annotations

import pandas as pd

from attendance_pipeline.pm.base import PlannedWorklog, RemoteWorklog
from attendance_pipeline.pm.push import decide
from attendance_pipeline.schemas import RECONCILIATION, empty_frame
from attendance_pipeline.vocabulary import ReconciliationStatus

STATUS_OF_ACTION = {
    "create": ReconciliationStatus.MISSING,
    "update": ReconciliationStatus.DIFFERENT,
    "delete": ReconciliationStatus.EXTRA,
    "conflict": ReconciliationStatus.CONFLICT,
    "unchanged": ReconciliationStatus.OK,
}


def reconcile(
    planned: list[PlannedWorklog], remote: list[RemoteWorklog], last_pushed: dict[str, int]
) -> pd.DataFrame:
    """One RECONCILIATION row per planned key and per remote entry the plan does not explain."""
    rows = []
    for decision in decide(planned, remote, last_pushed):
        wanted, held = decision.planned, decision.remote
        extra = decision.action == "delete"
        source = held if extra or wanted is None else wanted
        assert source is not None
        rows.append(
            {
                "work_date": source.work_date,
                "worklog_key": decision.key,
                "userid": None if extra or wanted is None else wanted.userid,
                "pm_user": source.pm_user,
                "issue": source.issue,
                "planned_seconds": None if extra or wanted is None else wanted.seconds,
                "remote_seconds": held.seconds if held else None,
                "remote_id": held.remote_id if held else None,
                "status": STATUS_OF_ACTION[decision.action].value,
            }
        )
    if not rows:
        return empty_frame(RECONCILIATION)
    frame = pd.DataFrame(rows, columns=RECONCILIATION.names)
    return frame.sort_values(["work_date", "worklog_key", "status"]).reset_index(drop=True)
