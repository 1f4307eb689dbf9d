"""Data-quality gates (checks/: gx and each stage's gates) on a simulated month: a clean October
passes every gate,
and each corruption fails the right gate with metadata naming the cause.

Run `python -m tests.test_gates` to print how long the GX import and each gate take on the month.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from attendance_pipeline import report_diff
from attendance_pipeline.checks import delivery as delivery_gates
from attendance_pipeline.checks import dingtalk as dingtalk_gates
from attendance_pipeline.checks import gx
from attendance_pipeline.checks import hours as hours_gates
from attendance_pipeline.checks.gx import GateResult
from attendance_pipeline.checks.quality import QualityConfig, load_quality_config
from attendance_pipeline.checks.report import report_gate
from attendance_pipeline.china_time import days, now_in_china
from attendance_pipeline.dingtalk.records import approvals_frame, attendance_frame, roster_frame
from attendance_pipeline.hours.calendar import WorkCalendar
from attendance_pipeline.hours.engine import derive_effective_hours
from attendance_pipeline.hours.reference import derive_frame
from attendance_pipeline.hours.rules import ConfigError, Rules, load_overrides, load_rules
from attendance_pipeline.pipeline_config import Scope
from attendance_pipeline.pm.base import PMUser
from attendance_pipeline.pm.mapping import match_users
from attendance_pipeline.pm.plan import load_allocations, plan_worklogs
from attendance_pipeline.schemas import (
    EFFECTIVE_HOURS,
    RAW_APPROVALS,
    RAW_ATTENDANCE,
    RECONCILIATION,
    ROSTER,
    USER_MAPPING,
    WORKLOG_PLAN,
    empty_frame,
    to_table,
)
from attendance_pipeline.simulators.dingtalk import DingTalkSimConfig, DingTalkSimulator
from attendance_pipeline.simulators.pm.accounts import Directory
from attendance_pipeline.vocabulary import Grain
from attendance_pipeline.warehouse import replace_rows
from tests.test_dingtalk_client import make_client

CONFIG = Path(__file__).resolve().parent.parent / "config"
SIM_TODAY = date(2026, 11, 20)
START, END = date(2026, 10, 1), date(2026, 10, 31)


@dataclass
class Month:
    """October 2026 of the simulated company, through the parsers, the rules and delivery."""

    roster: pd.DataFrame
    attendance: pd.DataFrame
    approvals: pd.DataFrame
    calendar: WorkCalendar
    hours: pd.DataFrame  # the vectorised engine
    rederived: pd.DataFrame  # the reference implementation
    mapping: pd.DataFrame
    plan: pd.DataFrame
    recon: pd.DataFrame
    previous_roster_rows: int
    report_diff: pd.DataFrame  # payroll against DingTalk's own report, pulled over HTTP


def build_month() -> Month:
    sim = DingTalkSimulator(DingTalkSimConfig(seed=7, employees=60, today=SIM_TODAY, latency_ms=0))
    now = now_in_china()
    departments = sim.truth_departments()
    users = sim.truth_users()
    groups = sim.company.group_map()
    roster = roster_frame(users, days(START, END), now, departments, groups)
    previous = roster_frame(users, [START - timedelta(days=1)], now, departments, groups)
    attendance = attendance_frame(sim.truth_attendance(START, END), now)
    approvals = approvals_frame(sim.truth_approvals(START, END), START, END, now)
    rules, calendar = load_rules(CONFIG / "rules.yaml"), WorkCalendar.load(CONFIG / "calendar.csv")
    inputs = (roster, attendance, approvals, load_overrides(CONFIG / "overrides.csv"), rules)
    hours = derive_effective_hours(*inputs, calendar)
    rederived = derive_frame(*inputs, calendar)

    # Identity: the PM directory built from the same company; explicit rows for everyone with an
    # account, and the pilot scope is those people (the rest have no PM account at all).
    directory = Directory(seed=7, employees=60)
    accounts = [PMUser(a.login, a.login, a.email, a.name, a.active) for a in directory.accounts]
    explicit = {u: t["login"] for u, t in directory.truth_mapping().items() if t["login"]}
    scope = Scope(users=tuple(sorted(explicit)))
    allocations = load_allocations(CONFIG / "allocations.csv")
    mappings, plans = [], []
    for day, people in roster.groupby("snapshot_date", sort=True):
        mapped = match_users(people, accounts, explicit)
        mapped["in_scope"] = mapped["userid"].isin(scope.users)
        mapped["snapshot_date"], mapped["pm_system"] = day, "jira"
        mappings.append(mapped)
        day_hours = hours[hours["work_date"] == day]
        plans.append(plan_worklogs(day_hours, people, mapped, allocations, scope, "jira", False)[0])
    mapping = pd.concat(mappings, ignore_index=True)[USER_MAPPING.names]
    plan = pd.concat(plans, ignore_index=True)
    recon = pd.DataFrame(
        {
            "work_date": plan["work_date"],
            "worklog_key": plan["worklog_key"],
            "userid": plan["userid"],
            "pm_user": plan["pm_user"],
            "issue": plan["issue"],
            "planned_seconds": plan["seconds"],
            "remote_seconds": plan["seconds"],
            "remote_id": [f"r{i}" for i in range(len(plan))],
            "status": "ok",
        }
    )
    return Month(
        roster,
        attendance,
        approvals,
        calendar,
        hours,
        rederived,
        mapping,
        plan,
        recon,
        int(previous["userid"].nunique()),
        _report_diff(sim, hours, roster, rules),
    )


def _report_diff(
    sim: DingTalkSimulator, hours: pd.DataFrame, roster: pd.DataFrame, rules: Rules
) -> pd.DataFrame:
    """The month reconciled in DuckDB with DingTalk's report as the simulator serves it."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    replace_rows(
        con,
        "effective_hours",
        EFFECTIVE_HOURS,
        to_table(hours, EFFECTIVE_HOURS, "test"),
        "true",
        [],
    )
    con.register("roster", roster[["userid", "snapshot_date", "attendance_group_id"]])
    with sim.serve() as running:
        userids = sorted(hours["userid"].unique())
        table = report_diff.pull_report(
            make_client(running.url), userids, "2026-10", rules.leave_types, SIM_TODAY
        )
    report_diff.store_report(con, "2026-10", table)
    tolerance = {"days": 0, "count": 0, "minutes": 5, "hours": 0.5}
    diff = report_diff.reconcile(con, "2026-10", tolerance, pulled_on=SIM_TODAY)
    con.close()
    return diff.to_pandas()


@pytest.fixture(scope="module")
def month() -> Month:
    return build_month()


def all_gates(m: Month) -> dict[str, GateResult]:
    """Every gate on the month, by check name."""
    judged = [
        dingtalk_gates.raw_attendance_gate(m.attendance, START, END),
        dingtalk_gates.raw_approvals_gate(m.approvals, START, END),
        hours_gates.completeness_gate(m.roster, m.attendance, m.approvals, m.calendar, START, END),
        hours_gates.hours_gate(m.hours, m.rederived, m.roster),
    ]
    results = [
        dingtalk_gates.roster_gate(m.roster, m.previous_roster_rows),
        *judged,
        gx.held_back_share_gate(judged, m.hours),
        hours_gates.calendar_gate(days(START, END), m.calendar),
        hours_gates.patterns_gate(m.hours, QualityConfig()),
        delivery_gates.mapping_gate(m.mapping),
        delivery_gates.plan_gate(m.plan, m.hours, m.mapping),
        delivery_gates.reconciliation_gate(m.recon),
        delivery_gates.reconciliation_conflicts_gate(m.recon),
        report_gate(m.report_diff, True),
    ]
    return {r.name: r for r in results}


def failure(result: GateResult, expectation: str, text: str = "") -> gx.FailedExpectation:
    """The failed expectation of `result` of that type whose detail mentions `text`."""
    assert not result.passed, result.summary()
    found = [f for f in result.failures if f.expectation == expectation and text in f.detail]
    assert found, f"no failed {expectation} mentioning {text!r} in {result.summary()}"
    return found[0]


def assert_json_safe(result: GateResult) -> dict:
    metadata = result.metadata()
    assert json.loads(json.dumps(metadata)) == metadata
    return metadata


# ------------------------------------------------------------------------------ the clean month


def test_a_clean_simulated_month_passes_every_gate(month):
    results = all_gates(month)
    assert set(results) == {name for _, name, _, _ in _checks_table()}
    for result in results.values():
        assert result.passed, result.summary()
        assert result.expectations_run > 0 and not result.failures
        assert_json_safe(result)
        assert result.summary().startswith(f"{result.name}: passed (")
    # The month really was covered: 58 people on 18 workdays, every employee-day re-derived.
    complete = results["inputs_complete"]
    assert len(complete.covered["workdays"]) == 18
    assert complete.rows_checked == complete.covered["employee_workdays"] > 900
    # People in no attendance group are exempt: counted, never incomplete.
    assert complete.covered["exempt_employee_workdays"] == 3 * 18
    assert results["hours_valid"].rows_checked == len(month.rederived) > 1700
    assert results["plan_valid"].rows_checked == len(month.plan) > 500
    assert results["mapping_valid"].covered["in_scope_employee_days"] > 50 * 31
    assert results["unusual_patterns"].covered["full_weeks"] == [
        "2026-10-05",
        "2026-10-12",
        "2026-10-19",
    ]
    severities = {name: r.severity for name, r in results.items()}
    assert severities == {name: ("error" if b else "warn") for _, name, b, _ in _checks_table()}


def test_frames_read_back_from_the_lake_and_empty_partitions(month):
    """Arrow-backed strings and timestamps (as the lake reads them) pass too; an empty day passes
    every gate but the roster's."""
    lake = dataclasses.replace(
        month,
        **{
            name: to_table(getattr(month, name), schema, name).to_pandas()
            for name, schema in LAKE_SCHEMAS.items()
        },
    )
    assert all(r.passed for r in all_gates(lake).values())

    empty = Month(
        calendar=month.calendar,
        previous_roster_rows=58,
        report_diff=empty_frame(report_diff.REPORT_DIFF),
        **{name: empty_frame(schema) for name, schema in LAKE_SCHEMAS.items()},
    )
    failed = {name for name, r in all_gates(empty).items() if not r.passed}
    assert failed == {"roster_valid"}


LAKE_SCHEMAS = {
    "roster": ROSTER,
    "attendance": RAW_ATTENDANCE,
    "approvals": RAW_APPROVALS,
    "hours": EFFECTIVE_HOURS,
    "rederived": EFFECTIVE_HOURS,
    "mapping": USER_MAPPING,
    "plan": WORKLOG_PLAN,
    "recon": RECONCILIATION,
}


def _checks_table() -> list[tuple[str, str, bool, str]]:
    from attendance_pipeline.checks.specs import GATES

    return GATES


# ------------------------------------------------------------------------------ raw layers


def test_a_missing_employee_day_fails_completeness_naming_person_and_day(month):
    hours = month.hours
    explained = set(
        zip(
            month.approvals.loc[month.approvals["biz_type"].isin([2, 3]), "userid"],
            month.approvals.loc[month.approvals["biz_type"].isin([2, 3]), "work_date"],
            strict=True,
        )
    )
    workdays = hours[(hours["day_type"] == "workday") & (hours["status"] == "normal")]
    victim = next(r for r in workdays.itertuples() if (r.userid, r.work_date) not in explained)
    attendance = month.attendance[
        ~(
            (month.attendance["userid"] == victim.userid)
            & (month.attendance["work_date"] == victim.work_date)
        )
    ]
    result = hours_gates.completeness_gate(
        month.roster, attendance, month.approvals, month.calendar, START, END
    )
    assert result.severity == "error"
    failed = failure(result, "expect_column_values_to_be_in_set", "no leave or trip approval")
    assert failed.unexpected_count == 1
    assert failed.sample == [
        {
            "userid": victim.userid,
            "name": victim.name,
            "work_date": victim.work_date.isoformat(),
            "check_points": 0,
            "leave_or_trip": None,
            "explained": False,
        }
    ]
    assert victim.userid in result.summary() and victim.work_date.isoformat() in result.summary()
    assert_json_safe(result)


def test_a_leave_day_without_check_points_is_explained(month):
    leave = month.approvals[month.approvals["biz_type"] == 3].iloc[0]
    if month.calendar.day_type(leave["work_date"]) != ("workday", "chinese_calendar"):
        pytest.skip("the first leave day is not a workday")
    attendance = month.attendance[
        ~(
            (month.attendance["userid"] == leave["userid"])
            & (month.attendance["work_date"] == leave["work_date"])
        )
    ]
    result = hours_gates.completeness_gate(
        month.roster, attendance, month.approvals, month.calendar, START, END
    )
    assert result.passed, result.summary()


def test_a_duplicated_check_point_fails_on_the_compound_key(month):
    copy = month.attendance.iloc[[10]].assign(id=month.attendance["id"].max() + 1)
    attendance = pd.concat([month.attendance, copy], ignore_index=True)
    result = dingtalk_gates.raw_attendance_gate(attendance, START, END)
    failed = failure(result, "expect_compound_columns_to_be_unique", "duplicated check point")
    assert failed.unexpected_count == 2  # the original and its copy
    assert {row["id"] for row in failed.sample} == {
        int(month.attendance["id"].iloc[10]),
        int(copy["id"].iloc[0]),
    }
    assert failed.column == "userid, work_date, check_type, base_check_time"
    assert len(result.failures) == 1  # `id` itself is still unique
    assert_json_safe(result)


def test_a_row_outside_its_partition_and_an_unknown_time_result(month):
    attendance = month.attendance.copy()
    attendance.loc[3, "work_date"] = date(2026, 11, 5)
    attendance.loc[7, "time_result"] = "Bogus"
    result = dingtalk_gates.raw_attendance_gate(attendance, START, END)
    outside = failure(result, "expect_column_values_to_be_between", "outside the partition")
    assert outside.unexpected_count == 1 and outside.sample[0]["work_date"] == "2026-11-05"
    assert "2026-11-05" in outside.detail
    bogus = failure(result, "expect_column_values_to_be_in_set", "time_result not in")
    assert bogus.detail.endswith(": 1 row (Bogus)")
    assert bogus.sample[0]["id"] == int(attendance.loc[7, "id"])
    assert {f.column for f in result.failures} == {"work_date", "time_result"}
    metadata = assert_json_safe(result)
    assert metadata["failed_expectations"] == 2 and metadata["rows_checked"] == len(attendance)


def test_a_missing_column_is_reported_not_raised(month):
    result = dingtalk_gates.raw_attendance_gate(
        month.attendance.drop(columns="time_result"), START, END
    )
    failure(result, "expect_table_columns_to_match_set", "missing time_result")
    failure(result, "expect_column_values_to_be_in_set", "not checked, column(s) time_result")


def test_approvals_ending_before_they_begin_or_of_unknown_type(month):
    approvals = month.approvals.copy()
    approvals.loc[0, "end_at"] = approvals.loc[0, "begin_at"] - pd.Timedelta(hours=1)
    approvals.loc[1, "biz_type"] = 9
    result = dingtalk_gates.raw_approvals_gate(approvals, START, END)
    order = failure(result, "expect_column_pair_values_a_to_be_greater_than_b")
    assert order.unexpected_count == 1
    assert order.sample[0]["approve_id"] == approvals.loc[0, "approve_id"]
    assert failure(result, "expect_column_values_to_be_in_set", "biz_type").detail.endswith("(9)")


def test_a_halved_roster_fails(month):
    last = month.roster[month.roster["snapshot_date"] == END]
    halved = last.iloc[: len(last) // 2 - 1]
    result = dingtalk_gates.roster_gate(halved, month.previous_roster_rows)
    failed = failure(result, "expect_column_values_to_be_between", "roster shrank")
    assert failed.sample == [
        {
            "snapshot_date": "2026-10-31",
            "employees": len(halved),
            "previous_employees": month.previous_roster_rows,
            "ratio": len(halved) / month.previous_roster_rows,
        }
    ]
    assert dingtalk_gates.roster_gate(last, month.previous_roster_rows).passed
    assert dingtalk_gates.roster_gate(halved, None).passed  # nothing to compare with
    empty = dingtalk_gates.roster_gate(last.iloc[0:0], None)
    assert "roster is empty" in failure(empty, "expect_table_row_count_to_be_between").detail


# ------------------------------------------------------------------------------ hours


def test_hours_out_of_range_or_disagreeing_with_the_rederivation(month):
    hours = month.hours.copy()
    out = hours.index[hours["status"] == "normal"][0]
    changed = hours.index[hours["status"] == "late"][0]
    hours.loc[out, "effective_hours"] = 25.0
    hours.loc[changed, "status"] = "normal"
    result = hours_gates.hours_gate(hours, month.rederived, month.roster)
    assert (
        failure(result, "expect_column_values_to_be_between", "effective_hours").sample[0][
            "effective_hours"
        ]
        == 25.0
    )
    disagree = failure(result, "expect_column_values_to_be_in_set", "re-derivation (status")
    assert disagree.unexpected_count == 2
    by_user = {(row["userid"], row["work_date"]): row for row in disagree.sample}
    row = by_user[(hours.loc[changed, "userid"], hours.loc[changed, "work_date"].isoformat())]
    assert (row["status"], row["status_rederived"]) == ("normal", "late")
    # Exactly those two employee-days are held back; the day totals of the rows that agree still
    # reconcile, so nothing is systemic and the rest of the month flows.
    assert not result.systemic
    assert {(r.userid, r.work_date) for r in result.held.itertuples()} == {
        (hours.loc[i, "userid"], hours.loc[i, "work_date"]) for i in (out, changed)
    }
    assert all(result.held["fix"].str.contains("rules bug"))
    assert not [f for f in result.failures if "day totals" in f.detail]
    metadata = assert_json_safe(result)
    assert metadata["held_back_employee_days"] == 2 and metadata["systemic"] is False


def test_a_missing_or_duplicated_hours_row(month):
    dropped = month.hours.drop(index=month.hours.index[5])
    result = hours_gates.hours_gate(dropped, month.rederived, month.roster)
    person = failure(result, "expect_column_values_to_be_in_set", "without exactly one row")
    assert person.sample[0]["present"] == "no hours row"
    only = failure(result, "expect_column_values_to_be_in_set", "re-derivation (status")
    assert only.sample[0]["present"] == "only re-derived"
    gone = month.hours.loc[month.hours.index[5]]
    assert [(r.userid, r.work_date) for r in result.held.itertuples()] == [
        (gone["userid"], gone["work_date"])
    ]

    doubled = pd.concat([month.hours, month.hours.iloc[[5]]], ignore_index=True)
    result = hours_gates.hours_gate(doubled, month.rederived, month.roster)
    failure(result, "expect_compound_columns_to_be_unique", "more than one row")


# ------------------------------------------------------------------------------ delivery


def test_an_unmapped_in_scope_user_and_an_account_claimed_twice(month):
    mapping = month.mapping.copy()
    latest = mapping.index[(mapping["snapshot_date"] == END) & mapping["in_scope"]]
    lost, thief, owner = latest[0], latest[1], latest[2]
    mapping.loc[lost, ["status", "pm_user", "reason"]] = ["unmapped", None, "account deleted"]
    mapping.loc[thief, "pm_user"] = mapping.loc[owner, "pm_user"]
    fixes = {mapping.loc[lost, "userid"]: "create a PM account with e-mail ab***@corp.example"}
    result = delivery_gates.mapping_gate(mapping, fixes=fixes)
    unmapped = failure(result, "expect_column_values_to_be_in_set", "in-scope employee")
    assert unmapped.detail.endswith(": 1 row (unmapped)")
    assert unmapped.sample[0]["userid"] == mapping.loc[lost, "userid"]
    assert unmapped.sample[0]["reason"] == "account deleted"
    twice = failure(result, "expect_compound_columns_to_be_unique", "claimed by two")
    assert {r["userid"] for r in twice.sample} == {
        mapping.loc[thief, "userid"],
        mapping.loc[owner, "userid"],
    }
    # Three people on one day are held back from delivery only, each with their own fix.
    assert not result.systemic and result.blocks == "delivery"
    held = result.held.set_index("userid")
    assert set(held.index) == {mapping.loc[i, "userid"] for i in (lost, thief, owner)}
    assert set(held["work_date"]) == {END}
    assert "account deleted" in held.loc[mapping.loc[lost, "userid"], "reason"]
    assert held.loc[mapping.loc[lost, "userid"], "fix"] == fixes[mapping.loc[lost, "userid"]]
    assert_json_safe(result)


def test_mapping_is_systemic_when_the_pm_side_is_broken(month):
    # The PM system listed no account at all.
    empty = delivery_gates.mapping_gate(month.mapping, accounts=0)
    assert empty.systemic
    failure(empty, "expect_column_values_to_be_between", "listed no user accounts")
    # More than max_unmapped_share of the in-scope people unmapped on the latest day.
    mapping = month.mapping.copy()
    scoped = mapping.index[mapping["in_scope"] & (mapping["snapshot_date"] == END)]
    mapping.loc[scoped[: len(scoped) * 2 // 3], ["status", "pm_user"]] = ["unmapped", None]
    broken = delivery_gates.mapping_gate(mapping, accounts=10)
    assert broken.systemic
    failure(broken, "expect_column_values_to_be_between", "in-scope employees unmapped")
    # A few unmapped people are not systemic.
    few = month.mapping.copy()
    few.loc[scoped[:1], ["status", "pm_user"]] = ["unmapped", None]
    assert not delivery_gates.mapping_gate(few, accounts=10).systemic


def test_one_bad_raw_row_holds_its_employee_day_a_change_for_everyone_is_systemic(month):
    attendance = month.attendance.copy()
    attendance.loc[attendance.index[0], "time_result"] = "Bogus"
    one = dingtalk_gates.raw_attendance_gate(attendance, START, END)
    assert not one.passed and not one.systemic
    first = attendance.iloc[0]
    assert [(r.userid, r.work_date) for r in one.held.itertuples()] == [
        (first["userid"], first["work_date"])
    ]
    # Every value renamed (DingTalk changed its enum): systemic, nothing held person by person.
    renamed = month.attendance.assign(time_result=month.attendance["time_result"].str.lower())
    everyone = dingtalk_gates.raw_attendance_gate(renamed, START, END)
    assert everyone.systemic
    assert any("schema or value change" in f.detail for f in everyone.failures)
    # A column gone: systemic.
    assert dingtalk_gates.raw_attendance_gate(
        month.attendance.drop(columns="check_type"), START, END
    ).systemic


def test_held_back_share_stops_a_day_past_the_threshold(month):
    hours = month.hours
    day = hours[hours["work_date"] == hours["work_date"].iloc[0]]
    few = day.head(2)[["userid", "work_date"]].assign(name=None, reason="r", fix="f")
    many = day.head(len(day) // 2)[["userid", "work_date"]].assign(name=None, reason="r", fix="f")

    def holding(rows):
        failed = gx.FailedExpectation("x", None, "x", len(rows), [], Grain.EMPLOYEE_DAY, rows)
        return gx.GateResult("inputs_complete", False, "error", len(rows), 1, [failed])

    assert gx.held_back_share_gate([holding(few)], hours).passed
    stopped = gx.held_back_share_gate([holding(many)], hours)
    assert stopped.systemic
    assert stopped.failures[0].sample[0]["held_back"] == len(many)


def test_a_plan_that_disagrees_with_effective_hours_or_the_mapping(month):
    plan = month.plan.copy()
    plan.loc[0, "seconds"] += 60
    result = delivery_gates.plan_gate(plan, month.hours, month.mapping)
    failed = failure(result, "expect_column_values_to_be_in_set", "planned seconds differ")
    assert failed.unexpected_count == 1
    (row,) = failed.sample
    assert (row["userid"], row["work_date"]) == (
        plan.loc[0, "userid"],
        plan.loc[0, "work_date"].isoformat(),
    )
    assert row["planned_seconds"] == row["expected_seconds"] + 60

    mapping = month.mapping.copy()
    who = (mapping["userid"] == plan.loc[0, "userid"]) & (
        mapping["snapshot_date"] == plan.loc[0, "work_date"]
    )
    mapping.loc[who, "status"] = "ambiguous"
    plan = month.plan.copy()
    plan.loc[1, "issue"] = " "
    result = delivery_gates.plan_gate(plan, month.hours, mapping)
    not_mapped = failure(result, "expect_column_values_to_be_in_set", "mapping is not")
    assert "ambiguous" in not_mapped.detail
    assert not_mapped.sample[0]["userid"] == plan.loc[0, "userid"]
    failure(result, "expect_column_values_to_match_regex", "issue empty")


def test_reconciliation_missing_extra_different_fail_and_a_conflict_only_warns(month):
    recon = month.recon.copy()
    recon.loc[0:2, "status"] = ["missing", "extra", "different"]
    result = delivery_gates.reconciliation_gate(recon)
    failed = failure(result, "expect_column_values_to_not_be_in_set", "missing, extra")
    assert failed.unexpected_count == 3
    assert {r["status"] for r in failed.sample} == {"missing", "extra", "different"}
    assert result.covered["statuses"]["missing"] == 1

    recon = month.recon.copy()
    recon.loc[4, "status"] = "conflict"
    assert delivery_gates.reconciliation_gate(recon).passed
    warned = delivery_gates.reconciliation_conflicts_gate(recon)
    assert warned.severity == "warn"
    conflict = failure(warned, "expect_column_values_to_not_be_in_set", "edited by a person")
    assert conflict.sample[0]["worklog_key"] == recon.loc[4, "worklog_key"]
    assert "WARNING" in warned.summary()
    both = delivery_gates.reconciliation_gates(recon)
    assert [(r.name, r.passed, r.severity) for r in both] == [
        ("reconciled", True, "error"),
        ("no_conflicts", False, "warn"),
    ]


# ------------------------------------------------------------------------------ warn-only


def test_a_2027_day_without_calendar_warns_naming_it(month):
    wanted = [date(2026, 12, 31), date(2027, 1, 4), date(2027, 1, 5)]
    result = hours_gates.calendar_gate(wanted, WorkCalendar())
    assert result.severity == "warn"
    failed = failure(result, "expect_column_values_to_be_in_set", "no calendar covers")
    assert failed.sample == [
        {"day": "2027-01-04", "covered": False},
        {"day": "2027-01-05", "covered": False},
    ]
    assert result.covered["uncovered_days"] == ["2027-01-04", "2027-01-05"]
    assert "2027-01-04" in result.summary()
    assert hours_gates.calendar_gate(
        wanted, WorkCalendar({date(2027, 1, 1): ("holiday", "元旦")})
    ).passed


def test_a_late_streak_and_a_department_drop_warn(month):
    hours = month.hours.copy()
    person = hours["userid"].iloc[0]
    streak = hours.index[
        (hours["userid"] == person)
        & (hours["day_type"] == "workday")
        & (hours["work_date"] >= date(2026, 10, 12))
    ][:5]
    hours.loc[streak, "status"] = "late"
    result = hours_gates.patterns_gate(hours, QualityConfig())
    assert result.severity == "warn"
    failed = failure(result, "expect_column_values_to_be_between", "late on 5 or more")
    assert failed.sample[0]["userid"] == person and failed.sample[0]["late_streak"] >= 5
    assert hours_gates.patterns_gate(hours, QualityConfig(late_streak=30)).passed

    hours = month.hours.copy()
    dept = hours["dept_id"].value_counts().index[0]
    week = (hours["dept_id"] == dept) & (hours["work_date"] >= date(2026, 10, 19))
    hours.loc[week & (hours["work_date"] <= date(2026, 10, 25)), "effective_hours"] *= 0.3
    result = hours_gates.patterns_gate(hours)
    drop = failure(result, "expect_column_values_to_be_between", "fell below 0.5")
    assert drop.sample[0]["dept_id"] == dept and drop.sample[0]["week"] == "2026-10-19"

    one_week = month.hours[month.hours["work_date"] <= date(2026, 10, 14)]
    result = hours_gates.patterns_gate(one_week)
    assert result.passed and "fewer than two full weeks" in result.covered["dept_drop"]


# ------------------------------------------------------------------------------ config


def test_quality_config_defaults_and_errors_name_the_line(tmp_path):
    assert load_quality_config(tmp_path / "absent.yaml") == QualityConfig()
    assert load_quality_config(CONFIG / "quality.yaml") == QualityConfig()
    path = tmp_path / "quality.yaml"
    path.write_text("# thresholds\nroster_min_ratio: 0.6\nlate_streak: many\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"quality.yaml line 3: `late_streak`: must be a whole"):
        load_quality_config(path)
    path.write_text("sample_rows: 5\nlate_streek: 4\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 2: `late_streek`: unknown setting"):
        load_quality_config(path)
    path.write_text("roster_min_ratio: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 1: `roster_min_ratio`: .*less than or equal"):
        load_quality_config(path)
    path.write_text("late_streak: [3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 2: not valid YAML"):
        load_quality_config(path)
    path.write_text("sample_rows: 2\n", encoding="utf-8")
    assert load_quality_config(path).sample_rows == 2


def test_the_rederivation_sample_is_bounded_in_employee_days(tmp_path):
    defaults = QualityConfig()
    # A day or a month re-derives the full 100-employee sample; longer windows fewer people.
    assert defaults.rederive_sample_size(1) == defaults.rederive_sample_size(31) == 100
    assert defaults.rederive_sample_size(180) == 3100 // 180 == 17
    assert defaults.rederive_sample_size(365) == 8
    assert defaults.rederive_sample_size(10_000) == 1  # never none
    path = tmp_path / "quality.yaml"
    path.write_text("rederive_max_employee_days: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 1: `rederive_max_employee_days`"):
        load_quality_config(path)
    path.write_text("rederive_max_employees: 5\nrederive_max_employee_days: 62\n", "utf-8")
    config = load_quality_config(path)
    assert [config.rederive_sample_size(d) for d in (1, 12, 31, 62)] == [5, 5, 2, 1]


def test_sample_rows_follow_the_config(month):
    attendance = month.attendance.assign(time_result="Bogus")
    result = dingtalk_gates.raw_attendance_gate(
        attendance, START, END, quality=QualityConfig(sample_rows=2)
    )
    failed = failure(result, "expect_column_values_to_be_in_set", "time_result")
    assert failed.unexpected_count == len(attendance) and len(failed.sample) == 2


# ------------------------------------------------------------------------------ timings


def main() -> None:
    """Print how long the GX import + context and each gate take on the simulated month."""
    started = time.perf_counter()
    gx.warm_up()
    print(f"GX import + ephemeral context: {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    month = build_month()
    print(f"simulated month (engine + reference + plan): {time.perf_counter() - started:.2f} s")
    for _ in range(2):  # the second round shows the warm numbers
        started = time.perf_counter()
        all_gates(month)
        total = time.perf_counter() - started
        print(f"all gates: {total:.2f} s")
    runs = {
        "roster_valid": lambda: dingtalk_gates.roster_gate(
            month.roster, month.previous_roster_rows
        ),
        "raw_attendance_valid": lambda: dingtalk_gates.raw_attendance_gate(
            month.attendance, START, END
        ),
        "raw_approvals_valid": lambda: dingtalk_gates.raw_approvals_gate(
            month.approvals, START, END
        ),
        "inputs_complete": lambda: hours_gates.completeness_gate(
            month.roster, month.attendance, month.approvals, month.calendar, START, END
        ),
        "hours_valid": lambda: hours_gates.hours_gate(month.hours, month.rederived, month.roster),
        "calendar_covered": lambda: hours_gates.calendar_gate(days(START, END), month.calendar),
        "unusual_patterns": lambda: hours_gates.patterns_gate(month.hours),
        "mapping_valid": lambda: delivery_gates.mapping_gate(month.mapping),
        "plan_valid": lambda: delivery_gates.plan_gate(month.plan, month.hours, month.mapping),
        "reconciled": lambda: delivery_gates.reconciliation_gate(month.recon),
        "no_conflicts": lambda: delivery_gates.reconciliation_conflicts_gate(month.recon),
    }
    for name, run in runs.items():
        started = time.perf_counter()
        result = run()
        elapsed = time.perf_counter() - started
        print(f"  {name:<22} {elapsed * 1000:7.0f} ms  {result.rows_checked:>6} rows  "
              f"{result.expectations_run:>2} expectations  passed={result.passed}")  # fmt: skip


if __name__ == "__main__":
    main()
