"""`pacioli demo`: a small, realistic data set, built through the ledger's Python API.

The demo calls the same `Ledger` methods a user's code would. Every write carries a fixed
idempotency key starting with `demo:`, so running the demo again replays each write
instead of repeating it: the data set never doubles.

The data set is told in chapters: each is a function of the `Demo` that opens accounts or
moves money. Later flows (payments, commerce, the exchange) add their own chapters to
`CHAPTERS`, and can reach every account opened so far by its name in `demo.accounts`.
A key stands for one request forever: to change what a write does, give it a new name,
or databases that ran an older demo will refuse it (`idempotency_key_reused`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from pacioli.ledger import (
    Account,
    Ledger,
    Leg,
    Transfer,
    TransferSpec,
    Written,
    credit,
    debit,
    parse_major,
)

KEY_PREFIX = "demo:"


@dataclass(frozen=True, slots=True)
class DemoAccount:
    name: str
    title: str
    account: Account
    scale: int  # of the account's asset, for printing its balances


@dataclass(frozen=True, slots=True)
class DemoResult:
    accounts: tuple[DemoAccount, ...]
    writes_new: int
    writes_replayed: int


@dataclass
class Demo:
    """The ledger, the accounts opened so far by name, and a tally of what was written."""

    ledger: Ledger
    accounts: dict[str, UUID] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    writes_new: int = 0
    writes_replayed: int = 0
    _scales: dict[str, int] = field(default_factory=dict)

    def minor(self, amount: str, asset_code: str) -> int:
        """A decimal string in major units ("42.50") as minor units of the asset."""
        if not self._scales:
            self._scales = {asset.code: asset.scale for asset in self.ledger.list_assets()}
        return parse_major(amount, self._scales[asset_code])

    def debit(self, name: str, amount: str, asset_code: str = "USD") -> Leg:
        return debit(self.accounts[name], self.minor(amount, asset_code))

    def credit(self, name: str, amount: str, asset_code: str = "USD") -> Leg:
        return credit(self.accounts[name], self.minor(amount, asset_code))

    def _tally(self, written: Written) -> Any:
        if written.replayed:
            self.writes_replayed += 1
        else:
            self.writes_new += 1
        return written.value

    def open_account(self, name: str, title: str, **options: Any) -> UUID:
        metadata = {"demo": name, "title": title}
        account = self._tally(
            self.ledger.open_account(
                metadata=metadata, idempotency_key=f"{KEY_PREFIX}account:{name}", **options
            )
        )
        self.accounts[name], self.titles[name] = account.id, title
        return account.id

    def transfer(self, name: str, legs: Sequence[Leg], **options: Any) -> Transfer:
        return self._tally(
            self.ledger.transfer(
                legs, metadata={"demo": name}, idempotency_key=f"{KEY_PREFIX}transfer:{name}",
                **options,
            )
        )

    def batch(self, name: str, specs: Sequence[TransferSpec]) -> list[Transfer]:
        return self._tally(
            self.ledger.transfer_batch(specs, idempotency_key=f"{KEY_PREFIX}batch:{name}")
        )

    def post_pending(self, name: str, pending: Transfer, amount: str | None = None,
                     asset_code: str = "USD") -> Transfer:
        amount_minor = None if amount is None else self.minor(amount, asset_code)
        return self._tally(
            self.ledger.post_pending(
                pending.id, amount_minor=amount_minor, metadata={"demo": name},
                idempotency_key=f"{KEY_PREFIX}post:{name}",
            )
        )

    def void_pending(self, name: str, pending: Transfer) -> Transfer:
        return self._tally(
            self.ledger.void_pending(
                pending.id, metadata={"demo": name}, idempotency_key=f"{KEY_PREFIX}void:{name}"
            )
        )

    def reverse(self, name: str, transfer: Transfer) -> Transfer:
        return self._tally(
            self.ledger.reverse_transfer(
                transfer.id, metadata={"demo": name},
                idempotency_key=f"{KEY_PREFIX}reverse:{name}",
            )
        )


# The chapters.


def open_accounts(demo: Demo) -> None:
    """The bank's cash, fee revenue, three customer wallets, a merchant; JPY and BTC books."""
    no_overdraft = {"normal_side": "credit", "debits_must_not_exceed_credits": True}
    demo.open_account("bank", "Operating bank account (cash)", asset_code="USD",
                      normal_side="debit")
    demo.open_account("fees", "Fee revenue", asset_code="USD", normal_side="credit")
    demo.open_account("alice", "Alice's wallet", asset_code="USD", **no_overdraft)
    demo.open_account("bob", "Bob's wallet", asset_code="USD", **no_overdraft)
    demo.open_account("carol", "Carol's wallet", asset_code="USD", **no_overdraft)
    demo.open_account("merchant", "Corner Café (merchant)", asset_code="USD", **no_overdraft)
    demo.open_account("bank_jpy", "Tokyo bank account (cash)", asset_code="JPY",
                      normal_side="debit")
    demo.open_account("kenji", "Kenji's wallet", asset_code="JPY", **no_overdraft)
    demo.open_account("btc_custody", "BTC custody (cold wallet)", asset_code="BTC",
                      normal_side="debit")
    demo.open_account("satoshi", "Satoshi's BTC wallet", asset_code="BTC", **no_overdraft)


def top_ups(demo: Demo) -> None:
    """Customers fund their wallets from their bank cards."""
    for name, amount in (("alice", "200.00"), ("bob", "150.00"), ("carol", "80.00")):
        demo.transfer(f"top-up:{name}", [demo.debit("bank", amount), demo.credit(name, amount)])
    demo.transfer("top-up:kenji", [demo.debit("bank_jpy", "25000", "JPY"),
                                   demo.credit("kenji", "25000", "JPY")])
    demo.transfer("top-up:satoshi", [demo.debit("btc_custody", "0.05", "BTC"),
                                     demo.credit("satoshi", "0.05", "BTC")])


def peer_to_peer(demo: Demo) -> None:
    """Alice pays Bob back for dinner; Satoshi withdraws some BTC to his own wallet."""
    demo.transfer("p2p:alice-to-bob", [demo.debit("alice", "25.00"), demo.credit("bob", "25.00")])
    demo.transfer("withdrawal:satoshi", [demo.debit("satoshi", "0.0125", "BTC"),
                                         demo.credit("btc_custody", "0.0125", "BTC")])


def card_authorisation(demo: Demo) -> None:
    """The café authorises 60.00 on Alice's card, then captures the final 48.75."""
    hold = demo.transfer("card-auth:alice", [demo.debit("alice", "60.00"),
                                             demo.credit("merchant", "60.00")], pending=True)
    demo.post_pending("card-capture:alice", hold, "48.75")


def voided_hold(demo: Demo) -> None:
    """Bob orders for 30.00, then cancels: the hold is voided and nothing moves."""
    hold = demo.transfer("card-auth:bob", [demo.debit("bob", "30.00"),
                                           demo.credit("merchant", "30.00")], pending=True)
    demo.void_pending("card-void:bob", hold)


def open_hold(demo: Demo) -> None:
    """Bob's 12.00 pre-authorisation is still open: it shows as pending, not posted."""
    demo.transfer("card-auth:bob-open", [demo.debit("bob", "12.00"),
                                         demo.credit("merchant", "12.00")], pending=True)


def reversal(demo: Demo) -> None:
    """Carol's 15.00 top-up went through twice; the duplicate is reversed."""
    duplicate = demo.transfer("top-up:carol-duplicate", [demo.debit("bank", "15.00"),
                                                         demo.credit("carol", "15.00")])
    demo.reverse("top-up:carol-duplicate", duplicate)


def checkout_with_fee(demo: Demo) -> None:
    """Carol pays the café 40.00 and the platform takes its 3% fee: both or neither."""
    demo.batch("checkout:carol", [
        TransferSpec((demo.debit("carol", "40.00"), demo.credit("merchant", "40.00")),
                     metadata={"demo": "checkout:carol", "part": "payment"}),
        TransferSpec((demo.debit("merchant", "1.20"), demo.credit("fees", "1.20")),
                     metadata={"demo": "checkout:carol", "part": "fee"}),
    ])


Chapter = Callable[[Demo], None]

CHAPTERS: list[Chapter] = [
    open_accounts,
    top_ups,
    peer_to_peer,
    card_authorisation,
    voided_hold,
    open_hold,
    reversal,
    checkout_with_fee,
]


def run_demo(ledger: Ledger, chapters: Sequence[Chapter] = CHAPTERS) -> DemoResult:
    """Run every chapter in order; return the accounts (as they stand now) and the tally."""
    demo = Demo(ledger)
    for chapter in chapters:
        chapter(demo)
    scales = {asset.code: asset.scale for asset in ledger.list_assets()}
    accounts = []
    for name, account_id in demo.accounts.items():
        account = ledger.get_account(account_id)
        accounts.append(DemoAccount(name, demo.titles[name], account, scales[account.asset_code]))
    return DemoResult(tuple(accounts), demo.writes_new, demo.writes_replayed)
