"""User sessions: opaque bearer tokens made at login, stored as SHA-256, expiring, revocable.

A token is `pat_` and 32 random bytes (URL-safe base64), shown once at login. Only its
SHA-256 digest is stored: the token is random, so a fast hash suffices (a slow password
hash protects guessable secrets). A session ends at its `expires_at` or when revoked
(logout); either way `find_session` stops finding it at once. The API remembers live
sessions for a few seconds (`api/caches.py`): there a session revoked by another process
stops working within that time.
Opening a session is logging in: `user.logged_in` is appended to the outbox in the
transaction that records the session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from argon2 import PasswordHasher
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    LargeBinary,
    MetaData,
    Table,
    Uuid,
    select,
    update,
)

from pacioli.config import get_settings
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.outbox import append_event
from pacioli.payments.users import User, verify_password

TOKEN_PREFIX = "pat_"

metadata = MetaData()

user_sessions = Table(
    "user_sessions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("token_hash", LargeBinary, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A new session and its token, which is shown this once and never stored."""

    id: UUID
    user_id: UUID
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LiveSession:
    """A session whose token was just presented and is valid."""

    id: UUID
    user_id: UUID
    expires_at: datetime


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def log_in(
    engine: Engine,
    *,
    login: str,
    password: str,
    hasher: PasswordHasher | None = None,
    now: datetime | None = None,
) -> tuple[User, IssuedSession]:
    """Check the password and open a session. Raises: InvalidCredentials."""
    user = verify_password(engine, login=login, password=password, hasher=hasher)
    return user, open_session(engine, user.id, now=now)


def open_session(
    engine: Engine, user_id: UUID, *, ttl_seconds: int | None = None, now: datetime | None = None
) -> IssuedSession:
    """A new session for `user_id`, living `ttl_seconds` (default: the setting)."""
    now = now or datetime.now(UTC)
    ttl_seconds = ttl_seconds if ttl_seconds is not None else get_settings().session_ttl_seconds
    session = IssuedSession(
        id=uuid7(),
        user_id=user_id,
        token=TOKEN_PREFIX + secrets.token_urlsafe(32),
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    with engine.begin() as connection:
        connection.execute(
            user_sessions.insert().values(
                id=session.id, user_id=user_id, token_hash=token_digest(session.token),
                created_at=now, expires_at=session.expires_at,
            )
        )
        append_event(connection, "user.logged_in", "user", str(user_id), {
            "user_id": str(user_id), "session_id": str(session.id),
            "logged_in_at": now.isoformat(),
        }, now=now)
    return session


def find_session(engine: Engine, token: str, *, now: datetime | None = None) -> LiveSession | None:
    """The live (unexpired, unrevoked) session of this token, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    now = now or datetime.now(UTC)
    with engine.connect() as connection:
        row = connection.execute(
            select(user_sessions.c.id, user_sessions.c.user_id, user_sessions.c.expires_at).where(
                user_sessions.c.token_hash == token_digest(token),
                user_sessions.c.revoked_at.is_(None),
                user_sessions.c.expires_at > now,
            )
        ).first()
    return None if row is None else LiveSession(row.id, row.user_id, row.expires_at)


def revoke_session(engine: Engine, session_id: UUID, *, now: datetime | None = None) -> None:
    """End one session (logout); revoking an ended session changes nothing."""
    with engine.begin() as connection:
        connection.execute(
            update(user_sessions)
            .where(user_sessions.c.id == session_id, user_sessions.c.revoked_at.is_(None))
            .values(revoked_at=now or datetime.now(UTC))
        )


def revoke_all_sessions(engine: Engine, user_id: UUID, *, now: datetime | None = None) -> int:
    """End every live session of a user; return how many were ended."""
    with engine.begin() as connection:
        return connection.execute(
            update(user_sessions)
            .where(user_sessions.c.user_id == user_id, user_sessions.c.revoked_at.is_(None))
            .values(revoked_at=now or datetime.now(UTC))
        ).rowcount
