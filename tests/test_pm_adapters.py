"""The Jira, Tempo, TAPD and ZenTao adapters against the PM simulator over real HTTP.

Each adapter: a create → list → update → list → delete → list round trip, listing that ignores
entries without our key or outside the range, the system's own rules, and faults (5xx and 429
survived; a lost reply is `OutcomeUnknown` while the entry exists, so a re-list finds it).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
import requests

from attendance_pipeline.pm.base import (
    OutcomeUnknown,
    PlannedWorklog,
    PMError,
    WorklogStore,
    key_tag,
    worklog_key,
)
from attendance_pipeline.pm.http import RetryPolicy
from attendance_pipeline.pm.jira import JiraWorklogStore
from attendance_pipeline.pm.tapd import TapdWorklogStore
from attendance_pipeline.pm.tempo import TempoWorklogStore
from attendance_pipeline.pm.zentao import NO_EDIT, ZenTaoWorklogStore
from attendance_pipeline.simulators.pm import PMSimulator

TODAY = date(2026, 11, 20)
DAY = date(2026, 11, 3)
FAST = RetryPolicy(
    max_attempts=10,
    max_seconds=20,
    backoff_initial_s=0.01,
    backoff_max_s=0.05,
    max_retry_after_s=5,
    timeout_s=5,
)
SIM_AUTH = ("sim-user", "sim-token")

Sim = tuple[PMSimulator, str]


def plan(pm_user: str, issue: str, seconds: int, day: date = DAY, **extra: Any) -> PlannedWorklog:
    userid = extra.pop("userid", f"dt-{pm_user[:8]}")
    kind = extra.pop("kind", "work")
    key = worklog_key(userid, day, issue, kind)
    return PlannedWorklog(key, userid, day, pm_user, issue, seconds, kind=kind, **extra)


def routes(sim: PMSimulator) -> dict[str, int]:
    by_route: dict[str, int] = sim.calls()["by_route"]
    return by_route


# ---------------------------------------------------------------------- store builders


def jira_store(url: str, **kw: Any) -> JiraWorklogStore:
    return JiraWorklogStore(url, email="sim-user", api_token="sim-token", policy=FAST, **kw)


def tempo_store(url: str, **kw: Any) -> TempoWorklogStore:
    return TempoWorklogStore(url, token="sim-token", policy=FAST, **kw)


def tapd_store(url: str, **kw: Any) -> TapdWorklogStore:
    kw.setdefault("workspace_id", 100)
    return TapdWorklogStore(url, api_user="sim-user", api_password="sim-token", policy=FAST, **kw)


def zentao_password(account: str) -> str:
    return "sim-token" if account == "sim-user" else f"sim-pass-{account}"


def zentao_store(url: str, **kw: Any) -> ZenTaoWorklogStore:
    kw.setdefault("passwords", zentao_password)
    kw.setdefault("admin_account", "sim-user")
    return ZenTaoWorklogStore(url, policy=FAST, today=lambda: TODAY, **kw)


def employees(sim: PMSimulator, system: str, n: int = 2) -> list[str]:
    """The first n employees' ids in `system` (accountId for Jira/Tempo, login otherwise)."""
    people = [a for a in sim.directory.members() if a.kind == "employee"][:n]
    return [a.account_id if system in ("jira", "tempo") else a.login for a in people]


def store_for(system: str, url: str) -> WorklogStore:
    builders: dict[str, Callable[[str], WorklogStore]] = {
        "jira": jira_store,
        "tempo": tempo_store,
        "tapd": tapd_store,
        "zentao": zentao_store,
    }
    return builders[system](url)


# ---------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    ("system", "issue", "updatable"),
    [
        ("jira", "ATT-1", True),
        ("tempo", "10001", True),
        ("tapd", "story:1001", True),
        ("zentao", "3", False),
    ],
)
def test_round_trip(pm_sim, system, issue, updatable):
    sim, url = pm_sim()
    store = store_for(system, url)
    alice, bob = employees(sim, system)
    planned = plan(alice, issue, 27000, comment="backend work")
    created = store.create(planned)
    assert created.worklog_key == planned.worklog_key

    [found] = store.list_worklogs([alice, bob], [issue], DAY, DAY)
    assert found.remote_id == created.remote_id
    assert (found.worklog_key, found.pm_user, found.issue) == (planned.worklog_key, alice, issue)
    assert (found.work_date, found.seconds, found.comment) == (DAY, 27000, "backend work")
    [truth] = sim.worklogs(system)
    assert truth["id"] == created.remote_id and truth["seconds"] == 27000
    assert key_tag(planned.worklog_key) in truth["text"]
    # Another employee's filter, another issue or another range sees nothing.
    assert store.list_worklogs([bob], [issue], DAY, DAY) == []
    assert store.list_worklogs([alice], [issue], DAY + timedelta(days=1), TODAY) == []

    if not updatable:
        with pytest.raises(PMError, match=NO_EDIT):
            store.update(found, replace(planned, seconds=3600))
        with pytest.raises(PMError, match=NO_EDIT):
            store.delete(found)
        return

    changed = replace(planned, seconds=1500, comment="")
    updated = store.update(found, changed)
    assert updated.remote_id == found.remote_id
    [again] = store.list_worklogs([alice], [issue], DAY, DAY)
    assert (again.remote_id, again.seconds, again.comment) == (found.remote_id, 1500, "")
    assert again.worklog_key == planned.worklog_key

    store.delete(again)
    assert store.list_worklogs([alice], [issue], DAY, DAY) == []
    assert sim.worklogs(system) == []


# ---------------------------------------------------------------------- Jira


def test_jira_writes_started_flags_and_property(pm_sim):
    sim, url = pm_sim()
    store = jira_store(url)
    users = {u.pm_user: u for u in store.list_users()}
    assert sim.directory.service.account_id not in users  # the "app" account is no employee
    alice = employees(sim, "jira", 1)[0]
    planned = plan(alice, "ATT-2", 3600, userid="dt-alice")
    created = store.create(planned)
    store.update(created, replace(planned, seconds=7200))
    [truth] = sim.worklogs("jira")
    assert truth["started"] == "2026-11-03T09:00:00.000+0800"
    assert truth["author"] == sim.directory.service.account_id  # always the caller
    assert truth["properties"]["attendance"] == {
        "key": planned.worklog_key,
        "pm_user": alice,
        "userid": "dt-alice",
    }
    assert f"Logged for {users[alice].name} ({alice}), DingTalk dt-alice" in truth["text"]
    [listed] = store.list_worklogs([alice], ["ATT-2"], DAY, DAY)
    assert listed.pm_user == alice != truth["author"]
    store.delete(listed)
    calls = sim.calls()
    assert calls["estimate_changed"] == 0 and calls["notified"] == 0
    assert calls["writes"] == 3


def test_jira_refuses_under_a_minute_without_calling(pm_sim):
    sim, url = pm_sim()
    store = jira_store(url)
    with pytest.raises(PMError, match="under Jira's minimum of 60 s"):
        store.create(plan(employees(sim, "jira", 1)[0], "ATT-1", 59))
    assert sim.calls()["writes"] == 0


def test_jira_listing_ignores_foreign_entries_and_other_dates(pm_sim):
    sim, url = pm_sim()
    store = jira_store(url, page_size=2)  # several pages per issue
    alice = employees(sim, "jira", 1)[0]
    api = f"{url}/rest/api/3/issue/ATT-1/worklog"
    for hour in range(3):  # people's own worklogs on the same issue and day
        body = {
            "started": f"2026-11-03T1{hour}:00:00.000+0800",
            "timeSpentSeconds": 600,
            "comment": {"type": "doc", "version": 1, "content": []},
        }
        requests.post(api, json=body, auth=SIM_AUTH, timeout=5).raise_for_status()
    ours = store.create(plan(alice, "ATT-1", 3600))
    store.create(plan(alice, "ATT-1", 3600, day=DAY - timedelta(days=1)))
    store.create(plan(alice, "ATT-1", 3600, day=DAY + timedelta(days=1)))
    [found] = store.list_worklogs([alice], ["ATT-1", "ATT-2"], DAY, DAY)
    assert found.remote_id == ours.remote_id
    assert len(store.list_worklogs([alice], ["ATT-1"], DAY - timedelta(days=1), TODAY)) == 3

    # Without the property the comment's tag and signature still identify it.
    prop = f"{api}/{ours.remote_id}/properties/attendance"
    requests.delete(prop, auth=SIM_AUTH, timeout=5).raise_for_status()
    [fallback] = store.list_worklogs([alice], ["ATT-1"], DAY, DAY)
    assert (fallback.worklog_key, fallback.pm_user) == (ours.worklog_key, alice)


def test_jira_data_center_v2(pm_sim):
    sim, url = pm_sim()
    store = JiraWorklogStore(url, personal_access_token="sim-token", api_version=2, policy=FAST)
    logins = {u.pm_user for u in store.list_users()}
    alice = employees(sim, "tapd", 1)[0]  # DC identifies people by username
    assert alice in logins
    created = store.create(plan(alice, "ATT-3", 5400, comment="v2"))
    [found] = store.list_worklogs([alice], ["ATT-3"], DAY, DAY)
    assert (found.remote_id, found.comment, found.seconds) == (created.remote_id, "v2", 5400)
    assert "/rest/api/2/issue/{key}/worklog" in " ".join(routes(sim))


def test_jira_errors_are_readable_and_writes_to_one_issue_are_serialised(pm_sim):
    sim, url = pm_sim(latency_ms=15)
    store = jira_store(url)
    alice = employees(sim, "jira", 1)[0]
    with pytest.raises(PMError, match="Issue does not exist"):
        store.create(plan(alice, "ATT-99", 3600))
    wrong = JiraWorklogStore(url, email="sim-user", api_token="nope", policy=FAST)
    with pytest.raises(PMError, match="authentication failed") as caught:
        wrong.list_worklogs([alice], ["ATT-1"], DAY, DAY)
    assert "nope" not in str(caught.value) and "nope" not in repr(wrong)
    days = [DAY + timedelta(days=i) for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda d: store.create(plan(alice, "ATT-4", 3600, day=d)), days))
    assert len(sim.worklogs("jira")) == 6
    assert sim.calls()["parallel_issue_writes"] == 0


# ---------------------------------------------------------------------- Tempo


def test_tempo_logs_for_the_employee_and_pages(pm_sim):
    sim, url = pm_sim()
    jira = jira_store(url)
    store = tempo_store(url, users_source=jira, page_size=2)
    alice, bob = employees(sim, "tempo")
    requests.post(  # someone's own worklog: no attribute, no tag
        f"{url}/4/worklogs",
        json={
            "issueId": 10001,
            "timeSpentSeconds": 600,
            "startDate": DAY.isoformat(),
            "authorAccountId": alice,
        },
        headers={"Authorization": "Bearer sim-token"},
        timeout=5,
    ).raise_for_status()
    mine = [store.create(plan(alice, "10001", 3600, day=DAY + timedelta(days=i))) for i in (0, 1)]
    store.create(plan(bob, "10002", 3600))
    store.create(plan(alice, "10001", 3600, day=DAY - timedelta(days=1)))
    found = store.list_worklogs([alice], ["10001"], DAY, DAY + timedelta(days=1))
    assert sorted(f.remote_id for f in found) == sorted(m.remote_id for m in mine)
    truth = {w["id"]: w for w in sim.worklogs("tempo")}
    assert truth[mine[0].remote_id]["author"] == alice  # authorAccountId, not the caller
    assert truth[mine[0].remote_id]["attributes"] == {"_attendance_": mine[0].worklog_key}
    assert truth[mine[0].remote_id]["start_time"] == "09:00:00"
    assert {u.pm_user for u in store.list_users()} == {u.pm_user for u in jira.list_users()}
    with pytest.raises(PMError, match="no user list"):
        tempo_store(url).list_users()


# ---------------------------------------------------------------------- TAPD


def test_tapd_timespent_natural_key_collision_and_human_entries(pm_sim):
    sim, url = pm_sim()
    store = tapd_store(url)
    alice, bob = employees(sim, "tapd")
    human = {
        "workspace_id": "100",
        "entity_type": "task",
        "entity_id": "2001",
        "timespent": "2",
        "owner": alice,
        "spentdate": DAY.isoformat(),
        "memo": "entered by hand",
    }
    reply = requests.post(f"{url}/timesheets", data=human, auth=SIM_AUTH, timeout=5).json()
    assert reply["status"] == 1
    with pytest.raises(PMError, match=f"a timesheet already exists for {alice} on 2026-11-03"):
        store.create(plan(alice, "task:2001", 3600))
    assert store.list_worklogs([alice], ["task:2001"], DAY, DAY) == []  # not ours: invisible
    assert [w["timespent"] for w in sim.worklogs("tapd")] == ["2"]  # untouched

    created = store.create(plan(bob, "task:2001", 27000))
    short_one = store.create(plan(bob, "story:1002", 1500))  # 25 min: "0.4167" h
    by_id = {w["id"]: w for w in sim.worklogs("tapd")}
    assert by_id[created.remote_id]["timespent"] == "7.5"
    [short] = store.list_worklogs([bob], ["story:1002"], DAY, DAY)
    assert short.seconds == 1500 and short.remote_id == short_one.remote_id


def test_tapd_checks_status_payload_and_failed_deletes(pm_sim):
    sim, url = pm_sim()
    alice = employees(sim, "tapd", 1)[0]
    wrong_path = tapd_store(f"{url}/api/v1")
    with pytest.raises(PMError, match="non-API page: check PM_BASE_URL"):
        wrong_path.list_worklogs([alice], ["story:1001"], DAY, DAY)
    with pytest.raises(PMError, match="non-API page"):
        wrong_path.list_users()
    with pytest.raises(PMError, match="status 0: workspace 999 does not exist"):
        tapd_store(url, workspace_id=999).list_worklogs([alice], ["story:1001"], DAY, DAY)
    store = tapd_store(url)
    with pytest.raises(PMError, match=re.escape("is not <story|task|bug>:<id>")):
        store.create(plan(alice, "1001", 3600))
    created = store.create(plan(alice, "story:1001", 3600))
    store.delete(created)
    with pytest.raises(PMError, match="TAPD reports the delete as failed"):
        store.delete(created)  # status 1, but the id is under data.data.failed
    assert {u.pm_user for u in store.list_users()} >= {alice}


# ---------------------------------------------------------------------- ZenTao


def test_zentao_failed_login_raises_at_once_and_is_never_retried(pm_sim):
    sim, url = pm_sim()
    alice, bob = employees(sim, "zentao")
    store = zentao_store(url, passwords={"sim-user": "sim-token", alice: "wrong-secret"})
    for _ in range(2):
        with pytest.raises(PMError, match=f"log in as {alice}: login refused") as caught:
            store.create(plan(alice, "1", 3600))
        assert "wrong-secret" not in str(caught.value)
    calls = sim.calls()
    # alice's login was tried exactly once, and nothing else was called for her.
    assert calls["failed_logins"] == 1
    assert routes(sim)["POST /api.php/v1/tokens"] == 1
    assert "POST /api.php/v1/tasks/{id}/estimate" not in routes(sim)
    with pytest.raises(PMError, match=f"no password for ZenTao account '{bob}'"):
        store.create(plan(bob, "1", 3600))


def test_zentao_keeps_left_and_refuses_future_dates(pm_sim):
    sim, url = pm_sim()
    alice, bob = employees(sim, "zentao")
    store = zentao_store(url)
    task = requests.Session()
    token = requests.post(
        f"{url}/api.php/v1/tokens",
        json={"account": "sim-user", "password": "sim-token"},
        timeout=5,
    ).json()["token"]
    task.headers["Token"] = token
    left_before = task.get(f"{url}/api.php/v1/tasks/2", timeout=5).json()["left"]
    assert left_before > 0
    store.create(plan(alice, "2", 7200))
    after = task.get(f"{url}/api.php/v1/tasks/2", timeout=5).json()
    assert after["left"] == left_before and after["status"] != "done"
    assert sim.calls()["tasks_finished"] == 0

    # A task someone already finished (left 0) gets 0, the only honest value.
    done = {"dates": ["2026-11-02"], "consumed": [1], "left": [0], "work": ["by hand"]}
    task.post(f"{url}/api.php/v1/tasks/5/estimate", json=done, timeout=5).raise_for_status()
    store.create(plan(bob, "5", 3600))
    assert [w["left"] for w in sim.worklogs("zentao") if w["issue"] == "5"] == [0, 0]

    writes = sim.calls()["writes"]
    with pytest.raises(PMError, match="in the future"):
        store.create(plan(alice, "2", 3600, day=TODAY + timedelta(days=1)))
    assert sim.calls()["writes"] == writes
    # Listing skips the hand-made effort (no tag) and other dates.
    found = store.list_worklogs([alice, bob], ["2", "5"], date(2026, 11, 1), TODAY)
    assert sorted((f.pm_user, f.issue) for f in found) == sorted([(alice, "2"), (bob, "5")])
    assert store.list_worklogs([alice, bob], ["2", "5"], DAY + timedelta(days=1), TODAY) == []


def test_zentao_logs_in_again_once_after_401(pm_sim):
    sim, url = pm_sim()
    alice = employees(sim, "zentao", 1)[0]
    store = zentao_store(url)
    store.create(plan(alice, "4", 3600))
    logins = sim.calls()["logins"]
    sim.expire_tokens()
    assert len(store.list_worklogs([alice], ["4"], DAY, DAY)) == 1
    assert sim.calls()["logins"] == logins + 1
    assert {u.pm_user for u in store.list_users()} >= {alice}


# ---------------------------------------------------------------------- faults

CASES = [("jira", "ATT-5"), ("tempo", "10005"), ("tapd", "story:1005"), ("zentao", "6")]


@pytest.mark.parametrize(("system", "issue"), CASES)
def test_errors_and_rate_limits_are_survived(pm_sim, system, issue):
    sim, url = pm_sim()
    store = store_for(system, url)
    people = employees(sim, system, 3)
    sim.set_faults(http5xx=0.3, rate_limit=0.3, retry_after_s=0.02, seed=11)
    planned = [plan(p, issue, 3600 * (i + 1)) for i, p in enumerate(people)]
    for one in planned:
        store.create(one)
    found = store.list_worklogs(people, [issue], DAY, DAY)
    assert sorted(f.worklog_key for f in found) == sorted(p.worklog_key for p in planned)
    faults = sim.calls()["faults"]
    assert faults["http5xx"] > 0 and faults["rate_limit"] > 0
    assert len(sim.worklogs(system)) == 3  # nothing written twice


def test_retries_are_bounded_and_a_long_retry_after_is_not_waited(pm_sim):
    sim, url = pm_sim()
    alice = employees(sim, "jira", 1)[0]
    sim.set_faults(rate_limit=1.0, retry_after_s=60)
    with pytest.raises(PMError, match="retry after 60 s") as caught:
        jira_store(url).create(plan(alice, "ATT-6", 3600))
    assert caught.value.retryable and not isinstance(caught.value, OutcomeUnknown)
    sim.set_faults(http5xx=1.0)
    three = RetryPolicy(max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.02)
    store = JiraWorklogStore(url, email="sim-user", api_token="sim-token", policy=three)
    with pytest.raises(PMError, match="gave up after 3 attempt") as caught:
        store.create(plan(alice, "ATT-6", 3600))
    assert caught.value.retryable
    assert sim.worklogs("jira") == [] and sim.calls()["writes"] == 4


@pytest.mark.parametrize(("system", "issue"), CASES)
def test_a_lost_reply_is_outcome_unknown_and_the_entry_exists(pm_sim, system, issue):
    sim, url = pm_sim()
    store = store_for(system, url)
    alice = employees(sim, system, 1)[0]
    planned = plan(alice, issue, 3600)
    sim.set_faults(lost_reply=1.0, seed=3)
    with pytest.raises(OutcomeUnknown):
        store.create(planned)
    [truth] = sim.worklogs(system)
    assert key_tag(planned.worklog_key) in truth["text"]
    sim.set_faults()
    [found] = store.list_worklogs([alice], [issue], DAY, DAY)  # the pusher's re-list
    assert (found.remote_id, found.worklog_key) == (truth["id"], planned.worklog_key)
    assert sim.calls()["writes"] == 1  # the write was not repeated blindly


def test_tapd_create_after_a_lost_reply_adopts_its_own_timesheet(pm_sim):
    sim, url = pm_sim()
    store = tapd_store(url)
    alice = employees(sim, "tapd", 1)[0]
    with pytest.raises(PMError, match="does not exist"):  # no bug 3001 in the workspace
        store.create(plan(alice, "bug:3001", 3600))
    planned = plan(alice, "story:1003", 3600)
    sim.set_faults(lost_reply=1.0, seed=5)
    with pytest.raises(OutcomeUnknown):
        store.create(planned)
    sim.set_faults()
    again = store.create(replace(planned, seconds=5400))
    [truth] = sim.worklogs("tapd")
    assert (truth["id"], truth["timespent"]) == (again.remote_id, "1.5")


def test_zentao_never_records_a_key_twice(pm_sim):
    sim, url = pm_sim()
    store = zentao_store(url)
    alice = employees(sim, "zentao", 1)[0]
    planned = plan(alice, "8", 3600)
    sim.set_faults(lost_reply=1.0, seed=5)
    with pytest.raises(OutcomeUnknown):
        store.create(planned)
    sim.set_faults()
    again = store.create(planned)
    [truth] = sim.worklogs("zentao")
    assert (again.remote_id, again.seconds) == (truth["id"], 3600)
    assert sim.calls()["writes"] == 1


def test_no_secret_in_reprs(pm_sim):
    _, url = pm_sim()
    stores: list[Any] = [
        jira_store(url),
        tempo_store(url),
        tapd_store(url),
        zentao_store(url),
    ]
    for store in stores:
        text = repr(store) + repr(vars(store))
        assert "sim-token" not in text and "sim-pass" not in text


def test_threads_share_a_store(pm_sim):
    sim, url = pm_sim()
    store = zentao_store(url)
    people = employees(sim, "zentao", 4)
    errors: list[BaseException] = []

    def work(person: str) -> None:
        try:
            store.create(plan(person, "7", 1800))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.list_worklogs(people, ["7"], DAY, DAY)) == 4
    assert sim.calls()["logins"] == 5  # the admin once, each employee once
