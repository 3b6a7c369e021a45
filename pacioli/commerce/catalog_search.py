"""Searching products: by text, brand, size, colour and price range, newest first, by cursor.

Text matches the product's name, brand and description as words (PostgreSQL full-text
search, 'simple' configuration, so no language's stemming surprises a brand name), all
of the words given. Size, colour and the price range are conditions on one variant:
"red, size M, under 20.00" finds products with a variant that is all three, not a red
one and another in M. In a reseller's catalog the price compared is the shopper's (the
supplier's price plus the reseller's margin). Only active products and variants are
shown to shoppers. Pages are ordered by product id (UUIDv7: newest first), and the
cursor is the last id shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import Connection, and_, exists, func, literal, select

from pacioli.commerce import errors as ce
from pacioli.commerce.catalog import Product, products_of
from pacioli.commerce.catalog_tables import (
    commerce_catalog_items,
    commerce_products,
    commerce_variants,
)

QUERY_LENGTH_MAX = 200


@dataclass(frozen=True, slots=True)
class SearchFilters:
    text: str | None = None
    brand: str | None = None
    size: str | None = None
    colour: str | None = None
    currency: str | None = None
    min_price_minor: int | None = None
    max_price_minor: int | None = None


@dataclass(frozen=True, slots=True)
class Listing:
    """A product as a shopper sees it; `margin_minor` is the reseller's, 0 outside a catalog."""

    product: Product
    margin_minor: int


def search_products(
    connection: Connection, filters: SearchFilters, *, limit: int,
    starting_after: UUID | None = None, supplier_id: UUID | None = None,
    catalog_id: UUID | None = None, include_inactive: bool = False,
) -> list[Listing]:
    """Up to `limit` products matching `filters`, newest first, after the cursor.

    `supplier_id` keeps to one supplier's products (its own list can `include_inactive`);
    `catalog_id` keeps to a reseller's catalog and compares prices with its margins.
    Raises: InvalidCommerceRequest.
    """
    _check(filters)
    p, v, ci = commerce_products, commerce_variants, commerce_catalog_items
    margin = ci.c.margin_minor if catalog_id is not None else literal(0)
    query = select(p, margin.label("margin_minor")).order_by(p.c.id.desc()).limit(limit)
    if catalog_id is not None:
        query = query.join(ci, and_(ci.c.product_id == p.c.id, ci.c.catalog_id == catalog_id))
    if supplier_id is not None:
        query = query.where(p.c.supplier_id == supplier_id)
    if not include_inactive:
        query = query.where(p.c.active)
    if starting_after is not None:
        query = query.where(p.c.id < starting_after)
    if filters.text:
        query = query.where(
            p.c.search_vector.op("@@")(func.plainto_tsquery("simple", filters.text))
        )
    if filters.brand:
        query = query.where(func.lower(p.c.brand) == filters.brand.lower())
    if filters.currency:
        query = query.where(p.c.currency == filters.currency)
    variant_conditions = _variant_conditions(filters, margin, include_inactive)
    if variant_conditions:
        query = query.where(exists().where(v.c.product_id == p.c.id, *variant_conditions))
    rows = connection.execute(query).all()
    products = products_of(connection, rows, active_variants_only=not include_inactive)
    return [Listing(product, int(row.margin_minor)) for product, row in zip(products, rows,
                                                                              strict=True)]


def _variant_conditions(filters: SearchFilters, margin, include_inactive: bool) -> list:
    v = commerce_variants
    conditions = []
    if filters.size:
        conditions.append(func.lower(v.c.size) == filters.size.lower())
    if filters.colour:
        conditions.append(func.lower(v.c.colour) == filters.colour.lower())
    if filters.min_price_minor is not None:
        conditions.append(v.c.price_minor + margin >= filters.min_price_minor)
    if filters.max_price_minor is not None:
        conditions.append(v.c.price_minor + margin <= filters.max_price_minor)
    if conditions and not include_inactive:
        conditions.append(v.c.active)
    return conditions


def _check(filters: SearchFilters) -> None:
    priced = filters.min_price_minor is not None or filters.max_price_minor is not None
    if priced and not filters.currency:
        raise ce.InvalidCommerceRequest("a price range needs a currency")
    if (filters.min_price_minor is not None and filters.max_price_minor is not None
            and filters.min_price_minor > filters.max_price_minor):
        raise ce.InvalidCommerceRequest("min_price is above max_price")
    if filters.text is not None and len(filters.text) > QUERY_LENGTH_MAX:
        raise ce.InvalidCommerceRequest(f"q is at most {QUERY_LENGTH_MAX} characters")
