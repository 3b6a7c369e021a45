"""Linked cards and bank accounts, top-ups and withdrawals on the wire.

A card number, its CVC and a bank account number arrive as `SecretStr`, so neither a
`repr` of the request nor a validation error can show them; responses carry only the
brand and the last four digits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, SecretStr, StrictInt, StrictStr, model_validator

from pacioli.api.schemas.common import RequestModel
from pacioli.api.schemas.money import AmountStr, AssetScales
from pacioli.payments.instruments import Instrument
from pacioli.payments.topups import TopUp
from pacioli.payments.withdrawals import Withdrawal


class CardCreate(RequestModel):
    number: SecretStr = Field(description="The card number; sent to the gateway, never kept.")
    exp_month: StrictInt
    exp_year: StrictInt
    cvc: SecretStr = Field(description="3 digits (4 for amex); sent to the gateway, never kept.")


class CardPublic(BaseModel):
    id: UUID
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    status: Literal["active", "removed"]
    created_at: datetime

    @classmethod
    def of(cls, card: Instrument) -> CardPublic:
        return cls(id=card.id, brand=card.brand, last4=card.last4, exp_month=card.exp_month,
                   exp_year=card.exp_year, status=card.status, created_at=card.created_at)


class BankAccountCreate(RequestModel):
    account_number: SecretStr = Field(description="4 to 17 digits; only the last four are kept.")
    routing_number: StrictStr = Field(description="9 digits with a valid ABA checksum.")


class BankAccountPublic(BaseModel):
    id: UUID
    last4: str
    routing_number: str
    status: Literal["active", "removed"]
    created_at: datetime

    @classmethod
    def of(cls, account: Instrument) -> BankAccountPublic:
        return cls(id=account.id, last4=account.last4, routing_number=account.routing_number,
                   status=account.status, created_at=account.created_at)


class TopUpCreate(RequestModel):
    card_id: UUID | None = Field(default=None, description="A linked card; or bank_account_id.")
    bank_account_id: UUID | None = None
    amount: AmountStr
    currency: StrictStr

    @model_validator(mode="after")
    def _one_source(self) -> TopUpCreate:
        if (self.card_id is None) == (self.bank_account_id is None):
            raise ValueError("give exactly one of card_id and bank_account_id")
        return self


TopUpStatus = Literal["created", "pending", "authorized", "succeeded", "failed"]


class TopUpPublic(BaseModel):
    id: UUID
    status: TopUpStatus = Field(
        description="pending: waiting for the processor (the wallet shows it as pending_in);"
        " authorized: the card is authorized, the capture is on its way; succeeded: the"
        " wallet is credited; failed: declined, failed or timed out, nothing credited."
    )
    failure_code: str | None = Field(
        description="Why it failed: card_declined, insufficient_funds, expired_card,"
        " processing_error, timeout, account_closed ..."
    )
    source_kind: Literal["card", "bank_account"]
    source_id: UUID
    amount: str
    currency: str
    gateway: str
    gateway_reference: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, topup: TopUp, scales: AssetScales) -> TopUpPublic:
        return cls(
            id=topup.id, status=topup.status, failure_code=topup.failure_code,
            source_kind=topup.source_kind, source_id=topup.instrument_id,
            amount=scales.to_major(topup.amount_minor, topup.currency), currency=topup.currency,
            gateway=topup.gateway, gateway_reference=topup.gateway_reference,
            created_at=topup.created_at, updated_at=topup.updated_at,
            completed_at=topup.completed_at,
        )


class WithdrawalCreate(RequestModel):
    bank_account_id: UUID
    amount: AmountStr
    currency: StrictStr


WithdrawalStatus = Literal["created", "pending", "succeeded", "failed"]


class WithdrawalPublic(BaseModel):
    id: UUID
    status: WithdrawalStatus = Field(
        description="pending: funds held, payout under way; succeeded: paid out; failed:"
        " the payout failed and the funds are back in the wallet."
    )
    failure_code: str | None
    bank_account_id: UUID
    amount: str
    currency: str
    gateway: str
    gateway_reference: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, withdrawal: Withdrawal, scales: AssetScales) -> WithdrawalPublic:
        return cls(
            id=withdrawal.id, status=withdrawal.status, failure_code=withdrawal.failure_code,
            bank_account_id=withdrawal.instrument_id,
            amount=scales.to_major(withdrawal.amount_minor, withdrawal.currency),
            currency=withdrawal.currency, gateway=withdrawal.gateway,
            gateway_reference=withdrawal.gateway_reference, created_at=withdrawal.created_at,
            updated_at=withdrawal.updated_at, completed_at=withdrawal.completed_at,
        )
