"""`Ledger.transfer_async`: asyncio callers share the writer's batches with threads, and
get the same answers, replays and refusals as `transfer`."""

from __future__ import annotations

import asyncio

import pytest

from pacioli.ledger import Ledger, credit, debit
from pacioli.ledger.domain import errors as e


def open_account(ledger, new_key, normal_side="credit", **options):
    return ledger.open_account(
        asset_code="USD", normal_side=normal_side, idempotency_key=new_key(), **options
    ).value.id


def test_many_awaited_transfers_post_once_each_and_replay_their_first_answer(ledger, new_key):
    bank = open_account(ledger, new_key, "debit")
    wallets = [open_account(ledger, new_key) for _ in range(4)]
    keys = [new_key() for _ in range(40)]

    async def send_all():
        return await asyncio.gather(*(
            ledger.transfer_async(
                [debit(bank, 100 + index), credit(wallets[index % 4], 100 + index)],
                idempotency_key=key,
            )
            for index, key in enumerate(keys)
        ))

    first = asyncio.run(send_all())
    again = asyncio.run(send_all())
    assert [w.replayed for w in first] == [False] * 40
    assert [w.replayed for w in again] == [True] * 40
    assert [w.value.id for w in again] == [w.value.id for w in first]
    assert len({w.value.id for w in first}) == 40
    total = sum(100 + index for index in range(40))
    assert sum(ledger.get_account(w).balance_minor for w in wallets) == total
    assert ledger.get_account(bank).balance_minor == total


def test_an_awaited_transfer_is_refused_like_a_blocking_one(ledger, new_key):
    bank = open_account(ledger, new_key, "debit")
    wallet = open_account(ledger, new_key, debits_must_not_exceed_credits=True)
    with pytest.raises(e.InsufficientFunds):
        asyncio.run(ledger.transfer_async(
            [debit(wallet, 5), credit(bank, 5)], idempotency_key=new_key()
        ))
    key = new_key()
    asyncio.run(ledger.transfer_async([debit(bank, 5), credit(wallet, 5)], idempotency_key=key))
    with pytest.raises(e.IdempotencyKeyReused):
        asyncio.run(ledger.transfer_async(
            [debit(bank, 6), credit(wallet, 6)], idempotency_key=key
        ))
    assert ledger.get_account(wallet).balance_minor == 5


def test_without_batching_an_awaited_transfer_runs_on_a_worker_thread(engine, new_key):
    with Ledger(engine, batching=False) as unbatched:
        bank = open_account(unbatched, new_key, "debit")
        wallet = open_account(unbatched, new_key)
        written = asyncio.run(unbatched.transfer_async(
            [debit(bank, 7), credit(wallet, 7)], idempotency_key=new_key()
        ))
        assert not written.replayed
        assert unbatched.get_account(wallet).balance_minor == 7
