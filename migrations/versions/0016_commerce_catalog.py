"""commerce catalog: suppliers, resellers and their catalogs, products, variants and
their stock, reservations, carts, promotions, coupons and tax rates

Stock is two counters per variant (available, reserved) kept non-negative by CHECK
constraints; reservations hold units for a checkout until committed, released or expired.
See docs/commerce.md.

Revision ID: 0016_commerce_catalog
Revises: 0015
Create Date: 2026-11-26 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0016_commerce_catalog'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric(39, 0)
INSTANT = sa.DateTime(timezone=True)
TABLES = (
    'commerce_carts',
    'commerce_coupons',
    'commerce_promotions',
    'commerce_resellers',
    'commerce_reservations',
    'commerce_suppliers',
    'commerce_tax_rates',
    'commerce_catalogs',
    'commerce_coupon_redemptions',
    'commerce_products',
    'commerce_shipping_rates',
    'commerce_catalog_items',
    'commerce_variants',
    'commerce_cart_items',
    'commerce_reservation_lines',
)


def upgrade() -> None:
    op.create_table('commerce_carts',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=True),
        sa.Column('guest_token_hash', sa.LargeBinary(), nullable=True),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('currency', sa.Text(), nullable=True),
        sa.Column('region', sa.Text(), nullable=True),
        sa.Column('coupon_code', sa.Text(), nullable=True),
        sa.Column('version', sa.BigInteger(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('updated_at', INSTANT, nullable=False),
        sa.CheckConstraint("status IN ('active', 'merged', 'expired')", name=op.f('ck_commerce_carts_status')),
        sa.CheckConstraint('user_id IS NOT NULL OR guest_token_hash IS NOT NULL', name=op.f('ck_commerce_carts_owned')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_commerce_carts')),
        sa.UniqueConstraint('guest_token_hash', name=op.f('uq_commerce_carts_guest_token_hash'))
    )
    op.create_index('ix_commerce_carts_active_updated', 'commerce_carts', ['updated_at'], postgresql_where=sa.text("status = 'active'"))
    op.create_index('ux_commerce_carts_user_active', 'commerce_carts', ['user_id'], unique=True, postgresql_where=sa.text("status = 'active' AND user_id IS NOT NULL"))
    op.create_table('commerce_coupons',
        sa.Column('code', sa.Text(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('value', AMOUNT, nullable=False),
        sa.Column('currency', sa.Text(), nullable=True),
        sa.Column('min_subtotal_minor', AMOUNT, nullable=False),
        sa.Column('starts_at', INSTANT, nullable=True),
        sa.Column('ends_at', INSTANT, nullable=True),
        sa.Column('usage_limit_total', sa.Integer(), nullable=True),
        sa.Column('usage_limit_per_user', sa.Integer(), nullable=True),
        sa.Column('redeemed_count', sa.BigInteger(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.CheckConstraint("(kind = 'percent' AND value > 0 AND value <= 10000) OR (kind = 'fixed' AND value > 0 AND currency IS NOT NULL)", name=op.f('ck_commerce_coupons_value')),
        sa.CheckConstraint("kind IN ('percent', 'fixed')", name=op.f('ck_commerce_coupons_kind')),
        sa.CheckConstraint('min_subtotal_minor >= 0', name=op.f('ck_commerce_coupons_min_subtotal_not_negative')),
        sa.CheckConstraint('redeemed_count >= 0 AND (usage_limit_total IS NULL OR redeemed_count <= usage_limit_total)', name=op.f('ck_commerce_coupons_redeemed_within_limit')),
        sa.CheckConstraint('usage_limit_per_user IS NULL OR usage_limit_per_user > 0', name=op.f('ck_commerce_coupons_limit_per_user')),
        sa.CheckConstraint('usage_limit_total IS NULL OR usage_limit_total > 0', name=op.f('ck_commerce_coupons_limit_total')),
        sa.PrimaryKeyConstraint('code', name=op.f('pk_commerce_coupons'))
    )
    op.create_table('commerce_promotions',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('supplier_id', sa.Uuid(), nullable=True),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('scope', sa.Text(), nullable=False),
        sa.Column('target_id', sa.Uuid(), nullable=True),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('value', AMOUNT, nullable=False),
        sa.Column('currency', sa.Text(), nullable=True),
        sa.Column('min_subtotal_minor', AMOUNT, nullable=False),
        sa.Column('starts_at', INSTANT, nullable=True),
        sa.Column('ends_at', INSTANT, nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.CheckConstraint("(kind = 'percent' AND value > 0 AND value <= 10000) OR (kind = 'fixed' AND value > 0 AND currency IS NOT NULL)", name=op.f('ck_commerce_promotions_value')),
        sa.CheckConstraint("(scope = 'order') = (target_id IS NULL)", name=op.f('ck_commerce_promotions_target')),
        sa.CheckConstraint("kind IN ('percent', 'fixed')", name=op.f('ck_commerce_promotions_kind')),
        sa.CheckConstraint("scope IN ('product', 'variant', 'order')", name=op.f('ck_commerce_promotions_scope')),
        sa.CheckConstraint('ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at', name=op.f('ck_commerce_promotions_window')),
        sa.CheckConstraint('min_subtotal_minor >= 0', name=op.f('ck_commerce_promotions_min_subtotal_not_negative')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_commerce_promotions'))
    )
    op.create_index('ix_commerce_promotions_order', 'commerce_promotions', ['currency'], postgresql_where=sa.text("scope = 'order'"))
    op.create_index('ix_commerce_promotions_target', 'commerce_promotions', ['target_id'])
    op.create_table('commerce_resellers',
        sa.Column('merchant_id', sa.Uuid(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.PrimaryKeyConstraint('merchant_id', name=op.f('pk_commerce_resellers'))
    )
    op.create_table('commerce_reservations',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('expires_at', INSTANT, nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('resolved_at', INSTANT, nullable=True),
        sa.CheckConstraint("status IN ('held', 'committed', 'released', 'expired')", name=op.f('ck_commerce_reservations_status')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_commerce_reservations'))
    )
    op.create_index('ix_commerce_reservations_held_expiry', 'commerce_reservations', ['expires_at'], postgresql_where=sa.text("status = 'held'"))
    op.create_table('commerce_suppliers',
        sa.Column('merchant_id', sa.Uuid(), nullable=False),
        sa.Column('low_stock_threshold', sa.Integer(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.CheckConstraint('low_stock_threshold >= 0', name=op.f('ck_commerce_suppliers_threshold_not_negative')),
        sa.PrimaryKeyConstraint('merchant_id', name=op.f('pk_commerce_suppliers'))
    )
    op.create_table('commerce_tax_rates',
        sa.Column('category', sa.Text(), nullable=False),
        sa.Column('region', sa.Text(), nullable=False),
        sa.Column('rate_bps', sa.Integer(), nullable=False),
        sa.Column('updated_at', INSTANT, nullable=False),
        sa.CheckConstraint('rate_bps >= 0 AND rate_bps <= 10000', name=op.f('ck_commerce_tax_rates_rate_bounded')),
        sa.PrimaryKeyConstraint('category', 'region', name=op.f('pk_commerce_tax_rates'))
    )
    op.create_table('commerce_catalogs',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('reseller_id', sa.Uuid(), nullable=False),
        sa.Column('slug', sa.Text(), nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{2,62}$'", name=op.f('ck_commerce_catalogs_slug_shape')),
        sa.ForeignKeyConstraint(['reseller_id'], ['commerce_resellers.merchant_id'], name=op.f('fk_commerce_catalogs_reseller_id')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_commerce_catalogs')),
        sa.UniqueConstraint('slug', name=op.f('uq_commerce_catalogs_slug'))
    )
    op.create_index('ix_commerce_catalogs_reseller', 'commerce_catalogs', ['reseller_id'])
    op.create_table('commerce_coupon_redemptions',
        sa.Column('order_id', sa.Uuid(), nullable=False),
        sa.Column('code', sa.Text(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('redeemed_at', INSTANT, nullable=False),
        sa.ForeignKeyConstraint(['code'], ['commerce_coupons.code'], name=op.f('fk_commerce_coupon_redemptions_code')),
        sa.PrimaryKeyConstraint('order_id', name=op.f('pk_commerce_coupon_redemptions'))
    )
    op.create_index('ix_commerce_coupon_redemptions_code_user', 'commerce_coupon_redemptions', ['code', 'user_id'])
    op.create_table('commerce_products',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('supplier_id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('brand', sa.Text(), nullable=False),
        sa.Column('category', sa.Text(), nullable=False),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('image_urls', postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column('attributes', postgresql.JSONB(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('idempotency_key', sa.Text(), nullable=False),
        sa.Column('request_hash', sa.Text(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.Column('updated_at', INSTANT, nullable=False),
        sa.Column('search_vector', postgresql.TSVECTOR(), sa.Computed("to_tsvector('simple', name || ' ' || brand || ' ' || description)", persisted=True), nullable=True),
        sa.ForeignKeyConstraint(['supplier_id'], ['commerce_suppliers.merchant_id'], name=op.f('fk_commerce_products_supplier_id')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_commerce_products')),
        sa.UniqueConstraint('supplier_id', 'idempotency_key', name=op.f('uq_commerce_products_supplier_id_idempotency_key'))
    )
    op.create_index('ix_commerce_products_search', 'commerce_products', ['search_vector'], postgresql_using='gin')
    op.create_index('ix_commerce_products_supplier', 'commerce_products', ['supplier_id', 'id'])
    op.create_table('commerce_shipping_rates',
        sa.Column('supplier_id', sa.Uuid(), nullable=False),
        sa.Column('currency', sa.Text(), nullable=False),
        sa.Column('fee_minor', AMOUNT, nullable=False),
        sa.Column('free_above_minor', AMOUNT, nullable=True),
        sa.CheckConstraint('fee_minor >= 0', name=op.f('ck_commerce_shipping_rates_fee_not_negative')),
        sa.CheckConstraint('free_above_minor IS NULL OR free_above_minor >= 0', name=op.f('ck_commerce_shipping_rates_free_not_negative')),
        sa.ForeignKeyConstraint(['supplier_id'], ['commerce_suppliers.merchant_id'], name=op.f('fk_commerce_shipping_rates_supplier_id')),
        sa.PrimaryKeyConstraint('supplier_id', 'currency', name=op.f('pk_commerce_shipping_rates'))
    )
    op.create_table('commerce_catalog_items',
        sa.Column('catalog_id', sa.Uuid(), nullable=False),
        sa.Column('product_id', sa.Uuid(), nullable=False),
        sa.Column('margin_minor', AMOUNT, nullable=False),
        sa.Column('added_at', INSTANT, nullable=False),
        sa.CheckConstraint('margin_minor >= 0', name=op.f('ck_commerce_catalog_items_margin_not_negative')),
        sa.ForeignKeyConstraint(['catalog_id'], ['commerce_catalogs.id'], name=op.f('fk_commerce_catalog_items_catalog_id')),
        sa.ForeignKeyConstraint(['product_id'], ['commerce_products.id'], name=op.f('fk_commerce_catalog_items_product_id')),
        sa.PrimaryKeyConstraint('catalog_id', 'product_id', name=op.f('pk_commerce_catalog_items'))
    )
    op.create_table('commerce_variants',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('product_id', sa.Uuid(), nullable=False),
        sa.Column('sku', sa.Text(), nullable=False),
        sa.Column('size', sa.Text(), nullable=True),
        sa.Column('colour', sa.Text(), nullable=True),
        sa.Column('price_minor', AMOUNT, nullable=False),
        sa.Column('stock_available', sa.BigInteger(), nullable=False),
        sa.Column('stock_reserved', sa.BigInteger(), nullable=False),
        sa.Column('stock_sold', sa.BigInteger(), nullable=False),
        sa.Column('low_stock_threshold', sa.Integer(), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', INSTANT, nullable=False),
        sa.CheckConstraint('price_minor > 0', name=op.f('ck_commerce_variants_price_positive')),
        sa.CheckConstraint('stock_available >= 0', name=op.f('ck_commerce_variants_available_not_negative')),
        sa.CheckConstraint('stock_reserved >= 0', name=op.f('ck_commerce_variants_reserved_not_negative')),
        sa.CheckConstraint('stock_sold >= 0', name=op.f('ck_commerce_variants_sold_not_negative')),
        sa.ForeignKeyConstraint(['product_id'], ['commerce_products.id'], name=op.f('fk_commerce_variants_product_id')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_commerce_variants')),
        sa.UniqueConstraint('product_id', 'sku', name=op.f('uq_commerce_variants_product_id_sku'))
    )
    op.create_index('ix_commerce_variants_product', 'commerce_variants', ['product_id'])
    op.create_table('commerce_cart_items',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('cart_id', sa.Uuid(), nullable=False),
        sa.Column('variant_id', sa.Uuid(), nullable=False),
        sa.Column('catalog_id', sa.Uuid(), nullable=True),
        sa.Column('quantity', sa.BigInteger(), nullable=False),
        sa.Column('saved_for_later', sa.Boolean(), nullable=False),
        sa.Column('added_at', INSTANT, nullable=False),
        sa.CheckConstraint('quantity > 0', name=op.f('ck_commerce_cart_items_quantity_positive')),
        sa.ForeignKeyConstraint(['cart_id'], ['commerce_carts.id'], name=op.f('fk_commerce_cart_items_cart_id')),
        sa.ForeignKeyConstraint(['catalog_id'], ['commerce_catalogs.id'], name=op.f('fk_commerce_cart_items_catalog_id')),
        sa.ForeignKeyConstraint(['variant_id'], ['commerce_variants.id'], name=op.f('fk_commerce_cart_items_variant_id')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_commerce_cart_items')),
        sa.UniqueConstraint('cart_id', 'variant_id', name=op.f('uq_commerce_cart_items_cart_id_variant_id'))
    )
    op.create_table('commerce_reservation_lines',
        sa.Column('reservation_id', sa.Uuid(), nullable=False),
        sa.Column('variant_id', sa.Uuid(), nullable=False),
        sa.Column('quantity', sa.BigInteger(), nullable=False),
        sa.Column('restocked', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.CheckConstraint('quantity > 0', name=op.f('ck_commerce_reservation_lines_quantity_positive')),
        sa.CheckConstraint('restocked >= 0 AND restocked <= quantity', name=op.f('ck_commerce_reservation_lines_restocked_bounded')),
        sa.ForeignKeyConstraint(['reservation_id'], ['commerce_reservations.id'], name=op.f('fk_commerce_reservation_lines_reservation_id')),
        sa.ForeignKeyConstraint(['variant_id'], ['commerce_variants.id'], name=op.f('fk_commerce_reservation_lines_variant_id')),
        sa.PrimaryKeyConstraint('reservation_id', 'variant_id', name=op.f('pk_commerce_reservation_lines'))
    )

    # Case-insensitive filters on brand, size and colour (search in docs/commerce.md).
    op.create_index('ix_commerce_products_brand', 'commerce_products', [sa.text('lower(brand)')])
    op.create_index('ix_commerce_variants_size', 'commerce_variants', [sa.text('lower(size)')])
    op.create_index('ix_commerce_variants_colour', 'commerce_variants',
                    [sa.text('lower(colour)')])


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
