"""Accounts, their balances and their postings on the wire."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field, StrictBool, StrictStr

from pacioli.api.schemas.common import Metadata, RequestModel
from pacioli.api.schemas.money import AmountStr, AssetScales
from pacioli.ledger.domain.model import (
    Account,
    AccountStatus,
    Balances,
    Direction,
    Layer,
    Posting,
)


class AccountFlagsSchema(RequestModel):
    debits_must_not_exceed_credits: StrictBool = False
    credits_must_not_exceed_debits: StrictBool = False


class AccountCreate(RequestModel):
    asset: StrictStr = Field(description="The asset (currency) code, such as USD.")
    normal_side: Direction
    flags: AccountFlagsSchema = AccountFlagsSchema()
    limit: AmountStr | None = Field(
        default=None,
        description="How far the flagged side may exceed the other, in major units.",
    )
    metadata: Metadata = {}

    def limit_minor(self, scales: AssetScales) -> int | None:
        """Raises: UnknownAsset, InvalidAmount."""
        if self.limit is None:
            return None
        return scales.to_minor(self.limit, self.asset, allow_zero=True)


class BalanceAmounts(BaseModel):
    """An account's totals in major units; `balance` and `available` may be negative."""

    debits_posted: str
    credits_posted: str
    debits_pending: str
    credits_pending: str
    balance: str = Field(description="Posted balance on the account's normal side.")
    available: str = Field(description="Balance less what pending transfers reserve.")

    @classmethod
    def of(
        cls, balances: Balances, normal_side: Direction, asset_code: str, scales: AssetScales
    ) -> BalanceAmounts:
        def major(amount_minor: int) -> str:
            return scales.to_major(amount_minor, asset_code)

        return cls(
            debits_posted=major(balances.debits_posted),
            credits_posted=major(balances.credits_posted),
            debits_pending=major(balances.debits_pending),
            credits_pending=major(balances.credits_pending),
            balance=major(balances.net_posted(normal_side)),
            available=major(balances.available(normal_side)),
        )


class AccountPublic(BaseModel):
    id: UUID
    asset: str
    normal_side: Direction
    status: AccountStatus
    flags: AccountFlagsSchema
    limit: str | None
    balances: BalanceAmounts
    posting_count: int
    metadata: Metadata
    created_at: datetime

    @classmethod
    def of(cls, account: Account, scales: AssetScales) -> AccountPublic:
        code = account.asset_code
        limit = account.limit_minor
        return cls(
            id=account.id,
            asset=code,
            normal_side=account.normal_side,
            status=account.status,
            flags=AccountFlagsSchema(
                debits_must_not_exceed_credits=account.flags.debits_must_not_exceed_credits,
                credits_must_not_exceed_debits=account.flags.credits_must_not_exceed_debits,
            ),
            limit=None if limit is None else scales.to_major(limit, code),
            balances=BalanceAmounts.of(account.balances, account.normal_side, code, scales),
            posting_count=account.posting_count,
            metadata=account.metadata,
            created_at=account.created_at,
        )


class AccountBalancesPublic(BalanceAmounts):
    account_id: UUID
    asset: str
    at: datetime | None = Field(description="The instant asked for; null means now.")

    @classmethod
    def at_instant(
        cls, account: Account, balances: Balances, at: datetime | None, scales: AssetScales
    ) -> AccountBalancesPublic:
        amounts = BalanceAmounts.of(balances, account.normal_side, account.asset_code, scales)
        return cls(account_id=account.id, asset=account.asset_code, at=at, **amounts.model_dump())


class PostingPublic(BaseModel):
    """One change to one balance, with the account's balances after it."""

    account_id: UUID
    account_seq: int
    transfer_id: UUID
    asset: str
    direction: Direction
    layer: Layer
    amount: str = Field(description="Negative only when a pending hold is released.")
    balances_after: BalanceAmounts
    created_at: datetime

    @classmethod
    def of(cls, posting: Posting, normal_side: Direction, scales: AssetScales) -> PostingPublic:
        code = posting.asset_code
        return cls(
            account_id=posting.account_id,
            account_seq=posting.account_seq,
            transfer_id=posting.transfer_id,
            asset=code,
            direction=posting.direction,
            layer=posting.layer,
            amount=scales.to_major(posting.amount_minor, code),
            balances_after=BalanceAmounts.of(posting.balances_after, normal_side, code, scales),
            created_at=posting.created_at,
        )
