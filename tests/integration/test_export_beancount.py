"""`export_ledger` as Beancount: the real bean-check accepts the file, and what it holds
(transactions, legs, balance assertions) is what the ledger holds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from beancount import loader
from beancount.core import account as bean_account
from beancount.core import data
from sqlalchemy import Engine
from sqlalchemy.exc import ProgrammingError

from pacioli.ledger import Ledger, format_minor
from pacioli.ledger.storage.database import make_engine
from pacioli.reconciliation import export as export_module
from pacioli.reconciliation.export import ExportWindow, export_ledger
from tests.integration.export_support import (
    ETH_FUNDING,
    NOT_IN_THE_BOOKS,
    BuiltLedger,
    bean_check,
    build_ledger,
)

SCALES = {"USD": 2, "JPY": 0, "ETH": 18}


@pytest.fixture
def fresh_engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url, pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture
def built(fresh_engine: Engine) -> BuiltLedger:
    return build_ledger(fresh_engine)


def load(path: Path):
    entries, errors, _ = loader.load_file(str(path))
    assert errors == []
    return entries


def of_type(entries, kind) -> list:
    return [entry for entry in entries if isinstance(entry, kind)]


def account_ids(entries) -> dict[str, UUID]:
    """Export name → ledger account id, from the open directives' metadata."""
    return {entry.account: UUID(entry.meta["account"]) for entry in of_type(entries, data.Open)}


def major(amount_minor: int, currency: str) -> Decimal:
    return Decimal(format_minor(amount_minor, SCALES[currency]))


def test_bean_check_accepts_the_whole_ledger(fresh_engine, built, tmp_path):
    path = tmp_path / "books.beancount"
    summary = export_ledger(fresh_engine, path)

    checked = bean_check(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    entries = load(path)
    assert summary.accounts == len(built.accounts) == len(of_type(entries, data.Open))
    assert summary.assertions == len(built.accounts)
    assert all(bean_account.is_valid(name) for name in account_ids(entries))
    assert {c.currency for c in of_type(entries, data.Commodity)} >= {"USD", "JPY", "ETH"}


def test_balance_assertions_are_the_ledgers_balances(fresh_engine, built, tmp_path):
    path = tmp_path / "books.beancount"
    summary = export_ledger(fresh_engine, path)
    entries = load(path)

    ids = account_ids(entries)
    asserted = {ids[b.account]: b.amount for b in of_type(entries, data.Balance)}
    assert set(asserted) == set(built.accounts.values())
    with Ledger(fresh_engine, batching=False) as ledger:
        for account_id, amount in asserted.items():
            account = ledger.get_account(account_id)
            balances = account.balances
            expected = balances.debits_posted - balances.credits_posted
            assert amount.currency == account.asset_code
            assert amount.number == major(expected, account.asset_code)
    # The day after the last transaction; pending holds reserve nothing in the books.
    assert summary.assertion_date == built.days[-1].date() + timedelta(days=1)
    assert {b.date for b in of_type(entries, data.Balance)} == {summary.assertion_date}
    alice_eth = next(a for n, a in asserted.items() if n == built.accounts["alice_eth"])
    assert alice_eth.number == -major(ETH_FUNDING - 1, "ETH")


def test_one_transaction_per_transfer_that_moved_posted_funds(fresh_engine, built, tmp_path):
    path = tmp_path / "books.beancount"
    summary = export_ledger(fresh_engine, path)
    entries = load(path)

    transactions = {UUID(t.meta["transfer"]): t for t in of_type(entries, data.Transaction)}
    in_the_books = {name: i for name, i in built.transfers.items() if name not in NOT_IN_THE_BOOKS}
    assert set(transactions) == set(in_the_books.values())
    assert summary.transactions == len(transactions)
    by_name = {name: transactions[i] for name, i in in_the_books.items()}

    def legs(name: str) -> dict[UUID, Decimal]:
        ids = account_ids(entries)
        return {ids[p.units and p.account]: p.units.number for p in by_name[name].postings}

    acc = built.accounts
    # Debits are positive, credits negative.
    assert legs("three_legs") == {acc["alice_usd"]: Decimal("100.00"),
                                  acc["bob_usd"]: Decimal("-97.00"),
                                  acc["fees_usd"]: Decimal("-3.00")}
    assert legs("p2p_reversal") == {acc["alice_usd"]: Decimal("-25.00"),
                                    acc["bob_usd"]: Decimal("25.00")}
    assert legs("fund_eth")[acc["alice_eth"]] == Decimal("-1.234567890123456789")
    assert legs("one_wei")[acc["alice_eth"]] == Decimal("0.000000000000000001")
    assert legs("fund_jpy")[acc["alice_jpy"]] == Decimal("-150000")
    # The part of the hold that was posted, linked to the hold.
    assert legs("hold_post") == {acc["alice_usd"]: Decimal("20.00"),
                                 acc["bob_usd"]: Decimal("-20.00")}
    hold_post = by_name["hold_post"]
    assert str(built.transfers["hold"]) in hold_post.links
    assert hold_post.meta["kind"] == "post_pending"
    assert str(built.transfers["p2p"]) in by_name["p2p_reversal"].links
    assert by_name["batch_usd"].meta["batch"] == by_name["batch_jpy"].meta["batch"]
    # Narrations: the transfer's description, else its flow and kind.
    assert by_name["fund_usd"].narration == 'Top-up "first"; thanks'
    assert by_name["p2p"].narration == "p2p: transfer"
    assert by_name["p2p_reversal"].narration == "reversal"
    # Transactions come in the order the transfers were made, dated on their UTC day.
    dates = [t.date for t in of_type(entries, data.Transaction)]
    assert dates == sorted(dates)
    assert by_name["one_wei"].date == built.days[4].date()


def test_a_window_carries_balances_in_and_asserts_them_at_its_end(
    fresh_engine, built, tmp_path
):
    since, until = built.days[1], built.days[3].date()  # day 2 (09:30) to the end of day 4
    path = tmp_path / "window.beancount"
    summary = export_ledger(fresh_engine, path,
                            window=ExportWindow.parse(since.isoformat(), until.isoformat()))

    checked = bean_check(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    entries = load(path)
    ids = account_ids(entries)
    transactions = of_type(entries, data.Transaction)
    opening = [t for t in transactions if t.narration == "Opening balances"]
    assert len(opening) == 1 and opening[0].date == since.date()
    window_names = {"p2p", "p2p_reversal", "three_legs", "hold_post", "batch_usd", "batch_jpy"}
    assert {UUID(t.meta["transfer"]) for t in transactions if "transfer" in t.meta} == {
        built.transfers[name] for name in window_names
    }
    # The late account (day 5) is outside the window.
    assert built.accounts["late_usd"] not in set(ids.values())
    assert summary.assertion_date == until + timedelta(days=1)

    last_instant = datetime.combine(until + timedelta(days=1), time(), UTC) - timedelta(
        microseconds=1)
    with Ledger(fresh_engine, batching=False) as ledger:
        for posting in opening[0].postings:
            account_id = ids[posting.account]
            before = ledger.balances_at(account_id, since - timedelta(microseconds=1))
            expected = before.debits_posted - before.credits_posted
            assert posting.units.number == major(expected, posting.units.currency)
        for balance in of_type(entries, data.Balance):
            at_end = ledger.balances_at(ids[balance.account], last_instant)
            expected = at_end.debits_posted - at_end.credits_posted
            assert balance.amount.number == major(expected, balance.amount.currency)
    # The ETH funding of day 1 arrives as an opening balance; the one wei of day 5 not at all.
    eth_open = {ids[p.account]: p.units.number for p in opening[0].postings}
    assert eth_open[built.accounts["alice_eth"]] == -major(ETH_FUNDING, "ETH")


def test_bean_check_refuses_an_export_whose_books_do_not_add_up(fresh_engine, built, tmp_path):
    """The check the tests rely on has teeth: one leg changed by one cent is caught."""
    path = tmp_path / "books.beancount"
    export_ledger(fresh_engine, path)
    text = path.read_text()
    assert "-97.00 USD" in text
    path.write_text(text.replace("-97.00 USD", "-96.99 USD", 1))

    checked = bean_check(path)
    assert checked.returncode != 0
    assert "balance" in (checked.stdout + checked.stderr).lower()


def test_an_empty_ledger_exports_its_commodities_only(fresh_engine, tmp_path):
    path = tmp_path / "empty.beancount"
    summary = export_ledger(fresh_engine, path)
    assert bean_check(path).returncode == 0
    assert (summary.accounts, summary.transactions, summary.assertions) == (0, 0, 0)
    assert summary.assertion_date is None


def test_the_file_is_the_same_whatever_the_cursor_fetches_at_once(
    fresh_engine, built, tmp_path, monkeypatch
):
    """Rows stream through a server-side cursor; a transfer split across fetches is still
    one transaction."""
    whole, streamed = tmp_path / "whole.beancount", tmp_path / "streamed.beancount"
    export_ledger(fresh_engine, whole)
    monkeypatch.setattr(export_module, "ROWS_PER_FETCH", 1)
    export_ledger(fresh_engine, streamed)
    assert streamed.read_text() == whole.read_text()


def test_a_failed_export_leaves_the_old_file_alone_and_no_temporary_behind(
    server_url, tmp_path
):
    out = tmp_path / "books.beancount"
    out.write_text("yesterday's export\n")
    url = server_url + ("&" if "?" in server_url else "?") + "options=-csearch_path%3Dno_such"
    engine = make_engine(url, pool_size=1)  # a schema without the ledger's tables
    try:
        with pytest.raises(ProgrammingError):
            export_ledger(engine, out)
    finally:
        engine.dispose()
    assert out.read_text() == "yesterday's export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["books.beancount"]


def test_the_file_gets_the_usual_permissions(fresh_engine, tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    out = tmp_path / "books.beancount"
    export_ledger(fresh_engine, out)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
