"""Issue 14, item 2: the lake on object storage (`ATTENDANCE_LAKE_URL=s3://bucket/prefix`),
against a real S3 API on loopback (moto's server, `tests/s3_fixture.py`). The same code runs on
local disk; a week's sync, its re-run and a crash mid-write give the tables local disk gives."""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from upath import UPath

from attendance_pipeline.resources import lake
from attendance_pipeline.resources.lake import write_parquet_atomic
from attendance_pipeline.schemas import SCHEMAS
from attendance_pipeline.settings import lake_url
from attendance_pipeline.warehouse import connect
from tests.conftest import _pipeline
from tests.test_targeted_refresh import sync

WEEK = (date(2026, 11, 13), date(2026, 11, 19))
# Warehouse tables and views compared between the two lakes.
RELATIONS = ("effective_hours", "roster", "raw_attendance", "raw_approvals", "held_back")


def stable(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame without the columns that record when a run happened, in a fixed order."""
    moments = [
        c
        for c in frame.columns
        if pd.api.types.is_datetime64_any_dtype(frame[c])
        or c in ("pulled_at", "first_seen", "last_seen", "released_at", "computed_at")
    ]
    kept = frame.drop(columns=moments)
    keys = [c for c in kept.columns if kept[c].map(lambda v: not isinstance(v, list | dict)).all()]
    kept = kept.astype({c: str for c in keys})
    return kept.sort_values(keys).reset_index(drop=True)


def half_written(table: pa.Table, where: Any, *args: Any, **kwargs: Any) -> None:
    """`pq.write_table` that dies after writing part of the file."""
    where.write(b"PAR1 half")
    raise OSError("connection reset")


def lake_frames(root: UPath) -> dict[str, pd.DataFrame]:
    """Every stored daily partition of every lake asset, by asset/day."""
    found: dict[str, pd.DataFrame] = {}
    for asset in SCHEMAS:
        folder = root / asset
        if not folder.exists():
            continue
        for path in sorted(folder.glob("*.parquet"), key=str):
            with path.open("rb") as handle:
                found[f"{asset}/{path.name}"] = stable(pq.read_table(handle).to_pandas())
    return found


def relations(settings: Any) -> dict[str, pd.DataFrame]:
    with connect(settings.warehouse_path, read_only=True, lake=settings.lake_dir) as con:
        return {name: stable(con.execute(f"SELECT * FROM {name}").df()) for name in RELATIONS}


def assert_same(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    assert sorted(left) == sorted(right)
    for key in left:
        pd.testing.assert_frame_equal(left[key], right[key], check_dtype=False, obj=key)


@pytest.mark.slow
def test_a_week_on_s3_gives_the_tables_of_local_disk(
    dingtalk_sim, tmp_path, monkeypatch, s3_bucket
):
    _, local, local_defs, local_instance = _pipeline(dingtalk_sim, tmp_path / "local", monkeypatch)
    assert sync(local_defs, local_instance, *WEEK).success
    expected_lake, expected = lake_frames(local.lake_dir), relations(local)

    monkeypatch.setenv("ATTENDANCE_LAKE_URL", f"s3://{s3_bucket}/attendance/lake")
    _, remote, defs, instance = _pipeline(dingtalk_sim, tmp_path / "s3", monkeypatch)
    assert str(remote.lake_dir) == f"s3://{s3_bucket}/attendance/lake"
    assert sync(defs, instance, *WEEK).success
    assert not (remote.data_dir / "lake").exists(), "nothing of the lake lands on local disk"
    stored = lake_frames(remote.lake_dir)
    assert len(stored) >= 7 * 6  # a week of every daily lake asset
    assert_same(stored, expected_lake)
    assert_same(relations(remote), expected)  # the views read the objects through fsspec

    # A re-run replaces each partition's object in place: same objects, same tables.
    objects = sorted(str(p) for p in remote.lake_dir.rglob("*") if p.is_file())
    assert sync(defs, instance, *WEEK).success
    assert sorted(str(p) for p in remote.lake_dir.rglob("*") if p.is_file()) == objects
    assert_same(lake_frames(remote.lake_dir), expected_lake)
    assert_same(relations(remote), expected)

    # A crash while writing a partition leaves the stored object as it was.
    target = remote.lake_dir / "effective_hours" / f"{WEEK[1]}.parquet"
    before = target.read_bytes()

    monkeypatch.setattr(lake.pq, "write_table", half_written)
    with pytest.raises(OSError, match="connection reset"):
        write_parquet_atomic(pa.table({"x": [1]}), target)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert sorted(str(p) for p in remote.lake_dir.rglob("*") if p.is_file()) == objects


def test_a_crash_mid_write_on_s3_keeps_the_previous_object(s3_bucket, monkeypatch):
    path = UPath(f"s3://{s3_bucket}/lake/raw_attendance/2026-11-02.parquet")
    old = pa.table({"userid": ["u1"], "n": [1]})
    write_parquet_atomic(old, path)
    before = path.read_bytes()

    monkeypatch.setattr(lake.pq, "write_table", half_written)
    with pytest.raises(OSError, match="connection reset"):
        write_parquet_atomic(pa.table({"userid": ["u2"], "n": [2]}), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["2026-11-02.parquet"]
    # And a whole write replaces the object.
    write_parquet_atomic(pa.table({"userid": ["u2"], "n": [2]}), path)
    with path.open("rb") as handle:
        assert pq.read_table(handle).column("userid").to_pylist() == ["u2"]


def test_duckdb_reads_the_lake_on_s3_through_the_registered_filesystem(s3_bucket, tmp_path):
    root = UPath(f"s3://{s3_bucket}/lake")
    write_parquet_atomic(pa.table({"userid": ["a", "b"]}), root / "t" / "2026-11-01.parquet")
    write_parquet_atomic(pa.table({"userid": ["c"]}), root / "t" / "2026-11-02.parquet")
    pattern = f"{root}/t/*.parquet"
    with connect(tmp_path / "w.duckdb", lake=str(root)) as con:
        assert con.execute(f"SELECT count(*) FROM read_parquet('{pattern}')").fetchone() == (3,)
    with duckdb.connect() as plain, pytest.raises(duckdb.Error):
        plain.execute(f"SELECT count(*) FROM read_parquet('{pattern}')").fetchone()


def test_a_bad_lake_url_is_a_clear_error(tmp_path):
    assert lake_url("") is None
    assert lake_url(str(tmp_path / "lake")) == str(tmp_path / "lake")
    assert lake_url("s3://bucket/prefix/") == "s3://bucket/prefix"
    with pytest.raises(ValueError, match="ATTENDANCE_LAKE_URL: no filesystem for nosuch://"):
        lake_url("nosuch://bucket/lake")
    with pytest.raises(ValueError, match="give a bucket"):
        lake_url("s3://")
