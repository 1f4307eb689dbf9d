"""Identity matching, worklog planning and the push diff (pure functions)."""

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attendance_pipeline.hours.rules import ConfigError
from attendance_pipeline.pipeline_config import Scope
from attendance_pipeline.pm.base import PlannedWorklog, PMUser, RemoteWorklog, worklog_key
from attendance_pipeline.pm.mapping import load_explicit_mapping, map_days, match_users
from attendance_pipeline.pm.plan import load_allocations, plan_worklogs, split_minutes
from attendance_pipeline.pm.push import decide

DAY = date(2026, 11, 3)


def person(userid, name, email=None, org_email=None, job=None, depts=(2,), ancestors=(2, 1)):
    return {
        "snapshot_date": DAY,
        "userid": userid,
        "name": name,
        "email": email,
        "org_email": org_email,
        "job_number": job,
        "dept_ids": list(depts),
        "dept_ancestors": list(ancestors),
    }


ROSTER = pd.DataFrame(
    [
        person("u1", "张三", email="Zhang.San@corp.example"),
        person("u2", "李四", org_email="lisi@corp.example"),
        person("u3", "王五", email="wangwu@home.example", job="J0003"),
        person("u4", "赵六"),
        person("u5", "钱七", email="shared@corp.example"),
        person("u6", "孙八", email="sunba@corp.example", depts=(211,), ancestors=(211, 21, 2, 1)),
        person("u7", "周九", email="zhoujiu@corp.example", depts=(4,), ancestors=(4, 1)),
    ]
)
ACCOUNTS = [
    PMUser("a1", "zhangsan", "zhang.san@corp.example", "张三"),
    PMUser("a2", "lisi", "LISI@corp.example", "李四"),
    PMUser("a3", "j0003", "wangwu@corp.example", "王五"),
    PMUser("a5", "shared1", "shared@corp.example", "钱七"),
    PMUser("a5b", "shared2", "shared@corp.example", "钱七"),
    PMUser("a6", "sunba", "sunba@corp.example", "孙八"),
    PMUser("a7", "zhoujiu", "zhoujiu@corp.example", "周九"),
    PMUser("gone", "old", "zhang.san@corp.example", "张三", active=False),
]


def statuses(frame):
    return {r.userid: (r.status, r.pm_user, r.strategy) for r in frame.itertuples()}


def test_matching_by_email_org_email_and_job_number_never_guessing():
    found = statuses(match_users(ROSTER, ACCOUNTS))
    assert found["u1"] == ("mapped", "a1", "email")  # case-insensitive; inactive ignored
    assert found["u2"] == ("mapped", "a2", "email")  # org_email
    assert found["u3"] == ("mapped", "a3", "job_number")  # private e-mail, login = job number
    assert found["u4"][0] == "unmapped"
    assert found["u5"][0] == "ambiguous" and pd.isna(found["u5"][1])
    reasons = match_users(ROSTER, ACCOUNTS).set_index("userid")["reason"]
    assert "no e-mail or job number" in reasons["u4"]
    assert "matches 2 PM accounts (a5, a5b)" in reasons["u5"]


def test_mapping_many_days_matches_each_day_and_reuses_only_unchanged_days():
    """`map_days` equals `match_users` day by day; a day whose roster or accounts changed is
    matched afresh, never served from an earlier day."""
    days = [date(2026, 11, d) for d in (2, 3, 4, 5)]
    accounts = pd.DataFrame([{**vars(a), "snapshot_date": d} for d in days for a in ACCOUNTS])
    # 11-04: 赵六 gets an e-mail and an account; 11-05: 张三's account leaves (inactive).
    accounts.loc[len(accounts)] = {**vars(PMUser("a4", "zhaoliu", "zl@corp.example", "赵六")),
                                   "snapshot_date": days[2]}  # fmt: skip
    accounts.loc[len(accounts)] = {**vars(PMUser("a4", "zhaoliu", "zl@corp.example", "赵六")),
                                   "snapshot_date": days[3]}  # fmt: skip
    accounts.loc[(accounts["snapshot_date"] == days[3]) & (accounts["pm_user"] == "a1"),
                 "active"] = False  # fmt: skip
    roster = pd.concat([ROSTER.assign(snapshot_date=d) for d in days], ignore_index=True)
    roster.loc[(roster["snapshot_date"] >= days[2]) & (roster["userid"] == "u4"), "email"] = (
        "zl@corp.example"
    )
    scope = Scope(departments=(21,), users=("u7",))
    mapped = map_days(roster, accounts, {}, scope)
    assert sorted(set(mapped["snapshot_date"])) == days
    for day in days:
        users = [
            PMUser(r.pm_user, r.login, r.email, r.name, bool(r.active))
            for r in accounts[accounts["snapshot_date"] == day].itertuples()
        ]
        expected = match_users(roster[roster["snapshot_date"] == day], users)
        got = mapped[mapped["snapshot_date"] == day].reset_index(drop=True)
        pd.testing.assert_frame_equal(got[expected.columns], expected)
        assert dict(zip(got["userid"], got["in_scope"], strict=True)) == {
            "u1": False, "u2": False, "u3": False, "u4": False, "u5": False, "u6": True,
            "u7": True,
        }  # fmt: skip
    found = {d: statuses(mapped[mapped["snapshot_date"] == d]) for d in days}
    assert found[days[1]]["u4"][0] == "unmapped" and found[days[2]]["u4"][:2] == ("mapped", "a4")
    assert found[days[2]]["u1"][:2] == ("mapped", "a1") and found[days[3]]["u1"][0] == "unmapped"


def test_explicit_mapping_wins_and_an_account_claimed_twice_is_used_by_nobody(tmp_path):
    path = tmp_path / "user_mapping.csv"
    path.write_text("userid,pm_user\nu5,a5b\nu4,a1\n", encoding="utf-8")
    found = match_users(ROSTER, ACCOUNTS, load_explicit_mapping(path))
    by_user = statuses(found)
    assert by_user["u5"] == ("mapped", "a5b", "explicit")
    # u4 explicitly claims a1, which u1 matches by e-mail: neither gets it.
    assert by_user["u4"][0] == by_user["u1"][0] == "ambiguous"
    assert "matched by 2 employees (u1, u4)" in found.set_index("userid")["reason"]["u1"]


def test_bad_mapping_and_allocation_files_name_the_line(tmp_path):
    mapping = tmp_path / "user_mapping.csv"
    mapping.write_text("userid,pm_user\nu1,a1\nu1,a2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"user_mapping.csv line 3: `userid` u1 is mapped twice"):
        load_explicit_mapping(mapping)
    allocations = tmp_path / "allocations.csv"
    allocations.write_text("userid,dept_id,issue,share\nu1,2,ATT-1,1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2: give exactly one of"):
        load_allocations(allocations)
    allocations.write_text("userid,dept_id,issue,share\n,2,ATT-1,half\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 2: `share` 'half' must be a number"):
        load_allocations(allocations)


@given(
    st.integers(min_value=0, max_value=24 * 60),
    st.lists(st.floats(min_value=0.01, max_value=100), min_size=1, max_size=6),
)
@settings(max_examples=200, deadline=None)
def test_shares_split_into_whole_minutes_that_add_up_exactly(total, shares):
    parts = split_minutes(total, shares)
    assert sum(parts) == total
    assert all(p >= 0 for p in parts)
    exact = [total * s / sum(shares) for s in shares]
    assert all(abs(p - e) < 1 for p, e in zip(parts, exact, strict=True))


def hours_rows(
    hours: dict[str, float],
    overtime: dict[str, float] | None = None,
    status: dict[str, str] | None = None,
):
    return pd.DataFrame(
        [
            {
                "userid": u,
                "work_date": DAY,
                "name": ROSTER.set_index("userid").at[u, "name"],
                "dept_id": 2,
                "status": (status or {}).get(u, "normal"),
                "effective_hours": h,
                "overtime_hours": (overtime or {}).get(u, 0.0),
                "rules_version": "v1",
            }
            for u, h in hours.items()
        ]
    )


def test_plan_splits_by_user_then_nearest_department_and_reports_skips(tmp_path):
    allocations = tmp_path / "allocations.csv"
    allocations.write_text(
        "userid,dept_id,issue,share\n"
        ",1,GEN-1,1\n"
        ",2,RD-1,2\n,2,RD-2,1\n"
        ",21,PLAT-1,1\n"
        "u2,,MINE-1,1\n",
        encoding="utf-8",
    )
    mapping = match_users(ROSTER, ACCOUNTS)
    hours = hours_rows({"u1": 8, "u2": 7, "u4": 8, "u5": 8, "u6": 8, "u7": 8})
    plan, skipped = plan_worklogs(
        hours, ROSTER, mapping, load_allocations(allocations), Scope(departments=(2,)), "jira"
    )
    by_user = {
        u: dict(zip(g["issue"], g["seconds"], strict=True)) for u, g in plan.groupby("userid")
    }
    assert by_user["u1"] == {"RD-1": 19200, "RD-2": 9600}  # 2:1 of 8 h
    assert by_user["u2"] == {"MINE-1": 7 * 3600}  # user rows win
    assert by_user["u6"] == {"PLAT-1": 8 * 3600}  # nearest department (211 → 21)
    assert "u7" not in by_user  # dept 4 is out of the pilot scope
    assert plan.groupby("userid")["seconds"].sum().to_dict() == {
        u: h * 3600 for u, h in {"u1": 8, "u2": 7, "u6": 8}.items()
    }
    assert plan["worklog_key"].is_unique
    assert plan.loc[0, "worklog_key"] == worklog_key(
        plan.loc[0, "userid"], DAY, plan.loc[0, "issue"], "work"
    )
    reasons = skipped.set_index("userid")["reason"]
    assert reasons["u4"].startswith("unmapped:") and reasons["u5"].startswith("ambiguous:")


def test_overtime_worklogs_only_when_the_rules_push_them(tmp_path):
    allocations = tmp_path / "allocations.csv"
    allocations.write_text("userid,dept_id,issue,share\n,1,GEN-1,1\n", encoding="utf-8")
    mapping = match_users(ROSTER, ACCOUNTS)
    hours = hours_rows({"u1": 0.0}, overtime={"u1": 2.5})
    args = (hours, ROSTER, mapping, load_allocations(allocations), Scope(), "jira")
    assert plan_worklogs(*args)[0].empty
    plan, _ = plan_worklogs(*args, push_overtime=True)
    assert list(zip(plan["kind"], plan["seconds"], strict=True)) == [("overtime", 9000)]


def test_exempt_days_are_pushed_only_when_the_rules_say_so(tmp_path):
    allocations = tmp_path / "allocations.csv"
    allocations.write_text("userid,dept_id,issue,share\n,1,GEN-1,1\n", encoding="utf-8")
    mapping = match_users(ROSTER, ACCOUNTS)
    exempt = {"u1": "exempt", "u3": "exempt", "u4": "exempt"}
    hours = hours_rows(
        {"u1": 8.0, "u2": 8.0, "u3": 0.0, "u4": 8.0}, overtime={"u1": 2.0}, status=exempt
    )
    args = (hours, ROSTER, mapping, load_allocations(allocations), Scope(), "jira")
    plan, skipped = plan_worklogs(*args, push_overtime=True)
    assert set(plan["userid"]) == {"u2"}  # no punches, no evidence of work: not even overtime
    reasons = skipped.set_index("userid")["reason"].to_dict()
    assert set(reasons) == {"u1", "u4"}  # u3's exempt Saturday has nothing to push
    assert reasons["u1"] == (
        "exempt (in no attendance group); set push_exempt: true in rules.yaml to push"
    )
    plan, skipped = plan_worklogs(*args, True, True)
    assert sorted(zip(plan["userid"], plan["kind"], plan["seconds"], strict=True)) == [
        ("u1", "overtime", 7200),
        ("u1", "work", 28800),
        ("u2", "work", 28800),
    ]
    assert "(exempt)" in plan.loc[plan["userid"] == "u1", "comment"].iloc[0]
    assert skipped.set_index("userid")["reason"].to_dict() == {
        "u4": "unmapped: " + mapping.set_index("userid").at["u4", "reason"]
    }


def planned(key, seconds, issue="ATT-1", user="a1"):
    return PlannedWorklog(key, "u1", DAY, user, issue, seconds)


def remote(key, seconds, rid, issue="ATT-1", user="a1"):
    return RemoteWorklog(rid, key, user, issue, DAY, seconds)


def test_the_diff_by_key():
    plan = [planned("new", 3600), planned("same", 7200), planned("changed", 1800)]
    held = [
        remote("same", 7200, "1"),
        remote("changed", 3600, "2"),
        remote("gone", 600, "3"),
        remote("same", 7200, "9"),  # a duplicate of ours
        remote("edited", 4000, "4"),
    ]
    last = {"same": 7200, "changed": 3600, "gone": 600, "edited": 3600}
    actions = sorted((d.action, d.key, d.remote.remote_id if d.remote else None) for d in
                     decide(plan, held, last))  # fmt: skip
    assert actions == [
        ("conflict", "edited", "4"),
        ("create", "new", None),
        ("delete", "gone", "3"),
        ("delete", "same", "9"),
        ("unchanged", "same", "1"),
        ("update", "changed", "2"),
    ]


def test_a_human_edit_to_a_planned_worklog_is_a_conflict_not_an_overwrite():
    decisions = decide([planned("k", 3600)], [remote("k", 5400, "7")], {"k": 3600})
    assert [(d.action, "edited in the PM system" in d.reason) for d in decisions] == [
        ("conflict", True)
    ]
    # Without a ledger entry (first push after the ledger was lost) ours is made right.
    assert [d.action for d in decide([planned("k", 3600)], [remote("k", 5400, "7")], {})] == [
        "update"
    ]


def test_keys_are_deterministic_and_distinct():
    assert worklog_key("u1", DAY, "ATT-1", "work") == worklog_key("u1", DAY, "ATT-1", "work")
    keys = {
        worklog_key(u, d, i, k)
        for u in ("u1", "u2")
        for d in (DAY, date(2026, 11, 4))
        for i in ("ATT-1", "ATT-2")
        for k in ("work", "overtime")
    }
    assert len(keys) == 16


def test_shipped_config_is_valid():
    from attendance_pipeline.resources.config import ConfigFolder

    ConfigFolder(path=str(Path(__file__).resolve().parent.parent / "config")).check_all()
