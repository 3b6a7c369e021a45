"""Promotions, coupons and tax rates (SQLAlchemy Core); migration 0016_commerce_catalog
creates them, on the catalog tables' metadata.

A promotion is a discount applied without a code: a catalogue discount (scope
`product` or `variant`, set by the supplier of that product) or an order discount
(scope `order`, set by an admin). A coupon is an order discount the shopper asks for by
code, with usage limits per user and overall; `redeemed_count` is the overall count,
and a conditional UPDATE on it makes the limit hold under concurrent checkouts.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    Uuid,
)

from pacioli.commerce.catalog_tables import INSTANT, metadata
from pacioli.ledger.storage.tables import MinorUnits

DISCOUNT_KINDS = "kind IN ('percent', 'fixed')"
# A percentage is in basis points (1250 = 12.5%) and at most 100%; a fixed amount is in
# minor units of `currency`.
DISCOUNT_VALUE = (
    "(kind = 'percent' AND value > 0 AND value <= 10000)"
    " OR (kind = 'fixed' AND value > 0 AND currency IS NOT NULL)"
)

commerce_promotions = Table(
    "commerce_promotions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("supplier_id", Uuid),  # the supplier who set a catalogue discount; None: admin
    Column("name", Text, nullable=False),
    Column("scope", Text, nullable=False),  # product, variant, order
    Column("target_id", Uuid),  # the product or variant; None for scope order
    Column("kind", Text, nullable=False),
    Column("value", MinorUnits, nullable=False),
    Column("currency", Text),
    Column("min_subtotal_minor", MinorUnits, nullable=False),
    Column("starts_at", INSTANT),
    Column("ends_at", INSTANT),
    Column("active", Boolean, nullable=False),
    Column("created_at", INSTANT, nullable=False),
    CheckConstraint("scope IN ('product', 'variant', 'order')", name="scope"),
    CheckConstraint("(scope = 'order') = (target_id IS NULL)", name="target"),
    CheckConstraint(DISCOUNT_KINDS, name="kind"),
    CheckConstraint(DISCOUNT_VALUE, name="value"),
    CheckConstraint("min_subtotal_minor >= 0", name="min_subtotal_not_negative"),
    CheckConstraint("ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at", name="window"),
)
Index("ix_commerce_promotions_target", commerce_promotions.c.target_id)
Index(
    "ix_commerce_promotions_order", commerce_promotions.c.currency,
    postgresql_where=commerce_promotions.c.scope == "order",
)

commerce_coupons = Table(
    "commerce_coupons",
    metadata,
    Column("code", Text, primary_key=True),  # upper case
    Column("kind", Text, nullable=False),
    Column("value", MinorUnits, nullable=False),
    Column("currency", Text),
    Column("min_subtotal_minor", MinorUnits, nullable=False),
    Column("starts_at", INSTANT),
    Column("ends_at", INSTANT),
    Column("usage_limit_total", Integer),  # None: unlimited
    Column("usage_limit_per_user", Integer),  # None: unlimited
    Column("redeemed_count", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", INSTANT, nullable=False),
    CheckConstraint(DISCOUNT_KINDS, name="kind"),
    CheckConstraint(DISCOUNT_VALUE, name="value"),
    CheckConstraint("min_subtotal_minor >= 0", name="min_subtotal_not_negative"),
    CheckConstraint("usage_limit_total IS NULL OR usage_limit_total > 0", name="limit_total"),
    CheckConstraint(
        "usage_limit_per_user IS NULL OR usage_limit_per_user > 0", name="limit_per_user"
    ),
    CheckConstraint(
        "redeemed_count >= 0 AND (usage_limit_total IS NULL"
        " OR redeemed_count <= usage_limit_total)",
        name="redeemed_within_limit",
    ),
)

# One use of a coupon by one order; removed again if the order is cancelled unpaid.
commerce_coupon_redemptions = Table(
    "commerce_coupon_redemptions",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("code", Text, ForeignKey("commerce_coupons.code"), nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("redeemed_at", INSTANT, nullable=False),
)
Index(
    "ix_commerce_coupon_redemptions_code_user",
    commerce_coupon_redemptions.c.code, commerce_coupon_redemptions.c.user_id,
)

# Tax by product category and shipping region, in basis points; "*" matches any.
commerce_tax_rates = Table(
    "commerce_tax_rates",
    metadata,
    Column("category", Text, primary_key=True),
    Column("region", Text, primary_key=True),
    Column("rate_bps", Integer, nullable=False),
    Column("updated_at", INSTANT, nullable=False),
    CheckConstraint("rate_bps >= 0 AND rate_bps <= 10000", name="rate_bounded"),
)
