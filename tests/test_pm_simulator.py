"""Contract tests of the PM simulator (Jira, Tempo, TAPD, ZenTao): real HTTP on loopback, as in
contracts/pm-systems.md."""

from __future__ import annotations

import contextlib
import re
import threading
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from attendance_pipeline.china_time import SHANGHAI
from attendance_pipeline.simulators.dingtalk import Company
from attendance_pipeline.simulators.pm import Directory, PMSimConfig, PMSimulator, main_pm
from tests.sim_cli import serve_cli_until_sigterm

SimFactory = Callable[..., tuple[PMSimulator, str]]
TODAY = date(2026, 11, 20)
SIM = ("sim-user", "sim-token")
BEARER = {"Authorization": "Bearer sim-token"}
FLAGS = {"adjustEstimate": "leave", "notifyUsers": "false"}
JIRA_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0800$")


@pytest.fixture
def start(pm_sim) -> SimFactory:
    """start(**config) -> (sim, url): the shared `pm_sim` factory (tests/conftest.py)."""
    return pm_sim


@pytest.fixture
def pm(start: SimFactory) -> tuple[PMSimulator, str]:
    return start()


def adf(text: str) -> dict[str, Any]:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


def jira_post(
    url: str,
    issue: str = "ATT-1",
    *,
    version: int = 3,
    started: str = "2026-11-03T09:00:00.000+0800",
    seconds: int = 28800,
    comment: Any = None,
    properties: list[dict[str, Any]] | None = None,
    params: dict[str, str] | None = None,
    auth: tuple[str, str] = SIM,
) -> requests.Response:
    body: dict[str, Any] = {"started": started, "timeSpentSeconds": seconds}
    if comment is not None:
        body["comment"] = comment
    if properties is not None:
        body["properties"] = properties
    return requests.post(
        f"{url}/rest/api/{version}/issue/{issue}/worklog",
        params=FLAGS if params is None else params,
        json=body,
        auth=auth,
        timeout=5,
    )


def employee(sim: PMSimulator, via: str = "email") -> Any:
    return next(a for a in sim.directory.accounts if a.via == via)


def tempo_body(sim: PMSimulator, **overrides: Any) -> dict[str, Any]:
    body = {
        "issueId": 10001,
        "timeSpentSeconds": 3600,
        "startDate": "2026-11-03",
        "startTime": "09:00:00",
        "description": "work [att:0123456789abcdef]",
        "authorAccountId": employee(sim).account_id,
        "attributes": [{"key": "_attendance_", "value": "0123456789abcdef"}],
    }
    return {**body, **overrides}


def tapd_post(url: str, **fields: str) -> dict[str, Any]:
    form = {
        "workspace_id": "100",
        "entity_type": "story",
        "entity_id": "1001",
        "timespent": "8",
        "owner": "",
        "spentdate": "2026-11-03",
        "memo": "work",
        **fields,
    }
    reply = requests.post(f"{url}/timesheets", data=form, auth=SIM, timeout=5)
    assert reply.status_code == 200, reply.text
    payload: dict[str, Any] = reply.json()
    return payload


def zentao_login(url: str, account: str, password: str | None = None) -> requests.Response:
    body = {"account": account, "password": password or f"sim-pass-{account}"}
    return requests.post(f"{url}/api.php/v1/tokens", json=body, timeout=5)


def zentao_token(url: str, account: str) -> dict[str, str]:
    reply = zentao_login(url, account)
    assert reply.status_code == 201, reply.text
    return {"Token": reply.json()["token"]}


def estimate(url: str, token: dict[str, str], task: int = 1, **arrays: Any) -> Any:
    body = {"dates": ["2026-11-03"], "consumed": [8], "left": [10], "work": ["w"], **arrays}
    return requests.post(
        f"{url}/api.php/v1/tasks/{task}/estimate", json=body, headers=token, timeout=5
    )


# ------------------------------------------------------------------------- auth


def test_jira_auth(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    me = f"{url}/rest/api/3/myself"
    missing = requests.get(me, timeout=5)
    assert missing.status_code == 401
    assert missing.json()["errorMessages"]
    assert requests.get(me, auth=("sim-user", "nope"), timeout=5).status_code == 401
    assert requests.get(me, headers={"Authorization": "Bearer x"}, timeout=5).status_code == 401
    service = sim.directory.service.account_id
    assert requests.get(me, auth=SIM, timeout=5).json()["accountId"] == service
    assert requests.get(me, headers=BEARER, timeout=5).json()["accountId"] == service
    person = employee(sim)
    mine = requests.get(me, auth=(person.email, "sim-token"), timeout=5).json()
    assert mine["accountId"] == person.account_id


def test_tempo_tapd_zentao_auth(pm: tuple[PMSimulator, str]) -> None:
    _, url = pm
    tempo = requests.get(f"{url}/4/worklogs", auth=SIM, timeout=5)
    assert tempo.status_code == 401 and tempo.json()["errors"][0]["message"]
    assert requests.get(f"{url}/4/worklogs", headers=BEARER, timeout=5).status_code == 200
    tapd = requests.get(f"{url}/timesheets", params={"workspace_id": "100"}, timeout=5)
    assert tapd.status_code == 401 and tapd.json()["status"] == 0
    bearer = requests.get(f"{url}/timesheets", params={"workspace_id": 100}, headers=BEARER)
    assert bearer.status_code == 401
    ok = requests.get(f"{url}/timesheets", params={"workspace_id": "100"}, auth=SIM, timeout=5)
    assert ok.json() == {"status": 1, "data": [], "info": "success"}
    for headers in ({}, {"Token": "not-a-token"}):
        zentao = requests.get(f"{url}/api.php/v1/users", headers=headers, timeout=5)
        assert zentao.status_code == 401 and "error" in zentao.json()


# ------------------------------------------------------------------------- Jira


def test_jira_create_answers_the_worklog_authored_by_the_caller(
    pm: tuple[PMSimulator, str],
) -> None:
    sim, url = pm
    reply = jira_post(url, comment=adf("hello"))
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["issueId"] == "10001" and body["id"].isdigit()
    assert body["author"]["accountId"] == sim.directory.service.account_id
    assert body["timeSpentSeconds"] == 28800 and body["timeSpent"] == "1d"
    assert body["started"] == "2026-11-03T09:00:00.000+0800"
    assert body["comment"] == adf("hello")
    assert JIRA_TIME.match(body["created"]) and JIRA_TIME.match(body["updated"])
    person = employee(sim)
    own = jira_post(url, auth=(person.email, "sim-token"))
    assert own.json()["author"]["accountId"] == person.account_id
    truth = {w["id"]: w for w in sim.worklogs("jira")}
    assert truth[body["id"]]["text"] == "hello"
    assert truth[body["id"]]["work_date"] == "2026-11-03"
    assert truth[body["id"]]["issue"] == "ATT-1"


@pytest.mark.parametrize(
    "started",
    [
        "2026-11-03T09:00:00+0800",
        "2026-11-03T09:00:00.000+08:00",
        "2026-11-03 09:00:00.000+0800",
        "2026-11-03T09:00:00.000Z",
        "2026-11-03T09:00:00.00+0800",
        "2026-11-03",
        "2026-02-30T09:00:00.000+0800",
    ],
)
def test_jira_started_format_is_strict(pm: tuple[PMSimulator, str], started: str) -> None:
    sim, url = pm
    reply = jira_post(url, started=started)
    assert reply.status_code == 400
    assert reply.json()["errorMessages"] == [] and "started" in reply.json()["errors"]
    assert sim.worklogs("jira") == []


def test_jira_started_other_offset_is_the_same_instant(pm: tuple[PMSimulator, str]) -> None:
    _, url = pm
    reply = jira_post(url, started="2026-11-03T01:00:00.000+0000")
    assert reply.status_code == 201
    assert reply.json()["started"] == "2026-11-03T09:00:00.000+0800"


def test_jira_time_spent_rules(pm: tuple[PMSimulator, str]) -> None:
    _, url = pm
    under = jira_post(url, seconds=59)
    assert under.status_code == 400 and under.json()["errors"]
    assert jira_post(url, seconds=60).status_code == 201
    missing = requests.post(
        f"{url}/rest/api/3/issue/ATT-1/worklog",
        params=FLAGS,
        json={"started": "2026-11-03T09:00:00.000+0800"},
        auth=SIM,
        timeout=5,
    )
    assert missing.status_code == 400


def test_jira_unknown_issue_is_404(pm: tuple[PMSimulator, str]) -> None:
    _, url = pm
    assert jira_post(url, "ATT-99").status_code == 404
    listed = requests.get(f"{url}/rest/api/3/issue/NOPE-1/worklog", auth=SIM, timeout=5)
    assert listed.status_code == 404 and listed.json()["errorMessages"]
    by_id = jira_post(url, "10002")  # an issue id works like its key
    assert by_id.status_code == 201 and by_id.json()["issueId"] == "10002"


def test_jira_comment_is_a_document_in_v3_and_a_string_in_v2(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    assert jira_post(url, comment="plain").status_code == 400
    assert jira_post(url, version=2, comment=adf("doc")).status_code == 400
    v2 = jira_post(url, version=2, comment="line one\nline two")
    assert v2.status_code == 201 and v2.json()["comment"] == "line one\nline two"
    as_v3 = requests.get(
        f"{url}/rest/api/3/issue/ATT-1/worklog/{v2.json()['id']}", auth=SIM, timeout=5
    ).json()
    assert as_v3["comment"]["type"] == "doc" and len(as_v3["comment"]["content"]) == 2
    assert sim.worklogs("jira")[0]["text"] == "line one\nline two"


def test_jira_properties_round_trip_with_expand(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    prop = {"key": "attendance", "value": {"key": "0123456789abcdef", "userid": "u1"}}
    created = jira_post(url, properties=[prop]).json()
    listing = f"{url}/rest/api/3/issue/ATT-1/worklog"
    plain = requests.get(listing, auth=SIM, timeout=5).json()["worklogs"][0]
    assert "properties" not in plain
    expanded = requests.get(listing, params={"expand": "properties"}, auth=SIM, timeout=5)
    assert expanded.json()["worklogs"][0]["properties"] == [prop]

    prop_url = f"{listing}/{created['id']}/properties/attendance"
    assert requests.put(prop_url, json={"key": "new"}, auth=SIM, timeout=5).status_code == 200
    extra = requests.put(f"{listing}/{created['id']}/properties/other", json=[1], auth=SIM)
    assert extra.status_code == 201
    assert requests.get(prop_url, auth=SIM, timeout=5).json() == {
        "key": "attendance",
        "value": {"key": "new"},
    }
    assert sim.worklogs("jira")[0]["properties"] == {"attendance": {"key": "new"}, "other": [1]}
    too_big = requests.put(prop_url, json="x" * 40_000, auth=SIM, timeout=5)
    assert too_big.status_code == 400
    assert requests.delete(prop_url, auth=SIM, timeout=5).status_code == 204
    assert requests.get(prop_url, auth=SIM, timeout=5).status_code == 404


def test_jira_update_and_delete(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    created = jira_post(url).json()
    one = f"{url}/rest/api/3/issue/ATT-1/worklog/{created['id']}"
    updated = requests.put(one, params=FLAGS, json={"timeSpentSeconds": 3600}, auth=SIM)
    assert updated.status_code == 200
    assert updated.json()["timeSpentSeconds"] == 3600
    assert updated.json()["started"] == created["started"]
    assert (
        requests.put(one, params=FLAGS, json={"timeSpentSeconds": 30}, auth=SIM).status_code == 400
    )
    elsewhere = f"{url}/rest/api/3/issue/ATT-2/worklog/{created['id']}"
    assert requests.delete(elsewhere, params=FLAGS, auth=SIM, timeout=5).status_code == 404
    assert requests.delete(one, params=FLAGS, auth=SIM, timeout=5).status_code == 204
    assert requests.get(one, auth=SIM, timeout=5).status_code == 404
    assert requests.delete(one, params=FLAGS, auth=SIM, timeout=5).status_code == 404
    assert sim.worklogs("jira") == []


def test_jira_list_window_and_paging(pm: tuple[PMSimulator, str]) -> None:
    _, url = pm
    for day in (2, 3, 4, 5):
        assert jira_post(url, started=f"2026-11-0{day}T09:00:00.000+0800").status_code == 201

    def ms(day: int) -> int:
        return int(datetime(2026, 11, day, tzinfo=SHANGHAI).timestamp() * 1000)

    listing = f"{url}/rest/api/3/issue/ATT-1/worklog"
    window = {"startedAfter": ms(3), "startedBefore": ms(5)}  # the 3rd and the 4th
    page = requests.get(listing, params={**window, "maxResults": 1}, auth=SIM, timeout=5).json()
    assert (page["startAt"], page["maxResults"], page["total"]) == (0, 1, 2)
    assert page["worklogs"][0]["started"].startswith("2026-11-03")
    second = requests.get(
        listing, params={**window, "maxResults": 1, "startAt": 1}, auth=SIM, timeout=5
    ).json()
    assert second["worklogs"][0]["started"].startswith("2026-11-04")
    assert requests.get(listing, auth=SIM, timeout=5).json()["total"] == 4


def test_jira_estimate_and_notify_flags_are_counted(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    created = jira_post(url).json()
    assert (sim.calls()["estimate_changed"], sim.calls()["notified"]) == (0, 0)
    one = f"{url}/rest/api/3/issue/ATT-1/worklog/{created['id']}"
    assert jira_post(url, params={}).status_code == 201  # accepted, but counted
    requests.put(one, params={"notifyUsers": "false"}, json={"timeSpentSeconds": 120}, auth=SIM)
    requests.delete(one, params={"adjustEstimate": "leave"}, auth=SIM, timeout=5)
    calls = sim.calls()
    assert (calls["estimate_changed"], calls["notified"]) == (2, 2)
    assert calls["by_route"]["POST /rest/api/3/issue/{key}/worklog"] == 2
    assert calls["writes"] == 4


def test_jira_users_v3_v2_and_paging(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    v3 = requests.get(f"{url}/rest/api/3/users/search", auth=SIM, timeout=5).json()
    assert len(v3) == 50  # Jira's default page
    everyone = requests.get(
        f"{url}/rest/api/3/users/search", params={"maxResults": 1000}, auth=SIM, timeout=5
    ).json()
    assert everyone == sim.users("jira")
    assert {"accountId", "displayName", "active"} <= set(everyone[1])
    assert all("name" not in u for u in everyone)  # Cloud hides logins
    dc = requests.get(
        f"{url}/rest/api/2/user/search",
        params={"username": ".", "maxResults": "1000"},
        auth=SIM,
        timeout=5,
    ).json()
    assert [u["name"] for u in dc] == [a.login for a in sim.directory.accounts]
    assert [u["active"] for u in dc].count(False) == 1  # the former employee


def test_jira_parallel_writes_to_one_issue_are_detected(start: SimFactory) -> None:
    sim, url = start(latency_ms=60)
    threads = [threading.Thread(target=jira_post, args=(url,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sim.calls()["parallel_issue_writes"] == 1
    jira_post(url, "ATT-1")
    jira_post(url, "ATT-1")
    assert sim.calls()["parallel_issue_writes"] == 1


# ------------------------------------------------------------------------- Tempo


def test_tempo_create_update_delete(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    reply = requests.post(f"{url}/4/worklogs", json=tempo_body(sim), headers=BEARER, timeout=5)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    worklog_id = body["tempoWorklogId"]
    assert body["author"]["accountId"] == employee(sim).account_id
    assert body["issue"]["id"] == 10001
    assert (body["startDate"], body["startTime"], body["timeSpentSeconds"]) == (
        "2026-11-03",
        "09:00:00",
        3600,
    )
    assert body["attributes"]["values"] == [{"key": "_attendance_", "value": "0123456789abcdef"}]
    one = f"{url}/4/worklogs/{worklog_id}"
    put = requests.put(one, json=tempo_body(sim, timeSpentSeconds=7200), headers=BEARER)
    assert put.status_code == 200 and put.json()["timeSpentSeconds"] == 7200
    assert sim.worklogs("tempo")[0]["seconds"] == 7200
    assert requests.delete(one, headers=BEARER, timeout=5).status_code == 204
    assert requests.get(one, headers=BEARER, timeout=5).status_code == 404
    assert sim.issues("tempo")[0] == "10001"


@pytest.mark.parametrize(
    "change",
    [
        {"issueId": 99999},
        {"issueId": "10001"},
        {"authorAccountId": "nobody"},
        {"attributes": [{"key": "_unknown_", "value": "x"}]},
        {"startDate": "03/11/2026"},
        {"startTime": "9:00"},
        {"timeSpentSeconds": 0},
    ],
)
def test_tempo_refuses_bad_worklogs(pm: tuple[PMSimulator, str], change: dict[str, Any]) -> None:
    sim, url = pm
    reply = requests.post(
        f"{url}/4/worklogs", json=tempo_body(sim, **change), headers=BEARER, timeout=5
    )
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["message"]


def test_tempo_refuses_an_inactive_author(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    former = next(a for a in sim.directory.accounts if not a.active)
    body = tempo_body(sim, authorAccountId=former.account_id)
    assert requests.post(f"{url}/4/worklogs", json=body, headers=BEARER).status_code == 400


def test_tempo_paging_metadata(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    for day in range(1, 6):
        body = tempo_body(sim, startDate=f"2026-11-0{day}")
        assert requests.post(f"{url}/4/worklogs", json=body, headers=BEARER).status_code == 200
    query = {"from": "2026-11-01", "to": "2026-11-05", "limit": "2"}
    first = requests.get(f"{url}/4/worklogs", params=query, headers=BEARER, timeout=5).json()
    assert first["metadata"]["count"] == 2 and first["metadata"]["offset"] == 0
    assert "offset=2" in first["metadata"]["next"]
    seen = [r["startDate"] for r in first["results"]]
    page = first
    while "next" in page["metadata"]:
        page = requests.get(page["metadata"]["next"], headers=BEARER, timeout=5).json()
        seen += [r["startDate"] for r in page["results"]]
    assert seen == [f"2026-11-0{d}" for d in range(1, 6)]
    assert page["metadata"]["count"] == 1 and "previous" in page["metadata"]
    window = {"from": "2026-11-02", "to": "2026-11-03", "limit": "5000"}
    capped = requests.get(f"{url}/4/worklogs", params=window, headers=BEARER).json()
    assert capped["metadata"]["limit"] == 1000 and capped["metadata"]["count"] == 2
    attributes = requests.get(f"{url}/4/work-attributes", headers=BEARER, timeout=5).json()
    assert [a["key"] for a in attributes["results"]] == ["_attendance_"]


# ------------------------------------------------------------------------- TAPD


def test_tapd_create_and_natural_key(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    owner = employee(sim).login
    created = tapd_post(url, owner=owner)
    assert created["status"] == 1 and created["info"] == "success"
    sheet = created["data"]["Timesheet"]
    assert {"id", "entity_type", "entity_id", "timespent", "spentdate", "owner", "memo"} <= set(
        sheet
    )
    assert (sheet["owner"], sheet["timespent"], sheet["entity_id"]) == (owner, "8", "1001")
    again = tapd_post(url, owner=owner, timespent="4")
    assert again == {"status": 0, "data": {}, "info": "timesheet exists"}
    assert [w["timespent"] for w in sim.worklogs("tapd")] == ["8"]
    assert tapd_post(url, owner=owner, spentdate="2026-11-04")["status"] == 1
    assert tapd_post(url, owner=owner, entity_type="task", entity_id="2001")["status"] == 1
    assert tapd_post(url, owner="nobody")["status"] == 0
    assert tapd_post(url, owner=owner, entity_id="9999")["status"] == 0
    assert tapd_post(url, owner=owner, workspace_id="7")["status"] == 0
    assert tapd_post(url, owner=owner, spentdate="2026-11-05", timespent="abc")["status"] == 0
    assert len(sim.worklogs("tapd")) == 3


def test_tapd_update_via_id(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    owner = employee(sim).login
    sheet_id = tapd_post(url, owner=owner)["data"]["Timesheet"]["id"]
    form = {"id": sheet_id, "workspace_id": "100"}
    updated = requests.post(
        f"{url}/timesheets", data={**form, "timespent": "7.5", "memo": "m2"}, auth=SIM
    ).json()
    assert updated["status"] == 1
    assert updated["data"]["Timesheet"]["timespent"] == "7.5"
    assert updated["data"]["Timesheet"]["id"] == sheet_id
    other = next(a.login for a in sim.directory.accounts if a.via == "email" and a.login != owner)
    for change in ({"owner": other}, {"spentdate": "2026-11-04"}, {"entity_id": "1002"}):
        moved = requests.post(f"{url}/timesheets", data={**form, **change}, auth=SIM).json()
        assert moved["status"] == 0, change
    unknown = requests.post(f"{url}/timesheets", data={**form, "id": "5"}, auth=SIM).json()
    assert unknown["status"] == 0
    assert [(w["timespent"], w["memo"]) for w in sim.worklogs("tapd")] == [("7.5", "m2")]


def test_tapd_delete_reports_partial_failure(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    owner = employee(sim).login
    first = tapd_post(url, owner=owner)["data"]["Timesheet"]["id"]
    second = tapd_post(url, owner=owner, spentdate="2026-11-04")["data"]["Timesheet"]["id"]
    other = tapd_post(url, owner=owner, entity_id="1002")["data"]["Timesheet"]["id"]
    delete = f"{url}/timesheets/delete_timesheets"
    mixed = requests.post(
        delete, data={"workspace_id": "100", "cost_ids[]": [first, other]}, auth=SIM
    ).json()
    assert mixed["status"] == 0  # two entities in one call
    partial = requests.post(
        delete, data={"workspace_id": "100", "cost_ids[]": [first, "999"]}, auth=SIM
    ).json()
    assert partial["status"] == 1
    assert partial["data"]["data"] == {"success": [first], "failed": ["999"]}
    many = [str(i) for i in range(101)]
    too_many = requests.post(delete, data={"workspace_id": "100", "cost_ids[]": many}, auth=SIM)
    assert too_many.json()["status"] == 0
    assert sorted(w["id"] for w in sim.worklogs("tapd")) == sorted([second, other])


def test_tapd_list_filters_and_pages(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    owners = [a.login for a in sim.directory.accounts if a.via == "email"][:2]
    for day in range(1, 6):
        tapd_post(url, owner=owners[0], spentdate=f"2026-11-0{day}")
    tapd_post(url, owner=owners[1], spentdate="2026-11-02")

    def listing(**params: Any) -> list[dict[str, Any]]:
        reply = requests.get(
            f"{url}/timesheets", params={"workspace_id": "100", **params}, auth=SIM, timeout=5
        ).json()
        assert reply["status"] == 1
        return [item["Timesheet"] for item in reply["data"]]

    window = listing(owner=owners[0], spentdate="2026-11-02~2026-11-04")
    assert [s["spentdate"] for s in window] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert len(listing(spentdate="2026-11-02")) == 2
    pages = [listing(owner=owners[0], limit=2, page=p) for p in (1, 2, 3)]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert len(listing(limit=500)) == 6  # capped at 200, all fit


def test_tapd_unknown_path_answers_hello_world(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    for method, path in (("GET", "/timesheet"), ("POST", "/timesheets/delete"), ("GET", "/")):
        reply = requests.request(method, f"{url}{path}", auth=SIM, timeout=5)
        assert reply.status_code == 200
        assert reply.text == "Hello world"
        assert reply.headers["Content-Type"].startswith("text/html")
    assert sim.calls()["unmatched"] == 3


def test_tapd_users_and_entities(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    reply = requests.get(
        f"{url}/workspaces/users", params={"workspace_id": "100"}, auth=SIM, timeout=5
    ).json()
    assert reply["status"] == 1 and reply["info"] == "success"
    members = [item["UserWorkspace"] for item in reply["data"]]
    assert members == sim.users("tapd")
    assert {"user", "name", "email"} <= set(members[0])
    stories = requests.get(f"{url}/stories", params={"workspace_id": "100"}, auth=SIM).json()
    assert [s["Story"]["id"] for s in stories["data"]] == [str(i) for i in range(1001, 1009)]
    assert sim.issues("tapd")[-1] == "task:2004"


# ------------------------------------------------------------------------- ZenTao


def test_zentao_token_flow(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    admin = zentao_login(url, "sim-user", "sim-token")
    assert admin.status_code == 201 and admin.json()["token"]
    token = {"Token": admin.json()["token"]}
    users = requests.get(f"{url}/api.php/v1/users", headers=token, timeout=5).json()
    assert users["users"] == sim.users("zentao")
    assert {"account", "realname", "email"} <= set(users["users"][0])
    paged = requests.get(
        f"{url}/api.php/v1/users", params={"limit": 10, "page": 2}, headers=token, timeout=5
    ).json()
    assert paged["users"] == users["users"][10:20] and paged["total"] == len(users["users"])
    person = employee(sim).login
    mine = requests.get(f"{url}/api.php/v1/user", headers=zentao_token(url, person)).json()
    assert mine["profile"]["account"] == person
    sim.expire_tokens()
    assert requests.get(f"{url}/api.php/v1/users", headers=token, timeout=5).status_code == 401


def test_zentao_lockout_after_five_failed_logins(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    person, other = [a.login for a in sim.directory.accounts if a.via == "email"][:2]
    for _ in range(5):
        wrong = zentao_login(url, person, "guess")
        assert wrong.status_code == 400 and "error" in wrong.json()
    locked = zentao_login(url, person)  # the right password, too late
    assert locked.status_code == 400 and "locked" in locked.json()["error"]
    assert zentao_login(url, other).status_code == 201
    assert sim.calls()["failed_logins"] == 5
    sim.unlock_accounts()
    assert zentao_login(url, person).status_code == 201


def test_zentao_efforts_belong_to_the_token_owner(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    person = employee(sim).login
    token = zentao_token(url, person)
    reply = estimate(url, token, account="sim-user")  # an account in the body is ignored
    assert reply.status_code == 200, reply.text
    assert reply.json()["id"] == 1 and reply.json()["left"] == 10
    efforts = requests.get(f"{url}/api.php/v1/tasks/1/estimate", headers=token).json()["effort"]
    assert [(e["account"], e["date"], e["consumed"], e["work"]) for e in efforts] == [
        (person, "2026-11-03", 8, "w")
    ]
    assert sim.worklogs("zentao")[0]["seconds"] == 8 * 3600
    task = requests.get(f"{url}/api.php/v1/tasks/1", headers=token, timeout=5).json()
    assert (task["left"], task["consumed"], task["status"]) == (10, 8, "doing")


def test_zentao_refuses_future_dates_and_bad_arrays(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    token = zentao_token(url, employee(sim).login)
    future = estimate(url, token, dates=["2026-11-21"])
    assert future.status_code == 400 and "future" in future.json()["error"]
    assert estimate(url, token, dates=["2026-11-20"]).status_code == 200  # today is fine
    assert estimate(url, token, consumed=[8, 1]).status_code == 400
    assert estimate(url, token, consumed=[0]).status_code == 400
    assert estimate(url, token, task=99).status_code == 404
    assert len(sim.worklogs("zentao")) == 1
    sim.set_today(date(2026, 11, 21))
    assert estimate(url, token, dates=["2026-11-21"]).status_code == 200


def test_zentao_left_zero_finishes_the_task(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    person = employee(sim).login
    token = zentao_token(url, person)
    done = estimate(url, token, task=3, left=[0])
    assert done.json()["status"] == "done" and done.json()["finishedBy"] == person
    assert sim.calls()["tasks_finished"] == 1


def test_zentao_has_no_route_to_edit_or_delete_an_effort(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    token = zentao_token(url, employee(sim).login)
    estimate(url, token)
    effort_id = sim.worklogs("zentao")[0]["id"]
    for method, path in (
        ("PUT", f"/api.php/v1/tasks/1/estimate/{effort_id}"),
        ("DELETE", f"/api.php/v1/tasks/1/estimate/{effort_id}"),
        ("PUT", f"/api.php/v1/efforts/{effort_id}"),
        ("DELETE", f"/api.php/v1/efforts/{effort_id}"),
        ("DELETE", "/api.php/v1/tasks/1/estimate"),
    ):
        reply = requests.request(method, f"{url}{path}", json={}, headers=token, timeout=5)
        assert reply.status_code == 404, (method, path)
    assert len(sim.worklogs("zentao")) == 1


# ------------------------------------------------------------------------- faults


def test_http5xx_and_rate_limit_write_nothing(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    sim.set_faults(http5xx=1.0, seed=1)
    statuses = {jira_post(url).status_code for _ in range(12)}
    assert statuses == {500, 503}
    listing = requests.get(f"{url}/rest/api/3/issue/ATT-1/worklog", auth=SIM, timeout=5)
    assert listing.status_code == 200  # reads are never faulted
    sim.set_faults(rate_limit=1.0, retry_after_s=0.05, seed=2)
    replies = [jira_post(url) for _ in range(12)]
    assert {r.status_code for r in replies} == {429, 503}
    assert all(r.headers["Retry-After"] == "0.05" for r in replies)
    tapd = requests.post(f"{url}/timesheets", data={"workspace_id": "100"}, auth=SIM, timeout=5)
    assert tapd.status_code == 429 and tapd.headers["Retry-After"] == "0.05"
    assert sim.worklogs("jira") == [] and sim.worklogs("tapd") == []
    assert sim.calls()["faults"] == {"http5xx": 12, "rate_limit": 13, "lost_reply": 0}


def test_lost_reply_commits_the_write(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    sim.set_faults(lost_reply=1.0, seed=4)
    outcomes: Counter[str] = Counter()
    for _ in range(8):
        try:
            reply = jira_post(url)
            outcomes[str(reply.status_code)] += 1
        except requests.ConnectionError:
            outcomes["dropped"] += 1
    assert set(outcomes) == {"504", "dropped"}
    assert len(sim.worklogs("jira")) == 8
    token = zentao_token(url, employee(sim).login)  # logins are not writes: never faulted
    for _ in range(3):
        with contextlib.suppress(requests.ConnectionError):
            estimate(url, token)
    assert len(sim.worklogs("zentao")) == 3


def test_faults_follow_their_seed(start: SimFactory) -> None:
    def run() -> list[int]:
        sim, url = start()
        sim.set_faults(http5xx=0.3, rate_limit=0.3, retry_after_s=0.01, seed=3)
        return [jira_post(url).status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert {201, 429} <= set(first)


def test_fault_rate_spreads_over_kinds(start: SimFactory) -> None:
    sim, _ = start(fault_rate=0.3)
    assert sim.faults() == {
        "http5xx": pytest.approx(0.1),
        "rate_limit": pytest.approx(0.1),
        "lost_reply": pytest.approx(0.1),
        "retry_after_s": 1.0,
    }
    with pytest.raises(ValueError):
        sim.set_faults(http5xx=0.7, rate_limit=0.7)


# ------------------------------------------------------------------------- state and truth


def test_state_persists_in_a_sqlite_file(start: SimFactory, tmp_path: Path) -> None:
    state = tmp_path / "pm.sqlite"
    sim, url = start(state_path=state)
    person = employee(sim)
    jira_id = jira_post(url, properties=[{"key": "attendance", "value": {"k": 1}}]).json()["id"]
    tapd_post(url, owner=person.login)
    estimate(url, zentao_token(url, person.login))
    requests.post(f"{url}/4/worklogs", json=tempo_body(sim), headers=BEARER, timeout=5)
    before = {s: sim.worklogs(s) for s in ("jira", "tempo", "tapd", "zentao")}
    requests.delete(f"{url}/rest/api/3/issue/ATT-1/worklog/{jira_id}", params=FLAGS, auth=SIM)

    again, url2 = start(state_path=state)
    after = {s: again.worklogs(s) for s in ("jira", "tempo", "tapd", "zentao")}
    assert after == {**before, "jira": []}
    assert all(after[s] for s in ("tempo", "tapd", "zentao"))
    task = requests.get(f"{url2}/api.php/v1/tasks/1", headers=zentao_token(url2, person.login))
    assert task.json()["consumed"] == 8
    newer = jira_post(url2).json()["id"]
    assert int(newer) > int(jira_id)  # ids are never reused
    with pytest.raises(ValueError, match="seed"):
        PMSimulator(PMSimConfig(seed=8, employees=60, state_path=state))


def test_edit_worklog_by_hand_shows_through_the_api(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    person = employee(sim)
    jira_id = jira_post(url).json()["id"]
    tempo = requests.post(f"{url}/4/worklogs", json=tempo_body(sim), headers=BEARER).json()
    tapd_id = tapd_post(url, owner=person.login)["data"]["Timesheet"]["id"]
    estimate(url, zentao_token(url, person.login))
    zentao_id = sim.worklogs("zentao")[0]["id"]
    for system, remote_id in (
        ("jira", jira_id),
        ("tempo", str(tempo["tempoWorklogId"])),
        ("tapd", tapd_id),
        ("zentao", zentao_id),
    ):
        sim.edit_worklog(system, remote_id, 5400)
        [truth] = sim.worklogs(system)
        assert truth["seconds"] == 5400 and truth["id"] == remote_id, system
        assert {"issue", "author", "work_date", "text"} <= set(truth)
    one = requests.get(f"{url}/rest/api/3/issue/ATT-1/worklog/{jira_id}", auth=SIM).json()
    assert one["timeSpentSeconds"] == 5400
    sheets = requests.get(f"{url}/timesheets", params={"workspace_id": "100"}, auth=SIM).json()
    assert sheets["data"][0]["Timesheet"]["timespent"] == "1.5"
    with pytest.raises(KeyError):
        sim.edit_worklog("jira", "1", 60)
    with pytest.raises(ValueError):
        sim.users("redmine")


def test_accounts_derive_from_the_dingtalk_company() -> None:
    users = Company(7, 60).users()
    directory = Directory(7, 60)
    by_user = directory.truth_mapping()
    emails = {a.email for a in directory.accounts if a.email}
    logins = {a.login for a in directory.accounts}
    missing = [u for u in users if by_user[u["userid"]]["via"] is None]
    job = [u for u in users if by_user[u["userid"]]["via"] == "job_number"]
    matched = [u for u in users if by_user[u["userid"]]["via"] == "email"]
    assert 1 <= len(missing) <= 5 and 1 <= len(job) <= 3
    for u in missing:
        assert (u.get("email") or u.get("org_email") or "").lower() not in emails
    for u in job:
        assert u["job_number"] in logins
        assert str(u.get("email") or u.get("org_email")).lower() not in emails
    for u in matched:
        assert str(u.get("email") or u.get("org_email")).lower() in emails
    assert len(matched) >= 45
    names = Counter(a.name for a in directory.accounts if a.kind in ("employee", "contractor"))
    twins = [n for n, c in names.items() if c == 2]
    assert directory.twin_name in twins
    assert [a.account_id for a in Directory(7, 60).accounts] == [
        a.account_id for a in directory.accounts
    ]


def test_every_system_lists_the_same_people(pm: tuple[PMSimulator, str]) -> None:
    sim, _ = pm
    jira_mails = {u.get("emailAddress") for u in sim.users("jira")}
    tapd_mails = {u["email"] for u in sim.users("tapd")}
    zentao_mails = {u["email"] for u in sim.users("zentao")}
    assert tapd_mails - {""} <= jira_mails and zentao_mails - {""} <= jira_mails
    zentao_names = Counter(u["realname"] for u in sim.users("zentao"))
    assert zentao_names[sim.directory.twin_name] == 2
    assert sim.issues("jira") == [f"ATT-{i}" for i in range(1, 13)]
    assert sim.issues("zentao") == [str(i) for i in range(1, 13)]


def test_admin_endpoints(pm: tuple[PMSimulator, str]) -> None:
    sim, url = pm
    jira_id = jira_post(url).json()["id"]
    calls = requests.get(f"{url}/_sim/calls", timeout=5).json()
    assert calls["by_route"] == {"POST /rest/api/3/issue/{key}/worklog": 1}
    assert (calls["writes"], calls["reads"]) == (1, 0)
    truth = requests.get(f"{url}/_sim/worklogs", params={"system": "jira"}, timeout=5).json()
    assert [w["id"] for w in truth] == [jira_id]
    edit = {"system": "jira", "id": jira_id, "seconds": 120}
    assert requests.post(f"{url}/_sim/edit", json=edit, timeout=5).status_code == 200
    assert sim.worklogs("jira")[0]["seconds"] == 120
    missing = {"system": "jira", "id": "1", "seconds": 120}
    assert requests.post(f"{url}/_sim/edit", json=missing, timeout=5).status_code == 404
    faults = {"rate_limit": 0.5, "retry_after_s": 0.1}
    assert requests.post(f"{url}/_sim/faults", json=faults).json()["rate_limit"] == 0.5
    assert sim.faults()["retry_after_s"] == 0.1
    clock = requests.post(f"{url}/_sim/clock", json={"today": "2026-12-01"}, timeout=5).json()
    assert clock == {"today": "2026-12-01", "pinned": True}
    issues = requests.get(f"{url}/_sim/issues", params={"system": "tapd"}, timeout=5).json()
    assert issues[0] == "story:1001"
    assert requests.get(f"{url}/_sim/users", timeout=5).status_code == 400
    mapping = requests.get(f"{url}/_sim/mapping", timeout=5).json()
    assert len(mapping) == 60
    assert requests.post(f"{url}/_sim/reset-calls", timeout=5).json() == {"ok": True}
    assert sim.calls()["by_route"] == {}
    assert requests.get(f"{url}/_sim/nothing", timeout=5).status_code == 404


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    code = (
        "import sys; from attendance_pipeline.simulators.pm import main_pm; "
        f"sys.exit(main_pm(['--port', '0', '--state', {str(tmp_path / 's.db')!r}]))"
    )

    def check(url: str) -> None:
        assert jira_post(url).status_code == 201

    serve_cli_until_sigterm(code, check)
    assert (tmp_path / "s.db").exists()


def test_cli_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main_pm(["--fault-rate", "2"])
    assert exc.value.code == 2
    assert "--fault-rate" in capsys.readouterr().err
