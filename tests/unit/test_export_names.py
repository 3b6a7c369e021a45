"""Export names: valid for Beancount (its own validator decides), readable, and unique."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from beancount.core import account as bean_account
from hypothesis import given
from hypothesis import strategies as st

from pacioli.ledger import Direction
from pacioli.reconciliation.export import ExportWindow, InvalidExportWindow
from pacioli.reconciliation.export_names import AccountNamer, AccountRow, commodity_name, slug

USER = uuid.UUID("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")


def chart_row(kind: str, owner: str, purpose: str, currency: str = "USD", side="credit"):
    return AccountRow(uuid.uuid4(), currency, Direction(side), kind, owner, purpose, currency)


@pytest.mark.parametrize(("row", "name"), [
    (chart_row("user", str(USER), "wallet"),
     "Liabilities:Users:0193A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B:Wallet:USD"),
    (chart_row("merchant", str(USER), "merchant_pending_settlement", "JPY"),
     "Liabilities:Merchants:0193A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B:MerchantPendingSettlement:JPY"),
    (chart_row("platform", "", "fee_revenue"), "Income:Platform:FeeRevenue:USD"),
    (chart_row("platform", "", "bank_settlement", side="debit"),
     "Assets:Platform:BankSettlement:USD"),
    # A purpose the export does not know yet takes its root from the normal side.
    (chart_row("platform", "", "escrow_float", side="debit"), "Assets:Platform:EscrowFloat:USD"),
])
def test_chart_accounts_are_named_from_their_owner_and_purpose(row, name):
    assert AccountNamer([]).name(row) == name
    assert bean_account.is_valid(name)


def test_accounts_outside_the_chart_are_named_by_normal_side_and_id():
    account_id = uuid.uuid4()
    namer = AccountNamer([])
    debit = AccountRow(account_id, "ETH", Direction.DEBIT)
    credit = AccountRow(account_id, "ETH", Direction.CREDIT)
    assert namer.name(debit) == f"Assets:Ledger:ETH:{str(account_id).upper()}"
    assert namer.name(credit) == f"Liabilities:Ledger:ETH:{str(account_id).upper()}"
    # A chart row whose currency is not the account's is not trusted as a chart name.
    odd = AccountRow(account_id, "ETH", Direction.CREDIT, "user", str(USER), "wallet", "USD")
    assert namer.name(odd) == namer.name(credit)


def test_scopes_that_share_a_slug_get_unique_names_and_the_first_keeps_the_plain_one():
    rows = [chart_row("platform", scope, "processor_clearing", side="debit")
            for scope in ("sandbox", "Sandbox", "sand box", "stripe")]
    namer = AccountNamer(rows)
    names = [namer.name(row) for row in rows]
    assert names[0] == "Assets:Platform:ProcessorClearing:Sandbox:USD"
    assert names[1] == f"Assets:Platform:ProcessorClearing:Sandbox-{rows[1].id.hex}:USD"
    assert names[3] == "Assets:Platform:ProcessorClearing:Stripe:USD"
    assert len(set(names)) == 4
    assert all(bean_account.is_valid(name) for name in names)


owner_ids = st.one_of(st.uuids().map(str), st.text(max_size=12), st.just(""))


@given(st.lists(st.tuples(st.sampled_from(["user", "merchant", "platform"]), owner_ids,
                          st.sampled_from(["wallet", "fee_revenue", "promotions"]),
                          st.sampled_from(["USD", "JPY", "1INCH"])),
                unique=True, max_size=30))
def test_names_are_valid_and_unique_for_any_chart(keys):
    rows = [AccountRow(uuid.uuid4(), currency, Direction.CREDIT, kind, owner, purpose, currency)
            for kind, owner, purpose, currency in keys]
    plain = [AccountRow(uuid.uuid4(), "USD", Direction.DEBIT) for _ in range(3)]
    namer = AccountNamer(rows)  # every row, as the export gives it the slug owners
    names = [namer.name(row) for row in rows + plain]
    assert len(set(names)) == len(names)
    assert all(bean_account.is_valid(name) for name in names)


def test_slugs_are_capitalized_words():
    assert slug("electricity-co op") == "ElectricityCoOp"
    assert slug("merchant:0193") == "Merchant0193"
    assert slug("***") == "X"


def test_commodities_keep_their_code_unless_beancount_refuses_it():
    assert [commodity_name(c) for c in ("USD", "ETH", "JPY", "BTC")] == [
        "USD", "ETH", "JPY", "BTC"]
    assert commodity_name("1INCH") == "C_1INCH"


def test_a_window_of_dates_runs_from_the_first_days_start_to_the_last_days_end():
    window = ExportWindow.parse("2026-03-02", "2026-03-04")
    assert window.since == datetime(2026, 3, 2, tzinfo=UTC)
    assert window.end == datetime(2026, 3, 5, tzinfo=UTC)


def test_a_window_of_instants_includes_its_last_instant_and_reads_naive_times_as_utc():
    window = ExportWindow.parse("2026-03-02T09:30:00+02:00", "2026-03-04T12:00:00")
    assert window.since == datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
    assert window.end == datetime(2026, 3, 4, 12, tzinfo=UTC) + timedelta(microseconds=1)
    assert ExportWindow.parse(None, None) == ExportWindow()
    assert ExportWindow.parse(date(2026, 1, 1).isoformat(), None).end is None


@pytest.mark.parametrize(("since", "until"), [
    ("2026-13-01", None), ("soon", None), (None, "2026-03-04 noon"),
    ("2026-03-05", "2026-03-04"), ("2026-03-04T10:00:00Z", "2026-03-04T09:00:00Z"),
])
def test_a_bad_window_is_refused(since, until):
    with pytest.raises(InvalidExportWindow):
        ExportWindow.parse(since, until)
