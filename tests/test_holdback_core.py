"""The held_back table and publishing, on a real DuckDB file (no Dagster)."""

from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from attendance_pipeline import holdback
from attendance_pipeline.china_time import SHANGHAI
from attendance_pipeline.pm.mapping import mapping_fixes
from attendance_pipeline.schemas import EFFECTIVE_HOURS, empty_frame, to_table

D1, D2, D3 = date(2026, 11, 9), date(2026, 11, 10), date(2026, 11, 11)
T0 = datetime(2026, 11, 12, 3, 40, tzinfo=SHANGHAI)


def held(*rows: tuple[str, date]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"userid": u, "work_date": d, "name": f"n{u}", "reason": "r", "fix": "f"}
            for u, d in rows
        ],
        columns=["userid", "work_date", "name", "reason", "fix"],
    )


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    yield connection
    connection.close()


def rows(con) -> list[tuple]:
    return con.execute(
        'SELECT "check", userid, work_date, first_seen, last_seen, released_at, run_id '
        "FROM held_back ORDER BY userid, work_date, first_seen"
    ).fetchall()


def test_a_hold_is_kept_once_then_released_and_held_again_as_a_new_row(con):
    first = holdback.record(con, "inputs_complete", held(("u1", D1), ("u2", D2)), D1, D3,
                            blocks="all", now=T0, run_id="r1")  # fmt: skip
    assert len(first.new) == 2 and first.released == 0
    # Seen again: one open row each, last_seen moves, first_seen stays.
    later = T0 + timedelta(days=1)
    again = holdback.record(con, "inputs_complete", held(("u1", D1), ("u2", D2)), D1, D3,
                            blocks="all", now=later, run_id="r2")  # fmt: skip
    assert len(again.new) == 0 and again.still_held == 2
    assert [(r[1], r[3], r[4]) for r in rows(con)] == [("u1", T0, later), ("u2", T0, later)]
    # u2 is good now: released; u1 stays.
    third = T0 + timedelta(days=2)
    change = holdback.record(con, "inputs_complete", held(("u1", D1)), D1, D3,
                             blocks="all", now=third, run_id="r3")  # fmt: skip
    assert change.released == 1
    assert [(r[1], r[5]) for r in rows(con)] == [("u1", None), ("u2", third)]
    # Held again later: a new open row beside the released history.
    holdback.record(con, "inputs_complete", held(("u1", D1), ("u2", D2)), D1, D3,
                    blocks="all", now=third + timedelta(days=1), run_id="r4")  # fmt: skip
    assert [(r[1], r[5] is None) for r in rows(con)] == [("u1", True), ("u2", False), ("u2", True)]
    open_now = holdback.open_holds(con, D1, D3)
    assert sorted(open_now["userid"]) == ["u1", "u2"]


def test_a_release_stays_inside_the_window_the_check_and_the_people_checked(con):
    holdback.record(con, "hours_valid", held(("u1", D1), ("u2", D3)), D1, D3,
                    blocks="all", now=T0, run_id="r1")  # fmt: skip
    holdback.record(con, "inputs_complete", held(("u3", D2)), D1, D3,
                    blocks="all", now=T0, run_id="r1")  # fmt: skip
    # A run of D1..D2 that checked only u2 releases nothing: u1 was not checked, D3 is outside,
    # and another check's hold is not this check's to release.
    change = holdback.record(con, "hours_valid", held(), D1, D2, blocks="all", now=T0,
                             run_id="r2", checked_userids=["u2"])  # fmt: skip
    assert change.released == 0
    assert len(holdback.open_holds(con, D1, D3)) == 3
    assert holdback.record(con, "hours_valid", held(), D1, D2, blocks="all", now=T0,
                           run_id="r3").released == 1  # fmt: skip
    assert holdback.open_holds(con, D1, D3, blocks=["delivery"]).empty


def test_publishing_keeps_what_was_published_for_held_days(con):
    def day_rows(hours: float) -> pd.DataFrame:
        frame = empty_frame(EFFECTIVE_HOURS)
        people = [("u1", D1), ("u2", D1), ("u1", D2)]
        frame = pd.DataFrame({c: [None] * len(people) for c in frame.columns})
        frame["userid"], frame["work_date"] = [u for u, _ in people], [d for _, d in people]
        frame["effective_hours"] = hours
        frame["countable"] = True
        return frame

    before = to_table(day_rows(8.0), EFFECTIVE_HOURS, "test")
    assert holdback.publish_effective_hours(con, before, D1, D2, held()) == 3
    after = to_table(day_rows(4.0), EFFECTIVE_HOURS, "test")
    assert holdback.publish_effective_hours(con, after, D1, D2, held(("u2", D1))) == 2
    published = con.execute(
        "SELECT userid, work_date, effective_hours FROM effective_hours ORDER BY ALL"
    ).fetchall()
    assert published == [("u1", D1, 4.0), ("u1", D2, 4.0), ("u2", D1, 8.0)]


def test_split_held_keeps_held_days_out_of_the_plan_with_their_reason():
    hours = pd.DataFrame(
        {"userid": ["u1", "u2"], "work_date": [D1, D1], "name": ["a", "b"],
         "effective_hours": [8.0, 7.0]}
    )  # fmt: skip
    withheld = pd.DataFrame(
        {"check": ["inputs_complete"], "userid": ["u2"], "work_date": [pd.Timestamp(D1)],
         "reason": ["no check points"]}
    )  # fmt: skip
    plan, skipped = holdback.split_held(hours, withheld)
    assert list(plan["userid"]) == ["u1"]
    assert skipped.to_dict("records") == [
        {"work_date": D1, "userid": "u2", "name": "b", "hours": 7.0,
         "reason": "held back by inputs_complete: no check points"}
    ]  # fmt: skip


def test_mapping_fixes_name_the_account_to_create_without_the_full_address():
    mapping = pd.DataFrame(
        {"userid": ["u1", "u2", "u3", "u4"],
         "status": ["unmapped", "ambiguous", "unmapped", "mapped"]}
    )  # fmt: skip
    roster = pd.DataFrame(
        {"userid": ["u1", "u2", "u3", "u4"],
         "email": ["zhangsan@corp.example", None, None, "x@corp.example"],
         "org_email": [None, "li@corp.example", None, None]}
    )  # fmt: skip
    fixes = mapping_fixes(mapping, roster)
    assert fixes["u1"] == (
        "create a PM account with e-mail zh***@corp.example, "
        "or add `u1,<pm_user>` to config/user_mapping.csv"
    )
    assert "choose one" in fixes["u2"] and "no e-mail" in fixes["u3"] and "u4" not in fixes
    assert "zhangsan" not in " ".join(fixes.values())
