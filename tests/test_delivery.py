"""Delivery end to end against the PM simulator: the pipeline lands exactly the plan, re-runs
write nothing, dry runs write nothing, and the pusher converges with no duplicates under 5xx,
429 bursts, replies lost after commit and a process killed mid-push — for every adapter."""

import contextlib
import random
from datetime import date, timedelta

import duckdb
import pytest

from attendance_pipeline.definitions import build_definitions
from attendance_pipeline.pm.base import PlannedWorklog, WorklogStore, worklog_key
from attendance_pipeline.pm.push import push_window
from attendance_pipeline.resources.delivery import PMResource
from attendance_pipeline.simulators.pm import PMSimulator
from attendance_pipeline.sync import run_sync
from tests.conftest import resource

WEEK = (date(2026, 11, 9), date(2026, 11, 13))


def with_pm(pipeline, pm: PMResource):
    sim, settings, _, instance = pipeline
    dingtalk = pipeline[2].resources["dingtalk"]
    defs = build_definitions(settings, {"dingtalk": dingtalk, "pm": pm})
    return sim, settings, defs, instance


def ledger(settings) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(
            "SELECT action, dry_run, count(*) FROM worklog_ledger GROUP BY ALL ORDER BY ALL"
        ).fetchall()


def hours_by_user_day(settings) -> dict:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return {
            (u, str(d)): h
            for u, d, h in con.execute(
                "SELECT userid, work_date, effective_hours FROM effective_hours WHERE countable"
            ).fetchall()
        }


def test_a_synced_week_lands_in_jira_exactly_and_a_rerun_writes_nothing(pipeline, pm_sim):
    pm, url = pm_sim()
    _, settings, defs, instance = with_pm(pipeline, resource("jira", url))
    summary = run_sync(defs, *WEEK, instance=instance)
    assert summary.success, summary.render()
    held = pm.worklogs("jira")
    assert summary.worklogs["created"] == len(held) > 0

    # The plan carries each mapped, in-scope person's countable hours; Jira holds the plan.
    lake = settings.lake_dir
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        planned = con.execute(
            "SELECT userid, work_date, sum(seconds) FROM read_parquet(?) GROUP BY ALL",
            [str(lake / "worklog_plan" / "*.parquet")],
        ).fetchall()
        per_issue_day = dict(
            ((issue, str(day)), seconds)
            for issue, day, seconds in con.execute(
                "SELECT issue, work_date, sum(seconds) FROM read_parquet(?) GROUP BY ALL",
                [str(lake / "worklog_plan" / "*.parquet")],
            ).fetchall()
        )
        skipped = {
            u
            for (u,) in con.execute(
                "SELECT DISTINCT userid FROM read_parquet(?) WHERE status <> 'mapped'",
                [str(lake / "user_mapping" / "*.parquet")],
            ).fetchall()
        }
    hours = hours_by_user_day(settings)
    for userid, day, seconds in planned:
        assert seconds == round(hours[(userid, str(day))] * 3600)
    assert skipped, "the simulated company has people without a (unique) PM account"
    assert skipped.isdisjoint({u for u, _, _ in planned})
    held_per_issue_day: dict = {}
    for entry in held:
        key = (entry["issue"], str(entry["work_date"]))
        held_per_issue_day[key] = held_per_issue_day.get(key, 0) + entry["seconds"]
    assert held_per_issue_day == per_issue_day

    writes = pm.calls()["writes"]
    again = run_sync(defs, *WEEK, instance=instance)
    assert again.success
    assert again.worklogs["created"] == again.worklogs["updated"] == again.worklogs["deleted"] == 0
    assert pm.calls()["writes"] == writes
    assert len(pm.worklogs("jira")) == len(held)
    assert pm.calls()["estimate_changed"] == pm.calls()["notified"] == 0


def test_a_dry_run_shows_the_diff_and_writes_nothing(pipeline, pm_sim):
    pm, url = pm_sim()
    _, settings, defs, instance = with_pm(pipeline, resource("jira", url))
    summary = run_sync(defs, *WEEK, instance=instance, dry_run=True)
    assert summary.success and summary.dry_run
    assert summary.worklogs["created"] > 0
    assert pm.calls()["writes"] == 0 and pm.worklogs("jira") == []
    assert all(dry for _, dry, _ in ledger(settings))


def test_a_human_edit_is_reported_as_a_conflict_not_overwritten(pipeline, pm_sim):
    pm, url = pm_sim()
    _, _, defs, instance = with_pm(pipeline, resource("jira", url))
    assert run_sync(defs, *WEEK, instance=instance).success
    victim = pm.worklogs("jira")[0]
    pm.edit_worklog("jira", victim["id"], victim["seconds"] + 1800)
    summary = run_sync(defs, *WEEK, instance=instance)
    assert summary.worklogs["conflict"] == 1 and summary.worklogs["updated"] == 0
    edited = next(w for w in pm.worklogs("jira") if w["id"] == victim["id"])
    assert edited["seconds"] == victim["seconds"] + 1800


# ----------------------------------------------------------------- exactly once, every adapter

SYSTEM_ISSUES = {
    "jira": ["ATT-1", "ATT-2", "ATT-3"],
    "tempo": ["10001", "10002", "10003"],
    "tapd": ["story:1001", "story:1002", "task:2001"],
    "zentao": ["1", "2", "3"],
}


def make_plan(store: WorklogStore, system: str, rng: random.Random, n_users: int = 6) -> list:
    users = [u.pm_user for u in store.list_users() if u.active][:n_users]
    plan = []
    for offset in range(5):
        day = date(2026, 11, 2) + timedelta(days=offset)
        for user in users:
            issue = rng.choice(SYSTEM_ISSUES[system])
            key = worklog_key(f"dt-{user}", day, issue, "work")
            plan.append(PlannedWorklog(key, f"dt-{user}", day, user, issue, rng.choice([
                4 * 3600, 7 * 3600, 8 * 3600, 6 * 3600 + 1800])))  # fmt: skip
    return plan


class Killed(Exception):
    """Stands for the process dying mid-push."""


class DiesAfter:
    """Wraps a store; the n-th write raises Killed after (or before) reaching the remote."""

    def __init__(self, store: WorklogStore, writes: int) -> None:
        self.store, self.left = store, writes
        self.system = store.system

    def _tick(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise Killed()

    def list_users(self):
        return self.store.list_users()

    def list_worklogs(self, *args):
        return self.store.list_worklogs(*args)

    def create(self, planned):
        self._tick()
        return self.store.create(planned)

    def update(self, remote, planned):
        self._tick()
        return self.store.update(remote, planned)

    def delete(self, remote):
        self._tick()
        return self.store.delete(remote)


def held_by_key(pm: PMSimulator, store: WorklogStore, plan: list) -> dict:
    users = sorted({p.pm_user for p in plan})
    issues = sorted({p.issue for p in plan})
    remote = store.list_worklogs(users, issues, date(2026, 11, 1), date(2026, 11, 8))
    by_key: dict = {}
    for entry in remote:
        by_key.setdefault(entry.worklog_key, []).append(entry)
    return by_key


@pytest.mark.parametrize("system", sorted(SYSTEM_ISSUES))
def test_exactly_once_under_faults_and_a_killed_push_for_every_adapter(pm_sim, system):
    for seed in range(4):
        pm, url = pm_sim(retry_after_s=0.01)
        store = resource(system, url).store()
        assert store is not None
        rng = random.Random(seed)
        plan = make_plan(store, system, rng)
        window = (date(2026, 11, 1), date(2026, 11, 8))
        pm.set_faults(http5xx=0.15, rate_limit=0.15, lost_reply=0.15, retry_after_s=0.01, seed=seed)
        # First attempt dies part-way; the re-run (faults still on) must converge.
        dying = DiesAfter(store, rng.randint(3, 20))
        with contextlib.suppress(Killed):
            push_window(dying, plan, *window, list_users=[], list_issues=[], last_pushed={})
        outcomes = push_window(store, plan, *window, list_users=[], list_issues=[], last_pushed={})
        assert not [o for o in outcomes if o.action == "failed"], outcomes
        pm.set_faults()
        held = held_by_key(pm, store, plan)
        assert sorted(held) == sorted(p.worklog_key for p in plan), f"seed {seed}"
        assert all(len(entries) == 1 for entries in held.values()), f"duplicates, seed {seed}"
        for p in plan:
            assert held[p.worklog_key][0].seconds == p.seconds
        # A third run writes nothing.
        writes = pm.calls()["writes"]
        again = push_window(store, plan, *window, list_users=[], list_issues=[], last_pushed={})
        assert {o.action for o in again} == {"unchanged"}
        assert pm.calls()["writes"] == writes
