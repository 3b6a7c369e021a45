"""A cart as the shopper sees it: every line with its name, current price and
availability (saved-for-later lines too), and the priced totals.

Prices are read now, not remembered from when the item was added: a supplier's price
change or a reseller's new margin shows at once, and checkout compares the total the
shopper saw with a fresh pricing (`price_changed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import Connection

from pacioli.commerce.carts import Cart, get_cart
from pacioli.commerce.pricing import PricedCart, price_cart
from pacioli.commerce.pricing_inputs import cart_lines_query, line_is_sellable


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


def view_cart(connection: Connection, cart_id: UUID, *, now: datetime) -> CartView:
    """Raises: CartNotFound."""
    cart = get_cart(connection, cart_id)
    lines = tuple(_line(row) for row in connection.execute(cart_lines_query(cart_id)))
    return CartView(cart, lines, price_cart(connection, cart_id, now=now))


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
