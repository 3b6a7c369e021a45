"""Merchant webhooks through HTTP: endpoints, secrets, deliveries, redelivery, tenancy.

The app's webhook service is swapped for one that may call the test receiver on
127.0.0.1 over http; the receiver verifies with the `standardwebhooks` package.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from pacioli.gateways.webhooks import TargetPolicy
from pacioli.ledger.outbox import Event
from pacioli.ledger.storage.tables import outbox
from tests.e2e.conftest import MerchantApi, assert_problem, registered_merchant
from tests.integration.webhook_support import make_webhooks, qr_payment_event
from tests.webhook_receiver import running_receiver

ENDPOINTS = "/v1/merchants/me/webhook-endpoints"
DELIVERIES = "/v1/merchants/me/webhook-deliveries"


@pytest.fixture
def webhooks(app, engine, monkeypatch):
    webhooks = make_webhooks(engine)
    monkeypatch.setattr(app.state, "webhooks", webhooks, raising=False)
    yield webhooks
    webhooks.close()


@pytest.fixture
def receiver():
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def shop(api):
    shop = registered_merchant(api, name="Webhook Shop")
    yield shop
    for endpoint in shop.get(ENDPOINTS).json()["data"]:
        shop.delete(f"{ENDPOINTS}/{endpoint['id']}")


@pytest.fixture
def stranger(api):
    return registered_merchant(api, name="Stranger")


def patch(merchant: MerchantApi, path: str, body: dict):
    return merchant.client.patch(path, json=body, headers=merchant.headers())


def create_endpoint(shop: MerchantApi, receiver, **fields) -> dict:
    response = shop.post(ENDPOINTS, {"url": receiver.url, **fields})
    assert response.status_code == 201, response.text
    endpoint = response.json()
    receiver.secrets.append(endpoint["secret"])
    return endpoint


def deliver_one(webhooks, shop: MerchantApi, endpoint: dict) -> dict:
    webhooks.handle(qr_payment_event(uuid.UUID(shop.id)))
    webhooks.deliver_due(datetime.now(UTC))
    response = shop.get(f"{ENDPOINTS}/{endpoint['id']}/deliveries")
    assert response.status_code == 200, response.text
    return response.json()["data"][0]


def test_a_merchant_registers_an_endpoint_and_sees_its_secret_once(webhooks, shop, receiver):
    response = shop.post(ENDPOINTS, {"url": receiver.url,
                                     "event_types": ["qr_payment.succeeded"],
                                     "description": "orders"}, key="create-1")
    replay = shop.post(ENDPOINTS, {"url": receiver.url,
                                   "event_types": ["qr_payment.succeeded"],
                                   "description": "orders"}, key="create-1")

    assert response.status_code == 201, response.text
    endpoint = response.json()
    assert endpoint["secret"].startswith("whsec_")
    assert (endpoint["url"], endpoint["event_types"], endpoint["description"]) == \
        (receiver.url, ["qr_payment.succeeded"], "orders")
    assert (endpoint["enabled"], endpoint["status"], endpoint["disabled_reason"]) == \
        (True, "active", None)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == {**endpoint, "secret": None}
    listed = shop.get(ENDPOINTS).json()["data"]
    assert listed == [{**endpoint, "secret": None}]
    assert shop.get(f"{ENDPOINTS}/{endpoint['id']}").json() == {**endpoint, "secret": None}


def test_writes_need_an_idempotency_key_and_a_merchant_key(webhooks, shop, user, receiver):
    no_key = shop.client.post(ENDPOINTS, json={"url": receiver.url}, headers=shop.headers())
    as_user = user.post(ENDPOINTS, {"url": receiver.url})

    assert_problem(no_key, 422, "idempotency_key_required")
    assert_problem(as_user, 401, "unauthorized")
    assert shop.get(ENDPOINTS).json()["data"] == []


def test_bad_endpoints_are_refused_with_clear_codes(webhooks, shop, receiver):
    assert_problem(shop.post(ENDPOINTS, {"url": "ftp://example.com/x"}), 422,
                   "invalid_webhook_url")
    assert_problem(shop.post(ENDPOINTS, {"url": receiver.url, "event_types": ["nope"]}), 422,
                   "unknown_webhook_event_type")
    assert_problem(shop.post(ENDPOINTS, {"url": receiver.url, "colour": "red"}), 422,
                   "validation_error")
    assert shop.get(ENDPOINTS).json()["data"] == []


def test_by_default_private_and_plain_http_targets_are_refused(app, engine, shop, monkeypatch):
    strict = make_webhooks(engine, policy=TargetPolicy())
    monkeypatch.setattr(app.state, "webhooks", strict, raising=False)
    try:
        assert_problem(shop.post(ENDPOINTS, {"url": "https://127.0.0.1:8443/in"}), 422,
                       "webhook_url_not_allowed")
        assert_problem(shop.post(ENDPOINTS, {"url": "https://[::1]/in"}), 422,
                       "webhook_url_not_allowed")
        assert_problem(shop.post(ENDPOINTS, {"url": "https://169.254.169.254/latest"}), 422,
                       "webhook_url_not_allowed")
        assert_problem(shop.post(ENDPOINTS, {"url": "http://hooks.example.com/in"}), 422,
                       "invalid_webhook_url")
    finally:
        strict.close()


def test_a_merchant_updates_disables_and_deletes_an_endpoint(webhooks, shop, receiver):
    endpoint = create_endpoint(shop, receiver)
    path = f"{ENDPOINTS}/{endpoint['id']}"

    changed = patch(shop, path, {"event_types": ["settlement.paid", "settlement.failed"],
                                 "description": "payouts"})
    disabled = patch(shop, path, {"enabled": False})
    enabled = patch(shop, path, {"enabled": True, "event_types": None})
    refused = patch(shop, path, {"url": None})
    deleted = shop.delete(path)

    assert changed.status_code == 200, changed.text
    assert changed.json()["event_types"] == ["settlement.failed", "settlement.paid"]
    assert changed.json()["description"] == "payouts"
    assert (disabled.json()["enabled"], disabled.json()["status"],
            disabled.json()["disabled_reason"]) == (False, "disabled", "merchant")
    assert (enabled.json()["enabled"], enabled.json()["status"],
            enabled.json()["event_types"]) == (True, "active", None)
    assert_problem(refused, 422, "validation_error")
    assert deleted.status_code == 204
    assert_problem(shop.get(path), 404, "webhook_endpoint_not_found")
    assert_problem(shop.delete(path), 404, "webhook_endpoint_not_found")


def test_rotating_the_secret_signs_with_both_until_the_grace_period_ends(
    webhooks, shop, receiver
):
    endpoint = create_endpoint(shop, receiver)
    [old_secret] = receiver.secrets
    rotated = shop.post(f"{ENDPOINTS}/{endpoint['id']}/rotate-secret",
                        {"grace_period_seconds": 600})
    too_long = shop.post(f"{ENDPOINTS}/{endpoint['id']}/rotate-secret",
                         {"grace_period_seconds": 30 * 24 * 3600})
    default = shop.post(f"{ENDPOINTS}/{endpoint['id']}/rotate-secret")

    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    assert_problem(too_long, 422, "invalid_grace_period")
    assert default.status_code == 200, default.text
    expires_at = datetime.fromisoformat(default.json()["previous_secret_expires_at"])
    assert timedelta(hours=23) < expires_at - datetime.now(UTC) <= timedelta(hours=24)

    newest = default.json()["secret"]
    receiver.secrets[:] = [old_secret, new_secret, newest]
    deliver_one(webhooks, shop, endpoint)
    [request] = receiver.received
    # The default rotation ended the first one's grace: the first secret no longer signs.
    assert sorted(request.verified_by) == sorted([new_secret, newest])


def test_a_merchant_lists_deliveries_with_attempts_and_redelivers(webhooks, shop, receiver):
    endpoint = create_endpoint(shop, receiver)
    receiver.answer(500)
    first = deliver_one(webhooks, shop, endpoint)
    second = deliver_one(webhooks, shop, endpoint)

    page = shop.get(f"{ENDPOINTS}/{endpoint['id']}/deliveries", {"limit": 1}).json()
    rest = shop.get(f"{ENDPOINTS}/{endpoint['id']}/deliveries",
                    {"limit": 1, "starting_after": page["next_cursor"]}).json()
    failed_only = shop.get(f"{ENDPOINTS}/{endpoint['id']}/deliveries",
                           {"status": "pending"}).json()

    assert (page["has_more"], [d["id"] for d in page["data"]]) == (True, [second["id"]])
    assert (rest["has_more"], [d["id"] for d in rest["data"]]) == (False, [first["id"]])
    assert [d["id"] for d in failed_only["data"]] == [first["id"]]
    assert first["status"] == "pending" and first["last_status_code"] == 500
    [attempt] = first["attempts"]
    assert (attempt["trigger"], attempt["status_code"], attempt["error"]) == \
        ("scheduled", 500, None)
    assert attempt["latency_ms"] >= 0 and attempt["attempted_at"]
    assert first["payload"]["type"] == "qr_payment.succeeded"
    assert first["payload"]["data"]["amount"] == "10.50"
    assert first["webhook_id"] == f"evt_{uuid.UUID(first['event_id']).hex}"

    redelivered = shop.post(f"{DELIVERIES}/{first['id']}/redeliver", key="again-1")
    replayed = shop.post(f"{DELIVERIES}/{first['id']}/redeliver", key="again-1")

    assert redelivered.status_code == 200, redelivered.text
    assert redelivered.json()["status"] == "succeeded"
    assert [(a["trigger"], a["status_code"]) for a in redelivered.json()["attempts"]] == \
        [("scheduled", 500), ("manual", 200)]
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert shop.get(f"{DELIVERIES}/{first['id']}").json() == redelivered.json()
    ids = [r.webhook_id for r in receiver.received]
    assert ids.count(first["webhook_id"]) == 2 and len(receiver.received) == 3
    assert all(r.verified_by for r in receiver.received)


def test_a_merchant_sends_itself_a_test_event(webhooks, shop, receiver):
    endpoint = create_endpoint(shop, receiver)

    sent = shop.post(f"{ENDPOINTS}/{endpoint['id']}/test")

    assert sent.status_code == 201, sent.text
    assert (sent.json()["event_type"], sent.json()["status"]) == \
        ("webhook_endpoint.test", "succeeded")
    [request] = receiver.verified()
    assert request.payload["type"] == "webhook_endpoint.test"
    assert request.webhook_id == sent.json()["webhook_id"]


def test_another_merchants_endpoints_and_deliveries_are_not_found(
    webhooks, shop, stranger, receiver
):
    endpoint = create_endpoint(shop, receiver)
    sent = deliver_one(webhooks, shop, endpoint)
    path = f"{ENDPOINTS}/{endpoint['id']}"

    for response in (
        stranger.get(path),
        patch(stranger, path, {"enabled": False}),
        stranger.delete(path),
        stranger.post(f"{path}/rotate-secret"),
        stranger.post(f"{path}/test"),
        stranger.get(f"{path}/deliveries"),
    ):
        assert_problem(response, 404, "webhook_endpoint_not_found")
    for response in (stranger.get(f"{DELIVERIES}/{sent['id']}"),
                     stranger.post(f"{DELIVERIES}/{sent['id']}/redeliver")):
        assert_problem(response, 404, "webhook_delivery_not_found")
    assert stranger.get(ENDPOINTS).json()["data"] == []
    assert shop.get(path).json()["enabled"] is True
    assert len(receiver.received) == 1


def test_a_qr_payment_reaches_the_merchants_endpoint(webhooks, engine, shop, user, fund,
                                                      receiver):
    endpoint = create_endpoint(shop, receiver, event_types=["qr_payment.succeeded"])
    fund(user, 50_00)
    code = shop.post("/v1/merchants/me/qr-codes",
                     {"currency": "USD", "city": "Lisbon", "country_code": "PT"}).json()
    paid = user.post("/v1/qr/payments", {"payload": code["payload"], "amount": "20.00"})
    assert paid.status_code == 201, paid.text

    with engine.connect() as connection:
        row = connection.execute(select(outbox).where(
            outbox.c.event_type == "qr_payment.succeeded",
            outbox.c.aggregate_id == paid.json()["id"])).one()
    webhooks.handle(Event(row.event_id, row.event_type, row.aggregate_type, row.aggregate_id,
                          row.payload, row.created_at))
    webhooks.deliver_due(datetime.now(UTC))

    [request] = receiver.verified()
    data = request.payload["data"]
    assert request.payload["type"] == "qr_payment.succeeded"
    assert (data["payment_id"], data["merchant_id"]) == (paid.json()["id"], shop.id)
    assert (data["amount"], data["fee"], data["currency"]) == ("20.00", "0.12", "USD")
    delivered = shop.get(f"{ENDPOINTS}/{endpoint['id']}/deliveries").json()["data"]
    assert [d["status"] for d in delivered] == ["succeeded"]
