"""Reading what a cart's price depends on, at one moment, for `pricing.compute`.

A line is priced only if it can be sold now: its variant and product are active, a
reseller line's catalog still lists the product, and the available stock covers the
quantity. Other lines are reported as `unavailable` and left out of the totals (the
cart shows them; checkout refuses them). Saved-for-later lines are never priced.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import Connection

from pacioli.commerce import plain_sql, promotions
from pacioli.commerce.carts import cart_row
from pacioli.commerce.price_terms import CartInputs, Discount, LineInput, ShippingRate

ANY = "*"

# The cart's lines joined to what prices them (the catalog columns are None for lines
# added outside a reseller's catalog); plain SQL (plain_sql.py says why).
CART_LINES_SQL = """
SELECT i.id AS line_id, i.variant_id, i.catalog_id, i.quantity, i.saved_for_later,
       i.added_at, v.product_id, v.sku, v.size, v.colour, v.price_minor, v.stock_available,
       v.active AS variant_active, p.supplier_id, p.name, p.brand, p.category, p.currency,
       p.image_urls, p.active AS product_active, c.reseller_id,
       c.active AS catalog_active, c.slug AS catalog_slug, ci.margin_minor
FROM commerce_cart_items i
JOIN commerce_variants v ON v.id = i.variant_id
JOIN commerce_products p ON p.id = v.product_id
LEFT JOIN commerce_catalogs c ON c.id = i.catalog_id
LEFT JOIN commerce_catalog_items ci
       ON ci.catalog_id = i.catalog_id AND ci.product_id = v.product_id
WHERE i.cart_id = %(cart_id)s
ORDER BY i.id
"""

# Everything else a price depends on, in one round trip: the tax rates that may apply
# (taxes.tax_rates_for's rule picks among them), the catalogue discounts of the lines'
# products and variants and the automatic order promotions in force (promotions.py's
# rules), and the suppliers' shipping rates. One row per term; `term` says which.
_TAX, _CATALOGUE, _ORDER, _SHIPPING = 1, 2, 3, 4
PRICE_TERMS_SQL = """
SELECT 1 AS term, category AS kind, region, rate_bps::numeric AS value,
       NULL::numeric AS extra, NULL::uuid AS target_id
FROM commerce_tax_rates
WHERE (category = ANY(%(categories)s::text[]) OR category = '*')
  AND region IN (%(region)s, '*')
UNION ALL
SELECT 2, kind, NULL, value, NULL, target_id
FROM commerce_promotions
WHERE scope IN ('product', 'variant') AND target_id = ANY(%(targets)s::uuid[]) AND active
  AND (starts_at IS NULL OR starts_at <= %(now)s) AND (ends_at IS NULL OR ends_at > %(now)s)
  AND (currency IS NULL OR currency = %(currency)s)
UNION ALL
SELECT 3, kind, NULL, value, min_subtotal_minor, NULL
FROM commerce_promotions
WHERE scope = 'order' AND active
  AND (starts_at IS NULL OR starts_at <= %(now)s) AND (ends_at IS NULL OR ends_at > %(now)s)
  AND (currency IS NULL OR currency = %(currency)s)
UNION ALL
SELECT 4, NULL, NULL, fee_minor, free_above_minor, supplier_id
FROM commerce_shipping_rates
WHERE supplier_id = ANY(%(suppliers)s::uuid[]) AND currency = %(currency)s
"""


def line_is_sellable(row) -> bool:
    """The line's product can be bought now (stock aside)."""
    listed = row.catalog_id is None or (row.catalog_active and row.margin_minor is not None)
    return bool(row.variant_active and row.product_active and listed)


def cart_line_rows(connection: Connection, cart_id: UUID) -> list:
    """The cart's lines (saved ones too) with what prices them, in line id order."""
    return plain_sql.rows(connection, CART_LINES_SQL, {"cart_id": cart_id})


def load_inputs(connection: Connection, cart_id: UUID, *, now: datetime, cart=None,
                line_rows: Sequence | None = None) -> CartInputs:
    """Raises: CartNotFound.

    `cart` (the cart's row) and `line_rows` (`cart_line_rows`' answer), when the caller
    read them in this transaction already, are not read again.
    """
    if cart is None:
        cart = cart_row(connection, cart_id)
    if line_rows is None:
        line_rows = cart_line_rows(connection, cart_id)
    rows = [row for row in line_rows if not row.saved_for_later]
    currency = cart.currency or (rows[0].currency if rows else "")
    sellable = [
        row for row in rows
        if line_is_sellable(row) and row.stock_available >= row.quantity
        and row.currency == currency
    ]
    sellable_ids = {row.line_id for row in sellable}
    unavailable = tuple(row.line_id for row in rows if row.line_id not in sellable_ids)
    terms = _price_terms(connection, sellable, region=cart.region or ANY, currency=currency,
                         now=now)
    rates, discounts = terms.tax_rates, terms.catalogue
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
        order_promotions=terms.order_promotions, coupon_code=cart.coupon_code, coupon=coupon,
        shipping=terms.shipping, unavailable=unavailable,
    )


class _Terms:
    """What `PRICE_TERMS_SQL` found, sorted out."""

    __slots__ = ("tax_rates", "catalogue", "order_promotions", "shipping")

    def __init__(self) -> None:
        self.tax_rates: dict[str, int] = {}
        self.catalogue: dict[UUID, list[Discount]] = {}
        self.order_promotions: tuple[Discount, ...] = ()
        self.shipping: dict[UUID, ShippingRate] = {}


def _price_terms(connection: Connection, sellable: Sequence, *, region: str, currency: str,
                 now: datetime) -> _Terms:
    """Tax rates per category, catalogue discounts per product or variant, order
    promotions and shipping rates per supplier, for the sellable lines, in one query.

    With nothing sellable nothing is read: no line is taxed, discounted or shipped, and
    an order promotion of a zero subtotal is zero."""
    terms = _Terms()
    if not sellable:
        return terms
    categories = {row.category for row in sellable}
    found = plain_sql.rows(connection, PRICE_TERMS_SQL, {
        "categories": list(categories), "region": region, "currency": currency, "now": now,
        "targets": list({row.product_id for row in sellable}
                        | {row.variant_id for row in sellable}),
        "suppliers": list({row.supplier_id for row in sellable}),
    })
    table: dict[tuple[str, str], int] = {}
    orders = []
    for row in found:
        if row.term == _TAX:
            table[(row.kind, row.region)] = int(row.value)
        elif row.term == _CATALOGUE:
            terms.catalogue.setdefault(row.target_id, []).append(
                Discount(row.kind, int(row.value)))
        elif row.term == _ORDER:
            orders.append(Discount(row.kind, int(row.value), int(row.extra)))
        else:
            terms.shipping[row.target_id] = ShippingRate(
                int(row.value), None if row.extra is None else int(row.extra))
    terms.order_promotions = tuple(orders)
    terms.tax_rates = {category: rate_of(table, category, region) for category in categories}
    return terms


def rate_of(table: dict[tuple[str, str], int], category: str, region: str) -> int:
    """The most specific rate: (category, region), (category, *), (*, region), (*, *)."""
    for key in ((category, region), (category, ANY), (ANY, region), (ANY, ANY)):
        if key in table:
            return table[key]
    return 0
