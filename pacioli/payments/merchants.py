"""Merchants: registration and review, secret API keys, and the settlement account on file.

Every merchant has an owning user. An admin registers a merchant approved at once; a
user registers their own, which waits for review (`pending_review`) until an admin
approves or rejects it. Registration issues the first secret key (`sk_live_...` or
`sk_test_...`), shown once; only its SHA-256 digest is stored. A key authenticates its
merchant only while the merchant is approved. Several keys may be live at once;
rotating makes a new key and lets the old one run out after an optional grace period.

Changing an existing settlement account needs the owning user's TOTP code: it redirects
the merchant's payouts, the move an account takeover would make (see docs/users.md).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    or_,
    select,
    update,
)

from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.service.ledger import Written
from pacioli.payments import identity_idempotency as idempotency
from pacioli.payments import users as user_accounts
from pacioli.payments.identity_errors import (
    ApiKeyNotFound,
    MerchantAlreadyReviewed,
    MerchantNotFound,
)
from pacioli.payments.identity_idempotency import WriteKey

KEY_PREFIXES = {"live": "sk_live_", "test": "sk_test_"}
NAME_LENGTH_MAX = 200

metadata = MetaData()

merchants = Table(
    "merchants",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("owner_user_id", Uuid, nullable=False),
    Column("status", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("reviewed_at", DateTime(timezone=True), nullable=True),
)

merchant_api_keys = Table(
    "merchant_api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("merchant_id", Uuid, nullable=False),
    Column("mode", Text, nullable=False),
    Column("key_hash", LargeBinary, nullable=False, unique=True),
    Column("last4", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


class MerchantStatus(StrEnum):
    PENDING_REVIEW = "pending_review"
    APPROVED = "approved"
    REJECTED = "rejected"


class KeyMode(StrEnum):
    LIVE = "live"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class Merchant:
    id: UUID
    name: str
    owner_user_id: UUID
    status: MerchantStatus
    created_at: datetime
    reviewed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A secret key as it is stored: never the secret, only its mode and last four."""

    id: UUID
    merchant_id: UUID
    mode: KeyMode
    last4: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    """A new key and its secret, which is shown this once and never stored."""

    key: ApiKey
    secret: str


@dataclass(frozen=True, slots=True)
class Registration:
    """A registered merchant; `api_key` is None on a replay (the secret is not kept)."""

    merchant: Merchant
    api_key: IssuedApiKey | None


@dataclass(frozen=True, slots=True)
class KeyHolder:
    """The merchant a presented secret key belongs to, and that key."""

    merchant: Merchant
    key_id: UUID
    mode: KeyMode


def key_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


# Registration and review.


def register_merchant(
    engine: Engine,
    *,
    name: str,
    owner_user_id: UUID,
    approved: bool,
    mode: KeyMode = KeyMode.TEST,
    write_key: WriteKey,
) -> Written[Registration]:
    """Register a merchant owned by `owner_user_id` and issue its first key.

    `approved` is for admins; a user's own registration waits for review.
    Raises: UserNotFound, IdempotencyKeyReused.
    """
    fields = {"name": name, "owner_user_id": str(owner_user_id), "approved": approved,
              "mode": str(mode)}
    now = datetime.now(UTC)
    with engine.begin() as connection:
        refs = idempotency.claim(connection, write_key, "register_merchant", fields)
        if refs is not None:
            merchant = _load(connection, UUID(refs["merchant_id"]))
            return Written(Registration(merchant, None), replayed=True)
        user_accounts.get_user_in(connection, owner_user_id)
        merchant = Merchant(
            uuid7(), name, owner_user_id,
            MerchantStatus.APPROVED if approved else MerchantStatus.PENDING_REVIEW,
            now, now if approved else None,
        )
        connection.execute(merchants.insert().values(
            id=merchant.id, name=name, owner_user_id=owner_user_id, status=str(merchant.status),
            created_at=now, reviewed_at=merchant.reviewed_at,
        ))
        issued = _issue_key(connection, merchant.id, mode, now)
        idempotency.record(connection, write_key, {"merchant_id": str(merchant.id)})
    return Written(Registration(merchant, issued), replayed=False)


def review_merchant(engine: Engine, merchant_id: UUID, *, approve: bool) -> Merchant:
    """Approve or reject a merchant waiting for review.

    Raises: MerchantNotFound, MerchantAlreadyReviewed.
    """
    status = MerchantStatus.APPROVED if approve else MerchantStatus.REJECTED
    with engine.begin() as connection:
        merchant = _load(connection, merchant_id, for_update=True)
        if merchant.status != MerchantStatus.PENDING_REVIEW:
            if merchant.status == status:
                return merchant  # The same decision again: a retry, not a conflict.
            raise MerchantAlreadyReviewed(f"the merchant is already {merchant.status}")
        connection.execute(
            update(merchants).where(merchants.c.id == merchant_id)
            .values(status=str(status), reviewed_at=datetime.now(UTC))
        )
        return _load(connection, merchant_id)


# Reads.


def get_merchant(engine: Engine, merchant_id: UUID) -> Merchant:
    """Raises: MerchantNotFound."""
    with engine.connect() as connection:
        return _load(connection, merchant_id)


def merchants_of(engine: Engine, owner_user_id: UUID) -> list[Merchant]:
    """The merchants a user owns, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(merchants).where(merchants.c.owner_user_id == owner_user_id)
            .order_by(merchants.c.id)
        ).all()
    return [_merchant_of(row) for row in rows]


def _load(connection: Connection, merchant_id: UUID, *, for_update: bool = False) -> Merchant:
    query = select(merchants).where(merchants.c.id == merchant_id)
    row = connection.execute(query.with_for_update() if for_update else query).first()
    if row is None:
        raise MerchantNotFound()
    return _merchant_of(row)


def _merchant_of(row) -> Merchant:
    return Merchant(row.id, row.name, row.owner_user_id, MerchantStatus(row.status),
                    row.created_at, row.reviewed_at)


# Secret keys.


def find_key_holder(
    engine: Engine, secret: str, *, now: datetime | None = None
) -> KeyHolder | None:
    """The merchant whose live (unexpired, unrevoked) key this is, whatever its status."""
    if not secret.startswith(tuple(KEY_PREFIXES.values())):
        return None
    now = now or datetime.now(UTC)
    keys = merchant_api_keys
    with engine.connect() as connection:
        row = connection.execute(
            select(keys.c.id.label("key_id"), keys.c.mode, merchants)
            .join(merchants, merchants.c.id == keys.c.merchant_id)
            .where(
                keys.c.key_hash == key_digest(secret),
                keys.c.revoked_at.is_(None),
                or_(keys.c.expires_at.is_(None), keys.c.expires_at > now),
            )
        ).first()
    if row is None:
        return None
    return KeyHolder(_merchant_of(row), row.key_id, KeyMode(row.mode))


def rotate_key(
    engine: Engine,
    merchant_id: UUID,
    *,
    current_key_id: UUID,
    mode: KeyMode,
    expire_current_after_seconds: int | None,
    write_key: WriteKey,
    now: datetime | None = None,
) -> Written[IssuedApiKey | ApiKey]:
    """Issue a new key; the current one stops working after the grace period, if given.

    With `expire_current_after_seconds` None the current key stays live (a second key);
    a current key that already expires sooner keeps its earlier deadline. A replay
    returns the stored key without its secret (an ApiKey, not an IssuedApiKey).
    Raises: ApiKeyNotFound (the current key is not this merchant's), IdempotencyKeyReused.
    """
    now = now or datetime.now(UTC)
    fields = {"merchant_id": str(merchant_id), "current_key_id": str(current_key_id),
              "mode": str(mode), "expire_current_after_seconds": expire_current_after_seconds}
    with engine.begin() as connection:
        refs = idempotency.claim(connection, write_key, "rotate_key", fields)
        if refs is not None:
            key = _load_key(connection, merchant_id, UUID(refs["key_id"]))
            return Written(key, replayed=True)
        if expire_current_after_seconds is not None:
            _expire_key(connection, merchant_id, current_key_id,
                        now + timedelta(seconds=expire_current_after_seconds))
        issued = _issue_key(connection, merchant_id, mode, now)
        idempotency.record(connection, write_key, {"key_id": str(issued.key.id)})
    return Written(issued, replayed=False)


def revoke_key(engine: Engine, merchant_id: UUID, key_id: UUID) -> ApiKey:
    """Stop a key at once. Raises: ApiKeyNotFound (not this merchant's, or unknown)."""
    with engine.begin() as connection:
        connection.execute(
            update(merchant_api_keys)
            .where(merchant_api_keys.c.id == key_id,
                   merchant_api_keys.c.merchant_id == merchant_id,
                   merchant_api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        return _load_key(connection, merchant_id, key_id)


def list_keys(engine: Engine, merchant_id: UUID) -> list[ApiKey]:
    """The merchant's keys, live or not, oldest first (never their secrets)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(merchant_api_keys).where(merchant_api_keys.c.merchant_id == merchant_id)
            .order_by(merchant_api_keys.c.id)
        ).all()
    return [_key_of(row) for row in rows]


def _issue_key(connection: Connection, merchant_id: UUID, mode: KeyMode, now: datetime):
    secret = KEY_PREFIXES[mode] + secrets.token_urlsafe(32)
    key = ApiKey(uuid7(), merchant_id, mode, secret[-4:], now, None, None)
    connection.execute(merchant_api_keys.insert().values(
        id=key.id, merchant_id=merchant_id, mode=str(mode), key_hash=key_digest(secret),
        last4=key.last4, created_at=now,
    ))
    return IssuedApiKey(key, secret)


def _expire_key(
    connection: Connection, merchant_id: UUID, key_id: UUID, expires_at: datetime
) -> None:
    keys = merchant_api_keys
    _load_key(connection, merchant_id, key_id)
    connection.execute(
        update(keys)
        .where(keys.c.id == key_id, keys.c.merchant_id == merchant_id,
               or_(keys.c.expires_at.is_(None), keys.c.expires_at > expires_at))
        .values(expires_at=expires_at)
    )


def _load_key(connection: Connection, merchant_id: UUID, key_id: UUID) -> ApiKey:
    row = connection.execute(
        select(merchant_api_keys).where(
            merchant_api_keys.c.id == key_id, merchant_api_keys.c.merchant_id == merchant_id
        )
    ).first()
    if row is None:
        raise ApiKeyNotFound()
    return _key_of(row)


def _key_of(row) -> ApiKey:
    return ApiKey(row.id, row.merchant_id, KeyMode(row.mode), row.last4, row.created_at,
                  row.expires_at, row.revoked_at)
