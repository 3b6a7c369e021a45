"""Applies a batch of ledger commands to account states held in memory.

The storage layer locks every account a batch touches, loads it, hands it here, and then
writes back what this produced: new rows, changed balances, events and idempotency
records, all in the one database transaction. Keeping the rules here, free of I/O, makes
one database transaction able to carry hundreds of commands (TigerBeetle's way of
keeping hot accounts fast) and makes the rules testable without a database.

Each command is all or nothing: a handler works on staged copies of the accounts it
touches, checks every rule, and only then merges the copies back (the comment
"Past this point the command succeeds" marks the spot).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from pacioli.ledger.domain import commands as c
from pacioli.ledger.domain import errors as e
from pacioli.ledger.domain.model import (
    PENDING_STATUS_BY_RESOLUTION,
    Account,
    AccountState,
    AccountStatus,
    Balances,
    Direction,
    Layer,
    PendingStatus,
    Posting,
    Transfer,
    TransferKind,
    TransferSpec,
)
from pacioli.ledger.domain.money import AMOUNT_MAX_MINOR, BALANCE_MAX_MINOR, SCALE_MAX, Asset

LEGS_MAX = 64
TIMEOUT_SECONDS_MAX = 10 * 366 * 24 * 3600
LINKED_TRANSFERS_MAX = 128
METADATA_BYTES_MAX = 8192
ASSET_CODE_LENGTH = range(2, 13)


@dataclass(frozen=True, slots=True)
class StoredKey:
    """What an idempotency key already stands for: the request's hash and its result."""

    request_hash: bytes
    command_type: str
    result_refs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A command's success: references to what it made or changed, and whether it replayed."""

    command_type: str
    result_refs: tuple[str, ...]
    replayed: bool = False
    transfers: tuple[Transfer, ...] = ()
    account: Account | None = None
    asset: Asset | None = None


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    event_id: UUID
    event_type: str
    aggregate_type: str
    aggregate_id: str
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class KeyRecord:
    client_id: str
    idempotency_key: str
    stored: StoredKey
    created_at: datetime


@dataclass(slots=True)
class Effects:
    """Everything a batch wrote, for the storage layer to persist."""

    assets: list[Asset] = field(default_factory=list)
    opened_account_ids: list[UUID] = field(default_factory=list)
    changed_account_ids: set[UUID] = field(default_factory=set)
    transfers: list[Transfer] = field(default_factory=list)
    events: list[OutboxEvent] = field(default_factory=list)
    keys: list[KeyRecord] = field(default_factory=list)


class StateMachine:
    """Applies commands, in order, to the accounts and transfers loaded for one batch."""

    def __init__(
        self,
        *,
        assets: dict[str, Asset],
        accounts: dict[UUID, AccountState],
        transfers: dict[UUID, Transfer],
        keys: dict[tuple[str, str], StoredKey],
        now: datetime,
        new_id: Callable[[], UUID],
    ) -> None:
        self.assets = assets
        self.accounts = accounts
        self.transfers = transfers
        self.keys = keys
        self.now = now
        self.new_id = new_id
        self.effects = Effects()

    def apply(self, submission: c.Submission) -> Outcome | e.DomainError:
        """Apply one submission; a rejection is returned, not raised, and changes nothing."""
        command_type = type(submission.command).__name__
        key = (submission.client_id, submission.idempotency_key)
        stored = self.keys.get(key)
        if stored is not None:
            if stored.request_hash != submission.request_hash:
                return e.IdempotencyKeyReused(
                    f"idempotency key {submission.idempotency_key!r} was used for another request"
                )
            return Outcome(command_type, stored.result_refs, replayed=True)
        try:
            outcome = self._dispatch(submission.command)
        except e.DomainError as rejection:
            return rejection
        stored = StoredKey(submission.request_hash, command_type, outcome.result_refs)
        self.keys[key] = stored
        self.effects.keys.append(KeyRecord(*key, stored, self.now))
        return outcome

    def _dispatch(self, command: c.Command) -> Outcome:
        match command:
            case c.CreateTransfers():
                return self._create_transfers(command)
            case c.LinkedBatch():
                return self._linked_batch(command)
            case c.PostPending():
                return self._resolve_pending(
                    command.pending_id, TransferKind.POST_PENDING, command.amount_minor,
                    command.metadata,
                )
            case c.VoidPending():
                return self._resolve_pending(
                    command.pending_id, TransferKind.VOID_PENDING, None, command.metadata
                )
            case c.ExpirePending():
                return self._resolve_pending(
                    command.pending_id, TransferKind.EXPIRE_PENDING, None, {}
                )
            case c.ReverseTransfer():
                return self._reverse(command)
            case c.OpenAccount():
                return self._open_account(command)
            case c.FreezeAccount() | c.UnfreezeAccount() | c.CloseAccount():
                return self._change_account_status(command)
            case c.CreateAsset():
                return self._create_asset(command)
        raise e.InvariantBroken(f"unknown command {command!r}")

    # Transfers.

    def _create_transfers(self, command: c.CreateTransfers) -> Outcome:
        if not 1 <= len(command.transfers) <= LINKED_TRANSFERS_MAX:
            raise e.BatchTooLarge(
                f"a linked batch holds 1 to {LINKED_TRANSFERS_MAX} transfers,"
                f" not {len(command.transfers)}"
            )
        batch_id = self.new_id() if len(command.transfers) > 1 else None
        stage = _Stage(self.accounts)
        for spec in command.transfers:
            validate_transfer_spec(spec, now=self.now)
            self._check_legs_against_accounts(spec)
        self._check_chosen_ids(command.transfers)
        made = []
        for spec in command.transfers:
            kind = TransferKind.PENDING if spec.pending else TransferKind.POSTED
            layer = Layer.PENDING if spec.pending else Layer.POSTED
            moves = [(leg.account_id, leg.direction, layer, leg.amount_minor) for leg in spec.legs]
            made.append(
                self._stage_transfer(
                    stage, kind, moves, metadata=spec.metadata, batch_id=batch_id,
                    expires_at=_deadline(spec, self.now), transfer_id=spec.id,
                )
            )
        # Past this point the command succeeds.
        self._commit(stage, made)
        return Outcome("CreateTransfers", tuple(str(t.id) for t in made), transfers=tuple(made))

    def _check_legs_against_accounts(self, spec: TransferSpec) -> None:
        debits: dict[str, int] = defaultdict(int)
        credits: dict[str, int] = defaultdict(int)
        for leg in spec.legs:
            account = self._account(leg.account_id)
            if leg.asset_code is not None and leg.asset_code != account.asset_code:
                raise e.AssetMismatch(
                    f"leg is in {leg.asset_code} but account {account.id} holds"
                    f" {account.asset_code}"
                )
            totals = debits if leg.direction is Direction.DEBIT else credits
            totals[account.asset_code] += leg.amount_minor
        for asset_code in sorted(set(debits) | set(credits)):
            if debits[asset_code] != credits[asset_code]:
                raise e.UnbalancedTransfer(
                    f"{asset_code} debits total {debits[asset_code]} but credits total"
                    f" {credits[asset_code]} (minor units)"
                )

    def _check_chosen_ids(self, specs: Iterable[TransferSpec]) -> None:
        """Refuse transfer ids chosen by the caller that are taken (by a stored transfer,
        one made earlier in this batch, or another transfer of this command).

        The stored transfers with these ids were loaded with the batch (the ledger names
        every chosen id among the transfers it reads), so a miss here means no transfer
        has the id.

        Raises: InvalidCommand, TransferAlreadyExists.
        """
        chosen: set[UUID] = set()
        for spec in specs:
            transfer_id = spec.id
            if transfer_id is None:
                continue
            if type(transfer_id) is not UUID:
                raise e.InvalidCommand(f"a transfer id is a UUID, not {transfer_id!r}")
            if transfer_id in self.transfers or transfer_id in chosen:
                raise e.TransferAlreadyExists(f"a transfer with the id {transfer_id} exists")
            chosen.add(transfer_id)

    def _linked_batch(self, command: c.LinkedBatch) -> Outcome:
        if not 1 <= len(command.items) <= LINKED_TRANSFERS_MAX:
            raise e.BatchTooLarge(
                f"a linked batch holds 1 to {LINKED_TRANSFERS_MAX} items,"
                f" not {len(command.items)}"
            )
        for item in command.items:
            if isinstance(item, TransferSpec):
                validate_transfer_spec(item, now=self.now)
                self._check_legs_against_accounts(item)
            elif not isinstance(item, c.PostPending | c.VoidPending):
                raise e.InvalidCommand(
                    "a linked batch holds transfers and pending resolutions only,"
                    f" not {type(item).__name__}"
                )
        self._check_chosen_ids(item for item in command.items if isinstance(item, TransferSpec))
        batch_id = self.new_id()
        stage = _Stage(self.accounts)
        made = []
        resolved: dict[UUID, Transfer] = {}
        for item in command.items:
            if isinstance(item, TransferSpec):
                kind = TransferKind.PENDING if item.pending else TransferKind.POSTED
                layer = Layer.PENDING if item.pending else Layer.POSTED
                moves = [(leg.account_id, leg.direction, layer, leg.amount_minor)
                         for leg in item.legs]
                made.append(
                    self._stage_transfer(
                        stage, kind, moves, metadata=item.metadata, batch_id=batch_id,
                        expires_at=_deadline(item, self.now), transfer_id=item.id,
                    )
                )
                continue
            if item.pending_id in resolved:
                raise e.PendingTransferAlreadyResolved(
                    f"pending transfer {item.pending_id} is resolved twice in one batch"
                )
            kind, amount_minor = (
                (TransferKind.POST_PENDING, item.amount_minor)
                if isinstance(item, c.PostPending) else (TransferKind.VOID_PENDING, None)
            )
            resolution, pending = self._stage_resolution(
                stage, item.pending_id, kind, amount_minor, item.metadata, batch_id=batch_id
            )
            resolved[item.pending_id] = pending
            made.append(resolution)
        # Past this point the command succeeds.
        self.transfers.update(resolved)
        self._commit(stage, made)
        return Outcome("LinkedBatch", tuple(str(t.id) for t in made), transfers=tuple(made))

    def _resolve_pending(
        self,
        pending_id: UUID,
        kind: TransferKind,
        amount_minor: int | None,
        metadata: dict[str, Any],
    ) -> Outcome:
        stage = _Stage(self.accounts)
        resolution, pending = self._stage_resolution(
            stage, pending_id, kind, amount_minor, metadata
        )
        # Past this point the command succeeds.
        self.transfers[pending_id] = pending
        self._commit(stage, [resolution])
        return Outcome(
            _COMMAND_TYPE_BY_RESOLUTION[kind], (str(resolution.id),), transfers=(resolution,)
        )

    def _stage_resolution(
        self,
        stage: _Stage,
        pending_id: UUID,
        kind: TransferKind,
        amount_minor: int | None,
        metadata: dict[str, Any],
        *,
        batch_id: UUID | None = None,
    ) -> tuple[Transfer, Transfer]:
        """Stage the transfer that resolves a hold; return it and the hold as resolved."""
        pending = self._transfer(pending_id)
        if pending.kind is not TransferKind.PENDING:
            raise e.TransferNotPending(f"transfer {pending_id} is a {pending.kind} transfer")
        if pending.resolved_by_id is not None:
            raise e.PendingTransferAlreadyResolved(
                f"pending transfer {pending_id} is already {pending.pending_status}"
            )
        expired = pending.expires_at is not None and self.now >= pending.expires_at
        if kind is TransferKind.EXPIRE_PENDING and not expired:
            raise e.PendingTransferNotExpired(f"pending transfer {pending_id} has not expired")
        if kind is not TransferKind.EXPIRE_PENDING and expired:
            raise e.PendingTransferExpired(
                f"pending transfer {pending_id} expired at {pending.expires_at.isoformat()}"
            )
        validate_metadata(metadata)
        held = pending.legs(Layer.PENDING)
        moves = [(p.account_id, p.direction, Layer.PENDING, -p.amount_minor) for p in held]
        if kind is TransferKind.POST_PENDING:
            moves += [
                (p.account_id, p.direction, Layer.POSTED, amount)
                for p, amount in zip(held, _amounts_to_post(held, amount_minor), strict=True)
            ]
        resolution = self._stage_transfer(
            stage, kind, moves, metadata=metadata, pending_id=pending_id, batch_id=batch_id,
            allow_frozen=kind is not TransferKind.POST_PENDING,
        )
        resolved = replace(
            pending,
            resolved_by_id=resolution.id,
            pending_status=PENDING_STATUS_BY_RESOLUTION[kind],
        )
        return resolution, resolved

    def _reverse(self, command: c.ReverseTransfer) -> Outcome:
        original = self._transfer(command.transfer_id)
        posted = original.legs(Layer.POSTED)
        if not posted:
            raise e.TransferNotReversible(
                f"transfer {original.id} is a {original.kind} transfer and moved no posted funds"
            )
        if original.reversed_by_id is not None:
            raise e.TransferAlreadyReversed(
                f"transfer {original.id} was reversed by {original.reversed_by_id}"
            )
        validate_metadata(command.metadata)
        moves = [
            (p.account_id, p.direction.flipped(), Layer.POSTED, p.amount_minor) for p in posted
        ]
        stage = _Stage(self.accounts)
        reversal = self._stage_transfer(
            stage, TransferKind.REVERSAL, moves, metadata=command.metadata,
            reverses_id=original.id,
        )
        # Past this point the command succeeds.
        self.transfers[original.id] = replace(original, reversed_by_id=reversal.id)
        self._commit(stage, [reversal])
        return Outcome("ReverseTransfer", (str(reversal.id),), transfers=(reversal,))

    def _stage_transfer(
        self,
        stage: _Stage,
        kind: TransferKind,
        moves: list[tuple[UUID, Direction, Layer, int]],
        *,
        metadata: dict[str, Any],
        batch_id: UUID | None = None,
        pending_id: UUID | None = None,
        reverses_id: UUID | None = None,
        expires_at: datetime | None = None,
        allow_frozen: bool = False,
        transfer_id: UUID | None = None,
    ) -> Transfer:
        """Apply the moves to staged accounts, check their rules, and build the transfer
        (with the id the caller chose, if it did)."""
        if transfer_id is None:
            transfer_id = self.new_id()
        now = self.now
        postings = []
        touched = {}  # account id -> staged account, in order of first appearance
        for account_id, direction, layer, amount_minor in moves:
            account = touched.get(account_id) or stage.account(account_id)
            touched[account_id] = account
            if account.status is not AccountStatus.OPEN:
                check_status_allows_transfer(account, allow_frozen=allow_frozen)
            account.balances = balances = account.balances.with_delta(
                direction, layer, amount_minor
            )
            account.posting_count = account_seq = account.posting_count + 1
            postings.append(
                Posting(
                    account_id, account_seq, transfer_id, account.asset_code, direction, layer,
                    amount_minor, balances, now,
                )
            )
        for account in touched.values():
            check_balance_rules(account)
        transfer = Transfer(
            id=transfer_id,
            kind=kind,
            postings=tuple(postings),
            metadata=metadata,
            created_at=self.now,
            pending_id=pending_id,
            reverses_id=reverses_id,
            batch_id=batch_id,
            expires_at=expires_at,
            pending_status=PendingStatus.PENDING if kind is TransferKind.PENDING else None,
        )
        stage.transfers.append(transfer)
        return transfer

    def _commit(self, stage: _Stage, made: Iterable[Transfer]) -> None:
        self.accounts.update(stage.staged)
        self.effects.changed_account_ids.update(stage.staged)
        for transfer in made:
            self.transfers[transfer.id] = transfer
            self.effects.transfers.append(transfer)
            payload = transfer_payload(transfer)
            self._emit(_TRANSFER_EVENT_TYPES[transfer.kind], "transfer", payload["id"], payload)

    # Accounts and assets.

    def _open_account(self, command: c.OpenAccount) -> Outcome:
        if command.asset_code not in self.assets:
            raise e.UnknownAsset(f"no asset has the code {command.asset_code!r}")
        flags = command.flags
        if flags.debits_must_not_exceed_credits and flags.credits_must_not_exceed_debits:
            raise e.InvalidAccountOptions(
                "debits_must_not_exceed_credits and credits_must_not_exceed_debits exclude"
                " each other"
            )
        if command.limit_minor is not None:
            if not (flags.debits_must_not_exceed_credits or flags.credits_must_not_exceed_debits):
                raise e.InvalidAccountOptions("a limit needs one of the two balance flags")
            limit = command.limit_minor
            if type(limit) is not int or not 0 <= limit <= AMOUNT_MAX_MINOR:
                raise e.InvalidAmount("limit_minor must be an int from 0 to 2**128 - 1")
        validate_metadata(command.metadata)
        # Past this point the command succeeds.
        account = AccountState(
            id=self.new_id(),
            asset_code=command.asset_code,
            normal_side=command.normal_side,
            status=AccountStatus.OPEN,
            flags=flags,
            limit_minor=command.limit_minor,
            balances=Balances(),
            posting_count=0,
            metadata=command.metadata,
            created_at=self.now,
        )
        self.accounts[account.id] = account
        self.effects.opened_account_ids.append(account.id)
        snapshot = Account.from_state(account)
        self._emit("account.opened", "account", str(account.id), account_payload(snapshot))
        return Outcome("OpenAccount", (str(account.id),), account=snapshot)

    def _change_account_status(
        self, command: c.FreezeAccount | c.UnfreezeAccount | c.CloseAccount
    ) -> Outcome:
        account = self._account(command.account_id)
        allowed_from, target, event = _STATUS_CHANGES[type(command)]
        if account.status not in allowed_from:
            raise e.InvalidAccountState(
                f"account {account.id} is {account.status}; cannot become {target}"
            )
        if target is AccountStatus.CLOSED and not account.balances.is_zero():
            raise e.AccountBalanceNotZero(
                f"account {account.id} still has a posted balance or pending amounts"
            )
        e.invariant(account.metadata is not None, f"account {account.id} was read without metadata")
        # Past this point the command succeeds.
        account.status = target
        self.effects.changed_account_ids.add(account.id)
        snapshot = Account.from_state(account)
        self._emit(event, "account", str(account.id), account_payload(snapshot))
        return Outcome(type(command).__name__, (str(account.id),), account=snapshot)

    def _create_asset(self, command: c.CreateAsset) -> Outcome:
        code = command.code
        if not (isinstance(code, str) and code.isascii() and code.isalnum() and code.isupper()
                and len(code) in ASSET_CODE_LENGTH):
            raise e.InvalidAsset(f"asset code {code!r} must be 2-12 upper-case letters or digits")
        if type(command.scale) is not int or not 0 <= command.scale <= SCALE_MAX:
            raise e.InvalidAsset(f"scale must be an int from 0 to {SCALE_MAX}")
        if code in self.assets:
            raise e.AssetAlreadyExists(f"asset {code} exists already")
        # Past this point the command succeeds.
        asset = Asset(code, command.scale)
        self.assets[code] = asset
        self.effects.assets.append(asset)
        self._emit("asset.created", "asset", code, {"code": code, "scale": command.scale})
        return Outcome("CreateAsset", (code,), asset=asset)

    # Lookups and events.

    def _account(self, account_id: UUID) -> AccountState:
        account = self.accounts.get(account_id)
        if account is None:
            raise e.AccountNotFound(f"no account has the id {account_id}")
        return account

    def _transfer(self, transfer_id: UUID) -> Transfer:
        transfer = self.transfers.get(transfer_id)
        if transfer is None:
            raise e.TransferNotFound(f"no transfer has the id {transfer_id}")
        return transfer

    def _emit(self, event_type: str, aggregate_type: str, aggregate_id: str, payload: dict) -> None:
        self.effects.events.append(
            OutboxEvent(self.new_id(), event_type, aggregate_type, aggregate_id, payload, self.now)
        )


_TRANSFER_EVENT_TYPES = {kind: f"transfer.{kind.value}" for kind in TransferKind}

_STATUS_CHANGES = {
    c.FreezeAccount: ({AccountStatus.OPEN}, AccountStatus.FROZEN, "account.frozen"),
    c.UnfreezeAccount: ({AccountStatus.FROZEN}, AccountStatus.OPEN, "account.unfrozen"),
    c.CloseAccount: (
        {AccountStatus.OPEN, AccountStatus.FROZEN}, AccountStatus.CLOSED, "account.closed"
    ),
}


class _Stage:
    """Copies of the accounts one command touches, merged back only if it succeeds."""

    def __init__(self, accounts: dict[UUID, AccountState]) -> None:
        self._accounts = accounts
        self.staged: dict[UUID, AccountState] = {}
        self.transfers: list[Transfer] = []

    def account(self, account_id: UUID) -> AccountState:
        staged = self.staged.get(account_id)
        if staged is None:
            original = self._accounts.get(account_id)
            if original is None:
                raise e.AccountNotFound(f"no account has the id {account_id}")
            staged = self.staged[account_id] = original.copy()
        return staged


# Pure rules, usable on their own.


def validate_transfer_spec(spec: TransferSpec, *, now: datetime) -> None:
    """Check what can be checked of a transfer without looking at any account.

    Raises: TooFewLegs, TooManyLegs, InvalidAmount, DuplicateAccountInTransfer,
    InvalidExpiry, InvalidMetadata.
    """
    if len(spec.legs) > LEGS_MAX:
        raise e.TooManyLegs(f"a transfer has at most {LEGS_MAX} legs, not {len(spec.legs)}")
    directions = {leg.direction for leg in spec.legs}
    if len(spec.legs) < 2 or directions != {Direction.DEBIT, Direction.CREDIT}:
        raise e.TooFewLegs("a transfer needs at least one debit leg and one credit leg")
    seen: set[UUID] = set()
    for leg in spec.legs:
        amount = leg.amount_minor
        if type(amount) is not int or not 0 < amount <= AMOUNT_MAX_MINOR:
            raise e.InvalidAmount(
                f"leg amount must be an int of minor units from 1 to 2**128 - 1, not {amount!r}"
            )
        if leg.account_id in seen:
            raise e.DuplicateAccountInTransfer(
                f"account {leg.account_id} appears in more than one leg"
            )
        seen.add(leg.account_id)
    if spec.timeout_seconds is not None:
        if not spec.pending:
            raise e.InvalidExpiry("only a pending transfer has a deadline")
        if spec.expires_at is not None:
            raise e.InvalidExpiry("give expires_at or timeout_seconds, not both")
        timeout = spec.timeout_seconds
        if type(timeout) is not int or not 1 <= timeout <= TIMEOUT_SECONDS_MAX:
            raise e.InvalidExpiry(
                f"timeout_seconds must be an int from 1 to {TIMEOUT_SECONDS_MAX}"
            )
    if spec.expires_at is not None:
        if not spec.pending:
            raise e.InvalidExpiry("only a pending transfer has a deadline")
        if spec.expires_at.tzinfo is None:
            raise e.InvalidExpiry("expires_at must carry a time zone")
        if spec.expires_at <= now:
            raise e.InvalidExpiry(f"expires_at {spec.expires_at.isoformat()} is not in the future")
    validate_metadata(spec.metadata)


def validate_metadata(metadata: Any) -> None:
    """Metadata is a JSON object with string keys, at most 8 KiB serialized.

    Raises: InvalidMetadata.
    """
    if type(metadata) is dict and not metadata:
        return  # most transfers carry none
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise e.InvalidMetadata("metadata must be a JSON object with string keys")
    if not metadata:
        return
    try:
        text = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise e.InvalidMetadata(f"metadata is not plain JSON: {error}") from None
    if _contains_nul(metadata):
        # PostgreSQL's jsonb cannot store the NUL character.
        raise e.InvalidMetadata("metadata must not contain the NUL character (\\u0000)")
    size = len(text.encode())
    if size > METADATA_BYTES_MAX:
        raise e.InvalidMetadata(f"metadata is {size} bytes; the limit is {METADATA_BYTES_MAX}")


def _deadline(spec: TransferSpec, now: datetime) -> datetime | None:
    if spec.timeout_seconds is not None:
        return now + timedelta(seconds=spec.timeout_seconds)
    return spec.expires_at


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


def check_status_allows_transfer(account: AccountState, *, allow_frozen: bool) -> None:
    """Raises: AccountFrozen, AccountClosed."""
    if account.status is AccountStatus.CLOSED:
        raise e.AccountClosed(f"account {account.id} is closed")
    if account.status is AccountStatus.FROZEN and not allow_frozen:
        raise e.AccountFrozen(f"account {account.id} is frozen")


def check_balance_rules(account: AccountState) -> None:
    """Check an account's flags, limit and the storable range after a change.

    The flag rules follow TigerBeetle: pending debits count against posted credits (and
    the other way round), so a hold can never be posted into an overdraft.

    Raises: InsufficientFunds, ExceedsDebits, BalanceOverflow.
    """
    # Runs for every account of every transfer: messages are formatted only when raised.
    debits_posted, credits_posted, debits_pending, credits_pending = b = account.balances
    if max(b) > BALANCE_MAX_MINOR:
        raise e.BalanceOverflow(f"a balance of account {account.id} would overflow")
    if min(b) < 0:
        raise e.InvariantBroken(f"balances of account {account.id} went negative: {b}")
    limit = account.limit_minor or 0
    flags = account.flags
    if flags.debits_must_not_exceed_credits and (
        debits_posted + debits_pending > credits_posted + limit
    ):
        raise e.InsufficientFunds(f"account {account.id} has insufficient funds")
    if flags.credits_must_not_exceed_debits and (
        credits_posted + credits_pending > debits_posted + limit
    ):
        raise e.ExceedsDebits(f"account {account.id} would have credits exceeding its debits")


def _amounts_to_post(held: tuple[Posting, ...], amount_minor: int | None) -> list[int]:
    """The posted amount for each held leg: all of it, or `amount_minor` on a two-leg hold."""
    if amount_minor is None:
        return [p.amount_minor for p in held]
    if type(amount_minor) is not int or amount_minor <= 0:
        raise e.InvalidAmount(f"amount to post must be a positive int, not {amount_minor!r}")
    if len(held) != 2:
        raise e.PartialPostNotSupported(
            f"this pending transfer has {len(held)} legs; only two-leg transfers post in part"
        )
    if amount_minor > held[0].amount_minor:
        raise e.PendingAmountExceeded(
            f"cannot post {amount_minor}; the pending transfer holds {held[0].amount_minor}"
        )
    return [amount_minor, amount_minor]


_COMMAND_TYPE_BY_RESOLUTION = {
    TransferKind.POST_PENDING: "PostPending",
    TransferKind.VOID_PENDING: "VoidPending",
    TransferKind.EXPIRE_PENDING: "ExpirePending",
}


def transfer_payload(transfer: Transfer) -> dict[str, Any]:
    """The event body for a transfer; amounts are strings so no JSON reader rounds them."""
    # Enum members go in as they are: they are `str`s, and JSON writes their values.
    return {
        "id": str(transfer.id),
        "kind": transfer.kind,
        "pending_id": str(transfer.pending_id) if transfer.pending_id else None,
        "reverses_id": str(transfer.reverses_id) if transfer.reverses_id else None,
        "batch_id": str(transfer.batch_id) if transfer.batch_id else None,
        "expires_at": transfer.expires_at.isoformat() if transfer.expires_at else None,
        "metadata": transfer.metadata,
        "postings": [
            {
                "account_id": str(p.account_id),
                "asset": p.asset_code,
                "direction": p.direction,
                "layer": p.layer,
                "amount_minor": str(p.amount_minor),
            }
            for p in transfer.postings
        ],
        "created_at": transfer.created_at.isoformat(),
    }


def account_payload(account: Account) -> dict[str, Any]:
    return {
        "id": str(account.id),
        "asset": account.asset_code,
        "normal_side": account.normal_side.value,
        "status": account.status.value,
        "metadata": account.metadata,
    }
