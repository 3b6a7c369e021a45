"""Gathers commands from many threads into few database transactions.

Writer threads (`writers` of them) take whatever commands are waiting (up to
`batch_size_max`) and execute them together in one transaction. Under light load a batch
holds one command and adds no delay; under heavy load batches grow by themselves, so a
hot account (a merchant, a fee account) is locked and written once per batch instead of
once per command. This is how TigerBeetle keeps hot accounts fast.

Each command declares its footprint: the accounts it names. A writer only takes commands
whose accounts no batch in flight is using, and never a command behind a held-back one
on the same account, so batches in flight never contend for an account (no lock waits,
no serialization failures between them) and each account sees its commands in
submission order. Commands touching a busy hot account wait, and then go together in
the next batch. A command whose accounts are not known up front (posting, voiding or
reversing a transfer: its accounts are the transfer's) declares none; the database's
locks and the retry loop cover it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Collection, Sequence
from typing import Generic, TypeVar

from pacioli.ledger.domain.errors import LedgerUnavailable

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")

QUEUE_LENGTH_MAX = 100_000
# How far down the queue a writer looks for commands it may take: keeps a take cheap
# when many commands wait on a busy account.
SCAN_LENGTH_MAX = 4096
# The most accounts (summed over its commands' footprints) one batch may name: linked
# batches of a hundred transfers each must not pile up into one enormous transaction.
BATCH_WEIGHT_MAX = 4096


class QueueFull(LedgerUnavailable):
    """Too many commands are waiting for the ledger's writers; try again later."""


class Answer(Generic[Out]):
    """The one answer to one submitted item, which its caller waits for.

    A `concurrent.futures.Future` does the same with a Condition and a list of waiters;
    a lock acquired at birth and released by the writer is all one waiter needs, at a
    fifth of the cost (every command makes one, and the writer answers them in a row).
    """

    __slots__ = ("_done", "_value", "_error")

    def __init__(self) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self._value: Out | None = None
        self._error: BaseException | None = None

    def set_result(self, value: Out) -> None:
        self._value = value
        self._done.release()

    def set_exception(self, error: BaseException) -> None:
        self._error = error
        self._done.release()

    def done(self) -> bool:
        return not self._done.locked()

    def result(self) -> Out:
        """Wait for the answer; raise the item's exception, if it failed."""
        with self._done:  # released again at once: a second call returns too
            pass
        if self._error is not None:
            raise self._error
        return self._value


class LoopAnswer(Generic[Out]):
    """An answer delivered to an asyncio future, on its event loop, for a caller that awaits.

    One event loop can keep many commands in flight on one thread: no thread per caller,
    so no thread to wake per answer.
    """

    __slots__ = ("_loop", "future")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.future: asyncio.Future[Out] = loop.create_future()

    def set_result(self, value: Out) -> None:
        self._settle(value, None)

    def set_exception(self, error: BaseException) -> None:
        self._settle(None, error)

    def _settle(self, value: Out | None, error: BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(_settle_future, self.future, value, error)


def _settle_future(future: asyncio.Future, value, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _settle_futures(settled: list[tuple[asyncio.Future, object]]) -> None:
    for future, value in settled:
        if not future.cancelled():
            future.set_result(value)


def answer_all(answers: Sequence[Answer[Out] | LoopAnswer[Out]], results: Sequence[Out]) -> None:
    """Give each answer its result, waking each event loop once for all of its answers.

    `call_soon_threadsafe` writes to the loop's wake-up pipe: one system call per answer
    was an eighth of the writer's time on the uniform bench.
    """
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, object]]] = {}
    for answer, result in zip(answers, results, strict=True):
        if type(answer) is LoopAnswer:
            by_loop.setdefault(answer._loop, []).append((answer.future, result))
        else:
            answer.set_result(result)
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_settle_futures, settled)


class Batcher(Generic[In, Out]):
    """Runs `execute(batch, while_committing) -> results` on writer threads for items
    submitted from any thread (`while_committing`: see `_run_batch`).

    If a whole batch fails, each of its items is run again alone, so one bad item cannot
    fail the others.
    """

    def __init__(
        self,
        execute: Callable[[Sequence[In], Callable[[], None] | None], list[Out]],
        *,
        footprint: Callable[[In], Collection],
        batch_size_max: int,
        writers: int = 1,
        name: str = "pacioli-ledger-writer",
    ) -> None:
        self._execute = execute
        self._footprint = footprint
        self._batch_size_max = batch_size_max
        self._waiting: deque[tuple[In, Answer[Out], Collection]] = deque()
        self._busy: dict = {}  # account -> number of in-flight batches using it
        self._stopping = False
        self._changed = threading.Condition()
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True)
            for i in range(writers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(
        self, item: In, answer: Answer[Out] | LoopAnswer[Out] | None = None
    ) -> Answer[Out] | LoopAnswer[Out]:
        """Queue an item; `answer` (a new `Answer` if None) gets its result once its batch
        committed (or failed).

        Raises: QueueFull.
        """
        answer = Answer() if answer is None else answer
        footprint = self._footprint(item)
        with self._changed:
            if self._stopping:
                raise RuntimeError("the ledger writer is closed")
            if len(self._waiting) >= QUEUE_LENGTH_MAX:
                raise QueueFull(f"{QUEUE_LENGTH_MAX} commands are already waiting")
            self._waiting.append((item, answer, footprint))
            self._changed.notify()
        return answer

    def submit_many(self, items: Sequence[In]) -> list[Answer[Out]]:
        """Queue several items at once, in order: a writer that takes the first finds the
        others waiting behind it, so they share its batch as far as its limits allow.

        Raises: QueueFull (and then none is queued).
        """
        entries = [(item, Answer(), self._footprint(item)) for item in items]
        with self._changed:
            if self._stopping:
                raise RuntimeError("the ledger writer is closed")
            if len(self._waiting) + len(entries) > QUEUE_LENGTH_MAX:
                raise QueueFull(f"{QUEUE_LENGTH_MAX} commands are already waiting")
            self._waiting.extend(entries)
            self._changed.notify()
        return [answer for _, answer, _ in entries]

    def close(self) -> None:
        """Finish every waiting item, then stop the writers."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        # Committed batches whose callers are answered only once the next batch's writes
        # and COMMIT are on their way to the database (see _run_batch), or at once if no
        # batch follows.
        committed: list[tuple[list, list[Out]]] = []

        def answer_committed() -> None:
            while committed:
                self._answer(*committed.pop())

        while True:
            with self._changed:
                batch = self._take()
                while not batch and not committed:
                    if self._stopping and not self._waiting:
                        return
                    self._changed.wait()
                    batch = self._take()
                self._mark_busy(batch)
            if not batch:
                answer_committed()
                continue
            try:
                results = self._run_batch(batch, while_committing=answer_committed)
                answer_committed()  # in case this batch sent no COMMIT (or failed)
                if results is not None:
                    committed.append((batch, results))
            finally:
                self._release(batch)

    def _mark_busy(self, batch: list) -> None:
        """Mark the batch's accounts as in flight (lock held)."""
        for _, _, footprint in batch:
            for account in footprint:
                self._busy[account] = self._busy.get(account, 0) + 1

    def _release(self, batch: list) -> None:
        """The batch is done: its accounts are free for the next batches."""
        with self._changed:
            for _, _, footprint in batch:
                for account in footprint:
                    if self._busy[account] == 1:
                        del self._busy[account]
                    else:
                        self._busy[account] -= 1
            self._changed.notify_all()

    def _take(self) -> list:
        """Remove and return the waiting items this writer may run now (lock held).

        An item is taken unless one of its accounts is busy in another batch or belongs
        to an item held back before it (which keeps each account's order).
        """
        taken: list = []
        kept: list = []
        blocked: set = set()
        scanned = weight = 0
        while self._waiting and len(taken) < self._batch_size_max and (
            scanned < SCAN_LENGTH_MAX
        ):
            entry = self._waiting.popleft()
            scanned += 1
            footprint = entry[2]
            if taken and weight + len(footprint) > BATCH_WEIGHT_MAX:
                self._waiting.appendleft(entry)
                break
            if any(a in self._busy or a in blocked for a in footprint):
                blocked.update(footprint)
                kept.append(entry)
            else:
                taken.append(entry)
                weight += len(footprint)
        self._waiting.extendleft(reversed(kept))
        return taken

    def _run_batch(
        self, batch: list, *, while_committing: Callable[[], None] | None = None
    ) -> list[Out] | None:
        """Execute the batch; return its results for the writer to answer, or None once
        its callers have been answered (it failed, and was answered item by item).

        `while_committing` is called once the batch's writes and COMMIT are sent and
        before the database's answer is awaited: the writer answers the previous batch's
        callers then. Their threads run while this batch commits, instead of competing
        for the GIL with the writer while it prepares the batch (measured on the uniform
        bench: the writer spends about 4 ms of each 9-10 ms cycle on the CPU, the 16
        callers of a batch together about 2.5 ms, and the COMMIT's round trip about 3).
        """
        items = [item for item, _, _ in batch]
        try:
            return self._execute(items, while_committing)
        except BaseException as error:  # noqa: BLE001 - handed to the waiting callers
            if len(batch) == 1:
                batch[0][1].set_exception(error)
                return None
            log.warning("ledger batch failed; running its commands one by one", exc_info=True)
            for entry in batch:
                results = self._run_batch([entry])
                if results is not None:
                    self._answer([entry], results)
            return None

    @staticmethod
    def _answer(batch: list, results: list[Out]) -> None:
        answer_all([answer for _, answer, _ in batch], results)
