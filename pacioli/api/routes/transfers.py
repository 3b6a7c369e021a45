"""/v1/transfers: post transfers and linked batches, resolve pending ones, reverse, read."""

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
    Write,
)
from pacioli.api.routes import API_PREFIX
from pacioli.api.schemas.common import Page
from pacioli.api.schemas.money import AssetScales
from pacioli.api.schemas.transfers import (
    PendingPost,
    TransferAction,
    TransferBatchCreate,
    TransferBatchPublic,
    TransferCreate,
    TransferPublic,
)
from pacioli.ledger import Ledger, Transfer

router = APIRouter(prefix=f"{API_PREFIX}/transfers", tags=["transfers"])

CreatedFrom = Annotated[AwareDatetime | None, Query(description="Created at or after.")]
CreatedBefore = Annotated[AwareDatetime | None, Query(description="Created strictly before.")]


@router.post("", status_code=201, summary="Post a transfer, or reserve one with pending=true")
def create_transfer(
    body: TransferCreate,
    ledger: LedgerDep,
    scales: ScalesDep,
    write: IdempotentWrite,
) -> TransferPublic:
    transfers = _create(ledger, [body], scales, write)
    return TransferPublic.of(transfers[0], scales)


@router.post("/batch", status_code=201, summary="Post a linked batch: all or nothing")
def create_transfer_batch(
    body: TransferBatchCreate,
    ledger: LedgerDep,
    scales: ScalesDep,
    write: IdempotentWrite,
) -> TransferBatchPublic:
    transfers = _create(ledger, body.transfers, scales, write)
    return TransferBatchPublic(transfers=[TransferPublic.of(t, scales) for t in transfers])


def _create(
    ledger: Ledger, requested: list[TransferCreate], scales: AssetScales, write: Write
) -> list[Transfer]:
    """Post the requested transfers as one linked command (a single one is a batch of one)."""
    specs = [transfer.to_spec(scales) for transfer in requested]
    written = ledger.transfer_batch(specs, idempotency_key=write.key, client_id=write.client_id)
    return write.result(written)


@router.get("", summary="List transfers by account, creation time and metadata[key]=value")
def list_transfers(
    ledger: LedgerDep,
    scales: ScalesDep,
    metadata: MetadataFilter,
    limit: PageLimit = PAGE_LIMIT_DEFAULT,
    starting_after: UUID | None = None,
    account_id: UUID | None = None,
    created_from: CreatedFrom = None,
    created_before: CreatedBefore = None,
) -> Page[TransferPublic]:
    rows = ledger.list_transfers(
        limit=limit + 1, starting_after=starting_after, account_id=account_id,
        created_from=created_from, created_before=created_before, metadata=metadata or None,
    )
    return Page[TransferPublic].of(
        rows, limit, lambda t: TransferPublic.of(t, scales), lambda t: t.id
    )


@router.get("/{transfer_id}", summary="Read a transfer")
def get_transfer(transfer_id: UUID, ledger: LedgerDep, scales: ScalesDep) -> TransferPublic:
    return TransferPublic.of(ledger.get_transfer(transfer_id), scales)


@router.post("/{transfer_id}/post", summary="Post a pending transfer, in full or in part")
def post_pending(
    transfer_id: UUID,
    ledger: LedgerDep,
    scales: ScalesDep,
    write: IdempotentWrite,
    body: PendingPost | None = None,
) -> TransferPublic:
    body = body or PendingPost()
    amount_minor = None
    if body.amount is not None:
        # The amount is in the pending transfer's asset, whose scale converts it.
        amount_minor = body.amount_minor(ledger.get_transfer(transfer_id), scales)
    written = ledger.post_pending(
        transfer_id, amount_minor=amount_minor, metadata=body.metadata,
        idempotency_key=write.key, client_id=write.client_id,
    )
    return TransferPublic.of(write.result(written), scales)


@router.post("/{transfer_id}/void", summary="Release a pending transfer's hold")
def void_pending(
    transfer_id: UUID,
    ledger: LedgerDep,
    scales: ScalesDep,
    write: IdempotentWrite,
    body: TransferAction | None = None,
) -> TransferPublic:
    written = ledger.void_pending(
        transfer_id, metadata=(body or TransferAction()).metadata,
        idempotency_key=write.key, client_id=write.client_id,
    )
    return TransferPublic.of(write.result(written), scales)


@router.post("/{transfer_id}/reverse", summary="Undo a posted transfer with a new one")
def reverse_transfer(
    transfer_id: UUID,
    ledger: LedgerDep,
    scales: ScalesDep,
    write: IdempotentWrite,
    body: TransferAction | None = None,
) -> TransferPublic:
    written = ledger.reverse_transfer(
        transfer_id, metadata=(body or TransferAction()).metadata,
        idempotency_key=write.key, client_id=write.client_id,
    )
    return TransferPublic.of(write.result(written), scales)
