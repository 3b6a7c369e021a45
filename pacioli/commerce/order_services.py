"""Checkout, orders and refunds wired together on one engine, ledger, chart and gateway,
for the API, the workers and the demo; and the gateway callbacks that settle checkouts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from pacioli.commerce.checkout import Checkout
from pacioli.commerce.order_payments import OrderPayments
from pacioli.commerce.order_settings import OrderSettings, order_settings
from pacioli.commerce.orders import Orders
from pacioli.commerce.refunds import Refunds
from pacioli.gateways.base import PaymentGateway
from pacioli.gateways.callbacks import GatewayEvent, HandlerRegistry
from pacioli.gateways.callbacks import handlers as default_registry
from pacioli.ledger import Ledger
from pacioli.payments.chart import Chart
from pacioli.payments.instruments import Instruments


@dataclass(frozen=True, slots=True)
class OrderServices:
    checkout: Checkout
    orders: Orders
    refunds: Refunds


def order_services(engine: Engine, ledger: Ledger, chart: Chart, gateway: PaymentGateway,
                   settings: OrderSettings | None = None) -> OrderServices:
    settings = settings or order_settings()
    payments = OrderPayments(ledger, chart, gateway)
    refunds = Refunds(engine, payments)
    return OrderServices(
        checkout=Checkout(engine, payments, Instruments(engine, gateway),
                          commission_bps=settings.commission_bps,
                          reservation_seconds=settings.reservation_seconds),
        orders=Orders(engine, payments, refunds),
        refunds=refunds,
    )


def register_checkout_handler(
    engine: Engine, ledger: Ledger, chart: Chart, gateway: PaymentGateway, *,
    registry: HandlerRegistry | None = None,
) -> Callable[[], None]:
    """Settle card checkouts on `payment.*` callbacks of `gateway` (top-ups' handler
    skips them, this one skips top-ups); returns the function that removes it."""
    services = order_services(engine, ledger, chart, gateway)

    def on_payment(event: GatewayEvent) -> None:
        if event.gateway == gateway.name:
            services.checkout.handle_event(event)

    return (registry or default_registry).register("payment.", on_payment)
