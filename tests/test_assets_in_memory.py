"""Asset wiring with in-memory fakes (`dg.materialize`, a dictionary IO manager): no simulator,
no lake, no PM system. Upstream frames come from a dictionary, the PM system is a fake store
holding a few accounts; DuckDB is real (a temporary file)."""

import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from attendance_pipeline.assets.delivery import pm_users, user_mapping
from attendance_pipeline.assets.partitions import DAILY
from attendance_pipeline.pm.base import PMUser
from attendance_pipeline.resources import ConfigFolder, WarehouseResource
from attendance_pipeline.resources.delivery import PMResource
from attendance_pipeline.schemas import ROSTER, empty_frame

DAY = date(2026, 11, 10)
CONFIG = Path(__file__).resolve().parent.parent / "config"


class FramesIOManager(dg.IOManager):
    """Upstream frames by asset name; outputs kept in memory."""

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.frames = frames

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        self.frames[context.asset_key.to_user_string()] = obj

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        return self.frames[context.asset_key.to_user_string()]


class FakeStore:
    """A PM system that holds only accounts."""

    def __init__(self, accounts: list[PMUser]) -> None:
        self.accounts = accounts

    def list_users(self) -> list[PMUser]:
        return self.accounts


class FakePM(PMResource):
    accounts: str = ""  # "pm_user=email,pm_user=email"

    def store(self):  # type: ignore[override]
        pairs = [item.split("=") for item in self.accounts.split(",") if item]
        return FakeStore([PMUser(u, u, email) for u, email in pairs])


def roster(*people: tuple[str, str | None]) -> pd.DataFrame:
    rows = empty_frame(ROSTER).to_dict("records")
    for userid, email in people:
        rows.append(
            {
                "snapshot_date": DAY, "userid": userid, "name": f"n{userid}", "dept_ids": [22],
                "dept_ancestors": [22, 1], "active": True, "leader": False, "email": email,
                "attendance_group_id": 9001,
            }
        )  # fmt: skip
    return pd.DataFrame(rows, columns=ROSTER.names)


@pytest.fixture
def folder(tmp_path):
    shutil.copytree(CONFIG, tmp_path / "config")
    return tmp_path


def run(folder: Path, people: pd.DataFrame, accounts: list[tuple[str, str]]):
    frames = {"dingtalk_roster": people}
    source = dg.SourceAsset(
        "dingtalk_roster", partitions_def=DAILY, io_manager_key="lake_io_manager"
    )
    result = dg.materialize(
        [source, pm_users, user_mapping],
        partition_key=DAY.isoformat(),
        resources={
            "lake_io_manager": FramesIOManager(frames),
            "pm": FakePM(system="jira", accounts=",".join(f"{u}={e}" for u, e in accounts)),
            "company_config": ConfigFolder(path=str(folder / "config")),
            "warehouse": WarehouseResource(
                path=str(folder / "w.duckdb"), lake_dir=str(folder / "lake")
            ),
        },
        raise_on_error=False,
    )
    return result, frames


def test_an_unmapped_person_is_held_back_from_delivery_with_the_fix(folder):
    people = roster(
        ("u1", "a@corp.example"), ("u2", "b@corp.example"), ("u3", "zhang@corp.example")
    )
    result, frames = run(folder, people, [("p1", "a@corp.example"), ("p2", "b@corp.example")])
    assert result.success
    mapping = frames["user_mapping"].set_index("userid")
    assert dict(mapping["status"]) == {"u1": "mapped", "u2": "mapped", "u3": "unmapped"}
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "mapping_valid" and not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN  # held back, not systemic
    with duckdb.connect(str(folder / "w.duckdb"), read_only=True) as con:
        held = con.execute('SELECT "check", userid, blocks, fix FROM held_back').fetchall()
    assert held == [
        (
            "mapping_valid",
            "u3",
            "delivery",
            "create a PM account with e-mail zh***@corp.example, "
            "or add `u3,<pm_user>` to config/user_mapping.csv",
        )
    ]


def test_a_pm_system_listing_nobody_is_systemic_and_records_nothing(folder):
    result, _ = run(folder, roster(("u1", "a@corp.example")), [])
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "no user accounts" in str(check.metadata["failures"].value)
    assert not result.success  # the blocking ERROR check stops the step
    with duckdb.connect(str(folder / "w.duckdb")) as con:
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert "held_back" not in tables
