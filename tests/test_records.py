"""Parsing DingTalk replies (the contract's samples) into the lake's typed frames."""

import json
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from attendance_pipeline.china_time import SHANGHAI
from attendance_pipeline.dingtalk.errors import DingTalkBadReply
from attendance_pipeline.dingtalk.records import (
    approval_interval,
    approvals_frame,
    attendance_frame,
    roster_frame,
    stored_roster_users,
    with_leavers,
)
from attendance_pipeline.schemas import RAW_APPROVALS, RAW_ATTENDANCE, ROSTER, to_table

SAMPLES = Path(__file__).parent / "fixtures" / "dingtalk"
PULLED = datetime(2025, 11, 20, 3, 0, tzinfo=SHANGHAI)


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def test_attendance_sample_parses_with_china_dates_and_missing_record_ids():
    frame = attendance_frame(sample("dingtalk_attendance_list.json")["recordresult"], PULLED)
    table = to_table(frame, RAW_ATTENDANCE, "test")
    assert table.schema == RAW_ATTENDANCE
    rows = {row["id"]: row for row in table.to_pylist()}
    assert set(rows) == {70011, 70012, 70013}
    # 1762704000000 is 2025-11-10 00:00 in Beijing (16:00 UTC the day before).
    assert {row["work_date"] for row in rows.values()} == {date(2025, 11, 10)}
    assert rows[70012]["record_id"] is None and rows[70012]["time_result"] == "NotSigned"
    assert rows[70011]["record_id"] == 80011
    assert rows[70013]["approve_id"] == "4850378c0ee83"
    assert rows[70013]["proc_inst_id"] == "a1b2c3-proc"
    late = rows[70011]["user_check_time"].astimezone(SHANGHAI)
    assert (late.hour, late.minute) == (9, 17)
    # The leading zero of a userid survives.
    assert rows[70013]["userid"] == "012345"


def test_offduty_after_midnight_keeps_its_work_date():
    work_date_ms = 1762704000000  # 2025-11-10 local midnight
    punch_ms = work_date_ms + (24 * 60 + 30) * 60_000  # 2025-11-11 00:30 Beijing
    record = {
        "id": 1,
        "recordId": 2,
        "userId": "u1",
        "workDate": work_date_ms,
        "checkType": "OffDuty",
        "timeResult": "Normal",
        "baseCheckTime": work_date_ms + 18 * 3_600_000,
        "userCheckTime": punch_ms,
    }
    row = to_table(attendance_frame([record], PULLED), RAW_ATTENDANCE, "t").to_pylist()[0]
    assert row["work_date"] == date(2025, 11, 10)
    assert row["user_check_time"].astimezone(SHANGHAI).date() == date(2025, 11, 11)


def test_approval_intervals_follow_duration_unit():
    approvals = {a["approveId"]: a for a in sample("dingtalk_approvals_query.json")["result"]}
    begin, end = approval_interval(approvals["4850378c0ee83"])  # day 11-10..11-11
    assert begin == datetime(2025, 11, 10, tzinfo=SHANGHAI)
    assert end == datetime(2025, 11, 12, tzinfo=SHANGHAI)
    begin, end = approval_interval(approvals["4850378c0ee84"])  # 11-12 PM .. 11-13 AM
    assert begin == datetime(2025, 11, 12, 12, tzinfo=SHANGHAI)
    assert end == datetime(2025, 11, 13, 12, tzinfo=SHANGHAI)
    begin, end = approval_interval(approvals["4850378c0ee85"])  # hour 10:00-16:30
    assert (begin.hour, end.hour, end.minute) == (10, 16, 30)


def test_approvals_explode_to_one_row_per_overlapped_day_inside_the_window():
    approvals = sample("dingtalk_approvals_query.json")["result"]
    frame = approvals_frame(approvals, date(2025, 11, 11), date(2025, 11, 13), PULLED)
    table = to_table(frame, RAW_APPROVALS, "t")
    days_by_id: dict[str, list[date]] = {}
    for row in table.to_pylist():
        days_by_id.setdefault(row["approve_id"], []).append(row["work_date"])
    assert days_by_id["4850378c0ee83"] == [date(2025, 11, 11)]  # 11-10 is outside the window
    assert days_by_id["4850378c0ee84"] == [date(2025, 11, 12), date(2025, 11, 13)]
    assert days_by_id["4850378c0ee86"] == [date(2025, 11, 11), date(2025, 11, 12)]
    assert "4850378c0ee85" not in days_by_id  # 11-15 is outside the window


def test_bad_approval_time_is_a_clear_error():
    bad = {"approveId": "x1", "durationUnit": "halfDay", "beginTime": "2025-11-12 noon"}
    with pytest.raises(DingTalkBadReply, match=r"x1.*halfDay"):
        approval_interval(bad)


def test_a_reply_field_missing_is_a_clear_error_naming_api_row_and_field():
    records = sample("dingtalk_attendance_list.json")["recordresult"]
    broken = [{k: v for k, v in r.items() if k != "checkType"} for r in records]
    with pytest.raises(DingTalkBadReply, match=r"attendance/list.*record 70011.*'checkType'"):
        attendance_frame(broken, PULLED)
    approvals = sample("dingtalk_approvals_query.json")["result"]
    no_unit = [{k: v for k, v in a.items() if k != "bizType"} for a in approvals]
    with pytest.raises(DingTalkBadReply, match=r"approvals/query.*'bizType' missing"):
        approvals_frame(no_unit, date(2025, 11, 1), date(2025, 11, 30), PULLED)


def test_roster_keeps_absent_fields_null_and_excludes_people_not_yet_hired():
    users = sample("dingtalk_user_list.json")["result"]["list"]
    users[1]["hired_date"] = 1762704000000  # 2025-11-10
    frame = roster_frame(users, [date(2025, 11, 9), date(2025, 11, 10)], PULLED)
    table = to_table(frame, ROSTER, "t")
    rows = table.to_pylist()
    assert [(r["snapshot_date"].day, r["userid"]) for r in rows] == [
        (9, "012345"),
        (10, "012345"),
        (10, "manager4220"),
    ]
    assert rows[0]["dept_ids"] == [21, 22]
    assert rows[2]["title"] is None and rows[2]["email"] is None


def test_schema_mismatch_names_the_columns():
    frame = attendance_frame(sample("dingtalk_attendance_list.json")["recordresult"], PULLED)
    with pytest.raises(ValueError, match=r"missing \['id'\]"):
        to_table(frame.drop(columns=["id"]), RAW_ATTENDANCE, "asset raw_attendance")
    assert isinstance(to_table(frame, RAW_ATTENDANCE, "x"), pa.Table)


def test_roster_carries_groups_and_ends_a_leaver_at_the_last_work_day(tmp_path):
    users = sample("dingtalk_user_list.json")["result"]["list"]
    days = [date(2025, 11, 9), date(2025, 11, 10), date(2025, 11, 11)]
    groups = {"012345": 9001}
    leaver = {"userid": "gone1", "last_work_date": date(2025, 11, 10), "name": "离职者"}
    merged, group_map, last = with_leavers(
        users, groups, [{**leaver, "dept_ids": [41], "main_dept_id": 41}], {}
    )
    assert group_map == {"012345": 9001, "gone1": 9001}  # no stored row: the usual group
    frame = roster_frame(merged, days, PULLED, (), group_map, last)
    rows = to_table(frame, ROSTER, "t").to_pylist()
    gone = [r for r in rows if r["userid"] == "gone1"]
    assert [r["snapshot_date"] for r in gone] == days[:2]
    assert {r["last_work_date"] for r in gone} == {date(2025, 11, 10)}
    assert gone[0]["name"] == "离职者" and gone[0]["dept_ids"] == [41]
    others = [r for r in rows if r["userid"] != "gone1"]
    assert {r["attendance_group_id"] for r in others if r["userid"] == "012345"} == {9001}
    assert {r["attendance_group_id"] for r in others if r["userid"] != "012345"} == {None}
    assert all(r["last_work_date"] is None for r in others)

    # The lake's latest row fills what the HR API lacks (title, hire date, group).
    folder = tmp_path / "dingtalk_roster"
    folder.mkdir()
    old = roster_frame(
        [{"userid": "gone1", "name": "旧名", "title": "会计", "dept_id_list": [5]}],
        [date(2025, 11, 8)],
        PULLED,
        (),
        {"gone1": 9002},
    )
    pq.write_table(to_table(old, ROSTER, "t"), folder / "2025-11-08.parquet")
    stored = stored_roster_users(folder, {"gone1", "never-stored"})
    assert set(stored) == {"gone1"} and stored["gone1"]["title"] == "会计"
    _, group_map, _ = with_leavers(users, groups, [{**leaver, "dept_ids": []}], stored)
    merged, _, _ = with_leavers(users, groups, [{**leaver, "dept_ids": []}], stored)
    gone_user = next(u for u in merged if u["userid"] == "gone1")
    assert group_map["gone1"] == 9002
    assert gone_user["name"] == "离职者" and gone_user["dept_id_list"] == [5]
