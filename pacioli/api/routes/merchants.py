"""/v1/merchants: registration and review, the calling merchant, its keys and payout account.

`/v1/merchants/me/...` act as the merchant whose secret key sends the request; the
routes with a merchant id are for admins (and, to read, for the owning user).
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, Response

from pacioli.api.auth import (
    AdminOrUser,
    AuthenticatedAdmin,
    CurrentMerchant,
    EngineDep,
    IdempotencyKeyHeader,
    OneTimeCode,
    result,
    write_key,
)
from pacioli.api.deps import AdminClient
from pacioli.api.errors import InvalidRequest
from pacioli.api.routes import API_PREFIX
from pacioli.api.routes.funding import app_gateway
from pacioli.api.schemas.merchants import (
    ApiKeyCreate,
    ApiKeyList,
    ApiKeyPublic,
    MerchantCreate,
    MerchantMePublic,
    MerchantPublic,
    MerchantRegistrationPublic,
    SettlementAccountPublic,
    SettlementAccountPut,
)
from pacioli.config import get_settings
from pacioli.payments import merchants, settlement_accounts
from pacioli.payments.identity_errors import MerchantNotFound, SettlementAccountNotFound

router = APIRouter(prefix=f"{API_PREFIX}/merchants", tags=["merchants"])


@router.post("", status_code=201, summary="Register a merchant (admin: approved; user: reviewed)")
def register_merchant(
    body: MerchantCreate,
    caller: AdminOrUser,
    engine: EngineDep,
    key: IdempotencyKeyHeader,
    response: Response,
) -> MerchantRegistrationPublic:
    is_admin = isinstance(caller, AuthenticatedAdmin)
    if is_admin and body.owner_user_id is None:
        raise InvalidRequest("owner_user_id: an admin names the merchant's owning user")
    if not is_admin and body.owner_user_id not in (None, caller.id):
        raise InvalidRequest("owner_user_id: a user registers merchants for themselves only")
    written = merchants.register_merchant(
        engine, name=body.name, owner_user_id=body.owner_user_id or caller.id,
        approved=is_admin, mode=body.mode, write_key=write_key(caller.principal, key),
    )
    registration = result(response, written)
    return MerchantRegistrationPublic(
        merchant=MerchantPublic.of(registration.merchant),
        api_key=ApiKeyPublic.of(registration.api_key) if registration.api_key else None,
    )


# The calling merchant. These come before /{merchant_id}, which would match "me".


@router.get("/me", summary="The merchant whose key sends the request")
def get_merchant_me(merchant: CurrentMerchant, engine: EngineDep) -> MerchantMePublic:
    try:
        account = SettlementAccountPublic.of(
            settlement_accounts.get_settlement_account(engine, merchant.id)
        )
    except SettlementAccountNotFound:
        account = None
    public = MerchantPublic.of(merchants.get_merchant(engine, merchant.id))
    return MerchantMePublic(**public.model_dump(), key_id=merchant.key_id, mode=merchant.mode,
                            settlement_account=account)


@router.get("/me/api-keys", summary="The merchant's secret keys (never their secrets)")
def list_api_keys(merchant: CurrentMerchant, engine: EngineDep) -> ApiKeyList:
    return ApiKeyList(data=[ApiKeyPublic.of(k) for k in merchants.list_keys(engine, merchant.id)])


@router.post("/me/api-keys", status_code=201, summary="Make a new secret key, or rotate")
def create_api_key(
    body: ApiKeyCreate,
    merchant: CurrentMerchant,
    engine: EngineDep,
    key: IdempotencyKeyHeader,
    response: Response,
) -> ApiKeyPublic:
    grace_max = get_settings().api_key_rotation_grace_seconds_max
    grace = body.expire_current_after_seconds
    if grace is not None and grace > grace_max:
        raise InvalidRequest(f"expire_current_after_seconds: at most {grace_max}")
    written = merchants.rotate_key(
        engine, merchant.id, current_key_id=merchant.key_id, mode=body.mode or merchant.mode,
        expire_current_after_seconds=grace, write_key=write_key(merchant.principal, key),
    )
    return ApiKeyPublic.of(result(response, written))


@router.delete("/me/api-keys/{key_id}", summary="Revoke one of the merchant's keys at once")
def revoke_api_key(key_id: UUID, merchant: CurrentMerchant, engine: EngineDep) -> ApiKeyPublic:
    return ApiKeyPublic.of(merchants.revoke_key(engine, merchant.id, key_id))


@router.get("/me/settlement-account", summary="The settlement account on file, masked")
def get_settlement_account(
    merchant: CurrentMerchant, engine: EngineDep
) -> SettlementAccountPublic:
    return SettlementAccountPublic.of(
        settlement_accounts.get_settlement_account(engine, merchant.id)
    )


@router.put(
    "/me/settlement-account",
    summary="Put the settlement account on file (replacing one needs the owner's TOTP)",
)
def put_settlement_account(
    body: SettlementAccountPut,
    merchant: CurrentMerchant,
    engine: EngineDep,
    request: Request,
    one_time_code: OneTimeCode = None,
) -> SettlementAccountPublic:
    """An account and routing number are tokenized at the gateway for payouts."""
    details = settlement_accounts.bank_details(
        account_holder=body.account_holder, iban=body.iban,
        account_number=body.account_number, routing_number=body.routing_number,
    )
    account, _changed = settlement_accounts.set_settlement_account(
        engine, merchant.id, owner_user_id=merchant.owner_user_id, details=details,
        one_time_code=one_time_code, gateway=app_gateway(request.app),
    )
    return SettlementAccountPublic.of(account)


# Admins, and owning users.


@router.get("/{merchant_id}", summary="A merchant (its admin or owning user)")
def get_merchant(merchant_id: UUID, caller: AdminOrUser, engine: EngineDep) -> MerchantPublic:
    merchant = merchants.get_merchant(engine, merchant_id)
    if not isinstance(caller, AuthenticatedAdmin) and merchant.owner_user_id != caller.id:
        raise MerchantNotFound()  # Another user's merchant: not there, as far as they know.
    return MerchantPublic.of(merchant)


@router.post("/{merchant_id}/approve", summary="Approve a merchant waiting for review")
def approve_merchant(merchant_id: UUID, _admin: AdminClient, engine: EngineDep) -> MerchantPublic:
    return MerchantPublic.of(merchants.review_merchant(engine, merchant_id, approve=True))


@router.post("/{merchant_id}/reject", summary="Reject a merchant waiting for review")
def reject_merchant(merchant_id: UUID, _admin: AdminClient, engine: EngineDep) -> MerchantPublic:
    return MerchantPublic.of(merchants.review_merchant(engine, merchant_id, approve=False))
