"""A plain in-memory model of the ledger, for the stateful test to predict outcomes with.

The model shares no code with the ledger's rules: an account is four ints and a status,
a transfer is a list of legs, and the rules are restated from docs/ledger.md (balanced
per asset; pending amounts count against the flags; a frozen account takes part in no
new transfer but its holds can still be voided or expire; a closed one in none).

Every `plan_*` method either raises `Rejection` with the error code the ledger must
answer, or returns a `Plan`: the accounts as they would be afterwards, kept aside until
the test sees the real ledger accept the command and calls `commit` with the real ids.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from pacioli.ledger import Leg, TransferSpec

AMOUNT_MAX_MINOR = 2**128 - 1
BALANCE_MAX_MINOR = 10**39 - 1
LINKED_ITEMS_MAX = 128

DEBIT, CREDIT = "debit", "credit"
POSTED, PENDING = "posted", "pending"

# A change to one balance: (account id, direction, layer, signed amount in minor units).
Move = tuple[UUID, str, str, int]
# A leg as the model keeps it: (account id, direction, amount in minor units).
ModelLeg = tuple[UUID, str, int]


class Rejection(Exception):
    """The model's prediction that the ledger refuses a command with this error code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class ModelAccount:
    id: UUID
    asset_code: str
    normal_side: str
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    limit_minor: int | None
    status: str = "open"
    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0
    posting_count: int = 0

    @property
    def balances(self) -> tuple[int, int, int, int]:
        return (self.debits_posted, self.credits_posted, self.debits_pending, self.credits_pending)

    @property
    def available_minor(self) -> int:
        if self.normal_side == DEBIT:
            return self.debits_posted - self.credits_posted - self.credits_pending
        return self.credits_posted - self.debits_posted - self.debits_pending

    @property
    def is_empty(self) -> bool:
        return (
            self.debits_posted == self.credits_posted
            and self.debits_pending == 0
            and self.credits_pending == 0
        )

    def move(self, direction: str, layer: str, amount_minor: int) -> None:
        name = f"{direction}s_{layer}"
        setattr(self, name, getattr(self, name) + amount_minor)
        self.posting_count += 1


@dataclass
class ModelTransfer:
    kind: str  # posted, pending, post_pending, void_pending, expire_pending, reversal
    posted_legs: list[ModelLeg]  # what it moved in posted funds (a reversal can undo these)
    held_legs: list[ModelLeg] = field(default_factory=list)  # what a pending transfer holds
    expires_at: datetime | None = None
    moves: list[Move] = field(default_factory=list)  # the postings it should have
    id: UUID | None = None
    resolved_by: tuple[str, UUID] | None = None  # (kind, id) of a pending's resolution
    reversed_by: UUID | None = None


@dataclass
class Plan:
    """What a command would change, kept aside until the real ledger accepts it."""

    staged: dict[UUID, ModelAccount]
    transfers: list[ModelTransfer]
    on_commit: Callable[[list[UUID]], None] = lambda ids: None


class _Stage:
    """Copies of the accounts a command touches, so a rejected command changes nothing."""

    def __init__(self, accounts: dict[UUID, ModelAccount]) -> None:
        self._accounts = accounts
        self.staged: dict[UUID, ModelAccount] = {}

    def account(self, account_id: UUID) -> ModelAccount:
        if account_id not in self.staged:
            self.staged[account_id] = replace(self._accounts[account_id])
        return self.staged[account_id]

    def apply(self, moves: list[Move], *, allow_frozen: bool) -> None:
        for account_id, direction, layer, amount_minor in moves:
            account = self.account(account_id)
            if account.status == "closed":
                raise Rejection("account_closed")
            if account.status == "frozen" and not allow_frozen:
                raise Rejection("account_frozen")
            account.move(direction, layer, amount_minor)
        for account_id in dict.fromkeys(move[0] for move in moves):
            _check_flags(self.staged[account_id])


def _check_flags(account: ModelAccount) -> None:
    if max(account.balances) > BALANCE_MAX_MINOR:
        raise Rejection("balance_overflow")
    limit_minor = account.limit_minor or 0
    debits = account.debits_posted + account.debits_pending
    credits = account.credits_posted + account.credits_pending
    if account.debits_must_not_exceed_credits and debits > account.credits_posted + limit_minor:
        raise Rejection("insufficient_funds")
    if account.credits_must_not_exceed_debits and credits > account.debits_posted + limit_minor:
        raise Rejection("exceeds_debits")


def _flipped(direction: str) -> str:
    return CREDIT if direction == DEBIT else DEBIT


class LedgerModel:
    """Accounts and transfers as dicts; `now` is read from the same fake clock as the ledger."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.accounts: dict[UUID, ModelAccount] = {}
        self.transfers: dict[UUID, ModelTransfer] = {}

    # Accounts.

    @staticmethod
    def check_open(
        *, debits_must_not_exceed_credits: bool, credits_must_not_exceed_debits: bool,
        limit_minor: int | None,
    ) -> None:
        if debits_must_not_exceed_credits and credits_must_not_exceed_debits:
            raise Rejection("invalid_account_options")
        if limit_minor is not None and not (
            debits_must_not_exceed_credits or credits_must_not_exceed_debits
        ):
            raise Rejection("invalid_account_options")

    def check_status_change(self, account_id: UUID, target: str) -> None:
        account = self.accounts.get(account_id)
        if account is None:
            raise Rejection("account_not_found")
        allowed_from = {"frozen": {"open"}, "open": {"frozen"}, "closed": {"open", "frozen"}}
        if account.status not in allowed_from[target]:
            raise Rejection("invalid_account_state")
        if target == "closed" and not account.is_empty:
            raise Rejection("account_balance_not_zero")

    # Transfers.

    def plan_transfers(self, specs: Sequence[TransferSpec]) -> Plan:
        """A transfer or a linked batch: every spec is checked before any is applied."""
        for spec in specs:
            self._check_spec(spec)
            self._check_legs_against_accounts(spec.legs)
        stage = _Stage(self.accounts)
        return Plan(stage.staged, [self._stage_new(stage, spec) for spec in specs])

    def _stage_new(self, stage: _Stage, spec: TransferSpec) -> ModelTransfer:
        layer = PENDING if spec.pending else POSTED
        legs = [(leg.account_id, leg.direction.value, leg.amount_minor) for leg in spec.legs]
        moves = [(account_id, d, layer, amount) for account_id, d, amount in legs]
        stage.apply(moves, allow_frozen=False)
        return ModelTransfer(
            kind=PENDING if spec.pending else POSTED,
            posted_legs=[] if spec.pending else legs,
            held_legs=legs if spec.pending else [],
            expires_at=spec.expires_at,
            moves=moves,
        )

    def _check_spec(self, spec: TransferSpec) -> None:
        directions = {leg.direction.value for leg in spec.legs}
        if len(spec.legs) < 2 or directions != {DEBIT, CREDIT}:
            raise Rejection("too_few_legs")
        seen: set[UUID] = set()
        for leg in spec.legs:
            if not 0 < leg.amount_minor <= AMOUNT_MAX_MINOR:
                raise Rejection("invalid_amount")
            if leg.account_id in seen:
                raise Rejection("duplicate_account_in_transfer")
            seen.add(leg.account_id)
        if spec.expires_at is not None and (not spec.pending or spec.expires_at <= self.clock()):
            raise Rejection("invalid_expiry")

    def _check_legs_against_accounts(self, legs: Sequence[Leg]) -> None:
        debits: dict[str, int] = defaultdict(int)
        credits: dict[str, int] = defaultdict(int)
        for leg in legs:
            account = self.accounts.get(leg.account_id)
            if account is None:
                raise Rejection("account_not_found")
            if leg.asset_code is not None and leg.asset_code != account.asset_code:
                raise Rejection("asset_mismatch")
            totals = debits if leg.direction.value == DEBIT else credits
            totals[account.asset_code] += leg.amount_minor
        if debits != credits:
            raise Rejection("unbalanced_transfer")

    def plan_resolution(
        self, pending_id: UUID, kind: str, amount_minor: int | None = None
    ) -> Plan:
        """Post (in full or `amount_minor` of it), void or expire a pending transfer."""
        stage = _Stage(self.accounts)
        resolution, pending = self._stage_resolution(stage, pending_id, kind, amount_minor)

        def mark_resolved(ids: list[UUID]) -> None:
            pending.resolved_by = (kind, ids[0])

        return Plan(stage.staged, [resolution], mark_resolved)

    def plan_linked_batch(self, items: Sequence[TransferSpec | tuple]) -> Plan:
        """New transfers and resolutions (`("post_pending", id, amount)` or
        `("void_pending", id, None)`), applied in order, all or nothing."""
        if not 1 <= len(items) <= LINKED_ITEMS_MAX:
            raise Rejection("batch_too_large")
        for item in items:
            if isinstance(item, TransferSpec):
                self._check_spec(item)
                self._check_legs_against_accounts(item.legs)
        stage = _Stage(self.accounts)
        made: list[ModelTransfer] = []
        resolutions: list[tuple[int, str, ModelTransfer]] = []
        for item in items:
            if isinstance(item, TransferSpec):
                made.append(self._stage_new(stage, item))
                continue
            kind, pending_id, amount_minor = item
            if any(pending is self.transfers.get(pending_id) for _, _, pending in resolutions):
                raise Rejection("pending_transfer_already_resolved")
            resolution, pending = self._stage_resolution(stage, pending_id, kind, amount_minor)
            resolutions.append((len(made), kind, pending))
            made.append(resolution)

        def mark_resolved(ids: list[UUID]) -> None:
            for index, kind, pending in resolutions:
                pending.resolved_by = (kind, ids[index])

        return Plan(stage.staged, made, mark_resolved)

    def _stage_resolution(
        self, stage: _Stage, pending_id: UUID, kind: str, amount_minor: int | None
    ) -> tuple[ModelTransfer, ModelTransfer]:
        pending = self._transfer(pending_id)
        if pending.kind != PENDING:
            raise Rejection("transfer_not_pending")
        if pending.resolved_by is not None:
            raise Rejection("pending_transfer_already_resolved")
        expired = pending.expires_at is not None and self.clock() >= pending.expires_at
        if kind == "expire_pending" and not expired:
            raise Rejection("pending_transfer_not_expired")
        if kind != "expire_pending" and expired:
            raise Rejection("pending_transfer_expired")
        held = pending.held_legs
        moves = [(account_id, d, PENDING, -amount) for account_id, d, amount in held]
        posted_legs = []
        if kind == "post_pending":
            posted_legs = [
                (account_id, d, amount)
                for (account_id, d, _), amount in zip(held, _amounts_to_post(held, amount_minor),
                                                     strict=True)
            ]
            moves += [(account_id, d, POSTED, amount) for account_id, d, amount in posted_legs]
        stage.apply(moves, allow_frozen=kind != "post_pending")
        return ModelTransfer(kind=kind, posted_legs=posted_legs, moves=moves), pending

    def plan_reversal(self, transfer_id: UUID) -> Plan:
        original = self._transfer(transfer_id)
        if not original.posted_legs:
            raise Rejection("transfer_not_reversible")
        if original.reversed_by is not None:
            raise Rejection("transfer_already_reversed")
        legs = [(account_id, _flipped(d), amount) for account_id, d, amount in original.posted_legs]
        moves = [(account_id, d, POSTED, amount) for account_id, d, amount in legs]
        stage = _Stage(self.accounts)
        stage.apply(moves, allow_frozen=False)

        def mark_reversed(ids: list[UUID]) -> None:
            original.reversed_by = ids[0]

        return Plan(stage.staged, [ModelTransfer("reversal", legs, moves=moves)], mark_reversed)

    def due_pending_ids(self) -> list[UUID]:
        """This model's holds that an expiry sweep at the clock's instant must release."""
        now = self.clock()
        return [
            transfer_id
            for transfer_id, t in self.transfers.items()
            if t.kind == PENDING and t.resolved_by is None
            and t.expires_at is not None and t.expires_at <= now
        ]

    def commit(self, plan: Plan, transfer_ids: Sequence[UUID]) -> None:
        """Apply a plan the real ledger accepted, under the ids the ledger gave."""
        assert len(transfer_ids) == len(plan.transfers)
        self.accounts.update(plan.staged)
        for transfer, transfer_id in zip(plan.transfers, transfer_ids, strict=True):
            transfer.id = transfer_id
            self.transfers[transfer_id] = transfer
        plan.on_commit(list(transfer_ids))

    def _transfer(self, transfer_id: UUID) -> ModelTransfer:
        transfer = self.transfers.get(transfer_id)
        if transfer is None:
            raise Rejection("transfer_not_found")
        return transfer

    # Whole-model checks.

    def totals_by_asset(self) -> dict[str, tuple[int, int, int, int]]:
        """Sum of each of the four balances over the model's accounts, per asset."""
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for account in self.accounts.values():
            for index, amount in enumerate(account.balances):
                totals[account.asset_code][index] += amount
        return {asset_code: tuple(sums) for asset_code, sums in totals.items()}


def _amounts_to_post(held: list[ModelLeg], amount_minor: int | None) -> list[int]:
    if amount_minor is None:
        return [amount for _, _, amount in held]
    if amount_minor <= 0:
        raise Rejection("invalid_amount")
    if len(held) != 2:
        raise Rejection("partial_post_not_supported")
    if amount_minor > held[0][2]:
        raise Rejection("pending_amount_exceeded")
    return [amount_minor, amount_minor]
