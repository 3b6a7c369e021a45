"""What the checkout, order and refund tests (and the concurrency test) share: a shop
wired on the real ledger and the sandbox gateway, stocked products, carts, funded wallets
and linked cards.

Suppliers, resellers and shoppers are bare ids here: the service layer needs no user or
merchant row (the API tests go through sign-up and merchant registration).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import Engine, select

from pacioli.commerce import cart_edits, carts, catalog, pricing, resellers
from pacioli.commerce.catalog_tables import commerce_variants
from pacioli.commerce.checkout import Checkout, CheckoutRequest
from pacioli.commerce.order_payments import OrderPayments
from pacioli.commerce.orders import Orders
from pacioli.commerce.refunds import Refunds
from pacioli.gateways.sandbox import SandboxGateway, SandboxSettings, magic
from pacioli.ledger import Ledger, credit, debit
from pacioli.payments.chart import Chart, Purpose
from pacioli.payments.instruments import Instruments

IDLE_SECONDS = 3600
ADDRESS = {"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London",
           "postal_code": "SW1Y 4JH", "country": "GB"}


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Shop:
    engine: Engine
    ledger: Ledger
    chart: Chart
    gateway: SandboxGateway
    checkout: Checkout
    orders: Orders
    refunds: Refunds
    instruments: Instruments


def make_shop(engine: Engine, ledger: Ledger, *, clock: Clock | None = None,
              commission_bps: int = 500, gateway: SandboxGateway | None = None) -> Shop:
    chart = Chart(engine, ledger)
    gateway = gateway or SandboxGateway(engine, SandboxSettings(), clock=clock or Clock())
    payments = OrderPayments(ledger, chart, gateway)
    instruments = Instruments(engine, gateway)
    refunds = Refunds(engine, payments)
    return Shop(engine, ledger, chart, gateway,
                Checkout(engine, payments, instruments, commission_bps=commission_bps),
                Orders(engine, payments, refunds), refunds, instruments)


def supplier(engine: Engine, *, shipping_minor: int | None = None,
             free_above_minor: int | None = None, currency: str = "USD") -> UUID:
    merchant_id = uuid.uuid4()
    catalog.register_supplier(engine, merchant_id)
    if shipping_minor is not None:
        catalog.set_shipping_rate(engine, merchant_id, currency, fee_minor=shipping_minor,
                                  free_above_minor=free_above_minor)
    return merchant_id


def product(engine: Engine, supplier_id: UUID, *, price_minor: int = 1000, stock: int = 10,
            currency: str = "USD", category: str = "general", name: str = "Teapot"):
    """A product with one variant; (product id, variant id)."""
    draft = catalog.ProductDraft(
        name=name, currency=currency, category=category,
        variants=(catalog.VariantDraft(sku=f"sku-{uuid.uuid4().hex[:8]}",
                                       price_minor=price_minor, stock_available=stock),),
    )
    made, _ = catalog.create_product(engine, supplier_id, draft,
                                     idempotency_key=uuid.uuid4().hex)
    return made.id, made.variants[0].id


def reseller_catalog(engine: Engine, product_id: UUID, *, margin_minor: int) -> tuple[UUID, str]:
    """A new reseller selling `product_id` with this margin; (reseller id, catalog slug)."""
    reseller_id = uuid.uuid4()
    resellers.register_reseller(engine, reseller_id)
    slug = f"shop-{uuid.uuid4().hex[:10]}"
    made = resellers.create_catalog(engine, reseller_id, slug=slug, title="Picks")
    resellers.set_catalog_item(engine, reseller_id, made.id, product_id,
                               margin_minor=margin_minor)
    return reseller_id, slug


def cart_with(engine: Engine, user_id: UUID, items, *, slug: str | None = None):
    """The user's cart with `items` ((variant id, quantity) ...) added."""
    cart = carts.user_cart(engine, user_id, idle_seconds=IDLE_SECONDS)
    access = carts.CartAccess(user_id=user_id)
    for variant_id, quantity in items:
        cart = cart_edits.add_item(engine, cart.id, access, variant_id=variant_id,
                                   quantity=quantity, catalog_slug=slug,
                                   idle_seconds=IDLE_SECONDS)
    return cart


def priced(engine: Engine, cart_id: UUID) -> pricing.PricedCart:
    with engine.connect() as connection:
        return pricing.price_cart(connection, cart_id, now=datetime.now(UTC))


def request_for(engine: Engine, cart_id: UUID, *, method: str = "wallet",
                instrument_id: UUID | None = None, total_minor: int | None = None
                ) -> CheckoutRequest:
    """What the shopper sends after seeing the cart's price now."""
    price = priced(engine, cart_id)
    return CheckoutRequest(
        cart_id=cart_id, cart_version=price.cart_version,
        expected_total_minor=price.total_minor if total_minor is None else total_minor,
        currency=price.currency, payment_method=method, instrument_id=instrument_id,
        shipping_address=ADDRESS,
    )


def fund(shop: Shop, user_id: UUID, amount_minor: int, currency: str = "USD") -> None:
    shop.ledger.transfer(
        [debit(shop.chart.platform(Purpose.BANK_SETTLEMENT, currency), amount_minor),
         credit(shop.chart.wallet(user_id, currency), amount_minor)],
        idempotency_key=uuid.uuid4().hex,
    )


def card(shop: Shop, user_id: UUID, number: str = magic.CARD_SUCCEEDS) -> UUID:
    linked = shop.instruments.link_card(
        user_id=user_id, number=number, exp_month=12, exp_year=2040, cvc="123",
        idempotency_key=uuid.uuid4().hex,
    )
    return linked.value.id


def stock(engine: Engine, variant_id: UUID) -> tuple[int, int, int]:
    """(available, reserved, sold)."""
    v = commerce_variants
    with engine.connect() as connection:
        row = connection.execute(
            select(v.c.stock_available, v.c.stock_reserved, v.c.stock_sold)
            .where(v.c.id == variant_id)
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


def balance(shop: Shop, account_id: UUID) -> tuple[int, int]:
    """(available, balance) of an account."""
    account = shop.ledger.get_account(account_id)
    return account.available_minor, account.balance_minor


def paid_order(shop: Shop, user_id: UUID, *, price_minor: int = 1000, quantity: int = 1,
               shipping_minor: int | None = None, method: str = "wallet",
               card_number: str = magic.CARD_SUCCEEDS, category: str = "general",
               margin_minor: int | None = None):
    """A new supplier's product bought by `user_id`: (order, variant id)."""
    engine = shop.engine
    seller = supplier(engine, shipping_minor=shipping_minor)
    product_id, variant = product(engine, seller, price_minor=price_minor,
                                  stock=quantity + 5, category=category)
    slug = None
    if margin_minor is not None:
        _, slug = reseller_catalog(engine, product_id, margin_minor=margin_minor)
    cart = cart_with(engine, user_id, [(variant, quantity)], slug=slug)
    instrument = None
    if method == "wallet":
        fund(shop, user_id, priced(engine, cart.id).total_minor)
    else:
        instrument = card(shop, user_id, card_number)
    request = request_for(engine, cart.id, method=method, instrument_id=instrument)
    checkout = shop.checkout.place(user_id, request, idempotency_key=uuid.uuid4().hex).value
    [order] = checkout.orders
    return order, variant


def delivered(shop: Shop, order):
    """The order packed, shipped and delivered by its supplier."""
    shop.orders.ship(order.supplier_id, order.id, carrier="UPS", tracking_number="1Z999")
    return shop.orders.deliver(order.supplier_id, order.id)
