"""The Ledger's asset and account commands against the real database."""

from __future__ import annotations

from uuid import uuid4

import pytest

from pacioli.ledger import AccountStatus, Asset, Direction, credit, debit
from pacioli.ledger.domain import errors as e
from pacioli.ledger.domain.ids import uuid7


def new_asset_code() -> str:
    return "T" + uuid4().hex[:11].upper()


def open_wallet(ledger, new_key, **options):
    return ledger.open_account(
        asset_code=options.pop("asset_code", "USD"),
        normal_side=options.pop("normal_side", "credit"),
        idempotency_key=new_key(),
        **options,
    ).value


def test_the_default_assets_ship_with_their_scales(ledger):
    assets = {a.code: a.scale for a in ledger.list_assets()}
    expected = {"USD": 2, "EUR": 2, "INR": 2, "CNY": 2, "JPY": 0, "BTC": 8, "ETH": 18}
    assert expected.items() <= assets.items()


def test_create_asset_adds_an_asset_that_accounts_can_use(ledger, new_key):
    code = new_asset_code()
    written = ledger.create_asset(code, 3, idempotency_key=new_key())
    assert written.value == Asset(code, 3) and not written.replayed
    assert Asset(code, 3) in ledger.list_assets()
    account = open_wallet(ledger, new_key, asset_code=code)
    assert account.asset_code == code


@pytest.mark.parametrize(
    ("code", "scale", "error_type"),
    [("usd1", 2, e.InvalidAsset), ("XY", 19, e.InvalidAsset), ("USD", 2, e.AssetAlreadyExists)],
)
def test_create_asset_refuses_bad_or_existing_assets(ledger, new_key, code, scale, error_type):
    before = ledger.list_assets()
    with pytest.raises(error_type):
        ledger.create_asset(code, scale, idempotency_key=new_key())
    assert ledger.list_assets() == before


def test_open_account_stores_every_option(ledger, new_key):
    written = ledger.open_account(
        asset_code="BTC", normal_side=Direction.CREDIT, debits_must_not_exceed_credits=True,
        limit_minor=2**127, metadata={"owner": "alice", "tier": 2}, idempotency_key=new_key(),
    )
    assert not written.replayed
    stored = ledger.get_account(written.value.id)
    assert stored == written.value
    assert stored.status is AccountStatus.OPEN
    assert stored.normal_side is Direction.CREDIT
    assert stored.flags.debits_must_not_exceed_credits
    assert not stored.flags.credits_must_not_exceed_debits
    assert stored.limit_minor == 2**127 and type(stored.limit_minor) is int
    assert stored.metadata == {"owner": "alice", "tier": 2}
    assert stored.balance_minor == stored.available_minor == 0
    assert stored.posting_count == 0


@pytest.mark.parametrize(
    ("options", "error_type"),
    [
        ({"asset_code": "NOPE"}, e.UnknownAsset),
        ({"debits_must_not_exceed_credits": True, "credits_must_not_exceed_debits": True},
         e.InvalidAccountOptions),
        ({"limit_minor": 10}, e.InvalidAccountOptions),
        ({"debits_must_not_exceed_credits": True, "limit_minor": -1}, e.InvalidAmount),
        ({"metadata": {"x": float("nan")}}, e.InvalidMetadata),
    ],
)
def test_open_account_refuses_bad_options_and_opens_nothing(ledger, new_key, options, error_type):
    tag = uuid4().hex
    metadata = options.pop("metadata", {"tag": tag})
    with pytest.raises(error_type):
        ledger.open_account(
            asset_code=options.pop("asset_code", "USD"), normal_side="debit",
            metadata=metadata, idempotency_key=new_key(), **options,
        )
    assert ledger.list_accounts(metadata={"tag": tag}) == []


def test_open_account_refuses_an_unknown_normal_side(ledger, new_key):
    tag = uuid4().hex
    # The Python API refuses it while building the command (a ValueError from Direction).
    with pytest.raises((ValueError, e.InvalidCommand)):
        ledger.open_account(
            asset_code="USD", normal_side="sideways", metadata={"tag": tag},
            idempotency_key=new_key(),
        )
    assert ledger.list_accounts(metadata={"tag": tag}) == []


def test_get_account_of_an_unknown_id_is_not_found(ledger):
    with pytest.raises(e.AccountNotFound):
        ledger.get_account(uuid7())


def test_list_accounts_pages_through_accounts_filtered_by_metadata(ledger, new_key):
    tag = uuid4().hex
    opened = [
        open_wallet(ledger, new_key, asset_code=code, metadata={"tag": tag, "n": n})
        for n, code in enumerate(["USD", "EUR", "USD", "JPY", "USD"])
    ]
    ids = sorted(a.id for a in opened)
    first = ledger.list_accounts(limit=2, metadata={"tag": tag})
    second = ledger.list_accounts(limit=2, starting_after=first[-1].id, metadata={"tag": tag})
    third = ledger.list_accounts(limit=2, starting_after=second[-1].id, metadata={"tag": tag})
    assert [a.id for a in first + second + third] == ids
    assert len(third) == 1
    usd = ledger.list_accounts(asset_code="USD", metadata={"tag": tag})
    assert {a.id for a in usd} == {a.id for a in opened if a.asset_code == "USD"}
    assert [a.id for a in ledger.list_accounts(metadata={"tag": tag, "n": 3})] == [opened[3].id]


@pytest.mark.parametrize("limit", [0, 501])
def test_list_accounts_refuses_a_limit_out_of_range(ledger, limit):
    with pytest.raises(e.InvalidCommand):
        ledger.list_accounts(limit=limit)


def test_freeze_unfreeze_and_close_change_the_stored_status(ledger, new_key):
    account = open_wallet(ledger, new_key)
    frozen = ledger.freeze_account(account.id, idempotency_key=new_key())
    assert frozen.value.status is AccountStatus.FROZEN
    assert ledger.get_account(account.id).status is AccountStatus.FROZEN
    with pytest.raises(e.InvalidAccountState):
        ledger.freeze_account(account.id, idempotency_key=new_key())
    ledger.unfreeze_account(account.id, idempotency_key=new_key())
    assert ledger.get_account(account.id).status is AccountStatus.OPEN
    with pytest.raises(e.InvalidAccountState):
        ledger.unfreeze_account(account.id, idempotency_key=new_key())
    closed = ledger.close_account(account.id, idempotency_key=new_key())
    assert closed.value.status is AccountStatus.CLOSED
    for change in (ledger.freeze_account, ledger.unfreeze_account, ledger.close_account):
        with pytest.raises(e.InvalidAccountState):
            change(account.id, idempotency_key=new_key())
    assert ledger.get_account(account.id).status is AccountStatus.CLOSED


@pytest.mark.parametrize("change", ["freeze_account", "unfreeze_account", "close_account"])
def test_changing_an_unknown_account_is_not_found(ledger, new_key, change):
    with pytest.raises(e.AccountNotFound):
        getattr(ledger, change)(uuid7(), idempotency_key=new_key())


def test_a_frozen_account_refuses_transfers_until_unfrozen(ledger, new_key):
    bank = open_wallet(ledger, new_key, normal_side="debit")
    wallet = open_wallet(ledger, new_key)
    ledger.freeze_account(wallet.id, idempotency_key=new_key())
    with pytest.raises(e.AccountFrozen):
        ledger.transfer([debit(bank.id, 5), credit(wallet.id, 5)], idempotency_key=new_key())
    ledger.unfreeze_account(wallet.id, idempotency_key=new_key())
    ledger.transfer([debit(bank.id, 5), credit(wallet.id, 5)], idempotency_key=new_key())
    assert ledger.get_account(wallet.id).balance_minor == 5


def test_close_requires_a_zero_balance(ledger, new_key):
    bank = open_wallet(ledger, new_key, normal_side="debit")
    wallet = open_wallet(ledger, new_key, debits_must_not_exceed_credits=True)
    ledger.transfer([debit(bank.id, 100), credit(wallet.id, 100)], idempotency_key=new_key())
    with pytest.raises(e.AccountBalanceNotZero):
        ledger.close_account(wallet.id, idempotency_key=new_key())
    assert ledger.get_account(wallet.id).status is AccountStatus.OPEN
    ledger.transfer([debit(wallet.id, 100), credit(bank.id, 100)], idempotency_key=new_key())
    ledger.close_account(wallet.id, idempotency_key=new_key())
    with pytest.raises(e.AccountClosed):
        ledger.transfer([debit(bank.id, 1), credit(wallet.id, 1)], idempotency_key=new_key())
    assert ledger.get_account(wallet.id).posting_count == 2


def test_an_account_with_only_a_pending_amount_cannot_be_closed(ledger, new_key):
    bank = open_wallet(ledger, new_key, normal_side="debit")
    wallet = open_wallet(ledger, new_key)
    hold = ledger.transfer(
        [debit(bank.id, 7), credit(wallet.id, 7)], pending=True, idempotency_key=new_key()
    ).value
    assert ledger.get_account(wallet.id).balance_minor == 0
    with pytest.raises(e.AccountBalanceNotZero):
        ledger.close_account(wallet.id, idempotency_key=new_key())
    ledger.void_pending(hold.id, idempotency_key=new_key())
    assert ledger.close_account(wallet.id, idempotency_key=new_key()).value.status is (
        AccountStatus.CLOSED
    )
