"""What a checkout is asked and answers, the checks of the request and of the re-priced
cart, and reading a checkout back (checkout.py does the steps)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import Engine, select

from pacioli.commerce import carts
from pacioli.commerce import errors as ce
from pacioli.commerce import order_errors as oe
from pacioli.commerce.order_payments import CARD, WALLET
from pacioli.commerce.order_records import Order, load_orders
from pacioli.commerce.order_tables import commerce_checkouts, commerce_orders
from pacioli.payments import records

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    cart_id: UUID
    cart_version: int
    expected_total_minor: int
    currency: str
    payment_method: str  # wallet, card
    instrument_id: UUID | None
    shipping_address: dict[str, str]

    def hash(self) -> str:
        return records.request_hash(
            self.cart_id, self.cart_version, self.expected_total_minor, self.currency,
            self.payment_method, self.instrument_id, sorted(self.shipping_address.items()),
        )


@dataclass(frozen=True, slots=True)
class CheckoutRecord:
    id: UUID
    user_id: UUID
    cart_id: UUID
    status: str  # placed, awaiting_payment, paid, payment_failed
    failure_code: str | None
    payment_method: str
    currency: str
    total_minor: int
    created_at: datetime
    completed_at: datetime | None
    orders: tuple[Order, ...]


def read_checkout(engine: Engine, checkout_id: UUID) -> CheckoutRecord | None:
    """The checkout with its orders, their lines and timelines (None if there is none)."""
    o = commerce_orders
    with engine.connect() as connection:
        row = connection.execute(
            select(commerce_checkouts).where(commerce_checkouts.c.id == checkout_id)
        ).first()
        if row is None:
            return None
        orders = connection.execute(
            select(o).where(o.c.checkout_id == checkout_id).order_by(o.c.id)
        ).all()
        return record_of(row, load_orders(connection, orders, with_history=True))


def record_of(row, orders: Sequence[Order]) -> CheckoutRecord:
    """The record of a `commerce_checkouts` row and its orders (in id order)."""
    return CheckoutRecord(
        id=row.id, user_id=row.user_id, cart_id=row.cart_id, status=row.status,
        failure_code=row.failure_code, payment_method=row.payment_method,
        currency=row.currency, total_minor=row.total_minor, created_at=row.created_at,
        completed_at=row.completed_at, orders=tuple(orders),
    )


def check_request(request: CheckoutRequest) -> None:
    if request.payment_method not in (WALLET, CARD):
        raise oe.InvalidCheckout("the payment method is wallet or card")
    if (request.payment_method == CARD) != (request.instrument_id is not None):
        raise oe.InvalidCheckout("a card payment names the card (instrument_id); a wallet"
                                 " payment names none")
    if type(request.expected_total_minor) is not int or request.expected_total_minor <= 0:
        raise oe.InvalidCheckout("the expected total is a positive amount")


def check_priced(priced, request: CheckoutRequest) -> None:
    """Refuse a cart that moved, lost stock, is empty or costs other than what was shown."""
    if priced.cart_version != request.cart_version:
        raise ce.StaleCart(f"the cart is at version {priced.cart_version}, not"
                           f" {request.cart_version}; read it again")
    if priced.unavailable:
        raise ce.OutOfStock(priced.unavailable[0],
                            f"cart line {priced.unavailable[0]} is no longer available")
    if not priced.lines:
        raise oe.CartEmpty("the cart has nothing to buy")
    if (priced.currency, priced.total_minor) != (request.currency,
                                                  request.expected_total_minor):
        raise oe.PriceChanged(
            f"the cart now costs {priced.total_minor} minor units of {priced.currency};"
            " show the shopper the new total"
        )


def empty_cart_if_unchanged(connection, checkout) -> None:
    """Empty the cart the checkout bought, unless the shopper changed it meanwhile.

    No savepoint: `empty_cart` raises only before it changed anything (its conditional
    update matched no row), so the caller's transaction is as it was."""
    try:
        carts.empty_cart(connection, checkout.cart_id, version=checkout.cart_version)
    except (ce.StaleCart, ce.CartNotFound):
        log.info("cart %s changed during checkout %s; not emptied", checkout.cart_id,
                 checkout.id)
