"""Asset metadata, attached through one helper module: per-partition numbers the UI plots,
previews, value counts, column schemas, and reading back what an upstream asset recorded."""

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa

Metric = Callable[[pd.DataFrame], int | float]


def add_daily_metadata(
    context: dg.AssetExecutionContext, frame: pd.DataFrame, column: str, metrics: dict[str, Metric]
) -> None:
    """Give each partition of the run's window its own value of every metric.

    A window run (a backfill, the corrections run) materialises many partitions at once and the
    window's totals would otherwise be repeated on every day, so the UI's plots would show the
    window's total on each day. Per-day numbers are recorded only here; metrics that exist only
    per run (metered calls, retries) stay in the window-level metadata.
    """
    by_day = dict(iter(frame.groupby(frame[column].astype(str), sort=False))) if len(frame) else {}
    empty = frame.iloc[0:0]
    for key in context.partition_keys:
        day = by_day.get(key, empty)
        context.add_asset_metadata(
            {name: metric(day) for name, metric in metrics.items()}, partition_key=key
        )


def record(
    context: dg.AssetExecutionContext,
    frame: pd.DataFrame,
    column: str,
    window: Mapping[str, Any],
    daily: dict[str, Metric],
) -> None:
    """The one way an asset attaches metadata: `window` (per run: previews, calls, counts) on
    the output, `daily` metrics computed for each partition of the window from its own rows."""
    context.add_output_metadata(output_name="result", metadata=dict(window))
    add_daily_metadata(context, frame, column, daily)


def rows(frame: pd.DataFrame) -> int:
    return len(frame)


def distinct(column: str) -> Metric:
    return lambda frame: int(frame[column].nunique())


def total(column: str, scale: float = 1.0) -> Metric:
    return lambda frame: float(frame[column].sum() / scale) if len(frame) else 0.0


def counted(column: str, value: str) -> Metric:
    return lambda frame: int((frame[column] == value).sum())


def preview(
    frame: pd.DataFrame, columns: list[str] | None = None, rows: int = 10, empty: str = "(none)"
) -> dg.MetadataValue:
    """The first rows of `columns` (all by default) as a markdown table, or `empty`."""
    shown = (frame if columns is None else frame[columns]).head(rows)
    return dg.MetadataValue.md(shown.to_markdown(index=False) if len(shown) else empty)


def value_counts(frame: pd.DataFrame, column: str) -> dg.MetadataValue:
    """How often each value of `column` occurs, as JSON."""
    counts = frame.groupby(frame[column].astype(str)).size() if len(frame) else {}
    return dg.MetadataValue.json({str(k): int(v) for k, v in dict(counts).items()})


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    """A table's columns for `dagster/column_schema` (the UI's Columns tab)."""
    return dg.TableSchema(columns=[dg.TableColumn(f.name, str(f.type)) for f in schema])


def table_metadata(schema: pa.Schema, table: str | None = None) -> dict[str, Any]:
    """Definition metadata naming a stored table and its columns."""
    metadata: dict[str, Any] = {"dagster/column_schema": column_schema(schema)}
    if table is not None:
        metadata["dagster/table_name"] = table
    return metadata


def key_prefix(context: dg.AssetExecutionContext) -> list[str]:
    """The running asset's organisation as a key prefix (`[]` for the default one)."""
    return list(next(iter(context.assets_def.keys)).path[:-1])


def key_for(context: dg.AssetExecutionContext, asset: str) -> dg.AssetKey:
    """`asset`'s key in the running asset's organisation."""
    return dg.AssetKey([*key_prefix(context), asset])


def latest(context: dg.AssetExecutionContext, asset: str, name: str, default: Any = None) -> Any:
    """The value of metadata entry `name` on `asset`'s latest materialization (e.g. the roster's
    department names), or `default`."""
    event = context.instance.get_latest_materialization_event(key_for(context, asset))
    if event is None or event.asset_materialization is None:
        return default
    entry = event.asset_materialization.metadata.get(name)
    return entry.value if entry is not None else default


def department_names(context: dg.AssetExecutionContext) -> Mapping[int, str]:
    """Department id → name, as the latest roster snapshot recorded them."""
    names = latest(context, "dingtalk_roster", "departments", {}) or {}
    return {int(k): str(v) for k, v in dict(names).items()}


def partition_value(context: dg.AssetExecutionContext, asset: str, day: date, name: str) -> Any:
    """Metadata entry `name` of `asset`'s latest materialization of partition `day` (None when
    that day was never materialised)."""
    result = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=key_for(context, asset), asset_partitions=[day.isoformat()]
        ),
        limit=1,
    )
    if not result.records:
        return None
    materialization = result.records[0].asset_materialization
    entry = materialization.metadata.get(name) if materialization is not None else None
    return entry.value if entry is not None else None


INGEST_ASSETS = ("dingtalk_roster", "raw_attendance", "raw_approvals", "dingtalk_report")


def metered_calls_since(context: dg.AssetExecutionContext, since: datetime) -> int:
    """Metered DingTalk calls that earlier ingest steps (of this run and every earlier one)
    recorded since `since`: the quota ledger is the assets' own `metered_calls` metadata (one value
    per step and run; a window run attaches it to each of its partitions, so it is counted once
    per step and run)."""
    per_step: dict[tuple[str, str], int] = {}
    for asset in INGEST_ASSETS:
        cursor = None
        while True:
            result = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=key_for(context, asset), after_timestamp=since.timestamp()
                ),
                limit=1000,
                cursor=cursor,
            )
            for record in result.records:
                materialization = record.asset_materialization
                if materialization is None:
                    continue
                entry = materialization.metadata.get("metered_calls")
                if entry is not None:
                    per_step[(asset, record.run_id)] = int(entry.value)
            if not result.has_more:
                break
            cursor = result.cursor
    return sum(per_step.values())


def lake_metadata(partition_expr: str) -> dict[str, Any]:
    """Definition metadata of a lake asset: the column its daily partitions are cut on
    (`partition_expr`, Dagster's convention; read by the lake IO manager)."""
    return {"partition_expr": partition_expr}


def with_column_schemas(assets: list[Any]) -> list[Any]:
    """Every lake asset with `dagster/column_schema` from `schemas.SCHEMAS` (the UI's Columns
    tab), so one place defines a table's columns for Parquet, DuckDB and the UI."""
    from attendance_pipeline.schemas import SCHEMAS

    def described(spec: dg.AssetSpec) -> dg.AssetSpec:
        schema = SCHEMAS.get(spec.key.to_user_string())
        if schema is None or "dagster/column_schema" in spec.metadata:
            return spec
        return spec.merge_attributes(metadata={"dagster/column_schema": column_schema(schema)})

    return list(dg.map_asset_specs(described, assets))
