"""The chart of accounts of the payment flows, and finding (or opening) an account in it.

Every balance a user, a merchant or the platform has is a ledger account with a purpose
(docs/payments.md draws the chart). Accounts are opened on first use: the ledger's
idempotency key `chart:<owner_kind>:<owner_id>:<purpose>:<currency>` makes two
concurrent first uses open one account, and a `payment_accounts` row remembers it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert

from pacioli.ledger import Direction, Ledger
from pacioli.payments.tables import payment_accounts

PAYMENTS_CLIENT_ID = "payments"


class OwnerKind(enum.StrEnum):
    USER = "user"
    MERCHANT = "merchant"
    PLATFORM = "platform"


class Purpose(enum.StrEnum):
    """What an account is for; its normal side and overdraft rule follow from it."""

    # Liabilities: money the platform owes its users and merchants.
    WALLET = "wallet"
    MERCHANT_BALANCE = "merchant_balance"
    # A merchant's takings not yet settled: payments land here and the settlement run
    # moves them to MERCHANT_BALANCE (docs/settlement.md). Refunds of unsettled payments
    # are taken from here, so a refund may leave it negative until later sales cover it.
    MERCHANT_PENDING_SETTLEMENT = "merchant_pending_settlement"
    # Assets: money the platform holds at processors and banks.
    PROCESSOR_CLEARING = "processor_clearing"
    BANK_SETTLEMENT = "bank_settlement"
    # Revenue and the promotions pool (funded in advance; it cannot go negative).
    FEE_REVENUE = "fee_revenue"
    PROMOTIONS = "promotions"
    # FX liquidity per currency, and rounding remainders.
    FX_LIQUIDITY = "fx_liquidity"
    ROUNDING = "rounding"
    # What the platform owes a biller for bill payments it confirmed (scope: the biller).
    BILLER_PAYABLE = "biller_payable"
    # Checkout: what shoppers paid for orders not yet captured (holds land here; the
    # capture posts them and splits them out at once), and tax collected on orders.
    ORDER_ESCROW = "order_escrow"
    TAX_PAYABLE = "tax_payable"
    # The exchange (scope "exchange"): order holds land here, and each settlement batch
    # posts them and pays the trades out again, so it ends every batch at zero.
    EXCHANGE_CLEARING = "exchange_clearing"


@dataclass(frozen=True, slots=True)
class AccountRule:
    normal_side: Direction
    no_overdraft: bool  # debits_must_not_exceed_credits


RULES: dict[Purpose, AccountRule] = {
    Purpose.WALLET: AccountRule(Direction.CREDIT, no_overdraft=True),
    Purpose.MERCHANT_BALANCE: AccountRule(Direction.CREDIT, no_overdraft=True),
    Purpose.MERCHANT_PENDING_SETTLEMENT: AccountRule(Direction.CREDIT, no_overdraft=False),
    Purpose.PROCESSOR_CLEARING: AccountRule(Direction.DEBIT, no_overdraft=False),
    Purpose.BANK_SETTLEMENT: AccountRule(Direction.DEBIT, no_overdraft=False),
    Purpose.FEE_REVENUE: AccountRule(Direction.CREDIT, no_overdraft=False),
    Purpose.PROMOTIONS: AccountRule(Direction.CREDIT, no_overdraft=True),
    Purpose.FX_LIQUIDITY: AccountRule(Direction.DEBIT, no_overdraft=False),
    Purpose.ROUNDING: AccountRule(Direction.CREDIT, no_overdraft=False),
    Purpose.BILLER_PAYABLE: AccountRule(Direction.CREDIT, no_overdraft=False),
    Purpose.ORDER_ESCROW: AccountRule(Direction.CREDIT, no_overdraft=True),
    # A refund of an order whose tax was already remitted may take it below zero.
    Purpose.TAX_PAYABLE: AccountRule(Direction.CREDIT, no_overdraft=False),
    # No overdraft: a settlement can never pay out more than its holds posted.
    Purpose.EXCHANGE_CLEARING: AccountRule(Direction.CREDIT, no_overdraft=True),
}


@dataclass(frozen=True, slots=True)
class ChartKey:
    owner_kind: OwnerKind
    owner_id: str
    purpose: Purpose
    currency: str

    @property
    def idempotency_key(self) -> str:
        return f"chart:{self.owner_kind}:{self.owner_id}:{self.purpose}:{self.currency}"


class Chart:
    """Finds the ledger account for (owner, purpose, currency), opening it on first use."""

    def __init__(self, engine: Engine, ledger: Ledger) -> None:
        self._engine = engine
        self._ledger = ledger
        self._known: dict[ChartKey, UUID] = {}

    def wallet(self, user_id: UUID, currency: str) -> UUID:
        return self.account(ChartKey(OwnerKind.USER, str(user_id), Purpose.WALLET, currency))

    def known_wallet(self, user_id: UUID, currency: str) -> UUID | None:
        """The wallet if this chart has already found it (no database call), else None."""
        return self._known.get(ChartKey(OwnerKind.USER, str(user_id), Purpose.WALLET, currency))

    def merchant_balance(self, merchant_id: UUID, currency: str) -> UUID:
        return self.account(
            ChartKey(OwnerKind.MERCHANT, str(merchant_id), Purpose.MERCHANT_BALANCE, currency)
        )

    def merchant_pending_settlement(self, merchant_id: UUID, currency: str) -> UUID:
        return self.account(ChartKey(OwnerKind.MERCHANT, str(merchant_id),
                                     Purpose.MERCHANT_PENDING_SETTLEMENT, currency))

    def platform(self, purpose: Purpose, currency: str, scope: str = "") -> UUID:
        """A platform account; `scope` names one of several (a processor, a biller)."""
        return self.account(ChartKey(OwnerKind.PLATFORM, scope, purpose, currency))

    def find(self, key: ChartKey) -> UUID | None:
        """The account if it was ever opened, without opening it."""
        if key in self._known:
            return self._known[key]
        t = payment_accounts
        with self._engine.connect() as connection:
            account_id = connection.execute(
                select(t.c.account_id).where(
                    t.c.owner_kind == key.owner_kind, t.c.owner_id == key.owner_id,
                    t.c.purpose == key.purpose, t.c.currency == key.currency,
                )
            ).scalar()
        if account_id is not None:
            self._known[key] = account_id
        return account_id

    def account(self, key: ChartKey) -> UUID:
        """Raises: UnknownAsset (the currency is not a ledger asset)."""
        account_id = self.find(key)
        if account_id is not None:
            return account_id
        rule = RULES[key.purpose]
        opened = self._ledger.open_account(
            asset_code=key.currency,
            normal_side=rule.normal_side,
            debits_must_not_exceed_credits=rule.no_overdraft,
            metadata={"owner_kind": str(key.owner_kind), "owner_id": key.owner_id,
                      "purpose": str(key.purpose)},
            idempotency_key=key.idempotency_key,
            client_id=PAYMENTS_CLIENT_ID,
        ).value
        with self._engine.begin() as connection:
            connection.execute(
                insert(payment_accounts)
                .values(
                    owner_kind=key.owner_kind, owner_id=key.owner_id, purpose=key.purpose,
                    currency=key.currency, account_id=opened.id, created_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing()
            )
        self._known[key] = opened.id
        return opened.id

    def owned_accounts(self, owner_kind: OwnerKind, owner_id: str) -> dict[tuple[str, str], UUID]:
        """(purpose, currency) → account id for everything one owner has opened."""
        t = payment_accounts
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(t.c.purpose, t.c.currency, t.c.account_id).where(
                    t.c.owner_kind == owner_kind, t.c.owner_id == owner_id
                )
            )
            return {(row.purpose, row.currency): row.account_id for row in rows}
