"""The DuckDB warehouse as a Dagster resource."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from attendance_pipeline import warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse file; write steps run in the `warehouse` pool (limit 1)."""

    path: str
    lake_dir: str
    lock_timeout_s: float = 120.0

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.connect(
            Path(self.path),
            read_only=read_only,
            lock_timeout_s=self.lock_timeout_s,
            lake=self.lake_dir,
        ) as con:
            yield con

    def data_dir(self) -> Path:
        """The local data folder (the warehouse file's): reports go here, wherever the lake is."""
        return Path(self.path).parent
