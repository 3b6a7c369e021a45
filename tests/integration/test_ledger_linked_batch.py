"""Linked batches that resolve holds and create transfers in one step, against the real
database: consuming part of a hold and re-holding the rest, capturing a hold and splitting
the money, and what a refusal anywhere in the batch leaves behind (nothing)."""

from __future__ import annotations

import pytest

from pacioli.ledger import (
    Balances,
    PendingStatus,
    PostPending,
    TransferKind,
    TransferSpec,
    VoidPending,
    credit,
    debit,
)
from pacioli.ledger.domain import errors as e
from pacioli.ledger.domain.ids import uuid7
from tests.integration.test_ledger_transfers import (
    funded_wallet,
    hold,
    open_account,
    snapshot,
)


def test_part_of_a_hold_is_posted_and_the_rest_held_again_in_one_step(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    clearing = w.bank_id
    held = hold(ledger, new_key, w, 400)
    written = ledger.linked_batch(
        [
            PostPending(held.id, amount_minor=150, metadata={"fill": "f1"}),
            TransferSpec((debit(w.wallet_id, 250), credit(clearing, 250)), pending=True),
        ],
        idempotency_key=new_key(),
    )
    posted, rehold = written.value
    assert posted.kind is TransferKind.POST_PENDING and posted.pending_id == held.id
    assert rehold.kind is TransferKind.PENDING
    assert posted.batch_id is not None and posted.batch_id == rehold.batch_id
    wallet = ledger.get_account(w.wallet_id)
    # 1000 funded, 150 spent, 250 still held: 600 available throughout.
    assert wallet.balances == Balances(
        debits_posted=150, credits_posted=1000, debits_pending=250
    )
    assert wallet.available_minor == 600
    assert ledger.get_transfer(held.id).pending_status is PendingStatus.POSTED
    assert ledger.get_transfer(rehold.id).pending_status is PendingStatus.PENDING
    assert [ledger.get_transfer(t.id) for t in written.value] == written.value


def test_a_capture_and_its_split_commit_together(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    clearing = open_account(ledger, new_key)
    supplier, fees = open_account(ledger, new_key), open_account(ledger, new_key)
    held = ledger.transfer(
        [debit(w.wallet_id, 500), credit(clearing, 500)], pending=True,
        idempotency_key=new_key(),
    ).value
    ledger.linked_batch(
        [
            PostPending(held.id),
            TransferSpec((debit(clearing, 500), credit(supplier, 470), credit(fees, 30))),
        ],
        idempotency_key=new_key(),
    )
    assert ledger.get_account(w.wallet_id).balance_minor == 500
    assert ledger.get_account(clearing).balance_minor == 0
    assert ledger.get_account(supplier).balance_minor == 470
    assert ledger.get_account(fees).balance_minor == 30


def test_a_void_in_a_batch_releases_its_hold(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    first, second = hold(ledger, new_key, w, 300), hold(ledger, new_key, w, 200)
    ledger.linked_batch(
        [VoidPending(first.id), PostPending(second.id, amount_minor=50)],
        idempotency_key=new_key(),
    )
    assert ledger.get_account(w.wallet_id).balances == Balances(
        debits_posted=50, credits_posted=1000
    )
    assert ledger.get_transfer(first.id).pending_status is PendingStatus.VOIDED
    assert ledger.get_transfer(second.id).pending_status is PendingStatus.POSTED


def test_a_refusal_anywhere_in_the_batch_changes_nothing(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    held = hold(ledger, new_key, w, 400)
    before = snapshot(ledger, w.bank_id, w.wallet_id)
    # Posting 150 releases the hold; re-holding 900 of the 850 left must fail, and with it
    # the post.
    with pytest.raises(e.InsufficientFunds):
        ledger.linked_batch(
            [
                PostPending(held.id, amount_minor=150),
                TransferSpec((debit(w.wallet_id, 900), credit(w.bank_id, 900)), pending=True),
            ],
            idempotency_key=new_key(),
        )
    assert snapshot(ledger, w.bank_id, w.wallet_id) == before
    assert ledger.get_transfer(held.id).pending_status is PendingStatus.PENDING


@pytest.mark.parametrize("second", ["post", "void"])
def test_a_hold_resolved_twice_in_one_batch_is_refused(ledger, new_key, second):
    w = funded_wallet(ledger, new_key, 1000)
    held = hold(ledger, new_key, w, 400)
    again = PostPending(held.id) if second == "post" else VoidPending(held.id)
    with pytest.raises(e.PendingTransferAlreadyResolved):
        ledger.linked_batch(
            [PostPending(held.id, amount_minor=10), again], idempotency_key=new_key()
        )
    assert ledger.get_transfer(held.id).pending_status is PendingStatus.PENDING


def test_unknown_holds_bad_items_and_sizes_are_refused(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    one = TransferSpec((debit(w.wallet_id, 1), credit(w.bank_id, 1)))
    with pytest.raises(e.TransferNotFound):
        ledger.linked_batch([one, PostPending(uuid7())], idempotency_key=new_key())
    with pytest.raises(e.BatchTooLarge):
        ledger.linked_batch([], idempotency_key=new_key())
    with pytest.raises(e.BatchTooLarge):
        ledger.linked_batch([one] * 129, idempotency_key=new_key())
    with pytest.raises(e.InvalidCommand):
        ledger.linked_batch([one, "post"], idempotency_key=new_key())
    assert ledger.get_account(w.wallet_id).posting_count == 1


def test_a_repeated_batch_replays_and_a_changed_one_is_refused(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    held = hold(ledger, new_key, w, 400)
    key = new_key()
    items = [
        PostPending(held.id, amount_minor=100),
        TransferSpec((debit(w.wallet_id, 300), credit(w.bank_id, 300)), pending=True),
    ]
    first = ledger.linked_batch(items, idempotency_key=key)
    again = ledger.linked_batch(items, idempotency_key=key)
    assert again.replayed and not first.replayed
    assert [t.id for t in again.value] == [t.id for t in first.value]
    with pytest.raises(e.IdempotencyKeyReused):
        ledger.linked_batch([PostPending(held.id, amount_minor=99)], idempotency_key=key)
    assert ledger.get_account(w.wallet_id).balances.debits_pending == 300
