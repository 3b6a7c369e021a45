"""Checkout on the real ledger and the sandbox gateway: wallet and card payments, every
card outcome, replays, the refusals that change nothing, several suppliers, resellers,
and the stock, holds, cart and events each leaves behind."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from sqlalchemy import func, select

from pacioli.commerce import errors as ce
from pacioli.commerce import order_errors as oe
from pacioli.commerce.checkout import SWEEP_AGE_SECONDS
from pacioli.commerce.order_tables import commerce_checkouts, commerce_orders
from pacioli.gateways.sandbox import magic
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.ledger.storage.tables import outbox
from pacioli.payments.chart import Purpose
from tests.integration.order_support import (
    Clock,
    balance,
    card,
    cart_with,
    fund,
    make_shop,
    priced,
    product,
    request_for,
    reseller_catalog,
    stock,
    supplier,
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def shop(engine, ledger, clock):
    return make_shop(engine, ledger, clock=clock)


@pytest.fixture
def user_id() -> uuid.UUID:
    return uuid.uuid4()


def checkouts_of(engine, user_id) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(commerce_checkouts)
            .where(commerce_checkouts.c.user_id == user_id)
        ).scalar_one()


def events_of(engine, order_id) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(
            select(outbox.c.event_type).where(outbox.c.aggregate_id == str(order_id))
            .order_by(outbox.c.id)
        ).scalars())


def test_a_wallet_checkout_holds_the_total_commits_the_stock_and_empties_the_cart(
    shop, engine, user_id,
):
    seller = supplier(engine, shipping_minor=499)
    _, variant = product(engine, seller, price_minor=1250, stock=5)
    cart = cart_with(engine, user_id, [(variant, 2)])
    fund(shop, user_id, 10_000)
    answer = shop.checkout.place(user_id, request_for(engine, cart.id), idempotency_key="k1")
    checkout = answer.value
    assert (checkout.status, checkout.total_minor, answer.replayed) == ("paid", 2999, False)
    [order] = checkout.orders
    assert (order.status, order.payment_status, order.supplier_id) == ("paid", "authorized",
                                                                       seller)
    assert (order.shipping_minor, order.total_minor) == (499, 2999)
    assert stock(engine, variant) == (3, 0, 2)
    wallet = shop.chart.wallet(user_id, "USD")
    assert balance(shop, wallet) == (10_000 - 2999, 10_000)  # held, not yet taken
    assert priced(engine, cart.id).lines == ()
    assert events_of(engine, order.id) == ["commerce_order.paid"]
    assert [entry.event for entry in order.history] == ["paid"]


def test_the_same_key_replays_the_checkout_and_pays_once(shop, engine, user_id):
    _, variant = product(engine, supplier(engine), price_minor=700)
    cart = cart_with(engine, user_id, [(variant, 1)])
    fund(shop, user_id, 1000)
    request = request_for(engine, cart.id)
    first = shop.checkout.place(user_id, request, idempotency_key="same")
    again = shop.checkout.place(user_id, request, idempotency_key="same")
    assert again.replayed and again.value.id == first.value.id
    assert checkouts_of(engine, user_id) == 1
    assert balance(shop, shop.chart.wallet(user_id, "USD"))[0] == 300
    with pytest.raises(oe.IdempotencyKeyReusedForOrder):
        shop.checkout.place(user_id, request_for(engine, cart.id, total_minor=1),
                            idempotency_key="same")


def test_the_same_key_naming_another_cart_is_a_reused_key(shop, engine, user_id):
    """The key's probe rides on the cart's lock; a retry naming a cart that is not the
    user's is still answered by the key (409), not by the cart (404)."""
    _, variant = product(engine, supplier(engine), price_minor=700)
    cart = cart_with(engine, user_id, [(variant, 1)])
    fund(shop, user_id, 1000)
    request = request_for(engine, cart.id)
    shop.checkout.place(user_id, request, idempotency_key="same")
    elsewhere = dataclasses.replace(request, cart_id=uuid.uuid4())
    with pytest.raises(oe.IdempotencyKeyReusedForOrder):
        shop.checkout.place(user_id, elsewhere, idempotency_key="same")
    with pytest.raises(ce.CartNotFound):
        shop.checkout.place(user_id, elsewhere, idempotency_key="new")
    assert checkouts_of(engine, user_id) == 1


def test_a_wallet_short_of_funds_fails_releases_the_stock_and_keeps_the_cart(
    shop, engine, user_id,
):
    _, variant = product(engine, supplier(engine), price_minor=5000, stock=3)
    cart = cart_with(engine, user_id, [(variant, 1)])
    fund(shop, user_id, 100)
    request = request_for(engine, cart.id)
    with pytest.raises(oe.OrderPaymentFailed) as refused:
        shop.checkout.place(user_id, request, idempotency_key="poor")
    assert refused.value.code == "insufficient_funds"
    assert stock(engine, variant) == (3, 0, 0)
    assert len(priced(engine, cart.id).lines) == 1
    with pytest.raises(oe.OrderPaymentFailed):  # the replay answers the same
        shop.checkout.place(user_id, request, idempotency_key="poor")
    with engine.connect() as connection:
        order = connection.execute(
            select(commerce_orders).where(commerce_orders.c.user_id == user_id)
        ).one()
    assert (order.status, order.payment_status) == ("payment_failed", "failed")
    assert events_of(engine, order.id) == ["commerce_order.payment_failed"]
    # Funded, the shopper checks out again (a new key): the failed one does not block it.
    fund(shop, user_id, 5000)
    assert shop.checkout.place(user_id, request, idempotency_key="rich").value.status == "paid"


@pytest.mark.parametrize("change", ["version", "price", "stock"])
def test_a_stale_version_a_new_price_or_gone_stock_is_refused_and_changes_nothing(
    shop, engine, user_id, change,
):
    seller = supplier(engine)
    _, variant = product(engine, seller, price_minor=900, stock=2)
    cart = cart_with(engine, user_id, [(variant, 2)])
    fund(shop, user_id, 10_000)
    request = request_for(engine, cart.id)
    if change == "version":
        _, other = product(engine, seller, price_minor=100)
        cart_with(engine, user_id, [(other, 1)])
        expected = ce.StaleCart
    elif change == "price":
        request = request_for(engine, cart.id, total_minor=request.expected_total_minor - 1)
        expected = oe.PriceChanged
    else:
        _, third = product(engine, seller)
        buyer = uuid.uuid4()
        fund(shop, buyer, 10_000)
        rival = cart_with(engine, buyer, [(variant, 1)])
        shop.checkout.place(buyer, request_for(engine, rival.id), idempotency_key="rival")
        expected = ce.OutOfStock
    with pytest.raises(expected):
        shop.checkout.place(user_id, request, idempotency_key="stale")
    assert checkouts_of(engine, user_id) == 0
    assert balance(shop, shop.chart.wallet(user_id, "USD")) == (10_000, 10_000)


def test_a_card_checkout_authorizes_and_holds_from_the_processor(shop, engine, user_id):
    _, variant = product(engine, supplier(engine), price_minor=4200)
    cart = cart_with(engine, user_id, [(variant, 1)])
    instrument = card(shop, user_id)
    answer = shop.checkout.place(
        user_id, request_for(engine, cart.id, method="card", instrument_id=instrument),
        idempotency_key="card")
    [order] = answer.value.orders
    assert (answer.value.status, order.payment_status) == ("paid", "authorized")
    assert shop.gateway.fetch_status(order.gateway_reference).status == "authorized"
    escrow = shop.chart.platform(Purpose.ORDER_ESCROW, "USD")
    hold = shop.ledger.get_transfer(order.hold_transfer_id)
    clearing = shop.chart.platform(Purpose.PROCESSOR_CLEARING, "USD", scope="sandbox")
    assert {posting.account_id for posting in hold.legs()} == {clearing, escrow}


@pytest.mark.parametrize("number, code", [
    (magic.CARD_DECLINED, "card_declined"),
    (magic.CARD_INSUFFICIENT_FUNDS, "insufficient_funds"),
    (magic.CARD_PROCESSING_ERROR, "processing_error"),
])
def test_a_refused_card_voids_the_hold_and_releases_the_stock(shop, engine, user_id, number,
                                                               code):
    _, variant = product(engine, supplier(engine), price_minor=4200, stock=1)
    cart = cart_with(engine, user_id, [(variant, 1)])
    request = request_for(engine, cart.id, method="card",
                          instrument_id=card(shop, user_id, number))
    with pytest.raises(oe.OrderPaymentFailed) as refused:
        shop.checkout.place(user_id, request, idempotency_key="refused")
    assert refused.value.code == code
    assert stock(engine, variant) == (1, 0, 0)
    with engine.connect() as connection:
        order = connection.execute(
            select(commerce_orders).where(commerce_orders.c.user_id == user_id)).one()
    assert (order.status, order.payment_status, order.failure_code) == (
        "payment_failed", "voided", code)
    assert shop.ledger.get_transfer(order.hold_transfer_id).pending_status == "voided"


def test_the_timeout_card_leaves_the_order_unpaid_until_a_refresh_fails_it(
    shop, engine, user_id, clock,
):
    _, variant = product(engine, supplier(engine), price_minor=4200, stock=1)
    cart = cart_with(engine, user_id, [(variant, 1)])
    request = request_for(engine, cart.id, method="card",
                          instrument_id=card(shop, user_id, magic.CARD_TIMEOUT))
    checkout = shop.checkout.place(user_id, request, idempotency_key="slow").value
    assert checkout.status == "awaiting_payment"
    assert stock(engine, variant) == (0, 1, 0)
    assert shop.checkout.refresh(user_id, checkout.id).status == "awaiting_payment"
    clock.advance(shop.gateway.settings.authorization_timeout_seconds + 1)
    refreshed = shop.checkout.refresh(user_id, checkout.id)
    assert (refreshed.status, refreshed.failure_code) == ("payment_failed", "timeout")
    assert refreshed.orders[0].status == "payment_failed"
    assert stock(engine, variant) == (1, 0, 0)
    assert len(priced(engine, cart.id).lines) == 1  # the cart is still there to retry


def test_a_3ds_card_is_paid_once_the_authorization_arrives(shop, engine, user_id, clock):
    _, variant = product(engine, supplier(engine), price_minor=999)
    cart = cart_with(engine, user_id, [(variant, 1)])
    request = request_for(engine, cart.id, method="card",
                          instrument_id=card(shop, user_id, magic.CARD_ASYNC_SUCCEEDS))
    checkout = shop.checkout.place(user_id, request, idempotency_key="3ds").value
    assert checkout.status == "awaiting_payment"
    # The sweep leaves a checkout alone for a few seconds (its request may still run it).
    clock.advance(max(shop.gateway.settings.async_delay_seconds, SWEEP_AGE_SECONDS) + 1)
    assert shop.checkout.refresh_unsettled(clock()) >= 1
    assert shop.checkout.get(user_id, checkout.id).status == "paid"


def test_a_cart_of_two_suppliers_and_a_reseller_becomes_two_orders_that_add_up(
    shop, engine, user_id,
):
    first, second = supplier(engine, shipping_minor=300), supplier(engine, shipping_minor=200)
    product_id, variant = product(engine, first, price_minor=1000, category="books")
    _, slug = reseller_catalog(engine, product_id, margin_minor=150)
    _, other = product(engine, second, price_minor=2500)
    cart_with(engine, user_id, [(variant, 2)], slug=slug)
    cart = cart_with(engine, user_id, [(other, 1)])
    fund(shop, user_id, 100_000)
    request = request_for(engine, cart.id)
    checkout = shop.checkout.place(user_id, request, idempotency_key="two").value
    assert sorted(order.supplier_id for order in checkout.orders) == sorted([first, second])
    assert sum(order.total_minor for order in checkout.orders) == checkout.total_minor
    assert checkout.total_minor == request.expected_total_minor
    by_supplier = {order.supplier_id: order for order in checkout.orders}
    assert by_supplier[first].lines[0].unit_price_minor == 1150
    assert by_supplier[first].shipping_minor == 300
    # Both orders' timelines and events were written by one statement.
    for order in checkout.orders:
        assert events_of(engine, order.id) == ["commerce_order.paid"]
        assert [entry.event for entry in order.history] == ["paid"]
    with engine.connect() as connection:
        payloads = connection.execute(
            select(outbox.c.payload).where(outbox.c.aggregate_type == "commerce_order",
                                           outbox.c.aggregate_id.in_(
                                               [str(order.id) for order in checkout.orders]))
        ).scalars().all()
    assert sorted((p["merchant_id"], p["status"], p["total_minor"]) for p in payloads) == sorted(
        (str(order.supplier_id), "paid", str(order.total_minor)) for order in checkout.orders)


def test_a_second_checkout_of_the_same_cart_version_is_stale(shop, engine, user_id, clock):
    _, variant = product(engine, supplier(engine), price_minor=999)
    cart = cart_with(engine, user_id, [(variant, 1)])
    request = request_for(engine, cart.id, method="card",
                          instrument_id=card(shop, user_id, magic.CARD_TIMEOUT))
    assert shop.checkout.place(user_id, request,
                               idempotency_key="one").value.status == "awaiting_payment"
    with pytest.raises(ce.StaleCart):
        shop.checkout.place(user_id, request, idempotency_key="two")


def test_the_ledger_check_passes_after_checkouts(engine):
    report = check_ledger(engine)
    assert report.clean, report.to_dict()["breaks"]


def test_a_coupon_is_used_by_a_paid_checkout_and_given_back_by_a_failed_one(
    shop, engine, user_id,
):
    from pacioli.commerce import cart_edits, carts, promotion_admin
    from pacioli.commerce.promotion_tables import commerce_coupons

    code = f"TENOFF-{uuid.uuid4().hex[:6]}".upper()
    promotion_admin.create_coupon(
        engine, code, promotion_admin.DiscountTerms(kind="percent", value=1000, currency="USD"),
        usage_limit_total=1, usage_limit_per_user=None)

    def used() -> int:
        with engine.connect() as connection:
            return connection.execute(select(commerce_coupons.c.redeemed_count)
                                      .where(commerce_coupons.c.code == code)).scalar_one()

    _, variant = product(engine, supplier(engine), price_minor=2000)
    cart = cart_with(engine, user_id, [(variant, 1)])
    cart = cart_edits.apply_coupon(engine, cart.id, carts.CartAccess(user_id=user_id),
                                   code=code, expected_version=cart.version,
                                   idle_seconds=3600)
    request = request_for(engine, cart.id)
    assert request.expected_total_minor == 1800
    with pytest.raises(oe.OrderPaymentFailed):  # an empty wallet
        shop.checkout.place(user_id, request, idempotency_key="no-funds")
    assert used() == 0
    fund(shop, user_id, 1800)
    checkout = shop.checkout.place(user_id, request, idempotency_key="funded").value
    assert (checkout.status, checkout.orders[0].discount_minor) == ("paid", 200)
    assert used() == 1


def test_a_wallet_checkout_answers_what_reading_it_back_gives(shop, engine, user_id):
    """The answer is built from what the checkout wrote (no read-back): it must be the
    record `get` reads, orders, lines and timeline included."""
    first, second = supplier(engine, shipping_minor=300), supplier(engine, shipping_minor=0)
    product_id, variant = product(engine, first, price_minor=1000, category="books")
    _, slug = reseller_catalog(engine, product_id, margin_minor=150)
    _, other = product(engine, second, price_minor=2500)
    cart_with(engine, user_id, [(variant, 2)], slug=slug)
    cart = cart_with(engine, user_id, [(other, 3)])
    fund(shop, user_id, 100_000)
    request = request_for(engine, cart.id)
    answer = shop.checkout.place(user_id, request, idempotency_key="fast")
    assert answer.value == shop.checkout.get(user_id, answer.value.id)
    assert [len(order.lines) for order in answer.value.orders] in ([1, 1],)
    assert all(order.hold_transfer_id is not None for order in answer.value.orders)
    assert shop.checkout.place(user_id, request, idempotency_key="fast").value == answer.value
