"""A small ledger with every kind of transfer, spread over days, for the export tests;
bean-check to run on an export; and a parser that checks a journal's structure."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from pathlib import Path
from uuid import UUID

from sqlalchemy import Engine

from pacioli.ledger import Ledger, TransferSpec, credit, debit
from pacioli.payments.chart import Chart, Purpose

DAY_ONE = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
ONE_WEI_ETH = 1
ETH_FUNDING = 1_234_567_890_123_456_789  # 1.234567890123456789 ETH


class FakeClock:
    """A clock that stands still until the builder moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def next_day(self) -> datetime:
        self.now += timedelta(days=1)
        return self.now


@dataclass
class BuiltLedger:
    accounts: dict[str, UUID] = field(default_factory=dict)
    transfers: dict[str, UUID] = field(default_factory=dict)
    days: list[datetime] = field(default_factory=list)  # the clock's instant on each day


def key() -> str:
    return uuid.uuid4().hex


def build_ledger(engine: Engine) -> BuiltLedger:
    """USD, JPY (scale 0) and ETH (scale 18) accounts, some from the payments chart; posted,
    reversed, multi-leg, batched, partly posted, voided, expired and still open holds."""
    clock = FakeClock(DAY_ONE)
    built = BuiltLedger(days=[clock.now])
    with Ledger(engine, batching=False, clock=clock) as ledger:
        chart = Chart(engine, ledger)
        acc = built.accounts

        def plain(name: str, asset: str, side: str, **options) -> None:
            acc[name] = ledger.open_account(asset_code=asset, normal_side=side,
                                            idempotency_key=key(), **options).value.id

        def move(name: str, legs, **options) -> None:
            built.transfers[name] = ledger.transfer(legs, idempotency_key=key(),
                                                    **options).value.id

        # Day 1: accounts, and money in.
        alice, bob = uuid.uuid4(), uuid.uuid4()
        acc["alice_usd"], acc["bob_usd"] = chart.wallet(alice, "USD"), chart.wallet(bob, "USD")
        acc["alice_jpy"] = chart.wallet(alice, "JPY")
        acc["bank_usd"] = chart.platform(Purpose.BANK_SETTLEMENT, "USD")
        acc["fees_usd"] = chart.platform(Purpose.FEE_REVENUE, "USD")
        acc["clearing_sandbox"] = chart.platform(Purpose.PROCESSOR_CLEARING, "USD", "sandbox")
        acc["clearing_Sandbox"] = chart.platform(Purpose.PROCESSOR_CLEARING, "USD", "Sandbox")
        plain("bank_jpy", "JPY", "debit")
        plain("custody_eth", "ETH", "debit")
        plain("alice_eth", "ETH", "credit", debits_must_not_exceed_credits=True,
              metadata={"name": "alice's ether", "tier": 2})
        move("fund_usd", [debit(acc["bank_usd"], 1000_00), credit(acc["alice_usd"], 1000_00)],
             metadata={"description": 'Top-up "first"; thanks'})
        move("fund_jpy", [debit(acc["bank_jpy"], 150_000), credit(acc["alice_jpy"], 150_000)])
        move("fund_eth", [debit(acc["custody_eth"], ETH_FUNDING),
                          credit(acc["alice_eth"], ETH_FUNDING)])
        move("card_in", [debit(acc["clearing_sandbox"], 5_00), credit(acc["bob_usd"], 5_00)])

        # Day 2: a payment and its reversal; a three-leg payment with a fee.
        built.days.append(clock.next_day())
        move("p2p", [debit(acc["alice_usd"], 25_00), credit(acc["bob_usd"], 25_00)],
             metadata={"flow": "p2p"})
        built.transfers["p2p_reversal"] = ledger.reverse_transfer(
            built.transfers["p2p"], idempotency_key=key()).value.id
        move("three_legs", [debit(acc["alice_usd"], 100_00), credit(acc["bob_usd"], 97_00),
                            credit(acc["fees_usd"], 3_00)])

        # Day 3: holds: one posted in part, one voided, one left open, one to expire.
        built.days.append(clock.next_day())
        move("hold", [debit(acc["alice_usd"], 50_00), credit(acc["bob_usd"], 50_00)],
             pending=True)
        built.transfers["hold_post"] = ledger.post_pending(
            built.transfers["hold"], amount_minor=20_00, idempotency_key=key()).value.id
        move("eth_hold", [debit(acc["alice_eth"], 10**17), credit(acc["custody_eth"], 10**17)],
             pending=True)
        built.transfers["eth_void"] = ledger.void_pending(
            built.transfers["eth_hold"], idempotency_key=key()).value.id
        move("open_hold", [debit(acc["alice_jpy"], 1_000), credit(acc["bank_jpy"], 1_000)],
             pending=True)
        move("expiring_hold", [debit(acc["alice_usd"], 7_00), credit(acc["bob_usd"], 7_00)],
             pending=True, expires_at=clock.now + timedelta(hours=1))

        # Day 4: the hold expired; a linked batch in two assets.
        built.days.append(clock.next_day())
        (expiry,) = ledger.expire_pending()
        built.transfers["expiry"] = expiry.id
        batch = ledger.transfer_batch([
            TransferSpec((debit(acc["alice_usd"], 1_00), credit(acc["fees_usd"], 1_00))),
            TransferSpec((debit(acc["alice_jpy"], 500), credit(acc["bank_jpy"], 500))),
        ], idempotency_key=key()).value
        built.transfers["batch_usd"], built.transfers["batch_jpy"] = (t.id for t in batch)

        # Day 5: one wei; and an account opened late.
        built.days.append(clock.next_day())
        move("one_wei", [debit(acc["alice_eth"], ONE_WEI_ETH),
                         credit(acc["custody_eth"], ONE_WEI_ETH)], metadata={"flow": "gas"})
        plain("late_usd", "USD", "credit")
    return built


# Transfers that move no posted funds: they are not in the books.
NOT_IN_THE_BOOKS = ("hold", "eth_hold", "eth_void", "open_hold", "expiring_hold", "expiry")


def bean_check_command() -> list[str]:
    """bean-check from the beancount package installed with the tests."""
    beside_python = Path(sys.executable).parent / "bean-check"
    if beside_python.exists():
        return [str(beside_python)]
    found = shutil.which("bean-check")
    return [found] if found else [sys.executable, "-m", "beancount.scripts.check"]


def bean_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*bean_check_command(), str(path)], capture_output=True, text=True,
                          timeout=120)


DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
POSTING_RE = re.compile(
    r"(?P<account>\S+)  (?P<amount>-?\d+(?:\.\d+)?) (?P<commodity>[A-Z]+)"
    r"(?: = (?P<balance>-?\d+(?:\.\d+)?) (?P=commodity))?"
)


@dataclass
class Journal:
    """What the parser found; it fails the test on anything out of shape."""

    commodities: set[str] = field(default_factory=set)
    accounts: list[str] = field(default_factory=list)
    transfers: set[UUID] = field(default_factory=set)
    balances: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    assertions: dict[str, Decimal] = field(default_factory=dict)
    transactions: int = 0


def parse_journal(text: str) -> Journal:
    """Sums at 80 digits: Python's default 28 would round 18-decimal amounts of 10**10."""
    with localcontext(prec=80):
        return _parse_journal(text)


def _parse_journal(text: str) -> Journal:
    journal = Journal()
    legs: list[tuple[str, Decimal, str]] = []

    def close_transaction() -> None:
        if not legs:
            return
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for account, amount, commodity in legs:
            assert account in journal.accounts, f"{account} is used before its declaration"
            assert commodity in journal.commodities, f"{commodity} is not declared"
            sums[commodity] += amount
            journal.balances[account] += amount
        assert all(total == 0 for total in sums.values()), f"unbalanced: {legs}"
        legs.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        where = f"line {number}: {line!r}"
        if not line or line.startswith(";"):
            close_transaction()
        elif line.startswith("commodity "):
            journal.commodities.add(line.split()[1])
        elif line.startswith("  format "):
            assert line.split()[-1] in journal.commodities, where
        elif line.startswith(("account ", "tag ")):
            if line.startswith("account "):
                journal.accounts.append(line.removeprefix("account "))
        elif DATE_RE.match(line):
            close_transaction()
            assert line[10:13] == " * ", where
            journal.transactions += 1
        elif line.startswith("  ; "):
            tag, _, value = line[4:].partition(": ")
            assert value and " " not in tag, where
            if tag == "transfer":
                journal.transfers.add(UUID(value))
        elif line.startswith("  "):
            posting = POSTING_RE.fullmatch(line[2:])
            assert posting, where
            amount, commodity = Decimal(posting["amount"]), posting["commodity"]
            legs.append((posting["account"], amount, commodity))
            if posting["balance"] is not None:
                journal.assertions[posting["account"]] = Decimal(posting["balance"])
        else:
            raise AssertionError(f"unexpected {where}")
    close_transaction()
    return journal
