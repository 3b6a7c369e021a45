"""The ledger's Python API: every write command and every read.

All writes take the same path (drawn in docs/architecture.md): the command is queued to
the batcher; the writer thread opens one SERIALIZABLE transaction for the batch, looks
up its idempotency keys, loads and locks (in id order) every account it touches, lets the
state machine apply the commands in memory, writes the rows, balances, idempotency
records and outbox events, and commits. Callers get their own command's result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import Engine

from pacioli.ledger.domain import commands as c
from pacioli.ledger.domain import errors as e
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.domain.model import (
    Account,
    AccountFlags,
    Balances,
    Direction,
    Leg,
    Posting,
    Transfer,
    TransferSpec,
)
from pacioli.ledger.domain.money import Asset
from pacioli.ledger.domain.state_machine import Outcome, StateMachine
from pacioli.ledger.service import metrics
from pacioli.ledger.service.batcher import Answer, Batcher, LoopAnswer
from pacioli.ledger.service.unit_of_work import (
    ATTEMPTS_MAX,
    ContentionWindow,
    Touches,
    UnitOfWork,
    run_serializable,
)
from pacioli.ledger.storage import reads, repository
from pacioli.ledger.storage.pipeline import end_implicit_transaction, pipeline

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_CLIENT_ID = "system"
BATCH_SIZE_MAX = 256
# Writer threads, each with its own connection: batches on disjoint accounts commit in
# parallel (see Batcher). On a 2-core machine one is faster (measured: ~1,580 against
# ~1,450 transfers/s with 32 callers), since Python and PostgreSQL share the cores;
# more pay off where the database has cores of its own.
WRITERS = 1
PAGE_LIMIT_MAX = 500
# How long after a batch met a stored idempotency key the next batches look theirs up
# before writing (see _apply). Outside it they skip the lookup: a replay then shows up as
# the key's primary-key violation, and the batch's retry looks the keys up.
REPLAY_WINDOW_S = 5.0


@dataclass(frozen=True, slots=True)
class Written(Generic[T]):
    """The result of a write command; `replayed` when its idempotency key was seen before."""

    value: T
    replayed: bool


class InFlight(Generic[T]):
    """A write submitted and not yet answered (`Ledger.submit_linked_batches`)."""

    __slots__ = ("_answer", "_transfers_of")

    def __init__(self, answer: Answer, transfers_of: Callable[[Outcome], list[Transfer]]):
        self._answer = answer
        self._transfers_of = transfers_of

    def done(self) -> bool:
        return self._answer.done()

    def result(self) -> Written[T]:
        """Wait for the answer; raise the command's rejection, if it was refused."""
        outcome = self._answer.result()
        if isinstance(outcome, e.DomainError):
            raise outcome
        return Written(self._transfers_of(outcome), outcome.replayed)


class Ledger:
    """A double-entry ledger on one PostgreSQL database.

    `batching=False` runs each command in its own transaction on the caller's thread;
    the default gathers concurrent commands into shared transactions on `writers` writer
    threads.
    `clock` returns the current instant (tests pass a fake one to reach deadlines).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        batching: bool = True,
        batch_size_max: int = BATCH_SIZE_MAX,
        writers: int = WRITERS,
        attempts_max: int = ATTEMPTS_MAX,
        clock: Callable[[], datetime] | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
    ) -> None:
        self.engine = engine
        self.client_id = client_id
        self._attempts_max = attempts_max
        self._contention = ContentionWindow()
        # Whether the last batch was all replays: then the next looks its keys up first
        # (see _apply). Only a guess about the next batch, so races on it are harmless.
        self._replays_likely = False
        self._replays_seen_until = 0.0  # monotonic time; see REPLAY_WINDOW_S
        self._clock = clock or (lambda: datetime.now(UTC))
        self._batcher: Batcher[c.Submission, Outcome | e.DomainError] | None = (
            Batcher(
                self._execute_batch, footprint=_footprint, batch_size_max=batch_size_max,
                writers=writers,
            )
            if batching
            else None
        )

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.close()
            self._batcher = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # Writes: assets and accounts.

    def create_asset(
        self, code: str, scale: int, *, idempotency_key: str, client_id: str | None = None
    ) -> Written[Asset]:
        """Raises: InvalidAsset, AssetAlreadyExists, IdempotencyKeyReused."""
        outcome = self.execute(c.CreateAsset(code, scale), idempotency_key, client_id)
        return Written(outcome.asset or Asset(code, scale), outcome.replayed)

    def open_account(
        self,
        *,
        asset_code: str,
        normal_side: Direction | str,
        debits_must_not_exceed_credits: bool = False,
        credits_must_not_exceed_debits: bool = False,
        limit_minor: int | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str,
        client_id: str | None = None,
    ) -> Written[Account]:
        """Raises: UnknownAsset, InvalidAccountOptions, InvalidAmount, InvalidMetadata,
        IdempotencyKeyReused."""
        if normal_side not in (Direction.DEBIT, Direction.CREDIT):
            raise e.InvalidCommand(f"normal_side must be 'debit' or 'credit', not {normal_side!r}")
        command = c.OpenAccount(
            asset_code=asset_code,
            normal_side=Direction(normal_side),
            flags=AccountFlags(debits_must_not_exceed_credits, credits_must_not_exceed_debits),
            limit_minor=limit_minor,
            metadata=metadata or {},
        )
        return self._account_result(self.execute(command, idempotency_key, client_id))

    def freeze_account(
        self, account_id: UUID, *, idempotency_key: str, client_id: str | None = None
    ) -> Written[Account]:
        """Raises: AccountNotFound, InvalidAccountState, IdempotencyKeyReused."""
        command = c.FreezeAccount(account_id)
        return self._account_result(self.execute(command, idempotency_key, client_id))

    def unfreeze_account(
        self, account_id: UUID, *, idempotency_key: str, client_id: str | None = None
    ) -> Written[Account]:
        """Raises: AccountNotFound, InvalidAccountState, IdempotencyKeyReused."""
        command = c.UnfreezeAccount(account_id)
        return self._account_result(self.execute(command, idempotency_key, client_id))

    def close_account(
        self, account_id: UUID, *, idempotency_key: str, client_id: str | None = None
    ) -> Written[Account]:
        """Raises: AccountNotFound, InvalidAccountState, AccountBalanceNotZero,
        IdempotencyKeyReused."""
        command = c.CloseAccount(account_id)
        return self._account_result(self.execute(command, idempotency_key, client_id))

    # Writes: transfers.

    def transfer(
        self,
        legs: Sequence[Leg],
        *,
        metadata: dict[str, Any] | None = None,
        pending: bool = False,
        expires_at: datetime | None = None,
        timeout_seconds: int | None = None,
        idempotency_key: str,
        client_id: str | None = None,
    ) -> Written[Transfer]:
        """Post a transfer (or, with `pending`, reserve its funds until posted or voided).

        A pending transfer's deadline is `expires_at`, or `timeout_seconds` after the ledger
        accepts it.

        Raises: TooFewLegs, TooManyLegs, InvalidAmount, DuplicateAccountInTransfer,
        UnbalancedTransfer, AssetMismatch, InvalidExpiry, InvalidMetadata, AccountNotFound,
        AccountFrozen, AccountClosed, InsufficientFunds, ExceedsDebits, BalanceOverflow,
        IdempotencyKeyReused.
        """
        spec = TransferSpec(tuple(legs), metadata or {}, pending, expires_at, timeout_seconds)
        written = self.transfer_batch([spec], idempotency_key=idempotency_key, client_id=client_id)
        return Written(written.value[0], written.replayed)

    async def transfer_async(
        self,
        legs: Sequence[Leg],
        *,
        metadata: dict[str, Any] | None = None,
        pending: bool = False,
        expires_at: datetime | None = None,
        timeout_seconds: int | None = None,
        idempotency_key: str,
        client_id: str | None = None,
    ) -> Written[Transfer]:
        """`transfer` for asyncio code: awaits the ledger instead of blocking a thread.

        Raises: what `transfer` raises.
        """
        spec = TransferSpec(tuple(legs), metadata or {}, pending, expires_at, timeout_seconds)
        outcome = await self.execute_async(c.CreateTransfers((spec,)), idempotency_key, client_id)
        transfers = outcome.transfers or await asyncio.to_thread(self._transfers_of, outcome)
        return Written(transfers[0], outcome.replayed)

    def transfer_batch(
        self,
        specs: Sequence[TransferSpec],
        *,
        idempotency_key: str,
        client_id: str | None = None,
    ) -> Written[list[Transfer]]:
        """Post a linked batch: every transfer commits, or none does.

        Raises: BatchTooLarge and everything `transfer` raises.
        """
        outcome = self.execute(c.CreateTransfers(tuple(specs)), idempotency_key, client_id)
        return Written(self._transfers_of(outcome), outcome.replayed)

    def linked_batch(
        self,
        items: Sequence[TransferSpec | c.PostPending | c.VoidPending],
        *,
        idempotency_key: str,
        client_id: str | None = None,
    ) -> Written[list[Transfer]]:
        """Resolve holds and create transfers together: every item commits, or none does.

        Items apply in order; the result holds one transfer per item, in item order (for a
        `PostPending` or `VoidPending`, the resolution). Use it to consume part of a hold
        and re-hold the rest, or to capture a hold and split the money, in one step.

        Raises: BatchTooLarge, InvalidCommand, and everything `transfer` and
        `post_pending` raise.
        """
        outcome = self.execute(c.LinkedBatch(tuple(items)), idempotency_key, client_id)
        return Written(self._transfers_of(outcome), outcome.replayed)

    def submit_linked_batches(
        self,
        batches: Sequence[tuple[Sequence[TransferSpec | c.PostPending | c.VoidPending], str]],
        *,
        client_id: str | None = None,
    ) -> list[InFlight[list[Transfer]]]:
        """`linked_batch` without waiting, for several batches (items, idempotency key) at
        once: queue them in order and return at once; each `result()` waits for that
        batch's answer (and raises what `linked_batch` raises).

        Batches are applied in the order given (and after anything submitted before), in
        the same database transaction or in later ones, so a batch may post or void a hold
        that an earlier one, still in flight, creates under an id the caller chose
        (`TransferSpec(id=…)`). If that earlier batch is refused, the later one is refused
        too (`transfer_not_found`). Each batch is still its own all-or-nothing command
        with its own key; queued together, they share one transaction as far as the
        writer's limits allow. This is how a caller keeps several batches in the ledger at
        once without waiting for the ids the ledger would choose.

        Raises: InvalidCommand (a malformed key), QueueFull (and nothing is queued).
        """
        client_id = client_id or self.client_id
        submissions = []
        for items, idempotency_key in batches:
            if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 255:
                raise e.InvalidCommand("an idempotency key is a string of 1 to 255 characters")
            submissions.append(c.Submission.of(
                c.LinkedBatch(tuple(items)), client_id=client_id,
                idempotency_key=idempotency_key,
            ))
        if self._batcher is not None:
            answers = self._batcher.submit_many(submissions)
        else:
            answers = [self._submit_now(submission) for submission in submissions]
        return [InFlight(answer, self._transfers_of) for answer in answers]

    def post_pending(
        self,
        pending_id: UUID,
        *,
        amount_minor: int | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str,
        client_id: str | None = None,
    ) -> Written[Transfer]:
        """Post a pending transfer in full, or `amount_minor` of a two-leg one, releasing the rest.

        Raises: TransferNotFound, TransferNotPending, PendingTransferAlreadyResolved,
        PendingTransferExpired, PendingAmountExceeded, PartialPostNotSupported,
        InvalidAmount, AccountFrozen, AccountClosed, IdempotencyKeyReused.
        """
        command = c.PostPending(pending_id, amount_minor, metadata or {})
        return self._single_transfer(self.execute(command, idempotency_key, client_id))

    def void_pending(
        self,
        pending_id: UUID,
        *,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str,
        client_id: str | None = None,
    ) -> Written[Transfer]:
        """Release a pending transfer's hold.

        Raises: TransferNotFound, TransferNotPending, PendingTransferAlreadyResolved,
        PendingTransferExpired, IdempotencyKeyReused.
        """
        command = c.VoidPending(pending_id, metadata or {})
        return self._single_transfer(self.execute(command, idempotency_key, client_id))

    def reverse_transfer(
        self,
        transfer_id: UUID,
        *,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str,
        client_id: str | None = None,
    ) -> Written[Transfer]:
        """Undo the posted funds of a transfer with a new transfer that names it.

        Raises: TransferNotFound, TransferNotReversible, TransferAlreadyReversed,
        AccountFrozen, AccountClosed, InsufficientFunds, ExceedsDebits, IdempotencyKeyReused.
        """
        command = c.ReverseTransfer(transfer_id, metadata or {})
        return self._single_transfer(self.execute(command, idempotency_key, client_id))

    def expire_pending(self, *, limit: int = 1000) -> list[Transfer]:
        """Release every hold whose deadline has passed (at most `limit`); return the expiries.

        Safe to run from several workers at once: each expiry carries the idempotency key
        `expire:<pending id>`, so a hold is expired once and a losing run replays.
        """
        with self.engine.connect() as connection:
            due = repository.expired_pending_ids(connection, self._clock(), limit)
        answers = [
            self._submit(c.ExpirePending(pending_id), f"expire:{pending_id}", DEFAULT_CLIENT_ID)
            for pending_id in due
        ]
        expired = []
        for answer in answers:
            outcome = answer.result()
            if isinstance(outcome, Outcome) and not outcome.replayed:
                expired.extend(outcome.transfers)
            elif isinstance(outcome, e.DomainError) and not isinstance(
                outcome, e.PendingTransferAlreadyResolved
            ):
                log.warning("expiry refused", extra={"code": outcome.code})
        return expired

    # The one write path.

    def execute(
        self, command: c.Command, idempotency_key: str, client_id: str | None = None
    ) -> Outcome:
        """Run one command through the write path; return its outcome or raise its rejection."""
        if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 255:
            raise e.InvalidCommand("an idempotency key is a string of 1 to 255 characters")
        answer = self._submit(command, idempotency_key, client_id or self.client_id)
        outcome = answer.result()
        if isinstance(outcome, e.DomainError):
            raise outcome
        return outcome

    async def execute_async(
        self, command: c.Command, idempotency_key: str, client_id: str | None = None
    ) -> Outcome:
        """`execute` for asyncio code: the command joins the same batches, and the caller
        awaits its answer on its event loop instead of blocking a thread on it."""
        if self._batcher is None:
            return await asyncio.to_thread(self.execute, command, idempotency_key, client_id)
        if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 255:
            raise e.InvalidCommand("an idempotency key is a string of 1 to 255 characters")
        submission = c.Submission.of(
            command, client_id=client_id or self.client_id, idempotency_key=idempotency_key
        )
        answer = LoopAnswer(asyncio.get_running_loop())
        self._batcher.submit(submission, answer)
        outcome = await answer.future
        if isinstance(outcome, e.DomainError):
            raise outcome
        return outcome

    def _submit(
        self, command: c.Command, idempotency_key: str, client_id: str
    ) -> Answer[Outcome | e.DomainError]:
        submission = c.Submission.of(command, client_id=client_id, idempotency_key=idempotency_key)
        if self._batcher is not None:
            return self._batcher.submit(submission)
        return self._submit_now(submission)

    def _submit_now(self, submission: c.Submission) -> Answer[Outcome | e.DomainError]:
        """Run one submission on this thread (no batcher); its answer, already given."""
        answer: Answer[Outcome | e.DomainError] = Answer()
        try:
            answer.set_result(self._execute_batch([submission])[0])
        except Exception as error:
            answer.set_exception(error)
        return answer

    def _execute_batch(
        self,
        submissions: Sequence[c.Submission],
        while_committing: Callable[[], None] | None = None,
    ) -> list[Outcome | e.DomainError]:
        """Run a batch through the write path; `while_committing` runs once its writes and
        COMMIT are sent, before their outcome is awaited (see Batcher)."""
        commands = [s.command for s in submissions]
        touches = Touches(
            account_ids=sorted(set(_referenced_account_ids(commands)), key=_id_order),
            transfer_ids=sorted(_referenced_transfer_ids(commands), key=_id_order),
        )
        attempts = 0

        def work(uow: UnitOfWork):
            nonlocal attempts
            attempts += 1
            uow.while_committing = while_committing
            look_up_keys = attempts > 1 or time.monotonic() < self._replays_seen_until
            return self._apply(uow, submissions, touches, look_up_keys=look_up_keys)

        results = run_serializable(
            self.engine, work,
            touches=touches, contention=self._contention, attempts_max=self._attempts_max,
        )
        metrics.batch_commands.observe(len(submissions))
        # Counted per (command, outcome) pair of the batch: a labelled child costs
        # microseconds to look up, and a batch is usually one pair.
        for (command, outcome), count in Counter(
            (type(submission.command).__name__, _outcome_label(result))
            for submission, result in zip(submissions, results, strict=True)
        ).items():
            metrics.commands_total.labels(command, outcome).inc(count)
        return results

    def _apply(
        self,
        uow: UnitOfWork,
        submissions: Sequence[c.Submission],
        touches: Touches,
        *,
        look_up_keys: bool = True,
    ) -> tuple[list[Outcome | e.DomainError], list[repository.Statement]]:
        """Read what the batch needs, apply its commands, and return the results and the
        statements that write their effects.

        Without `look_up_keys` the batch assumes none of its keys is stored yet (no batch
        met one lately, and this is its first attempt): the key lookup is skipped, and
        should a key be stored after all, inserting it again breaks its primary key and
        the retry looks the keys up. The primary key is what guarantees at-most-once
        either way; the lookup only finds replays before any work is wasted on them.
        """
        commands = [s.command for s in submissions]
        needs_assets = any(isinstance(cmd, c.CreateAsset | c.OpenAccount) for cmd in commands)
        key_pairs = [(s.client_id, s.idempotency_key) for s in submissions]
        driver = uow.driver
        keys = None
        if self._replays_likely:
            # The last batch was all replays (clients retrying): look the keys up on their
            # own first, and answer without a transaction, or any lock, if all replay.
            with pipeline(driver):
                collect_keys = repository.queue_key_lookup(driver, key_pairs)
            keys = collect_keys()
            if all(pair in keys for pair in key_pairs):
                return _replays(submissions, keys, driver), []
        elif not look_up_keys:
            keys = {}
        looked_up = look_up_keys or self._replays_likely
        # One round trip: the keys (outside the transaction, before BEGIN), then BEGIN, the
        # referenced transfers and the locked accounts.
        with pipeline(driver) as psycopg_pipeline:
            if keys is None:
                collect_keys = repository.queue_key_lookup(driver, key_pairs)
                end_implicit_transaction(psycopg_pipeline)
            uow.begin()
            collect_state = repository.queue_batch_state(
                driver, transfer_ids=touches.transfer_ids, account_ids=touches.account_ids,
                with_metadata=any(isinstance(cmd, _STATUS_COMMANDS) for cmd in commands),
            )
            collect_assets = repository.queue_assets(driver) if needs_assets else dict
        keys = collect_keys() if keys is None else keys
        if keys:
            self._replays_seen_until = time.monotonic() + REPLAY_WINDOW_S
        self._replays_likely = all(pair in keys for pair in key_pairs)
        replay_refs = _replay_refs(submissions, keys)  # before the machine adds new keys
        state = collect_state()
        now = self._clock()
        machine = StateMachine(
            assets=collect_assets(),
            accounts=state.accounts,
            transfers=state.transfers,
            keys=keys,
            now=now,
            new_id=uuid7,
        )
        results = [machine.apply(s) for s in submissions]
        if replay_refs:
            uow.after_commit = _attach_replayed_transfers(replay_refs, results)
        elif not looked_up and any(isinstance(result, e.DomainError) for result in results):
            uow.after_commit = self._replay_refused_if_stored(submissions, results)
        return results, repository.effect_statements(machine.effects, machine.accounts, now)

    def _replay_refused_if_stored(
        self, submissions: Sequence[c.Submission], results: list
    ) -> Callable:
        """An `after_commit` for a batch that skipped the key lookup: look up the keys of
        the commands it refused, and answer those that are stored as replays.

        Applied again, a replay may be refused where the first request was not (the hold
        it posted is resolved now, say): a refusal writes nothing, so no key violation
        reveals it, and it must be told from a true refusal by its stored key. Read after
        COMMIT, outside the snapshot, like the lookup it stands in for.
        """
        refused = [i for i, result in enumerate(results) if isinstance(result, e.DomainError)]
        pairs = [(submissions[i].client_id, submissions[i].idempotency_key) for i in refused]

        def read(driver) -> Callable[[], None]:
            collect = repository.queue_key_lookup(driver, pairs)

            def answer_replays() -> None:
                keys = collect()
                if not keys:
                    return
                self._replays_seen_until = time.monotonic() + REPLAY_WINDOW_S
                machine = StateMachine(
                    assets={}, accounts={}, transfers={}, keys=keys, now=self._clock(),
                    new_id=uuid7,
                )
                for i in refused:
                    if (submissions[i].client_id, submissions[i].idempotency_key) in keys:
                        results[i] = machine.apply(submissions[i])

            return answer_replays

        return read

    # Turning outcomes into results (replays are read back from the database).

    def _account_result(self, outcome: Outcome) -> Written[Account]:
        account = outcome.account
        if account is None:
            account = self.get_account(UUID(outcome.result_refs[0]))
        return Written(account, outcome.replayed)

    def _transfers_of(self, outcome: Outcome) -> list[Transfer]:
        if outcome.transfers:
            return list(outcome.transfers)
        with self.engine.connect() as connection:
            return reads.get_transfers(connection, [UUID(ref) for ref in outcome.result_refs])

    def _single_transfer(self, outcome: Outcome) -> Written[Transfer]:
        return Written(self._transfers_of(outcome)[0], outcome.replayed)

    # Reads.

    def list_assets(self) -> list[Asset]:
        with self.engine.connect() as connection:
            return reads.get_assets(connection)

    def get_account(self, account_id: UUID) -> Account:
        """Raises: AccountNotFound."""
        with self.engine.connect() as connection:
            account = reads.get_account(connection, account_id)
        if account is None:
            raise e.AccountNotFound(f"no account has the id {account_id}")
        return account

    def list_accounts(
        self,
        *,
        limit: int = 100,
        starting_after: UUID | None = None,
        asset_code: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[Account]:
        with self.engine.connect() as connection:
            return reads.list_accounts(
                connection, limit=_page(limit), starting_after=starting_after,
                asset_code=asset_code, metadata=metadata,
            )

    def list_postings(
        self, account_id: UUID, *, limit: int = 100, starting_after: int | None = None
    ) -> list[Posting]:
        """The account's postings, oldest first, with the balances after each.

        Raises: AccountNotFound.
        """
        self.get_account(account_id)
        with self.engine.connect() as connection:
            return reads.list_postings(
                connection, account_id, limit=_page(limit), starting_after=starting_after
            )

    def balances_at(self, account_id: UUID, at: datetime) -> Balances:
        """The account's balances as they stood at instant `at`.

        Raises: AccountNotFound.
        """
        self.get_account(account_id)
        with self.engine.connect() as connection:
            return reads.balances_at(connection, account_id, at)

    def get_transfer(self, transfer_id: UUID) -> Transfer:
        """Raises: TransferNotFound."""
        with self.engine.connect() as connection:
            transfer = reads.get_transfer(connection, transfer_id)
        if transfer is None:
            raise e.TransferNotFound(f"no transfer has the id {transfer_id}")
        return transfer

    def list_transfers(
        self,
        *,
        limit: int = 100,
        starting_after: UUID | None = None,
        account_id: UUID | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[Transfer]:
        with self.engine.connect() as connection:
            return reads.list_transfers(
                connection, limit=_page(limit), starting_after=starting_after,
                account_id=account_id, created_from=created_from,
                created_before=created_before, metadata=metadata,
            )


def _outcome_label(result: Outcome | e.DomainError) -> str:
    if isinstance(result, e.DomainError):
        return result.code
    return "replayed" if result.replayed else "ok"


def _page(limit: int) -> int:
    if not 1 <= limit <= PAGE_LIMIT_MAX:
        raise e.InvalidCommand(f"limit must be from 1 to {PAGE_LIMIT_MAX}")
    return limit


# Commands whose events carry the account's metadata, which the batch must then read.
_STATUS_COMMANDS = (c.FreezeAccount, c.UnfreezeAccount, c.CloseAccount)
_id_order = attrgetter("int")  # UUIDs compared as ints: their own __lt__ is Python code
_TRANSFER_COMMAND_TYPES = frozenset(
    {"CreateTransfers", "LinkedBatch", "PostPending", "VoidPending", "ExpirePending",
     "ReverseTransfer"}
)


def _replays(submissions: Sequence[c.Submission], keys, driver) -> list[Outcome | e.DomainError]:
    """The answers to a batch whose keys are all stored, and the transfers they name."""
    refs = _replay_refs(submissions, keys)
    transfers = repository.load_transfers_on(driver, refs) if refs else {}
    machine = StateMachine(
        assets={}, accounts={}, transfers={}, keys=keys, now=datetime.now(UTC), new_id=uuid7
    )
    return [_with_transfers(machine.apply(s), transfers) for s in submissions]


def _replay_refs(submissions: Sequence[c.Submission], keys) -> list[UUID]:
    """The stored transfers that this batch's transfer replays answer with."""
    return [
        UUID(ref)
        for s in submissions
        if (stored := keys.get((s.client_id, s.idempotency_key))) is not None
        and stored.request_hash == s.request_hash
        and stored.command_type in _TRANSFER_COMMAND_TYPES
        for ref in stored.result_refs
    ]


def _attach_replayed_transfers(refs: list[UUID], results: list) -> Callable:
    """An `after_commit` for the unit of work: read the transfers `refs` and attach them to
    the replayed outcomes in `results`.

    The writer reads them in one go, rather than each caller on a connection of its own,
    and after the transaction (in the COMMIT's round trip), so these reads take no
    predicate locks that concurrent batches could conflict with.
    """

    def read(driver) -> Callable[[], None]:
        collect = repository.queue_transfers(driver, refs)

        def attach() -> None:
            transfers = collect()
            results[:] = [_with_transfers(result, transfers) for result in results]

        return attach

    return read


def _with_transfers(
    result: Outcome | e.DomainError, replayed: dict[UUID, Transfer]
) -> Outcome | e.DomainError:
    """A replayed outcome with its stored transfers attached, when the writer read them."""
    if not isinstance(result, Outcome) or not result.replayed or not replayed:
        return result
    transfers = tuple(replayed.get(UUID(ref)) for ref in result.result_refs)
    if result.command_type not in _TRANSFER_COMMAND_TYPES or None in transfers:
        return result
    return replace(result, transfers=transfers)


def _footprint(submission: c.Submission) -> frozenset[UUID]:
    """The accounts a command names, and the transfer ids it chooses or resolves.

    A transfer id in the footprint keeps a command that resolves a hold behind the one
    that creates it under a chosen id (see `submit`): with several writers, the two are
    never in flight in different batches at once, so the first is applied first.
    """
    command = submission.command
    accounts = _referenced_account_ids([command])
    if type(command) is c.LinkedBatch or type(command) is c.CreateTransfers:
        return frozenset((*accounts, *_referenced_transfer_ids([command])))
    return frozenset(accounts)


def _referenced_transfer_ids(commands: Iterable[c.Command]) -> set[UUID]:
    """The transfers a batch must read: those it posts, voids, expires or reverses, and
    those whose ids its transfers choose (to refuse an id that is taken)."""
    ids = set()
    for command in commands:
        if isinstance(command, c.PostPending | c.VoidPending | c.ExpirePending):
            ids.add(command.pending_id)
        elif isinstance(command, c.LinkedBatch):
            for item in command.items:
                if isinstance(item, c.PostPending | c.VoidPending):
                    ids.add(item.pending_id)
                elif isinstance(item, TransferSpec) and isinstance(item.id, UUID):
                    ids.add(item.id)
        elif isinstance(command, c.CreateTransfers):
            ids.update(
                spec.id for spec in command.transfers
                if isinstance(spec, TransferSpec) and isinstance(spec.id, UUID)
            )
        elif isinstance(command, c.ReverseTransfer):
            ids.add(command.transfer_id)
    return ids


def _referenced_account_ids(commands: Iterable[c.Command]) -> Iterable[UUID]:
    for command in commands:
        if isinstance(command, c.CreateTransfers | c.LinkedBatch):
            specs = command.transfers if isinstance(command, c.CreateTransfers) else (
                item for item in command.items if isinstance(item, TransferSpec)
            )
            for spec in specs:
                for leg in spec.legs:
                    if isinstance(leg.account_id, UUID):
                        yield leg.account_id
        elif isinstance(command, c.FreezeAccount | c.UnfreezeAccount | c.CloseAccount):
            yield command.account_id


def debit(account_id: UUID, amount_minor: int, asset_code: str | None = None) -> Leg:
    return Leg(account_id, Direction.DEBIT, amount_minor, asset_code)


def credit(account_id: UUID, amount_minor: int, asset_code: str | None = None) -> Leg:
    return Leg(account_id, Direction.CREDIT, amount_minor, asset_code)
