"""Helpers for the commerce integration tests: suppliers, products and carts made through
the services, each with fresh ids so tests sharing a database never meet.

A test that sets store-wide terms (order promotions apply to every cart in their
currency) does it in a currency of its own (`currency_code`), so no other test's cart
sees them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, text

from pacioli.commerce import cart_edits, carts, catalog
from pacioli.commerce.carts import CartAccess
from pacioli.commerce.catalog import Product, ProductDraft, VariantDraft
from pacioli.commerce.catalog_tables import commerce_variants
from pacioli.ledger import Ledger
from pacioli.ledger.domain.ids import uuid7

IDLE_S = 3600
LATER = datetime.now(UTC) + timedelta(minutes=10)


def new_supplier(engine: Engine, *, threshold: int = 0) -> uuid.UUID:
    merchant_id = uuid7()
    catalog.register_supplier(engine, merchant_id, low_stock_threshold=threshold)
    return merchant_id


def new_product(engine: Engine, supplier_id: uuid.UUID, *, stock: int = 10, price: int = 1000,
                currency: str = "USD", name: str = "Linen shirt", brand: str = "Acme",
                category: str = "apparel", variants: tuple[VariantDraft, ...] | None = None,
                description: str = "") -> Product:
    variants = variants or (VariantDraft(sku="SKU-1", price_minor=price, stock_available=stock,
                                         size="M", colour="blue"),)
    product, _ = catalog.create_product(
        engine, supplier_id,
        ProductDraft(name=name, currency=currency, variants=variants, brand=brand,
                     category=category, description=description),
        idempotency_key=uuid.uuid4().hex,
    )
    return product


def one_variant(engine: Engine, *, stock: int = 10, price: int = 1000, threshold: int = 0,
                currency: str = "USD") -> uuid.UUID:
    """The id of the only variant of a new product of a new supplier."""
    supplier = new_supplier(engine, threshold=threshold)
    return new_product(engine, supplier, stock=stock, price=price,
                       currency=currency).variants[0].id


def stock(engine: Engine, variant_id: uuid.UUID) -> tuple[int, int, int]:
    """(available, reserved, sold)."""
    v = commerce_variants
    with engine.connect() as connection:
        row = connection.execute(
            select(v.c.stock_available, v.c.stock_reserved, v.c.stock_sold)
            .where(v.c.id == variant_id)
        ).one()
    return tuple(int(x) for x in row)


def user_cart_with(engine: Engine, lines: list[tuple[uuid.UUID, int]],
                   user_id: uuid.UUID | None = None) -> tuple[carts.Cart, CartAccess]:
    user_id = user_id or uuid7()
    access = CartAccess(user_id=user_id)
    cart = carts.user_cart(engine, user_id, idle_seconds=IDLE_S)
    for variant_id, quantity in lines:
        cart = cart_edits.add_item(engine, cart.id, access, variant_id=variant_id,
                                   quantity=quantity, idle_seconds=IDLE_S)
    return cart, access


def currency_code(ledger: Ledger) -> str:
    """A new ledger asset no other test uses, so store-wide terms set in it (an order
    promotion) reach no other test's cart, and the API can still show its amounts."""
    code = "T" + uuid.uuid4().hex[:8].upper()
    ledger.create_asset(code, 2, idempotency_key=uuid.uuid4().hex)
    return code


def age_cart(engine: Engine, cart_id: uuid.UUID, seconds: int) -> None:
    """Pretend the cart was last touched `seconds` ago."""
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE commerce_carts SET updated_at = now() - make_interval(secs => :s)"
                 " WHERE id = :id"),
            {"s": seconds, "id": cart_id},
        )
