"""Stream events → targeted refresh runs (the `stream_refresh` sensor).

`attendance-pipeline listen` stores DingTalk's events in `data/events.sqlite`. Every tick the
sensor:

1. looks at the runs it asked for earlier: a run that succeeded marks its events processed; a
   failed or cancelled one releases them for a new run (after `MAX_ATTEMPTS` they are left to the
   nightly corrections run and marked so); a request whose run never started is asked again
   (Dagster starts one run per run key, so asking twice is harmless);
2. turns the unclaimed events into runs of the `sync` job: the events' (userid, work day) pairs,
   clipped to the synced days, are grouped so that one run covers the events with the same days,
   tagged with their users (`targeted.py`). A roster event (hire, leaver, department change)
   refreshes the latest synced day with the roster re-pulled.

Events claimed by a run carry its run key until it finishes, so a sensor that crashes mid-tick,
or a daemon restart, asks again for the same run instead of losing or repeating the refresh.

A second sensor, `availability_on_events`, reads the same queue without claiming anything: a new
approval, schedule or roster event asks for one `availability` run, so a leave approved (or
revoked) for next week shows in `team_availability` within a minute.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg

from attendance_pipeline.dagster_api import partition_range_tags
from attendance_pipeline.event_queue import ROSTER_EVENTS, EventQueue, QueuedEvent
from attendance_pipeline.resources.dingtalk import DingTalkResource
from attendance_pipeline.settings import load_settings
from attendance_pipeline.targeted import ROSTER_TAG, TRIGGER_TAG, users_tag

MAX_ATTEMPTS = 3
MAX_USERS_PER_RUN = 200
QUEUE_FILE = "events.sqlite"
# Events that can change who is away in the coming days.
AVAILABILITY_EVENTS = (
    "bpms_instance_change",
    "bpms_task_change",
    "attendance_schedule_change",
    *ROSTER_EVENTS,
)
RUN_KEY_TAG = "dagster/run_key"


@dataclass(frozen=True)
class Refresh:
    """One targeted run: these users for start..end, covering these events."""

    users: tuple[str, ...]
    start: date
    end: date
    roster: bool
    event_ids: tuple[str, ...]

    def run_key(self, attempt: int = 0) -> str:
        digest = hashlib.sha1("\n".join(self.event_ids).encode()).hexdigest()[:16]
        return f"events-{self.start}-{self.end}-{digest}-{attempt}"

    def request(self, run_key: str) -> dg.RunRequest:
        tags = {
            **partition_range_tags(self.start.isoformat(), self.end.isoformat()),
            **users_tag(self.users),
            TRIGGER_TAG: "events",
        }
        if self.roster:
            tags[ROSTER_TAG] = "pull"
        return dg.RunRequest(run_key=run_key, tags=tags)


def plan_refreshes(
    events: Sequence[QueuedEvent],
    last_day: date,
    synced: set[date] | None = None,
) -> tuple[list[Refresh], list[str]]:
    """(runs to request, ids of events with nothing to refresh). Days after `last_day` (the
    latest partition) or never synced (`synced`, when given) are left out: the nightly run pulls
    them whole. Events about the same person merge into one run over the union of their days
    (a 补卡 arrives as a check record and an approval change); runs over the same days are
    merged up to `MAX_USERS_PER_RUN` users."""
    components: list[_Component] = []
    nothing: list[str] = []
    for event in events:
        users = set(event.users())
        roster = event.event_type in ROSTER_EVENTS
        wanted = [last_day] if roster else event.days()
        kept = [d for d in wanted if d <= last_day and (synced is None or d in synced)]
        if not users or not kept:
            nothing.append(event.event_id)
            continue
        merged = _Component(users, min(kept), max(kept), roster, [event])
        for other in [c for c in components if c.users & users and c.roster == roster]:
            components.remove(other)
            merged = merged.union(other)
        components.append(merged)
    by_days: dict[tuple[date, date, bool], list[_Component]] = {}
    for component in components:
        by_days.setdefault((component.start, component.end, component.roster), []).append(component)
    refreshes = []
    for (start, end, roster), members in sorted(by_days.items()):
        batch: list[_Component] = []
        for component in members:
            if batch and len(set().union(*(c.users for c in [*batch, component]))) > (
                MAX_USERS_PER_RUN
            ):
                refreshes.append(_refresh(batch, start, end, roster))
                batch = []
            batch.append(component)
        refreshes.append(_refresh(batch, start, end, roster))
    return refreshes, nothing


@dataclass
class _Component:
    users: set[str]
    start: date
    end: date
    roster: bool
    events: list[QueuedEvent]

    def union(self, other: _Component) -> _Component:
        return _Component(
            self.users | other.users,
            min(self.start, other.start),
            max(self.end, other.end),
            self.roster,
            [*other.events, *self.events],
        )


def _refresh(components: list[_Component], start: date, end: date, roster: bool) -> Refresh:
    ids = tuple(sorted(e.event_id for c in components for e in c.events))
    users = tuple(sorted(set().union(*(c.users for c in components))))
    return Refresh(users, start, end, roster, ids)


def _synced_days(instance: dg.DagsterInstance) -> set[date]:
    keys = instance.get_materialized_partitions(dg.AssetKey("raw_attendance"))
    return {date.fromisoformat(k) for k in keys}


def _run_of(instance: dg.DagsterInstance, run_key: str) -> dg.DagsterRun | None:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1)
    return runs[0] if runs else None


DONE = (dg.DagsterRunStatus.SUCCESS,)
FAILED = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def evaluate(
    queue: EventQueue, instance: dg.DagsterInstance, today: date
) -> tuple[list[dg.RunRequest], dict[str, int]]:
    """One sensor tick over `queue` (see the module docstring): (run requests, counts)."""
    counts = {"processed": 0, "released": 0, "given_up": 0, "asked_again": 0, "new_runs": 0}
    requests: list[dg.RunRequest] = []
    last_day = today - timedelta(days=1)
    for run_key, events in queue.claims().items():
        run = _run_of(instance, run_key)
        if run is None:
            refreshes, _ = plan_refreshes(events, last_day)
            if refreshes:  # one run, as first asked (the clock may have moved since)
                whole = Refresh(
                    tuple(sorted({u for r in refreshes for u in r.users})),
                    min(r.start for r in refreshes),
                    max(r.end for r in refreshes),
                    any(r.roster for r in refreshes),
                    tuple(sorted(e.event_id for e in events)),
                )
                requests.append(whole.request(run_key))
                counts["asked_again"] += 1
        elif run.status in DONE:
            counts["processed"] += queue.mark_processed([e.event_id for e in events], run_key)
        elif run.status in FAILED:
            if max(e.attempts for e in events) + 1 >= MAX_ATTEMPTS:
                ids = [e.event_id for e in events]
                counts["given_up"] += queue.mark_processed(ids, f"gave-up:{run_key}")
            else:
                counts["released"] += queue.release(run_key)
    unclaimed = queue.unclaimed()
    refreshes, nothing = plan_refreshes(unclaimed, last_day, _synced_days(instance))
    counts["processed"] += queue.mark_processed(nothing, "nothing-to-refresh")
    attempts = {e.event_id: e.attempts for e in unclaimed}
    for refresh in refreshes:
        key = refresh.run_key(max(attempts.get(i, 0) for i in refresh.event_ids))
        queue.claim(refresh.event_ids, key)
        requests.append(refresh.request(key))
        counts["new_runs"] += 1
    return requests, counts


def stored_queue() -> EventQueue | dg.SkipReason:
    """The listener's queue in the data folder, or why there is none yet."""
    path = load_settings(env_file=None).data_dir / QUEUE_FILE
    if not path.exists():
        return dg.SkipReason(f"no event queue at {path}: attendance-pipeline listen has not run")
    return EventQueue(path)


@dg.sensor(
    job_name="sync",
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="DingTalk Stream events (attendance-pipeline listen) → sync runs that refresh "
    "only the affected people's days.",
)
def stream_refresh(
    context: dg.SensorEvaluationContext, dingtalk: DingTalkResource
) -> dg.SensorResult | dg.SkipReason:
    queue = stored_queue()
    if isinstance(queue, dg.SkipReason):
        return queue
    today = dingtalk.clock_today()
    requests, counts = evaluate(queue, context.instance, today)
    if not requests and not any(counts.values()):
        return dg.SkipReason("no new events")
    context.log.info(f"stream events: {counts}")
    return dg.SensorResult(run_requests=requests)


def availability_request(queue: EventQueue, cursor: str | None) -> tuple[dg.RunRequest | None, str]:
    """(a run of `availability` if events arrived since `cursor`, the new cursor)."""
    newest = queue.newest(AVAILABILITY_EVENTS)
    seen = int(cursor) if cursor and cursor.isdigit() else 0
    if newest <= seen:
        return None, str(seen)
    request = dg.RunRequest(
        run_key=f"availability-events-{newest}", tags={TRIGGER_TAG: "stream-availability"}
    )
    return request, str(newest)


@dg.sensor(
    job_name="availability",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A new approval, schedule or roster event (attendance-pipeline listen) → one "
    "availability run, so team_availability follows approvals and revocations in minutes.",
)
def availability_on_events(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    queue = stored_queue()
    if isinstance(queue, dg.SkipReason):
        return queue
    request, cursor = availability_request(queue, context.cursor)
    if request is None:
        return dg.SkipReason("no new approval, schedule or roster event")
    return dg.SensorResult(run_requests=[request], cursor=cursor)
