"""Wallets, P2P payments, money requests and international transfers on the wire."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, StrictStr, model_validator

from pacioli.api.schemas.common import RequestModel
from pacioli.api.schemas.money import AmountStr, AssetScales
from pacioli.payments.fx import FxQuote
from pacioli.payments.p2p import NOTE_LENGTH_MAX, MoneyRequest, P2PPayment


class UserRef(RequestModel):
    """Exactly one of a user's id, email address or phone number (E.164)."""

    user_id: UUID | None = None
    email: StrictStr | None = None
    phone: StrictStr | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> UserRef:
        given = [v for v in (self.user_id, self.email, self.phone) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of user_id, email and phone")
        return self


class P2PPaymentCreate(RequestModel):
    to: UserRef
    amount: AmountStr
    currency: StrictStr
    note: StrictStr = Field("", max_length=NOTE_LENGTH_MAX)


class MoneyRequestCreate(RequestModel):
    from_: UserRef = Field(alias="from")
    amount: AmountStr
    currency: StrictStr
    note: StrictStr = Field("", max_length=NOTE_LENGTH_MAX)


class Party(BaseModel):
    user_id: UUID
    display_name: str | None


class P2PPaymentPublic(BaseModel):
    id: UUID
    status: Literal["created", "succeeded", "failed"]
    failure_code: str | None
    direction: Literal["sent", "received"] = Field(description="As seen by the caller.")
    amount: str
    currency: str
    note: str
    payer: Party
    payee: Party
    transfer_id: UUID | None
    request_id: UUID | None
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(
        cls, payment: P2PPayment, viewer_id: UUID, names: dict[UUID, str | None],
        scales: AssetScales,
    ) -> P2PPaymentPublic:
        return cls(
            id=payment.id, status=payment.status, failure_code=payment.failure_code,
            direction="sent" if payment.payer_user_id == viewer_id else "received",
            amount=scales.to_major(payment.amount_minor, payment.currency),
            currency=payment.currency, note=payment.note,
            payer=Party(user_id=payment.payer_user_id,
                        display_name=names.get(payment.payer_user_id)),
            payee=Party(user_id=payment.payee_user_id,
                        display_name=names.get(payment.payee_user_id)),
            transfer_id=payment.transfer_id, request_id=payment.request_id,
            created_at=payment.created_at, completed_at=payment.completed_at,
        )


class MoneyRequestPublic(BaseModel):
    id: UUID
    status: Literal["open", "paid", "declined", "cancelled"]
    role: Literal["requester", "payer"] = Field(description="The caller's part in it.")
    amount: str
    currency: str
    note: str
    requester: Party
    payer: Party
    created_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(
        cls, request: MoneyRequest, viewer_id: UUID, names: dict[UUID, str | None],
        scales: AssetScales,
    ) -> MoneyRequestPublic:
        return cls(
            id=request.id, status=request.status,
            role="requester" if request.requester_user_id == viewer_id else "payer",
            amount=scales.to_major(request.amount_minor, request.currency),
            currency=request.currency, note=request.note,
            requester=Party(user_id=request.requester_user_id,
                            display_name=names.get(request.requester_user_id)),
            payer=Party(user_id=request.payer_user_id,
                        display_name=names.get(request.payer_user_id)),
            created_at=request.created_at, resolved_at=request.resolved_at,
        )


class WalletPublic(BaseModel):
    currency: str
    account_id: UUID | None = Field(description="None until the wallet is first used.")
    available: str
    posted: str
    pending_out: str = Field(description="Held by pending transfers (e.g. a withdrawal).")
    pending_in: str = Field(description="On its way in (e.g. a top-up being confirmed).")


class FxQuoteCreate(RequestModel):
    to: UserRef
    amount: AmountStr = Field(description="In the source currency.")
    source_currency: StrictStr
    target_currency: StrictStr


class FxQuotePublic(BaseModel):
    id: UUID
    status: Literal["open", "executed"]
    recipient: Party
    source_amount: str
    source_currency: str
    fee: str = Field(description="In the source currency.")
    rounding: str = Field(description="Source units left over by rounding the target down.")
    target_amount: str
    target_currency: str
    rate: str = Field(description="Target per source unit after the spread, rounded to 10 "
                      "decimals for display; the exact fraction is `rate_exact`.")
    rate_exact: str
    created_at: datetime
    expires_at: datetime
    executed_at: datetime | None
    transfer_ids: list[UUID]

    @classmethod
    def of(cls, quote: FxQuote, names: dict[UUID, str | None],
           scales: AssetScales) -> FxQuotePublic:
        src, tgt = quote.source_currency, quote.target_currency
        rate = quote.rate()
        return cls(
            id=quote.id, status=quote.status,
            recipient=Party(user_id=quote.recipient_user_id,
                            display_name=names.get(quote.recipient_user_id)),
            source_amount=scales.to_major(quote.source_amount_minor, src), source_currency=src,
            fee=scales.to_major(quote.fee_minor, src),
            rounding=scales.to_major(quote.rounding_minor, src),
            target_amount=scales.to_major(quote.target_amount_minor, tgt), target_currency=tgt,
            rate=str(round(Decimal(rate.numerator) / Decimal(rate.denominator), 10)),
            rate_exact=quote.customer_rate, created_at=quote.created_at,
            expires_at=quote.expires_at, executed_at=quote.executed_at,
            transfer_ids=[UUID(t) for t in quote.transfer_ids],
        )
