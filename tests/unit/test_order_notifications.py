"""What the shopper and the supplier are told of a checkout order's changes
(payments/notification_messages.py, the commerce_order.* events)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pacioli.ledger.outbox import Event
from pacioli.payments.notification_messages import Kind, MerchantRef, drafts_for
from pacioli.payments.webhook_events import EVENT_TYPES, public_data

SHOPPER, OWNER, SUPPLIER, ORDER = (uuid.uuid4() for _ in range(4))


class Lookup:
    def user_name(self, user_id):
        return "Ada"

    def merchant(self, merchant_id):
        return MerchantRef("Teapots Ltd", OWNER) if merchant_id == SUPPLIER else None

    def biller_name(self, biller_id):
        return biller_id

    def money(self, amount_minor, currency):
        return f"{amount_minor // 100}.{amount_minor % 100:02d} {currency}"


def event(name: str, **extra) -> Event:
    payload = {"order_id": str(ORDER), "checkout_id": str(uuid.uuid4()),
               "user_id": str(SHOPPER), "merchant_id": str(SUPPLIER), "status": "shipped",
               "payment_status": "captured", "total_minor": "2999", "currency": "USD",
               "carrier": "DHL", "tracking_number": "JD01", "failure_code": None,
               "occurred_at": datetime.now(UTC).isoformat(), **extra}
    return Event(uuid.uuid4(), f"commerce_order.{name}", "commerce_order", str(ORDER),
                 payload, datetime.now(UTC))


def test_a_shipped_order_tells_the_shopper_its_tracking():
    [draft] = drafts_for(event("shipped"), Lookup())
    assert (draft.user_id, draft.kind) == (SHOPPER, Kind.ORDER_UPDATE)
    assert draft.body == "Your order of 29.99 USD has shipped (DHL JD01)."


def test_a_paid_order_tells_the_shopper_and_the_supplier_s_owner():
    shopper, supplier = drafts_for(event("paid"), Lookup())
    assert (shopper.user_id, shopper.kind) == (SHOPPER, Kind.ORDER_UPDATE)
    assert (supplier.user_id, supplier.kind) == (OWNER, Kind.NEW_ORDER)
    assert supplier.title == "New order to ship: 29.99 USD"


def test_a_refused_payment_and_a_refund_say_why_and_how_much():
    [failed] = drafts_for(event("payment_failed", failure_code="card_declined"), Lookup())
    assert failed.kind is Kind.ORDER_PAYMENT_FAILED and "(card declined)" in failed.body
    [refunded] = drafts_for(event("refunded", refund_id=str(uuid.uuid4()),
                                  refund_minor="1250", refund_destination="wallet"), Lookup())
    assert refunded.kind is Kind.ORDER_REFUNDED
    assert refunded.body == "12.50 USD of your order was refunded to your wallet."


def test_a_packed_order_is_news_for_the_supplier_s_webhooks_only():
    assert drafts_for(event("packed"), Lookup()) == []
    assert "commerce_order.packed" in EVENT_TYPES
    data = public_data(event("refunded", refund_minor="1250").payload, lambda code: 2)
    assert (data["total"], data["refund"]) == ("29.99", "12.50")
