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

    def result(self) -> Out:
        """Wait for the answer; raise the item's exception, if it failed."""
        with self._done:  # released again at once: a second call returns too
            pass
        if self._error is not None:
            raise self._error
        return self._value


class Batcher(Generic[In, Out]):
    """Runs `execute(batch) -> results` on writer threads for items submitted from any thread.

    If a whole batch fails, each of its items is run again alone, so one bad item cannot
    fail the others.
    """

    def __init__(
        self,
        execute: Callable[[Sequence[In]], list[Out]],
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

    def submit(self, item: In) -> Answer[Out]:
        """Queue an item; its answer comes once its batch committed (or failed).

        Raises: QueueFull.
        """
        answer: Answer[Out] = Answer()
        footprint = self._footprint(item)
        with self._changed:
            if self._stopping:
                raise RuntimeError("the ledger writer is closed")
            if len(self._waiting) >= QUEUE_LENGTH_MAX:
                raise QueueFull(f"{QUEUE_LENGTH_MAX} commands are already waiting")
            self._waiting.append((item, answer, footprint))
            self._changed.notify()
        return answer

    def close(self) -> None:
        """Finish every waiting item, then stop the writers."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._changed:
                batch = self._take()
                while not batch:
                    if self._stopping and not self._waiting:
                        return
                    self._changed.wait()
                    batch = self._take()
                for _, _, footprint in batch:
                    for account in footprint:
                        self._busy[account] = self._busy.get(account, 0) + 1
            try:
                self._run_batch(batch)
            finally:
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

    def _run_batch(self, batch: list) -> None:
        items = [item for item, _, _ in batch]
        try:
            results = self._execute(items)
        except BaseException as error:  # noqa: BLE001 - handed to the waiting callers
            if len(batch) == 1:
                batch[0][1].set_exception(error)
                return
            log.warning("ledger batch failed; running its commands one by one", exc_info=True)
            for entry in batch:
                self._run_batch([entry])
            return
        for (_, answer, _), result in zip(batch, results, strict=True):
            answer.set_result(result)
