"""PostgreSQL (psycopg 3): per batch, one transaction; per table, a binary
``COPY`` into a session temp table, then one ``INSERT ... SELECT ... ON
CONFLICT``. Binary COPY: no text formatting on our side, no parsing on the
server's (timestamps go as datetimes, JSON as dicts, decimals as their text)."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from consumers.store.db import MIGRATIONS_TABLE, BadRowsError, DatabaseUnavailable, Store, migrations
from consumers.store.rows import POSTGRESQL, RowBatch
from consumers.store.tables import TABLES, OnConflict, Table

# Serialises migrations of concurrent starts (any 64-bit constant; "tradebus" in ASCII).
MIGRATION_LOCK = 0x7472616465627573


def staging(table: Table) -> str:
    return f"tradebus_staging_{table.name}"


def merge_sql(table: Table) -> str:
    columns = ", ".join(table.columns)
    sql = (f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {staging(table)} "
           f"ON CONFLICT ({', '.join(table.key)}) DO ")
    if table.on_conflict is OnConflict.KEEP:
        return sql + "NOTHING"
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in table.columns if c not in table.key)
    sql += f"UPDATE SET {updates}, stored_at = clock_timestamp()"
    if table.on_conflict is OnConflict.NEWEST:
        new = ", ".join(f"EXCLUDED.{c}{_collate(c)}" for c in table.newer_by)
        old = ", ".join(f"{table.name}.{c}{_collate(c)}" for c in table.newer_by)
        sql += f" WHERE ({new}) > ({old})"
    return sql


# Text compared for "newer": byte order, as Python and SQLite compare it (the
# database's collation could order ties differently from the in-batch resolution).
TEXT_COMPARED = {"last_update_text"}


def _collate(column: str) -> str:
    return ' COLLATE "C"' if column in TEXT_COMPARED else ""


class PostgresStore(Store):
    dialect = "postgresql"
    values = POSTGRESQL
    placeholder = "%s"

    def __init__(self, url: str):
        self.url = url
        self._connect()
        self._merge = {name: merge_sql(table) for name, table in TABLES.items()}
        self._copy = {name: f"COPY {staging(table)} ({', '.join(table.columns)}) FROM STDIN (FORMAT BINARY)"
                      for name, table in TABLES.items()}

    def _connect(self) -> None:
        # autocommit: every write and migration opens its own explicit transaction.
        # connect_timeout: 10 s unless the URL says otherwise (?connect_timeout=N).
        timeout = {} if "connect_timeout" in conninfo_to_dict(self.url) else {"connect_timeout": 10}
        self.conn = psycopg.connect(self.url, autocommit=True, **timeout)
        self._types: dict[str, list[int]] = {}  # staging table -> column type oids, for binary COPY

    def _ensure_staging(self, name: str) -> None:
        if name not in self._types:
            table = TABLES[name]
            # Session-scoped, emptied at every commit; LIKE gives the same column types.
            self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staging(table)} (LIKE {name} INCLUDING DEFAULTS) "
                              "ON COMMIT DELETE ROWS")
            oids = dict(self.conn.execute(
                "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
                (f"pg_temp.{staging(table)}",)).fetchall())
            self._types[name] = [oids[c] for c in table.columns]

    def write(self, batch: RowBatch) -> dict[str, int]:
        changed: dict[str, int] = {}
        try:
            for name, rows in batch.tables.items():
                if rows:
                    self._ensure_staging(name)
            with self.conn.transaction():
                with self.conn.cursor() as cursor:
                    for name, rows in batch.tables.items():
                        if not rows:
                            continue
                        with cursor.copy(self._copy[name]) as copy:
                            copy.set_types(self._types[name])
                            for row in rows.values():
                                copy.write_row(row)
                        cursor.execute(self._merge[name])
                        changed[name] = cursor.rowcount
        except psycopg.OperationalError as exc:  # connection lost, server shutting down, ...
            raise DatabaseUnavailable(str(exc)) from exc
        except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
            raise BadRowsError(str(exc)) from exc
        return changed

    def migrate(self) -> list[str]:
        applied = []
        for migration in migrations(self.dialect):
            with self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                self.conn.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version integer PRIMARY KEY, "
                                  "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
                done = self.conn.execute(f"SELECT 1 FROM {MIGRATIONS_TABLE} WHERE version = %s",
                                         (migration.version,)).fetchone()
                if not done:
                    self.conn.execute(migration.sql)  # no parameters: several statements in one call
                    self.conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES (%s, %s)",
                                      (migration.version, migration.name))
                    applied.append(f"{migration.version:04d}_{migration.name}")
        return applied

    def query(self, sql: str, params: tuple = ()) -> list[dict]:
        with self.conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def ping(self) -> bool:
        try:
            self.conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def reconnect(self) -> None:
        try:
            self.conn.close()
        finally:
            self._connect()

    def close(self) -> None:
        self.conn.close()
