"""Checkouts, orders, refunds and returns on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StrictInt, StrictStr

from pacioli.api.schemas.catalog import MoneyPublic
from pacioli.api.schemas.common import RequestModel
from pacioli.api.schemas.money import AmountStr, AssetScales
from pacioli.commerce.checkout_records import CheckoutRecord
from pacioli.commerce.order_records import HistoryEntry, Order, OrderLine
from pacioli.commerce.refunds import Refund

Text = Annotated[StrictStr, Field(min_length=1, max_length=200)]


class MoneyIn(RequestModel):
    amount: AmountStr
    currency: StrictStr = Field(min_length=3, max_length=12)


class WalletPayment(RequestModel):
    method: Literal["wallet"]


class CardPayment(RequestModel):
    method: Literal["card"]
    instrument_id: UUID = Field(description="One of the shopper's linked cards (/v1/me/cards).")


class ShippingAddress(RequestModel):
    name: Text
    line1: Text
    line2: Text | None = None
    city: Text
    region: Text | None = None
    postal_code: Annotated[StrictStr, Field(min_length=1, max_length=20)]
    country: StrictStr = Field(pattern="^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2.")


class CheckoutCreate(RequestModel):
    cart_id: UUID
    cart_version: StrictInt = Field(ge=1, description="The version of the cart shown.")
    expected_total: MoneyIn = Field(
        description="The total the shopper was shown; another total now is price_changed."
    )
    payment: WalletPayment | CardPayment = Field(discriminator="method")
    shipping_address: ShippingAddress


class LinePublic(BaseModel):
    id: UUID
    product_id: UUID
    variant_id: UUID
    reseller_id: UUID | None
    name: str
    quantity: int
    returned_quantity: int
    unit_price: MoneyPublic
    catalogue_discount: MoneyPublic
    order_discount: MoneyPublic
    tax: MoneyPublic
    total: MoneyPublic

    @classmethod
    def of(cls, line: OrderLine, currency: str, scales: AssetScales) -> LinePublic:
        def money(amount: int) -> MoneyPublic:
            return MoneyPublic.of(amount, currency, scales)

        return cls(
            id=line.id, product_id=line.product_id, variant_id=line.variant_id,
            reseller_id=line.reseller_id, name=line.name, quantity=line.quantity,
            returned_quantity=line.returned_quantity, unit_price=money(line.unit_price_minor),
            catalogue_discount=money(line.catalogue_discount_minor),
            order_discount=money(line.order_discount_minor), tax=money(line.tax_minor),
            total=money(line.total_minor),
        )


class HistoryPublic(BaseModel):
    event: str = Field(description="paid, packed, shipped, tracking_updated, delivered,"
                       " cancelled, refunded, return_requested, partially_returned ...")
    carrier: str | None
    tracking_number: str | None
    note: str | None
    at: datetime

    @classmethod
    def of(cls, entry: HistoryEntry) -> HistoryPublic:
        return cls(event=entry.event, carrier=entry.carrier,
                   tracking_number=entry.tracking_number, note=entry.note,
                   at=entry.created_at)


class PaymentPublic(BaseModel):
    method: Literal["wallet", "card"]
    status: str = Field(description="pending, authorized, capturing, captured, voiding,"
                        " voided or failed")
    instrument_id: UUID | None
    failure_code: str | None


class OrderPublic(BaseModel):
    id: UUID
    checkout_id: UUID
    supplier_id: UUID
    status: str = Field(description="placed, paid, packed, shipped, delivered, cancelled,"
                        " payment_failed, partially_returned or returned")
    payment: PaymentPublic
    subtotal: MoneyPublic
    discount: MoneyPublic
    tax: MoneyPublic
    shipping: MoneyPublic
    total: MoneyPublic
    captured: MoneyPublic
    refunded: MoneyPublic
    carrier: str | None
    tracking_number: str | None
    shipping_address: dict[str, str | None]
    lines: list[LinePublic]
    history: list[HistoryPublic]
    created_at: datetime
    paid_at: datetime | None
    packed_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    returned_at: datetime | None

    @classmethod
    def of(cls, order: Order, scales: AssetScales) -> OrderPublic:
        def money(amount: int) -> MoneyPublic:
            return MoneyPublic.of(amount, order.currency, scales)

        return cls(
            id=order.id, checkout_id=order.checkout_id, supplier_id=order.supplier_id,
            status=order.status,
            payment=PaymentPublic(method=order.payment_method, status=order.payment_status,
                                  instrument_id=order.instrument_id,
                                  failure_code=order.failure_code),
            subtotal=money(order.subtotal_minor), discount=money(order.discount_minor),
            tax=money(order.tax_minor), shipping=money(order.shipping_minor),
            total=money(order.total_minor), captured=money(order.captured_minor),
            refunded=money(order.refunded_minor), carrier=order.carrier,
            tracking_number=order.tracking_number, shipping_address=order.shipping_address,
            lines=[LinePublic.of(line, order.currency, scales) for line in order.lines],
            history=[HistoryPublic.of(entry) for entry in order.history],
            created_at=order.created_at, paid_at=order.paid_at, packed_at=order.packed_at,
            shipped_at=order.shipped_at, delivered_at=order.delivered_at,
            cancelled_at=order.cancelled_at, returned_at=order.returned_at,
        )


class CheckoutPublic(BaseModel):
    id: UUID
    cart_id: UUID
    status: Literal["placed", "awaiting_payment", "paid", "payment_failed"]
    failure_code: str | None
    payment_method: Literal["wallet", "card"]
    total: MoneyPublic
    orders: list[OrderPublic] = Field(description="One per supplier.")
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, checkout: CheckoutRecord, scales: AssetScales) -> CheckoutPublic:
        return cls(
            id=checkout.id, cart_id=checkout.cart_id, status=checkout.status,
            failure_code=checkout.failure_code, payment_method=checkout.payment_method,
            total=MoneyPublic.of(checkout.total_minor, checkout.currency, scales),
            orders=[OrderPublic.of(order, scales) for order in checkout.orders],
            created_at=checkout.created_at, completed_at=checkout.completed_at,
        )


class CancelRequest(RequestModel):
    refund_to: Literal["wallet", "card"] | None = Field(
        None, description="For a shipped order: where the refund goes (default: how it was"
        " paid)."
    )


class ShipRequest(RequestModel):
    carrier: Text
    tracking_number: Text


class TrackingUpdate(ShipRequest):
    note: Annotated[StrictStr, Field(max_length=500)] | None = None


class ReturnLine(RequestModel):
    line_id: UUID
    quantity: StrictInt = Field(ge=1)


class ReturnCreate(RequestModel):
    lines: list[ReturnLine] = Field(min_length=1, max_length=100)
    refund_to: Literal["wallet", "card"] | None = None


class RefundCreate(RequestModel):
    amount: AmountStr | None = Field(None, description="Without an amount: all that is left.")


class RefundPublic(BaseModel):
    id: UUID
    order_id: UUID
    reason: Literal["cancellation", "return", "supplier"]
    destination: Literal["wallet", "card"]
    amount: MoneyPublic
    status: Literal["requested", "created", "pending", "succeeded", "failed"]
    failure_code: str | None
    lines: list[ReturnLine]
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, refund: Refund, scales: AssetScales) -> RefundPublic:
        return cls(
            id=refund.id, order_id=refund.order_id, reason=refund.reason,
            destination=refund.destination,
            amount=MoneyPublic.of(refund.amount_minor, refund.currency, scales),
            status=refund.status, failure_code=refund.failure_code,
            lines=[ReturnLine(line_id=line_id, quantity=quantity)
                   for line_id, quantity in refund.lines],
            created_at=refund.created_at, completed_at=refund.completed_at,
        )
