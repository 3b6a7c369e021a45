"""The Ledger's reads against the real database: postings and transfers, page by page,
filtered by account and by metadata containment."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from pacioli.ledger import Balances, Direction, Layer, credit, debit
from pacioli.ledger.domain import errors as e
from pacioli.ledger.domain.ids import uuid7


def open_account(ledger, new_key, normal_side="credit", **options) -> UUID:
    return ledger.open_account(
        asset_code="USD", normal_side=normal_side, idempotency_key=new_key(), **options
    ).value.id


def test_list_postings_pages_through_an_accounts_history_oldest_first(ledger, new_key):
    bank, wallet = open_account(ledger, new_key, "debit"), open_account(ledger, new_key)
    for amount in range(1, 8):
        ledger.transfer([debit(bank, amount), credit(wallet, amount)], idempotency_key=new_key())
    pages, cursor = [], None
    while True:
        page = ledger.list_postings(wallet, limit=3, starting_after=cursor)
        if not page:
            break
        pages.append(page)
        cursor = page[-1].account_seq
    assert [len(page) for page in pages] == [3, 3, 1]
    postings = [p for page in pages for p in page]
    assert [p.account_seq for p in postings] == list(range(1, 8))
    assert [p.amount_minor for p in postings] == list(range(1, 8))
    running = 0
    for posting in postings:
        running += posting.amount_minor
        assert posting.balances_after == Balances(credits_posted=running)
        assert (posting.direction, posting.layer, posting.asset_code) == (
            Direction.CREDIT, Layer.POSTED, "USD"
        )
    assert ledger.list_postings(wallet, starting_after=7) == []


def test_list_postings_shows_hold_releases_as_negative_pending_amounts(ledger, new_key):
    bank, wallet = open_account(ledger, new_key, "debit"), open_account(ledger, new_key)
    held = ledger.transfer([debit(bank, 40), credit(wallet, 40)], pending=True,
                           idempotency_key=new_key()).value
    ledger.post_pending(held.id, amount_minor=25, idempotency_key=new_key())
    assert [(p.layer, p.amount_minor, p.balances_after) for p in ledger.list_postings(wallet)] == [
        (Layer.PENDING, 40, Balances(credits_pending=40)),
        (Layer.PENDING, -40, Balances()),
        (Layer.POSTED, 25, Balances(credits_posted=25)),
    ]


def test_list_postings_of_an_unknown_account_is_not_found(ledger):
    with pytest.raises(e.AccountNotFound):
        ledger.list_postings(uuid7())


@pytest.mark.parametrize("limit", [0, -1, 501])
def test_list_postings_and_transfers_refuse_a_limit_out_of_range(ledger, new_key, limit):
    account = open_account(ledger, new_key)
    with pytest.raises(e.InvalidCommand):
        ledger.list_postings(account, limit=limit)
    with pytest.raises(e.InvalidCommand):
        ledger.list_transfers(limit=limit)


def test_list_transfers_pages_through_an_accounts_transfers_in_creation_order(ledger, new_key):
    bank, wallet = open_account(ledger, new_key, "debit"), open_account(ledger, new_key)
    other = open_account(ledger, new_key)
    made = [
        ledger.transfer([debit(bank, n), credit(wallet, n)], idempotency_key=new_key()).value
        for n in range(1, 6)
    ]
    ledger.transfer([debit(bank, 9), credit(other, 9)], idempotency_key=new_key())
    pages, cursor = [], None
    while page := ledger.list_transfers(limit=2, starting_after=cursor, account_id=wallet):
        pages.append(page)
        cursor = page[-1].id
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [t for page in pages for t in page] == made
    assert len(ledger.list_transfers(account_id=bank, limit=500)) == 6


def test_list_transfers_filters_by_metadata_containment(ledger, new_key):
    bank, wallet = open_account(ledger, new_key, "debit"), open_account(ledger, new_key)
    order = uuid4().hex

    def pay(amount, metadata):
        return ledger.transfer([debit(bank, amount), credit(wallet, amount)], metadata=metadata,
                               idempotency_key=new_key()).value.id

    captured = pay(1, {"order": order, "step": "capture", "customer": {"id": "c1", "vip": True}})
    refunded = pay(2, {"order": order, "step": "refund", "customer": {"id": "c1"}})
    unrelated = pay(3, {"order": uuid4().hex, "step": "capture"})

    def listed(**filters) -> list[UUID]:
        return [t.id for t in ledger.list_transfers(**filters)]

    assert listed(metadata={"order": order}) == [captured, refunded]
    assert listed(metadata={"order": order, "step": "refund"}) == [refunded]
    assert listed(metadata={"order": order, "customer": {"vip": True}}) == [captured]
    assert listed(metadata={"order": order, "step": "void"}) == []
    assert listed(account_id=wallet, metadata={"step": "capture"}) == [captured, unrelated]


def test_get_transfer_of_an_unknown_id_is_not_found(ledger):
    with pytest.raises(e.TransferNotFound):
        ledger.get_transfer(uuid7())
