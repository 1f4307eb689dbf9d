"""Contract tests of the DingTalk simulator: real HTTP on loopback, as in contracts/dingtalk.md."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from attendance_pipeline.simulators.dingtalk import (
    Company,
    DingTalkSimConfig,
    DingTalkSimulator,
    main_dingtalk,
)
from tests.sim_cli import serve_cli_until_sigterm

SimFactory = Callable[..., tuple[DingTalkSimulator, str]]
CN = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 20)
DAY_MS = 86_400_000
APPROVALS = "/v1.0/attendance/approvals/query"


# ------------------------------------------------------------------------- helpers


def legacy_token(url: str, key: str = "sim-key", secret: str = "sim-secret") -> str:
    reply = requests.get(f"{url}/gettoken", params={"appkey": key, "appsecret": secret}, timeout=5)
    body = reply.json()
    assert body["errcode"] == 0, body
    return str(body["access_token"])


def new_token(url: str) -> str:
    body = {"appKey": "sim-key", "appSecret": "sim-secret"}
    reply = requests.post(f"{url}/v1.0/oauth2/accessToken", json=body, timeout=5)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["accessToken"])


def legacy(url: str, path: str, token: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{url}{path}", params={"access_token": token}, json=body, timeout=10)


def legacy_json(url: str, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = legacy(url, path, token, body)
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def att_body(
    users: list[str], d_from: date, d_to: date, offset: int = 0, limit: int = 50
) -> dict[str, Any]:
    return {
        "workDateFrom": f"{d_from.isoformat()} 00:00:00",
        "workDateTo": f"{d_to.isoformat()} 00:00:00",
        "userIdList": users,
        "offset": offset,
        "limit": limit,
        "isI18n": False,
    }


def attendance_all(url: str, token: str, users: list[str], d_from: date, d_to: date) -> list[Any]:
    out: list[Any] = []
    offset = 0
    while True:
        body = legacy_json(url, "/attendance/list", token, att_body(users, d_from, d_to, offset))
        assert body["errcode"] == 0, body
        out.extend(body["recordresult"])
        if not body["hasMore"]:
            return out
        offset += 50


def ms(d: date, hh: int = 0, mm: int = 0) -> int:
    return int(datetime(d.year, d.month, d.day, hh, mm, tzinfo=CN).timestamp() * 1000)


def approvals(
    url: str, token: str, users: list[str], t_from: int, t_to: int, **extra: Any
) -> requests.Response:
    body = {"userIds": ",".join(users), "fromDateTime": t_from, "toDateTime": t_to, **extra}
    headers = {"x-acs-dingtalk-access-token": token}
    return requests.post(f"{url}{APPROVALS}", json=body, headers=headers, timeout=10)


def userids(sim: DingTalkSimulator) -> list[str]:
    return [u["userid"] for u in sim.truth_users()]


def to_date(epoch_ms: int) -> date:
    return datetime.fromtimestamp(epoch_ms / 1000, CN).date()


def assert_no_nulls(value: Any) -> None:
    if isinstance(value, dict):
        for v in value.values():
            assert v is not None
            assert_no_nulls(v)
    elif isinstance(value, list):
        for v in value:
            assert_no_nulls(v)


# ------------------------------------------------------------------------- tokens


def test_token_flows_reuse_and_both_hosts(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim()
    t1 = legacy_token(url)
    assert new_token(url) == t1  # asking again while valid returns the same token
    body = requests.get(
        f"{url}/gettoken", params={"appkey": "sim-key", "appsecret": "sim-secret"}, timeout=5
    ).json()
    assert body["expires_in"] == 7200 and body["errmsg"] == "ok"
    reply = requests.post(
        f"{url}/v1.0/oauth2/accessToken", json={"appKey": "sim-key", "appSecret": "sim-secret"}
    )
    assert reply.json()["expireIn"] == 7200
    users = userids(sim)[:3]
    # One token works on both hosts.
    body = legacy_json(url, "/attendance/list", t1, att_body(users, TODAY - timedelta(3), TODAY))
    assert body["errcode"] == 0
    assert approvals(url, t1, users, ms(TODAY - timedelta(5)), ms(TODAY)).status_code == 200
    assert sim.calls()["by_api"]["gettoken"]["metered"] == 0  # token calls are not metered


def test_wrong_secret_both_flows(dingtalk_sim: SimFactory) -> None:
    _, url = dingtalk_sim()
    body = requests.get(f"{url}/gettoken", params={"appkey": "sim-key", "appsecret": "nope"}).json()
    assert body["errcode"] == 40001 and "access_token" not in body
    reply = requests.post(
        f"{url}/v1.0/oauth2/accessToken", json={"appKey": "sim-key", "appSecret": "nope"}
    )
    assert reply.status_code == 400
    assert reply.json()["code"] == "invalidClientIdOrSecret"
    assert {"code", "message", "requestid"} <= reply.json().keys()


def test_token_extension_and_expiry_on_both_hosts(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim(token_ttl_s=0.8)
    users = userids(sim)[:2]
    body = att_body(users, TODAY - timedelta(2), TODAY)
    t1 = legacy_token(url)
    time.sleep(0.45)
    assert new_token(url) == t1  # extended to about 1.25 s after the start
    time.sleep(0.45)  # 0.9 s: past the first expiry, inside the extension
    assert legacy_json(url, "/attendance/list", t1, body)["errcode"] == 0
    time.sleep(0.9)
    assert legacy_json(url, "/attendance/list", t1, body)["errcode"] == 42001
    reply = approvals(url, t1, users, ms(TODAY - timedelta(2)), ms(TODAY))
    assert reply.status_code == 400 and reply.json()["code"] == "InvalidAuthentication"
    t2 = legacy_token(url)
    assert t2 != t1
    assert legacy_json(url, "/attendance/list", t2, body)["errcode"] == 0


def test_expire_tokens_and_missing_token(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim()
    users = userids(sim)[:2]
    body = att_body(users, TODAY - timedelta(2), TODAY)
    token = new_token(url)
    assert requests.post(f"{url}/_sim/expire-tokens").json() == {"ok": True}
    assert legacy_json(url, "/attendance/list", token, body)["errcode"] == 42001
    assert approvals(url, token, users, ms(TODAY), ms(TODAY)).json()["code"] == (
        "InvalidAuthentication"
    )
    missing = requests.post(f"{url}/attendance/list", json=body).json()
    assert missing["errcode"] == 41001
    token = legacy_token(url)
    sim.expire_tokens()
    org = legacy_json(url, "/topapi/v2/department/listsubid", token, {"dept_id": 1})
    assert org["errcode"] == 42001


# ------------------------------------------------------------------------- org


def test_org_walk_one_level_at_a_time(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim()
    token = legacy_token(url)
    depts = {d["dept_id"]: d for d in sim.truth_departments()}
    assert 1 not in depts
    seen: dict[int, dict[str, Any]] = {}
    depth = {1: 0}
    frontier = [1]
    while frontier:
        parent = frontier.pop()
        ids = legacy_json(url, "/topapi/v2/department/listsubid", token, {"dept_id": parent})
        subs = legacy_json(url, "/topapi/v2/department/listsub", token, {"dept_id": parent})
        assert ids["errcode"] == 0 and subs["errcode"] == 0
        assert sorted(ids["result"]["dept_id_list"]) == sorted(d["dept_id"] for d in subs["result"])
        for d in subs["result"]:
            assert d["parent_id"] == parent  # one level only
            assert set(d) == {"dept_id", "name", "parent_id"}
            seen[d["dept_id"]] = d
            depth[d["dept_id"]] = depth[parent] + 1
            frontier.append(d["dept_id"])
    assert seen == depts
    assert max(depth.values()) >= 3  # at least two levels under the root
    unknown = legacy_json(url, "/topapi/v2/department/listsub", token, {"dept_id": 987654})
    assert unknown["errcode"] == 60003


def test_user_list_paging_limits_and_fields(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim(qps=1000)
    token = legacy_token(url)
    truth = {u["userid"]: u for u in sim.truth_users()}
    all_depts = [1, *(d["dept_id"] for d in sim.truth_departments())]
    listed: dict[str, list[int]] = defaultdict(list)
    for dept in all_depts:
        cursor = 0
        pages = 0
        while True:
            body = legacy_json(
                url, "/topapi/v2/user/list", token, {"dept_id": dept, "cursor": cursor, "size": 3}
            )
            assert body["errcode"] == 0, body
            result = body["result"]
            pages += 1
            for u in result["list"]:
                assert dept in u["dept_id_list"]  # direct members only
                listed[u["userid"]].append(dept)
                assert_no_nulls(u)
            if not result["has_more"]:
                assert "next_cursor" not in result
                break
            cursor = result["next_cursor"]
        if dept == 211:
            assert pages > 1  # the cursor really pages
    assert set(listed) == set(truth)
    doubles = [uid for uid, ds in listed.items() if len(ds) == 2]
    assert doubles, "nobody is in two departments"
    for uid in doubles:
        assert sorted(listed[uid]) == sorted(truth[uid]["dept_id_list"])
    # ~10% in two departments.
    assert 2 <= len(doubles) <= 15
    # Optional fields are absent (never null) for some users.
    for field in ("title", "job_number", "email", "mobile"):
        assert any(field not in u for u in truth.values()), field
        assert any(field in u for u in truth.values()), field
    assert all(isinstance(u["hired_date"], int) and u["active"] is True for u in truth.values())
    assert any(uid.startswith("0") for uid in truth)
    assert any(re.fullmatch(r"manager\d+", uid) for uid in truth)
    emails = [
        str(u.get("email") or u["org_email"])
        for u in truth.values()
        if u.keys() & {"email", "org_email"}
    ]
    assert len(emails) == len(set(emails))
    assert all(re.fullmatch(r"[a-z0-9]+@corp\.example", e) for e in emails)
    # The root lists only its direct members (the boss), not the whole company.
    root = legacy_json(url, "/topapi/v2/user/list", token, {"dept_id": 1, "cursor": 0, "size": 100})
    assert [u["boss"] for u in root["result"]["list"]] == [True]
    for size in (0, 101, None):
        bad = legacy_json(
            url, "/topapi/v2/user/list", token, {"dept_id": 211, "cursor": 0, "size": size}
        )
        assert bad["errcode"] == 40069


# ------------------------------------------------------------------------- attendance/list


def test_attendance_list_limits(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim()
    token = legacy_token(url)
    users = userids(sim)
    d_to = TODAY - timedelta(1)
    span8 = legacy_json(
        url, "/attendance/list", token, att_body(users[:5], d_to - timedelta(7), d_to)
    )
    assert span8["errcode"] == 41041
    span7 = legacy_json(
        url, "/attendance/list", token, att_body(users[:5], d_to - timedelta(6), d_to)
    )
    assert span7["errcode"] == 0
    too_many = legacy_json(url, "/attendance/list", token, att_body(users[:51], d_to, d_to))
    assert too_many["errcode"] == 40035
    for limit in (0, 51):
        bad = legacy_json(
            url, "/attendance/list", token, att_body(users[:5], d_to, d_to, limit=limit)
        )
        assert bad["errcode"] == 40035
    unknown = legacy_json(url, "/attendance/list", token, att_body(["nobody"], d_to, d_to))
    assert unknown == {**unknown, "errcode": 0, "recordresult": [], "hasMore": False}
    assert sim.calls()["by_api"]["attendance/list"]["metered"] == 2  # errors are not metered


def test_attendance_list_paging_order_and_shapes(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim()
    token = legacy_token(url)
    users = list(reversed(userids(sim)[:50]))
    d_from, d_to = date(2026, 11, 9), date(2026, 11, 15)
    got: list[dict[str, Any]] = []
    flags: list[bool] = []
    offset, limit = 0, 40
    while True:
        body = legacy_json(
            url, "/attendance/list", token, att_body(users, d_from, d_to, offset, limit)
        )
        assert len(body["recordresult"]) <= limit
        got.extend(body["recordresult"])
        flags.append(body["hasMore"])
        if not body["hasMore"]:
            break
        offset += limit
    assert flags == [i * limit + limit < len(got) for i in range(len(flags))]
    assert len(flags) == -(-len(got) // limit) > 1
    assert sorted(got, key=lambda r: r["id"]) == sim.truth_attendance(d_from, d_to, users)
    order = {u: i for i, u in enumerate(users)}
    keys = [(r["workDate"], order[r["userId"]], r["checkType"] != "OnDuty") for r in got]
    assert keys == sorted(keys)
    assert len({r["id"] for r in got}) == len(got)
    expected = {
        "id", "userId", "workDate", "checkType", "timeResult", "locationResult",
        "baseCheckTime", "userCheckTime", "sourceType", "groupId", "planId", "corpId",
    }  # fmt: skip
    optional = {"recordId", "procInstId", "approveId"}
    for r in got:
        assert expected <= r.keys() <= expected | optional
        assert r["workDate"] == ms(to_date(r["workDate"]))
        on, off = (10, 19) if r["groupId"] == 9002 else (9, 18)  # the two groups' shifts
        base = ms(to_date(r["workDate"]), on if r["checkType"] == "OnDuty" else off)
        assert r["baseCheckTime"] == base
        if r["timeResult"] == "NotSigned":
            assert "recordId" not in r
            assert r["sourceType"] == "SYSTEM" and r["userCheckTime"] == r["baseCheckTime"]
        if r["sourceType"] == "APPROVE":
            assert r["procInstId"] and r["approveId"]
    assert any(r["timeResult"] == "NotSigned" for r in got)


def test_attendance_nothing_today_future_or_older_than_180_days(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim()
    token = legacy_token(url)
    users = userids(sim)[:20]
    future = legacy_json(
        url, "/attendance/list", token, att_body(users, TODAY, TODAY + timedelta(6))
    )
    assert future["recordresult"] == []
    yesterday = legacy_json(
        url, "/attendance/list", token, att_body(users, TODAY - timedelta(1), TODAY)
    )
    assert yesterday["recordresult"] and all(
        to_date(r["workDate"]) == TODAY - timedelta(1) for r in yesterday["recordresult"]
    )
    old = date(2026, 5, 11)  # a workweek more than 180 days before 2026-11-20
    assert any(sim.company.attendance(u, old, TODAY) for u in users)  # the data exists...
    body = legacy_json(url, "/attendance/list", token, att_body(users, old, old + timedelta(4)))
    assert body["errcode"] == 0 and body["recordresult"] == []  # ...but is not served
    horizon = TODAY - timedelta(180)
    edge = attendance_all(url, token, users, horizon - timedelta(3), horizon + timedelta(3))
    assert edge and min(to_date(r["workDate"]) for r in edge) >= horizon


def test_calendar_workdays_holidays_and_tiaoxiu(dingtalk_sim: SimFactory) -> None:
    sim, _ = dingtalk_sim()
    days = {
        date(2026, 10, 10): True,  # 调休 Saturday
        date(2026, 9, 20): True,  # 调休 Sunday
        date(2026, 10, 5): False,  # National Day, a Monday
        date(2026, 10, 11): False,  # Sunday
        date(2026, 10, 12): True,
    }
    for d, workday in days.items():
        assert sim.company.is_workday(d) is workday
        recs = sim.truth_attendance(d, d)
        assert bool(recs) is workday, d
    assert sim.company.is_workday(date(2027, 3, 1)) is True  # outside chinese_calendar: Mon-Fri
    assert sim.company.is_workday(date(2027, 3, 6)) is False


# ------------------------------------------------------------------------- approvals


def test_approvals_query_limits_and_shapes(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim()
    token = new_token(url)
    users = userids(sim)
    t_to = ms(TODAY)
    t_from = t_to - 30 * DAY_MS
    ok = approvals(url, token, users[:50], t_from, t_to)
    assert ok.status_code == 200
    result = ok.json()["result"]
    assert result
    too_many = approvals(url, token, users[:51], t_from, t_to)
    assert too_many.status_code == 400 and too_many.json()["code"] == "InvalidParameter"
    too_long = approvals(url, token, users[:5], t_from - 1, t_to)
    assert too_long.status_code == 400 and too_long.json()["code"] == "InvalidParameter"
    as_list = requests.post(
        f"{url}{APPROVALS}",
        json={"userIds": users[:2], "fromDateTime": t_from, "toDateTime": t_to},
        headers={"x-acs-dingtalk-access-token": token},
    )
    assert as_list.status_code == 400  # userIds is a comma-separated string
    shapes = {
        "day": r"\d{4}-\d{2}-\d{2}",
        "halfDay": r"\d{4}-\d{2}-\d{2} (AM|PM)",
        "hour": r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}",
    }
    keys = {
        "approveId", "userId", "bizType", "subType", "tagName", "calculateModel",
        "durationUnit", "beginTime", "endTime",
    }  # fmt: skip
    for a in result:
        assert set(a) == keys
        assert re.fullmatch(shapes[a["durationUnit"]], a["beginTime"]), a
        assert re.fullmatch(shapes[a["durationUnit"]], a["endTime"]), a
        assert a["beginTime"] <= a["endTime"]
    assert {a["durationUnit"] for a in result} == set(shapes)
    only_leave = approvals(url, token, users[:50], t_from, t_to, bizTypes=[3]).json()["result"]
    assert only_leave and all(a["bizType"] == 3 for a in only_leave)
    assert len(only_leave) == sum(a["bizType"] == 3 for a in result)
    truth = sim.truth_approvals(TODAY - timedelta(30), TODAY, users[:50])
    assert {a["approveId"] for a in result} <= {a["approveId"] for a in truth}


# ------------------------------------------------------------------------- limits


def burst(n: int, call: Any) -> list[Any]:
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        out[i] = call()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_per_api_qps_limit_not_metered(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim(qps=5)
    token = legacy_token(url)
    users = userids(sim)[:3]
    body = att_body(users, TODAY - timedelta(3), TODAY)
    replies = burst(16, lambda: legacy(url, "/attendance/list", token, body).json())
    codes = Counter(r["errcode"] for r in replies)
    assert set(codes) == {0, 90018}
    assert codes[0] <= 10  # 5 per one-second window; a burst may straddle two windows
    counters = sim.calls()["by_api"]["attendance/list"]
    assert counters["rejected_qps"] == codes[90018]
    assert counters["metered"] == counters["ok"] == codes[0]
    assert sim.calls()["metered_this_month"] == codes[0]
    new = burst(16, lambda: approvals(url, token, users, ms(TODAY - timedelta(3)), ms(TODAY)))
    rejected = [r for r in new if r.status_code == 403]
    assert rejected and {r.json()["code"] for r in rejected} == {
        "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
    }
    time.sleep(1.05)
    assert legacy(url, "/attendance/list", token, body).json()["errcode"] == 0


def test_monthly_quota_both_hosts(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim(monthly_quota=3)
    token = legacy_token(url)
    users = userids(sim)[:3]
    body = att_body(users, TODAY - timedelta(3), TODAY)
    for _ in range(2):
        assert legacy_json(url, "/attendance/list", token, body)["errcode"] == 0
    assert approvals(url, token, users, ms(TODAY - timedelta(3)), ms(TODAY)).status_code == 200
    assert legacy_json(url, "/attendance/list", token, body)["errcode"] == 90020
    over = approvals(url, token, users, ms(TODAY - timedelta(3)), ms(TODAY))
    assert over.status_code == 403
    assert over.json()["code"] == "Forbidden.AccessDenied.ApiCountLimitForOrg"
    # Contacts and token calls are not metered and keep working.
    assert (
        legacy_json(url, "/topapi/v2/department/listsubid", token, {"dept_id": 1})["errcode"] == 0
    )
    calls = sim.calls()
    assert calls["metered_this_month"] == 3 and calls["month"] == "2026-11"
    sim.set_today(date(2026, 12, 1))  # a new calendar month of the sim clock
    assert legacy_json(url, "/attendance/list", token, body)["errcode"] == 0
    assert sim.calls()["metered_this_month"] == 1


def test_permission_denied_both_hosts(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim()
    token = legacy_token(url)
    users = userids(sim)[:3]
    sim.deny_api("attendance/list")
    body = legacy_json(url, "/attendance/list", token, att_body(users, TODAY - timedelta(2), TODAY))
    assert body["errcode"] == 88 and body["sub_code"] == "60011" and body["sub_msg"]
    assert approvals(url, token, users, ms(TODAY - timedelta(2)), ms(TODAY)).status_code == 200
    reply = requests.post(f"{url}/_sim/deny", json={"api": "attendance/approvals/query"})
    assert reply.status_code == 200
    denied = approvals(url, token, users, ms(TODAY - timedelta(2)), ms(TODAY))
    assert denied.status_code == 403
    assert denied.json()["code"] == "Forbidden.AccessDenied.AccessTokenPermissionDenied"
    assert sim.calls()["metered_this_month"] == 1


def test_per_ip_ban_page(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim(ip_limit=25, qps=1000)
    token = legacy_token(url)
    body = {"dept_id": 1}
    replies = [legacy(url, "/topapi/v2/department/listsubid", token, body) for _ in range(26)]
    assert all(r.headers["Content-Type"].startswith("application/json") for r in replies[:24])
    banned = replies[-1]
    assert banned.status_code == 200 and banned.headers["Content-Type"].startswith("text/html")
    assert "<html" in banned.text
    again = legacy(url, "/attendance/list", token, att_body(["x"], TODAY, TODAY))
    assert again.headers["Content-Type"].startswith("text/html")  # banned for every API
    assert requests.get(f"{url}/_sim/calls").status_code == 200  # admin is never banned
    sim.unban()
    assert legacy(url, "/topapi/v2/department/listsubid", token, body).json()["errcode"] == 0


# ------------------------------------------------------------------------- faults


def test_each_fault_kind_has_its_shape(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim(qps=1000)
    token = legacy_token(url)
    users = userids(sim)[:3]
    body = att_body(users, TODAY - timedelta(2), TODAY)

    def both() -> tuple[requests.Response, requests.Response]:
        return (
            legacy(url, "/attendance/list", token, body),
            approvals(url, token, users, ms(TODAY - timedelta(2)), ms(TODAY)),
        )

    sim.set_faults(busy=1.0)
    old, new = both()
    assert old.status_code == 200 and old.json()["errcode"] == -1
    assert new.status_code == 503 and "code" in new.json()

    sim.set_faults(http5xx=1.0, seed=3)
    statuses = set()
    for _ in range(6):
        for reply in both():
            statuses.add(reply.status_code)
            with pytest.raises(ValueError):
                reply.json()
    assert statuses <= {500, 502} and statuses

    sim.set_faults(ban=1.0)
    forms = [legacy(url, "/attendance/list", token, body) for _ in range(2)]
    assert all(r.status_code == 200 for r in forms)
    kinds = {r.headers["Content-Type"].split(";")[0] for r in forms}
    assert kinds == {"text/html", "application/json"}
    json_form = next(r for r in forms if r.headers["Content-Type"].startswith("application/json"))
    assert json_form.json()["status"] == 1111 and json_form.json()["wait"] == 5

    sim.set_faults(qps_global=1.0)
    old, new = both()
    assert old.json()["errcode"] == 90002
    assert new.status_code == 403 and new.json()["code"] == "Forbidden.AccessDenied.QpsLimitForApi"

    sim.set_faults(token_expired=1.0)
    old, new = both()
    assert old.json()["errcode"] == 42001
    assert new.status_code == 400 and new.json()["code"] == "InvalidAuthentication"
    org = legacy_json(url, "/topapi/v2/department/listsubid", token, {"dept_id": 1})
    assert org["errcode"] == 42001  # org calls get faults too
    assert (
        requests.get(
            f"{url}/gettoken", params={"appkey": "sim-key", "appsecret": "sim-secret"}
        ).json()["errcode"]
        == 0
    )  # token calls never do

    counters = sim.calls()["by_api"]["attendance/list"]
    assert (
        counters["ok"] == 0 and counters["metered"] == 0 and counters["faults"] == counters["total"]
    )
    assert sim.calls()["metered_this_month"] == 0

    sim.set_faults(slow=1.0, slow_ms=200)
    start = time.monotonic()
    old = legacy(url, "/attendance/list", token, body)
    assert time.monotonic() - start >= 0.2 and old.json()["errcode"] == 0

    sim.set_faults()
    assert both()[1].status_code == 200


def test_fault_rate_spreads_over_kinds(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim(qps=1000, fault_rate=1.0)
    token = legacy_token(url)
    body = att_body(userids(sim)[:2], TODAY - timedelta(1), TODAY)
    seen: Counter[Any] = Counter()
    for _ in range(60):
        reply = legacy(url, "/attendance/list", token, body)
        if reply.headers["Content-Type"].startswith("text/html"):
            seen["html"] += 1
            continue
        payload = reply.json()
        seen[payload.get("errcode", payload.get("status"))] += 1
    assert {-1, 90002, 42001} <= set(seen) and seen["html"] > 0
    assert 0 not in seen


# ------------------------------------------------------------------------- the clock: 补卡


def test_buka_rewrites_a_past_day_when_the_clock_moves(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim()
    month = (date(2026, 10, 12), date(2026, 11, 10))
    sim.set_today(date(2026, 11, 20))
    fixes = [a for a in sim.truth_approvals(*month) if a["bizType"] == 4]
    assert fixes
    # Find a fix that becomes visible at least two days after its work date.
    for fix in fixes:
        work_day = date.fromisoformat(fix["beginTime"][:10])
        sim.set_today(work_day + timedelta(days=1))
        if not any(a["approveId"] == fix["approveId"] for a in sim.truth_approvals(*month)):
            break
    else:
        pytest.fail("no 补卡 shows up later than the next day")
    assert fix["tagName"] == "补卡" and fix["durationUnit"] == "hour"
    assert fix["beginTime"] == fix["endTime"]
    token = legacy_token(url)
    uid = fix["userId"]

    def day_records() -> list[dict[str, Any]]:
        body = legacy_json(url, "/attendance/list", token, att_body([uid], work_day, work_day))
        return list(body["recordresult"])

    def visible() -> bool:
        reply = approvals(url, token, [uid], ms(work_day), ms(work_day, 23, 59))
        return fix["approveId"] in {a["approveId"] for a in reply.json()["result"]}

    before = day_records()
    missing = [r for r in before if r["timeResult"] == "NotSigned"]
    assert len(missing) == 1 and "approveId" not in missing[0] and not visible()
    clock = work_day + timedelta(days=1)
    while not visible():
        clock += timedelta(days=1)
        assert clock <= work_day + timedelta(days=5)
        requests.post(f"{url}/_sim/clock", json={"today": clock.isoformat()}).raise_for_status()
    after = {r["id"]: r for r in day_records()}
    fixed = after[missing[0]["id"]]  # same id, rewritten in place
    assert fixed["timeResult"] == "Normal" and fixed["sourceType"] == "APPROVE"
    assert fixed["approveId"] == fix["approveId"] and fixed["procInstId"]
    punch = datetime.strptime(fix["beginTime"], "%Y-%m-%d %H:%M").replace(tzinfo=CN)
    assert fixed["userCheckTime"] == int(punch.timestamp() * 1000)
    others = [r for r in before if r["id"] != fixed["id"]]
    assert all(after[r["id"]] == r for r in others)


# ------------------------------------------------------------------------- determinism and mix


def test_determinism_same_seed_same_company() -> None:
    cfg = DingTalkSimConfig(seed=7, employees=40, today=TODAY)
    a, b = DingTalkSimulator(cfg), DingTalkSimulator(cfg)
    c = DingTalkSimulator(DingTalkSimConfig(seed=8, employees=40, today=TODAY))
    span = (date(2026, 10, 20), date(2026, 11, 19))
    assert a.truth_users() == b.truth_users()
    assert a.truth_departments() == b.truth_departments()
    assert a.truth_attendance(*span) == b.truth_attendance(*span)
    assert a.truth_approvals(*span) == b.truth_approvals(*span)
    assert a.truth_users() != c.truth_users()
    assert a.truth_attendance(*span) != c.truth_attendance(*span)
    # Lazy per-day generation: any window agrees with a bigger one.
    whole = a.truth_attendance(*span)
    part = a.truth_attendance(date(2026, 11, 2), date(2026, 11, 6))
    assert part == [
        r for r in whole if date(2026, 11, 2) <= to_date(r["workDate"]) <= date(2026, 11, 6)
    ]
    week = a.truth_approvals(date(2026, 11, 4), date(2026, 11, 4))
    assert {x["approveId"] for x in week} <= {x["approveId"] for x in a.truth_approvals(*span)}
    # The Company works without any server.
    company = Company(7, 40, anchor=TODAY)
    assert company.users(TODAY) == a.truth_users()


def test_the_mix_covers_every_scenario_in_a_month() -> None:
    sim = DingTalkSimulator(DingTalkSimConfig(seed=7, employees=60, today=date(2026, 12, 10)))
    d_from, d_to = date(2026, 11, 1), date(2026, 11, 30)
    records = sim.truth_attendance(d_from, d_to)
    appr = sim.truth_approvals(d_from, d_to)
    days: dict[tuple[str, int], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in records:
        days[(r["userId"], r["workDate"])][r["checkType"]] = r
    mix: Counter[str] = Counter()
    for (_, work_date), pts in days.items():
        on, off = pts["OnDuty"], pts["OffDuty"]
        results = (on["timeResult"], off["timeResult"])
        late = results[0] in ("Late", "SeriousLate")
        mix["normal"] += results == ("Normal", "Normal")
        mix["late"] += results == ("Late", "Normal")
        mix["serious_late"] += results == ("SeriousLate", "Normal")
        mix["early"] += results == ("Normal", "Early")
        mix["late_and_early"] += late and results[1] == "Early"
        mix["one_missing"] += results.count("NotSigned") == 1
        mix["both_missing"] += results == ("NotSigned", "NotSigned")
        mix["absent"] += results[0] == "Absenteeism"
        mix["after_midnight"] += off["userCheckTime"] >= work_date + DAY_MS
        mix["approve_backed"] += "APPROVE" in (on["sourceType"], off["sourceType"])
    for r in records:
        # Lateness is relative to the person's own shift (09:00 or 10:00).
        minutes_late = (r["userCheckTime"] - r["baseCheckTime"]) / 60_000
        if r["timeResult"] == "Late":
            assert 5 <= minutes_late < 30
        if r["timeResult"] == "SeriousLate":
            assert minutes_late >= 30
        if r["timeResult"] == "Early":
            assert r["userCheckTime"] < r["baseCheckTime"]
    for a in appr:
        unit, begin, end = a["durationUnit"], a["beginTime"], a["endTime"]
        begin_day = date.fromisoformat(begin[:10])
        if a["bizType"] == 3:
            mix[f"leave_{a['subType']}"] += 1
            mix["leave_day"] += unit == "day" and begin == end
            mix["leave_multi_day"] += unit == "day" and begin != end
            mix["half_am"] += unit == "halfDay" and begin.endswith("AM")
            mix["half_pm"] += unit == "halfDay" and begin.endswith("PM")
            if unit == "hour":
                mix["hour_mid"] += begin[11:] >= "13:00" and end[11:] < "18:00"
                mix["hour_over_lunch"] += begin[11:] <= "12:00" and end[11:] >= "13:00"
                mix["hour_to_end"] += end[11:] == "18:00"
        if a["bizType"] == 2:
            mix["trip_day"] += unit == "day" and a["tagName"] == "出差"
            mix["trip_multi_day"] += unit == "day" and begin != end
            mix["trip_partial"] += unit == "hour" and a["tagName"] == "外出"
        if a["bizType"] == 1:
            workday = sim.company.is_workday(begin_day)
            mix["overtime_evening"] += workday and begin[11:] >= "19:00"
            mix["overtime_restday"] += not workday
        mix["buka"] += a["bizType"] == 4 and begin == end and a["tagName"] == "补卡"
    scenarios = [
        "late", "serious_late", "early", "late_and_early", "one_missing", "both_missing",
        "absent", "after_midnight", "approve_backed", "leave_年假", "leave_病假", "leave_事假",
        "leave_调休", "leave_day", "leave_multi_day", "half_am", "half_pm", "hour_mid",
        "hour_over_lunch", "hour_to_end", "trip_day", "trip_multi_day", "trip_partial",
        "overtime_evening", "overtime_restday", "buka",
    ]  # fmt: skip
    missing = [s for s in scenarios if mix[s] == 0]
    assert not missing, (missing, mix)
    workdays = sum(1 for _ in days)
    assert 0.74 < mix["normal"] / workdays < 0.9, mix["normal"] / workdays
    # Every approval-backed check point names an approval that exists.
    ids = {a["approveId"] for a in appr}
    assert {r["approveId"] for r in records if "approveId" in r} <= ids
    # A mid-month hire: no records before the hired date, records after.
    hires = [u for u in sim.truth_users() if d_from < to_date(u["hired_date"]) <= d_to]
    assert hires
    for u in hires:
        hired = to_date(u["hired_date"])
        mine = [r for r in records if r["userId"] == u["userid"]]
        assert mine and all(to_date(r["workDate"]) >= hired for r in mine)


def test_company_is_fast_and_lazy() -> None:
    company = Company(7, 2000, anchor=TODAY)
    start = time.monotonic()
    n = 0
    for uid in company.userids():
        for i in range(31):
            n += len(company.attendance(uid, date(2026, 10, 1) + timedelta(i), TODAY))
    assert n > 2000 * 30
    assert time.monotonic() - start < 5  # 10,000 x 31 days in a few seconds


# ------------------------------------------------------------------------- admin endpoints


def test_admin_endpoints_mirror_the_python_api(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim()
    token = legacy_token(url)
    users = userids(sim)[:4]
    legacy_json(url, "/attendance/list", token, att_body(users, TODAY - timedelta(3), TODAY))
    legacy_json(url, "/topapi/v2/department/listsubid", token, {"dept_id": 1})
    calls = requests.get(f"{url}/_sim/calls").json()
    assert calls == sim.calls()
    assert calls["by_api"]["attendance/list"] == {
        "total": 1, "ok": 1, "metered": 1, "rejected_qps": 0, "faults": 0,
    }  # fmt: skip
    assert calls["by_api"]["topapi/v2/department/listsubid"]["metered"] == 0
    assert calls["metered_this_month"] == 1 and calls["month"] == "2026-11"
    assert requests.post(f"{url}/_sim/reset-calls").json() == {"ok": True}
    assert sim.calls() == {"by_api": {}, "metered_this_month": 0, "month": "2026-11"}
    assert requests.get(f"{url}/_sim/clock").json() == {"today": "2026-11-20"}
    assert requests.post(f"{url}/_sim/clock", json={"today": "2026-11-25"}).json()["today"] == (
        "2026-11-25"
    )
    assert sim.today == date(2026, 11, 25)
    assert requests.post(f"{url}/_sim/clock", json={"today": "soon"}).status_code == 400
    faults = requests.post(f"{url}/_sim/faults", json={"busy": 0.25, "seed": 1}).json()
    assert faults["busy"] == 0.25 and faults["http5xx"] == 0
    assert requests.post(f"{url}/_sim/faults", json={"busy": 2}).status_code == 400
    assert requests.post(f"{url}/_sim/faults", json={}).status_code == 200
    truth = requests.get(
        f"{url}/_sim/truth/attendance",
        params={"from": "2026-11-16", "to": "2026-11-20", "userids": ",".join(users)},
    ).json()
    assert truth == sim.truth_attendance(date(2026, 11, 16), date(2026, 11, 20), users)
    assert truth and all(r["userId"] in users for r in truth)
    appr = requests.get(
        f"{url}/_sim/truth/approvals", params={"from": "2026-11-01", "to": "2026-11-20"}
    ).json()
    assert appr == sim.truth_approvals(date(2026, 11, 1), date(2026, 11, 20))
    assert [a["approveId"] for a in appr] == sorted(a["approveId"] for a in appr)
    assert requests.get(f"{url}/_sim/truth/users").json() == sim.truth_users()
    assert requests.get(f"{url}/_sim/truth/departments").json() == sim.truth_departments()
    assert requests.get(f"{url}/_sim/truth/attendance").status_code == 400
    assert requests.get(f"{url}/_sim/nope").status_code == 404


# ------------------------------------------------------------------------- command line


def test_cli_bad_arguments_are_argparse_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main_dingtalk(["--today", "2026-13-01"])
    assert exc.value.code == 2
    assert "not a date" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main_dingtalk(["--qps", "0"])


def test_cli_serves_until_sigterm() -> None:
    code = (
        "import sys; from attendance_pipeline.simulators.dingtalk import main_dingtalk; "
        "sys.exit(main_dingtalk(['--port', '0', '--today', '2026-11-20', '--employees', '12']))"
    )

    def check(url: str) -> None:
        assert requests.get(f"{url}/_sim/clock", timeout=5).json() == {"today": "2026-11-20"}

    serve_cli_until_sigterm(code, check)


# ------------------------------------------------------------------------- groups and leavers

GROUPS = "/topapi/attendance/getsimplegroups"
MEMBERS = "/topapi/attendance/group/memberusers/list"
DISMISSIONS = "/v1.0/hrm/employees/dismissions"
INFOS = "/v1.0/hrm/employees/dimissionInfos"
PILOT = {22, 6}  # config/pipeline.yaml scope; both departments have no sub-departments


def new_get(url: str, path: str, token: str, params: dict[str, Any]) -> requests.Response:
    headers = {"x-acs-dingtalk-access-token": token}
    return requests.get(f"{url}{path}", headers=headers, params=params, timeout=10)


def all_members(url: str, token: str, group_id: int, op: str) -> list[str]:
    members: list[str] = []
    cursor = 0
    while True:
        body = {"op_user_id": op, "group_id": group_id, "cursor": cursor}
        reply = legacy_json(url, MEMBERS, token, body)
        assert reply["errcode"] == 0, reply
        members.extend(reply["result"]["result"])
        if not reply["result"]["has_more"]:
            return members
        cursor = reply["result"]["cursor"]


def test_groups_and_members_are_served_with_paging(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim(employees=250)
    token = legacy_token(url)
    first = legacy_json(url, GROUPS, token, {"offset": 0, "size": 1})
    assert first["errcode"] == 0 and first["result"]["has_more"] is True
    second = legacy_json(url, GROUPS, token, {"offset": 1, "size": 1})
    assert second["result"]["has_more"] is False
    groups = first["result"]["groups"] + second["result"]["groups"]
    assert [g["group_id"] for g in groups] == [9001, 9002]
    assert {"group_id", "group_name", "type", "member_count"} <= groups[0].keys()
    whole = legacy_json(url, GROUPS, token, {"offset": 0, "size": 10})["result"]
    assert whole["groups"] == groups and whole["has_more"] is False
    for size in (0, 11):
        assert legacy_json(url, GROUPS, token, {"offset": 0, "size": size})["errcode"] == 40035

    boss = next(u["userid"] for u in sim.truth_users() if u["boss"])
    members = {g["group_id"]: all_members(url, token, g["group_id"], boss) for g in groups}
    assert len(members[9001]) > 100  # more than one page of 100
    for g in groups:
        assert g["member_count"] == len(members[g["group_id"]]) == len(set(members[g["group_id"]]))
    truth = sim.truth_groups()
    assert {int(k): v for k, v in truth["members"].items()} == members
    everyone = {u["userid"] for u in sim.truth_users()}
    grouped = set(members[9001]) | set(members[9002])
    assert not set(members[9001]) & set(members[9002])
    assert everyone - grouped == set(truth["no_group"]) and truth["no_group"]

    bad_group = {"op_user_id": boss, "group_id": 1234, "cursor": 0}
    assert legacy_json(url, MEMBERS, token, bad_group)["errcode"] == 40035
    no_op = {"op_user_id": "nobody", "group_id": 9001, "cursor": 0}
    assert legacy_json(url, MEMBERS, token, no_op)["errcode"] == 40035
    unknown = legacy_json(url, GROUPS, "not-a-token", {"offset": 0, "size": 10})
    assert unknown["errcode"] in (40001, 40014, 42001)
    sim.deny_api("topapi/attendance/getsimplegroups")
    denied = legacy_json(url, GROUPS, token, {"offset": 0, "size": 10})
    assert denied["errcode"] == 88 and denied["sub_code"] == "60011"
    # Attendance APIs are metered: every served group call counted, errors not.
    calls = sim.calls()["by_api"]
    assert calls["topapi/attendance/getsimplegroups"]["metered"] == 3
    member_calls = calls["topapi/attendance/group/memberusers/list"]
    assert member_calls["metered"] == member_calls["ok"] == 3  # 2 pages + 1


def test_no_group_people_have_no_results_and_the_late_group_works_ten_to_seven(
    dingtalk_sim: SimFactory,
) -> None:
    sim, url = dingtalk_sim()
    token = legacy_token(url)
    truth = sim.truth_groups()
    no_group = truth["no_group"]
    late = truth["members"]["9002"]
    d_from, d_to = date(2026, 10, 1), date(2026, 11, 19)
    assert sim.truth_attendance(d_from, d_to, no_group) == []
    weeks = [(d_from + timedelta(days=7 * k)) for k in range(7)]
    for start in weeks:
        end = min(start + timedelta(days=6), d_to)
        assert attendance_all(url, token, no_group, start, end) == []
    # Approvals still exist for them (leave, trips, overtime), never a 补卡.
    approvals = sim.truth_approvals(date(2026, 6, 1), d_to, no_group)
    assert approvals and all(a["bizType"] != 4 for a in approvals)

    records = attendance_all(url, token, late, date(2026, 11, 9), date(2026, 11, 13))
    assert records and {r["groupId"] for r in records} == {9002}
    for r in records:
        hour = 10 if r["checkType"] == "OnDuty" else 19
        assert r["baseCheckTime"] == ms(to_date(r["workDate"]), hour)
    month = sim.truth_attendance(date(2026, 9, 1), date(2026, 11, 19), late)
    late_minutes = [
        (r["userCheckTime"] - r["baseCheckTime"]) / 60_000
        for r in month
        if r["timeResult"] in ("Late", "SeriousLate")
    ]
    assert late_minutes and min(late_minutes) >= 5  # late relative to 10:00, not 09:00
    normal_on = [
        datetime.fromtimestamp(r["userCheckTime"] / 1000, CN).hour
        for r in month
        if r["checkType"] == "OnDuty" and r["timeResult"] == "Normal" and "recordId" in r
    ]
    assert normal_on and min(normal_on) >= 9 and max(normal_on) <= 10
    standard = sim.truth_attendance(date(2026, 11, 9), date(2026, 11, 13), truth["members"]["9001"])
    assert {r["baseCheckTime"] - r["workDate"] for r in standard} == {9 * 3_600_000, 18 * 3_600_000}


@pytest.mark.parametrize("seed", [5, 7])
def test_the_pilot_departments_have_no_leavers_and_no_group_less_people(seed: int) -> None:
    sim = DingTalkSimulator(DingTalkSimConfig(seed=seed, employees=60, today=TODAY))
    people = {u["userid"]: u for u in sim.company.users()}
    no_group = [uid for uid in people if sim.company.group_of(uid) is None]
    leavers = [d["userId"] for d in sim.company.leavers()]
    assert 2 <= len(no_group) <= 3 and len(leavers) == 2
    assert not set(no_group) & set(leavers)
    for uid in [*no_group, *leavers]:
        assert not PILOT & set(people[uid]["dept_id_list"]), (uid, people[uid])
    outside = [uid for uid in no_group if not PILOT & set(people[uid]["dept_id_list"])]
    assert outside
    pilot_now = [u for u in sim.truth_users() if PILOT & set(u["dept_id_list"])]
    if seed == 5:
        assert len(pilot_now) == 10  # the demo's pilot head-count
    last_days = sorted(sim.company.last_work_day(uid) for uid in leavers)
    assert last_days == [TODAY - timedelta(days=25), TODAY - timedelta(days=10)]


def test_leavers_drop_out_after_their_last_day_and_the_hr_api_lists_them(
    dingtalk_sim: SimFactory,
) -> None:
    sim, url = dingtalk_sim()
    token = legacy_token(url)
    leaver = sim.truth_leavers()[0]  # the latest: last work day 10 days before the clock
    uid, last = leaver["userId"], to_date(leaver["lastWorkDay"])
    assert last == TODAY - timedelta(days=10)
    dept = leaver["deptList"][0]["dept_id"]

    def listed(dept_id: int) -> set[str]:
        body = {"dept_id": dept_id, "cursor": 0, "size": 100}
        return {
            u["userid"]
            for u in legacy_json(url, "/topapi/v2/user/list", token, body)["result"]["list"]
        }

    assert uid not in listed(dept)
    assert uid not in {u["userid"] for u in sim.truth_users()}
    records = attendance_all(url, token, [uid], last - timedelta(days=6), last)
    assert records and max(to_date(r["workDate"]) for r in records) <= last
    assert (
        attendance_all(url, token, [uid], last + timedelta(days=1), last + timedelta(days=7)) == []
    )
    after = sim.truth_approvals(last + timedelta(days=1), TODAY + timedelta(days=30), [uid])
    assert after == []

    # Before the clock passes the last work day they are still employed, and not a leaver yet.
    sim.set_today(last)
    assert uid in listed(dept)
    assert uid not in {d["userId"] for d in sim.truth_leavers()}
    sim.set_today(TODAY)

    new = new_token(url)
    page = new_get(url, DISMISSIONS, new, {"maxResults": 1, "nextToken": 0})
    assert page.status_code == 200, page.text
    first = page.json()
    assert first == {"userIdList": [uid], "hasMore": True, "nextToken": 1}
    rest = new_get(url, DISMISSIONS, new, {"maxResults": 50, "nextToken": 1}).json()
    assert rest["hasMore"] is False and len(rest["userIdList"]) == 1
    ids = first["userIdList"] + rest["userIdList"]
    infos = new_get(url, INFOS, new, {"userIdList": json.dumps([*ids, "nobody"])})
    assert infos.status_code == 200, infos.text
    result = infos.json()["result"]
    assert result == sim.truth_leavers()
    assert {"userId", "name", "lastWorkDay", "mainDeptId", "deptList"} <= result[0].keys()
    for params in ({"maxResults": 51}, {"nextToken": 0}, {"maxResults": "x"}):
        bad = new_get(url, DISMISSIONS, new, params)
        assert bad.status_code == 400 and bad.json()["code"] == "InvalidParameter"
    too_many = new_get(url, INFOS, new, {"userIdList": json.dumps([f"u{i}" for i in range(51)])})
    assert too_many.status_code == 400
    assert new_get(url, INFOS, "bad-token", {"userIdList": json.dumps(ids)}).status_code in (
        400,
        401,
    )
    # Not metered (an HR API, like the contacts APIs).
    assert sim.calls()["by_api"]["hrm/employees/dismissions"]["metered"] == 0


def test_the_hr_api_can_be_denied(dingtalk_sim: SimFactory) -> None:
    sim, url = dingtalk_sim(denied_apis=("hrm",))
    new = new_token(url)
    for path, params in ((DISMISSIONS, {"maxResults": 50}), (INFOS, {"userIdList": '["a"]'})):
        reply = new_get(url, path, new, params)
        assert reply.status_code == 403
        body = reply.json()
        assert body["code"] == "Forbidden.AccessDenied.AccessTokenPermissionDenied"
        assert body["message"] and body["requestid"]
    requests.post(f"{url}/_sim/allow", json={"api": "hrm"}, timeout=5).raise_for_status()
    assert new_get(url, DISMISSIONS, new, {"maxResults": 50}).status_code == 200
    requests.post(f"{url}/_sim/deny", json={"api": "hrm"}, timeout=5).raise_for_status()
    assert new_get(url, DISMISSIONS, new, {"maxResults": 50}).status_code == 403
    assert requests.get(f"{url}/_sim/truth/leavers", timeout=5).json() == sim.truth_leavers()
    assert requests.get(f"{url}/_sim/truth/groups", timeout=5).json() == sim.truth_groups()


def test_the_cli_flag_denies_the_hr_api() -> None:
    from attendance_pipeline.simulators.dingtalk.cli import build_arg_parser

    args = build_arg_parser().parse_args(["--deny-api", "hrm", "--deny-api", "attendance/list"])
    assert args.deny_api == ["hrm", "attendance/list"]
