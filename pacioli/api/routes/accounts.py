"""/v1/accounts: open, list and read accounts, change their status, read their history."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from pacioli.api.deps import (
    PAGE_LIMIT_DEFAULT,
    IdempotentWrite,
    LedgerDep,
    MetadataFilter,
    PageLimit,
    ScalesDep,
)
from pacioli.api.routes import API_PREFIX
from pacioli.api.schemas.accounts import (
    AccountBalancesPublic,
    AccountCreate,
    AccountPublic,
    PostingPublic,
)
from pacioli.api.schemas.common import Page

router = APIRouter(prefix=f"{API_PREFIX}/accounts", tags=["accounts"])

AtInstant = Annotated[
    AwareDatetime | None,
    Query(description="An ISO 8601 instant with a time zone; omitted means now."),
]
PostingCursor = Annotated[
    int | None, Query(ge=0, description="The account_seq given as next_cursor.")
]


@router.post("", status_code=201, summary="Open an account")
def open_account(
    body: AccountCreate, ledger: LedgerDep, scales: ScalesDep, write: IdempotentWrite
) -> AccountPublic:
    written = ledger.open_account(
        asset_code=body.asset,
        normal_side=body.normal_side,
        debits_must_not_exceed_credits=body.flags.debits_must_not_exceed_credits,
        credits_must_not_exceed_debits=body.flags.credits_must_not_exceed_debits,
        limit_minor=body.limit_minor(scales),
        metadata=body.metadata,
        idempotency_key=write.key,
        client_id=write.client_id,
    )
    return AccountPublic.of(write.result(written), scales)


@router.get("", summary="List accounts, optionally by asset and metadata[key]=value")
def list_accounts(
    ledger: LedgerDep,
    scales: ScalesDep,
    metadata: MetadataFilter,
    limit: PageLimit = PAGE_LIMIT_DEFAULT,
    starting_after: UUID | None = None,
    asset: str | None = None,
) -> Page[AccountPublic]:
    rows = ledger.list_accounts(
        limit=limit + 1, starting_after=starting_after, asset_code=asset,
        metadata=metadata or None,
    )
    return Page[AccountPublic].of(
        rows, limit, lambda a: AccountPublic.of(a, scales), lambda a: a.id
    )


@router.get("/{account_id}", summary="Read an account and its balances")
def get_account(account_id: UUID, ledger: LedgerDep, scales: ScalesDep) -> AccountPublic:
    return AccountPublic.of(ledger.get_account(account_id), scales)


@router.post("/{account_id}/freeze", summary="Freeze an account: no new transfers")
def freeze_account(
    account_id: UUID, ledger: LedgerDep, scales: ScalesDep, write: IdempotentWrite
) -> AccountPublic:
    written = ledger.freeze_account(
        account_id, idempotency_key=write.key, client_id=write.client_id
    )
    return AccountPublic.of(write.result(written), scales)


@router.post("/{account_id}/unfreeze", summary="Unfreeze a frozen account")
def unfreeze_account(
    account_id: UUID, ledger: LedgerDep, scales: ScalesDep, write: IdempotentWrite
) -> AccountPublic:
    written = ledger.unfreeze_account(
        account_id, idempotency_key=write.key, client_id=write.client_id
    )
    return AccountPublic.of(write.result(written), scales)


@router.post("/{account_id}/close", summary="Close an account whose balance is zero")
def close_account(
    account_id: UUID, ledger: LedgerDep, scales: ScalesDep, write: IdempotentWrite
) -> AccountPublic:
    written = ledger.close_account(
        account_id, idempotency_key=write.key, client_id=write.client_id
    )
    return AccountPublic.of(write.result(written), scales)


@router.get("/{account_id}/balances", summary="Read an account's balances, now or at an instant")
def get_balances(
    account_id: UUID,
    ledger: LedgerDep,
    scales: ScalesDep,
    at: AtInstant = None,
) -> AccountBalancesPublic:
    account = ledger.get_account(account_id)
    balances = account.balances if at is None else ledger.balances_at(account_id, at)
    return AccountBalancesPublic.at_instant(account, balances, at, scales)


@router.get("/{account_id}/postings", summary="List an account's postings, oldest first")
def list_postings(
    account_id: UUID,
    ledger: LedgerDep,
    scales: ScalesDep,
    limit: PageLimit = PAGE_LIMIT_DEFAULT,
    starting_after: PostingCursor = None,
) -> Page[PostingPublic]:
    account = ledger.get_account(account_id)
    rows = ledger.list_postings(account_id, limit=limit + 1, starting_after=starting_after)
    return Page[PostingPublic].of(
        rows, limit, lambda p: PostingPublic.of(p, account.normal_side, scales),
        lambda p: p.account_seq,
    )
