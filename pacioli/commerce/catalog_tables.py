"""The catalog's own tables (SQLAlchemy Core); migration 0016_commerce_catalog creates them.

Suppliers and resellers are merchants with a commerce role; products and their variants
belong to a supplier; a reseller's catalog lists suppliers' products with a margin on
top. A variant's stock is two counters, `stock_available` (free to sell) and
`stock_reserved` (held by reservations of checkouts in progress); conditional updates
move units between them and CHECK constraints keep both non-negative, so stock never
goes negative whatever the interleaving. Prices are ints of minor units; no table holds a
balance (the ledger does).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

from pacioli.ledger.storage.tables import MinorUnits

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

INSTANT = DateTime(timezone=True)

# A merchant that lists products. Its low-stock threshold applies to every variant that
# has none of its own.
commerce_suppliers = Table(
    "commerce_suppliers",
    metadata,
    Column("merchant_id", Uuid, primary_key=True),
    Column("low_stock_threshold", Integer, nullable=False),
    Column("created_at", INSTANT, nullable=False),
    CheckConstraint("low_stock_threshold >= 0", name="threshold_not_negative"),
)

# Flat shipping a supplier charges per order (per currency), free from a threshold.
commerce_shipping_rates = Table(
    "commerce_shipping_rates",
    metadata,
    Column("supplier_id", Uuid, ForeignKey("commerce_suppliers.merchant_id"), primary_key=True),
    Column("currency", Text, primary_key=True),
    Column("fee_minor", MinorUnits, nullable=False),
    Column("free_above_minor", MinorUnits),  # None: never free
    CheckConstraint("fee_minor >= 0", name="fee_not_negative"),
    CheckConstraint("free_above_minor IS NULL OR free_above_minor >= 0", name="free_not_negative"),
)

# A merchant that sells suppliers' products through catalogs of its own.
commerce_resellers = Table(
    "commerce_resellers",
    metadata,
    Column("merchant_id", Uuid, primary_key=True),
    Column("created_at", INSTANT, nullable=False),
)

commerce_products = Table(
    "commerce_products",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("supplier_id", Uuid, ForeignKey("commerce_suppliers.merchant_id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("brand", Text, nullable=False),
    Column("category", Text, nullable=False),  # the tax rate table's key
    Column("currency", Text, nullable=False),
    Column("image_urls", ARRAY(Text), nullable=False),
    Column("attributes", JSONB, nullable=False),  # free-form, e.g. {"material": "cotton"}
    Column("active", Boolean, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("created_at", INSTANT, nullable=False),
    Column("updated_at", INSTANT, nullable=False),
    Column(
        "search_vector", TSVECTOR,
        Computed(
            "to_tsvector('simple', name || ' ' || brand || ' ' || description)",
            persisted=True,
        ),
    ),
    UniqueConstraint("supplier_id", "idempotency_key"),
)
Index("ix_commerce_products_search", commerce_products.c.search_vector, postgresql_using="gin")
Index("ix_commerce_products_brand", text("lower(brand)"))
Index("ix_commerce_products_supplier", commerce_products.c.supplier_id, commerce_products.c.id)

# A buyable form of a product (a size and colour) with its own price and stock.
commerce_variants = Table(
    "commerce_variants",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("product_id", Uuid, ForeignKey("commerce_products.id"), nullable=False),
    Column("sku", Text, nullable=False),
    Column("size", Text),
    Column("colour", Text),
    Column("price_minor", MinorUnits, nullable=False),
    Column("stock_available", BigInteger, nullable=False),
    Column("stock_reserved", BigInteger, nullable=False),
    Column("stock_sold", BigInteger, nullable=False),
    Column("low_stock_threshold", Integer),  # None: the supplier's
    Column("active", Boolean, nullable=False),
    Column("created_at", INSTANT, nullable=False),
    UniqueConstraint("product_id", "sku"),
    CheckConstraint("price_minor > 0", name="price_positive"),
    CheckConstraint("stock_available >= 0", name="available_not_negative"),
    CheckConstraint("stock_reserved >= 0", name="reserved_not_negative"),
    CheckConstraint("stock_sold >= 0", name="sold_not_negative"),
)
Index("ix_commerce_variants_product", commerce_variants.c.product_id)
Index("ix_commerce_variants_size", text("lower(size)"))
Index("ix_commerce_variants_colour", text("lower(colour)"))

# A hold on stock for one checkout: held until committed (sold), released, or expired.
commerce_reservations = Table(
    "commerce_reservations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("status", Text, nullable=False),
    Column("expires_at", INSTANT, nullable=False),
    Column("created_at", INSTANT, nullable=False),
    Column("resolved_at", INSTANT),
    CheckConstraint(
        "status IN ('held', 'committed', 'released', 'expired')", name="status"
    ),
)
Index(
    "ix_commerce_reservations_held_expiry", commerce_reservations.c.expires_at,
    postgresql_where=commerce_reservations.c.status == "held",
)

commerce_reservation_lines = Table(
    "commerce_reservation_lines",
    metadata,
    Column("reservation_id", Uuid, ForeignKey("commerce_reservations.id"), primary_key=True),
    Column("variant_id", Uuid, ForeignKey("commerce_variants.id"), primary_key=True),
    Column("quantity", BigInteger, nullable=False),
    Column("restocked", BigInteger, nullable=False, server_default=text("0")),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint("restocked >= 0 AND restocked <= quantity", name="restocked_bounded"),
)

# A reseller's catalog, shared by its slug (the public link /v1/shops/{slug}).
commerce_catalogs = Table(
    "commerce_catalogs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("reseller_id", Uuid, ForeignKey("commerce_resellers.merchant_id"), nullable=False),
    Column("slug", Text, nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", INSTANT, nullable=False),
    CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{2,62}$'", name="slug_shape"),
)
Index("ix_commerce_catalogs_reseller", commerce_catalogs.c.reseller_id)

# A product in a reseller's catalog, with the reseller's margin per unit.
commerce_catalog_items = Table(
    "commerce_catalog_items",
    metadata,
    Column("catalog_id", Uuid, ForeignKey("commerce_catalogs.id"), primary_key=True),
    Column("product_id", Uuid, ForeignKey("commerce_products.id"), primary_key=True),
    Column("margin_minor", MinorUnits, nullable=False),
    Column("added_at", INSTANT, nullable=False),
    CheckConstraint("margin_minor >= 0", name="margin_not_negative"),
)

# A shopper's cart: a user's (one active per user, on every device) or a guest's,
# found by the SHA-256 of its token. `version` grows with every change.
commerce_carts = Table(
    "commerce_carts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid),
    Column("guest_token_hash", LargeBinary, unique=True),
    Column("status", Text, nullable=False),  # active, merged, expired, emptied
    Column("currency", Text),  # the first item's
    Column("region", Text),  # where it ships: the tax rate table's key
    Column("coupon_code", Text),
    Column("version", BigInteger, nullable=False),
    Column("created_at", INSTANT, nullable=False),
    Column("updated_at", INSTANT, nullable=False),
    CheckConstraint("status IN ('active', 'merged', 'expired')", name="status"),
    CheckConstraint("user_id IS NOT NULL OR guest_token_hash IS NOT NULL", name="owned"),
)
Index(
    "ux_commerce_carts_user_active", commerce_carts.c.user_id, unique=True,
    postgresql_where=text("status = 'active' AND user_id IS NOT NULL"),
)
Index(
    "ix_commerce_carts_active_updated", commerce_carts.c.updated_at,
    postgresql_where=commerce_carts.c.status == "active",
)

# A line of a cart; `catalog_id` is the reseller catalog it was added from, if any.
commerce_cart_items = Table(
    "commerce_cart_items",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("cart_id", Uuid, ForeignKey("commerce_carts.id"), nullable=False),
    Column("variant_id", Uuid, ForeignKey("commerce_variants.id"), nullable=False),
    Column("catalog_id", Uuid, ForeignKey("commerce_catalogs.id")),
    Column("quantity", BigInteger, nullable=False),
    Column("saved_for_later", Boolean, nullable=False),
    Column("added_at", INSTANT, nullable=False),
    UniqueConstraint("cart_id", "variant_id"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)
