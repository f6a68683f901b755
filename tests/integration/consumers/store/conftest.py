"""A database of its own per test: a fresh PostgreSQL schema (selected with
``?options=-csearch_path%3D<schema>``, dropped afterwards) or a SQLite file
in the test's temp dir."""

from __future__ import annotations

import uuid

import psycopg
import pytest


@pytest.fixture
def pg_schema_url(pg_url):
    schema = f"it_store_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in pg_url else "?"
    yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return request.getfixturevalue("pg_schema_url")
