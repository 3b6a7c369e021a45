"""Assets on the wire."""

from __future__ import annotations

from pydantic import BaseModel, StrictInt, StrictStr

from pacioli.api.schemas.common import RequestModel
from pacioli.ledger.domain.money import Asset


class AssetCreate(RequestModel):
    code: StrictStr
    scale: StrictInt


class AssetPublic(BaseModel):
    code: str
    scale: int

    @classmethod
    def of(cls, asset: Asset) -> AssetPublic:
        return cls(code=asset.code, scale=asset.scale)
