"""Admin API keys: made by `pacioli admin create-key`, shown once, stored as SHA-256 digests.

An admin key reaches the ledger-level endpoints. Keys are random 32-byte secrets, so a
fast hash is enough to store them (a slow password hash protects guessable secrets).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Engine,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    insert,
    select,
)

from pacioli.ledger.domain.ids import uuid7

KEY_PREFIX = "pk_admin_"

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("key_hash", LargeBinary, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("role IN ('admin')", name="ck_api_keys_role"),
)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def create_admin_key(engine: Engine, name: str) -> tuple[UUID, str]:
    """Make a new admin key; return its id and the plaintext, which is never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = uuid7()
    with engine.begin() as connection:
        connection.execute(
            insert(api_keys).values(
                id=key_id, name=name, role="admin", key_hash=_digest(key),
                created_at=datetime.now(UTC),
            )
        )
    return key_id, key


def find_admin_key(engine: Engine, key: str) -> UUID | None:
    """The id of the live admin key with this plaintext, or None."""
    with engine.connect() as connection:
        return connection.execute(
            select(api_keys.c.id).where(
                api_keys.c.key_hash == _digest(key),
                api_keys.c.role == "admin",
                api_keys.c.revoked_at.is_(None),
            )
        ).scalar()
