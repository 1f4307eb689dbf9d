"""The PM simulator's state: one SQLite database (a file, or ``:memory:``) behind one lock.

A single connection is shared by the server's threads (``check_same_thread=False``) and every
use holds ``lock``, so an in-memory database is safe and each request is one transaction.
Each system creates its own tables. The file remembers the seed and company size it was made
for: reopening it with another company would orphan its worklogs, so that is refused.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_META = "CREATE TABLE IF NOT EXISTS sim_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"


class StateMismatch(ValueError):
    """The state file belongs to another simulated company."""


class Store:
    """SQLite with a re-entrant lock; ``transaction()`` is the unit of every request."""

    def __init__(self, path: str | Path | None, *, seed: int, employees: int) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(
            str(self.path) if self.path is not None else ":memory:",
            check_same_thread=False,
            isolation_level=None,  # transactions are explicit
        )
        self._conn.row_factory = sqlite3.Row
        if self.path is not None:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_META)
        self._check_company(seed, employees)

    def _check_company(self, seed: int, employees: int) -> None:
        wanted = {"seed": str(seed), "employees": str(employees)}
        found = {r["name"]: r["value"] for r in self.query("SELECT name, value FROM sim_meta")}
        if not found:
            with self.transaction():
                for name, value in wanted.items():
                    self.insert("INSERT INTO sim_meta (name, value) VALUES (?, ?)", (name, value))
            return
        if any(found.get(k) != v for k, v in wanted.items()):
            raise StateMismatch(
                f"state file {self.path} was made for seed {found.get('seed')} with "
                f"{found.get('employees')} employees, not seed {seed} with {employees}: start "
                "with the same --seed/--employees or give another --state file"
            )

    def create_tables(self, ddl: str, first_ids: dict[str, int]) -> bool:
        """Create a system's tables; ids of ``first_ids`` tables start there (never reused).

        Returns True when the tables are new (the caller seeds them).
        """
        with self.lock:
            new = any(
                self.one("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (t,)) is None
                for t in first_ids
            )
            self._conn.executescript(ddl)
            for table, first in first_ids.items():
                if self.one("SELECT 1 FROM sqlite_sequence WHERE name=?", (table,)) is None:
                    self._conn.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, first - 1)
                    )
            return new

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns how many rows it changed."""
        with self.lock:
            return self._conn.execute(sql, params).rowcount

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one INSERT; returns the new row's id."""
        with self.lock:
            row_id = self._conn.execute(sql, params).lastrowid
        if row_id is None:
            raise RuntimeError("the INSERT created no row")
        return row_id

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self._conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self.lock:
            row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
            return row

    def close(self) -> None:
        with self.lock:
            self._conn.close()
