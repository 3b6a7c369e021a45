"""Refunds and returns of orders on the real ledger: partial and full, to the card or the
wallet, the split reversed in proportion and exactly in full, negative settlement items,
restocking, the cap at what was captured (also under concurrent refunds), replays, and
the ledger check."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import select

from pacioli.commerce import order_errors as oe
from pacioli.commerce import taxes
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.payments.chart import Purpose
from pacioli.payments.settlement_tables import settlement_items
from tests.integration.order_support import (
    balance,
    delivered,
    make_shop,
    paid_order,
    stock,
)


@pytest.fixture
def shop(engine, ledger):
    return make_shop(engine, ledger, commission_bps=1000)


@pytest.fixture
def user_id() -> uuid.UUID:
    return uuid.uuid4()


def wallet(shop, user_id) -> int:
    return balance(shop, shop.chart.wallet(user_id, "USD"))[1]


def pending_of(shop, merchant_id) -> int:
    return balance(shop, shop.chart.merchant_pending_settlement(merchant_id, "USD"))[1]


def platform(shop, purpose) -> int:
    return balance(shop, shop.chart.platform(purpose, "USD"))[1]


def net_items(engine, merchant_id) -> int:
    t = settlement_items
    with engine.connect() as connection:
        return sum(int(n) for n in connection.execute(
            select(t.c.net_minor).where(t.c.merchant_id == merchant_id)).scalars())


def test_returning_part_then_the_rest_refunds_the_split_exactly(shop, engine, user_id):
    category = f"mugs-{uuid.uuid4().hex[:8]}"
    taxes.set_tax_rate(engine, category, "*", 700)
    order, variant = paid_order(shop, user_id, price_minor=1333, quantity=3,
                                shipping_minor=250, category=category, margin_minor=100)
    fees, taxed = platform(shop, Purpose.FEE_REVENUE), platform(shop, Purpose.TAX_PAYABLE)
    order = delivered(shop, order)
    reseller_id = order.lines[0].reseller_id
    line = order.lines[0]
    first = shop.refunds.request_return(user_id, order.id, [(line.id, 1)], destination=None,
                                        idempotency_key="r1").value
    assert (first.status, first.amount_minor) == ("requested", line.total_minor // 3)
    assert wallet(shop, user_id) == 0  # nothing until the supplier has the goods
    received = shop.refunds.receive_return(order.supplier_id, order.id, first.id)
    assert received.status == "succeeded"
    assert wallet(shop, user_id) == first.amount_minor
    assert shop.orders.get(order.id, user_id=user_id).status == "partially_returned"
    assert stock(engine, variant)[2] == 2
    rest = shop.refunds.request_return(user_id, order.id, [(line.id, 2)], destination="wallet",
                                       idempotency_key="r2").value
    shop.refunds.receive_return(order.supplier_id, order.id, rest.id)
    final = shop.orders.get(order.id, user_id=user_id)
    assert (final.status, final.refunded_minor) == ("returned", order.total_minor)
    assert wallet(shop, user_id) == order.total_minor  # shipping too, once all came back
    # Every share came back exactly: nothing is left with a payee.
    assert pending_of(shop, order.supplier_id) == 0
    assert pending_of(shop, reseller_id) == 0
    assert (platform(shop, Purpose.FEE_REVENUE), platform(shop, Purpose.TAX_PAYABLE)) == (
        fees, taxed)
    assert net_items(engine, order.supplier_id) == 0 and net_items(engine, reseller_id) == 0
    assert stock(engine, variant) == (8, 0, 0)


def test_a_card_order_is_refunded_to_the_card_through_the_gateway(shop, user_id):
    order, _ = paid_order(shop, user_id, price_minor=2000, method="card")
    order = delivered(shop, order)
    clearing = shop.chart.platform(Purpose.PROCESSOR_CLEARING, "USD", scope="sandbox")
    before = balance(shop, clearing)[1]
    refund = shop.refunds.refund_by_supplier(order.supplier_id, order.id, 500,
                                             idempotency_key="part").value
    assert (refund.status, refund.destination) == ("succeeded", "card")
    assert balance(shop, clearing)[1] == before - 500
    rest = shop.refunds.refund_by_supplier(order.supplier_id, order.id, None,
                                           idempotency_key="rest").value
    assert rest.amount_minor == 1500
    assert shop.gateway.fetch_status(order.gateway_reference).status == "refunded"
    assert pending_of(shop, order.supplier_id) == 0


def test_a_card_order_may_be_returned_to_the_wallet_but_not_a_wallet_order_to_a_card(
    shop, user_id,
):
    order, _ = paid_order(shop, user_id, price_minor=900, method="card")
    order = delivered(shop, order)
    refund = shop.refunds.request_return(user_id, order.id, [(order.lines[0].id, 1)],
                                         destination="wallet", idempotency_key="w").value
    shop.refunds.receive_return(order.supplier_id, order.id, refund.id)
    assert wallet(shop, user_id) == 900
    assert shop.gateway.fetch_status(order.gateway_reference).status == "captured"
    paid_by_wallet, _ = paid_order(shop, user_id, price_minor=100)
    paid_by_wallet = delivered(shop, paid_by_wallet)
    with pytest.raises(oe.RefundDestinationUnavailable):
        shop.refunds.request_return(user_id, paid_by_wallet.id,
                                    [(paid_by_wallet.lines[0].id, 1)], destination="card",
                                    idempotency_key="c")


def test_a_refund_never_exceeds_what_was_captured(shop, user_id):
    order, _ = paid_order(shop, user_id, price_minor=1000)
    with pytest.raises(oe.OrderNotReturnable):  # nothing captured yet
        shop.refunds.refund_by_supplier(order.supplier_id, order.id, 1, idempotency_key="x")
    order = delivered(shop, order)
    shop.refunds.refund_by_supplier(order.supplier_id, order.id, 600, idempotency_key="a")
    with pytest.raises(oe.RefundExceedsCaptured):
        shop.refunds.refund_by_supplier(order.supplier_id, order.id, 401, idempotency_key="b")
    with pytest.raises(oe.InvalidReturn):
        shop.refunds.request_return(user_id, order.id, [(order.lines[0].id, 2)],
                                    destination=None, idempotency_key="c")
    assert shop.orders.get(order.id, user_id=user_id).refunded_minor == 600


def test_concurrent_refunds_of_one_order_add_up_to_at_most_the_capture(shop, user_id):
    order, _ = paid_order(shop, user_id, price_minor=1000)
    order = delivered(shop, order)
    outcomes: list[str] = []

    def refund(n: int) -> None:
        try:
            shop.refunds.refund_by_supplier(order.supplier_id, order.id, 300,
                                            idempotency_key=f"c{n}")
            outcomes.append("ok")
        except (oe.RefundExceedsCaptured, oe.RefundInProgress) as refusal:
            outcomes.append(refusal.code)

    threads = [threading.Thread(target=refund, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refunded = shop.orders.get(order.id, user_id=user_id).refunded_minor
    assert refunded == 300 * outcomes.count("ok") <= 1000
    assert wallet(shop, user_id) == refunded


def test_a_replayed_refund_refunds_once_and_another_body_is_refused(shop, user_id):
    order, _ = paid_order(shop, user_id, price_minor=1000)
    order = delivered(shop, order)
    first = shop.refunds.refund_by_supplier(order.supplier_id, order.id, 100,
                                            idempotency_key="same")
    again = shop.refunds.refund_by_supplier(order.supplier_id, order.id, 100,
                                            idempotency_key="same")
    assert again.replayed and again.value.id == first.value.id
    assert wallet(shop, user_id) == 100
    with pytest.raises(oe.IdempotencyKeyReusedForOrder):
        shop.refunds.refund_by_supplier(order.supplier_id, order.id, 200,
                                        idempotency_key="same")


def test_cancelling_a_shipped_order_refunds_it_in_full(shop, user_id):
    order, variant = paid_order(shop, user_id, price_minor=1500, shipping_minor=300)
    shop.orders.ship(order.supplier_id, order.id, carrier="UPS", tracking_number="1Z")
    cancelled = shop.orders.cancel(order.id, user_id=user_id)
    assert (cancelled.status, cancelled.refunded_minor) == ("cancelled", 1800)
    assert wallet(shop, user_id) == 1800
    assert [r.reason for r in shop.refunds.list(order.id)] == ["cancellation"]
    assert shop.orders.cancel(order.id, user_id=user_id).refunded_minor == 1800


def test_the_ledger_check_passes_after_refunds(engine):
    report = check_ledger(engine)
    assert report.clean, report.to_dict()["breaks"]
