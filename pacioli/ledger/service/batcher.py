"""Gathers commands from many threads into few database transactions.

A single writer thread takes whatever commands are waiting (up to `batch_size_max`) and
executes them together. Under light load a batch holds one command and adds no delay;
under heavy load batches grow by themselves, so a hot account (a merchant, a fee
account) is locked and written once per batch instead of once per command. This is how
TigerBeetle keeps hot accounts fast, and it keeps SERIALIZABLE retries rare.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")

QUEUE_LENGTH_MAX = 100_000
_STOP = object()


class Batcher(Generic[In, Out]):
    """Runs `execute(batch) -> results` on a writer thread for items submitted from any thread.

    If a whole batch fails, each of its items is run again alone, so one bad item cannot
    fail the others.
    """

    def __init__(
        self,
        execute: Callable[[Sequence[In]], list[Out]],
        *,
        batch_size_max: int,
        name: str = "pacioli-ledger-writer",
    ) -> None:
        self._execute = execute
        self._batch_size_max = batch_size_max
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_LENGTH_MAX)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: In) -> Future[Out]:
        future: Future[Out] = Future()
        self._queue.put((item, future))
        return future

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self._batch_size_max:
                try:
                    entry = self._queue.get_nowait()
                except queue.Empty:
                    break
                if entry is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(entry)
            self._run_batch(batch)

    def _run_batch(self, batch: list) -> None:
        items = [item for item, _ in batch]
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
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
