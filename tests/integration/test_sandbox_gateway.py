"""The sandbox processor against a real PostgreSQL: every magic outcome, async outcomes,
callback delivery with retries, timeouts, idempotency, and no card number stored."""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from pacioli.gateways.base import (
    CardBrand,
    CardExpired,
    DeclineCode,
    GatewayIdempotencyKeyReused,
    GatewayReferenceNotFound,
    GatewayStatus,
    GatewayUnavailable,
    InvalidCardNumber,
    InvalidGatewayAmount,
    InvalidGatewayState,
    OperationKind,
    PaymentGateway,
    UnknownInstrument,
)
from pacioli.gateways.sandbox import SandboxGateway, SandboxSettings, magic, run_delivery_loop
from pacioli.gateways.signing import verify

SECRET = "whsec_integration"
S = GatewayStatus


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class Receiver:
    """A `send` that records what arrives and answers with the statuses it is given."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers) -> int:
        self.received.append((url, body, dict(headers)))
        if self.statuses:
            status = self.statuses.pop(0)
            if status < 0:
                raise ConnectionError("refused")
            return status
        return 200

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body, _ in self.received]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> SandboxSettings:
    return SandboxSettings(
        callback_base_url="http://pacioli.test", signing_secret=SECRET,
        async_delay_seconds=2, delayed_seconds=3600, authorization_timeout_seconds=30,
        callback_attempts_max=3, callback_retry_base_seconds=10,
    )


@pytest.fixture
def gateway(fresh_database_url, settings, clock):
    from pacioli.ledger.storage.database import make_engine

    engine = make_engine(fresh_database_url, pool_size=4)
    yield SandboxGateway(engine, settings, clock=clock)
    engine.dispose()


def key() -> str:
    return uuid.uuid4().hex


def card(gateway: SandboxGateway, number: str = magic.CARD_SUCCEEDS) -> str:
    return gateway.tokenize_card(number, 12, 2030, "123").token


def authorize(gateway: SandboxGateway, number: str, amount_minor: int = 1000):
    return gateway.authorize(card(gateway, number), amount_minor, "USD", idempotency_key=key())


def test_sandbox_satisfies_the_gateway_protocol(gateway):
    assert isinstance(gateway, PaymentGateway)


def test_tokenizing_returns_token_brand_last4_and_expiry(gateway):
    token = gateway.tokenize_card("4242 4242 4242 4242", 3, 2031, "123")
    assert token.token.startswith("tok_")
    assert (token.brand, token.last4, token.exp_month, token.exp_year) == (
        CardBrand.VISA, "4242", 3, 2031)


def test_tokenizing_refuses_a_bad_number_or_an_expired_card(gateway):
    with pytest.raises(InvalidCardNumber):
        gateway.tokenize_card("4242424242424241", 12, 2030, "123")
    with pytest.raises(CardExpired):
        gateway.tokenize_card(magic.CARD_SUCCEEDS, 10, 2026, "123")


def test_the_success_card_authorizes_captures_and_refunds(gateway):
    payment = authorize(gateway, magic.CARD_SUCCEEDS, 1500)
    assert (payment.status, payment.kind, payment.amount_minor) == (
        S.AUTHORIZED, OperationKind.PAYMENT, 1500)
    captured = gateway.capture(payment.reference, idempotency_key=key())
    assert captured.status is S.CAPTURED
    refund = gateway.refund(payment.reference, 500, idempotency_key=key())
    assert (refund.kind, refund.status, refund.amount_minor, refund.parent_reference) == (
        OperationKind.REFUND, S.REFUNDED, 500, payment.reference)
    assert gateway.fetch_status(payment.reference).status is S.CAPTURED
    gateway.refund(payment.reference, idempotency_key=key())
    assert gateway.fetch_status(payment.reference).status is S.REFUNDED
    with pytest.raises(InvalidGatewayState):
        gateway.refund(payment.reference, 1, idempotency_key=key())


@pytest.mark.parametrize(("number", "status", "code"), [
    (magic.CARD_DECLINED, S.DECLINED, DeclineCode.CARD_DECLINED),
    (magic.CARD_INSUFFICIENT_FUNDS, S.DECLINED, DeclineCode.INSUFFICIENT_FUNDS),
    (magic.CARD_EXPIRED, S.DECLINED, DeclineCode.EXPIRED_CARD),
    (magic.CARD_PROCESSING_ERROR, S.FAILED, DeclineCode.PROCESSING_ERROR),
])
def test_each_magic_card_gives_its_decline_at_once(gateway, number, status, code):
    payment = authorize(gateway, number)
    assert (payment.status, payment.decline_code) == (status, code)
    assert gateway.fetch_status(payment.reference) == payment
    [event] = gateway.events_for(payment.reference)
    assert event.event_type == f"payment.{status}"
    with pytest.raises(InvalidGatewayState):
        gateway.capture(payment.reference, idempotency_key=key())


def test_the_async_card_is_pending_until_its_outcome_is_due(gateway, clock):
    payment = authorize(gateway, magic.CARD_ASYNC_SUCCEEDS)
    assert payment.status is S.PENDING
    assert gateway.events_for(payment.reference) == []
    clock.advance(1)
    assert gateway.fetch_status(payment.reference).status is S.PENDING
    clock.advance(1)
    assert gateway.fetch_status(payment.reference).status is S.AUTHORIZED
    [event] = gateway.events_for(payment.reference)
    assert (event.event_type, event.sequence) == ("payment.authorized", 1)


def test_the_async_decline_card_is_declined_by_callback(gateway, clock):
    payment = authorize(gateway, magic.CARD_ASYNC_DECLINED)
    receiver = Receiver()
    assert gateway.deliver_due(clock.now, receiver).delivered == []
    report = gateway.deliver_due(clock.advance(2), receiver)
    assert len(report.delivered) == 1
    [event] = receiver.events()
    assert (event["type"], event["status"], event["decline_code"], event["gateway_reference"]) \
        == ("payment.declined", "declined", "card_declined", payment.reference)
    assert gateway.fetch_status(payment.reference).status is S.DECLINED


def test_the_timeout_card_stays_pending_then_fails_with_timeout_and_no_callback(gateway, clock):
    payment = authorize(gateway, magic.CARD_TIMEOUT)
    receiver = Receiver()
    clock.advance(29)
    gateway.deliver_due(clock.now, receiver)
    assert gateway.fetch_status(payment.reference).status is S.PENDING
    clock.advance(1)
    timed_out = gateway.fetch_status(payment.reference)
    assert (timed_out.status, timed_out.decline_code) == (S.FAILED, DeclineCode.TIMEOUT)
    gateway.deliver_due(clock.advance(3600), receiver)
    assert receiver.received == []
    assert gateway.events_for(payment.reference) == []


def test_a_pending_authorization_can_be_voided_and_its_outcome_never_comes(gateway, clock):
    payment = authorize(gateway, magic.CARD_ASYNC_SUCCEEDS)
    assert gateway.void(payment.reference, idempotency_key=key()).status is S.VOIDED
    clock.advance(10)
    assert gateway.fetch_status(payment.reference).status is S.VOIDED
    assert [e.event_type for e in gateway.events_for(payment.reference)] == ["payment.voided"]


def test_capture_of_part_of_an_authorization_and_over_capture_refused(gateway):
    payment = authorize(gateway, magic.CARD_SUCCEEDS, 1000)
    with pytest.raises(InvalidGatewayAmount):
        gateway.capture(payment.reference, 1001, idempotency_key=key())
    gateway.capture(payment.reference, 600, idempotency_key=key())
    with pytest.raises(InvalidGatewayAmount):
        gateway.refund(payment.reference, 601, idempotency_key=key())


def test_events_carry_increasing_sequences_per_reference(gateway):
    payment = authorize(gateway, magic.CARD_SUCCEEDS)
    gateway.capture(payment.reference, idempotency_key=key())
    gateway.refund(payment.reference, idempotency_key=key())
    events = gateway.events_for(payment.reference)
    assert [(e.event_type, e.sequence) for e in events] == [
        ("payment.authorized", 1), ("payment.captured", 2), ("payment.refunded", 3)]


def test_the_same_idempotency_key_returns_the_first_result_and_acts_once(gateway):
    token = card(gateway)
    first_key = key()
    first = gateway.authorize(token, 700, "USD", idempotency_key=first_key)
    again = gateway.authorize(token, 700, "USD", idempotency_key=first_key)
    assert again == first
    with pytest.raises(GatewayIdempotencyKeyReused):
        gateway.authorize(token, 701, "USD", idempotency_key=first_key)
    capture_key = key()
    gateway.capture(first.reference, idempotency_key=capture_key)
    assert gateway.capture(first.reference, idempotency_key=capture_key).status is S.CAPTURED
    assert len(gateway.events_for(first.reference)) == 2


def test_the_magic_amount_503_is_gateway_unavailable_and_records_nothing(gateway):
    token = card(gateway)
    same_key = key()
    with pytest.raises(GatewayUnavailable) as caught:
        gateway.authorize(token, magic.AMOUNT_UNAVAILABLE, "USD", idempotency_key=same_key)
    assert caught.value.code == "gateway_unavailable"
    # The key was not used up: a retry with a real amount goes through.
    assert gateway.authorize(token, 504, "USD", idempotency_key=same_key).status is S.AUTHORIZED


def test_bad_amounts_currencies_tokens_and_references_are_refused(gateway):
    token = card(gateway)
    for amount, currency in ((0, "USD"), (-5, "USD"), (10.5, "USD"), (True, "USD"),
                             (100, "usd"), (100, "US")):
        with pytest.raises(InvalidGatewayAmount):
            gateway.authorize(token, amount, currency, idempotency_key=key())
    with pytest.raises(UnknownInstrument):
        gateway.authorize("tok_missing", 100, "USD", idempotency_key=key())
    with pytest.raises(GatewayReferenceNotFound):
        gateway.fetch_status("pay_missing")


@pytest.mark.parametrize(("account", "operation", "status", "code"), [
    (magic.BANK_SUCCEEDS, "debit", S.CAPTURED, None),
    (magic.BANK_SUCCEEDS, "payout", S.PAID_OUT, None),
    (magic.BANK_ACCOUNT_CLOSED, "debit", S.FAILED, DeclineCode.ACCOUNT_CLOSED),
    (magic.BANK_ACCOUNT_CLOSED, "payout", S.FAILED, DeclineCode.ACCOUNT_CLOSED),
    (magic.BANK_INSUFFICIENT_FUNDS, "debit", S.FAILED, DeclineCode.INSUFFICIENT_FUNDS),
])
def test_bank_debits_and_payouts_are_pending_then_settle_by_callback(
    gateway, clock, account, operation, status, code
):
    token = gateway.tokenize_bank_account(account, magic.ROUTING_NUMBER)
    assert token.last4 == account[-4:]
    result = getattr(gateway, operation)(token.token, 2500, "USD", idempotency_key=key())
    assert result.status is S.PENDING
    receiver = Receiver()
    gateway.deliver_due(clock.advance(2), receiver)
    [event] = receiver.events()
    assert (event["status"], event["decline_code"]) == (status, code)
    assert event["amount_minor"] == 2500
    assert gateway.fetch_status(result.reference).status is status


def test_the_delayed_bank_account_settles_only_after_the_long_delay(gateway, clock):
    token = gateway.tokenize_bank_account(magic.BANK_DELAYED, magic.ROUTING_NUMBER).token
    payout = gateway.payout(token, 100, "USD", idempotency_key=key())
    receiver = Receiver()
    gateway.deliver_due(clock.advance(3599), receiver)
    assert receiver.received == []
    assert gateway.fetch_status(payout.reference).status is S.PENDING
    gateway.deliver_due(clock.advance(1), receiver)
    assert [e["type"] for e in receiver.events()] == ["payout.paid_out"]


def test_deliver_due_signs_each_callback_and_posts_to_the_callback_url(gateway, clock):
    payment = authorize(gateway, magic.CARD_SUCCEEDS)
    receiver = Receiver()
    gateway.deliver_due(clock.now, receiver)
    [(url, body, headers)] = receiver.received
    assert url == "http://pacioli.test/v1/gateways/sandbox/callbacks"
    assert verify(SECRET, body, headers["Pacioli-Signature"], clock.now)
    event = json.loads(body)
    assert event["gateway_reference"] == payment.reference
    assert headers["Pacioli-Event-Id"] == event["id"]
    assert datetime.fromisoformat(event["occurred_at"]) == clock.now


def test_a_failed_delivery_is_retried_with_backoff_until_a_2xx(gateway, clock):
    payment = authorize(gateway, magic.CARD_SUCCEEDS)
    receiver = Receiver(500, -1)  # a server error, then a refused connection, then 200
    report = gateway.deliver_due(clock.now, receiver)
    assert len(report.retrying) == 1
    assert gateway.deliver_due(clock.advance(9), receiver).retrying == []  # not yet due
    assert len(gateway.deliver_due(clock.advance(1), receiver).retrying) == 1  # after 10 s
    assert gateway.deliver_due(clock.advance(19), receiver).delivered == []
    assert len(gateway.deliver_due(clock.advance(1), receiver).delivered) == 1  # after 20 s
    [event] = gateway.events_for(payment.reference)
    assert (event.attempts, event.delivered_at) == (3, clock.now)
    assert len(receiver.received) == 3
    assert gateway.deliver_due(clock.advance(3600), receiver).delivered == []


def test_a_callback_is_abandoned_after_the_last_attempt(gateway, clock):
    payment = authorize(gateway, magic.CARD_SUCCEEDS)
    receiver = Receiver(503, 503, 503)
    for _ in range(3):
        report = gateway.deliver_due(clock.advance(3600), receiver)
    assert len(report.abandoned) == 1
    [event] = gateway.events_for(payment.reference)
    assert event.abandoned_at is not None and event.delivered_at is None
    gateway.deliver_due(clock.advance(3600), receiver)
    assert len(receiver.received) == 3


def test_callbacks_go_out_in_the_order_they_happened(gateway, clock):
    payment = authorize(gateway, magic.CARD_SUCCEEDS)
    clock.advance(1)
    gateway.capture(payment.reference, idempotency_key=key())
    receiver = Receiver()
    gateway.deliver_due(clock.now, receiver)
    assert [(e["type"], e["sequence"]) for e in receiver.events()] == [
        ("payment.authorized", 1), ("payment.captured", 2)]


def test_send_event_resends_a_delivered_event_on_purpose(gateway, clock):
    payment = authorize(gateway, magic.CARD_SUCCEEDS)
    receiver = Receiver()
    gateway.deliver_due(clock.now, receiver)
    [event] = gateway.events_for(payment.reference)
    assert gateway.send_event(event.event_id, receiver, clock.now) == 200
    assert receiver.received[0][1] == receiver.received[1][1]


def test_state_survives_a_new_gateway_object_as_a_restart(gateway, fresh_database_url, settings,
                                                          clock):
    payment = authorize(gateway, magic.CARD_ASYNC_SUCCEEDS)
    from pacioli.ledger.storage.database import make_engine

    engine = make_engine(fresh_database_url, pool_size=2)
    try:
        restarted = SandboxGateway(engine, settings, clock=clock)
        clock.advance(5)
        assert restarted.fetch_status(payment.reference).status is S.AUTHORIZED
    finally:
        engine.dispose()


def test_no_sandbox_table_row_holds_a_card_number(gateway, clock):
    numbers = [magic.CARD_SUCCEEDS, magic.CARD_DECLINED, magic.CARD_ASYNC_SUCCEEDS,
               magic.CARD_TIMEOUT, "5555555555554444"]
    for number in numbers:
        token = gateway.tokenize_card(number, 12, 2030, "987")
        gateway.authorize(token.token, 1234, "USD", idempotency_key=key())
    gateway.deliver_due(clock.advance(60), Receiver())
    with gateway._engine.connect() as connection:
        tables = connection.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND (tablename LIKE 'sandbox%' OR tablename = 'gateway_events')"
        )).scalars().all()
        dump = " ".join(
            str(row) for table in tables
            for row in connection.execute(text(f'SELECT * FROM "{table}"')))
    assert {"sandbox_instruments", "sandbox_operations", "sandbox_callbacks"} <= set(tables)
    assert "4444" in dump  # the last four digits are kept
    for number in numbers:
        assert number not in dump


def test_one_idempotency_key_used_by_many_threads_at_once_authorizes_once(gateway):
    token = card(gateway)
    same_key = key()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(
            lambda _: gateway.authorize(token, 900, "USD", idempotency_key=same_key), range(8)))
    assert len({r.reference for r in results}) == 1
    with gateway._engine.connect() as connection:
        count = connection.execute(text(
            "SELECT count(*) FROM sandbox_operations WHERE instrument_token = :t"), {"t": token}
        ).scalar_one()
    assert count == 1


def test_a_capture_racing_a_void_leaves_exactly_one_winner(gateway):
    for _ in range(5):
        payment = authorize(gateway, magic.CARD_SUCCEEDS)

        def attempt(operation: str, reference: str = payment.reference) -> str:
            try:
                getattr(gateway, operation)(reference, idempotency_key=key())
                return operation
            except InvalidGatewayState:
                return "refused"

        with ThreadPoolExecutor(2) as pool:
            outcomes = sorted(pool.map(attempt, ["capture", "void"]))
        assert outcomes in (["capture", "refused"], ["refused", "void"])
        final = gateway.fetch_status(payment.reference).status
        assert final is (S.CAPTURED if "capture" in outcomes else S.VOIDED)


def test_two_deliverers_at_once_send_each_callback_once(gateway, clock):
    references = [authorize(gateway, magic.CARD_SUCCEEDS).reference for _ in range(20)]
    receiver = Receiver()
    lock = threading.Lock()

    def slow_send(url, body, headers):
        time.sleep(0.005)
        with lock:
            return receiver(url, body, headers)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: gateway.deliver_due(clock.now, slow_send), range(2)))
    sent = [e["gateway_reference"] for e in receiver.events()]
    assert sorted(sent) == sorted(references)


def test_the_delivery_loop_delivers_until_stopped(gateway, clock):
    payment = authorize(gateway, magic.CARD_SUCCEEDS)
    receiver = Receiver()
    stop = threading.Event()

    def send_and_stop(url, body, headers):
        stop.set()
        return receiver(url, body, headers)

    rounds = run_delivery_loop(gateway, send_and_stop, stop=stop, interval_seconds=0.01,
                               clock=clock)
    assert rounds >= 1
    assert [e["gateway_reference"] for e in receiver.events()] == [payment.reference]
