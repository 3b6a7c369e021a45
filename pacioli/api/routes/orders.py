"""Checkout and orders: shoppers check out and follow, cancel and return their orders
(/v1/checkout, /v1/checkouts/..., /v1/orders/..., with their session token); suppliers
see and move theirs (/v1/merchants/me/orders/..., with their secret key). Each sees only
their own: another's order is a 404.

While the app runs, its lifespan registers the callback handler that settles card
checkouts (`with_order_handlers`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Request, Response

from pacioli.api.auth import CurrentMerchant, CurrentUser, IdempotencyKeyHeader
from pacioli.api.deps import PAGE_LIMIT_DEFAULT, REPLAYED_HEADER, PageLimit, ScalesDep
from pacioli.api.routes import API_PREFIX
from pacioli.api.routes.funding import app_chart, app_gateway
from pacioli.api.schemas.common import Page
from pacioli.api.schemas.orders import (
    CancelRequest,
    CheckoutCreate,
    CheckoutPublic,
    OrderPublic,
    RefundCreate,
    RefundPublic,
    ReturnCreate,
    ShipRequest,
    TrackingUpdate,
)
from pacioli.commerce.checkout_records import CheckoutRequest
from pacioli.commerce.order_services import (
    OrderServices,
    order_services,
    register_checkout_handler,
)

router = APIRouter(tags=["checkout and orders"])
ORDERS = f"{API_PREFIX}/orders"
SUPPLIER_ORDERS = f"{API_PREFIX}/merchants/me/orders"

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def with_order_handlers(inner: Lifespan) -> Lifespan:
    """`inner`, plus the handler that settles card checkouts on gateway callbacks."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            unregister = register_checkout_handler(
                app.state.engine, app.state.ledger, app_chart(app), app_gateway(app))
            try:
                yield
            finally:
                unregister()

    return lifespan


async def get_order_services(request: Request) -> OrderServices:
    """The app's services, built once per ledger (a restarted app opens a new ledger).

    Asyncio (building them does no I/O), so a request does not hop to a thread for it."""
    app = request.app
    cached = getattr(app.state, "order_services", None)
    if cached is None or cached[0] is not app.state.ledger:
        cached = app.state.order_services = (app.state.ledger, order_services(
            app.state.engine, app.state.ledger, app_chart(app), app_gateway(app)))
    return cached[1]


ServicesDep = Annotated[OrderServices, Depends(get_order_services)]


# Shoppers.


@router.post(f"{API_PREFIX}/checkout", status_code=201,
             summary="Turn the cart into paid orders (one per supplier)",
             responses={202: {"description": "The card has not answered yet: the checkout"
                              " is awaiting_payment (refresh it, or wait for the callback)."}})
def checkout(body: CheckoutCreate, user: CurrentUser, key: IdempotencyKeyHeader,
             services: ServicesDep, scales: ScalesDep, response: Response) -> CheckoutPublic:
    """The cart is re-priced and its stock reserved; the total must be the one shown
    (`price_changed` otherwise) and the cart at the version shown (`stale_cart_version`).
    A refused payment is a problem document with the refusal's code (`card_declined`,
    `insufficient_funds` ...); its checkout and orders stay recorded as payment_failed."""
    currency = body.expected_total.currency
    request = CheckoutRequest(
        cart_id=body.cart_id, cart_version=body.cart_version,
        expected_total_minor=scales.to_minor(body.expected_total.amount, currency),
        currency=currency, payment_method=body.payment.method,
        instrument_id=getattr(body.payment, "instrument_id", None),
        shipping_address=body.shipping_address.model_dump(),
    )
    answer = services.checkout.place(user.id, request, idempotency_key=key)
    if answer.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    if answer.value.status == "awaiting_payment":
        response.status_code = 202
    return CheckoutPublic.of(answer.value, scales)


@router.get(f"{API_PREFIX}/checkouts/{{checkout_id}}", summary="A checkout and its orders")
def get_checkout(checkout_id: UUID, user: CurrentUser, services: ServicesDep,
                 scales: ScalesDep) -> CheckoutPublic:
    return CheckoutPublic.of(services.checkout.get(user.id, checkout_id), scales)


@router.post(f"{API_PREFIX}/checkouts/{{checkout_id}}/refresh",
             summary="Ask the gateway how an unpaid card checkout stands")
def refresh_checkout(checkout_id: UUID, user: CurrentUser, services: ServicesDep,
                     scales: ScalesDep) -> CheckoutPublic:
    return CheckoutPublic.of(services.checkout.refresh(user.id, checkout_id), scales)


@router.get(ORDERS, summary="The shopper's orders, newest first")
def list_orders(user: CurrentUser, services: ServicesDep, scales: ScalesDep,
                status: str | None = None, limit: PageLimit = PAGE_LIMIT_DEFAULT,
                starting_after: UUID | None = None) -> Page[OrderPublic]:
    rows = services.orders.list(user_id=user.id, status=status, limit=limit + 1,
                                starting_after=starting_after)
    return Page.of(rows, limit, lambda o: OrderPublic.of(o, scales), lambda o: o.id)


@router.get(f"{ORDERS}/{{order_id}}", summary="One of the shopper's orders, with its timeline")
def get_order(order_id: UUID, user: CurrentUser, services: ServicesDep,
              scales: ScalesDep) -> OrderPublic:
    return OrderPublic.of(services.orders.get(order_id, user_id=user.id), scales)


@router.post(f"{ORDERS}/{{order_id}}/cancel", summary="Cancel an order")
def cancel_order(order_id: UUID, user: CurrentUser, services: ServicesDep, scales: ScalesDep,
                 body: CancelRequest | None = None) -> OrderPublic:
    """Before shipping the payment is released (nothing was taken); a shipped order is
    refunded in full. Cancelling a cancelled order returns it."""
    order = services.orders.cancel(order_id, user_id=user.id,
                                   refund_to=body.refund_to if body else None)
    return OrderPublic.of(order, scales)


@router.post(f"{ORDERS}/{{order_id}}/returns", status_code=201,
             summary="Send units of a delivered order back")
def request_return(order_id: UUID, body: ReturnCreate, user: CurrentUser,
                   key: IdempotencyKeyHeader, services: ServicesDep, scales: ScalesDep,
                   response: Response) -> RefundPublic:
    """The refund (to the card it was paid with, or `refund_to` the wallet) is made when
    the supplier receives the goods; returning the last units refunds the shipping too."""
    answer = services.refunds.request_return(
        user.id, order_id, [(line.line_id, line.quantity) for line in body.lines],
        destination=body.refund_to, idempotency_key=key,
    )
    return _refund_answer(answer, response, scales)


@router.get(f"{ORDERS}/{{order_id}}/refunds", summary="The order's refunds and returns")
def list_refunds(order_id: UUID, user: CurrentUser, services: ServicesDep,
                 scales: ScalesDep) -> list[RefundPublic]:
    services.orders.get(order_id, user_id=user.id)
    return [RefundPublic.of(r, scales) for r in services.refunds.list(order_id)]


# Suppliers.


@router.get(SUPPLIER_ORDERS, summary="The supplier's orders, newest first")
def list_supplier_orders(merchant: CurrentMerchant, services: ServicesDep, scales: ScalesDep,
                         status: str | None = None, limit: PageLimit = PAGE_LIMIT_DEFAULT,
                         starting_after: UUID | None = None) -> Page[OrderPublic]:
    rows = services.orders.list(supplier_id=merchant.id, status=status, limit=limit + 1,
                                starting_after=starting_after)
    return Page.of(rows, limit, lambda o: OrderPublic.of(o, scales), lambda o: o.id)


@router.get(f"{SUPPLIER_ORDERS}/{{order_id}}", summary="One of the supplier's orders")
def get_supplier_order(order_id: UUID, merchant: CurrentMerchant, services: ServicesDep,
                       scales: ScalesDep) -> OrderPublic:
    return OrderPublic.of(services.orders.get(order_id, supplier_id=merchant.id), scales)


@router.post(f"{SUPPLIER_ORDERS}/{{order_id}}/pack", summary="Mark a paid order packed")
def pack(order_id: UUID, merchant: CurrentMerchant, services: ServicesDep,
         scales: ScalesDep) -> OrderPublic:
    return OrderPublic.of(services.orders.pack(merchant.id, order_id), scales)


@router.post(f"{SUPPLIER_ORDERS}/{{order_id}}/ship",
             summary="Hand the order to the carrier: the payment is captured")
def ship(order_id: UUID, body: ShipRequest, merchant: CurrentMerchant, services: ServicesDep,
         scales: ScalesDep) -> OrderPublic:
    order = services.orders.ship(merchant.id, order_id, carrier=body.carrier,
                                 tracking_number=body.tracking_number)
    return OrderPublic.of(order, scales)


@router.post(f"{SUPPLIER_ORDERS}/{{order_id}}/tracking", summary="A tracking update")
def update_tracking(order_id: UUID, body: TrackingUpdate, merchant: CurrentMerchant,
                    services: ServicesDep, scales: ScalesDep) -> OrderPublic:
    order = services.orders.update_tracking(merchant.id, order_id, carrier=body.carrier,
                                            tracking_number=body.tracking_number,
                                            note=body.note)
    return OrderPublic.of(order, scales)


@router.post(f"{SUPPLIER_ORDERS}/{{order_id}}/deliver", summary="Mark a shipped order delivered")
def deliver(order_id: UUID, merchant: CurrentMerchant, services: ServicesDep,
            scales: ScalesDep) -> OrderPublic:
    return OrderPublic.of(services.orders.deliver(merchant.id, order_id), scales)


@router.post(f"{SUPPLIER_ORDERS}/{{order_id}}/cancel",
             summary="Cancel an unshipped order (the payment is released)")
def supplier_cancel(order_id: UUID, merchant: CurrentMerchant, services: ServicesDep,
                    scales: ScalesDep) -> OrderPublic:
    return OrderPublic.of(services.orders.cancel(order_id, supplier_id=merchant.id), scales)


@router.post(f"{SUPPLIER_ORDERS}/{{order_id}}/refunds", status_code=201,
             summary="Refund (part of) a captured order, the way it was paid")
def supplier_refund(order_id: UUID, body: RefundCreate, merchant: CurrentMerchant,
                    key: IdempotencyKeyHeader, services: ServicesDep, scales: ScalesDep,
                    response: Response) -> RefundPublic:
    order = services.orders.get(order_id, supplier_id=merchant.id)
    amount = None if body.amount is None else scales.to_minor(body.amount, order.currency)
    answer = services.refunds.refund_by_supplier(merchant.id, order_id, amount,
                                                 idempotency_key=key)
    return _refund_answer(answer, response, scales)


@router.post(f"{SUPPLIER_ORDERS}/{{order_id}}/returns/{{refund_id}}/receive",
             summary="The returned goods arrived: restock them and refund")
def receive_return(order_id: UUID, refund_id: UUID, merchant: CurrentMerchant,
                   services: ServicesDep, scales: ScalesDep) -> RefundPublic:
    refund = services.refunds.receive_return(merchant.id, order_id, refund_id)
    return RefundPublic.of(refund, scales)


@router.get(f"{SUPPLIER_ORDERS}/{{order_id}}/refunds", summary="The order's refunds and returns")
def list_supplier_refunds(order_id: UUID, merchant: CurrentMerchant, services: ServicesDep,
                          scales: ScalesDep) -> list[RefundPublic]:
    services.orders.get(order_id, supplier_id=merchant.id)
    return [RefundPublic.of(r, scales) for r in services.refunds.list(order_id)]


def _refund_answer(answer, response: Response, scales) -> RefundPublic:
    if answer.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return RefundPublic.of(answer.value, scales)
