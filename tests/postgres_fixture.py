"""Fixtures for tests against a real PostgreSQL server started by `scripts/postgres up`.

Loaded from tests/conftest.py (`pytest_plugins`); mark the tests with `@pytest.mark.postgres`.

- `postgres` (session): runs `scripts/postgres up` (installs PostgreSQL from Debian's packages
  and starts a private cluster when needed; fails, never skips, with the script's output when it
  cannot) and returns a `PostgresServer` with the facts from `.postgres/env`. The server is left
  running for the next session (`scripts/postgres down` stops it); with pytest-xdist each worker
  runs `up`, and the script's lock makes all but the first find it running.
- `postgres_database` (function): a new, empty database owned by the same role, unique per test
  (so tests are isolated under xdist), dropped at teardown.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import psycopg2
import pytest

from tests.service_scripts import start_service

UP_TIMEOUT_S = 10 * 60


@dataclass(frozen=True)
class PostgresServer:
    """Where the server listens and how to log in: the DAGSTER_PG_* variables of the instance."""

    host: str
    port: int
    user: str
    password: str
    db: str

    def env(self) -> dict[str, str]:
        """The environment that deploy/production/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.db,
        }

    def connect(self, **kwargs: Any) -> Any:
        """A psycopg2 connection to this database (the caller closes it)."""
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=self.db,
            connect_timeout=10,
            **kwargs,
        )

    def query(self, sql: str, params: Any = None) -> list[tuple]:
        """Rows of one read-only statement."""
        con = self.connect()
        try:
            with con.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            con.close()


@pytest.fixture(scope="session")
def postgres() -> PostgresServer:
    """PostgreSQL on loopback, installed and started by `scripts/postgres up` if needed."""
    names = ("HOST", "PORT", "USER", "PASSWORD", "DB")
    needs = tuple(f"DAGSTER_PG_{name}" for name in names)
    env = start_service("postgres", UP_TIMEOUT_S, needs)
    return PostgresServer(
        host=str(env["DAGSTER_PG_HOST"]),
        port=int(str(env["DAGSTER_PG_PORT"])),
        user=str(env["DAGSTER_PG_USER"]),
        password=str(env["DAGSTER_PG_PASSWORD"]),
        db=str(env["DAGSTER_PG_DB"]),
    )


@pytest.fixture
def postgres_database(postgres: PostgresServer) -> Iterator[PostgresServer]:
    """A fresh database for one test (dropped afterwards, even if a connection lingers)."""
    name = f"dagster_test_{uuid.uuid4().hex[:12]}"
    admin = postgres.connect()
    admin.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}" OWNER "{postgres.user}"')
        yield replace(postgres, db=name)
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()
