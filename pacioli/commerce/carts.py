"""Carts: who may see one, the current cart of a user or guest, emptying, and idle expiry.

A user has one active cart, the same on every device (a partial unique index on active
carts per user). A guest's cart is found by an opaque token (`ct_...`, header
`X-Cart-Token`) of which only the SHA-256 is stored; it merges into the user's cart when
both are presented (cart_edits.merge_guest_cart). Every change to a cart or its lines
increments `version` under the cart's row lock; a write that names a version the cart no
longer has is refused with `stale_cart_version`, so two devices editing at once never
lose an update silently. Edits are in cart_edits.py.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import Connection, Engine, Row, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from pacioli.commerce import errors as ce
from pacioli.commerce import plain_sql
from pacioli.commerce.catalog_tables import commerce_cart_items, commerce_carts
from pacioli.ledger.domain.ids import uuid7

GUEST_TOKEN_PREFIX = "ct_"
EXPIRY_BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class CartItem:
    id: UUID
    variant_id: UUID
    catalog_id: UUID | None  # the reseller catalog it was added from
    quantity: int
    saved_for_later: bool
    added_at: datetime


@dataclass(frozen=True, slots=True)
class Cart:
    id: UUID
    user_id: UUID | None
    status: str  # active, merged, expired
    currency: str | None
    region: str | None
    coupon_code: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    items: tuple[CartItem, ...]


@dataclass(frozen=True, slots=True)
class CartAccess:
    """Who asks for a cart: a signed-in user, a guest's token, or both (before a merge)."""

    user_id: UUID | None = None
    guest_token: str | None = None


@dataclass(frozen=True, slots=True)
class GuestCart:
    """A new guest cart and its token, which is shown this once and never stored."""

    cart: Cart
    token: str


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def get_cart(connection: Connection, cart_id: UUID) -> Cart:
    """The cart and its lines (saved-for-later ones too). Raises: CartNotFound."""
    return _cart(connection, cart_row(connection, cart_id))


def cart_row(connection: Connection, cart_id: UUID) -> Row:
    """The cart's row. Raises: CartNotFound."""
    row = connection.execute(select(commerce_carts).where(commerce_carts.c.id == cart_id)).first()
    if row is None:
        raise ce.CartNotFound(f"no cart {cart_id}")
    return row


def visible_cart(connection: Connection, cart_id: UUID, access: CartAccess, *,
                 for_update: bool = False) -> Row:
    """The cart's row if `access` may see it (its user, or its guest token).

    Raises: CartNotFound (also for someone else's cart).
    """
    query = visible_cart_query(cart_id, access)
    row = connection.execute(query.with_for_update() if for_update else query).first()
    if row is None:
        raise ce.CartNotFound(f"no cart {cart_id}")
    return row


def lock_visible_cart(connection: Connection, cart_id: UUID, access: CartAccess):
    """`visible_cart(..., for_update=True)` in plain SQL, with the database's clock
    (`db_now`) read in the same round trip. Raises: CartNotFound."""
    owned, params = [], {"id": cart_id}
    if access.user_id is not None:
        owned.append("user_id = %(user_id)s")
        params["user_id"] = access.user_id
    if access.guest_token is not None:
        owned.append("guest_token_hash = %(token_hash)s")
        params["token_hash"] = token_digest(access.guest_token)
    row = None if not owned else plain_sql.first(
        connection,
        "SELECT *, now() AS db_now FROM commerce_carts"
        f" WHERE id = %(id)s AND ({' OR '.join(owned)}) FOR UPDATE",
        params,
    )
    if row is None:
        raise ce.CartNotFound(f"no cart {cart_id}")
    return row


def visible_cart_query(cart_id: UUID, access: CartAccess):
    """The query of the cart's row if `access` may see it. Raises: CartNotFound (no
    access at all)."""
    t = commerce_carts
    owned = []
    if access.user_id is not None:
        owned.append(t.c.user_id == access.user_id)
    if access.guest_token is not None:
        owned.append(t.c.guest_token_hash == token_digest(access.guest_token))
    if not owned:
        raise ce.CartNotFound(f"no cart {cart_id}")
    return select(t).where(t.c.id == cart_id, or_(*owned))


def load_cart(connection: Connection, row: Row) -> Cart:
    return _cart(connection, row)


def empty_cart(connection: Connection, cart_id: UUID, *, version: int) -> None:
    """Remove the cart's lines (not those saved for later) after the order exists.

    In the caller's transaction; one statement. Raises: StaleCart (the cart moved past
    `version`), CartNotFound.
    """
    bumped = plain_sql.first(connection, _EMPTY_CART_SQL, {"id": cart_id, "version": version})
    if bumped is None:
        get_cart(connection, cart_id)  # CartNotFound if there is no such cart
        raise ce.StaleCart(f"cart {cart_id} is no longer at version {version}")


# The version's bump and the lines' removal together (the removal only if the cart was
# still at the version).
_EMPTY_CART_SQL = """
WITH bumped AS (
    UPDATE commerce_carts SET version = version + 1, coupon_code = NULL, updated_at = now()
    WHERE id = %(id)s AND version = %(version)s
    RETURNING id
), emptied AS (
    DELETE FROM commerce_cart_items
    WHERE cart_id IN (SELECT id FROM bumped) AND NOT saved_for_later
)
SELECT id FROM bumped
"""


def new_guest_cart(engine: Engine) -> GuestCart:
    """A new, empty guest cart and its token."""
    token = GUEST_TOKEN_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as connection:
        now = _now(connection)
        row = connection.execute(
            insert(commerce_carts).values(
                id=uuid7(), user_id=None, guest_token_hash=token_digest(token), status="active",
                version=1, created_at=now, updated_at=now,
            ).returning(commerce_carts)
        ).one()
        return GuestCart(_cart(connection, row), token)


def guest_cart(engine: Engine, token: str, *, idle_seconds: int) -> Cart:
    """The guest cart of `token`. Raises: CartNotFound (unknown, merged or expired)."""
    t = commerce_carts
    with engine.connect() as connection:
        row = connection.execute(
            select(t).where(t.c.guest_token_hash == token_digest(token), t.c.status == "active")
        ).first()
        # An idle guest cart is gone already; the expiry job marks it.
        if row is None or _is_idle(connection, row, idle_seconds):
            raise ce.CartNotFound("no active cart has this token")
        return _cart(connection, row)


def user_cart(engine: Engine, user_id: UUID, *, idle_seconds: int) -> Cart:
    """The user's active cart, made (empty) if they have none or it sat idle too long."""
    t = commerce_carts
    with engine.begin() as connection:
        row = _active_user_cart(connection, user_id)
        if row is not None and not _expire_if_idle(connection, row, idle_seconds):
            return _cart(connection, row)
        now = _now(connection)
        connection.execute(
            insert(t).values(id=uuid7(), user_id=user_id, status="active", version=1,
                             created_at=now, updated_at=now)
            .on_conflict_do_nothing(
                index_elements=[t.c.user_id],
                index_where=(t.c.status == "active") & t.c.user_id.is_not(None),
            )
        )
        return _cart(connection, _active_user_cart(connection, user_id))


def expire_idle_carts(engine: Engine, now: datetime, *, idle_seconds: int) -> int:
    """Mark carts untouched for `idle_seconds` expired; how many were. A ScheduledJob."""
    t = commerce_carts
    cutoff = now - timedelta(seconds=idle_seconds)
    expired = 0
    while True:
        with engine.begin() as connection:
            due = select(t.c.id).where(t.c.status == "active", t.c.updated_at < cutoff).limit(
                EXPIRY_BATCH_SIZE).with_for_update(skip_locked=True).scalar_subquery()
            count = len(connection.execute(
                update(t).where(t.c.id.in_(due), t.c.status == "active")
                .values(status="expired", version=t.c.version + 1).returning(t.c.id)
            ).all())
        expired += count
        if count < EXPIRY_BATCH_SIZE:
            return expired


def _active_user_cart(connection: Connection, user_id: UUID) -> Row | None:
    t = commerce_carts
    return connection.execute(
        select(t).where(t.c.user_id == user_id, t.c.status == "active")
    ).first()


def _is_idle(connection: Connection, row: Row, idle_seconds: int) -> bool:
    return row.updated_at < _now(connection) - timedelta(seconds=idle_seconds)


def _expire_if_idle(connection: Connection, row: Row, idle_seconds: int) -> bool:
    """Expire the cart if it sat idle too long (the job may not have run yet)."""
    if not _is_idle(connection, row, idle_seconds):
        return False
    t = commerce_carts
    connection.execute(
        update(t).where(t.c.id == row.id, t.c.status == "active")
        .values(status="expired", version=t.c.version + 1)
    )
    return True


def _cart(connection: Connection, row: Row) -> Cart:
    i = commerce_cart_items
    items = connection.execute(select(i).where(i.c.cart_id == row.id).order_by(i.c.id))
    return Cart(
        id=row.id, user_id=row.user_id, status=row.status, currency=row.currency,
        region=row.region, coupon_code=row.coupon_code, version=int(row.version),
        created_at=row.created_at, updated_at=row.updated_at,
        items=tuple(
            CartItem(item.id, item.variant_id, item.catalog_id, int(item.quantity),
                     item.saved_for_later, item.added_at)
            for item in items
        ),
    )


def _now(connection: Connection) -> datetime:
    """The database's clock, so every process ages carts by the same time."""
    return connection.execute(select(func.now())).scalar_one()
