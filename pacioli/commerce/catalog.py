"""Suppliers and their products: registering the role, listing products and variants,
setting prices and stock.

A supplier is a merchant that registered the role (`commerce_suppliers`); everything it
does is scoped to its own products, and another supplier's product is a 404. Creating a
product is idempotent on (supplier, Idempotency-Key) with a hash of the request, like
every flow's create. Stock set by the supplier is the *available* count: units reserved
for checkouts in progress are not the supplier's to overwrite, so a stock change is a
conditional update of `stock_available` only. Searching is in catalog_search.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, Row, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from pacioli.commerce import errors as ce
from pacioli.commerce import inventory
from pacioli.commerce.catalog_tables import (
    commerce_products,
    commerce_shipping_rates,
    commerce_suppliers,
    commerce_variants,
)
from pacioli.commerce.settings import commerce_settings
from pacioli.ledger.domain.ids import uuid7
from pacioli.payments import records

TEXT_LENGTH_MAX = 200
DESCRIPTION_LENGTH_MAX = 5000
IMAGES_MAX = 20
VARIANTS_MAX = 100


@dataclass(frozen=True, slots=True)
class Supplier:
    merchant_id: UUID
    low_stock_threshold: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Variant:
    id: UUID
    product_id: UUID
    sku: str
    size: str | None
    colour: str | None
    price_minor: int
    stock_available: int
    stock_reserved: int
    stock_sold: int
    low_stock_threshold: int | None
    active: bool


@dataclass(frozen=True, slots=True)
class Product:
    id: UUID
    supplier_id: UUID
    name: str
    description: str
    brand: str
    category: str
    currency: str
    image_urls: tuple[str, ...]
    attributes: dict[str, Any]
    active: bool
    created_at: datetime
    updated_at: datetime
    variants: tuple[Variant, ...]


@dataclass(frozen=True, slots=True)
class VariantDraft:
    sku: str
    price_minor: int
    stock_available: int = 0
    size: str | None = None
    colour: str | None = None
    low_stock_threshold: int | None = None


@dataclass(frozen=True, slots=True)
class ProductDraft:
    name: str
    currency: str
    variants: tuple[VariantDraft, ...]
    description: str = ""
    brand: str = ""
    category: str = "general"
    image_urls: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)


# Suppliers.


def register_supplier(
    engine: Engine, merchant_id: UUID, *, low_stock_threshold: int | None = None
) -> Supplier:
    """Give the merchant the supplier role (again: no change). Raises: InvalidCommerceRequest."""
    threshold = (commerce_settings().low_stock_threshold_default
                 if low_stock_threshold is None else low_stock_threshold)
    _check(threshold >= 0, "low_stock_threshold must not be negative")
    t = commerce_suppliers
    with engine.begin() as connection:
        connection.execute(
            insert(t).values(merchant_id=merchant_id, low_stock_threshold=threshold,
                             created_at=datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=[t.c.merchant_id])
        )
        return get_supplier(connection, merchant_id)


def get_supplier(connection: Connection, merchant_id: UUID) -> Supplier:
    """Raises: NotASupplier."""
    t = commerce_suppliers
    row = connection.execute(select(t).where(t.c.merchant_id == merchant_id)).first()
    if row is None:
        raise ce.NotASupplier("register as a supplier first (POST /v1/commerce/suppliers)")
    return Supplier(row.merchant_id, row.low_stock_threshold, row.created_at)


def set_low_stock_threshold(engine: Engine, merchant_id: UUID, threshold: int) -> Supplier:
    """Raises: NotASupplier, InvalidCommerceRequest."""
    _check(threshold >= 0, "low_stock_threshold must not be negative")
    t = commerce_suppliers
    with engine.begin() as connection:
        get_supplier(connection, merchant_id)
        connection.execute(
            update(t).where(t.c.merchant_id == merchant_id).values(low_stock_threshold=threshold)
        )
        return get_supplier(connection, merchant_id)


def set_shipping_rate(
    engine: Engine, merchant_id: UUID, currency: str, *, fee_minor: int,
    free_above_minor: int | None,
) -> None:
    """The supplier's flat shipping fee per order in `currency`, free from a threshold.

    Raises: NotASupplier, InvalidCommerceRequest.
    """
    _check(fee_minor >= 0, "the shipping fee must not be negative")
    _check(free_above_minor is None or free_above_minor >= 0, "free_above must not be negative")
    t = commerce_shipping_rates
    with engine.begin() as connection:
        get_supplier(connection, merchant_id)
        values = {"fee_minor": fee_minor, "free_above_minor": free_above_minor}
        connection.execute(
            insert(t).values(supplier_id=merchant_id, currency=currency, **values)
            .on_conflict_do_update(index_elements=[t.c.supplier_id, t.c.currency], set_=values)
        )


# Products.


def create_product(
    engine: Engine, supplier_id: UUID, draft: ProductDraft, *, idempotency_key: str
) -> tuple[Product, bool]:
    """List a product with its variants; (product, replayed).

    Raises: NotASupplier, InvalidCommerceRequest, SkuTaken, IdempotencyKeyReusedForCommerce.
    """
    _check_draft(draft)
    request_hash = records.request_hash(repr(draft))
    p = commerce_products
    now = datetime.now(UTC)
    with engine.begin() as connection:
        get_supplier(connection, supplier_id)
        inserted = connection.execute(
            insert(p).values(
                id=uuid7(), supplier_id=supplier_id, name=draft.name,
                description=draft.description, brand=draft.brand, category=draft.category,
                currency=draft.currency, image_urls=list(draft.image_urls),
                attributes=draft.attributes, active=True, idempotency_key=idempotency_key,
                request_hash=request_hash, created_at=now, updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[p.c.supplier_id, p.c.idempotency_key])
            .returning(p.c.id)
        ).first()
        if inserted is None:
            row = connection.execute(
                select(p).where(p.c.supplier_id == supplier_id,
                                p.c.idempotency_key == idempotency_key)
            ).one()
            records.same_request(row, request_hash, idempotency_key,
                                 ce.IdempotencyKeyReusedForCommerce)
            return load_product(connection, row.id), True
        for variant in draft.variants:
            _insert_variant(connection, inserted.id, variant, now)
        return load_product(connection, inserted.id), False


def load_product(connection: Connection, product_id: UUID, *,
                 supplier_id: UUID | None = None, active_only: bool = False) -> Product:
    """The product, if it is `supplier_id`'s (when given) and active (when asked).

    Raises: ProductNotFound.
    """
    p = commerce_products
    query = select(p).where(p.c.id == product_id)
    if supplier_id is not None:
        query = query.where(p.c.supplier_id == supplier_id)
    if active_only:
        query = query.where(p.c.active)
    row = connection.execute(query).first()
    if row is None:
        raise ce.ProductNotFound(f"no product {product_id}")
    return products_of(connection, [row], active_variants_only=active_only)[0]


def products_of(connection: Connection, rows: Sequence[Row], *,
                active_variants_only: bool = False) -> list[Product]:
    """Products from their rows, with their variants (one query for all of them)."""
    v = commerce_variants
    query = select(v).where(v.c.product_id.in_([row.id for row in rows])).order_by(v.c.id)
    if active_variants_only:
        query = query.where(v.c.active)
    variants: dict[UUID, list[Variant]] = {}
    for variant in connection.execute(query):
        variants.setdefault(variant.product_id, []).append(_variant(variant))
    return [
        Product(
            id=row.id, supplier_id=row.supplier_id, name=row.name, description=row.description,
            brand=row.brand, category=row.category, currency=row.currency,
            image_urls=tuple(row.image_urls), attributes=dict(row.attributes),
            active=row.active, created_at=row.created_at, updated_at=row.updated_at,
            variants=tuple(variants.get(row.id, ())),
        )
        for row in rows
    ]


def update_product(engine: Engine, supplier_id: UUID, product_id: UUID,
                   changes: dict[str, Any]) -> Product:
    """Change a product's descriptive fields or `active` (a withdrawn product is not sold).

    Raises: ProductNotFound (also another supplier's), InvalidCommerceRequest.
    """
    allowed = {"name", "description", "brand", "category", "image_urls", "attributes",
               "active"}
    _check(set(changes) <= allowed, f"only {sorted(allowed)} can change")
    _check_fields(changes)
    p = commerce_products
    with engine.begin() as connection:
        changed = connection.execute(
            update(p).where(p.c.id == product_id, p.c.supplier_id == supplier_id)
            .values(**changes, updated_at=datetime.now(UTC)).returning(p.c.id)
        ).first()
        if changed is None:
            raise ce.ProductNotFound(f"no product {product_id}")
        return load_product(connection, product_id)


def add_variant(engine: Engine, supplier_id: UUID, product_id: UUID,
                draft: VariantDraft) -> Variant:
    """Raises: ProductNotFound, SkuTaken, InvalidCommerceRequest."""
    _check_variant(draft)
    with engine.begin() as connection:
        load_product(connection, product_id, supplier_id=supplier_id)
        return _insert_variant(connection, product_id, draft, datetime.now(UTC))


def update_variant(engine: Engine, supplier_id: UUID, variant_id: UUID,
                   changes: dict[str, Any]) -> Variant:
    """Change a variant's price, `active` or low-stock threshold.

    Raises: VariantNotFound (also another supplier's), InvalidCommerceRequest.
    """
    _check(set(changes) <= {"price_minor", "active", "low_stock_threshold"},
           "only price, active and low_stock_threshold can change")
    _check(changes.get("price_minor", 1) > 0, "a price must be positive")
    threshold = changes.get("low_stock_threshold")
    _check(threshold is None or threshold >= 0, "low_stock_threshold must not be negative")
    v = commerce_variants
    with engine.begin() as connection:
        _owned_variant(connection, supplier_id, variant_id)
        row = connection.execute(
            update(v).where(v.c.id == variant_id).values(**changes).returning(v)
        ).one()
        return _variant(row)


def set_stock(engine: Engine, supplier_id: UUID, variant_id: UUID, *,
              available: int | None = None, adjust_by: int | None = None) -> Variant:
    """Set the available units, or add to them (a negative adjustment must not go below 0).

    Reserved units are untouched. Raises: VariantNotFound, InvalidCommerceRequest.
    """
    _check((available is None) != (adjust_by is None), "give available or adjust_by")
    _check(available is None or available >= 0, "available must not be negative")
    v = commerce_variants
    with engine.begin() as connection:
        before = _owned_variant(connection, supplier_id, variant_id, for_update=True)
        new = available if available is not None else before.stock_available + adjust_by
        _check(new >= 0, f"only {before.stock_available} units are available to remove")
        row = connection.execute(
            update(v).where(v.c.id == variant_id).values(stock_available=new).returning(v)
        ).one()
        if new < before.stock_available:
            inventory.announce_if_low(connection, variant_id, before.stock_available - new)
        return _variant(row)


def variant_currency(connection: Connection, supplier_id: UUID, variant_id: UUID) -> str:
    """The currency of the supplier's variant. Raises: VariantNotFound."""
    p = commerce_products
    row = _owned_variant(connection, supplier_id, variant_id)
    return connection.execute(select(p.c.currency).where(p.c.id == row.product_id)).scalar_one()


def _owned_variant(connection: Connection, supplier_id: UUID, variant_id: UUID, *,
                   for_update: bool = False) -> Row:
    v, p = commerce_variants, commerce_products
    query = (select(v).join(p, p.c.id == v.c.product_id)
             .where(v.c.id == variant_id, p.c.supplier_id == supplier_id))
    row = connection.execute(query.with_for_update(of=v) if for_update else query).first()
    if row is None:
        raise ce.VariantNotFound(f"no variant {variant_id}")
    return row


def _insert_variant(connection: Connection, product_id: UUID, draft: VariantDraft,
                    now: datetime) -> Variant:
    v = commerce_variants
    try:
        with connection.begin_nested():
            row = connection.execute(insert(v).values(
                id=uuid7(), product_id=product_id, sku=draft.sku, size=draft.size,
                colour=draft.colour, price_minor=draft.price_minor,
                stock_available=draft.stock_available, stock_reserved=0, stock_sold=0,
                low_stock_threshold=draft.low_stock_threshold, active=True, created_at=now,
            ).returning(v)).one()
    except IntegrityError as error:
        raise ce.SkuTaken(f"the product already has a variant with SKU {draft.sku!r}") from error
    return _variant(row)


def _variant(row: Row) -> Variant:
    return Variant(
        id=row.id, product_id=row.product_id, sku=row.sku, size=row.size, colour=row.colour,
        price_minor=int(row.price_minor), stock_available=int(row.stock_available),
        stock_reserved=int(row.stock_reserved), stock_sold=int(row.stock_sold),
        low_stock_threshold=row.low_stock_threshold, active=row.active,
    )


def _check_draft(draft: ProductDraft) -> None:
    _check_fields({"name": draft.name, "description": draft.description, "brand": draft.brand,
                   "category": draft.category, "image_urls": list(draft.image_urls)})
    _check(1 <= len(draft.variants) <= VARIANTS_MAX,
           f"a product needs 1 to {VARIANTS_MAX} variants")
    skus = [variant.sku for variant in draft.variants]
    _check(len(set(skus)) == len(skus), "each variant needs its own SKU")
    for variant in draft.variants:
        _check_variant(variant)


def _check_fields(fields: dict[str, Any]) -> None:
    if "name" in fields:
        _check(0 < len(fields["name"]) <= TEXT_LENGTH_MAX, "a name is 1 to 200 characters")
    for name in ("brand", "category"):
        if name in fields:
            _check(len(fields[name]) <= TEXT_LENGTH_MAX, f"{name} is at most 200 characters")
    if "category" in fields:
        _check(len(fields["category"]) > 0, "category must not be empty")
    if "description" in fields:
        _check(len(fields["description"]) <= DESCRIPTION_LENGTH_MAX, "description is too long")
    if "image_urls" in fields:
        urls = fields["image_urls"]
        _check(len(urls) <= IMAGES_MAX, f"at most {IMAGES_MAX} images")
        _check(all(url.startswith(("https://", "http://")) for url in urls),
               "image URLs must be http(s) URLs")


def _check_variant(draft: VariantDraft) -> None:
    _check(0 < len(draft.sku) <= TEXT_LENGTH_MAX, "a SKU is 1 to 200 characters")
    _check(draft.price_minor > 0, "a price must be positive")
    _check(draft.stock_available >= 0, "stock must not be negative")
    _check(draft.low_stock_threshold is None or draft.low_stock_threshold >= 0,
           "low_stock_threshold must not be negative")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ce.InvalidCommerceRequest(message)
