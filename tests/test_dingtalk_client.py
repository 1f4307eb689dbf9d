"""The DingTalk client against the simulator over real HTTP: equality with ground truth, faults
survived with identical results, and the errors that must stop a run."""

import threading
import time
from datetime import date, timedelta

import pytest

from attendance_pipeline.china_time import SHANGHAI, ms_to_date, ms_to_datetime
from attendance_pipeline.dingtalk import (
    DingTalkAuthError,
    DingTalkClient,
    DingTalkHorizonError,
    DingTalkHrmPermissionError,
    DingTalkOptions,
    DingTalkPermissionError,
    DingTalkQuotaExceeded,
    DingTalkUnavailable,
)
from attendance_pipeline.dingtalk.records import attendance_frame

TODAY = date(2026, 11, 20)
START, END = date(2026, 11, 2), date(2026, 11, 19)


def make_client(url: str, **overrides) -> DingTalkClient:
    options = {
        "base_url": url,
        "api_base_url": url,
        "app_key": "sim-key",
        "app_secret": "sim-secret",
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
        "qps_wait_s": 0.05,
        "ban_pause_s": 0.01,
        "today": TODAY,
        **overrides,
    }
    return DingTalkClient(DingTalkOptions(**options))


def everyone(client: DingTalkClient) -> list[str]:
    return [user["userid"] for user in client.list_users()]


def test_a_pulled_range_equals_the_simulators_ground_truth(dingtalk_sim):
    sim, url = dingtalk_sim()
    client = make_client(url)
    users = client.list_users()
    assert users == sorted(sim.truth_users(), key=lambda u: u["userid"])
    userids = [u["userid"] for u in users]
    start = date(2026, 10, 1)  # 50 days: several 7-day windows, 30-day approval windows
    # user/list no longer has the leavers, so the truth is asked for the same people.
    assert client.attendance(userids, start, END) == sim.truth_attendance(start, END, userids)
    assert client.approvals(userids, start, END) == sim.truth_approvals(start, END, userids)
    # Served metered calls match what the simulator counted against the quota.
    assert client.metered_total == sim.calls()["metered_this_month"]


def test_metered_calls_meet_the_contracts_lower_bound(dingtalk_sim):
    _, url = dingtalk_sim(employees=120)
    client = make_client(url)
    userids = everyone(client)
    records = client.attendance(userids, START, date(2026, 11, 8))  # one 7-day window
    chunks = [userids[i : i + 50] for i in range(0, len(userids), 50)]
    lower_bound = sum(
        max(1, -(-sum(1 for r in records if r["userId"] in set(chunk)) // 50)) for chunk in chunks
    )
    assert client.metered_calls["attendance/list"] == lower_bound


def test_a_person_in_two_departments_appears_once_with_both(dingtalk_sim):
    sim, url = dingtalk_sim()
    users = make_client(url).list_users()
    assert len({u["userid"] for u in users}) == len(users)
    twice = [u for u in users if len(u["dept_id_list"]) >= 2]
    assert twice, "the simulated company has people in two departments"
    depts = {d["dept_id"] for d in sim.truth_departments()} | {1}
    assert all(set(u["dept_id_list"]) <= depts for u in twice)


def test_an_offduty_punch_after_midnight_stays_on_its_work_day(dingtalk_sim):
    _, url = dingtalk_sim()
    client = make_client(url)
    records = client.attendance(everyone(client), date(2026, 10, 1), END)
    late_nights = [
        r
        for r in records
        if r["checkType"] == "OffDuty"
        and ms_to_datetime(r["userCheckTime"]).date() > ms_to_date(r["workDate"])
    ]
    assert late_nights, "the simulator generates OffDuty punches after midnight"
    frame = attendance_frame(late_nights, ms_to_datetime(0))
    for (_, row), record in zip(frame.iterrows(), late_nights, strict=True):
        assert row["work_date"] == ms_to_date(record["workDate"])
        assert row["user_check_time"].tz_convert(SHANGHAI).date() == row["work_date"] + timedelta(1)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("busy", "busy"),
        ("http5xx", "http 5"),
        ("ban", "ip ban"),
        ("qps_global", "qps"),
        ("token_expired", "access token"),
        ("slow", None),
    ],
)
def test_each_fault_is_survived_with_identical_results(dingtalk_sim, fault, reason):
    sim, url = dingtalk_sim(qps=500)
    current = [u["userid"] for u in sim.truth_users()]  # what user/list returns (no leavers)
    truth_attendance = sim.truth_attendance(START, END, current)
    truth_approvals = sim.truth_approvals(START, END, current)
    sim.set_faults(**{fault: 0.25}, slow_ms=150, seed=11)
    client = make_client(url, qps=500, max_attempts=12, timeout_s=5)
    userids = everyone(client)
    assert client.attendance(userids, START, END) == truth_attendance
    assert client.approvals(userids, START, END) == truth_approvals
    if reason is not None:
        assert any(key.startswith(reason.split(":")[0]) for key in client.retries), client.retries
        faulted = sum(api["faults"] for api in sim.calls()["by_api"].values())
        assert faulted > 0


def test_a_mix_of_all_faults_at_once(dingtalk_sim):
    sim, url = dingtalk_sim(qps=500, fault_rate=0.3)
    client = make_client(url, qps=500, max_attempts=15)
    userids = everyone(client)
    assert client.attendance(userids, START, END) == sim.truth_attendance(START, END, userids)
    assert client.approvals(userids, START, END) == sim.truth_approvals(START, END, userids)


def test_tokens_expiring_mid_run_are_refreshed(dingtalk_sim):
    sim, url = dingtalk_sim()
    client = make_client(url, workers=2)
    userids = everyone(client)
    stop = threading.Event()

    def expire_repeatedly() -> None:
        while not stop.wait(0.4):
            sim.expire_tokens()

    expirer = threading.Thread(target=expire_repeatedly)
    expirer.start()
    try:
        records = client.attendance(userids, date(2026, 10, 1), END)
    finally:
        stop.set()
        expirer.join()
    assert records == sim.truth_attendance(date(2026, 10, 1), END, userids)
    assert client.token_fetches >= 2


def test_exceeding_the_per_app_qps_is_retried_not_fatal(dingtalk_sim):
    sim, url = dingtalk_sim(qps=5)
    # Misconfigured at ten times the real limit; waits the contract's one second on 90018.
    client = make_client(url, qps=50, workers=4, qps_wait_s=1.0)
    userids = everyone(client)
    assert client.attendance(userids, START, END) == sim.truth_attendance(START, END, userids)
    assert sim.calls()["by_api"]["attendance/list"]["rejected_qps"] > 0
    assert client.retries["qps"] > 0


def test_the_client_keeps_under_the_limit_by_itself(dingtalk_sim):
    sim, url = dingtalk_sim(qps=10)
    client = make_client(url, qps=10, workers=4)
    client.attendance(everyone(client), START, END)
    assert sim.calls()["by_api"]["attendance/list"]["rejected_qps"] <= 1


def test_quota_exhaustion_is_a_clear_error(dingtalk_sim):
    _, url = dingtalk_sim(monthly_quota=3)
    client = make_client(url)
    with pytest.raises(DingTalkQuotaExceeded, match="monthly quota") as caught:
        client.attendance(everyone(client), date(2026, 10, 1), END)
    assert "90020" in str(caught.value)


def test_quota_exhaustion_on_the_new_host(dingtalk_sim):
    _, url = dingtalk_sim(monthly_quota=0)
    client = make_client(url)
    with pytest.raises(DingTalkQuotaExceeded):
        client.approvals(everyone(client), START, END)


@pytest.mark.parametrize("api", ["attendance/list", "attendance/approvals/query"])
def test_a_missing_permission_is_a_clear_error(dingtalk_sim, api):
    sim, url = dingtalk_sim()
    sim.deny_api(api)
    client = make_client(url)
    userids = everyone(client)
    pull = client.attendance if api == "attendance/list" else client.approvals
    with pytest.raises(DingTalkPermissionError, match="grant") as caught:
        pull(userids, START, END)
    assert "sim-secret" not in str(caught.value)
    assert client._token is None or client._token not in str(caught.value)


def test_a_wrong_secret_is_a_clear_error_without_the_secret(dingtalk_sim):
    _, url = dingtalk_sim()
    client = make_client(url, app_secret="wrong-secret-value")
    with pytest.raises(DingTalkAuthError, match="DINGTALK_APP_SECRET") as caught:
        client.list_users()
    assert "wrong-secret-value" not in str(caught.value)


def test_retries_are_bounded_when_dingtalk_stays_busy(dingtalk_sim):
    sim, url = dingtalk_sim()
    client = make_client(url, max_attempts=4)
    userids = everyone(client)
    sim.set_faults(busy=1.0)
    started = time.monotonic()
    with pytest.raises(DingTalkUnavailable, match="gave up after 4 attempts"):
        client.attendance(userids, START, START)
    assert time.monotonic() - started < 5


def test_dates_beyond_the_horizon_are_refused_before_any_call(dingtalk_sim):
    sim, url = dingtalk_sim()
    client = make_client(url)
    sim.reset_calls()
    with pytest.raises(DingTalkHorizonError, match="180 days"):
        client.attendance(["012345"], TODAY - timedelta(days=200), TODAY - timedelta(days=1))
    assert sim.calls()["metered_this_month"] == 0


def test_the_group_map_covers_everyone_who_punches(dingtalk_sim):
    sim, url = dingtalk_sim(employees=250)
    client = make_client(url, group_page_size=1)  # one group per page: paging is exercised
    boss = next(u["userid"] for u in client.list_users() if u.get("boss"))
    groups = client.attendance_group_map(boss)
    truth = sim.truth_groups()
    expected = {uid: int(gid) for gid, ids in truth["members"].items() for uid in ids}
    assert groups == expected
    assert set(groups.values()) == {9001, 9002}
    everyone = {u["userid"] for u in sim.truth_users()}
    assert everyone - groups.keys() == set(truth["no_group"]) != set()
    by_api = sim.calls()["by_api"]
    assert by_api["topapi/attendance/getsimplegroups"]["ok"] == 2
    assert by_api["topapi/attendance/group/memberusers/list"]["ok"] == 3  # 9001 has two pages
    # Group calls are attendance APIs: metered, and counted the same on both sides.
    assert client.metered_total == sim.calls()["metered_this_month"] == 5


def test_leavers_come_with_their_last_work_day(dingtalk_sim):
    sim, url = dingtalk_sim()
    client = make_client(url, hrm_page_size=1)
    leavers = client.leavers()
    truth = sim.truth_leavers()
    assert [lv["userid"] for lv in leavers] == [t["userId"] for t in truth]
    assert [lv["last_work_date"] for lv in leavers] == [
        TODAY - timedelta(days=10),
        TODAY - timedelta(days=25),
    ]
    for leaver, info in zip(leavers, truth, strict=True):
        assert leaver["name"] == info["name"]
        assert leaver["dept_ids"] == [d["dept_id"] for d in info["deptList"]]
        assert leaver["main_dept_id"] == info["mainDeptId"]
    recent = client.leavers(since=TODAY - timedelta(days=15))
    assert [lv["userid"] for lv in recent] == [truth[0]["userId"]]
    assert client.metered_total == 0  # HR APIs are not metered
    assert sim.calls()["metered_this_month"] == 0


def test_a_missing_hr_permission_names_what_to_grant(dingtalk_sim):
    sim, url = dingtalk_sim(denied_apis=("hrm",))
    client = make_client(url)
    with pytest.raises(DingTalkHrmPermissionError) as caught:
        client.leavers()
    message = str(caught.value)
    assert isinstance(caught.value, DingTalkPermissionError)
    assert "智能人事" in message and "developer console" in message
    assert "Forbidden.AccessDenied.AccessTokenPermissionDenied" in message
    assert sim.calls()["by_api"]["hrm/employees/dismissions"]["total"] == 1  # not retried
