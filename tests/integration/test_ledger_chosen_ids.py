"""Transfer ids chosen by the caller (`TransferSpec(id=…)`) and linked batches submitted
without waiting (`Ledger.submit_linked_batches`), against the real database: a batch
that posts a hold an earlier batch, still in flight, creates; what a taken id, a refused
earlier batch and a replay do."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacioli.ledger import (
    Ledger,
    PendingStatus,
    PostPending,
    TransferKind,
    TransferSpec,
    credit,
    debit,
)
from pacioli.ledger.domain import errors as e
from pacioli.ledger.domain.ids import uuid7
from tests.integration.test_ledger_transfers import funded_wallet, hold, snapshot


def test_a_transfer_is_stored_under_the_id_its_caller_chose(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    chosen = uuid7()
    written = ledger.transfer_batch(
        [TransferSpec((debit(w.wallet_id, 300), credit(w.bank_id, 300)), pending=True,
                      id=chosen)],
        idempotency_key=new_key(),
    )
    assert written.value[0].id == chosen
    assert ledger.get_transfer(chosen).pending_status is PendingStatus.PENDING
    posted = ledger.post_pending(chosen, amount_minor=100, idempotency_key=new_key()).value
    assert posted.pending_id == chosen
    assert ledger.get_account(w.wallet_id).available_minor == 900


def test_a_taken_id_is_refused_and_nothing_is_written(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    taken = hold(ledger, new_key, w, 100).id
    before = snapshot(ledger, w.wallet_id, w.bank_id)
    with pytest.raises(e.TransferAlreadyExists) as refused:
        ledger.linked_batch(
            [TransferSpec((debit(w.wallet_id, 50), credit(w.bank_id, 50)), id=taken)],
            idempotency_key=new_key(),
        )
    assert refused.value.code == "transfer_already_exists"
    assert snapshot(ledger, w.wallet_id, w.bank_id) == before


def test_one_id_chosen_twice_in_a_batch_is_refused(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    chosen = uuid7()
    before = snapshot(ledger, w.wallet_id, w.bank_id)
    with pytest.raises(e.TransferAlreadyExists):
        ledger.transfer_batch(
            [TransferSpec((debit(w.wallet_id, 50), credit(w.bank_id, 50)), id=chosen),
             TransferSpec((debit(w.wallet_id, 60), credit(w.bank_id, 60)), id=chosen)],
            idempotency_key=new_key(),
        )
    assert snapshot(ledger, w.wallet_id, w.bank_id) == before


def test_a_replay_of_a_transfer_with_a_chosen_id_returns_the_first_result(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    key, chosen = new_key(), uuid7()
    spec = TransferSpec((debit(w.wallet_id, 70), credit(w.bank_id, 70)), id=chosen)
    first = ledger.transfer_batch([spec], idempotency_key=key)
    again = ledger.transfer_batch([spec], idempotency_key=key)
    assert again.replayed and again.value == first.value
    other = TransferSpec((debit(w.wallet_id, 70), credit(w.bank_id, 70)), id=uuid7())
    with pytest.raises(e.IdempotencyKeyReused):
        ledger.transfer_batch([other], idempotency_key=key)
    assert ledger.get_account(w.wallet_id).balance_minor == 930


def test_a_batch_posts_a_hold_that_the_batch_before_it_makes_while_both_are_in_flight(
    ledger, new_key
):
    w = funded_wallet(ledger, new_key, 1000)
    first_hold = hold(ledger, new_key, w, 400)
    rehold = uuid7()
    in_flight = ledger.submit_linked_batches([
        ([PostPending(first_hold.id, 150),
          TransferSpec((debit(w.wallet_id, 250), credit(w.bank_id, 250)), pending=True,
                       id=rehold)], new_key()),
        ([PostPending(rehold, 100)], new_key()),
    ])
    first, second = (answer.result().value for answer in in_flight)
    assert first[1].id == rehold and first[1].kind is TransferKind.PENDING
    assert second[0].pending_id == rehold
    assert ledger.get_transfer(rehold).pending_status is PendingStatus.POSTED
    wallet = ledger.get_account(w.wallet_id)
    assert (wallet.balances.debits_posted, wallet.balances.debits_pending) == (250, 0)
    assert wallet.available_minor == 750


def test_when_the_batch_that_makes_a_hold_is_refused_the_batch_posting_it_is_too(
    ledger, new_key
):
    w = funded_wallet(ledger, new_key, 1000)
    before = snapshot(ledger, w.wallet_id, w.bank_id)
    rehold = uuid7()
    in_flight = ledger.submit_linked_batches([
        ([TransferSpec((debit(w.wallet_id, 5000), credit(w.bank_id, 5000)), pending=True,
                       id=rehold)], new_key()),
        ([PostPending(rehold, 100)], new_key()),
    ])
    with pytest.raises(e.InsufficientFunds):
        in_flight[0].result()
    with pytest.raises(e.TransferNotFound):
        in_flight[1].result()
    assert snapshot(ledger, w.wallet_id, w.bank_id) == before


def test_batches_submitted_together_replay_under_their_keys(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    rehold = uuid7()
    batches = [
        ([TransferSpec((debit(w.wallet_id, 300), credit(w.bank_id, 300)), pending=True,
                       id=rehold)], new_key()),
        ([PostPending(rehold, 100)], new_key()),
    ]
    first = [answer.result() for answer in ledger.submit_linked_batches(batches)]
    again = [answer.result() for answer in ledger.submit_linked_batches(batches)]
    assert [w_.replayed for w_ in again] == [True, True]
    # Read back now (the hold is posted by now): the same transfers.
    assert [[t.id for t in w_.value] for w_ in again] == [[t.id for t in w_.value]
                                                          for w_ in first]
    assert ledger.get_account(w.wallet_id).balance_minor == 900


def test_without_batching_the_batches_run_one_after_another(engine, new_key):
    with Ledger(engine, batching=False) as ledger:
        w = funded_wallet(ledger, new_key, 1000)
        rehold = uuid7()
        in_flight = ledger.submit_linked_batches([
            ([TransferSpec((debit(w.wallet_id, 300), credit(w.bank_id, 300)), pending=True,
                           id=rehold)], new_key()),
            ([PostPending(rehold)], new_key()),
        ])
        assert [answer.done() for answer in in_flight] == [True, True]
        assert in_flight[1].result().value[0].pending_id == rehold
        assert ledger.get_account(w.wallet_id).balance_minor == 700


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(1, 40), st.booleans()), min_size=1, max_size=8))
def test_a_chain_of_post_and_rehold_batches_sent_at_once_moves_what_one_by_one_would(
    ledger, new_key, steps
):
    """Each step posts part of the last hold and re-holds the rest under a chosen id (or
    voids it): sent together they end where the same steps posted one at a time end."""
    endings = []
    for together in (True, False):
        w = funded_wallet(ledger, new_key, 1000)
        last, left, batches = hold(ledger, new_key, w, 500).id, 500, []
        for spend, rehold in steps:
            spend = min(spend, left)
            items = [PostPending(last, spend)]
            left -= spend
            if rehold and left:
                last = uuid7()
                items.append(TransferSpec(
                    (debit(w.wallet_id, left), credit(w.bank_id, left)), pending=True,
                    id=last))
            else:
                left = 0
            batches.append((items, new_key()))
            if not left:
                break
        if together:
            for answer in ledger.submit_linked_batches(batches):
                answer.result()
        else:
            for items, key in batches:
                ledger.linked_batch(items, idempotency_key=key)
        endings.append(ledger.get_account(w.wallet_id).balances)
    assert endings[0] == endings[1]
