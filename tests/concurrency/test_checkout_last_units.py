"""Myntra's flash sale: 200 shoppers check out at once for the last 50 units of one
product. Exactly 50 orders are paid, the other 150 get `out_of_stock` and change nothing,
the stock ends at 0 available, 0 reserved and 50 sold, every paid order's hold is in the
ledger once, and the ledger check passes.

Each shopper has a cart of one unit and a funded wallet; 40 threads (the engine's pool)
start together behind a barrier and call the checkout service, as 40 API workers would.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from pacioli.commerce import errors as ce
from pacioli.commerce.order_tables import commerce_checkouts, commerce_orders
from pacioli.ledger import TransferSpec, credit, debit
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.payments.chart import Purpose
from tests.integration.order_support import (
    balance,
    cart_with,
    make_shop,
    product,
    request_for,
    stock,
    supplier,
)

pytestmark = pytest.mark.slow

SHOPPERS = 200
UNITS = 50
THREADS = 40
PRICE_MINOR = 2999


def test_two_hundred_checkouts_for_fifty_units_sell_exactly_fifty(engine, ledger):
    shop = make_shop(engine, ledger)
    _, variant = product(engine, supplier(engine), price_minor=PRICE_MINOR, stock=UNITS)
    shoppers = [uuid.uuid4() for _ in range(SHOPPERS)]
    requests = {}
    for user_id in shoppers:
        cart = cart_with(engine, user_id, [(variant, 1)])
        requests[user_id] = request_for(engine, cart.id)
    bank = shop.chart.platform(Purpose.BANK_SETTLEMENT, "USD")
    for start in range(0, SHOPPERS, 100):
        shop.ledger.transfer_batch(
            [TransferSpec(legs=(debit(bank, PRICE_MINOR),
                                credit(shop.chart.wallet(user_id, "USD"), PRICE_MINOR)))
             for user_id in shoppers[start:start + 100]],
            idempotency_key=uuid.uuid4().hex,
        )
    barrier = threading.Barrier(THREADS)
    started = threading.local()

    def check_out(user_id: uuid.UUID) -> str:
        if not getattr(started, "yes", False):
            barrier.wait()
            started.yes = True
        try:
            answer = shop.checkout.place(user_id, requests[user_id],
                                         idempotency_key=f"flash-{user_id}")
        except ce.OutOfStock as refusal:
            return refusal.code
        return answer.value.status

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = Counter(pool.map(check_out, shoppers))

    assert outcomes == {"paid": UNITS, "out_of_stock": SHOPPERS - UNITS}
    assert stock(engine, variant) == (0, 0, UNITS)
    with engine.connect() as connection:
        checkouts = connection.execute(
            select(commerce_checkouts.c.user_id, commerce_checkouts.c.status)
            .where(commerce_checkouts.c.user_id.in_(shoppers))
        ).all()
        holds = connection.execute(
            select(func.count(func.distinct(commerce_orders.c.hold_transfer_id)))
            .where(commerce_orders.c.user_id.in_(shoppers))
        ).scalar_one()
    # A refused checkout left no record, and its shopper's money where it was.
    assert sorted(status for _, status in checkouts) == ["paid"] * UNITS
    assert holds == UNITS
    paid = {user_id for user_id, _ in checkouts}
    for user_id in shoppers:
        available, total = balance(shop, shop.chart.wallet(user_id, "USD"))
        assert (available, total) == ((0 if user_id in paid else PRICE_MINOR), PRICE_MINOR)
    report = check_ledger(engine)
    assert report.clean, report.to_dict()["breaks"]
