"""`export_ledger` as a ledger-cli/hledger journal: its structure checked by a small parser
here (declared accounts and commodities, balanced transactions, assertions that hold and
equal the ledger's balances), and by hledger and ledger-cli when they are installed."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pacioli.ledger import Ledger, credit, debit, format_minor
from pacioli.ledger.storage.database import make_engine
from pacioli.reconciliation.export import ExportFormat, ExportWindow, export_ledger
from tests.integration.export_support import (
    NOT_IN_THE_BOOKS,
    BuiltLedger,
    build_ledger,
    key,
    parse_journal,
)


@pytest.fixture
def fresh_engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url, pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture
def built(fresh_engine: Engine) -> BuiltLedger:
    return build_ledger(fresh_engine)


@pytest.fixture
def journal_path(fresh_engine, built, tmp_path) -> Path:
    path = tmp_path / "books.journal"
    export_ledger(fresh_engine, path, format=ExportFormat.LEDGER)
    return path


@pytest.fixture
def window_path(fresh_engine, built, tmp_path) -> Path:
    path = tmp_path / "window.journal"
    window = ExportWindow.parse(built.days[1].isoformat(), built.days[3].date().isoformat())
    export_ledger(fresh_engine, path, format=ExportFormat.LEDGER, window=window)
    return path


def test_the_journal_is_well_formed_and_its_assertions_hold(journal_path, fresh_engine, built):
    journal = parse_journal(journal_path.read_text())

    assert journal.transfers == {
        i for name, i in built.transfers.items() if name not in NOT_IN_THE_BOOKS
    }
    assert len(journal.assertions) == len(built.accounts) == len(journal.accounts)
    for account, asserted in journal.assertions.items():
        assert journal.balances[account] == asserted, account
    # The assertions are the ledger's balances (account names end with the id or currency;
    # match them through the Beancount-style names the journal shares).
    scales = {"USD": 2, "JPY": 0, "ETH": 18}
    with Ledger(fresh_engine, batching=False) as ledger:
        expected = set()
        for account_id in built.accounts.values():
            account = ledger.get_account(account_id)
            net = account.balances.debits_posted - account.balances.credits_posted
            expected.add(f"{format_minor(net, scales[account.asset_code])} {account.asset_code}")
    text = journal_path.read_text()
    asserted_texts = {line.split(" = ")[1] for line in text.splitlines() if " = " in line}
    assert asserted_texts == expected
    assert "= -1.234567890123456788 ETH" in text


def test_a_window_journal_is_well_formed(window_path, built):
    journal = parse_journal(window_path.read_text())
    assert len(journal.transfers) == 6
    for account, asserted in journal.assertions.items():
        assert journal.balances[account] == asserted, account


def run_tool(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        reason = f"{tool} is not installed; the journal's structure is still checked above"
        print(reason)
        pytest.skip(reason)
    return found


@pytest.mark.parametrize("which", ["journal_path", "window_path"])
def test_hledger_accepts_the_journal(which, request):
    hledger = require("hledger")
    path = request.getfixturevalue(which)
    checked = run_tool([hledger, "-f", str(path), "check", "accounts", "commodities"])
    assert checked.returncode == 0, checked.stderr
    balances = run_tool([hledger, "-f", str(path), "balance"])  # checks the assertions
    assert balances.returncode == 0, balances.stderr


@pytest.mark.parametrize("which", ["journal_path", "window_path"])
def test_ledger_cli_accepts_the_journal(which, request):
    ledger = require("ledger")
    path = request.getfixturevalue(which)
    checked = run_tool([ledger, "--pedantic", "-f", str(path), "balance"])
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == ""


def test_the_tools_refuse_a_journal_whose_assertion_is_off_by_one_wei(journal_path):
    """The checks have teeth: one wei off in an ETH assertion fails hledger and ledger-cli,
    and the parser here."""
    text = journal_path.read_text()
    bad = journal_path.with_name("bad.journal")
    bad.write_text(text.replace("= -1.234567890123456788 ETH", "= -1.234567890123456789 ETH"))
    with pytest.raises(AssertionError):
        journal = parse_journal(bad.read_text())
        for account, asserted in journal.assertions.items():
            assert journal.balances[account] == asserted
    for tool, command in (("hledger", ["balance"]), ("ledger", ["balance"])):
        if shutil.which(tool):
            assert run_tool([tool, "-f", str(bad), *command]).returncode != 0, tool


def test_amounts_wider_than_beancount_counts_are_exact_and_flagged(fresh_engine, tmp_path):
    """20 billion ETH in wei has 29 digits: beyond Beancount's 28-digit arithmetic, not the
    journal tools'. The export writes it exactly and says how many such amounts it wrote."""
    wei = 20_000_000_000 * 10**18 + 1
    with Ledger(fresh_engine, batching=False) as ledger:
        custody, holder = (
            ledger.open_account(asset_code="ETH", normal_side=side, idempotency_key=key()).value.id
            for side in ("debit", "credit")
        )
        ledger.transfer([debit(custody, wei), credit(holder, wei)], idempotency_key=key())
    path = tmp_path / "wide.journal"
    summary = export_ledger(fresh_engine, path, format=ExportFormat.LEDGER)

    assert summary.wide_amounts == 4  # two legs, two assertions
    text = path.read_text()
    assert "  20000000000.000000000000000001 ETH" in text
    journal = parse_journal(text)
    assert journal.assertions and all(
        journal.balances[a] == b for a, b in journal.assertions.items()
    )
    for tool in ("hledger", "ledger"):
        if shutil.which(tool):
            checked = run_tool([tool, "-f", str(path), "balance"])
            assert checked.returncode == 0, checked.stderr
