"""The low-stock event as the supplier sees it: a notification to the merchant's owner and a
webhook event type."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from pacioli.gateways.channels import Channel
from pacioli.ledger.outbox import Event
from pacioli.payments.notification_messages import (
    CHANNELS,
    Kind,
    MerchantRef,
    drafts_for,
)
from pacioli.payments.webhook_events import EVENT_TYPES

SUPPLIER = UUID(int=7)
OWNER = UUID(int=8)


class Lookup:
    def user_name(self, user_id: UUID) -> str:
        return "someone"

    def merchant(self, merchant_id: UUID) -> MerchantRef | None:
        return MerchantRef("Loom & Co", OWNER) if merchant_id == SUPPLIER else None

    def biller_name(self, biller_id: str) -> str:
        return biller_id

    def money(self, amount_minor: int, currency: str) -> str:
        return f"{amount_minor} {currency}"


def stock_low(merchant_id: UUID) -> Event:
    return Event(
        event_id=UUID(int=1), event_type="commerce.stock_low", aggregate_type="commerce_variant",
        aggregate_id=str(UUID(int=3)), created_at=datetime.now(UTC),
        payload={"merchant_id": str(merchant_id), "product_id": str(UUID(int=2)),
                 "variant_id": str(UUID(int=3)), "sku": "TEE-M", "product_name": "Tee",
                 "stock_available": "2", "low_stock_threshold": "5"},
    )


def test_low_stock_notifies_the_suppliers_owner_by_email():
    (draft,) = drafts_for(stock_low(SUPPLIER), Lookup())
    assert draft.user_id == OWNER
    assert draft.kind == Kind.STOCK_LOW
    assert "Tee (TEE-M)" in draft.title
    assert "Only 2 units" in draft.body and "Loom & Co" in draft.body
    assert draft.data["variant_id"] == str(UUID(int=3))
    assert CHANNELS[Kind.STOCK_LOW] == frozenset({Channel.EMAIL})


def test_low_stock_of_an_unknown_merchant_notifies_nobody():
    assert drafts_for(stock_low(UUID(int=99)), Lookup()) == []


def test_low_stock_is_a_webhook_event_type():
    assert "commerce.stock_low" in EVENT_TYPES
