"""Orders after checkout on the real ledger: the supplier's moves with tracking and a
timeline, the capture's linked split (supplier, reseller, commission, tax, rounding) and
its settlement items, cancellation with voids, the states a move may start from, a
capture the gateway could not take at once, and the ledger check."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from pacioli.commerce import order_errors as oe
from pacioli.commerce import taxes
from pacioli.gateways import base as gw
from pacioli.gateways.sandbox import SandboxGateway, SandboxSettings
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.payments.chart import Purpose
from pacioli.payments.settlement_tables import settlement_items
from tests.integration.order_support import (
    Clock,
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


def items_of(engine, source_id) -> list[tuple[str, int, int, int]]:
    t = settlement_items
    with engine.connect() as connection:
        rows = connection.execute(
            select(t.c.source_kind, t.c.gross_minor, t.c.fee_minor, t.c.net_minor)
            .where(t.c.source_id == source_id)
        ).all()
    return [tuple(row) for row in rows]


def platform(shop, purpose) -> int:
    return balance(shop, shop.chart.platform(purpose, "USD"))[1]


def test_shipping_captures_the_hold_and_splits_it_in_one_linked_batch(shop, engine, user_id):
    category = f"tea-{uuid.uuid4().hex[:8]}"
    taxes.set_tax_rate(engine, category, "*", 825)  # 8.25%
    order, _ = paid_order(shop, user_id, price_minor=1999, quantity=3, shipping_minor=500,
                          category=category)
    tax = 495  # 8.25% of 59.97, half up
    assert (order.tax_minor, order.total_minor) == (tax, 5997 + tax + 500)
    fees, taxed = platform(shop, Purpose.FEE_REVENUE), platform(shop, Purpose.TAX_PAYABLE)
    shipped = shop.orders.ship(order.supplier_id, order.id, carrier="DHL",
                               tracking_number="JD0142")
    assert (shipped.status, shipped.payment_status) == ("shipped", "captured")
    assert shipped.captured_minor == order.total_minor
    commission = 600  # 10% of the supplier's goods, 59.97, half up
    pending = shop.chart.merchant_pending_settlement(order.supplier_id, "USD")
    assert balance(shop, pending)[1] == 5997 + 500 - commission
    assert platform(shop, Purpose.FEE_REVENUE) - fees == commission
    assert platform(shop, Purpose.TAX_PAYABLE) - taxed == tax
    assert balance(shop, shop.chart.wallet(user_id, "USD")) == (0, 0)
    capture = shop.ledger.get_transfer(shipped.capture_transfer_id)
    hold = shop.ledger.get_transfer(order.hold_transfer_id)
    assert capture.batch_id is not None and hold.pending_status == "posted"
    assert items_of(engine, order.id) == [("commerce_order", 5997 + 500, commission,
                                           5997 + 500 - commission)]


def test_a_reseller_earns_its_margin_and_the_supplier_its_price(shop, engine, user_id):
    order, _ = paid_order(shop, user_id, price_minor=1000, quantity=2, margin_minor=250)
    assert order.total_minor == 2500
    shipped = shop.orders.ship(order.supplier_id, order.id, carrier="UPS",
                               tracking_number="1Z1")
    reseller_id = shipped.lines[0].reseller_id
    assert balance(shop, shop.chart.merchant_pending_settlement(reseller_id, "USD"))[1] == 500
    supplier_pending = shop.chart.merchant_pending_settlement(order.supplier_id, "USD")
    assert balance(shop, supplier_pending)[1] == 2000 - 200
    assert items_of(engine, uuid.uuid5(order.id, str(reseller_id))) == [
        ("commerce_order_margin", 500, 0, 500)]


def test_the_supplier_moves_the_order_with_tracking_and_a_timeline(shop, user_id):
    order, _ = paid_order(shop, user_id)
    supplier_id = order.supplier_id
    assert shop.orders.pack(supplier_id, order.id).status == "packed"
    assert shop.orders.pack(supplier_id, order.id).status == "packed"  # asked again: as is
    shop.orders.ship(supplier_id, order.id, carrier="UPS", tracking_number="1Z1")
    updated = shop.orders.update_tracking(supplier_id, order.id, carrier="UPS",
                                          tracking_number="1Z2", note="Out for delivery")
    assert (updated.carrier, updated.tracking_number) == ("UPS", "1Z2")
    done = shop.orders.deliver(supplier_id, order.id)
    assert done.status == "delivered" and done.delivered_at >= done.shipped_at >= done.paid_at
    assert [(h.event, h.tracking_number) for h in done.history] == [
        ("paid", None), ("packed", None), ("shipped", "1Z1"), ("tracking_updated", "1Z2"),
        ("delivered", "1Z2")]
    assert done.history[3].note == "Out for delivery"
    assert [o.id for o in shop.orders.list(supplier_id=supplier_id)] == [order.id]
    assert shop.orders.list(user_id=user_id, status="delivered")[0].id == order.id


def test_a_move_from_the_wrong_state_or_by_another_supplier_is_refused(shop, user_id):
    order, _ = paid_order(shop, user_id)
    with pytest.raises(oe.InvalidOrderTransition):
        shop.orders.deliver(order.supplier_id, order.id)
    with pytest.raises(oe.OrderNotFound):
        shop.orders.pack(uuid.uuid4(), order.id)
    with pytest.raises(oe.OrderNotFound):
        shop.orders.get(order.id, user_id=uuid.uuid4())
    with pytest.raises(oe.InvalidOrderRequest):
        shop.orders.ship(order.supplier_id, order.id, carrier="", tracking_number="x")
    assert shop.orders.get(order.id, user_id=user_id).status == "paid"


def test_cancelling_before_shipping_voids_the_hold_and_restocks(shop, engine, user_id):
    order, variant = paid_order(shop, user_id, price_minor=800, quantity=2)
    assert stock(engine, variant) == (5, 0, 2)
    cancelled = shop.orders.cancel(order.id, user_id=user_id)
    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "voided")
    assert balance(shop, shop.chart.wallet(user_id, "USD")) == (1600, 1600)
    assert stock(engine, variant) == (7, 0, 0)
    assert shop.orders.cancel(order.id, user_id=user_id).status == "cancelled"
    with pytest.raises(oe.InvalidOrderTransition):
        shop.orders.ship(order.supplier_id, order.id, carrier="UPS", tracking_number="1")


def test_a_supplier_cancelling_a_card_order_voids_the_authorization(shop, user_id):
    order, _ = paid_order(shop, user_id, method="card")
    cancelled = shop.orders.cancel(order.id, supplier_id=order.supplier_id)
    assert cancelled.payment_status == "voided"
    assert shop.gateway.fetch_status(order.gateway_reference).status == "voided"


class FlakyCapture(SandboxGateway):
    """Unreachable for the first capture (the answer is lost), then itself again."""

    failures_left = 1

    def capture(self, reference, amount_minor=None, *, idempotency_key):
        if self.failures_left:
            self.failures_left -= 1
            raise gw.GatewayUnavailable("the processor did not answer")
        return super().capture(reference, amount_minor, idempotency_key=idempotency_key)


def test_a_capture_the_gateway_missed_is_finished_by_the_money_sweep(engine, ledger, user_id):
    shop = make_shop(engine, ledger)
    order, _ = paid_order(shop, user_id, method="card")
    flaky = make_shop(engine, ledger,
                      gateway=FlakyCapture(engine, SandboxSettings(), clock=Clock()))
    shipped = flaky.orders.ship(order.supplier_id, order.id, carrier="UPS",
                                tracking_number="1Z")
    assert (shipped.status, shipped.payment_status) == ("shipped", "capturing")
    assert shipped.capture_transfer_id is None
    assert flaky.orders.finish_money_steps() >= 1
    captured = shop.orders.get(order.id, user_id=user_id)
    assert (captured.payment_status, captured.captured_minor) == ("captured",
                                                                  order.total_minor)
    assert shop.gateway.fetch_status(order.gateway_reference).status == "captured"


def test_a_delivered_order_cannot_be_cancelled(shop, user_id):
    order, _ = paid_order(shop, user_id)
    delivered(shop, order)
    with pytest.raises(oe.InvalidOrderTransition):
        shop.orders.cancel(order.id, user_id=user_id)


def test_the_ledger_check_passes_after_orders(engine):
    report = check_ledger(engine)
    assert report.clean, report.to_dict()["breaks"]


def test_a_hold_released_before_shipping_fails_the_capture_and_pays_nobody(shop, user_id):
    order, _ = paid_order(shop, user_id, price_minor=700)
    # As the expiry sweep would after ORDER_HOLD_SECONDS.
    shop.ledger.void_pending(order.hold_transfer_id, idempotency_key=uuid.uuid4().hex)
    shipped = shop.orders.ship(order.supplier_id, order.id, carrier="UPS", tracking_number="1")
    assert (shipped.status, shipped.payment_status) == ("shipped", "failed")
    assert shipped.failure_code == "pending_transfer_already_resolved"
    assert shipped.captured_minor == 0
    pending = shop.chart.merchant_pending_settlement(order.supplier_id, "USD")
    assert balance(shop, pending)[1] == 0
    assert balance(shop, shop.chart.wallet(user_id, "USD")) == (700, 700)


def test_settlement_pays_the_supplier_and_the_reseller_what_the_capture_split_gave_them(
    engine, ledger, user_id,
):
    from pacioli.commerce import catalog, resellers
    from pacioli.payments.settlement import register_settlement_handler
    from tests.integration.order_support import cart_with, fund, priced, product, request_for
    from tests.integration.test_settlement import make_world

    world = make_world(engine, ledger)
    unregister = register_settlement_handler(engine, ledger, world.chart, world.gateway,
                                             registry=world.registry)
    try:
        shop = make_shop(engine, ledger, gateway=world.gateway, commission_bps=1000)
        supplier, reseller = world.merchant(), world.merchant()
        catalog.register_supplier(engine, supplier.id)
        resellers.register_reseller(engine, reseller.id)
        product_id, variant = product(engine, supplier.id, price_minor=4000)
        slug = f"picks-{uuid.uuid4().hex[:8]}"
        picks = resellers.create_catalog(engine, reseller.id, slug=slug, title="Picks")
        resellers.set_catalog_item(engine, reseller.id, picks.id, product_id, margin_minor=500)
        cart = cart_with(engine, user_id, [(variant, 1)], slug=slug)
        fund(shop, user_id, priced(engine, cart.id).total_minor)
        [order] = shop.checkout.place(user_id, request_for(engine, cart.id),
                                      idempotency_key="settle").value.orders
        shipped = shop.orders.ship(supplier.id, order.id, carrier="UPS", tracking_number="1Z")
        settlement = world.settlement(cycle_days=1)
        for merchant in (supplier, reseller):
            settlement.set_cycle_days(merchant.id, 0)
        batches = settlement.run_cycle(shipped.shipped_at + timedelta(seconds=5))
        paid = {}
        for merchant in (supplier, reseller):
            [batch] = [b for b in batches if b.merchant_id == merchant.id]
            world.deliver(batch.payout_reference)
            paid[merchant.id] = settlement.get(merchant.id, batch.id)
    finally:
        unregister()
    assert (paid[supplier.id].status, paid[supplier.id].net_minor) == ("paid", 4000 - 400)
    assert (paid[reseller.id].status, paid[reseller.id].net_minor) == ("paid", 500)
    assert paid[supplier.id].fees_minor == 400
    for merchant in (supplier, reseller):
        assert world.pending_settlement(merchant) == 0
