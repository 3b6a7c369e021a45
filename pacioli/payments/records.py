"""What every flow's record table shares: the request hash its Idempotency-Key guards, the
replay check, and listing a caller's records newest first.

Every flow records a request in a row unique on (caller, Idempotency-Key) with a hash of
the request (docs/architecture.md, "Payment flows on the ledger"); these helpers are
that pattern's common parts, so each flow states only what is its own.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Engine, Row, Select, Table, select

from pacioli.ledger.domain.errors import DomainError
from pacioli.payments.errors import IdempotencyKeyReusedForPayment

PAGE_LIMIT_MAX = 200


def request_hash(*parts: Any) -> str:
    """SHA-256 of a request's fields, in order (None stays distinct from the text "None")."""
    body = [None if part is None else str(part) for part in parts]
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()


def same_request(
    row, expected_hash: str, idempotency_key: str,
    error: type[DomainError] = IdempotencyKeyReusedForPayment,
):
    """`row`, recorded under this key, if it was recorded for the same request.

    Raises: `error` (an `idempotency_key_reused` conflict) when the key was used for
    another request.
    """
    if row.request_hash != expected_hash:
        raise error(f"idempotency key {idempotency_key!r} was used for another request")
    return row


def newest_first(
    table: Table, *where: ColumnElement[bool], limit: int, starting_after: UUID | None = None
) -> Select:
    """Rows of `table` matching `where`, newest first (ids are UUIDv7, so time-ordered),
    after the cursor `starting_after`, at most `limit`.

    The cap is one more than the largest page, so a caller asking for a full page plus
    one can still tell whether more rows follow.
    """
    query = select(table).where(*where).order_by(table.c.id.desc())
    if starting_after is not None:
        query = query.where(table.c.id < starting_after)
    return query.limit(min(limit, PAGE_LIMIT_MAX + 1))


def owned_row(engine: Engine, table: Table, record_id: UUID, user_id: UUID) -> Row | None:
    """The record `record_id` if `user_id` owns it (its `user_id` column), else None."""
    with engine.connect() as connection:
        return connection.execute(
            select(table).where(table.c.id == record_id, table.c.user_id == user_id)
        ).first()


def owned_rows(
    engine: Engine, table: Table, user_id: UUID, *, status: str | None, limit: int,
    starting_after: UUID | None,
) -> list[Row]:
    """A user's records, newest first, optionally of one status (see `newest_first`)."""
    wanted = [table.c.user_id == user_id]
    if status is not None:
        wanted.append(table.c.status == status)
    query = newest_first(table, *wanted, limit=limit, starting_after=starting_after)
    with engine.connect() as connection:
        return list(connection.execute(query))
