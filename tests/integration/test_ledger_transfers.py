"""The Ledger's transfer commands against the real database: transfers, batches, holds,
reversals, and what every rejection leaves behind (nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from pacioli.ledger import (
    Balances,
    Direction,
    Layer,
    PendingStatus,
    TransferKind,
    TransferSpec,
    credit,
    debit,
)
from pacioli.ledger.domain import errors as e
from pacioli.ledger.domain.ids import uuid7


@dataclass
class Wallet:
    """A bank account (debit normal) that funded a no-overdraft wallet."""

    bank_id: object
    wallet_id: object


def open_account(ledger, new_key, asset_code="USD", normal_side="credit", **options):
    return ledger.open_account(
        asset_code=asset_code, normal_side=normal_side, idempotency_key=new_key(), **options
    ).value.id


def funded_wallet(ledger, new_key, amount_minor=1000, asset_code="USD") -> Wallet:
    bank_id = open_account(ledger, new_key, asset_code, "debit")
    wallet_id = open_account(ledger, new_key, asset_code, debits_must_not_exceed_credits=True)
    ledger.transfer(
        [debit(bank_id, amount_minor), credit(wallet_id, amount_minor)], idempotency_key=new_key()
    )
    return Wallet(bank_id, wallet_id)


def snapshot(ledger, *account_ids):
    """Each account's stored balances and status, and every posting it has."""
    return [
        (ledger.get_account(i), ledger.list_postings(i, limit=500)) for i in account_ids
    ]


def test_a_transfer_moves_posted_funds_and_records_each_running_balance(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    written = ledger.transfer(
        [debit(w.wallet_id, 250), credit(w.bank_id, 250)], metadata={"memo": "rent"},
        idempotency_key=new_key(),
    )
    made = written.value
    assert not written.replayed
    assert made.kind is TransferKind.POSTED and made.metadata == {"memo": "rent"}
    assert ledger.get_transfer(made.id) == made
    wallet = ledger.get_account(w.wallet_id)
    assert wallet.balances == Balances(debits_posted=250, credits_posted=1000)
    assert wallet.balance_minor == wallet.available_minor == 750
    assert ledger.get_account(w.bank_id).balance_minor == 750
    postings = ledger.list_postings(w.wallet_id)
    assert [(p.account_seq, p.direction, p.amount_minor) for p in postings] == [
        (1, Direction.CREDIT, 1000), (2, Direction.DEBIT, 250)
    ]
    assert postings[-1].balances_after == wallet.balances


def test_a_multi_asset_transfer_balanced_per_asset_commits(ledger, new_key):
    usd = funded_wallet(ledger, new_key, 1000, "USD")
    jpy = funded_wallet(ledger, new_key, 5000, "JPY")
    ledger.transfer(
        [
            debit(usd.wallet_id, 100, "USD"), credit(usd.bank_id, 100, "USD"),
            debit(jpy.bank_id, 15_000, "JPY"), credit(jpy.wallet_id, 15_000, "JPY"),
        ],
        idempotency_key=new_key(),
    )
    assert ledger.get_account(usd.wallet_id).balance_minor == 900
    assert ledger.get_account(jpy.wallet_id).balance_minor == 20_000


@pytest.mark.parametrize(
    ("make_legs", "options", "error_type"),
    [
        (lambda w: [debit(w.wallet_id, 1)], {}, e.TooFewLegs),
        (lambda w: [debit(w.wallet_id, 1), debit(w.bank_id, 1)], {}, e.TooFewLegs),
        (lambda w: [debit(w.wallet_id, 0), credit(w.bank_id, 0)], {}, e.InvalidAmount),
        (lambda w: [debit(w.wallet_id, -5), credit(w.bank_id, -5)], {}, e.InvalidAmount),
        (lambda w: [debit(w.wallet_id, 1.5), credit(w.bank_id, 1.5)], {}, e.InvalidAmount),
        (lambda w: [debit(w.wallet_id, 2), credit(w.bank_id, 1)], {}, e.UnbalancedTransfer),
        (lambda w: [debit(w.wallet_id, 1), credit(w.wallet_id, 1)], {},
         e.DuplicateAccountInTransfer),
        (lambda w: [debit(w.wallet_id, 1, "EUR"), credit(w.bank_id, 1, "EUR")], {},
         e.AssetMismatch),
        (lambda w: [debit(w.wallet_id, 1), credit(uuid7(), 1)], {}, e.AccountNotFound),
        (lambda w: [debit(w.wallet_id, 1001), credit(w.bank_id, 1001)], {},
         e.InsufficientFunds),
        (lambda w: [debit(w.wallet_id, 1), credit(w.bank_id, 1)],
         {"metadata": {"x": float("nan")}}, e.InvalidMetadata),
        (lambda w: [debit(w.wallet_id, 1), credit(w.bank_id, 1)],
         {"metadata": {"x": "y" * 9000}}, e.InvalidMetadata),
        (lambda w: [debit(w.wallet_id, 1), credit(w.bank_id, 1)],
         {"expires_at": datetime.now(UTC) + timedelta(hours=1)}, e.InvalidExpiry),
        (lambda w: [debit(w.wallet_id, 1), credit(w.bank_id, 1)],
         {"pending": True, "expires_at": datetime.now(UTC) - timedelta(seconds=1)},
         e.InvalidExpiry),
    ],
    ids=["one leg", "two debits", "zero", "negative", "float", "unbalanced", "duplicate",
         "asset mismatch", "unknown account", "insufficient funds", "nan metadata",
         "large metadata",
         "deadline on posted", "deadline past"],
)
def test_a_refused_transfer_raises_its_code_and_changes_nothing(
    ledger, new_key, make_legs, options, error_type
):
    w = funded_wallet(ledger, new_key, 1000)
    before = snapshot(ledger, w.bank_id, w.wallet_id)
    with pytest.raises(error_type) as refused:
        ledger.transfer(make_legs(w), idempotency_key=new_key(), **options)
    assert refused.value.code == error_type.code
    assert snapshot(ledger, w.bank_id, w.wallet_id) == before


def test_credits_must_not_exceed_debits_is_enforced_with_and_without_a_limit(ledger, new_key):
    capped = open_account(ledger, new_key, normal_side="debit", credits_must_not_exceed_debits=True)
    limited = open_account(
        ledger, new_key, normal_side="debit", credits_must_not_exceed_debits=True, limit_minor=30
    )
    other = open_account(ledger, new_key)
    with pytest.raises(e.ExceedsDebits):
        ledger.transfer([debit(other, 1), credit(capped, 1)], idempotency_key=new_key())
    ledger.transfer([debit(other, 30), credit(limited, 30)], idempotency_key=new_key())
    with pytest.raises(e.ExceedsDebits):
        ledger.transfer([debit(other, 1), credit(limited, 1)], idempotency_key=new_key())
    assert ledger.get_account(limited).balance_minor == -30
    assert ledger.get_account(capped).posting_count == 0


def test_a_limit_lets_a_no_overdraft_account_go_that_far_below_zero(ledger, new_key):
    bank = open_account(ledger, new_key, normal_side="debit")
    card = open_account(ledger, new_key, debits_must_not_exceed_credits=True, limit_minor=500)
    ledger.transfer([debit(card, 500), credit(bank, 500)], idempotency_key=new_key())
    with pytest.raises(e.InsufficientFunds):
        ledger.transfer([debit(card, 1), credit(bank, 1)], idempotency_key=new_key())
    assert ledger.get_account(card).balance_minor == -500


def test_a_transfer_can_bring_a_balance_to_the_storable_maximum_but_not_past_it(ledger, new_key):
    source = open_account(ledger, new_key, "ETH", "debit")
    sink = open_account(ledger, new_key, "ETH")
    largest_leg = 2**128 - 1
    for _ in range(2):
        ledger.transfer([debit(source, largest_leg), credit(sink, largest_leg)],
                        idempotency_key=new_key())
    # A third would pass 10**39 - 1, the largest NUMERIC(39,0).
    with pytest.raises(e.BalanceOverflow):
        ledger.transfer([debit(source, largest_leg), credit(sink, largest_leg)],
                        idempotency_key=new_key())
    assert ledger.get_account(sink).balances.credits_posted == 2 * largest_leg


# Linked batches.


def test_a_linked_batch_commits_together_with_one_batch_id(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1)
    shop = open_account(ledger, new_key)
    written = ledger.transfer_batch(
        [
            TransferSpec((debit(w.bank_id, 99), credit(w.wallet_id, 99))),
            TransferSpec((debit(w.wallet_id, 100), credit(shop, 100)), metadata={"order": "7"}),
        ],
        idempotency_key=new_key(),
    )
    first, second = written.value
    assert first.batch_id is not None and first.batch_id == second.batch_id
    assert [ledger.get_transfer(t.id) for t in written.value] == written.value
    assert ledger.get_account(shop).balance_minor == 100
    assert ledger.get_account(w.wallet_id).balance_minor == 0


def test_a_linked_batch_where_one_transfer_fails_commits_nothing(ledger, new_key):
    w = funded_wallet(ledger, new_key, 100)
    shop = open_account(ledger, new_key)
    before = snapshot(ledger, w.bank_id, w.wallet_id, shop)
    with pytest.raises(e.InsufficientFunds):
        ledger.transfer_batch(
            [
                TransferSpec((debit(w.wallet_id, 60), credit(shop, 60)), metadata={"n": 1}),
                TransferSpec((debit(w.wallet_id, 60), credit(shop, 60)), metadata={"n": 2}),
            ],
            idempotency_key=new_key(),
        )
    assert snapshot(ledger, w.bank_id, w.wallet_id, shop) == before
    assert ledger.list_transfers(account_id=shop) == []


def test_a_linked_batch_with_a_malformed_transfer_commits_nothing(ledger, new_key):
    w = funded_wallet(ledger, new_key, 100)
    before = snapshot(ledger, w.bank_id, w.wallet_id)
    with pytest.raises(e.UnbalancedTransfer):
        ledger.transfer_batch(
            [
                TransferSpec((debit(w.wallet_id, 1), credit(w.bank_id, 1))),
                TransferSpec((debit(w.wallet_id, 2), credit(w.bank_id, 1))),
            ],
            idempotency_key=new_key(),
        )
    assert snapshot(ledger, w.bank_id, w.wallet_id) == before


def test_an_empty_or_oversized_batch_is_refused(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    one = TransferSpec((debit(w.wallet_id, 1), credit(w.bank_id, 1)))
    with pytest.raises(e.BatchTooLarge):
        ledger.transfer_batch([], idempotency_key=new_key())
    with pytest.raises(e.BatchTooLarge):
        ledger.transfer_batch([one] * 129, idempotency_key=new_key())
    assert ledger.get_account(w.wallet_id).posting_count == 1


# Pending transfers.


def hold(ledger, new_key, w: Wallet, amount_minor, **options):
    return ledger.transfer(
        [debit(w.wallet_id, amount_minor), credit(w.bank_id, amount_minor)],
        pending=True, idempotency_key=new_key(), **options,
    ).value


def test_a_hold_reserves_funds_without_moving_them(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    held = hold(ledger, new_key, w, 400)
    assert held.kind is TransferKind.PENDING
    assert ledger.get_transfer(held.id).pending_status is PendingStatus.PENDING
    wallet = ledger.get_account(w.wallet_id)
    assert wallet.balances == Balances(credits_posted=1000, debits_pending=400)
    assert (wallet.balance_minor, wallet.available_minor) == (1000, 600)
    with pytest.raises(e.InsufficientFunds):
        hold(ledger, new_key, w, 601)


def test_posting_a_hold_in_full(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    held = hold(ledger, new_key, w, 400)
    written = ledger.post_pending(held.id, metadata={"capture": "c1"}, idempotency_key=new_key())
    posted = written.value
    assert posted.kind is TransferKind.POST_PENDING and posted.pending_id == held.id
    assert [p.amount_minor for p in posted.legs(Layer.POSTED)] == [400, 400]
    assert ledger.get_account(w.wallet_id).balances == Balances(400, 1000, 0, 0)
    stored = ledger.get_transfer(held.id)
    assert stored.pending_status is PendingStatus.POSTED
    assert stored.resolved_by_id == posted.id


def test_posting_part_of_a_hold_releases_the_rest(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    held = hold(ledger, new_key, w, 400)
    ledger.post_pending(held.id, amount_minor=150, idempotency_key=new_key())
    wallet = ledger.get_account(w.wallet_id)
    assert wallet.balances == Balances(debits_posted=150, credits_posted=1000)
    assert wallet.available_minor == 850


def test_posting_more_than_held_or_a_non_positive_amount_is_refused(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    held = hold(ledger, new_key, w, 400)
    before = snapshot(ledger, w.bank_id, w.wallet_id)
    with pytest.raises(e.PendingAmountExceeded):
        ledger.post_pending(held.id, amount_minor=401, idempotency_key=new_key())
    with pytest.raises(e.InvalidAmount):
        ledger.post_pending(held.id, amount_minor=0, idempotency_key=new_key())
    assert snapshot(ledger, w.bank_id, w.wallet_id) == before
    assert ledger.get_transfer(held.id).pending_status is PendingStatus.PENDING


def test_a_hold_of_more_than_two_legs_posts_only_in_full(ledger, new_key):
    a = funded_wallet(ledger, new_key, 100)
    b = funded_wallet(ledger, new_key, 100)
    shop = open_account(ledger, new_key)
    held = ledger.transfer(
        [debit(a.wallet_id, 60), debit(b.wallet_id, 40), credit(shop, 100)],
        pending=True, idempotency_key=new_key(),
    ).value
    with pytest.raises(e.PartialPostNotSupported):
        ledger.post_pending(held.id, amount_minor=50, idempotency_key=new_key())
    ledger.post_pending(held.id, idempotency_key=new_key())
    assert ledger.get_account(shop).balance_minor == 100


def test_voiding_a_hold_releases_it(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    held = hold(ledger, new_key, w, 400)
    voided = ledger.void_pending(held.id, idempotency_key=new_key()).value
    assert voided.kind is TransferKind.VOID_PENDING
    assert ledger.get_account(w.wallet_id).balances == Balances(credits_posted=1000)
    assert ledger.get_transfer(held.id).pending_status is PendingStatus.VOIDED


def test_a_resolved_hold_cannot_be_resolved_again(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    held = hold(ledger, new_key, w, 400)
    ledger.void_pending(held.id, idempotency_key=new_key())
    with pytest.raises(e.PendingTransferAlreadyResolved):
        ledger.post_pending(held.id, idempotency_key=new_key())
    with pytest.raises(e.PendingTransferAlreadyResolved):
        ledger.void_pending(held.id, idempotency_key=new_key())
    assert ledger.get_account(w.wallet_id).posting_count == 3


def test_resolving_what_is_not_a_hold_is_refused(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    posted = ledger.list_transfers(account_id=w.wallet_id)[0]
    with pytest.raises(e.TransferNotPending):
        ledger.post_pending(posted.id, idempotency_key=new_key())
    with pytest.raises(e.TransferNotPending):
        ledger.void_pending(posted.id, idempotency_key=new_key())
    for resolve in (ledger.post_pending, ledger.void_pending, ledger.reverse_transfer):
        with pytest.raises(e.TransferNotFound):
            resolve(uuid7(), idempotency_key=new_key())


def test_a_frozen_account_blocks_posting_a_hold_but_not_voiding_it(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    held = hold(ledger, new_key, w, 400)
    ledger.freeze_account(w.wallet_id, idempotency_key=new_key())
    with pytest.raises(e.AccountFrozen):
        ledger.post_pending(held.id, idempotency_key=new_key())
    ledger.void_pending(held.id, idempotency_key=new_key())
    assert ledger.get_account(w.wallet_id).balances.debits_pending == 0


# Reversals.


def test_a_reversal_undoes_a_transfer_and_links_to_it(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    original = ledger.transfer(
        [debit(w.wallet_id, 300), credit(w.bank_id, 300)], idempotency_key=new_key()
    ).value
    reversal = ledger.reverse_transfer(
        original.id, metadata={"reason": "duplicate"}, idempotency_key=new_key()
    ).value
    assert reversal.kind is TransferKind.REVERSAL and reversal.reverses_id == original.id
    assert reversal.metadata == {"reason": "duplicate"}
    assert ledger.get_transfer(original.id).reversed_by_id == reversal.id
    assert ledger.get_account(w.wallet_id).balance_minor == 1000
    with pytest.raises(e.TransferAlreadyReversed):
        ledger.reverse_transfer(original.id, idempotency_key=new_key())


def test_a_hold_is_not_reversible_but_its_capture_is(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    held = hold(ledger, new_key, w, 400)
    with pytest.raises(e.TransferNotReversible):
        ledger.reverse_transfer(held.id, idempotency_key=new_key())
    captured = ledger.post_pending(held.id, amount_minor=100, idempotency_key=new_key()).value
    ledger.reverse_transfer(captured.id, idempotency_key=new_key())
    assert ledger.get_account(w.wallet_id).balance_minor == 1000


def test_a_reversal_that_would_overdraw_is_refused(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    shop = open_account(ledger, new_key)
    top_up = ledger.list_transfers(account_id=w.wallet_id)[0]
    ledger.transfer([debit(w.wallet_id, 1000), credit(shop, 1000)], idempotency_key=new_key())
    with pytest.raises(e.InsufficientFunds):
        ledger.reverse_transfer(top_up.id, idempotency_key=new_key())
    assert ledger.get_transfer(top_up.id).reversed_by_id is None


# Amounts above 64 bits.


def test_an_eth_amount_above_2_to_the_64_round_trips_exactly(ledger, new_key):
    amount = 2**100 + 123_456_789
    w = funded_wallet(ledger, new_key, amount, "ETH")
    wallet = ledger.get_account(w.wallet_id)
    assert wallet.balances.credits_posted == amount
    (posting,) = ledger.list_postings(w.wallet_id)
    assert posting.amount_minor == amount
    assert posting.balances_after.credits_posted == amount


def test_amounts_come_back_as_int_never_decimal_or_float(ledger, new_key):
    w = funded_wallet(ledger, new_key, 10**30, "ETH")
    hold(ledger, new_key, w, 10**20)
    limited = open_account(
        ledger, new_key, "ETH", debits_must_not_exceed_credits=True, limit_minor=7
    )
    account = ledger.get_account(w.wallet_id)
    values = [
        *vars_of(account.balances),
        account.balance_minor,
        account.available_minor,
        account.posting_count,
        ledger.get_account(limited).limit_minor,
        *vars_of(ledger.balances_at(w.wallet_id, datetime.now(UTC))),
    ]
    for transfer in ledger.list_transfers(account_id=w.wallet_id):
        for posting in transfer.postings:
            values += [posting.amount_minor, posting.account_seq, *vars_of(posting.balances_after)]
    assert values and all(type(v) is int for v in values), [type(v) for v in values]


def vars_of(balances: Balances) -> list[int]:
    return [
        balances.debits_posted, balances.credits_posted,
        balances.debits_pending, balances.credits_pending,
    ]


# Metadata that PostgreSQL or the fingerprint cannot take.


@pytest.mark.parametrize("metadata", [{"note": "a\x00b"}, {"a\x00": "b"}])
def test_metadata_with_a_nul_character_is_invalid_metadata(ledger, new_key, metadata):
    w = funded_wallet(ledger, new_key, 1000)
    with pytest.raises(e.InvalidMetadata):
        ledger.transfer(
            [debit(w.wallet_id, 1), credit(w.bank_id, 1)], metadata=metadata,
            idempotency_key=new_key(),
        )


def test_metadata_that_is_not_json_is_invalid_metadata(ledger, new_key):
    w = funded_wallet(ledger, new_key, 1000)
    with pytest.raises(e.InvalidMetadata):
        ledger.transfer(
            [debit(w.wallet_id, 1), credit(w.bank_id, 1)], metadata={"raw": b"\x01"},
            idempotency_key=new_key(),
        )
