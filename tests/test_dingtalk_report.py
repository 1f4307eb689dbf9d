"""DingTalk's smart report (考勤报表): the simulator's three legacy APIs over real HTTP, their
limits and quirk, injected drift, and the client that pulls them."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest
import requests

from attendance_pipeline.dingtalk import DingTalkBadReply
from attendance_pipeline.dingtalk.report import _day_values, find_columns
from attendance_pipeline.simulators.dingtalk.company.report import COLUMNS, day_class
from tests.test_dingtalk_client import make_client
from tests.test_dingtalk_simulator import legacy, legacy_json, legacy_token

TODAY = date(2026, 11, 20)
VALUES = "/topapi/attendance/getcolumnval"
LEAVE = "/topapi/attendance/getleavetimebynames"


def column_ids(url: str) -> dict[str, int]:
    token = legacy_token(url)
    body = legacy_json(url, "/topapi/attendance/getattcolumns", token, {})
    return {c["name"]: int(c["id"]) for c in body["result"]["columns"]}


def test_columns_are_found_by_name_and_their_ids_differ_between_companies(dingtalk_sim):
    _, url7 = dingtalk_sim(seed=7)
    _, url8 = dingtalk_sim(seed=8)
    ids7, ids8 = column_ids(url7), column_ids(url8)
    assert set(ids7) == set(ids8) == {c.name for c in COLUMNS}
    assert ids7["迟到次数"] != ids8["迟到次数"]
    columns = make_client(url7).report_columns()
    found = find_columns(
        columns,
        {"late": ["迟到次数"], "ot": ["work_day_overtime", "overtime_workday"], "x": ["无此列"]},
    )
    assert found["late"]["id"] == ids7["迟到次数"]
    assert found["ot"]["name"] == "工作日加班"  # the second alias matched
    assert "x" not in found  # a column the company switched off is left out


def test_the_limits_answer_40035(dingtalk_sim):
    _, url = dingtalk_sim()
    token = legacy_token(url)
    ids = list(column_ids(url).values())
    userid = make_client(url).list_users()[0]["userid"]
    base = {"userid": userid, "from_date": "2026-10-01 00:00:00", "to_date": "2026-10-31 00:00:00"}
    ok = legacy_json(url, VALUES, token, {**base, "column_id_list": ",".join(map(str, ids[:20]))})
    assert ok["errcode"] == 0 and len(ok["result"]["column_vals"]) == 20
    assert all(len(c["column_vals"]) == 31 for c in ok["result"]["column_vals"])
    extra = list(range(1, 22))
    bad = [
        {**base, "column_id_list": ",".join(map(str, ids[:21] + extra[: 21 - len(ids[:21])]))},
        {**base, "column_id_list": str(ids[0]), "to_date": "2026-11-01 00:00:00"},  # 32 days
        {**base, "column_id_list": "not-an-id"},
    ]
    for body in bad:
        reply = legacy(url, VALUES, token, body).json()
        assert reply["errcode"] == 40035, (body, reply)
    names = ",".join(f"假{i}" for i in range(21))
    reply = legacy(url, LEAVE, token, {**base, "leave_names": names}).json()
    assert reply["errcode"] == 40035


def test_the_client_equals_the_simulators_report_and_counts_metered_calls(dingtalk_sim):
    sim, url = dingtalk_sim()
    client = make_client(url)
    userids = [u["userid"] for u in client.list_users()][:12]
    by_name = {c["name"]: c for c in client.report_columns()}
    alias_of = {int(c["id"]): c["alias"] for c in by_name.values()}
    start, end = date(2026, 9, 25), date(2026, 11, 19)  # 56 days: two windows per person
    leave_names = ["年假", "病假", "事假", "调休", "婚假", "陪产假", "丧假"]
    values, leave = client.report_rows(userids, sorted(alias_of), leave_names, start, end)
    truth = sim.truth_report(start, end, userids)
    want_values = {
        (t["userid"], date.fromisoformat(t["date"]), alias): v
        for t in truth
        for alias, v in t["values"].items()
    }
    got_values = {
        (v["userid"], v["work_date"], alias_of[v["column_id"]]): v["value"] for v in values
    }
    assert got_values == pytest.approx(want_values)
    want_leave = {
        (t["userid"], date.fromisoformat(t["date"]), kind): h
        for t in truth
        for kind, h in t["leave"].items()
        if h
    }
    got_leave = {(v["userid"], v["work_date"], v["leave_type"]): v["hours"] for v in leave}
    assert got_leave == pytest.approx(want_leave)
    assert got_leave, "twelve people over eight weeks take some leave"
    # One column call, then per person 2 windows x (22 columns in 2 calls of <= 20 + leave).
    assert len(alias_of) == 22
    assert client.metered_total == 1 + len(userids) * 2 * (2 + 1)
    assert client.metered_total == sim.calls()["metered_this_month"]


def test_values_follow_the_simulated_results_and_approvals(dingtalk_sim):
    """The report is computed from the company's own results: each late OnDuty point is one
    迟到次数 with its whole minutes, each NotSigned point on a non-absent day one 缺卡次数."""
    sim, _ = dingtalk_sim(employees=80)
    start, end = date(2026, 11, 6), date(2026, 11, 19)  # inside the 15 days: 应出勤天数 is real
    truth = {(t["userid"], t["date"]): t["values"] for t in sim.truth_report(start, end)}
    records = sim.truth_attendance(start, end)
    by_day: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        day = (date(1970, 1, 1) + timedelta(milliseconds=r["workDate"] + 8 * 3600_000)).isoformat()
        by_day.setdefault((r["userId"], day), []).append(r)
    seen: Counter[str] = Counter()
    for key, points in by_day.items():
        values = truth[key]
        on = next(p for p in points if p["checkType"] == "OnDuty")
        assert values["should_attendance_days"] == 1.0
        if on["timeResult"] in ("Late", "SeriousLate"):
            minutes = (on["userCheckTime"] - on["baseCheckTime"]) // 60_000
            assert (values["late_times"], values["late_minute"]) == (1.0, float(minutes))
            seen["late"] += 1
        else:
            assert values["late_times"] == 0.0
        if values["absenteeism_days"] == 0.0:
            lack = sum(p["timeResult"] == "NotSigned" for p in points)
            assert values["on_work_lack_card_times"] + values["off_work_lack_card_times"] == lack
            seen["lack"] += lack
    assert seen["late"] and seen["lack"]
    # Overtime lands in the column of its day's class; the three add up to the total.
    for (_, day), values in truth.items():
        total = sum(values[c] for c in ("overtime_workday", "overtime_restday", "overtime_holiday"))
        assert values["overtime_duration"] == total
        if values["overtime_holiday"]:
            assert day_class(sim.company, date.fromisoformat(day)) == "holiday"


def test_should_attendance_days_is_zero_beyond_fifteen_days(dingtalk_sim):
    _, url = dingtalk_sim()
    client = make_client(url)
    ids = {c["alias"]: int(c["id"]) for c in client.report_columns()}
    users = [u["userid"] for u in client.list_users()][:10]
    values, _ = client.report_rows(
        users, [ids["should_attendance_days"]], [], date(2026, 10, 20), date(2026, 11, 19)
    )
    cutoff = TODAY - timedelta(days=15)
    old = [v["value"] for v in values if v["work_date"] < cutoff]
    recent = [v["value"] for v in values if v["work_date"] >= cutoff]
    assert old and set(old) == {0.0}
    assert sum(recent) > 0  # scheduled workdays within the window count


def test_injected_and_seeded_drift_change_only_their_person_days(dingtalk_sim):
    sim, url = dingtalk_sim(report_drift_days=3)
    seeded = sim.report_drift()["seeded"]
    assert len(seeded) == 3
    userid = sim.truth_users()[0]["userid"]
    day = date(2026, 11, 10)
    before = sim.truth_report(day, day, [userid])[0]
    reply = requests.post(
        f"{url}/_sim/report-drift",
        json={"drift": [{"userid": userid, "date": day.isoformat(), "column": "迟到时长",
                         "delta": 7}, {"userid": userid, "date": day.isoformat(),
                                       "column": "年假", "delta": 4}]},
        timeout=5,
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    after = sim.truth_report(day, day, [userid])[0]
    assert after["values"]["late_minute"] == before["values"]["late_minute"] + 7
    assert after["leave"]["年假"] == before["leave"].get("年假", 0) + 4
    others = {k: v for k, v in after["values"].items() if k != "late_minute"}
    assert others == {k: v for k, v in before["values"].items() if k != "late_minute"}
    for item in seeded:
        d = date.fromisoformat(item["date"])
        row = sim.truth_report(d, d, [item["userid"]])[0]
        assert row["values"][_alias(item["column"])] >= 1.0
    bad = requests.post(
        f"{url}/_sim/report-drift", json={"drift": [{"userid": userid, "date": "2026-11-10",
                                                     "column": "无此列", "delta": 1}]},
        timeout=5,
    )  # fmt: skip
    assert bad.status_code == 400 and "无此列" in bad.text


def _alias(name: str) -> str:
    return next(c.alias for c in COLUMNS if c.name == name)


def test_a_reply_that_is_not_a_number_is_a_bad_reply():
    first = last = date(2026, 10, 9)
    good = {"column_vals": [{"date": "2026-10-09 00:00:00", "value": "1.5"}]}
    assert _day_values("attendance/getcolumnval", good, "column_vals", first, last) == [
        (first, 1.5)
    ]
    for item, words in (
        ({"column_vals": [{"date": "2026-10-09 00:00:00", "value": "半天"}]}, "not a number"),
        ({"column_vals": [{"date": "2026-10-10 00:00:00", "value": "1"}]}, "outside"),
        ({"column_vals": [{"value": "1"}]}, "lacks"),
        ({}, "not a list"),
    ):
        with pytest.raises(DingTalkBadReply, match=words):
            _day_values("attendance/getcolumnval", item, "column_vals", first, last)
