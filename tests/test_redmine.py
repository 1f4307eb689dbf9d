"""RedmineWorklogStore against a real Redmine 5 (Debian's package, started by scripts/redmine)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
import requests

from attendance_pipeline.pm.base import (
    OutcomeUnknown,
    PlannedWorklog,
    PMError,
    key_tag,
    worklog_key,
)
from attendance_pipeline.pm.redmine import RedmineWorklogStore, seconds_from_hours, tagged_comment
from attendance_pipeline.pm.redmine_seed import seed_redmine
from tests.redmine_fixture import RedmineProject, RedmineServer

pytestmark = pytest.mark.redmine

START, END = date(2026, 11, 2), date(2026, 11, 6)


def plan(
    project: RedmineProject,
    day: date,
    *,
    user: int = 0,
    issue: int = 0,
    minutes: int = 480,
    comment: str = "",
    kind: str = "work",
) -> PlannedWorklog:
    pm_user, issue_id = project.user_ids[user], project.issue_ids[issue]
    return PlannedWorklog(
        worklog_key=worklog_key(f"ding-{pm_user}", day, issue_id, kind),
        userid=f"ding-{pm_user}",
        work_date=day,
        pm_user=pm_user,
        issue=issue_id,
        seconds=minutes * 60,
        kind=kind,
        comment=comment,
    )


def store_for(redmine: RedmineServer, key: str | None = None, **kw) -> RedmineWorklogStore:
    return RedmineWorklogStore(redmine.url, key or redmine.admin_key, **kw)


def raw_entry(redmine: RedmineServer, entry_id: str) -> dict:
    response = redmine.get(f"time_entries/{entry_id}.json")
    response.raise_for_status()
    return response.json()["time_entry"]


def test_create_list_update_delete_round_trip(redmine, redmine_project):
    store = store_for(redmine)
    project = redmine_project
    planned = plan(project, date(2026, 11, 3), minutes=479, comment="Ann 2026-11-03 work: 8 h")

    created = store.create(planned)
    assert created.worklog_key == planned.worklog_key
    assert (created.pm_user, created.issue, created.work_date) == (
        planned.pm_user,
        planned.issue,
        planned.work_date,
    )
    assert created.seconds == 479 * 60  # 7.9833 h, read back as 7.98: whole minutes are exact
    assert created.comment == planned.comment
    raw = raw_entry(redmine, created.remote_id)
    assert raw["comments"] == f"{planned.comment} {key_tag(planned.worklog_key)}"
    assert raw["user"]["id"] == int(planned.pm_user)
    assert raw["activity"]["name"] == "Development"

    assert store.list_worklogs(project.user_ids, project.issue_ids, START, END) == [created]

    changed = PlannedWorklog(**{**planned.__dict__, "seconds": 150 * 60, "comment": "edited"})
    updated = store.update(created, changed)
    assert (updated.remote_id, updated.seconds, updated.comment) == (
        created.remote_id,
        9000,
        "edited",
    )
    assert store.list_worklogs(project.user_ids, project.issue_ids, START, END) == [updated]
    assert raw_entry(redmine, created.remote_id)["hours"] == 2.5

    store.delete(updated)
    assert store.list_worklogs(project.user_ids, project.issue_ids, START, END) == []
    store.delete(updated)  # already gone: a 404 is fine
    with pytest.raises(PMError, match="no longer exists"):
        store.update(updated, changed)


def test_update_moves_issue_and_date(redmine, redmine_project):
    store = store_for(redmine)
    project = redmine_project
    created = store.create(plan(project, date(2026, 11, 3)))
    moved = plan(project, date(2026, 11, 4), issue=1, user=1)
    moved = PlannedWorklog(**{**moved.__dict__, "worklog_key": created.worklog_key})
    store.update(created, moved)
    [listed] = store.list_worklogs(project.user_ids, project.issue_ids, START, END)
    assert (listed.remote_id, listed.pm_user, listed.issue, listed.work_date) == (
        created.remote_id,
        moved.pm_user,
        moved.issue,
        moved.work_date,
    )


def test_list_keeps_only_our_keys_users_issues_and_dates(redmine, redmine_project):
    store = store_for(redmine)
    project = redmine_project
    inside = [
        store.create(plan(project, START, minutes=60)),
        store.create(plan(project, END, minutes=90, user=1, issue=1)),
    ]
    store.create(plan(project, START - timedelta(days=1)))  # before the range
    store.create(plan(project, END + timedelta(days=1)))  # after the range
    store.create(plan(project, START, issue=3, kind="overtime"))  # an issue not asked for
    store.create(plan(project, START, user=2))  # a user not asked for
    # Logged by a person: no key in the comment.
    response = requests.post(
        f"{redmine.url}/time_entries.json",
        json={
            "time_entry": {
                "issue_id": int(project.issue_ids[0]),
                "user_id": int(project.user_ids[0]),
                "spent_on": START.isoformat(),
                "hours": 1.5,
                "activity_id": store.activity_id(),
                "comments": "reviewed the release [att:not-a-key]",
            }
        },
        headers={"X-Redmine-API-Key": redmine.admin_key},
        timeout=15,
    )
    assert response.status_code == 201, response.text

    listed = store.list_worklogs(project.user_ids[:2], project.issue_ids[:3], START, END)
    assert sorted(listed, key=lambda r: int(r.remote_id)) == inside
    assert [r.seconds for r in inside] == [3600, 5400]
    assert store.list_worklogs(project.user_ids[:2], project.issue_ids, END, END) == [inside[1]]
    assert store.list_worklogs([], project.issue_ids, START, END) == []


def test_list_pages_over_more_than_100_entries(redmine, redmine_project):
    store = store_for(redmine)
    project = redmine_project
    keys = set()
    for n in range(105):
        day = START + timedelta(days=n % 5)
        planned = plan(project, day, user=n % 2, issue=n % 4, minutes=15 + n, kind=f"k{n}")
        keys.add(store.create(planned).worklog_key)
    listed = store.list_worklogs(project.user_ids, project.issue_ids, START, END)
    assert len(listed) == 105
    assert {r.worklog_key for r in listed} == keys
    assert sorted(r.seconds for r in listed) == [(15 + n) * 60 for n in range(105)]


def test_manager_logs_time_for_another_member(redmine, redmine_project):
    project = redmine_project
    manager_key = redmine.api_key_of(project.user_ids[0])  # a Manager, not an administrator
    assert redmine.get("users/current.json", key=manager_key).json()["user"]["admin"] is False
    store = store_for(redmine, manager_key)
    created = store.create(plan(project, START, user=1))
    assert created.pm_user == project.user_ids[1]
    raw = raw_entry(redmine, created.remote_id)
    assert raw["user"]["id"] == int(project.user_ids[1])  # logged as the other member
    assert store.list_worklogs(project.user_ids, project.issue_ids, START, END) == [created]


def test_non_member_user_is_a_clear_error(redmine, redmine_project):
    project = redmine_project
    outsider = seed_redmine(
        redmine.url,
        redmine.admin_key,
        [{"login": f"out-{project.identifier}", "mail": f"out.{project.identifier}@example.com"}],
        project=f"{project.identifier}-other",
        issues=0,
    )["users"][f"out-{project.identifier}"]
    planned = PlannedWorklog(
        **{**plan(project, START).__dict__, "pm_user": str(outsider)},
    )
    with pytest.raises(PMError) as caught:
        store_for(redmine).create(planned)
    message = str(caught.value)
    assert not isinstance(caught.value, OutcomeUnknown)
    assert "User is invalid" in message
    assert "member of the issue's project" in message
    assert "Log spent time for other users" in message


def test_missing_issue_is_a_clear_error(redmine, redmine_project):
    planned = PlannedWorklog(**{**plan(redmine_project, START).__dict__, "issue": "99999999"})
    with pytest.raises(PMError, match="issue 99999999 must exist"):
        store_for(redmine).create(planned)


def test_bad_api_key_is_a_clear_error_without_the_key(redmine, redmine_project):
    bad = "0123456789abcdef0123456789abcdef01234567"
    store = store_for(redmine, bad, activity_id=9)
    for call in (
        lambda: store.list_worklogs(redmine_project.user_ids, ["1"], START, END),
        lambda: store.create(plan(redmine_project, START)),
        store.list_users,
    ):
        with pytest.raises(PMError) as caught:
            call()
        assert "Redmine rejected the API key (set REDMINE_API_KEY)" in str(caught.value)
        assert bad not in str(caught.value)
        assert not isinstance(caught.value, OutcomeUnknown)


class CountingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def request(self, *args, **kwargs):
        self.calls += 1
        return super().request(*args, **kwargs)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (END, START),  # reversed
        ("2026-11-02", END),  # a string, not a date
        (START, "2026-13-01"),
        (datetime(2026, 11, 2, 9), END),  # a datetime would reach Redmine with a time part
        (START, None),
    ],
)
def test_invalid_dates_are_refused_before_any_call(redmine, start, end):
    session = CountingSession()
    store = store_for(redmine, session=session)
    with pytest.raises(ValueError):
        store.list_worklogs(["1"], ["1"], start, end)
    assert session.calls == 0


def test_list_users_has_seeded_users_with_mails(redmine, redmine_project):
    users = {u.login: u for u in store_for(redmine).list_users()}
    assert users["admin"].pm_user == "1"
    for login, user_id in redmine_project.users.items():
        assert users[login].pm_user == user_id
        assert users[login].email == redmine_project.mails[login]
        assert users[login].active
    ann = next(login for login in redmine_project.users if login.startswith("ann-"))
    assert users[ann].name == "Ann Li"


def test_seed_is_idempotent(redmine, redmine_project):
    again = seed_redmine(
        redmine.url,
        redmine.admin_key,
        [{"login": login, "mail": mail} for login, mail in redmine_project.mails.items()],
        project=redmine_project.identifier,
        issues=4,
    )
    assert again["project_id"] == redmine_project.project_id
    assert [str(i) for i in again["issue_ids"]] == redmine_project.issue_ids
    assert {k: str(v) for k, v in again["users"].items()} == redmine_project.users


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback server that reads each request and closes without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    stop.set()
    thread.join()
    listener.close()


def test_lost_reply_on_write_is_outcome_unknown_and_reads_give_up(silent_server):
    store = RedmineWorklogStore(silent_server, "secret-key-123", activity_id=9, max_attempts=2)
    planned = PlannedWorklog("0123456789abcdef", "ding-1", START, "5", "7", 3600)
    with pytest.raises(OutcomeUnknown) as caught:
        store.create(planned)
    assert "secret-key-123" not in str(caught.value)
    with pytest.raises(PMError, match="gave up after 2 attempt") as gave_up:
        store.list_worklogs(["1"], ["1"], START, END)
    assert gave_up.value.retryable


def test_comment_is_one_line_and_fits_255_characters():
    key = "0123456789abcdef"
    text = tagged_comment("line one\nline two " + "x" * 400, key)
    assert len(text) == 255
    assert text.endswith(f"… {key_tag(key)}")
    assert "\n" not in text
    assert tagged_comment("", key) == key_tag(key)
    assert [seconds_from_hours(round(m / 60, 2)) for m in range(0, 600)] == [
        m * 60 for m in range(600)
    ]
