"""The DuckDB warehouse: views over the lake and per-partition table replacement (no Dagster).

DuckDB allows one writer process. Writers hold the connection only for the write and retry for a
while when another process holds the lock; readers open the file `read_only=True`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
from upath import UPath

T = TypeVar("T")

# Pinned view columns (README: The warehouse). The roster view leaves out e-mail and mobile:
# they are kept in the lake for identity matching only.
LAKE_VIEWS: dict[str, tuple[str, str]] = {
    "roster": (
        "dingtalk_roster",
        "userid, name, dept_ids, title, job_number, active, snapshot_date, hired_date, leader, "
        "pulled_at, attendance_group_id, last_work_date",
    ),
    "raw_attendance": (
        "raw_attendance",
        "id, userid, work_date, check_type, time_result, source_type, base_check_time, "
        "user_check_time, proc_inst_id, approve_id, pulled_at, record_id, location_result, "
        "group_id, plan_id",
    ),
    "raw_approvals": (
        "raw_approvals",
        "approve_id, userid, biz_type, sub_type, tag_name, begin_time, end_time, duration_unit, "
        "pulled_at, work_date, calculate_model, begin_at, end_at",
    ),
}


@contextmanager
def connect(
    path: Path,
    *,
    read_only: bool = False,
    lock_timeout_s: float = 120.0,
    lake: str | os.PathLike[str] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse, waiting up to `lock_timeout_s` while another process writes.

    With `lake` on an object store (`s3://…`), its fsspec filesystem is registered on the
    connection, so the views over the lake read it (credentials from the environment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = waiting_for_lock(lambda: duckdb.connect(str(path), read_only=read_only), lock_timeout_s)
    try:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        register_lake(con, lake)
        yield con
    finally:
        con.close()


def waiting_for_lock(open_: Callable[[], T], lock_timeout_s: float = 120.0) -> T:
    """`open_()`, retried with backoff for up to `lock_timeout_s` while DuckDB answers that
    another process holds the file's lock."""
    deadline = time.monotonic() + lock_timeout_s
    delay = 0.05
    while True:
        try:
            return open_()
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(1.0, delay * 2)


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> Any:
    """The single value of a query (fetching every row, so the connection is free afterwards)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def register_lake(con: duckdb.DuckDBPyConnection, lake: str | os.PathLike[str] | None) -> None:
    """Let DuckDB read a lake on an object store through its fsspec filesystem (DuckDB's own
    httpfs extension would be downloaded at run time; fsspec is installed with the project)."""
    if lake is None:
        return
    root = UPath(lake)
    if root.protocol in ("", "file", "local"):
        return
    con.register_filesystem(root.fs)


def refresh_lake_views(con: duckdb.DuckDBPyConnection, lake_dir: UPath) -> dict[str, int]:
    """(Re)create the views over the lake's Parquet partitions; returns rows per view.

    A view whose asset has no partition yet is skipped (DuckDB cannot glob zero files).
    """
    counts: dict[str, int] = {}
    for view, (asset, columns) in LAKE_VIEWS.items():
        folder = lake_dir / asset
        if not any(folder.glob("*.parquet")):
            continue
        pattern = str(folder / "*.parquet").replace("'", "''")
        con.execute(
            f"CREATE OR REPLACE VIEW {view} AS SELECT {columns} "
            f"FROM read_parquet('{pattern}', union_by_name = true)"
        )
        counts[view] = int(scalar(con, f"SELECT count(*) FROM {view}"))
    return counts


_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "large_string": "VARCHAR",
    "int64": "BIGINT",
    "int32": "INTEGER",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "date32[day]": "DATE",
}


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB column type for an Arrow type of our schemas."""
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMPTZ"
    if pa.types.is_list(arrow_type):
        return duckdb_type(arrow_type.value_type) + "[]"
    if pa.types.is_struct(arrow_type):
        fields = ", ".join(
            f'"{arrow_type.field(i).name}" {duckdb_type(arrow_type.field(i).type)}'
            for i in range(arrow_type.num_fields)
        )
        return f"STRUCT({fields})"
    return _DUCKDB_TYPES[str(arrow_type)]


def ensure_table(con: duckdb.DuckDBPyConnection, name: str, schema: pa.Schema) -> None:
    """Create the table from the schema, adding any column a newer schema has."""
    columns = ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in schema)
    con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")
    existing = {row[0] for row in con.execute(f"DESCRIBE {name}").fetchall()}
    for f in schema:
        if f.name not in existing:
            con.execute(f'ALTER TABLE {name} ADD COLUMN "{f.name}" {duckdb_type(f.type)}')


def replace_rows(
    con: duckdb.DuckDBPyConnection,
    name: str,
    schema: pa.Schema,
    rows: pa.Table,
    where: str,
    params: list[object],
) -> int:
    """Delete the rows matching `where` and insert `rows` by column name, in one transaction."""
    replace_many(con, [(name, schema, rows, where, params)])
    return rows.num_rows


def replace_many(
    con: duckdb.DuckDBPyConnection,
    changes: list[tuple[str, pa.Schema, pa.Table, str, list[object]]],
) -> None:
    """`replace_rows` for several tables (name, schema, rows, where, params) in one transaction."""
    for name, schema, _, _, _ in changes:
        ensure_table(con, name, schema)
    con.execute("BEGIN TRANSACTION")
    try:
        for name, _, rows, where, params in changes:
            con.execute(f"DELETE FROM {name} WHERE {where}", params)
            con.register("_incoming", rows)
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _incoming")
            con.unregister("_incoming")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def append_sync_error(
    con: duckdb.DuckDBPyConnection,
    system: str,
    operation: str,
    partition: str,
    key: str,
    error_class: str,
    message: str,
) -> None:
    """One row of `sync_errors`: a failed external call or a rejected row (no secrets)."""
    from attendance_pipeline.china_time import now_in_china
    from attendance_pipeline.schemas import SYNC_ERRORS

    ensure_table(con, "sync_errors", SYNC_ERRORS)
    con.execute(
        "INSERT INTO sync_errors VALUES (?, ?, ?, ?, ?, ?, ?)",
        [now_in_china(), system, operation, partition, key, error_class, message[:2000]],
    )


def record_sync_error(path: Path, *row: str) -> None:
    """`append_sync_error(con, *row)` on its own short write connection (waits for DuckDB's
    writer lock)."""
    with connect(path) as con:
        append_sync_error(con, *row)


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the warehouse has table (or view) `name` (works on a read-only connection)."""
    sql = "SELECT count(*) FROM information_schema.tables WHERE table_name = ?"
    return bool(scalar(con, sql, [name]))
