"""The store's database: SQLite (the embedded default) or PostgreSQL.

``Store.open(url)`` connects, applies pending migrations and returns a store
with one write path (:meth:`Store.write`: a whole batch in one transaction,
idempotent upserts) and small read helpers (:meth:`Store.rows`,
:meth:`Store.count`) that other tools (``tradebus verify``) can reuse::

    with Store.open("sqlite:///./tradebus.db") as store:
        store.count("orders"); store.rows("trades", where={"order_id": "b-1"})

Migrations: ``migrations/<dialect>/NNNN_name.sql``, applied in order at open,
each in its own transaction, recorded in ``schema_migrations``; concurrent
starts are serialised (an advisory lock in PostgreSQL, ``BEGIN IMMEDIATE``
in SQLite). In PostgreSQL every statement is unqualified, so the schema is
whatever the connection's ``search_path`` says (``?options=-csearch_path%3Dname``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from consumers.store.rows import Dialect, RowBatch
from consumers.store.tables import DECIMAL_COLUMNS, TABLES
from tradebus.config import ConfigError
from tradebus.redaction import redact, redact_url

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
MIGRATIONS_TABLE = "schema_migrations"


class BadRowsError(RuntimeError):
    """The database refused the data of a batch (not a connection problem)."""


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached right now; retry later."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(dialect: str) -> list[Migration]:
    found = []
    for path in sorted((MIGRATIONS_DIR / dialect).glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise RuntimeError(f"migration file {path.name}: expected NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations must be numbered 0001, 0002, ... without gaps; got {versions}")
    return found


class Store:
    """Base of the two dialects; use :meth:`Store.open`."""

    dialect = ""
    values: Dialect  # how rows carry timestamps and JSON for this database

    @staticmethod
    def open(url: str, *, migrate: bool = True, setting: str = "TRADEBUS_DATABASE_URL") -> "Store":
        """Connect (and migrate). Any failure is a ConfigError naming ``setting``,
        with the password masked."""
        scheme = urlsplit(url).scheme
        try:
            if scheme == "sqlite":
                from consumers.store.sqlite import SqliteStore

                store: Store = SqliteStore(sqlite_path(url))
            elif scheme in ("postgresql", "postgres"):
                from consumers.store.postgres import PostgresStore

                store = PostgresStore(url)
            else:
                raise ConfigError(f"{setting}: expected sqlite:///PATH or postgresql://..., got scheme {scheme!r}")
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"{setting}: cannot open {redact_url(url)}: {type(exc).__name__}: {redact(str(exc))}") from None
        if migrate:
            try:
                applied = store.migrate()
            except Exception as exc:
                store.close()
                raise ConfigError(f"{setting}: migrating {redact_url(url)} failed: {type(exc).__name__}: "
                                  f"{redact(str(exc))}") from None
            if applied:
                log.info("store: applied migrations %s to %s", ", ".join(applied), redact_url(url))
        return store

    # -------------------------------------------------------------- dialects
    def write(self, batch: RowBatch) -> dict[str, int]:
        """Upsert every row of the batch in one transaction; rows changed per table."""
        raise NotImplementedError

    def migrate(self) -> list[str]:
        raise NotImplementedError

    def query(self, sql: str, params: tuple = ()) -> list[dict]:
        raise NotImplementedError

    def ping(self) -> bool:
        raise NotImplementedError

    def reconnect(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -------------------------------------------------------------- helpers
    def new_batch(self) -> RowBatch:
        return RowBatch(self.values)

    def applied_migrations(self) -> list[int]:
        return [r["version"] for r in self.query(f"SELECT version FROM {MIGRATIONS_TABLE} ORDER BY version")]

    def count(self, table: str) -> int:
        _check_table(table)
        return self.query(f"SELECT count(*) AS n FROM {table}")[0]["n"]

    def rows(self, table: str, where: dict | None = None, order_by: str | tuple[str, ...] | None = None,
             limit: int | None = None) -> list[dict]:
        """Rows as dicts; ``where`` is column = value (AND), names checked.
        PostgreSQL also has ``<table>_numeric`` views (decimals as NUMERIC too)."""
        known = _check_table(table)
        clauses, params = [], []
        for column, value in (where or {}).items():
            _check_column(table, column, known)
            clauses.append(f"{column} = {self.placeholder}")
            params.append(value)
        sql = f"SELECT * FROM {table}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        if order_by:
            columns = (order_by,) if isinstance(order_by, str) else order_by
            for column in columns:
                _check_column(table, column, known)
            sql += " ORDER BY " + ", ".join(columns)
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self.query(sql, tuple(params))

    placeholder = "?"

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sqlite_path(url: str) -> str:
    """sqlite:///relative/path, sqlite:////absolute/path, sqlite:///:memory:"""
    rest = url[len("sqlite://"):]
    if not rest.startswith("/"):
        raise ConfigError(f"TRADEBUS_DATABASE_URL: expected sqlite:///PATH, got {redact_url(url)!r}")
    path = rest[1:].split("?", 1)[0]
    if not path:
        raise ConfigError("TRADEBUS_DATABASE_URL: sqlite:/// needs a file path")
    return path


def _check_table(table: str) -> tuple[str, ...]:
    """The columns of a known table (or PostgreSQL ``<table>_numeric`` view)."""
    if table == MIGRATIONS_TABLE:
        return ("version", "name", "applied_at")
    base = table[:-len("_numeric")] if table.endswith("_numeric") and table[:-len("_numeric")] in DECIMAL_COLUMNS \
        else table
    if base not in TABLES:
        raise ValueError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
    extra = tuple(f"{c}_num" for c in DECIMAL_COLUMNS[base]) if base != table else ()
    return (*TABLES[base].columns, "stored_at", *extra)


def _check_column(table: str, column: str, known: tuple[str, ...]) -> None:
    if column not in known:
        raise ValueError(f"unknown column {column!r} of {table}")
