"""/v1/assets: the currencies and tokens the ledger knows, with their scales."""

from __future__ import annotations

from fastapi import APIRouter

from pacioli.api.deps import IdempotentWrite, LedgerDep
from pacioli.api.routes import API_PREFIX
from pacioli.api.schemas.assets import AssetCreate, AssetPublic
from pacioli.api.schemas.common import Page

router = APIRouter(prefix=f"{API_PREFIX}/assets", tags=["assets"])


@router.get("", summary="List every asset")
def list_assets(ledger: LedgerDep) -> Page[AssetPublic]:
    # Assets are few; the whole list is one page.
    return Page[AssetPublic](data=[AssetPublic.of(a) for a in ledger.list_assets()], has_more=False)


@router.post("", status_code=201, summary="Define an asset")
def create_asset(body: AssetCreate, ledger: LedgerDep, write: IdempotentWrite) -> AssetPublic:
    written = ledger.create_asset(
        body.code, body.scale, idempotency_key=write.key, client_id=write.client_id
    )
    return AssetPublic.of(write.result(written))
