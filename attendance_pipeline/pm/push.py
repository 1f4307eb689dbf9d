"""Exactly-once delivery: diff the plan against what the PM system holds, by key (no Dagster).

Before writing a window the pusher lists every worklog carrying our key in it, then:
missing → create, different → update, no longer planned → delete, equal → nothing. A remote entry
whose value differs from what we last pushed (a person edited it) is a `conflict` and is left
alone. A write whose reply was lost (`OutcomeUnknown`) is never retried blindly: the pusher lists
the remote again and re-decides, so a crash, a lost reply or a re-run converges to the plan with
no duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from datetime import date

from attendance_pipeline.pm.base import (
    OutcomeUnknown,
    PlannedWorklog,
    PMError,
    RemoteWorklog,
    WorklogStore,
)
from attendance_pipeline.vocabulary import PushAction, values

log = logging.getLogger(__name__)

ACTIONS = values(PushAction)


@dataclass(frozen=True)
class Decision:
    """What to do with one key."""

    action: str  # create | update | delete | unchanged | conflict
    key: str
    planned: PlannedWorklog | None
    remote: RemoteWorklog | None
    reason: str = ""


@dataclass(frozen=True)
class Outcome:
    """What happened to one key (one ledger row)."""

    action: str  # one of ACTIONS
    key: str
    userid: str | None
    work_date: date
    pm_user: str
    issue: str
    seconds: int
    remote_id: str | None
    remote_seconds: int | None
    message: str = ""


def decide(
    planned: Iterable[PlannedWorklog],
    remote: Iterable[RemoteWorklog],
    last_pushed: dict[str, int],
) -> list[Decision]:
    """The diff by key. `last_pushed` maps a key to the seconds we last wrote for it."""
    by_key: dict[str, list[RemoteWorklog]] = {}
    for entry in remote:
        by_key.setdefault(entry.worklog_key, []).append(entry)
    decisions: list[Decision] = []
    plan = {p.worklog_key: p for p in planned}
    for key, entries in by_key.items():
        entries.sort(key=lambda e: (len(e.remote_id), e.remote_id))
        for duplicate in entries[1:]:  # a duplicate can only come from elsewhere: remove it
            decisions.append(Decision("delete", key, plan.get(key), duplicate, "duplicate"))
    for key, wanted in plan.items():
        held = by_key.get(key, [None])[0]
        if held is None:
            decisions.append(Decision("create", key, wanted, None))
            continue
        edited = key in last_pushed and held.seconds != last_pushed[key]
        if _same(held, wanted):
            decisions.append(Decision("unchanged", key, wanted, held))
        elif edited:
            decisions.append(
                Decision("conflict", key, wanted, held, _edited(held.seconds, last_pushed[key]))
            )
        else:
            decisions.append(Decision("update", key, wanted, held))
    for key, entries in by_key.items():
        if key in plan:
            continue
        held = entries[0]
        if key in last_pushed and held.seconds != last_pushed[key]:
            decisions.append(
                Decision("conflict", key, None, held, _edited(held.seconds, last_pushed[key]))
            )
        else:
            decisions.append(Decision("delete", key, None, held, "no longer planned"))
    return decisions


def _same(held: RemoteWorklog, wanted: PlannedWorklog) -> bool:
    return (
        held.seconds == wanted.seconds
        and held.issue == wanted.issue
        and held.pm_user == wanted.pm_user
        and held.work_date == wanted.work_date
    )


def _edited(now: int, pushed: int) -> str:
    return f"edited in the PM system since our last push ({pushed} s → {now} s); left alone"


def push_window(
    store: WorklogStore,
    planned: list[PlannedWorklog],
    start: date,
    end: date,
    *,
    list_users: Iterable[str],
    list_issues: Iterable[str],
    last_pushed: dict[str, int],
    frozen: Collection[tuple[str, date]] = (),
    dry_run: bool = False,
    max_rounds: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> list[Outcome]:
    """Converge the PM system to `planned` for start..end; one Outcome per key touched.

    `frozen` (pm_user, work_date) pairs are held back: whatever the remote holds for them is
    left alone (neither updated nor deleted), and nothing is planned for them."""
    users = sorted(set(list_users) | {p.pm_user for p in planned})
    issues = sorted(set(list_issues) | {p.issue for p in planned})
    outcomes: dict[tuple[str, str], Outcome] = {}
    pending: dict[str, Decision] | None = None  # keys whose last write had no reply
    for _round in range(max_rounds):
        remote = [
            r
            for r in store.list_worklogs(users, issues, start, end)
            if (r.pm_user, r.work_date) not in frozen
        ]
        decisions = decide(planned, remote, last_pushed)
        if pending is not None:
            decisions = [d for d in decisions if d.key in pending]
            for key in set(pending) - {d.key for d in decisions}:  # a lost delete that worked
                outcomes[(key, "")] = _outcome(pending[key], "deleted", "reply lost; re-listed")
        uncertain: dict[str, Decision] = {}
        writes = sum(1 for d in decisions if d.action in ("create", "update", "delete"))
        done = 0
        for decision in decisions:
            if pending is not None and decision.action == "unchanged" and decision.key in pending:
                # The write whose reply was lost did commit: report what we did.
                first = pending[decision.key]
                outcome = _outcome(decision, _past(first.action), "reply lost; re-listed")
            elif dry_run or decision.action in ("unchanged", "conflict"):
                outcome = _outcome(decision, _past(decision.action), decision.reason)
            else:
                try:
                    written = _write(store, decision)
                except OutcomeUnknown as exc:
                    uncertain[decision.key] = (pending or {}).get(decision.key, decision)
                    log.warning("%s: outcome unknown for %s; re-listing", exc, decision.key)
                    continue
                except PMError as exc:
                    outcome = _outcome(decision, "failed", str(exc))
                else:
                    outcome = _outcome(decision, _past(decision.action), decision.reason, written)
                done += 1
                if progress:
                    progress(done, writes)
            outcomes[(decision.key, outcome.remote_id or "")] = outcome
        if not uncertain:
            break
        pending = uncertain
    else:
        for key, decision in (pending or {}).items():
            message = f"outcome still unknown after {max_rounds} rounds; re-run to converge"
            outcomes[(key, "")] = _outcome(decision, "failed", message)
    return sorted(outcomes.values(), key=lambda o: (o.work_date, o.key, o.action))


def _write(store: WorklogStore, decision: Decision) -> RemoteWorklog | None:
    if decision.action == "create":
        assert decision.planned is not None
        return store.create(decision.planned)
    if decision.action == "update":
        assert decision.planned is not None and decision.remote is not None
        return store.update(decision.remote, decision.planned)
    assert decision.remote is not None
    store.delete(decision.remote)
    return None


def _past(action: str) -> str:
    return {"create": "created", "update": "updated", "delete": "deleted"}.get(action, action)


def _outcome(
    decision: Decision, action: str, message: str, written: RemoteWorklog | None = None
) -> Outcome:
    source = decision.planned
    remote = written or decision.remote
    if source is None:
        assert decision.remote is not None
        source = PlannedWorklog(
            worklog_key=decision.key,
            userid="",
            work_date=decision.remote.work_date,
            pm_user=decision.remote.pm_user,
            issue=decision.remote.issue,
            seconds=0 if action == "deleted" else decision.remote.seconds,
        )
    return Outcome(
        action=action,
        key=decision.key,
        userid=source.userid or None,
        work_date=source.work_date,
        pm_user=source.pm_user,
        issue=source.issue,
        seconds=source.seconds,
        remote_id=remote.remote_id if remote is not None else None,
        remote_seconds=decision.remote.seconds if decision.remote is not None else None,
        message=message,
    )


def with_seconds(planned: PlannedWorklog, seconds: int) -> PlannedWorklog:
    return replace(planned, seconds=seconds)
