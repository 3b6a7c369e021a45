"""Checkout and orders through HTTP: a cart to a delivered order and back (returns,
refunds, cancellations), every sandbox card outcome (decline, 3DS by callback, timeout),
the refusals that change nothing (stale cart, new price, gone stock, no key), what
another shopper or supplier may not see, the events the shopper and the supplier get,
and a clean ledger check.

The module runs its own app whose sandbox gateway has a clock the tests move forward.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit
from uuid import UUID

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from pacioli.api.admin_keys import create_admin_key
from pacioli.api.app import create_app
from pacioli.gateways.sandbox import SandboxGateway, SandboxSettings, magic
from pacioli.ledger import credit, debit
from pacioli.ledger.outbox import Event
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.ledger.storage.tables import outbox
from pacioli.payments.chart import Chart, Purpose
from pacioli.payments.notifications import Notifications
from pacioli.payments.webhooks import Webhooks
from tests.e2e.conftest import (
    E2E_PASSWORD_HASHER,
    Api,
    MerchantApi,
    UserApi,
    assert_problem,
    registered_merchant,
    signed_up_user,
)
from tests.integration.order_support import ADDRESS, Clock, stock
from tests.integration.webhook_support import remove_endpoints

SECRET = "whsec_orders_e2e"
ENGINE: list = []  # the session's engine, for the stock counters the API does not show


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def _clock_starts_now(clock: Clock) -> None:
    clock.now = datetime.now(UTC)


@pytest.fixture(scope="module")
def orders_app(engine, clock) -> FastAPI:
    ENGINE[:] = [engine]
    app = create_app(engine, password_hasher=E2E_PASSWORD_HASHER)
    settings = SandboxSettings(callback_base_url="http://testserver", signing_secret=SECRET)
    app.state.gateway = SandboxGateway(engine, settings, clock=clock)
    app.state.gateway_secrets = {"sandbox": SECRET}
    return app


@pytest.fixture(scope="module")
def oclient(orders_app) -> Iterator[TestClient]:
    with TestClient(orders_app) as client:
        yield client


@pytest.fixture(scope="module")
def admin(oclient, engine) -> Api:
    return Api(oclient, create_admin_key(engine, "orders e2e")[1])


@pytest.fixture
def gateway(orders_app) -> SandboxGateway:
    return orders_app.state.gateway


@pytest.fixture
def shopper(oclient) -> UserApi:
    return signed_up_user(oclient, display_name="Ada")


@pytest.fixture
def seller(admin) -> MerchantApi:
    merchant = registered_merchant(admin, name="Teapots Ltd")
    response = merchant.post("/v1/commerce/suppliers", {})
    assert response.status_code == 201, response.text
    return merchant


@pytest.fixture
def fund(orders_app, engine):
    def fund(user: UserApi, amount_minor: int) -> None:
        ledger = orders_app.state.ledger
        chart = Chart(engine, ledger)
        ledger.transfer([debit(chart.platform(Purpose.BANK_SETTLEMENT, "USD"), amount_minor),
                         credit(chart.wallet(uuid.UUID(user.id), "USD"), amount_minor)],
                        idempotency_key=uuid.uuid4().hex)

    return fund


def listed(seller: MerchantApi, price: str = "12.50", stock: int = 5, **fields) -> dict:
    """A product of the seller's with one variant; its variant as the supplier sees it."""
    body = {"name": "Teapot", "currency": "USD", **fields,
            "variants": [{"sku": uuid.uuid4().hex[:10], "price": price, "stock": stock}]}
    response = seller.post("/v1/supplier/products", body)
    assert response.status_code == 201, response.text
    return response.json()["variants"][0] | {"product_id": response.json()["id"]}


def stock_of(seller: MerchantApi, variant: dict) -> tuple[int, int, int]:
    """(available, reserved, sold): available as the supplier's API shows it, the other
    two from the table (the product route does not show them today)."""
    product = seller.get(f"/v1/supplier/products/{variant['product_id']}").json()
    [found] = [v for v in product["variants"] if v["id"] == variant["id"]]
    available, reserved, sold = stock(ENGINE[0], uuid.UUID(variant["id"]))
    assert found["stock_available"] == available
    return available, reserved, sold


def cart_with(user: UserApi, variant: dict, quantity: int = 1) -> dict:
    cart = user.get("/v1/carts/current").json()
    response = user.post(f"/v1/carts/{cart['id']}/items",
                         {"variant_id": variant["id"], "quantity": quantity})
    assert response.status_code == 201, response.text
    return response.json()


def checkout_body(cart: dict, *, card: dict | None = None, total: str | None = None) -> dict:
    payment = {"method": "card", "instrument_id": card["id"]} if card else {"method": "wallet"}
    return {"cart_id": cart["id"], "cart_version": cart["version"],
            "expected_total": {"amount": total or cart["totals"]["total"], "currency": "USD"},
            "payment": payment, "shipping_address": ADDRESS}


def link_card(user: UserApi, number: str = magic.CARD_SUCCEEDS) -> dict:
    response = user.post("/v1/me/cards",
                         {"number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123"})
    assert response.status_code == 201, response.text
    return response.json()


def paid(user: UserApi, seller: MerchantApi, fund, *, price="20.00", quantity=1) -> dict:
    """A wallet-paid order of one of the seller's products."""
    cart = cart_with(user, listed(seller, price), quantity)
    fund(user, int(cart["totals"]["total"].replace(".", "")))
    response = user.post("/v1/checkout", checkout_body(cart))
    assert response.status_code == 201, response.text
    return response.json()["orders"][0]


def wallet(user: UserApi) -> str:
    return user.get("/v1/me/wallets/USD").json()["available"]


def test_a_cart_becomes_a_delivered_order_with_tracking(shopper, seller, fund):
    variant = listed(seller, "12.50", stock=5)
    cart = cart_with(shopper, variant, 2)
    fund(shopper, 5000)
    response = shopper.post("/v1/checkout", checkout_body(cart), key="checkout-1")
    assert response.status_code == 201, response.text
    checkout = response.json()
    assert (checkout["status"], checkout["total"]) == ("paid", {"amount": "25.00",
                                                               "currency": "USD"})
    again = shopper.post("/v1/checkout", checkout_body(cart), key="checkout-1")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == checkout["id"]
    assert shopper.get("/v1/carts/current").json()["items"] == []
    assert stock_of(seller, variant) == (3, 0, 2)
    assert wallet(shopper) == "25.00"
    order_id = checkout["orders"][0]["id"]
    assert [o["id"] for o in seller.get("/v1/merchants/me/orders").json()["data"]] == [order_id]
    path = f"/v1/merchants/me/orders/{order_id}"
    assert seller.post(f"{path}/pack").json()["status"] == "packed"
    shipped = seller.post(f"{path}/ship", {"carrier": "UPS", "tracking_number": "1Z999"}).json()
    assert (shipped["status"], shipped["payment"]["status"]) == ("shipped", "captured")
    assert shipped["captured"]["amount"] == "25.00"
    seller.post(f"{path}/tracking", {"carrier": "UPS", "tracking_number": "1Z999",
                                     "note": "At the local depot"})
    seller.post(f"{path}/deliver")
    order = shopper.get(f"/v1/orders/{order_id}").json()
    assert order["status"] == "delivered"
    assert [h["event"] for h in order["history"]] == ["paid", "packed", "shipped",
                                                      "tracking_updated", "delivered"]
    assert order["history"][3]["note"] == "At the local depot"
    assert order["delivered_at"] >= order["shipped_at"] >= order["paid_at"]
    assert wallet(shopper) == "25.00"
    [usd] = [b for b in seller.get("/v1/merchants/me/balances").json()
             if b["currency"] == "USD"]
    assert usd["pending_settlement"] == "23.75"  # less the 5% commission


@pytest.fixture
def endpoints_removed_after(engine, seller):
    """Deletes the seller's webhook endpoints (and their deliveries) after the test, so no
    later test's retry job finds them due."""
    yield
    remove_endpoints(engine, UUID(seller.id))


@pytest.mark.usefixtures("endpoints_removed_after")
def test_the_shopper_and_the_supplier_hear_of_each_change(shopper, seller, fund, engine,
                                                          orders_app):
    hooks = Webhooks.from_settings(engine)
    hooks.attempt_at_once = False
    endpoint = seller.post("/v1/merchants/me/webhook-endpoints",
                           {"url": "https://hooks.example.com/pacioli",
                            "event_types": ["commerce_order.paid", "commerce_order.shipped"]})
    assert endpoint.status_code == 201, endpoint.text
    order = paid(shopper, seller, fund)
    seller.post(f"/v1/merchants/me/orders/{order['id']}/ship",
                {"carrier": "DHL", "tracking_number": "JD01"})
    notifications = Notifications(engine, orders_app.state.ledger)
    with engine.connect() as connection:
        rows = connection.execute(select(outbox).where(outbox.c.aggregate_id == order["id"])
                                  .order_by(outbox.c.id)).all()
    assert [row.event_type for row in rows] == ["commerce_order.paid", "commerce_order.shipped"]
    for row in rows:
        event = Event(row.event_id, row.event_type, row.aggregate_type, row.aggregate_id,
                      row.payload, row.created_at)
        notifications.handle(event)
        hooks.handle(event)
    feed = shopper.get("/v1/me/notifications").json()["data"]
    assert [n["kind"] for n in feed] == ["order_update", "order_update"]
    assert "has shipped (DHL JD01)" in feed[0]["body"]
    deliveries = seller.get(
        f"/v1/merchants/me/webhook-endpoints/{endpoint.json()['id']}/deliveries").json()["data"]
    assert sorted(d["event_type"] for d in deliveries) == ["commerce_order.paid",
                                                           "commerce_order.shipped"]


def test_checkout_refuses_what_it_cannot_honour_and_changes_nothing(shopper, seller, fund,
                                                                    oclient):
    variant = listed(seller, "10.00", stock=1)
    cart = cart_with(shopper, variant)
    fund(shopper, 5000)
    no_key = oclient.post("/v1/checkout", json=checkout_body(cart),
                          headers={"Authorization": f"Bearer {shopper.token}"})
    assert_problem(no_key, 422, "idempotency_key_required")
    assert_problem(shopper.post("/v1/checkout", checkout_body(cart, total="9.99")), 409,
                   "price_changed")
    stale = checkout_body(cart) | {"cart_version": cart["version"] - 1}
    assert_problem(shopper.post("/v1/checkout", stale), 409, "stale_cart_version")
    rival = signed_up_user(shopper.client)
    rival_cart = cart_with(rival, variant)
    fund(rival, 5000)
    assert rival.post("/v1/checkout", checkout_body(rival_cart)).status_code == 201
    assert_problem(shopper.post("/v1/checkout", checkout_body(cart)), 422, "out_of_stock")
    assert shopper.get("/v1/orders").json()["data"] == []
    assert wallet(shopper) == "50.00"


def test_a_declined_card_leaves_the_order_unpaid_and_releases_the_stock(shopper, seller):
    variant = listed(seller, "30.00", stock=1)
    cart = cart_with(shopper, variant)
    card = link_card(shopper, magic.CARD_DECLINED)
    response = shopper.post("/v1/checkout", checkout_body(cart, card=card))
    assert_problem(response, 422, "card_declined")
    [order] = shopper.get("/v1/orders").json()["data"]
    assert (order["status"], order["payment"]["status"]) == ("payment_failed", "voided")
    assert stock_of(seller, variant) == (1, 0, 0)
    assert len(shopper.get("/v1/carts/current").json()["items"]) == 1


def test_the_timeout_card_is_not_paid_and_its_stock_comes_back(shopper, seller, gateway,
                                                               clock):
    variant = listed(seller, "30.00", stock=1)
    cart = cart_with(shopper, variant)
    response = shopper.post("/v1/checkout",
                            checkout_body(cart, card=link_card(shopper, magic.CARD_TIMEOUT)))
    assert response.status_code == 202, response.text
    checkout = response.json()
    assert checkout["status"] == "awaiting_payment"
    assert stock_of(seller, variant) == (0, 1, 0)
    clock.advance(gateway.settings.authorization_timeout_seconds + 1)
    refreshed = shopper.post(f"/v1/checkouts/{checkout['id']}/refresh").json()
    assert (refreshed["status"], refreshed["failure_code"]) == ("payment_failed", "timeout")
    assert refreshed["orders"][0]["status"] == "payment_failed"
    assert stock_of(seller, variant) == (1, 0, 0)


def test_a_3ds_card_is_paid_when_the_gateway_calls_back(shopper, seller, gateway, clock,
                                                        oclient):
    cart = cart_with(shopper, listed(seller, "8.00"))
    response = shopper.post(
        "/v1/checkout", checkout_body(cart, card=link_card(shopper, magic.CARD_ASYNC_SUCCEEDS)))
    assert response.status_code == 202, response.text
    checkout = response.json()

    def send(url: str, body: bytes, headers) -> int:
        return oclient.post(urlsplit(url).path, content=body,
                            headers=dict(headers)).status_code

    clock.advance(gateway.settings.async_delay_seconds + 1)
    gateway.deliver_due(clock(), send)
    settled = shopper.get(f"/v1/checkouts/{checkout['id']}").json()
    assert (settled["status"], settled["orders"][0]["status"]) == ("paid", "paid")


def test_cancelling_before_shipping_releases_the_money(shopper, seller, fund):
    order = paid(shopper, seller, fund, price="15.00")
    assert wallet(shopper) == "0.00"
    cancelled = shopper.post(f"/v1/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["payment"]["status"]) == (
        "cancelled", "voided")
    assert wallet(shopper) == "15.00"
    assert_problem(seller.post(f"/v1/merchants/me/orders/{order['id']}/ship",
                               {"carrier": "UPS", "tracking_number": "1"}),
                   409, "invalid_order_transition")


def test_a_return_is_refunded_when_the_supplier_receives_it(shopper, seller, fund):
    order = paid(shopper, seller, fund, price="10.00", quantity=2)
    path = f"/v1/merchants/me/orders/{order['id']}"
    seller.post(f"{path}/ship", {"carrier": "UPS", "tracking_number": "1Z"})
    seller.post(f"{path}/deliver")
    line = order["lines"][0]
    body = {"lines": [{"line_id": line["id"], "quantity": 1}]}
    asked = shopper.post(f"/v1/orders/{order['id']}/returns", body, key="return-1")
    assert asked.status_code == 201, asked.text
    assert (asked.json()["status"], asked.json()["amount"]["amount"]) == ("requested", "10.00")
    assert wallet(shopper) == "0.00"
    received = seller.post(f"{path}/returns/{asked.json()['id']}/receive")
    assert received.json()["status"] == "succeeded"
    assert wallet(shopper) == "10.00"
    order = shopper.get(f"/v1/orders/{order['id']}").json()
    assert (order["status"], order["refunded"]["amount"]) == ("partially_returned", "10.00")
    too_many = {"lines": [{"line_id": line["id"], "quantity": 2}]}
    assert_problem(shopper.post(f"/v1/orders/{order['id']}/returns", too_many), 422,
                   "invalid_return")


def test_a_supplier_refunds_part_of_a_card_order_to_the_card(shopper, seller, gateway):
    cart = cart_with(shopper, listed(seller, "40.00"))
    response = shopper.post("/v1/checkout", checkout_body(cart, card=link_card(shopper)))
    order = response.json()["orders"][0]
    path = f"/v1/merchants/me/orders/{order['id']}"
    assert_problem(seller.post(f"{path}/refunds", {"amount": "5.00"}), 409,
                   "order_not_returnable")  # nothing is captured before shipping
    seller.post(f"{path}/ship", {"carrier": "UPS", "tracking_number": "1Z"})
    refund = seller.post(f"{path}/refunds", {"amount": "5.00"}, key="goodwill")
    assert refund.status_code == 201, refund.text
    assert (refund.json()["destination"], refund.json()["status"]) == ("card", "succeeded")
    assert_problem(seller.post(f"{path}/refunds", {"amount": "35.01"}), 409,
                   "refund_exceeds_captured")
    refunds = shopper.get(f"/v1/orders/{order['id']}/refunds").json()
    assert [r["amount"]["amount"] for r in refunds] == ["5.00"]


def test_nobody_sees_or_moves_another_s_order(shopper, seller, fund, admin, oclient):
    order = paid(shopper, seller, fund)
    stranger = signed_up_user(oclient)
    assert_problem(stranger.get(f"/v1/orders/{order['id']}"), 404, "order_not_found")
    assert_problem(stranger.post(f"/v1/orders/{order['id']}/cancel"), 404, "order_not_found")
    other = registered_merchant(admin, name="Other Supplier")
    assert_problem(other.post(f"/v1/merchants/me/orders/{order['id']}/pack"), 404,
                   "order_not_found")
    assert other.get("/v1/merchants/me/orders").json()["data"] == []


def test_the_ledger_check_passes_after_the_order_flows(engine):
    report = check_ledger(engine)
    assert report.clean, report.to_dict()["breaks"]
