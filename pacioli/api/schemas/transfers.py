"""Transfers on the wire: creating them, resolving pending ones, and reading them back."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from pacioli.api.schemas.common import Metadata, RequestModel
from pacioli.api.schemas.money import AmountStr, AssetScales
from pacioli.ledger.domain.errors import AssetMismatch
from pacioli.ledger.domain.model import (
    Direction,
    Layer,
    Leg,
    PendingStatus,
    Posting,
    Transfer,
    TransferKind,
    TransferSpec,
)

# A bound on relative deadlines, so adding one to the clock cannot overflow a datetime.
TIMEOUT_SECONDS_MAX = 10 * 366 * 24 * 3600


class LegCreate(RequestModel):
    account_id: UUID
    direction: Direction
    amount: AmountStr
    currency: StrictStr

    def to_leg(self, scales: AssetScales) -> Leg:
        """Raises: UnknownAsset, InvalidAmount."""
        amount_minor = scales.to_minor(self.amount, self.currency)
        return Leg(self.account_id, self.direction, amount_minor, self.currency)


class TransferCreate(RequestModel):
    legs: list[LegCreate]
    metadata: Metadata = {}
    pending: StrictBool = False
    expires_at: AwareDatetime | None = Field(
        default=None, description="A pending transfer's deadline."
    )
    timeout_seconds: StrictInt | None = Field(
        default=None, ge=1, le=TIMEOUT_SECONDS_MAX,
        description="A pending transfer's deadline, in seconds from when the ledger accepts it.",
    )

    @model_validator(mode="after")
    def _one_deadline(self) -> TransferCreate:
        if self.expires_at is not None and self.timeout_seconds is not None:
            raise ValueError("give expires_at or timeout_seconds, not both")
        return self

    def to_spec(self, scales: AssetScales) -> TransferSpec:
        """The ledger's transfer (which resolves `timeout_seconds` against its own clock).

        Raises: UnknownAsset, InvalidAmount.
        """
        legs = tuple(leg.to_leg(scales) for leg in self.legs)
        return TransferSpec(
            legs, self.metadata, self.pending, self.expires_at, self.timeout_seconds
        )


class TransferBatchCreate(RequestModel):
    transfers: list[TransferCreate] = Field(min_length=1)


class PendingPost(RequestModel):
    amount: AmountStr | None = Field(
        default=None, description="Post only this much of a two-leg pending transfer."
    )
    currency: StrictStr | None = None
    metadata: Metadata = {}

    @model_validator(mode="after")
    def _amount_with_currency(self) -> PendingPost:
        if (self.amount is None) != (self.currency is None):
            raise ValueError("amount and currency go together")
        return self

    def amount_minor(self, pending: Transfer, scales: AssetScales) -> int | None:
        """The amount to post in minor units of the pending transfer's asset, or None (all).

        Raises: AssetMismatch, UnknownAsset, InvalidAmount.
        """
        if self.amount is None or self.currency is None:
            return None
        held_assets = {posting.asset_code for posting in pending.postings}
        if self.currency not in held_assets:
            raise AssetMismatch(
                f"the pending transfer holds {', '.join(sorted(held_assets))}, not {self.currency}"
            )
        return scales.to_minor(self.amount, self.currency)


class TransferAction(RequestModel):
    """The body of a void or a reversal: optional metadata for the new transfer."""

    metadata: Metadata = {}


class TransferPostingPublic(BaseModel):
    account_id: UUID
    account_seq: int
    direction: Direction
    layer: Layer
    amount: str = Field(description="Negative only when a pending hold is released.")
    currency: str

    @classmethod
    def of(cls, posting: Posting, scales: AssetScales) -> TransferPostingPublic:
        return cls(
            account_id=posting.account_id,
            account_seq=posting.account_seq,
            direction=posting.direction,
            layer=posting.layer,
            amount=scales.to_major(posting.amount_minor, posting.asset_code),
            currency=posting.asset_code,
        )


class TransferPublic(BaseModel):
    id: UUID
    kind: TransferKind
    postings: list[TransferPostingPublic]
    metadata: Metadata
    created_at: datetime
    pending_id: UUID | None = Field(description="For a resolution: the pending transfer.")
    reverses_id: UUID | None = Field(description="For a reversal: the transfer undone.")
    batch_id: UUID | None = Field(description="Shared by the transfers of a linked batch.")
    expires_at: datetime | None
    pending_status: PendingStatus | None
    resolved_by_id: UUID | None
    reversed_by_id: UUID | None

    @classmethod
    def of(cls, transfer: Transfer, scales: AssetScales) -> TransferPublic:
        return cls(
            id=transfer.id,
            kind=transfer.kind,
            postings=[TransferPostingPublic.of(p, scales) for p in transfer.postings],
            metadata=transfer.metadata,
            created_at=transfer.created_at,
            pending_id=transfer.pending_id,
            reverses_id=transfer.reverses_id,
            batch_id=transfer.batch_id,
            expires_at=transfer.expires_at,
            pending_status=transfer.pending_status,
            resolved_by_id=transfer.resolved_by_id,
            reversed_by_id=transfer.reversed_by_id,
        )


class TransferBatchPublic(BaseModel):
    transfers: list[TransferPublic]
