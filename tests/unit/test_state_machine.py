"""The pure StateMachine, driven directly with in-memory account states (no database).

Every rejection goes through `Harness.refuses`, which also checks that the rejected
command changed nothing: not the accounts, transfers, keys or assets, and not the effects
the storage layer would write.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from pacioli.ledger.domain import commands as c
from pacioli.ledger.domain import errors as e
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.domain.model import (
    AccountFlags,
    AccountState,
    AccountStatus,
    Balances,
    Direction,
    Layer,
    Leg,
    PendingStatus,
    Transfer,
    TransferKind,
    TransferSpec,
)
from pacioli.ledger.domain.money import AMOUNT_MAX_MINOR, BALANCE_MAX_MINOR, Asset
from pacioli.ledger.domain.state_machine import (
    LEGS_MAX,
    LINKED_TRANSFERS_MAX,
    METADATA_BYTES_MAX,
    TIMEOUT_SECONDS_MAX,
    Outcome,
    StateMachine,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ASSETS = [Asset("USD", 2), Asset("EUR", 2), Asset("JPY", 0), Asset("ETH", 18)]
NO_OVERDRAFT = AccountFlags(debits_must_not_exceed_credits=True)
NO_CREDIT_PAST_DEBITS = AccountFlags(credits_must_not_exceed_debits=True)


def account_state(
    asset_code: str = "USD",
    normal_side: Direction = Direction.CREDIT,
    *,
    status: AccountStatus = AccountStatus.OPEN,
    flags: AccountFlags = AccountFlags(),
    limit_minor: int | None = None,
    balances: Balances = Balances(),
) -> AccountState:
    return AccountState(
        id=uuid7(),
        asset_code=asset_code,
        normal_side=normal_side,
        status=status,
        flags=flags,
        limit_minor=limit_minor,
        balances=balances,
        posting_count=0,
        metadata={},
        created_at=NOW - timedelta(days=1),
    )


def debit(account: AccountState, amount_minor: int, asset_code: str | None = None) -> Leg:
    return Leg(account.id, Direction.DEBIT, amount_minor, asset_code)


def credit(account: AccountState, amount_minor: int, asset_code: str | None = None) -> Leg:
    return Leg(account.id, Direction.CREDIT, amount_minor, asset_code)


def transfers(*specs: TransferSpec) -> c.CreateTransfers:
    return c.CreateTransfers(tuple(specs))


def spec(*legs: Leg, **options) -> TransferSpec:
    return TransferSpec(tuple(legs), **options)


class Harness:
    """A StateMachine over some accounts, and helpers to apply commands to it."""

    def __init__(self, *accounts: AccountState) -> None:
        self.machine = StateMachine(
            assets={a.code: a for a in ASSETS},
            accounts={a.id: a for a in accounts},
            transfers={},
            keys={},
            now=NOW,
            new_id=uuid7,
        )

    def submit(
        self,
        command: c.Command,
        *,
        key: str | None = None,
        client_id: str = "client",
        request_hash: bytes | None = None,
    ) -> Outcome | e.DomainError:
        if request_hash is None:
            request_hash = c.fingerprint(command)
        submission = c.Submission(command, client_id, key or uuid4().hex, request_hash)
        return self.machine.apply(submission)

    def ok(self, command: c.Command, **submit_options) -> Outcome:
        outcome = self.submit(command, **submit_options)
        assert isinstance(outcome, Outcome), outcome
        return outcome

    def refuses(
        self, command: c.Command, error_type: type[e.DomainError], **submit_options
    ) -> e.DomainError:
        before = self.snapshot()
        rejection = self.submit(command, **submit_options)
        assert type(rejection) is error_type, rejection
        assert rejection.code == error_type.code
        assert rejection.detail
        assert self.snapshot() == before, "a rejected command changed the state"
        return rejection

    def transfer(self, *legs: Leg, **options) -> Transfer:
        return self.ok(transfers(spec(*legs, **options))).transfers[0]

    def hold(
        self, payer: AccountState, payee: AccountState, amount_minor: int, **options
    ) -> Transfer:
        legs = (debit(payer, amount_minor), credit(payee, amount_minor))
        return self.transfer(*legs, pending=True, **options)

    def balances(self, account: AccountState) -> Balances:
        return self.machine.accounts[account.id].balances

    def account(self, account: AccountState) -> AccountState:
        return self.machine.accounts[account.id]

    def stored_transfer(self, transfer: Transfer) -> Transfer:
        return self.machine.transfers[transfer.id]

    def snapshot(self) -> tuple:
        m = self.machine
        effects = m.effects
        return (
            {i: a.copy() for i, a in m.accounts.items()},
            dict(m.transfers),
            dict(m.keys),
            dict(m.assets),
            list(effects.assets),
            list(effects.opened_account_ids),
            set(effects.changed_account_ids),
            list(effects.transfers),
            list(effects.events),
            list(effects.keys),
        )


def funded_wallet(amount_minor: int = 10_000) -> tuple[Harness, AccountState, AccountState]:
    """A no-overdraft wallet holding `amount_minor`, and the bank account that funded it."""
    bank = account_state(normal_side=Direction.DEBIT)
    wallet = account_state(flags=NO_OVERDRAFT)
    harness = Harness(bank, wallet)
    harness.transfer(debit(bank, amount_minor), credit(wallet, amount_minor))
    return harness, bank, wallet


# The shape of a transfer.


def test_a_posted_transfer_moves_posted_balances_and_records_running_balances():
    bank, wallet = account_state(normal_side=Direction.DEBIT), account_state()
    harness = Harness(bank, wallet)
    made = harness.transfer(debit(bank, 1050), credit(wallet, 1050), metadata={"memo": "top-up"})
    assert made.kind is TransferKind.POSTED
    assert made.metadata == {"memo": "top-up"}
    assert made.created_at == NOW
    assert harness.balances(bank) == Balances(debits_posted=1050)
    assert harness.balances(wallet) == Balances(credits_posted=1050)
    first, second = made.postings
    assert (first.account_id, first.direction, first.layer, first.amount_minor) == (
        bank.id, Direction.DEBIT, Layer.POSTED, 1050
    )
    assert first.balances_after == Balances(debits_posted=1050)
    assert second.balances_after == Balances(credits_posted=1050)
    assert first.account_seq == second.account_seq == 1
    assert all(p.transfer_id == made.id for p in made.postings)
    assert harness.account(wallet).posting_count == 1


def test_account_seq_counts_up_per_account():
    harness, bank, wallet = funded_wallet(100)
    made = harness.transfer(debit(bank, 5), credit(wallet, 5))
    assert [p.account_seq for p in made.postings] == [2, 2]
    assert harness.account(bank).posting_count == 2


@pytest.mark.parametrize(
    "legs",
    [
        lambda a, b: (),
        lambda a, b: (debit(a, 1),),
        lambda a, b: (debit(a, 1), debit(b, 1)),
        lambda a, b: (credit(a, 1), credit(b, 1)),
    ],
    ids=["no legs", "one leg", "two debits", "two credits"],
)
def test_a_transfer_needs_a_debit_leg_and_a_credit_leg(legs):
    a, b = account_state(), account_state()
    Harness(a, b).refuses(transfers(spec(*legs(a, b))), e.TooFewLegs)


def test_a_transfer_holds_at_most_legs_max_legs():
    accounts = [account_state() for _ in range(LEGS_MAX + 1)]
    harness = Harness(*accounts)
    half = LEGS_MAX // 2
    legs_max = [debit(a, 1) for a in accounts[:half]] + [
        credit(a, 1) for a in accounts[half:LEGS_MAX]
    ]
    harness.transfer(*legs_max)
    too_many = [debit(accounts[0], half + 1)] + [credit(a, 1) for a in accounts[1:]]
    harness.refuses(transfers(spec(*too_many)), e.TooManyLegs)


@pytest.mark.parametrize(
    "amount", [0, -1, 2**128, 1.0, 10.5, True, "100", None], ids=repr
)
def test_a_leg_amount_is_an_int_from_1_to_2_to_the_128_minus_1(amount):
    a, b = account_state(), account_state()
    Harness(a, b).refuses(transfers(spec(debit(a, amount), credit(b, amount))), e.InvalidAmount)


def test_the_largest_leg_amount_is_accepted():
    a, b = account_state("ETH"), account_state("ETH")
    harness = Harness(a, b)
    harness.transfer(debit(a, AMOUNT_MAX_MINOR), credit(b, AMOUNT_MAX_MINOR))
    assert harness.balances(b).credits_posted == 2**128 - 1


def test_an_account_appears_in_one_leg_only():
    a, b = account_state(), account_state()
    harness = Harness(a, b)
    command = transfers(spec(debit(a, 2), credit(b, 1), credit(a, 1)))
    harness.refuses(command, e.DuplicateAccountInTransfer)


def test_an_unbalanced_transfer_is_refused():
    a, b = account_state(), account_state()
    rejection = Harness(a, b).refuses(
        transfers(spec(debit(a, 100), credit(b, 99))), e.UnbalancedTransfer
    )
    assert "USD" in rejection.detail


def test_a_transfer_balances_per_asset_not_in_total():
    usd, jpy = account_state("USD"), account_state("JPY")
    # 100 minor units leave and 100 arrive, but in two different assets.
    Harness(usd, jpy).refuses(
        transfers(spec(debit(usd, 100), credit(jpy, 100))), e.UnbalancedTransfer
    )


def test_a_multi_asset_transfer_balanced_per_asset_is_accepted():
    usd_a, usd_b = account_state("USD"), account_state("USD")
    jpy_a, jpy_b = account_state("JPY"), account_state("JPY")
    harness = Harness(usd_a, usd_b, jpy_a, jpy_b)
    made = harness.transfer(
        debit(usd_a, 100), credit(usd_b, 100), debit(jpy_a, 15_000), credit(jpy_b, 15_000)
    )
    assert [p.asset_code for p in made.postings] == ["USD", "USD", "JPY", "JPY"]
    assert harness.balances(jpy_b).credits_posted == 15_000


def test_a_multi_asset_transfer_unbalanced_in_one_asset_is_refused():
    usd_a, usd_b = account_state("USD"), account_state("USD")
    jpy_a, jpy_b = account_state("JPY"), account_state("JPY")
    command = transfers(
        spec(debit(usd_a, 100), credit(usd_b, 100), debit(jpy_a, 2), credit(jpy_b, 1))
    )
    rejection = Harness(usd_a, usd_b, jpy_a, jpy_b).refuses(command, e.UnbalancedTransfer)
    assert "JPY" in rejection.detail


def test_a_leg_naming_another_asset_than_its_account_is_refused():
    a, b = account_state("USD"), account_state("USD")
    command = transfers(spec(debit(a, 100, "EUR"), credit(b, 100, "EUR")))
    Harness(a, b).refuses(command, e.AssetMismatch)


def test_a_leg_naming_its_accounts_asset_is_accepted():
    a, b = account_state("USD"), account_state("USD")
    Harness(a, b).transfer(debit(a, 100, "USD"), credit(b, 100, "USD"))


@pytest.mark.parametrize(
    ("pending", "expires_at"),
    [
        (False, NOW + timedelta(hours=1)),
        (True, datetime(2026, 3, 1, 13, 0)),
        (True, NOW),
        (True, NOW - timedelta(seconds=1)),
    ],
    ids=["deadline on a posted transfer", "naive deadline", "deadline now", "deadline past"],
)
def test_a_deadline_is_for_pending_transfers_and_lies_in_the_future(pending, expires_at):
    a, b = account_state(), account_state()
    command = transfers(spec(debit(a, 1), credit(b, 1), pending=pending, expires_at=expires_at))
    Harness(a, b).refuses(command, e.InvalidExpiry)


def test_timeout_seconds_sets_the_deadline_from_the_machines_clock():
    harness, bank, wallet = funded_wallet(1000)
    held = harness.hold(wallet, bank, 300, timeout_seconds=90)
    assert held.expires_at == NOW + timedelta(seconds=90)
    harness.machine.now = NOW + timedelta(seconds=89)
    harness.refuses(c.ExpirePending(held.id), e.PendingTransferNotExpired)
    harness.machine.now = NOW + timedelta(seconds=90)
    harness.ok(c.ExpirePending(held.id))


@pytest.mark.parametrize(
    "options",
    [
        {"pending": False, "timeout_seconds": 60},
        {"pending": True, "timeout_seconds": 60, "expires_at": NOW + timedelta(hours=1)},
        {"pending": True, "timeout_seconds": 0},
        {"pending": True, "timeout_seconds": -1},
        {"pending": True, "timeout_seconds": 1.5},
        {"pending": True, "timeout_seconds": True},
        {"pending": True, "timeout_seconds": TIMEOUT_SECONDS_MAX + 1},
    ],
    ids=["posted", "both deadlines", "zero", "negative", "float", "bool", "too long"],
)
def test_timeout_seconds_is_a_positive_bounded_int_on_a_pending_transfer(options):
    a, b = account_state(), account_state()
    Harness(a, b).refuses(transfers(spec(debit(a, 1), credit(b, 1), **options)), e.InvalidExpiry)


def test_the_longest_timeout_is_accepted():
    a, b = account_state(), account_state()
    held = Harness(a, b).transfer(
        debit(a, 1), credit(b, 1), pending=True, timeout_seconds=TIMEOUT_SECONDS_MAX
    )
    assert held.expires_at == NOW + timedelta(seconds=TIMEOUT_SECONDS_MAX)


@pytest.mark.parametrize(
    "metadata",
    [
        ["not", "an", "object"],
        "text",
        None,
        {1: "int key"},
        {"x": math.nan},
        {"x": math.inf},
        {"x": object()},
        {"x": b"bytes"},
        {"x": "y" * METADATA_BYTES_MAX},
    ],
    ids=["list", "str", "None", "int key", "nan", "inf", "object", "bytes", "too large"],
)
def test_transfer_metadata_is_a_small_json_object_with_string_keys(metadata):
    a, b = account_state(), account_state()
    command = transfers(spec(debit(a, 1), credit(b, 1), metadata=metadata))
    # fingerprint() cannot hash some of these (see the Ledger-level test); the machine
    # must refuse them whatever the hash.
    Harness(a, b).refuses(command, e.InvalidMetadata, request_hash=bytes(32))


def test_metadata_just_under_the_size_limit_is_accepted():
    a, b = account_state(), account_state()
    filler = "y" * (METADATA_BYTES_MAX - len('{"x": ""}'))
    Harness(a, b).transfer(debit(a, 1), credit(b, 1), metadata={"x": filler})


def test_a_leg_on_an_unknown_account_is_refused():
    a = account_state()
    stranger = account_state()  # never given to the machine
    Harness(a).refuses(transfers(spec(debit(a, 1), credit(stranger, 1))), e.AccountNotFound)


def test_a_frozen_account_takes_part_in_no_transfer():
    a, frozen = account_state(), account_state(status=AccountStatus.FROZEN)
    harness = Harness(a, frozen)
    harness.refuses(transfers(spec(debit(a, 1), credit(frozen, 1))), e.AccountFrozen)
    harness.refuses(
        transfers(spec(debit(frozen, 1), credit(a, 1), pending=True)), e.AccountFrozen
    )


def test_a_closed_account_takes_part_in_no_transfer():
    a, closed = account_state(), account_state(status=AccountStatus.CLOSED)
    Harness(a, closed).refuses(transfers(spec(debit(a, 1), credit(closed, 1))), e.AccountClosed)


# Balance rules.


def test_a_no_overdraft_account_can_spend_exactly_its_balance():
    harness, bank, wallet = funded_wallet(500)
    harness.refuses(transfers(spec(debit(wallet, 501), credit(bank, 501))), e.InsufficientFunds)
    harness.transfer(debit(wallet, 500), credit(bank, 500))
    assert harness.balances(wallet) == Balances(debits_posted=500, credits_posted=500)


def test_a_limit_lets_a_no_overdraft_account_go_that_far_below_zero():
    bank = account_state(normal_side=Direction.DEBIT)
    wallet = account_state(flags=NO_OVERDRAFT, limit_minor=300)
    harness = Harness(bank, wallet)
    harness.refuses(transfers(spec(debit(wallet, 301), credit(bank, 301))), e.InsufficientFunds)
    harness.transfer(debit(wallet, 300), credit(bank, 300))
    harness.refuses(transfers(spec(debit(wallet, 1), credit(bank, 1))), e.InsufficientFunds)


def test_pending_debits_count_against_a_no_overdraft_account():
    harness, bank, wallet = funded_wallet(100)
    harness.transfer(debit(wallet, 80), credit(bank, 80), pending=True)
    harness.refuses(
        transfers(spec(debit(wallet, 21), credit(bank, 21), pending=True)), e.InsufficientFunds
    )
    harness.refuses(transfers(spec(debit(wallet, 21), credit(bank, 21))), e.InsufficientFunds)
    harness.transfer(debit(wallet, 20), credit(bank, 20))


def test_credits_may_not_exceed_debits_without_a_limit():
    source = account_state(normal_side=Direction.DEBIT, flags=NO_CREDIT_PAST_DEBITS)
    other = account_state()
    harness = Harness(source, other)
    harness.refuses(transfers(spec(debit(other, 1), credit(source, 1))), e.ExceedsDebits)
    harness.transfer(debit(source, 10), credit(other, 10))
    harness.transfer(debit(other, 10), credit(source, 10))
    harness.refuses(transfers(spec(debit(other, 1), credit(source, 1))), e.ExceedsDebits)


def test_credits_may_exceed_debits_by_the_limit():
    source = account_state(normal_side=Direction.DEBIT, flags=NO_CREDIT_PAST_DEBITS, limit_minor=50)
    other = account_state()
    harness = Harness(source, other)
    harness.refuses(transfers(spec(debit(other, 51), credit(source, 51))), e.ExceedsDebits)
    harness.transfer(debit(other, 50), credit(source, 50))
    harness.refuses(transfers(spec(debit(other, 1), credit(source, 1))), e.ExceedsDebits)


def test_pending_credits_count_against_credits_must_not_exceed_debits():
    source = account_state(normal_side=Direction.DEBIT, flags=NO_CREDIT_PAST_DEBITS, limit_minor=50)
    other = account_state()
    harness = Harness(source, other)
    harness.transfer(debit(other, 40), credit(source, 40), pending=True)
    harness.refuses(transfers(spec(debit(other, 11), credit(source, 11))), e.ExceedsDebits)


def test_a_balance_may_reach_but_not_pass_the_largest_storable_amount():
    nearly_full = account_state(
        "ETH", balances=Balances(credits_posted=BALANCE_MAX_MINOR - 10, debits_posted=0)
    )
    source = account_state("ETH", normal_side=Direction.DEBIT)
    harness = Harness(nearly_full, source)
    harness.refuses(transfers(spec(debit(source, 11), credit(nearly_full, 11))), e.BalanceOverflow)
    harness.transfer(debit(source, 10), credit(nearly_full, 10))
    assert harness.balances(nearly_full).credits_posted == 10**39 - 1


# Pending transfers.


def test_a_pending_transfer_reserves_without_moving_posted_funds():
    harness, bank, wallet = funded_wallet(1000)
    hold = harness.transfer(debit(wallet, 300), credit(bank, 300), pending=True)
    assert hold.kind is TransferKind.PENDING
    assert hold.pending_status is PendingStatus.PENDING
    assert harness.balances(wallet) == Balances(credits_posted=1000, debits_pending=300)
    assert all(p.layer is Layer.PENDING for p in hold.postings)


def test_posting_a_hold_in_full_moves_its_amount_to_posted():
    harness, bank, wallet = funded_wallet(1000)
    hold = harness.transfer(debit(wallet, 300), credit(bank, 300), pending=True)
    outcome = harness.ok(c.PostPending(hold.id, metadata={"capture": "1"}))
    posted = outcome.transfers[0]
    assert posted.kind is TransferKind.POST_PENDING
    assert posted.pending_id == hold.id
    assert posted.metadata == {"capture": "1"}
    assert harness.balances(wallet) == Balances(debits_posted=300, credits_posted=1000)
    assert harness.balances(bank) == Balances(debits_posted=1000, credits_posted=300)
    assert [(p.layer, p.amount_minor) for p in posted.postings] == [
        (Layer.PENDING, -300), (Layer.PENDING, -300), (Layer.POSTED, 300), (Layer.POSTED, 300)
    ]
    stored = harness.stored_transfer(hold)
    assert stored.pending_status is PendingStatus.POSTED
    assert stored.resolved_by_id == posted.id


def test_posting_part_of_a_two_leg_hold_releases_the_rest():
    harness, bank, wallet = funded_wallet(1000)
    hold = harness.transfer(debit(wallet, 300), credit(bank, 300), pending=True)
    harness.ok(c.PostPending(hold.id, amount_minor=120))
    assert harness.balances(wallet) == Balances(debits_posted=120, credits_posted=1000)
    assert harness.account(wallet).posting_count == 1 + 1 + 2


def test_posting_more_than_a_hold_holds_is_refused():
    harness, bank, wallet = funded_wallet(1000)
    hold = harness.transfer(debit(wallet, 300), credit(bank, 300), pending=True)
    harness.refuses(c.PostPending(hold.id, amount_minor=301), e.PendingAmountExceeded)
    harness.ok(c.PostPending(hold.id, amount_minor=300))


@pytest.mark.parametrize("amount", [0, -5, 1.5], ids=repr)
def test_the_amount_to_post_is_a_positive_int(amount):
    harness, bank, wallet = funded_wallet(1000)
    hold = harness.transfer(debit(wallet, 300), credit(bank, 300), pending=True)
    harness.refuses(c.PostPending(hold.id, amount_minor=amount), e.InvalidAmount)


def test_only_a_two_leg_hold_posts_in_part():
    a, b, merchant = account_state(), account_state(), account_state()
    harness = Harness(a, b, merchant)
    hold = harness.transfer(debit(a, 60), debit(b, 40), credit(merchant, 100), pending=True)
    harness.refuses(c.PostPending(hold.id, amount_minor=50), e.PartialPostNotSupported)
    harness.ok(c.PostPending(hold.id))
    assert harness.balances(merchant) == Balances(credits_posted=100)


def test_voiding_a_hold_releases_it():
    harness, bank, wallet = funded_wallet(1000)
    hold = harness.transfer(debit(wallet, 300), credit(bank, 300), pending=True)
    voided = harness.ok(c.VoidPending(hold.id)).transfers[0]
    assert voided.kind is TransferKind.VOID_PENDING
    assert harness.balances(wallet) == Balances(credits_posted=1000)
    assert harness.stored_transfer(hold).pending_status is PendingStatus.VOIDED


@pytest.mark.parametrize(
    "resolve_again",
    [lambda hold: c.PostPending(hold.id), lambda hold: c.VoidPending(hold.id)],
    ids=["post", "void"],
)
@pytest.mark.parametrize(
    "resolve_first",
    [lambda hold: c.PostPending(hold.id), lambda hold: c.VoidPending(hold.id)],
    ids=["posted", "voided"],
)
def test_a_resolved_hold_cannot_be_resolved_again(resolve_first, resolve_again):
    harness, bank, wallet = funded_wallet(1000)
    hold = harness.transfer(debit(wallet, 300), credit(bank, 300), pending=True)
    harness.ok(resolve_first(hold))
    harness.refuses(resolve_again(hold), e.PendingTransferAlreadyResolved)


def test_only_a_pending_transfer_can_be_posted_or_voided():
    harness, bank, wallet = funded_wallet(1000)
    posted = harness.transfer(debit(wallet, 1), credit(bank, 1))
    harness.refuses(c.PostPending(posted.id), e.TransferNotPending)
    harness.refuses(c.VoidPending(posted.id), e.TransferNotPending)
    harness.refuses(c.ExpirePending(posted.id), e.TransferNotPending)


@pytest.mark.parametrize(
    "command",
    [c.PostPending, c.VoidPending, c.ExpirePending, c.ReverseTransfer],
    ids=lambda command: command.__name__,
)
def test_naming_an_unknown_transfer_is_refused(command):
    harness, _, _ = funded_wallet(1)
    harness.refuses(command(uuid7()), e.TransferNotFound)


def test_a_hold_past_its_deadline_can_only_be_expired():
    harness, bank, wallet = funded_wallet(1000)
    deadline = NOW + timedelta(hours=1)
    hold = harness.hold(wallet, bank, 300, expires_at=deadline)
    harness.machine.now = deadline
    harness.refuses(c.PostPending(hold.id), e.PendingTransferExpired)
    harness.refuses(c.VoidPending(hold.id), e.PendingTransferExpired)
    expired = harness.ok(c.ExpirePending(hold.id)).transfers[0]
    assert expired.kind is TransferKind.EXPIRE_PENDING
    assert harness.balances(wallet) == Balances(credits_posted=1000)
    assert harness.stored_transfer(hold).pending_status is PendingStatus.EXPIRED
    harness.refuses(c.ExpirePending(hold.id), e.PendingTransferAlreadyResolved)


def test_a_hold_before_its_deadline_cannot_be_expired():
    harness, bank, wallet = funded_wallet(1000)
    deadline = NOW + timedelta(hours=1)
    hold = harness.hold(wallet, bank, 300, expires_at=deadline)
    harness.machine.now = deadline - timedelta(microseconds=1)
    harness.refuses(c.ExpirePending(hold.id), e.PendingTransferNotExpired)
    harness.ok(c.PostPending(hold.id))


def test_a_hold_without_a_deadline_never_expires():
    harness, bank, wallet = funded_wallet(1000)
    hold = harness.transfer(debit(wallet, 300), credit(bank, 300), pending=True)
    harness.machine.now = NOW + timedelta(days=3650)
    harness.refuses(c.ExpirePending(hold.id), e.PendingTransferNotExpired)


def test_a_hold_on_a_frozen_account_can_be_voided_but_not_posted():
    harness, bank, wallet = funded_wallet(1000)
    hold = harness.transfer(debit(wallet, 300), credit(bank, 300), pending=True)
    harness.ok(c.FreezeAccount(wallet.id))
    harness.refuses(c.PostPending(hold.id), e.AccountFrozen)
    harness.ok(c.VoidPending(hold.id))


def test_a_hold_on_a_frozen_account_can_expire():
    harness, bank, wallet = funded_wallet(1000)
    deadline = NOW + timedelta(minutes=5)
    hold = harness.hold(wallet, bank, 300, expires_at=deadline)
    harness.ok(c.FreezeAccount(wallet.id))
    harness.machine.now = deadline
    harness.ok(c.ExpirePending(hold.id))
    assert harness.balances(wallet).debits_pending == 0


# Reversals.


def test_a_reversal_undoes_a_posted_transfer_and_names_it():
    harness, bank, wallet = funded_wallet(1000)
    original = harness.transfer(debit(wallet, 250), credit(bank, 250))
    reversal = harness.ok(c.ReverseTransfer(original.id, {"reason": "refund"})).transfers[0]
    assert reversal.kind is TransferKind.REVERSAL
    assert reversal.reverses_id == original.id
    assert [(p.account_id, p.direction, p.amount_minor) for p in reversal.postings] == [
        (wallet.id, Direction.CREDIT, 250), (bank.id, Direction.DEBIT, 250)
    ]
    assert harness.balances(wallet).net_posted(Direction.CREDIT) == 1000
    assert harness.stored_transfer(original).reversed_by_id == reversal.id


def test_a_transfer_is_reversed_once():
    harness, bank, wallet = funded_wallet(1000)
    original = harness.transfer(debit(wallet, 250), credit(bank, 250))
    harness.ok(c.ReverseTransfer(original.id))
    harness.refuses(c.ReverseTransfer(original.id), e.TransferAlreadyReversed)


def test_a_posted_hold_is_reversed_through_its_post_pending_transfer():
    harness, bank, wallet = funded_wallet(1000)
    hold = harness.transfer(debit(wallet, 300), credit(bank, 300), pending=True)
    captured = harness.ok(c.PostPending(hold.id, amount_minor=200)).transfers[0]
    harness.refuses(c.ReverseTransfer(hold.id), e.TransferNotReversible)
    reversal = harness.ok(c.ReverseTransfer(captured.id)).transfers[0]
    assert [p.amount_minor for p in reversal.postings] == [200, 200]
    assert harness.balances(wallet).net_posted(Direction.CREDIT) == 1000


def test_a_void_moved_no_posted_funds_and_cannot_be_reversed():
    harness, bank, wallet = funded_wallet(1000)
    hold = harness.transfer(debit(wallet, 300), credit(bank, 300), pending=True)
    voided = harness.ok(c.VoidPending(hold.id)).transfers[0]
    harness.refuses(c.ReverseTransfer(voided.id), e.TransferNotReversible)


def test_a_reversal_obeys_the_balance_rules_of_today():
    harness, bank, wallet = funded_wallet(1000)
    shop = account_state()
    harness.machine.accounts[shop.id] = shop
    harness.transfer(debit(wallet, 1000), credit(shop, 1000))
    # The top-up cannot be undone: the wallet spent the money since.
    top_up = next(iter(harness.machine.transfers.values()))
    harness.refuses(c.ReverseTransfer(top_up.id), e.InsufficientFunds)


def test_a_reversal_touching_a_frozen_account_is_refused():
    harness, bank, wallet = funded_wallet(1000)
    original = harness.transfer(debit(wallet, 250), credit(bank, 250))
    harness.ok(c.FreezeAccount(bank.id))
    harness.refuses(c.ReverseTransfer(original.id), e.AccountFrozen)


# Linked batches.


def test_a_linked_batch_shares_one_batch_id_and_sees_its_own_earlier_transfers():
    bank = account_state(normal_side=Direction.DEBIT)
    wallet, shop = account_state(flags=NO_OVERDRAFT), account_state()
    harness = Harness(bank, wallet, shop)
    # The second transfer spends what the first one brings in.
    outcome = harness.ok(
        transfers(
            spec(debit(bank, 500), credit(wallet, 500)),
            spec(debit(wallet, 500), credit(shop, 500)),
        )
    )
    first, second = outcome.transfers
    assert first.batch_id is not None and first.batch_id == second.batch_id
    assert harness.balances(shop).credits_posted == 500
    assert [ev.event_type for ev in harness.machine.effects.events] == ["transfer.posted"] * 2


def test_a_single_transfer_has_no_batch_id():
    a, b = account_state(), account_state()
    assert Harness(a, b).transfer(debit(a, 1), credit(b, 1)).batch_id is None


def test_a_linked_batch_whose_second_transfer_fails_leaves_nothing():
    harness, bank, wallet = funded_wallet(300)
    shop = account_state()
    harness.machine.accounts[shop.id] = shop
    command = transfers(
        spec(debit(wallet, 200), credit(shop, 200)),
        spec(debit(wallet, 200), credit(shop, 200)),  # 400 in all: more than the wallet holds
    )
    harness.refuses(command, e.InsufficientFunds)
    assert harness.balances(shop) == Balances()


def test_a_linked_batch_with_one_malformed_transfer_leaves_nothing():
    a, b = account_state(), account_state()
    command = transfers(spec(debit(a, 1), credit(b, 1)), spec(debit(a, 2), credit(b, 1)))
    Harness(a, b).refuses(command, e.UnbalancedTransfer)


def test_a_linked_batch_holds_one_to_linked_transfers_max_transfers():
    a, b = account_state(), account_state()
    harness = Harness(a, b)
    one = spec(debit(a, 1), credit(b, 1))
    harness.refuses(transfers(), e.BatchTooLarge)
    harness.refuses(transfers(*[one] * (LINKED_TRANSFERS_MAX + 1)), e.BatchTooLarge)
    outcome = harness.ok(transfers(*[one] * LINKED_TRANSFERS_MAX))
    assert len(outcome.transfers) == LINKED_TRANSFERS_MAX
    assert harness.balances(b).credits_posted == LINKED_TRANSFERS_MAX


# Accounts and assets.


def test_opening_an_account_makes_an_open_empty_account():
    harness = Harness()
    outcome = harness.ok(
        c.OpenAccount("ETH", Direction.CREDIT, NO_OVERDRAFT, limit_minor=2**100,
                      metadata={"owner": "u1"})
    )
    account = outcome.account
    assert account.status is AccountStatus.OPEN
    assert (account.asset_code, account.normal_side, account.flags) == (
        "ETH", Direction.CREDIT, NO_OVERDRAFT
    )
    assert account.limit_minor == 2**100
    assert account.balances == Balances()
    assert account.metadata == {"owner": "u1"}
    assert outcome.result_refs == (str(account.id),)
    assert account.id in harness.machine.accounts
    assert harness.machine.effects.opened_account_ids == [account.id]
    assert [ev.event_type for ev in harness.machine.effects.events] == ["account.opened"]


@pytest.mark.parametrize(
    ("command", "error_type"),
    [
        (c.OpenAccount("XYZ", Direction.DEBIT), e.UnknownAsset),
        (
            c.OpenAccount(
                "USD", Direction.DEBIT,
                AccountFlags(debits_must_not_exceed_credits=True,
                             credits_must_not_exceed_debits=True),
            ),
            e.InvalidAccountOptions,
        ),
        (c.OpenAccount("USD", Direction.DEBIT, limit_minor=100), e.InvalidAccountOptions),
        (c.OpenAccount("USD", Direction.DEBIT, NO_OVERDRAFT, limit_minor=-1), e.InvalidAmount),
        (c.OpenAccount("USD", Direction.DEBIT, NO_OVERDRAFT, limit_minor=2**128), e.InvalidAmount),
        (c.OpenAccount("USD", Direction.DEBIT, NO_OVERDRAFT, limit_minor=1.5), e.InvalidAmount),
        (c.OpenAccount("USD", Direction.DEBIT, metadata={"x": math.nan}), e.InvalidMetadata),
    ],
    ids=["unknown asset", "both flags", "limit without flag", "negative limit",
         "limit too large", "float limit", "bad metadata"],
)
def test_opening_an_account_with_bad_options_is_refused(command, error_type):
    Harness().refuses(command, error_type)


def test_a_zero_limit_is_allowed():
    Harness().ok(c.OpenAccount("USD", Direction.DEBIT, NO_CREDIT_PAST_DEBITS, limit_minor=0))


def test_freeze_unfreeze_and_close_follow_the_status_rules():
    account = account_state()
    harness = Harness(account)
    harness.refuses(c.UnfreezeAccount(account.id), e.InvalidAccountState)
    assert harness.ok(c.FreezeAccount(account.id)).account.status is AccountStatus.FROZEN
    harness.refuses(c.FreezeAccount(account.id), e.InvalidAccountState)
    assert harness.ok(c.UnfreezeAccount(account.id)).account.status is AccountStatus.OPEN
    harness.ok(c.FreezeAccount(account.id))
    assert harness.ok(c.CloseAccount(account.id)).account.status is AccountStatus.CLOSED
    for command in (c.FreezeAccount, c.UnfreezeAccount, c.CloseAccount):
        harness.refuses(command(account.id), e.InvalidAccountState)
    assert [ev.event_type for ev in harness.machine.effects.events] == [
        "account.frozen", "account.unfrozen", "account.frozen", "account.closed"
    ]


@pytest.mark.parametrize(
    "command", [c.FreezeAccount, c.UnfreezeAccount, c.CloseAccount], ids=lambda x: x.__name__
)
def test_changing_an_unknown_account_is_refused(command):
    Harness().refuses(command(uuid7()), e.AccountNotFound)


def test_an_account_with_a_posted_balance_cannot_be_closed():
    harness, bank, wallet = funded_wallet(1)
    harness.refuses(c.CloseAccount(wallet.id), e.AccountBalanceNotZero)
    harness.transfer(debit(wallet, 1), credit(bank, 1))
    # Debits equal credits now: the balance is zero even though both totals are not.
    harness.ok(c.CloseAccount(wallet.id))
    harness.ok(c.CloseAccount(bank.id))


def test_an_account_with_a_pending_amount_cannot_be_closed():
    harness, bank, wallet = funded_wallet(100)
    harness.transfer(debit(wallet, 100), credit(bank, 100))
    hold = harness.transfer(debit(bank, 5), credit(wallet, 5), pending=True)
    harness.refuses(c.CloseAccount(wallet.id), e.AccountBalanceNotZero)
    harness.ok(c.VoidPending(hold.id))
    harness.ok(c.CloseAccount(wallet.id))


def test_creating_an_asset_adds_it():
    harness = Harness()
    outcome = harness.ok(c.CreateAsset("GBP", 2))
    assert outcome.asset == Asset("GBP", 2)
    assert harness.machine.assets["GBP"] == Asset("GBP", 2)
    assert harness.machine.effects.assets == [Asset("GBP", 2)]
    harness.ok(c.OpenAccount("GBP", Direction.DEBIT))


@pytest.mark.parametrize(
    ("code", "scale", "error_type"),
    [
        ("usd", 2, e.InvalidAsset),
        ("U", 2, e.InvalidAsset),
        ("ABCDEFGHIJKLM", 2, e.InvalidAsset),
        ("US-D", 2, e.InvalidAsset),
        ("ÜSD", 2, e.InvalidAsset),
        ("XAU", -1, e.InvalidAsset),
        ("XAU", 19, e.InvalidAsset),
        ("XAU", 2.0, e.InvalidAsset),
        ("USD", 2, e.AssetAlreadyExists),
    ],
)
def test_creating_a_bad_or_existing_asset_is_refused(code, scale, error_type):
    Harness().refuses(c.CreateAsset(code, scale), error_type)


def test_asset_codes_of_two_and_twelve_characters_and_scale_18_are_accepted():
    harness = Harness()
    harness.ok(c.CreateAsset("X2", 0))
    harness.ok(c.CreateAsset("ABCDEFGHIJ12", 18))


# Idempotency.


def test_the_same_key_and_request_replays_the_first_result_and_writes_nothing():
    a, b = account_state(), account_state()
    harness = Harness(a, b)
    command = transfers(spec(debit(a, 7), credit(b, 7)))
    first = harness.ok(command, key="k1")
    before = harness.snapshot()
    replay = harness.ok(command, key="k1")
    assert replay.replayed and not first.replayed
    assert replay.result_refs == first.result_refs == (str(first.transfers[0].id),)
    assert harness.snapshot() == before
    assert harness.balances(b).credits_posted == 7


def test_the_same_key_with_another_request_is_refused():
    a, b = account_state(), account_state()
    harness = Harness(a, b)
    harness.ok(transfers(spec(debit(a, 7), credit(b, 7))), key="k1")
    harness.refuses(transfers(spec(debit(a, 8), credit(b, 8))), e.IdempotencyKeyReused, key="k1")
    harness.refuses(c.FreezeAccount(a.id), e.IdempotencyKeyReused, key="k1")


def test_keys_are_scoped_per_client():
    a, b = account_state(), account_state()
    harness = Harness(a, b)
    command = transfers(spec(debit(a, 7), credit(b, 7)))
    harness.ok(command, key="k1", client_id="alice")
    assert not harness.ok(command, key="k1", client_id="bob").replayed
    assert harness.balances(b).credits_posted == 14


def test_a_rejected_command_does_not_use_up_its_key():
    harness, bank, wallet = funded_wallet(100)
    command = transfers(spec(debit(wallet, 150), credit(bank, 150)))
    harness.refuses(command, e.InsufficientFunds, key="retry-me")
    harness.transfer(debit(bank, 50), credit(wallet, 50))
    outcome = harness.ok(command, key="retry-me")
    assert not outcome.replayed
    assert harness.balances(wallet).net_posted(Direction.CREDIT) == 0


def test_a_key_records_its_result_in_the_effects():
    a, b = account_state(), account_state()
    harness = Harness(a, b)
    outcome = harness.ok(transfers(spec(debit(a, 7), credit(b, 7))), key="k1", client_id="alice")
    (record,) = harness.machine.effects.keys
    assert (record.client_id, record.idempotency_key) == ("alice", "k1")
    assert record.stored.result_refs == outcome.result_refs
    assert record.stored.command_type == "CreateTransfers"


def test_metadata_int_and_lookalike_string_are_different_requests():
    a, b = account_state(), account_state()
    harness = Harness(a, b)
    harness.ok(transfers(spec(debit(a, 7), credit(b, 7), metadata={"n": 5})), key="k1")
    harness.refuses(
        transfers(spec(debit(a, 7), credit(b, 7), metadata={"n": "int:5"})),
        e.IdempotencyKeyReused,
        key="k1",
    )


# A batch of commands.


def test_a_failed_command_inside_a_batch_leaves_state_and_effects_untouched():
    harness, bank, wallet = funded_wallet(100)
    harness.transfer(debit(wallet, 40), credit(bank, 40))
    before = harness.snapshot()
    harness.refuses(transfers(spec(debit(wallet, 61), credit(bank, 61))), e.InsufficientFunds)
    assert harness.snapshot() == before
    harness.transfer(debit(wallet, 60), credit(bank, 60))
    effects = harness.machine.effects
    assert len(effects.transfers) == len(effects.events) == len(effects.keys) == 3
    assert effects.changed_account_ids == {bank.id, wallet.id}
    assert harness.balances(wallet) == Balances(debits_posted=100, credits_posted=100)


def test_every_committed_change_emits_exactly_one_event():
    harness, bank, wallet = funded_wallet(1000)
    hold = harness.transfer(debit(wallet, 10), credit(bank, 10), pending=True)
    harness.ok(c.PostPending(hold.id))
    original = harness.transfer(debit(wallet, 5), credit(bank, 5))
    harness.ok(c.ReverseTransfer(original.id))
    voidable = harness.transfer(debit(wallet, 1), credit(bank, 1), pending=True)
    harness.ok(c.VoidPending(voidable.id))
    harness.ok(c.CreateAsset("GBP", 2))
    events = harness.machine.effects.events
    assert [ev.event_type for ev in events] == [
        "transfer.posted", "transfer.pending", "transfer.post_pending", "transfer.posted",
        "transfer.reversal", "transfer.pending", "transfer.void_pending", "asset.created",
    ]
    made = harness.machine.effects.transfers
    assert [ev.aggregate_id for ev in events[:-1]] == [str(t.id) for t in made]
    assert len({ev.event_id for ev in events}) == len(events)
    # Amounts travel as strings so a JSON reader cannot round them.
    assert events[0].payload["postings"][0]["amount_minor"] == "1000"


def test_the_effects_name_every_changed_account_once():
    harness, bank, wallet = funded_wallet(1000)
    harness.transfer(debit(wallet, 1), credit(bank, 1))
    assert harness.machine.effects.changed_account_ids == {bank.id, wallet.id}
    assert all(isinstance(i, UUID) for i in harness.machine.effects.changed_account_ids)
