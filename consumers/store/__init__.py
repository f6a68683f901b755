"""The store worker (unique topics -> SQLite/PostgreSQL) and the store itself.

``Store.open(url)`` (consumers.store.db) is the reusable part: migrations,
batch upserts, and read helpers for tools such as ``tradebus verify``.
"""

from consumers.store.db import Store

__all__ = ["Store"]
