"""Reading what a cart's price depends on, at one moment, for `pricing.compute`.

A line is priced only if it can be sold now: its variant and product are active, a
reseller line's catalog still lists the product, and the available stock covers the
quantity. Other lines are reported as `unavailable` and left out of the totals (the
cart shows them; checkout refuses them). Saved-for-later lines are never priced.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import Connection, and_, select

from pacioli.commerce import errors as ce
from pacioli.commerce import promotions
from pacioli.commerce.catalog_tables import (
    commerce_cart_items,
    commerce_carts,
    commerce_catalog_items,
    commerce_catalogs,
    commerce_products,
    commerce_shipping_rates,
    commerce_variants,
)
from pacioli.commerce.price_terms import CartInputs, LineInput, ShippingRate
from pacioli.commerce.taxes import tax_rates_for

ANY = "*"


def cart_lines_query(cart_id: UUID):
    """The cart's lines joined to what prices them (the catalog columns are None for
    lines added outside a reseller's catalog)."""
    i, v, p = commerce_cart_items, commerce_variants, commerce_products
    c, ci = commerce_catalogs, commerce_catalog_items
    return (
        select(
            i.c.id.label("line_id"), i.c.variant_id, i.c.catalog_id, i.c.quantity,
            i.c.saved_for_later, i.c.added_at,
            v.c.product_id, v.c.sku, v.c.size, v.c.colour, v.c.price_minor,
            v.c.stock_available, v.c.active.label("variant_active"),
            p.c.supplier_id, p.c.name, p.c.brand, p.c.category, p.c.currency, p.c.image_urls,
            p.c.active.label("product_active"),
            c.c.reseller_id, c.c.active.label("catalog_active"), c.c.slug.label("catalog_slug"),
            ci.c.margin_minor,
        )
        .select_from(
            i.join(v, v.c.id == i.c.variant_id)
            .join(p, p.c.id == v.c.product_id)
            .outerjoin(c, c.c.id == i.c.catalog_id)
            .outerjoin(ci, and_(ci.c.catalog_id == i.c.catalog_id,
                                ci.c.product_id == v.c.product_id))
        )
        .where(i.c.cart_id == cart_id)
        .order_by(i.c.id)
    )


def line_is_sellable(row) -> bool:
    """The line's product can be bought now (stock aside)."""
    listed = row.catalog_id is None or (row.catalog_active and row.margin_minor is not None)
    return bool(row.variant_active and row.product_active and listed)


def load_inputs(connection: Connection, cart_id: UUID, *, now: datetime) -> CartInputs:
    """Raises: CartNotFound."""
    cart = connection.execute(
        select(commerce_carts).where(commerce_carts.c.id == cart_id)
    ).first()
    if cart is None:
        raise ce.CartNotFound(f"no cart {cart_id}")
    rows = [
        row for row in connection.execute(cart_lines_query(cart_id)) if not row.saved_for_later
    ]
    currency = cart.currency or (rows[0].currency if rows else "")
    sellable = [
        row for row in rows
        if line_is_sellable(row) and row.stock_available >= row.quantity
        and row.currency == currency
    ]
    sellable_ids = {row.line_id for row in sellable}
    unavailable = tuple(row.line_id for row in rows if row.line_id not in sellable_ids)
    rates = tax_rates_for(connection, {row.category for row in sellable}, cart.region or ANY)
    targets = {row.product_id for row in sellable} | {row.variant_id for row in sellable}
    discounts = promotions.catalogue_discounts(connection, targets, currency=currency, now=now)
    lines = tuple(
        LineInput(
            line_id=row.line_id, product_id=row.product_id, variant_id=row.variant_id,
            supplier_id=row.supplier_id, reseller_id=row.reseller_id, name=row.name,
            quantity=int(row.quantity), supplier_unit_price_minor=int(row.price_minor),
            reseller_margin_minor=int(row.margin_minor or 0),
            tax_rate_bps=rates[row.category],
            catalogue_discounts=tuple(
                discounts.get(row.product_id, []) + discounts.get(row.variant_id, [])
            ),
        )
        for row in sellable
    )
    coupon = None
    if cart.coupon_code is not None and currency:
        coupon = promotions.coupon_discount(
            connection, cart.coupon_code, user_id=cart.user_id, currency=currency, now=now
        )
    return CartInputs(
        cart_id=cart.id, cart_version=int(cart.version), currency=currency, lines=lines,
        order_promotions=tuple(promotions.order_promotions(connection, currency=currency,
                                                           now=now)),
        coupon_code=cart.coupon_code, coupon=coupon,
        shipping=_shipping_rates(connection, {row.supplier_id for row in sellable}, currency),
        unavailable=unavailable,
    )


def _shipping_rates(
    connection: Connection, supplier_ids: set[UUID], currency: str
) -> dict[UUID, ShippingRate]:
    t = commerce_shipping_rates
    if not supplier_ids:
        return {}
    rows = connection.execute(
        select(t).where(t.c.supplier_id.in_(list(supplier_ids)), t.c.currency == currency)
    )
    return {
        row.supplier_id: ShippingRate(
            int(row.fee_minor),
            None if row.free_above_minor is None else int(row.free_above_minor),
        )
        for row in rows
    }
