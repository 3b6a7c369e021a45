"""The webhook event catalog: which outbox events merchants receive, and in what shape.

An outbox event reaches a merchant's endpoints when its type is in `EVENT_TYPES` and its
payload names the merchant (`merchant_id`). What the endpoint receives is an envelope in
the Standard Webhooks payload style, `{"type", "timestamp", "data"}`; `data` is the
event's payload with each amount `X_minor` (a string of minor units) written as `X`, a
decimal string in major units of the payload's `currency`, as the REST API writes
amounts (`"amount_minor": "1050"` with `"currency": "USD"` becomes `"amount": "10.50"`).
docs/webhooks.md lists the types and their fields.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pacioli.ledger.domain.money import format_minor

# The public catalog: type -> what it means. Endpoints subscribe to these (or to all).
EVENT_TYPES: dict[str, str] = {
    "qr_payment.succeeded": "A customer paid one of the merchant's QR codes.",
    "qr_payment.refunded": "A QR payment was refunded to the customer (in full or in part).",
    "qr_code.expired": "A dynamic QR code ran out unpaid.",
    "cashback.credited": "Cashback the merchant funds was credited to a customer.",
    "settlement.paid": "A settlement batch was paid out to the merchant's bank account.",
    "settlement.failed": "A settlement payout failed; its funds are back in the balance.",
    "payout_destination.added": "A settlement account was put on file for the merchant.",
    "webhook_endpoint.failing": "One of the merchant's endpoints failed every attempt of a"
    " delivery.",
    "commerce.stock_low": "A supplier's variant fell below its low-stock threshold.",
    "commerce_order.paid": "A shopper paid an order of the supplier's: pack and ship it.",
    "commerce_order.payment_failed": "An order's payment was refused; nothing is to ship.",
    "commerce_order.packed": "The order was marked packed.",
    "commerce_order.shipped": "The order shipped (carrier, tracking_number); it was charged.",
    "commerce_order.tracking_updated": "The order's tracking changed.",
    "commerce_order.delivered": "The order was delivered.",
    "commerce_order.cancelled": "The order was cancelled (the shopper's payment released or"
    " refunded).",
    "commerce_order.return_requested": "The shopper is sending units back (refund_id).",
    "commerce_order.partially_returned": "Returned units were received; more are outstanding.",
    "commerce_order.returned": "Every unit of the order came back.",
    "commerce_order.refunded": "Part or all of the order was refunded (refund_minor).",
}
# Sent by the "send a test event" route to one endpoint, whatever it subscribes to.
TEST_EVENT_TYPE = "webhook_endpoint.test"
ENDPOINT_FAILING = "webhook_endpoint.failing"

MINOR_SUFFIX = "_minor"

ScaleOf = Callable[[str], int | None]


def envelope(
    event_type: str, occurred_at: datetime, payload: dict[str, Any], scale_of: ScaleOf
) -> dict[str, Any]:
    """The body merchants receive for an event, before serialization."""
    return {
        "type": event_type,
        "timestamp": occurred_at.isoformat(),
        "data": public_data(payload, scale_of),
    }


def public_data(payload: dict[str, Any], scale_of: ScaleOf) -> dict[str, Any]:
    """The payload with amounts in major units; amounts of an unknown scale stay minor."""
    currency = payload.get("currency")
    scale = scale_of(currency) if isinstance(currency, str) else None
    data: dict[str, Any] = {}
    for key, value in payload.items():
        if key.endswith(MINOR_SUFFIX) and scale is not None and _is_integer(value):
            data[key.removesuffix(MINOR_SUFFIX)] = format_minor(int(value), scale)
        else:
            data[key] = value
    return data


def _is_integer(value: Any) -> bool:
    """An amount as the catalog writes it: an int, or a string of an optional - and digits."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.removeprefix("-").isascii() and \
        value.removeprefix("-").isdigit()
