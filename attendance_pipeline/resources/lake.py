"""The lake: one Parquet file per asset partition, written atomically, on any UPath.

`<base>/<asset>/<YYYY-MM-DD>.parquet`. Built on Dagster's `UPathIOManager`, so an `s3://` or
`gs://` base path works unchanged. Two twists on the stock manager:

- a single run may cover many partitions (up to a month: `partitions.BACKFILL`): the asset
  returns one frame for its whole time window and the manager splits it on the asset's
  `partition_expr`, writing every partition in the window (an empty one too, so a re-run
  replaces stale rows);
- loading many partitions returns one concatenated frame, not a dict.

Local writes go to a temporary file in the same folder and are renamed into place, so a reader
never sees half a file and a crash leaves the previous partition intact.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from attendance_pipeline.schemas import SCHEMAS, empty_frame, to_table

LOCAL_PROTOCOLS = ("", "file", "local")


def write_parquet_atomic(table: pa.Table, path: UPath) -> None:
    """Write `table` to `path` so that readers see the old file or the new one, never a part."""
    if path.protocol in LOCAL_PROTOCOLS:
        target = os.fspath(path.path)
        folder = os.path.dirname(target)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=folder)
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    else:
        # Object stores replace an object in one PUT (or one completed multipart upload), so
        # the file is serialised in memory first: a crash while writing it uploads nothing. (A
        # file opened for writing on an object store uploads what it holds when it is closed,
        # even on an exception, which would replace the partition with a part.)
        buffer = pa.BufferOutputStream()
        pq.write_table(table, buffer)
        data = buffer.getvalue().to_pybytes()
        path.fs.pipe_file(path.path, data)


class LakeIOManager(dg.UPathIOManager):
    """Parquet partitions for frames whose schema is declared in `attendance_pipeline.schemas`."""

    extension: str = ".parquet"

    def __init__(self, base_path: UPath) -> None:
        super().__init__(base_path=base_path)

    def get_asset_relative_path(self, context: dg.InputContext | dg.OutputContext) -> UPath:
        """`<asset>/`: an organisation's lake is its own folder, so its key prefix is not
        repeated in the path (`data/orgs/acme/lake/effective_hours/`)."""
        return UPath(context.asset_key.path[-1])

    def dump_to_path(self, context: dg.OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        name = context.asset_key.path[-1]
        write_parquet_atomic(to_table(obj, SCHEMAS[name], f"asset {name}"), path)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pd.DataFrame:
        with path.open("rb") as handle:
            return pq.read_table(handle).to_pandas()

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        if not context.has_asset_partitions:
            super().handle_output(context, obj)
            return
        name = context.asset_key.path[-1]
        schema = SCHEMAS[name]
        column = str(context.definition_metadata["partition_expr"])
        frame: pd.DataFrame = obj
        paths = self._get_paths_for_partitions(context)
        keys = pd.to_datetime(frame[column]).dt.strftime("%Y-%m-%d") if len(frame) else None
        outside = set(keys.unique()) - set(paths) if keys is not None else set()
        if outside:
            raise ValueError(
                f"asset {name}: rows for {sorted(outside)[:5]} fall outside the partitions being "
                f"written ({min(paths)}..{max(paths)}); nothing was written"
            )
        # Build every table before writing any file, so a bad frame writes nothing.
        tables = {}
        for key in paths:
            part = frame[keys == key] if keys is not None else empty_frame(schema)
            tables[key] = to_table(part, schema, f"asset {name} partition {key}")
        for key, path in paths.items():
            write_parquet_atomic(tables[key], path)
        first = next(iter(paths.values()))
        context.add_output_metadata(
            {
                "path": dg.MetadataValue.path(str(first.parent)),
                "partitions_written": len(paths),
            }
        )

    def load_input(self, context: dg.InputContext) -> Any:
        if not context.has_asset_partitions:
            return super().load_input(context)
        loaded = self._load_partitions(context)
        if not isinstance(loaded, dict):  # one partition comes back as the object itself
            return loaded
        frames = [frame for frame in loaded.values() if frame is not None]
        if not frames:
            return empty_frame(SCHEMAS[context.asset_key.path[-1]])
        return pd.concat(frames, ignore_index=True)


class LakeIOManagerFactory(dg.ConfigurableIOManagerFactory):
    """Configurable entry point: `base_path` may be a local folder or an fsspec URL."""

    base_path: str

    def create_io_manager(self, context: dg.InitResourceContext) -> LakeIOManager:
        return LakeIOManager(base_path=UPath(self.base_path))
