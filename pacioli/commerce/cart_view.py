"""A cart as the shopper sees it: every line with its name, current price and
availability (saved-for-later lines too), and the priced totals.

Prices are read now, not remembered from when the item was added: a supplier's price
change or a reseller's new margin shows at once, and checkout compares the total the
shopper saw with a fresh pricing (`price_changed`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import Connection, Row

from pacioli.commerce import carts
from pacioli.commerce.carts import Cart, CartItem
from pacioli.commerce.pricing import PricedCart, compute
from pacioli.commerce.pricing_inputs import cart_line_rows, line_is_sellable, load_inputs


@dataclass(frozen=True, slots=True)
class LineView:
    line_id: UUID
    product_id: UUID
    variant_id: UUID
    name: str
    brand: str
    sku: str
    size: str | None
    colour: str | None
    image_url: str | None
    currency: str
    quantity: int
    unit_price_minor: int  # now, incl. the reseller's margin, before discounts
    stock_available: int
    available: bool  # the product is sold and the stock covers the quantity
    saved_for_later: bool
    catalog_slug: str | None  # the reseller's shared catalog it came through


@dataclass(frozen=True, slots=True)
class CartView:
    cart: Cart
    lines: tuple[LineView, ...]
    priced: PricedCart


def view_cart(connection: Connection, cart_id: UUID, *, now: datetime,
              cart_row=None) -> CartView:
    """Raises: CartNotFound.

    Two reads (the lines with what prices them, then the price terms) besides the cart's
    row, which a caller that has it (an edit's `UPDATE ... RETURNING`) passes as
    `cart_row`: the cart's items, the lines shown and the price come from the same rows.
    """
    if cart_row is None:
        cart_row = carts.cart_row(connection, cart_id)
    rows = cart_line_rows(connection, cart_id)
    cart = Cart(
        id=cart_row.id, user_id=cart_row.user_id, status=cart_row.status,
        currency=cart_row.currency, region=cart_row.region, coupon_code=cart_row.coupon_code,
        version=int(cart_row.version), created_at=cart_row.created_at,
        updated_at=cart_row.updated_at,
        items=tuple(
            CartItem(row.line_id, row.variant_id, row.catalog_id, int(row.quantity),
                     row.saved_for_later, row.added_at)
            for row in rows
        ),
    )
    priced = compute(load_inputs(connection, cart_id, now=now, cart=cart_row, line_rows=rows))
    return CartView(cart, tuple(_line(row) for row in rows), priced)


def viewer(now: datetime) -> Callable[[Connection, Row], CartView]:
    """A cart edit's answer (cart_edits' `answer`): the view of the cart from the row the
    edit's update returned, read in the edit's transaction (no second transaction, and
    the cart's row is not read again)."""

    def view(connection: Connection, row: Row) -> CartView:
        return view_cart(connection, row.id, now=now, cart_row=row)

    return view


def _line(row) -> LineView:
    sellable = line_is_sellable(row)
    return LineView(
        line_id=row.line_id, product_id=row.product_id, variant_id=row.variant_id,
        name=row.name, brand=row.brand, sku=row.sku, size=row.size, colour=row.colour,
        image_url=row.image_urls[0] if row.image_urls else None, currency=row.currency,
        quantity=int(row.quantity),
        unit_price_minor=int(row.price_minor) + int(row.margin_minor or 0),
        stock_available=int(row.stock_available),
        available=sellable and row.stock_available >= row.quantity,
        saved_for_later=row.saved_for_later, catalog_slug=row.catalog_slug,
    )
