"""P2P payments and money requests against the real ledger: money moves once, or not at all."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import func, select

from pacioli.ledger import Ledger, credit, debit
from pacioli.ledger.domain import errors as e
from pacioli.ledger.storage.tables import outbox
from pacioli.payments import errors as pe
from pacioli.payments.chart import Chart, Purpose
from pacioli.payments.p2p import P2P, payment_id_for


@pytest.fixture
def chart(engine, ledger) -> Chart:
    return Chart(engine, ledger)


@pytest.fixture
def p2p(engine, ledger, chart) -> Iterator[P2P]:
    service = P2P(engine, ledger, chart)
    yield service
    service.close()


def fund(ledger: Ledger, chart: Chart, user_id: UUID, amount_minor: int, currency="USD") -> None:
    """Credit a user's wallet from the platform's bank account (as a top-up would)."""
    ledger.transfer(
        [debit(chart.platform(Purpose.BANK_SETTLEMENT, currency), amount_minor),
         credit(chart.wallet(user_id, currency), amount_minor)],
        idempotency_key=uuid.uuid4().hex,
    )


def available(ledger: Ledger, chart: Chart, user_id: UUID, currency="USD") -> int:
    account = ledger.get_account(chart.wallet(user_id, currency))
    return account.balances.available(account.normal_side)


def test_a_payment_moves_money_from_payer_wallet_to_payee_wallet(ledger, chart, p2p):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 10_000)

    answer = p2p.send(payer_user_id=alice, payee_user_id=bob, currency="USD",
                      amount_minor=2_550, note="dinner", idempotency_key="k1")

    assert answer.value.status == "succeeded" and not answer.replayed
    assert available(ledger, chart, alice) == 7_450
    assert available(ledger, chart, bob) == 2_550
    transfer = ledger.get_transfer(answer.value.transfer_id)
    assert transfer.metadata["payment_id"] == str(answer.value.id)


def test_a_retry_with_the_same_key_moves_money_once(ledger, chart, p2p):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 10_000)
    request = dict(payer_user_id=alice, payee_user_id=bob, currency="USD", amount_minor=1_000,
                   note="", idempotency_key="same")

    first = p2p.send(**request)
    second = p2p.send(**request)

    assert second.replayed and second.value.id == first.value.id
    assert available(ledger, chart, alice) == 9_000
    assert available(ledger, chart, bob) == 1_000


def test_the_same_key_for_another_payment_is_refused(ledger, chart, p2p):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 10_000)
    p2p.send(payer_user_id=alice, payee_user_id=bob, currency="USD", amount_minor=1_000,
             idempotency_key="k")

    with pytest.raises(pe.IdempotencyKeyReusedForPayment):
        p2p.send(payer_user_id=alice, payee_user_id=bob, currency="USD", amount_minor=2_000,
                 idempotency_key="k")
    assert available(ledger, chart, bob) == 1_000


def test_insufficient_funds_fails_the_payment_and_its_retry_gives_the_same_answer(
    ledger, chart, p2p
):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 500)
    request = dict(payer_user_id=alice, payee_user_id=bob, currency="USD", amount_minor=501,
                   idempotency_key="k")

    with pytest.raises(e.InsufficientFunds):
        p2p.send(**request)
    fund(ledger, chart, alice, 1_000)  # funds arrive, but the key's answer is recorded
    with pytest.raises(e.InsufficientFunds):
        p2p.send(**request)

    assert available(ledger, chart, alice) == 1_500
    assert available(ledger, chart, bob) == 0
    (payment,) = p2p.list_payments(alice)
    assert payment.status == "failed" and payment.failure_code == "insufficient_funds"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"amount_minor": 0}, pe.InvalidPayment),
        ({"amount_minor": -5}, pe.InvalidPayment),
        ({"amount_minor": 1.5}, pe.InvalidPayment),
        ({"note": "x" * 281}, pe.InvalidPayment),
        ({"currency": "XXX"}, e.UnknownAsset),
        ({"payee_user_id": "self"}, pe.PaymentToSelf),
    ],
)
def test_bad_payments_are_refused_and_move_nothing(ledger, chart, p2p, change, error):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 10_000)
    request = dict(payer_user_id=alice, payee_user_id=bob, currency="USD", amount_minor=100,
                   note="", idempotency_key=uuid.uuid4().hex)
    request.update(change)
    if request["payee_user_id"] == "self":
        request["payee_user_id"] = alice

    with pytest.raises(error):
        p2p.send(**request)
    assert available(ledger, chart, alice) == 10_000


def test_concurrent_payments_cannot_overdraw_a_wallet(ledger, chart, p2p):
    alice = uuid.uuid4()
    payees = [uuid.uuid4() for _ in range(20)]
    fund(ledger, chart, alice, 1_000)  # enough for 10 payments of 100
    outcomes: list[str] = []
    lock = threading.Lock()

    def pay(payee):
        try:
            p2p.send(payer_user_id=alice, payee_user_id=payee, currency="USD", amount_minor=100,
                     idempotency_key=uuid.uuid4().hex)
            result = "ok"
        except e.InsufficientFunds:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=pay, args=(payee,)) for payee in payees]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("ok") == 10 and outcomes.count("refused") == 10
    assert available(ledger, chart, alice) == 0
    assert sum(available(ledger, chart, payee) for payee in payees) == 1_000


def test_concurrent_requests_with_one_key_pay_once(ledger, chart, p2p):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 10_000)
    answers = []

    def pay():
        answers.append(p2p.send(payer_user_id=alice, payee_user_id=bob, currency="USD",
                                amount_minor=700, idempotency_key="one-key"))

    threads = [threading.Thread(target=pay) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({a.value.id for a in answers}) == 1
    assert available(ledger, chart, bob) == 700


def payment_events(engine, payment_id) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(outbox).where(
                outbox.c.aggregate_type == "p2p_payment",
                outbox.c.aggregate_id == str(payment_id),
            )
        ).scalar_one()


def crash_after_the_transfer(p2p, monkeypatch):
    """Make the process 'die' once between the ledger's commit and the record's write."""
    def crash(transfer):
        raise RuntimeError("process died")

    monkeypatch.setattr(p2p, "_write_succeeded", crash)


def test_a_payment_is_written_once_after_its_transfer(engine, ledger, chart, p2p):
    """One commit besides the ledger's: the record is written succeeded, with its event."""
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 1_000)

    payment = p2p.send(payer_user_id=alice, payee_user_id=bob, currency="USD",
                       amount_minor=300, note="hi", idempotency_key="once").value

    assert payment.id == payment_id_for(alice, "once")
    assert payment.status == "succeeded" and payment.completed_at == payment.created_at
    transfer = ledger.get_transfer(payment.transfer_id)
    assert transfer.metadata["idempotency_key"] == "once"
    assert transfer.created_at == payment.created_at
    assert payment_events(engine, payment.id) == 1


def test_a_crash_after_the_transfer_is_recorded_by_the_retry_and_moves_money_once(
    engine, ledger, chart, p2p, monkeypatch
):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 10_000)
    request = dict(payer_user_id=alice, payee_user_id=bob, currency="USD", amount_minor=300,
                   idempotency_key="crash")
    crash_after_the_transfer(p2p, monkeypatch)
    with pytest.raises(RuntimeError):
        p2p.send(**request)
    monkeypatch.undo()
    assert available(ledger, chart, bob) == 300  # posted, not acknowledged, not recorded
    assert p2p.list_payments(alice) == []

    answer = p2p.send(**request)

    assert answer.value.status == "succeeded" and answer.replayed
    assert available(ledger, chart, bob) == 300
    assert payment_events(engine, answer.value.id) == 1
    assert p2p.send(**request).value == answer.value


def test_a_crash_after_the_transfer_without_a_retry_is_recorded_by_the_recovery(
    engine, ledger, chart, p2p, monkeypatch
):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 10_000)
    since = datetime.now(UTC) - timedelta(seconds=5)
    request = dict(payer_user_id=alice, payee_user_id=bob, currency="USD", amount_minor=250,
                   note="lunch", idempotency_key="never-retried")
    crash_after_the_transfer(p2p, monkeypatch)
    with pytest.raises(RuntimeError):
        p2p.send(**request)
    monkeypatch.undo()

    assert p2p.record_unrecorded_payments(since=since) >= 1
    assert p2p.record_unrecorded_payments(since=since) == 0

    (payment,) = p2p.list_payments(alice)
    assert (payment.status, payment.amount_minor, payment.note) == ("succeeded", 250, "lunch")
    assert payment.id == payment_id_for(alice, "never-retried")
    assert payment_events(engine, payment.id) == 1
    retried = p2p.send(**request)
    assert retried.replayed and retried.value == payment
    assert available(ledger, chart, bob) == 250


def test_a_posted_transfer_overrides_a_failure_recorded_under_the_same_key(
    engine, ledger, chart, p2p, monkeypatch
):
    """Two requests with one key: the first is refused (no funds) and records a failure;
    the second, which read no record before that, posts once funds arrived. The record
    must say what the ledger did."""
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 500)
    request = dict(payer_user_id=alice, payee_user_id=bob, currency="USD", amount_minor=501,
                   idempotency_key="raced")
    with pytest.raises(e.InsufficientFunds):
        p2p.send(**request)
    fund(ledger, chart, alice, 1_000)
    monkeypatch.setattr(p2p, "_payment_row", lambda order: None)  # read before the failure

    answer = p2p.send(**request)
    monkeypatch.undo()

    assert answer.value.status == "succeeded" and answer.value.failure_code is None
    assert available(ledger, chart, bob) == 501
    assert payment_events(engine, answer.value.id) == 1
    assert p2p.send(**request).value == answer.value


def test_a_refusal_that_loses_the_race_answers_with_the_posted_payment(
    engine, ledger, chart, p2p, monkeypatch
):
    """The reverse order: the payment posted and was recorded first; a request with the
    same key that the ledger refuses (another body) does not record a failure over it."""
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 1_000)
    first = p2p.send(payer_user_id=alice, payee_user_id=bob, currency="USD", amount_minor=100,
                     idempotency_key="k")
    monkeypatch.setattr(p2p, "_payment_row", lambda order: None)

    with pytest.raises(pe.IdempotencyKeyReusedForPayment):
        p2p.send(payer_user_id=alice, payee_user_id=bob, currency="USD", amount_minor=200,
                 idempotency_key="k")
    monkeypatch.undo()

    (payment,) = p2p.list_payments(alice)
    assert payment == first.value and available(ledger, chart, bob) == 100


def test_an_unfinished_request_payment_is_finished_by_its_retry(
    engine, ledger, chart, p2p, monkeypatch
):
    """Paying a request records it first: a crash before the ledger loses nothing."""
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, bob, 10_000)
    asked = p2p.request(requester_user_id=alice, payer_user_id=bob, currency="USD",
                        amount_minor=300, idempotency_key="ask").value

    def crash(payment):
        raise RuntimeError("process died")

    monkeypatch.setattr(p2p, "_move", crash)
    with pytest.raises(RuntimeError):
        p2p.pay_request(payer_user_id=bob, request_id=asked.id, idempotency_key="pay")
    monkeypatch.undo()
    assert available(ledger, chart, alice) == 0

    answer = p2p.pay_request(payer_user_id=bob, request_id=asked.id, idempotency_key="pay")
    assert answer.value.status == "succeeded"
    assert available(ledger, chart, alice) == 300


def test_send_async_pays_once_for_concurrent_requests_with_one_key(
    engine, ledger, chart, p2p
):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 10_000)

    async def eight_at_once():
        return await asyncio.gather(*(
            p2p.send_async(payer_user_id=alice, payee_user_id=bob, currency="USD",
                           amount_minor=700, idempotency_key="async-key")
            for _ in range(8)
        ))

    answers = asyncio.run(eight_at_once())

    assert len({a.value.id for a in answers}) == 1
    assert sum(not a.replayed for a in answers) == 1
    assert available(ledger, chart, bob) == 700
    assert payment_events(engine, answers[0].value.id) == 1


def test_send_async_records_each_of_many_concurrent_payments_once(engine, ledger, chart, p2p):
    """Concurrent payments share the record statements' batches; each gets its own record
    and one event, and a retry of each finds its record and replays it."""
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 10_000)

    def pay_all(amounts):
        async def at_once():
            return await asyncio.gather(*(
                p2p.send_async(payer_user_id=alice, payee_user_id=bob, currency="USD",
                               amount_minor=amount, note=f"n{i}", idempotency_key=f"many-{i}")
                for i, amount in enumerate(amounts)
            ))
        return asyncio.run(at_once())

    amounts = list(range(1, 41))
    answers = pay_all(amounts)
    retried = pay_all(amounts)

    assert [a.value.amount_minor for a in answers] == amounts
    assert [a.value.note for a in answers] == [f"n{i}" for i in range(40)]
    assert not any(a.replayed for a in answers) and all(a.replayed for a in retried)
    assert [a.value for a in retried] == [a.value for a in answers]
    assert {a.value.id for a in answers} == {payment_id_for(alice, f"many-{i}")
                                             for i in range(40)}
    assert sorted(p.amount_minor for p in p2p.list_payments(alice, limit=100)) == amounts
    assert all(payment_events(engine, a.value.id) == 1 for a in answers)
    assert available(ledger, chart, bob) == sum(amounts)


def test_send_async_replays_a_recorded_failure(ledger, chart, p2p):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 100)
    request = dict(payer_user_id=alice, payee_user_id=bob, currency="USD", amount_minor=101,
                   idempotency_key="poor")
    with pytest.raises(e.InsufficientFunds):
        asyncio.run(p2p.send_async(**request))
    fund(ledger, chart, alice, 1_000)

    with pytest.raises(e.InsufficientFunds):  # the key's answer, though funds arrived since
        asyncio.run(p2p.send_async(**request))
    assert available(ledger, chart, bob) == 0


def test_send_async_turns_a_failure_recorded_after_its_read_into_the_payment(
    engine, ledger, chart, p2p, monkeypatch
):
    """A request that read no record, then posted, while another request with its key was
    refused and recorded a failure: the batched insert meets that record and the posted
    transfer's record replaces it, as in `send`."""
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, alice, 500)
    request = dict(payer_user_id=alice, payee_user_id=bob, currency="USD", amount_minor=501,
                   idempotency_key="raced-async")
    with pytest.raises(e.InsufficientFunds):
        p2p.send(**request)
    fund(ledger, chart, alice, 1_000)
    batches = p2p._record_batches()

    async def read_before_the_failure(payer_user_id, idempotency_key):
        return False

    monkeypatch.setattr(batches, "recorded", read_before_the_failure)
    answer = asyncio.run(p2p.send_async(**request))
    monkeypatch.undo()

    assert answer.value.status == "succeeded" and answer.value.failure_code is None
    assert available(ledger, chart, bob) == 501
    assert payment_events(engine, answer.value.id) == 1
    assert asyncio.run(p2p.send_async(**request)).value == answer.value


def test_a_money_request_paid_by_its_payer_moves_money_and_closes(ledger, chart, p2p):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, bob, 5_000)
    asked = p2p.request(requester_user_id=alice, payer_user_id=bob, currency="USD",
                        amount_minor=1_200, note="tickets", idempotency_key="r").value

    paid = p2p.pay_request(payer_user_id=bob, request_id=asked.id, idempotency_key="p").value

    assert paid.request_id == asked.id and paid.payee_user_id == alice
    assert p2p.get_request(alice, asked.id).status == "paid"
    assert available(ledger, chart, alice) == 1_200
    with pytest.raises(pe.MoneyRequestNotOpen):
        p2p.pay_request(payer_user_id=bob, request_id=asked.id, idempotency_key="p2")
    with pytest.raises(pe.MoneyRequestNotOpen):
        p2p.decline_request(payer_user_id=bob, request_id=asked.id)
    assert available(ledger, chart, alice) == 1_200


def test_a_retry_with_the_key_that_paid_a_request_replays_the_payment(ledger, chart, p2p):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, bob, 5_000)
    asked = p2p.request(requester_user_id=alice, payer_user_id=bob, currency="USD",
                        amount_minor=700, idempotency_key="r").value
    first = p2p.pay_request(payer_user_id=bob, request_id=asked.id, idempotency_key="p")

    again = p2p.pay_request(payer_user_id=bob, request_id=asked.id, idempotency_key="p")

    assert (again.value.id, again.replayed, first.replayed) == (first.value.id, True, False)
    assert available(ledger, chart, alice) == 700


def test_concurrent_retries_paying_one_request_with_one_key_pay_once(ledger, chart, p2p):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, bob, 5_000)
    asked = p2p.request(requester_user_id=alice, payer_user_id=bob, currency="USD",
                        amount_minor=900, idempotency_key="r").value
    outcomes = []

    def pay() -> None:
        try:
            outcomes.append(p2p.pay_request(payer_user_id=bob, request_id=asked.id,
                                            idempotency_key="once").value.id)
        except Exception as error:  # noqa: BLE001 - the test inspects what each thread got
            outcomes.append(error)

    threads = [threading.Thread(target=pay) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(outcomes)) == 1 and isinstance(outcomes[0], UUID), outcomes
    assert available(ledger, chart, alice) == 900


def test_a_declined_request_cannot_be_paid(ledger, chart, p2p):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, bob, 5_000)
    asked = p2p.request(requester_user_id=alice, payer_user_id=bob, currency="USD",
                        amount_minor=100, idempotency_key="r").value

    assert p2p.decline_request(payer_user_id=bob, request_id=asked.id).status == "declined"
    with pytest.raises(pe.MoneyRequestNotOpen):
        p2p.pay_request(payer_user_id=bob, request_id=asked.id, idempotency_key="p")
    assert available(ledger, chart, alice) == 0


def test_only_the_parties_see_a_request_and_only_the_payer_pays_it(ledger, chart, p2p):
    alice, bob, mallory = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    fund(ledger, chart, mallory, 5_000)
    asked = p2p.request(requester_user_id=alice, payer_user_id=bob, currency="USD",
                        amount_minor=100, idempotency_key="r").value

    with pytest.raises(pe.MoneyRequestNotFound):
        p2p.get_request(mallory, asked.id)
    with pytest.raises(pe.MoneyRequestNotFound):
        p2p.pay_request(payer_user_id=mallory, request_id=asked.id, idempotency_key="m")
    with pytest.raises(pe.MoneyRequestNotFound):
        p2p.decline_request(payer_user_id=alice, request_id=asked.id)  # alice asked; bob answers
    with pytest.raises(pe.MoneyRequestNotFound):
        p2p.cancel_request(requester_user_id=bob, request_id=asked.id)
    assert p2p.cancel_request(requester_user_id=alice, request_id=asked.id).status == "cancelled"


def test_a_failed_payment_leaves_the_request_open_for_another_try(ledger, chart, p2p):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    asked = p2p.request(requester_user_id=alice, payer_user_id=bob, currency="USD",
                        amount_minor=800, idempotency_key="r").value

    with pytest.raises(e.InsufficientFunds):
        p2p.pay_request(payer_user_id=bob, request_id=asked.id, idempotency_key="p1")
    fund(ledger, chart, bob, 1_000)
    p2p.pay_request(payer_user_id=bob, request_id=asked.id, idempotency_key="p2")

    assert p2p.get_request(bob, asked.id).status == "paid"
    assert available(ledger, chart, alice) == 800


def test_a_wallet_is_opened_once_per_user_and_currency(chart):
    user = uuid.uuid4()
    ids = []
    threads = [threading.Thread(target=lambda: ids.append(chart.wallet(user, "EUR")))
               for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(ids)) == 1
    assert chart.wallet(user, "USD") != ids[0]


def test_a_full_page_plus_one_is_returned_so_a_caller_knows_more_follow(p2p):
    """The API asks for its largest page (200) plus one to tell whether more follow."""
    alice, bob = uuid.uuid4(), uuid.uuid4()
    for index in range(202):
        p2p.request(requester_user_id=alice, payer_user_id=bob, currency="USD",
                    amount_minor=1, idempotency_key=f"r{index}")

    page = p2p.list_requests(alice, limit=201)
    rest = p2p.list_requests(alice, limit=201, starting_after=page[199].id)

    assert len(page) == 201
    assert len(rest) == 2 and rest[0].id == page[200].id
