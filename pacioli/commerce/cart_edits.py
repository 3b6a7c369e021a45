"""Changing a cart: add, change quantity, remove, save for later and back, coupon, region,
and merging a guest's cart into the user's.

Every edit is one transaction that locks the cart's row, checks the version the client
last saw (when it sends one; quantity changes, removals, moves and coupons must), does
the change and increments the version. So two devices editing at once are serialized,
and the one that edited a cart it had not seen in its latest state gets
`stale_cart_version` (409) and changes nothing. Checks run before the first write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

from sqlalchemy import Connection, Engine, Row, delete, exists, func, select, update

from pacioli.commerce import errors as ce
from pacioli.commerce import plain_sql, promotions
from pacioli.commerce.carts import (
    Cart,
    CartAccess,
    load_cart,
    lock_visible_cart,
    token_digest,
    user_cart,
)
from pacioli.commerce.catalog_tables import (
    commerce_cart_items,
    commerce_carts,
    commerce_products,
    commerce_variants,
)
from pacioli.commerce.resellers import catalog_margin, shared_catalog
from pacioli.ledger.domain.ids import uuid7

_INSERT_ITEM_SQL = """
INSERT INTO commerce_cart_items (id, cart_id, variant_id, catalog_id, quantity,
                                 saved_for_later, added_at)
VALUES (%(id)s, %(cart_id)s, %(variant_id)s, %(catalog_id)s, %(quantity)s, false,
        %(added_at)s)
"""
_UPDATE_ITEM_SQL = """
UPDATE commerce_cart_items
SET quantity = %(quantity)s, saved_for_later = false,
    catalog_id = coalesce(%(catalog_id)s, catalog_id)
WHERE id = %(id)s
"""
# The cart's columns an edit may set along with its version.
_EDITABLE_COLUMNS = frozenset({"currency", "coupon_code", "region"})

T = TypeVar("T")
# What an edit answers, built from the cart's new row in the edit's transaction.
Answer = Callable[[Connection, Row], T]

QUANTITY_MAX = 1000
REGION_LENGTH_MAX = 64


@dataclass(frozen=True, slots=True)
class Merge:
    """The user's cart after a merge, and the guest lines it could not take (another
    currency)."""

    cart: Cart
    skipped_line_ids: tuple[UUID, ...]


def add_item(engine: Engine, cart_id: UUID, access: CartAccess, *, variant_id: UUID,
             quantity: int, catalog_slug: str | None = None, expected_version: int | None = None,
             idle_seconds: int, answer: Answer[T] = load_cart) -> T:
    """Add units of a variant (to its line if the cart has one), optionally through a
    reseller's shared catalog; `answer` of the cart as it then is (the Cart by default;
    the cart routes pass `cart_view.viewer`, so the view is read in the same transaction).

    Raises: CartNotFound, CartNotActive, StaleCart, InvalidCommerceRequest (quantity < 1),
    VariantNotFound, ProductUnavailable, CatalogNotFound, ProductNotInCatalog,
    CurrencyMismatch, OutOfStock."""
    _check_quantity(quantity)

    def change(connection: Connection, cart: Row) -> dict:
        variant = _sellable_variant(connection, variant_id)
        catalog_id = None
        if catalog_slug is not None:
            catalog_id = shared_catalog(connection, catalog_slug).id
            catalog_margin(connection, catalog_id, variant.product_id)
        lines = plain_sql.rows(
            connection, "SELECT id, variant_id, quantity FROM commerce_cart_items"
            " WHERE cart_id = %(cart_id)s", {"cart_id": cart.id})
        if lines and cart.currency != variant.currency:
            raise ce.CurrencyMismatch(
                f"the cart is in {cart.currency}; this product is in {variant.currency}"
            )
        line = next((line for line in lines if line.variant_id == variant_id), None)
        total = quantity + (int(line.quantity) if line is not None else 0)
        _check_stock(variant, total)
        if line is None:
            plain_sql.execute(connection, _INSERT_ITEM_SQL, {
                "id": uuid7(), "cart_id": cart.id, "variant_id": variant_id,
                "catalog_id": catalog_id, "quantity": total, "added_at": datetime.now(UTC)})
        else:
            # The latest link the shopper came through gets the sale.
            plain_sql.execute(connection, _UPDATE_ITEM_SQL, {
                "id": line.id, "quantity": total, "catalog_id": catalog_id})
        return {"currency": variant.currency}

    return _edit(engine, cart_id, access, expected_version, change, idle_seconds, answer)


def set_quantity(engine: Engine, cart_id: UUID, access: CartAccess, line_id: UUID, *,
                 quantity: int, expected_version: int, idle_seconds: int) -> Cart:
    """Raises: CartNotFound, CartItemNotFound, StaleCart, CartNotActive,
    InvalidCommerceRequest (quantity < 1: remove the line instead), ProductUnavailable,
    OutOfStock."""
    _check_quantity(quantity)

    def change(connection: Connection, cart: Row) -> None:
        line = _line(connection, cart.id, line_id)
        _check_stock(_sellable_variant(connection, line.variant_id), quantity)
        i = commerce_cart_items
        connection.execute(update(i).where(i.c.id == line_id).values(quantity=quantity))

    return _edit(engine, cart_id, access, expected_version, change, idle_seconds)


def remove_item(engine: Engine, cart_id: UUID, access: CartAccess, line_id: UUID, *,
                expected_version: int, idle_seconds: int) -> Cart:
    """Raises: CartNotFound, CartItemNotFound, StaleCart, CartNotActive."""

    def change(connection: Connection, cart: Row) -> dict | None:
        _line(connection, cart.id, line_id)
        i = commerce_cart_items
        connection.execute(delete(i).where(i.c.id == line_id))
        return None if _has_items(connection, cart.id) else {"currency": None}

    return _edit(engine, cart_id, access, expected_version, change, idle_seconds)


def set_saved_for_later(engine: Engine, cart_id: UUID, access: CartAccess, line_id: UUID, *,
                        saved: bool, expected_version: int, idle_seconds: int) -> Cart:
    """Move a line to "saved for later" (not priced, not bought) or back into the cart.

    Raises: CartNotFound, CartItemNotFound, StaleCart, CartNotActive.
    """

    def change(connection: Connection, cart: Row) -> None:
        _line(connection, cart.id, line_id)
        i = commerce_cart_items
        connection.execute(update(i).where(i.c.id == line_id).values(saved_for_later=saved))

    return _edit(engine, cart_id, access, expected_version, change, idle_seconds)


def apply_coupon(engine: Engine, cart_id: UUID, access: CartAccess, *, code: str,
                 expected_version: int, idle_seconds: int) -> Cart:
    """Put a coupon on the cart (it is redeemed at checkout, not now).

    Raises: CartNotFound, StaleCart, CartNotActive, CouponNotFound, CouponExpired,
    CouponExhausted, CouponNotApplicable (another currency).
    """

    def change(connection: Connection, cart: Row) -> dict:
        row = promotions.check_coupon(connection, code, user_id=cart.user_id,
                                      now=datetime.now(UTC))
        if row.currency is not None and cart.currency not in (None, row.currency):
            raise ce.CouponNotApplicable(f"coupon {row.code} is for {row.currency} carts")
        return {"coupon_code": row.code}

    return _edit(engine, cart_id, access, expected_version, change, idle_seconds)


def remove_coupon(engine: Engine, cart_id: UUID, access: CartAccess, *, expected_version: int,
                  idle_seconds: int) -> Cart:
    """Raises: CartNotFound, StaleCart, CartNotActive."""

    def change(connection: Connection, cart: Row) -> dict:
        return {"coupon_code": None}

    return _edit(engine, cart_id, access, expected_version, change, idle_seconds)


def set_region(engine: Engine, cart_id: UUID, access: CartAccess, *, region: str | None,
               expected_version: int, idle_seconds: int) -> Cart:
    """Where the cart ships (the tax rate table's region). Raises: CartNotFound, StaleCart,
    CartNotActive, InvalidCommerceRequest."""
    if region is not None and not 0 < len(region) <= REGION_LENGTH_MAX:
        raise ce.InvalidCommerceRequest(f"a region is 1 to {REGION_LENGTH_MAX} characters")

    def change(connection: Connection, cart: Row) -> dict:
        return {"region": region}

    return _edit(engine, cart_id, access, expected_version, change, idle_seconds)


def merge_guest_cart(engine: Engine, user_id: UUID, guest_token: str, *,
                     idle_seconds: int) -> Merge:
    """Move a guest cart's lines into the user's cart (quantities of one variant add up);
    the guest cart is then `merged` and its token finds nothing.

    Lines in another currency than the user's cart stay behind (reported as skipped).
    Raises: CartNotFound (no active guest cart has this token).
    """
    target = user_cart(engine, user_id, idle_seconds=idle_seconds)
    t = commerce_carts
    with engine.begin() as connection:
        guest = connection.execute(
            select(t).where(t.c.guest_token_hash == token_digest(guest_token),
                            t.c.status == "active")
        ).first()
        now = connection.execute(select(func.now())).scalar_one()
        if guest is None or guest.updated_at < now - timedelta(seconds=idle_seconds):
            raise ce.CartNotFound("no active guest cart has this token")
        # Lock both carts in id order, so two merges never deadlock.
        rows = {row.id: row for row in connection.execute(
            select(t).where(t.c.id.in_([guest.id, target.id])).order_by(t.c.id).with_for_update()
        )}
        guest, mine = rows[guest.id], rows[target.id]
        if guest.status != "active" or mine.status != "active":
            raise ce.CartNotFound("the cart changed meanwhile; try again")
        currency = mine.currency if _has_items(connection, mine.id) else guest.currency
        skipped = []
        for line in _lines_with_currency(connection, guest.id):
            if line.currency != currency:
                skipped.append(line.id)
                continue
            _merge_line(connection, mine.id, line)
        connection.execute(update(t).where(t.c.id == guest.id)
                           .values(status="merged", version=t.c.version + 1))
        connection.execute(update(t).where(t.c.id == mine.id).values(
            version=t.c.version + 1, updated_at=func.now(),
            currency=currency if _has_items(connection, mine.id) else None,
            coupon_code=func.coalesce(t.c.coupon_code, guest.coupon_code),
        ))
        cart = load_cart(connection, connection.execute(select(t).where(t.c.id == mine.id)).one())
    return Merge(cart, tuple(skipped))


# The parts.


def _edit(engine: Engine, cart_id: UUID, access: CartAccess, expected_version: int | None,
          change: Callable[[Connection, Row], dict | None], idle_seconds: int,
          answer: Answer[T] = load_cart) -> T:
    """Lock the cart, check its state and version, apply `change`, bump the version
    (setting the cart's columns `change` returns in the same update); `answer` of the
    cart's new row, in the same transaction."""
    with engine.begin() as connection:
        # The database's clock, read with the lock, so every process ages carts alike.
        cart = lock_visible_cart(connection, cart_id, access)
        now = cart.db_now
        # An idle cart the expiry job has not reached yet is expired all the same (the
        # job or the owner's next read marks it).
        if cart.status == "active" and cart.updated_at < now - timedelta(seconds=idle_seconds):
            raise ce.CartNotActive(f"cart {cart_id} expired after sitting idle")
        if cart.status != "active":
            raise ce.CartNotActive(f"cart {cart_id} is {cart.status}")
        if expected_version is not None and cart.version != expected_version:
            raise ce.StaleCart(
                f"cart {cart_id} is at version {cart.version}, not {expected_version}"
            )
        values = change(connection, cart) or {}
        if not _EDITABLE_COLUMNS.issuperset(values):
            raise ValueError(f"an edit sets only {sorted(_EDITABLE_COLUMNS)}")
        sets = "".join(f", {name} = %({name})s" for name in values)
        row = plain_sql.first(
            connection,
            f"UPDATE commerce_carts SET version = version + 1, updated_at = %(now)s{sets}"
            " WHERE id = %(id)s RETURNING *",
            {**values, "now": now, "id": cart_id},
        )
        return answer(connection, row)


def _sellable_variant(connection: Connection, variant_id: UUID):
    """The variant with its product's currency and stock. Raises: VariantNotFound,
    ProductUnavailable."""
    row = plain_sql.first(connection, _SELLABLE_VARIANT_SQL, {"id": variant_id})
    if row is None:
        raise ce.VariantNotFound(f"no variant {variant_id}")
    if not (row.active and row.product_active):
        raise ce.ProductUnavailable(f"variant {variant_id} is no longer sold")
    return row


_SELLABLE_VARIANT_SQL = """
SELECT v.id, v.product_id, v.stock_available, v.active, p.currency,
       p.active AS product_active
FROM commerce_variants v JOIN commerce_products p ON p.id = v.product_id
WHERE v.id = %(id)s
"""


def _check_stock(variant: Row, quantity: int) -> None:
    if quantity > variant.stock_available:
        raise ce.OutOfStock(
            variant.id, f"{quantity} wanted; {variant.stock_available} available"
        )


def _check_quantity(quantity: int) -> None:
    if not 1 <= quantity <= QUANTITY_MAX:
        raise ce.InvalidCommerceRequest(f"a quantity is 1 to {QUANTITY_MAX}")


def _line(connection: Connection, cart_id: UUID, line_id: UUID) -> Row:
    i = commerce_cart_items
    row = connection.execute(select(i).where(i.c.id == line_id, i.c.cart_id == cart_id)).first()
    if row is None:
        raise ce.CartItemNotFound(f"the cart has no line {line_id}")
    return row


def _line_of_variant(connection: Connection, cart_id: UUID, variant_id: UUID) -> Row | None:
    i = commerce_cart_items
    return connection.execute(
        select(i).where(i.c.cart_id == cart_id, i.c.variant_id == variant_id)
    ).first()


def _has_items(connection: Connection, cart_id: UUID) -> bool:
    i = commerce_cart_items
    return connection.execute(select(exists().where(i.c.cart_id == cart_id))).scalar_one()


def _merge_line(connection: Connection, cart_id: UUID, line: Row) -> None:
    i = commerce_cart_items
    existing = _line_of_variant(connection, cart_id, line.variant_id)
    if existing is None:
        connection.execute(update(i).where(i.c.id == line.id).values(cart_id=cart_id))
        return
    connection.execute(update(i).where(i.c.id == existing.id).values(
        quantity=min(int(existing.quantity) + int(line.quantity), QUANTITY_MAX),
        catalog_id=line.catalog_id or existing.catalog_id,
    ))
    connection.execute(delete(i).where(i.c.id == line.id))


def _lines_with_currency(connection: Connection, cart_id: UUID) -> list[Row]:
    i, v, p = commerce_cart_items, commerce_variants, commerce_products
    return connection.execute(
        select(i, p.c.currency).join(v, v.c.id == i.c.variant_id)
        .join(p, p.c.id == v.c.product_id).where(i.c.cart_id == cart_id).order_by(i.c.id)
    ).all()
