"""Idempotency keys for writes that do not go through the ledger (sign-up, merchants).

A key is unique per principal (`user:<id>`, `admin:<id>`, `anonymous`) and is claimed in
the same database transaction as the write it guards, so key and effect commit together
or not at all (a refused request leaves the key free). The row stores a SHA-256 of the
request's fields and the ids the write produced (`result_refs`), never a response body:
a replay reads the objects again. Secrets shown once (a merchant's first API key) are
therefore not shown again on a replay.

Two concurrent requests with one key: the second INSERT waits on the first one's row
until it commits, then finds it and replays; if the first rolled back, the second wins.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Connection, DateTime, LargeBinary, MetaData, Table, Text, select
from sqlalchemy.dialects.postgresql import JSONB, insert

from pacioli.ledger.domain.errors import IdempotencyKeyReused, invariant

ANONYMOUS = "anonymous"

metadata = MetaData()

api_idempotency = Table(
    "api_idempotency",
    metadata,
    Column("principal", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("operation", Text, nullable=False),
    Column("request_hash", LargeBinary, nullable=False),
    Column("result_refs", JSONB, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class WriteKey:
    """Who sends a write and the Idempotency-Key they gave it."""

    principal: str
    key: str


def request_hash(operation: str, fields: dict[str, Any]) -> bytes:
    """A digest of the request's fields; callers leave secrets such as passwords out."""
    canonical = json.dumps([operation, fields], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).digest()


def claim(
    connection: Connection, write_key: WriteKey, operation: str, fields: dict[str, Any]
) -> dict[str, Any] | None:
    """Claim the key inside the caller's transaction; return the first write's refs if used.

    None means the key is new: do the write, then `record` its refs before committing.
    Raises: IdempotencyKeyReused (the key was used for a different request).
    """
    digest = request_hash(operation, fields)
    claimed = connection.execute(
        insert(api_idempotency)
        .values(
            principal=write_key.principal, key=write_key.key, operation=operation,
            request_hash=digest, result_refs=None, created_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing()
        .returning(api_idempotency.c.key)
    ).first()
    if claimed is not None:
        return None
    first = connection.execute(
        select(api_idempotency.c.request_hash, api_idempotency.c.result_refs).where(
            api_idempotency.c.principal == write_key.principal,
            api_idempotency.c.key == write_key.key,
        )
    ).one()
    if first.request_hash != digest:
        raise IdempotencyKeyReused()
    invariant(first.result_refs is not None, "a committed key always has its result refs")
    return first.result_refs


def record(connection: Connection, write_key: WriteKey, refs: dict[str, Any]) -> None:
    """Store what the write produced with the key claimed earlier in this transaction."""
    connection.execute(
        api_idempotency.update()
        .where(
            api_idempotency.c.principal == write_key.principal,
            api_idempotency.c.key == write_key.key,
        )
        .values(result_refs=refs)
    )
