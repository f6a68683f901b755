"""SQLite: WAL journal, one ``BEGIN IMMEDIATE ... COMMIT`` per batch,
``executemany`` of ``INSERT ... ON CONFLICT`` per table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from consumers.store.db import MIGRATIONS_TABLE, BadRowsError, DatabaseUnavailable, Store, migrations
from consumers.store.rows import SQLITE, RowBatch
from consumers.store.tables import TABLES, OnConflict, Table

NOW = "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')"


def upsert_sql(table: Table) -> str:
    columns = ", ".join(table.columns)
    marks = ", ".join("?" for _ in table.columns)
    sql = f"INSERT INTO {table.name} ({columns}) VALUES ({marks}) ON CONFLICT ({', '.join(table.key)}) DO "
    if table.on_conflict is OnConflict.KEEP:
        return sql + "NOTHING"
    updates = ", ".join(f"{c} = excluded.{c}" for c in table.columns if c not in table.key)
    sql += f"UPDATE SET {updates}, stored_at = {NOW}"
    if table.on_conflict is OnConflict.NEWEST:
        new = ", ".join(f"excluded.{c}" for c in table.newer_by)
        old = ", ".join(f"{table.name}.{c}" for c in table.newer_by)
        sql += f" WHERE ({new}) > ({old})"
    return sql


class SqliteStore(Store):
    dialect = "sqlite"
    values = SQLITE

    def __init__(self, path: str):
        self.path = path
        if path != ":memory:" and not Path(path).parent.exists():
            raise FileNotFoundError(f"directory {Path(path).parent} does not exist")
        self._connect()
        self._sql = {name: upsert_sql(table) for name, table in TABLES.items()}

    def _connect(self) -> None:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves (one per batch).
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        self.conn.execute("PRAGMA busy_timeout=30000")

    def write(self, batch: RowBatch) -> dict[str, int]:
        changed: dict[str, int] = {}
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for name, rows in batch.tables.items():
                    if rows:
                        cursor = self.conn.executemany(self._sql[name], rows.values())
                        changed[name] = cursor.rowcount
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        except (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError, sqlite3.ProgrammingError) as exc:
            raise BadRowsError(str(exc)) from exc
        except sqlite3.OperationalError as exc:  # locked, disk full, I/O error
            raise DatabaseUnavailable(str(exc)) from exc
        return changed

    def migrate(self) -> list[str]:
        applied = []
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY, "
                          "name TEXT NOT NULL, applied_at TEXT NOT NULL)")
        for migration in migrations(self.dialect):
            self.conn.execute("BEGIN IMMEDIATE")  # serialises concurrent starts
            try:
                done = self.conn.execute(f"SELECT 1 FROM {MIGRATIONS_TABLE} WHERE version = ?",
                                         (migration.version,)).fetchone()
                if not done:
                    for statement in split_statements(migration.sql):
                        self.conn.execute(statement)
                    self.conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (version, name, applied_at) VALUES (?, ?, {NOW})",
                                      (migration.version, migration.name))
                    applied.append(f"{migration.version:04d}_{migration.name}")
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        return applied

    def query(self, sql: str, params: tuple = ()) -> list[dict]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def ping(self) -> bool:
        try:
            self.conn.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def reconnect(self) -> None:
        try:
            self.conn.close()
        finally:
            self._connect()

    def close(self) -> None:
        self.conn.close()


def split_statements(sql: str) -> list[str]:
    """Statements of a migration file, each complete per sqlite3.complete_statement."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        if not current and (not line.strip() or line.lstrip().startswith("--")):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement at the end of a migration: {current.strip()[:60]!r}")
    return statements
