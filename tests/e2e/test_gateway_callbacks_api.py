"""POST /v1/gateways/{name}/callbacks through HTTP, fed by the sandbox's own deliveries."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from pacioli.api.errors import install_error_handlers
from pacioli.api.routes import gateways as gateway_routes
from pacioli.gateways.base import (
    CardExpired,
    GatewayReferenceNotFound,
    GatewayStatus,
    GatewayUnavailable,
    InvalidCardNumber,
    InvalidGatewayState,
    InvalidSignature,
)
from pacioli.gateways.callbacks import (
    GatewayEvent,
    HandlerRegistry,
    gateway_events,
    is_superseded,
    latest_event,
    record_callback,
    register_handler,
)
from pacioli.gateways.sandbox import SandboxGateway, SandboxSettings, magic
from pacioli.gateways.signing import sign
from tests.e2e.conftest import assert_problem

SECRET = "whsec_e2e_callbacks"
URL = "/v1/gateways/sandbox/callbacks"


@pytest.fixture(scope="module")
def callbacks_client(engine) -> Iterator[TestClient]:
    """A small app with the gateways router (app.py includes it separately)."""
    app = FastAPI()
    app.state.engine = engine
    app.state.gateway_secrets = {"sandbox": SECRET}
    install_error_handlers(app)
    app.include_router(gateway_routes.router)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def gateway(engine) -> SandboxGateway:
    settings = SandboxSettings(callback_base_url="http://testserver", signing_secret=SECRET)
    return SandboxGateway(engine, settings)


@pytest.fixture
def send(callbacks_client):
    def send(url: str, body: bytes, headers) -> int:
        return callbacks_client.post(url, content=body, headers=dict(headers)).status_code

    return send


@pytest.fixture
def seen() -> Iterator[list[GatewayEvent]]:
    """Every payment event the handlers were given during the test."""
    events: list[GatewayEvent] = []
    unregister = register_handler("payment.", events.append)
    yield events
    unregister()


def now() -> datetime:
    return datetime.now(UTC)


def authorized_payment(gateway: SandboxGateway, amount_minor: int = 1000):
    token = gateway.tokenize_card(magic.CARD_SUCCEEDS, 12, 2030, "123").token
    return gateway.authorize(token, amount_minor, "USD", idempotency_key=uuid.uuid4().hex)


def event_body(reference: str, **fields) -> bytes:
    body = {
        "id": f"evt_{uuid.uuid4().hex}", "type": "payment.captured", "kind": "payment",
        "gateway_reference": reference, "status": "captured", "amount_minor": 100,
        "currency": "USD", "sequence": 1, "occurred_at": now().isoformat(), **fields,
    }
    return json.dumps(body).encode()


def post_signed(client: TestClient, body: bytes, *, at: datetime | None = None,
                secret: str = SECRET, name: str = "sandbox"):
    header = sign(secret, body, at or now())
    return client.post(f"/v1/gateways/{name}/callbacks", content=body,
                       headers={"Pacioli-Signature": header,
                                "Content-Type": "application/json"})


def stored(engine, event_id: str) -> list:
    with engine.connect() as connection:
        return connection.execute(
            select(gateway_events).where(gateway_events.c.event_id == event_id)
        ).all()


def test_a_signed_callback_is_accepted_stored_and_handled(gateway, send, seen, engine):
    payment = authorized_payment(gateway)
    report = gateway.deliver_due(now(), send)
    [event] = gateway.events_for(payment.reference)
    assert event.event_id in report.delivered
    [handled] = [e for e in seen if e.reference == payment.reference]
    assert (handled.event_type, handled.status, handled.amount_minor, handled.sequence) == (
        "payment.authorized", GatewayStatus.AUTHORIZED, 1000, 1)
    [row] = stored(engine, event.event_id)
    assert row.gateway == "sandbox" and row.handled_at is not None


def test_the_answer_says_received_and_not_duplicate(callbacks_client):
    response = post_signed(callbacks_client, event_body("pay_answer"))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "duplicate": False}


def test_a_duplicate_callback_says_duplicate_and_is_handled_once(
    gateway, send, seen, callbacks_client, engine
):
    payment = authorized_payment(gateway)
    gateway.deliver_due(now(), send)
    [event] = gateway.events_for(payment.reference)
    assert gateway.send_event(event.event_id, send, now()) == 200
    again = post_signed(callbacks_client, event.body.encode())
    assert again.json() == {"received": True, "duplicate": True}
    assert len([e for e in seen if e.reference == payment.reference]) == 1
    assert len(stored(engine, event.event_id)) == 1


def test_a_bad_signature_is_a_401_problem_and_stores_nothing(callbacks_client, engine):
    body = event_body("pay_forged")
    response = post_signed(callbacks_client, body, secret="whsec_wrong")
    assert_problem(response, 401, "invalid_signature")
    assert stored(engine, json.loads(body)["id"]) == []
    unsigned = callbacks_client.post(URL, content=body)
    assert_problem(unsigned, 401, "invalid_signature")


def test_a_tampered_body_is_refused(callbacks_client):
    body = event_body("pay_tampered")
    header = sign(SECRET, body, now())
    tampered = body.replace(b'"amount_minor": 100', b'"amount_minor": 100000')
    response = callbacks_client.post(URL, content=tampered,
                                     headers={"Pacioli-Signature": header})
    assert_problem(response, 401, "invalid_signature")


def test_a_stale_timestamp_is_refused_as_a_replay(gateway, callbacks_client, engine):
    body = event_body("pay_stale")
    response = post_signed(callbacks_client, body, at=now() - timedelta(minutes=6))
    problem = assert_problem(response, 401, "invalid_signature")
    assert "tolerance" in problem["detail"]
    assert stored(engine, json.loads(body)["id"]) == []


def test_an_unknown_gateway_is_a_404_problem(callbacks_client):
    response = post_signed(callbacks_client, event_body("pay_x"), name="acme")
    assert_problem(response, 404, "gateway_not_found")


def test_a_signed_body_that_is_not_an_event_is_a_422_problem(callbacks_client):
    for body in (b"not json", event_body("pay_bad", amount_minor=1.5),
                 event_body("pay_bad", status="exploded")):
        assert_problem(post_signed(callbacks_client, body), 422, "invalid_callback")


def test_out_of_order_events_are_all_stored_and_the_stale_one_is_recognised(
    gateway, send, seen, engine
):
    payment = authorized_payment(gateway)
    gateway.capture(payment.reference, idempotency_key=uuid.uuid4().hex)
    authorized, captured = gateway.events_for(payment.reference)
    assert gateway.send_event(captured.event_id, send, now()) == 200
    assert gateway.send_event(authorized.event_id, send, now()) == 200

    arrived = [e for e in seen if e.reference == payment.reference]
    assert [e.sequence for e in arrived] == [2, 1]
    assert not is_superseded(engine, arrived[0])
    assert is_superseded(engine, arrived[1])
    # A handler that follows the rule ends with the latest state, whatever the order.
    state = {}
    for event in arrived:
        if not is_superseded(engine, event):
            state[event.reference] = event.status
    assert state[payment.reference] is GatewayStatus.CAPTURED
    assert latest_event(engine, "sandbox", payment.reference).status is GatewayStatus.CAPTURED


def test_a_failing_handler_leaves_the_event_unhandled_for_the_redelivery(
    gateway, send, engine
):
    payment = authorized_payment(gateway)
    calls: list[str] = []

    def flaky(event: GatewayEvent) -> None:
        if event.reference != payment.reference:
            return
        calls.append(event.event_id)
        if len(calls) == 1:
            raise RuntimeError("the payment flow's database was busy")

    unregister = register_handler("payment.authorized", flaky)
    try:
        first = gateway.deliver_due(now(), send)
        [event] = gateway.events_for(payment.reference)
        assert event.event_id in first.retrying
        assert stored(engine, event.event_id)[0].handled_at is None
        second = gateway.deliver_due(now() + timedelta(seconds=10), send)
        assert event.event_id in second.delivered
    finally:
        unregister()
    assert calls == [event.event_id, event.event_id]
    assert stored(engine, event.event_id)[0].handled_at is not None


@pytest.mark.parametrize(("error", "status", "code"), [
    (GatewayUnavailable(), 502, "gateway_unavailable"),
    (InvalidCardNumber(), 422, "invalid_card_number"),
    (CardExpired(), 422, "card_expired"),
    (GatewayReferenceNotFound(), 404, "gateway_reference_not_found"),
    (InvalidGatewayState(), 409, "invalid_gateway_state"),
    (InvalidSignature(), 401, "invalid_signature"),
])
def test_gateway_errors_become_problems_with_their_status_and_code(error, status, code):
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom():
        raise error

    with TestClient(app) as client:
        assert_problem(client.get("/boom"), status, code)


def test_the_same_callback_arriving_on_many_threads_at_once_is_stored_and_handled_once(engine):
    registry = HandlerRegistry()
    calls: list[str] = []

    def slow(event: GatewayEvent) -> None:
        time.sleep(0.05)
        calls.append(event.event_id)

    registry.register("", slow)
    body = event_body("pay_concurrent")
    header = {"Pacioli-Signature": sign(SECRET, body, now())}

    def deliver(_: int):
        return record_callback(engine, "sandbox", header, body, SECRET, now(),
                               registry=registry)

    with ThreadPoolExecutor(6) as pool:
        receipts = list(pool.map(deliver, range(6)))
    assert sorted(r.new for r in receipts) == [False] * 5 + [True]
    assert calls == [json.loads(body)["id"]]
    assert len(stored(engine, json.loads(body)["id"])) == 1
