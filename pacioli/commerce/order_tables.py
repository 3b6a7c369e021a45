"""Checkout's and orders' own tables (SQLAlchemy Core); migration 0016_commerce_orders
creates them.

A checkout turns one cart into one order per supplier (each supplier packs and ships its
own); the checkout row is what the Idempotency-Key guards. An order keeps its lines and
their prices as they were at checkout, its payment (the ledger hold, the card
authorization, the capture), its timeline (`commerce_order_history`, one row per change,
with tracking) and the split its money takes at capture (`commerce_order_shares`).
Refunds and returns are `commerce_order_refunds`. No table holds a balance: the ledger
does. These tables name catalog rows by id without foreign keys, so this migration does
not depend on the catalog's.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

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

CHECKOUT_STATUSES = ("placed", "awaiting_payment", "paid", "payment_failed")
ORDER_STATUSES = ("placed", "paid", "packed", "shipped", "delivered", "cancelled",
                  "payment_failed", "partially_returned", "returned")
# pending: nothing secured yet; authorized: the wallet hold or the card authorization
# stands; capturing / voiding: the order shipped / was cancelled and the money step is
# under way (a sweep finishes it); captured, voided, failed: done.
PAYMENT_STATUSES = ("pending", "authorized", "capturing", "captured", "voiding", "voided",
                    "failed")
PAYMENT_METHODS = ("wallet", "card")
# requested: a return waiting for the supplier to receive the goods; created: the refund
# is recorded and its money moves next; pending: the gateway has not answered yet.
REFUND_STATUSES = ("requested", "created", "pending", "succeeded", "failed")
REFUND_REASONS = ("cancellation", "return", "supplier")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


commerce_checkouts = Table(
    "commerce_checkouts",
    metadata,
    Column("id", Uuid, primary_key=True),  # also the stock reservation's and coupon use's id
    Column("user_id", Uuid, nullable=False),
    Column("cart_id", Uuid, nullable=False),
    Column("cart_version", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("total_minor", MinorUnits, nullable=False),
    Column("payment_method", Text, nullable=False),
    Column("instrument_id", Uuid),
    Column("gateway", Text),
    Column("coupon_code", Text),
    Column("status", Text, nullable=False),
    Column("failure_code", Text),
    Column("shipping_address", JSONB, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("created_at", INSTANT, nullable=False),
    Column("updated_at", INSTANT, nullable=False),
    Column("completed_at", INSTANT),
    UniqueConstraint("user_id", "idempotency_key"),
    CheckConstraint(f"status IN {_in(CHECKOUT_STATUSES)}", name="status"),
    CheckConstraint(f"payment_method IN {_in(PAYMENT_METHODS)}", name="payment_method"),
    CheckConstraint("total_minor >= 0", name="total_not_negative"),
)
Index("ix_commerce_checkouts_unsettled", commerce_checkouts.c.updated_at,
      postgresql_where=text("status IN ('placed', 'awaiting_payment')"))
# One live (or paid) checkout per cart version: a second checkout of the same cart, with
# another key, while the first is under way is a stale_cart_version conflict.
Index("ux_commerce_checkouts_cart_version", commerce_checkouts.c.cart_id,
      commerce_checkouts.c.cart_version, unique=True,
      postgresql_where=text("status IN ('placed', 'awaiting_payment', 'paid')"))

commerce_orders = Table(
    "commerce_orders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("checkout_id", Uuid, ForeignKey("commerce_checkouts.id"), nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("supplier_id", Uuid, nullable=False),  # the supplier's merchant id
    Column("currency", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("payment_method", Text, nullable=False),
    Column("payment_status", Text, nullable=False),
    Column("instrument_id", Uuid),
    Column("gateway", Text),
    Column("gateway_reference", Text),  # the card authorization
    Column("failure_code", Text),
    Column("subtotal_minor", MinorUnits, nullable=False),
    Column("discount_minor", MinorUnits, nullable=False),
    Column("tax_minor", MinorUnits, nullable=False),
    Column("shipping_minor", MinorUnits, nullable=False),
    Column("rounding_minor", MinorUnits, nullable=False),
    Column("total_minor", MinorUnits, nullable=False),
    Column("commission_minor", MinorUnits, nullable=False),
    Column("captured_minor", MinorUnits, nullable=False),
    Column("refunded_minor", MinorUnits, nullable=False),
    Column("hold_transfer_id", Uuid),
    Column("capture_transfer_id", Uuid),
    Column("void_transfer_id", Uuid),
    Column("carrier", Text),
    Column("tracking_number", Text),
    Column("shipping_address", JSONB, nullable=False),
    Column("created_at", INSTANT, nullable=False),  # placed
    Column("updated_at", INSTANT, nullable=False),
    Column("paid_at", INSTANT),
    Column("packed_at", INSTANT),
    Column("shipped_at", INSTANT),
    Column("delivered_at", INSTANT),
    Column("cancelled_at", INSTANT),
    Column("returned_at", INSTANT),
    CheckConstraint(f"status IN {_in(ORDER_STATUSES)}", name="status"),
    CheckConstraint(f"payment_status IN {_in(PAYMENT_STATUSES)}", name="payment_status"),
    CheckConstraint(f"payment_method IN {_in(PAYMENT_METHODS)}", name="payment_method"),
    CheckConstraint("total_minor >= 0 AND captured_minor >= 0 AND refunded_minor >= 0",
                    name="amounts_not_negative"),
    CheckConstraint("captured_minor <= total_minor AND refunded_minor <= captured_minor",
                    name="refunds_within_capture"),
)
Index("ix_commerce_orders_user", commerce_orders.c.user_id, commerce_orders.c.id)
Index("ix_commerce_orders_supplier", commerce_orders.c.supplier_id, commerce_orders.c.id)
Index("ix_commerce_orders_checkout", commerce_orders.c.checkout_id)
Index("ix_commerce_orders_money_due", commerce_orders.c.updated_at,
      postgresql_where=text("payment_status IN ('capturing', 'voiding')"))

commerce_order_lines = Table(
    "commerce_order_lines",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("order_id", Uuid, ForeignKey("commerce_orders.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("product_id", Uuid, nullable=False),
    Column("variant_id", Uuid, nullable=False),
    Column("reseller_id", Uuid),
    Column("name", Text, nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("unit_price_minor", MinorUnits, nullable=False),
    Column("supplier_unit_price_minor", MinorUnits, nullable=False),
    Column("reseller_margin_minor", MinorUnits, nullable=False),
    Column("catalogue_discount_minor", MinorUnits, nullable=False),
    Column("order_discount_minor", MinorUnits, nullable=False),
    Column("tax_minor", MinorUnits, nullable=False),
    Column("total_minor", MinorUnits, nullable=False),
    Column("returned_quantity", BigInteger, nullable=False),  # asked back, received or not
    UniqueConstraint("order_id", "position"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint("returned_quantity >= 0 AND returned_quantity <= quantity",
                    name="returns_within_quantity"),
)

# The split at capture: one row per payee, signed (rounding may be negative).
commerce_order_shares = Table(
    "commerce_order_shares",
    metadata,
    Column("order_id", Uuid, ForeignKey("commerce_orders.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("kind", Text, nullable=False),  # supplier, reseller, commission, tax, rounding
    Column("owner_id", Uuid),
    Column("amount_minor", MinorUnits, nullable=False),
)

# What happened to an order, when: status changes and tracking updates.
commerce_order_history = Table(
    "commerce_order_history",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("order_id", Uuid, ForeignKey("commerce_orders.id"), nullable=False),
    Column("event", Text, nullable=False),  # placed, paid, shipped, tracking_updated ...
    Column("carrier", Text),
    Column("tracking_number", Text),
    Column("note", Text),
    Column("created_at", INSTANT, nullable=False),
)
Index("ix_commerce_order_history_order", commerce_order_history.c.order_id,
      commerce_order_history.c.id)

commerce_order_refunds = Table(
    "commerce_order_refunds",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("order_id", Uuid, ForeignKey("commerce_orders.id"), nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("supplier_id", Uuid, nullable=False),
    Column("currency", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("destination", Text, nullable=False),  # wallet, card
    Column("amount_minor", MinorUnits, nullable=False),
    # What the order's earlier refunds took, fixed when the money step is recorded: the
    # split reversal is cumulative (order_split.refund_shares).
    Column("refunded_before_minor", MinorUnits),
    Column("status", Text, nullable=False),
    Column("failure_code", Text),
    Column("gateway_reference", Text),
    Column("transfer_id", Uuid),
    Column("idempotency_key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("created_at", INSTANT, nullable=False),
    Column("updated_at", INSTANT, nullable=False),
    Column("completed_at", INSTANT),
    UniqueConstraint("order_id", "idempotency_key"),
    CheckConstraint(f"status IN {_in(REFUND_STATUSES)}", name="status"),
    CheckConstraint(f"reason IN {_in(REFUND_REASONS)}", name="reason"),
    CheckConstraint("destination IN ('wallet', 'card')", name="destination"),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
)
Index("ix_commerce_order_refunds_order", commerce_order_refunds.c.order_id,
      commerce_order_refunds.c.id)
Index("ix_commerce_order_refunds_unfinished", commerce_order_refunds.c.updated_at,
      postgresql_where=text("status IN ('created', 'pending')"))

# The units a return sends back, per order line.
commerce_order_refund_lines = Table(
    "commerce_order_refund_lines",
    metadata,
    Column("refund_id", Uuid, ForeignKey("commerce_order_refunds.id"), primary_key=True),
    Column("line_id", Uuid, ForeignKey("commerce_order_lines.id"), primary_key=True),
    Column("quantity", BigInteger, nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)
