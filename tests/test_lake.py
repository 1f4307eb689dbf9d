"""The lake IO manager: one Parquet file per partition, split from a window's frame, written
atomically; a bad frame or a crash mid-write leaves stored partitions as they were."""

from datetime import date

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
from upath import UPath

from attendance_pipeline.resources import lake
from attendance_pipeline.resources.lake import LakeIOManagerFactory, write_parquet_atomic
from attendance_pipeline.schemas import RAW_ATTENDANCE, empty_frame, to_table

DAILY = dg.DailyPartitionsDefinition(start_date="2026-11-01", timezone="Asia/Shanghai")


def attendance_rows(days: list[date]) -> pd.DataFrame:
    frame = empty_frame(RAW_ATTENDANCE)
    rows = [
        {**{c: None for c in frame.columns}, "id": i, "userid": "u1", "work_date": d}
        for i, d in enumerate(days)
    ]
    return pd.DataFrame(rows, columns=frame.columns)


def build(frame: pd.DataFrame) -> dg.AssetsDefinition:
    @dg.asset(
        name="raw_attendance",
        partitions_def=DAILY,
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="lake_io_manager",
        metadata={"partition_expr": "work_date"},
    )
    def _asset() -> pd.DataFrame:
        return frame

    return _asset


def materialize_range(frame: pd.DataFrame, base, start: str, end: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [build(frame)],
        resources={"lake_io_manager": LakeIOManagerFactory(base_path=str(base))},
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        },
        raise_on_error=False,
    )


def test_a_window_is_split_into_daily_files_and_empty_days_are_written(tmp_path):
    frame = attendance_rows([date(2026, 11, 2), date(2026, 11, 2), date(2026, 11, 4)])
    assert materialize_range(frame, tmp_path, "2026-11-02", "2026-11-04").success
    folder = tmp_path / "raw_attendance"
    assert sorted(p.name for p in folder.iterdir()) == [
        "2026-11-02.parquet",
        "2026-11-03.parquet",
        "2026-11-04.parquet",
    ]
    assert pq.read_table(folder / "2026-11-02.parquet").num_rows == 2
    empty = pq.read_table(folder / "2026-11-03.parquet")
    assert empty.num_rows == 0 and empty.schema == RAW_ATTENDANCE


def test_rows_outside_the_window_write_nothing(tmp_path):
    good = attendance_rows([date(2026, 11, 2)])
    assert materialize_range(good, tmp_path, "2026-11-02", "2026-11-03").success
    before = (tmp_path / "raw_attendance" / "2026-11-02.parquet").read_bytes()
    bad = attendance_rows([date(2026, 11, 2), date(2026, 11, 9)])
    result = materialize_range(bad, tmp_path, "2026-11-02", "2026-11-03")
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    while failure.cause is not None:
        failure = failure.cause
    assert "2026-11-09" in failure.message and "nothing was written" in failure.message
    assert (tmp_path / "raw_attendance" / "2026-11-02.parquet").read_bytes() == before


def test_a_crash_mid_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = UPath(tmp_path / "part.parquet")
    table = to_table(attendance_rows([date(2026, 11, 2)]), RAW_ATTENDANCE, "t")
    write_parquet_atomic(table, path)
    before = (tmp_path / "part.parquet").read_bytes()

    def half_written(table, where, *args, **kwargs):
        with open(where, "wb") as handle:
            handle.write(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(lake.pq, "write_table", half_written)
    with pytest.raises(OSError, match="disk full"):
        write_parquet_atomic(table, path)
    assert (tmp_path / "part.parquet").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["part.parquet"]
