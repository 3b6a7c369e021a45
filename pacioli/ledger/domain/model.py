"""The ledger's records: accounts with their balances, transfers and their postings.

These are plain dataclasses, free of SQLAlchemy. `AccountState` is mutable because the
state machine applies a batch of commands to it in memory; everything read back from
the ledger by callers (`Account`, `Transfer`, `Posting`) is frozen.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID


class Direction(enum.StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"

    def flipped(self) -> Direction:
        return Direction.CREDIT if self is Direction.DEBIT else Direction.DEBIT


class AccountStatus(enum.StrEnum):
    OPEN = "open"
    FROZEN = "frozen"
    CLOSED = "closed"


class Layer(enum.StrEnum):
    """Which balance a posting changes: posted funds, or funds reserved by a pending transfer."""

    POSTED = "posted"
    PENDING = "pending"


class TransferKind(enum.StrEnum):
    POSTED = "posted"  # moves funds at once
    PENDING = "pending"  # reserves funds; later posted, voided or expired
    POST_PENDING = "post_pending"  # posts (part of) a pending transfer, releasing its hold
    VOID_PENDING = "void_pending"  # releases a pending transfer's hold
    EXPIRE_PENDING = "expire_pending"  # releases a hold whose deadline passed
    REVERSAL = "reversal"  # undoes the posted funds of an earlier transfer


class PendingStatus(enum.StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


PENDING_STATUS_BY_RESOLUTION = {
    TransferKind.POST_PENDING: PendingStatus.POSTED,
    TransferKind.VOID_PENDING: PendingStatus.VOIDED,
    TransferKind.EXPIRE_PENDING: PendingStatus.EXPIRED,
}


class Balances(NamedTuple):
    """An account's four running totals, as TigerBeetle names them.

    A NamedTuple rather than a frozen dataclass: one is made for every posting, and
    tuples are several times cheaper to construct.
    """

    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0

    def net_posted(self, normal_side: Direction) -> int:
        """Posted balance on the account's normal side (may be negative)."""
        if normal_side is Direction.DEBIT:
            return self.debits_posted - self.credits_posted
        return self.credits_posted - self.debits_posted

    def available(self, normal_side: Direction) -> int:
        """Posted balance less what pending transfers reserve against the normal side."""
        if normal_side is Direction.DEBIT:
            return self.debits_posted - self.credits_posted - self.credits_pending
        return self.credits_posted - self.debits_posted - self.debits_pending

    def is_zero(self) -> bool:
        return (
            self.debits_posted == self.credits_posted
            and self.debits_pending == 0
            and self.credits_pending == 0
        )

    def with_delta(self, direction: Direction, layer: Layer, amount_minor: int) -> Balances:
        # Spelled out rather than dataclasses.replace: this runs for every posting.
        dp, cp, dq, cq = (
            self.debits_posted, self.credits_posted, self.debits_pending, self.credits_pending
        )
        if layer is Layer.POSTED:
            if direction is Direction.DEBIT:
                dp += amount_minor
            else:
                cp += amount_minor
        elif direction is Direction.DEBIT:
            dq += amount_minor
        else:
            cq += amount_minor
        return Balances(dp, cp, dq, cq)


@dataclass(frozen=True, slots=True)
class AccountFlags:
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False


@dataclass(slots=True)
class AccountState:
    """An account as the state machine sees it inside one database transaction."""

    id: UUID
    asset_code: str
    normal_side: Direction
    status: AccountStatus
    flags: AccountFlags
    limit_minor: int | None
    balances: Balances
    posting_count: int
    # None when the batch did not read it: only status changes need it (for their events).
    metadata: dict[str, Any] | None
    created_at: datetime

    def copy(self) -> AccountState:
        return AccountState(
            self.id, self.asset_code, self.normal_side, self.status, self.flags,
            self.limit_minor, self.balances, self.posting_count, self.metadata, self.created_at,
        )


@dataclass(frozen=True, slots=True)
class Account:
    """An account and its balances as read by a caller."""

    id: UUID
    asset_code: str
    normal_side: Direction
    status: AccountStatus
    flags: AccountFlags
    limit_minor: int | None
    balances: Balances
    posting_count: int
    metadata: dict[str, Any]
    created_at: datetime

    @property
    def balance_minor(self) -> int:
        return self.balances.net_posted(self.normal_side)

    @property
    def available_minor(self) -> int:
        return self.balances.available(self.normal_side)

    @classmethod
    def from_state(cls, state: AccountState) -> Account:
        return cls(**{name: getattr(state, name) for name in cls.__slots__})


@dataclass(frozen=True, slots=True)
class Leg:
    """One side of a transfer: an account debited or credited by a positive amount."""

    account_id: UUID
    direction: Direction
    amount_minor: int
    asset_code: str | None = None  # when given, must equal the account's asset


class Posting(NamedTuple):
    """A change to one balance of one account, with the account's balances after it."""

    account_id: UUID
    account_seq: int  # 1, 2, 3 … per account, in the order postings were applied
    transfer_id: UUID
    asset_code: str
    direction: Direction
    layer: Layer
    amount_minor: int  # negative only for a pending layer release
    balances_after: Balances
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Transfer:
    """A balanced set of postings that moved or reserved money, as read by a caller."""

    id: UUID
    kind: TransferKind
    postings: tuple[Posting, ...]
    metadata: dict[str, Any]
    created_at: datetime
    pending_id: UUID | None = None  # for resolutions: the pending transfer resolved
    reverses_id: UUID | None = None  # for reversals: the transfer undone
    batch_id: UUID | None = None  # for linked batches: shared by all transfers of the batch
    expires_at: datetime | None = None  # for pending transfers
    pending_status: PendingStatus | None = None  # for pending transfers, derived on read
    resolved_by_id: UUID | None = None  # for pending transfers: the resolution
    reversed_by_id: UUID | None = None  # the reversal of this transfer, if any

    def legs(self, layer: Layer | None = None) -> tuple[Posting, ...]:
        """The postings of one layer, defaulting to the one this kind of transfer is about."""
        if layer is None:
            layer = Layer.PENDING if self.kind in _PENDING_LAYER_KINDS else Layer.POSTED
        return tuple(p for p in self.postings if p.layer is layer)


_PENDING_LAYER_KINDS = frozenset(
    {TransferKind.PENDING, TransferKind.VOID_PENDING, TransferKind.EXPIRE_PENDING}
)


@dataclass(frozen=True, slots=True)
class TransferSpec:
    """What a caller asks for when creating a transfer."""

    legs: tuple[Leg, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    pending: bool = False
    expires_at: datetime | None = None
    # A deadline relative to when the ledger accepts the transfer. Kept relative in the
    # request (and so in its idempotency fingerprint) so that a retry is the same request.
    timeout_seconds: int | None = None
    # The transfer's id, chosen by the caller (TigerBeetle's model); None lets the ledger
    # choose one. A caller that chooses it can name the transfer (post or void a hold) in
    # a command it submits before this one's answer arrives. Refused with
    # `transfer_already_exists` if any transfer has it. Left out of the request's
    # fingerprint when None, so requests made before the field existed hash as they did.
    id: UUID | None = None
