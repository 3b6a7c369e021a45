"""Merchants, their secret keys and their settlement account on the wire."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field, StrictInt, StrictStr

from pacioli.api.schemas.common import RequestModel
from pacioli.payments.merchants import (
    NAME_LENGTH_MAX,
    ApiKey,
    IssuedApiKey,
    KeyMode,
    Merchant,
    MerchantStatus,
)
from pacioli.payments.settlement_accounts import SettlementAccount


class MerchantCreate(RequestModel):
    name: StrictStr = Field(min_length=1, max_length=NAME_LENGTH_MAX)
    owner_user_id: UUID | None = Field(
        default=None,
        description="The owning user: required from an admin; a user registers for"
        " themselves and may leave it out.",
    )
    mode: KeyMode = Field(default=KeyMode.TEST, description="The first secret key's mode.")


class MerchantPublic(BaseModel):
    id: UUID
    name: str
    owner_user_id: UUID
    status: MerchantStatus
    created_at: datetime
    reviewed_at: datetime | None

    @classmethod
    def of(cls, merchant: Merchant) -> MerchantPublic:
        return cls(id=merchant.id, name=merchant.name, owner_user_id=merchant.owner_user_id,
                   status=merchant.status, created_at=merchant.created_at,
                   reviewed_at=merchant.reviewed_at)


class MerchantList(BaseModel):
    data: list[MerchantPublic]


class ApiKeyPublic(BaseModel):
    """A secret key without its secret. `secret` is set only in the response that made it."""

    id: UUID
    mode: KeyMode
    last4: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    secret: str | None = Field(
        default=None,
        description="The key itself, shown once when it is made (never on a replay).",
    )

    @classmethod
    def of(cls, key: ApiKey | IssuedApiKey) -> ApiKeyPublic:
        secret = key.secret if isinstance(key, IssuedApiKey) else None
        stored = key.key if isinstance(key, IssuedApiKey) else key
        return cls(id=stored.id, mode=stored.mode, last4=stored.last4,
                   created_at=stored.created_at, expires_at=stored.expires_at,
                   revoked_at=stored.revoked_at, secret=secret)


class MerchantRegistrationPublic(BaseModel):
    merchant: MerchantPublic
    api_key: ApiKeyPublic | None = Field(
        description="The first secret key with its secret; null on a replay."
    )


class ApiKeyCreate(RequestModel):
    mode: KeyMode | None = Field(default=None, description="Defaults to the current key's.")
    expire_current_after_seconds: StrictInt | None = Field(
        default=None, ge=0,
        description="Rotate: the key sending this request stops working after this many"
        " seconds (0: at once). Left out, it stays live alongside the new key.",
    )


class ApiKeyList(BaseModel):
    data: list[ApiKeyPublic]


class SettlementAccountPut(RequestModel):
    """An IBAN, or an account number with an ABA routing number."""

    account_holder: StrictStr
    iban: StrictStr | None = None
    account_number: StrictStr | None = None
    routing_number: StrictStr | None = None


class SettlementAccountPublic(BaseModel):
    """The account on file, its number masked to the last four characters."""

    account_holder: str
    scheme: str = Field(description="iban or us_ach.")
    account_number_masked: str
    routing_number: str | None
    updated_at: datetime

    @classmethod
    def of(cls, account: SettlementAccount) -> SettlementAccountPublic:
        details = account.details
        return cls(account_holder=details.account_holder,
                   scheme="iban" if details.iban else "us_ach",
                   account_number_masked=details.masked,
                   routing_number=details.routing_number, updated_at=account.updated_at)


class MerchantMePublic(MerchantPublic):
    """The calling merchant, with the key it used and its settlement account, if any."""

    key_id: UUID
    mode: KeyMode
    settlement_account: SettlementAccountPublic | None
