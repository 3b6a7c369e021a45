"""Expiring GTT orders on time: an `AdvanceClock` command when one is due.

The book expires a GTT order when a command's clock reaches its `expires_at`; in a quiet
market no command may come for a while, so the settler thread checks every market's
earliest deadline (a heap kept beside the book, pruned lazily of orders already gone)
and, when it has passed, runs `AdvanceClock(now)` through the ordinary write path: it is
logged like any command (replay must expire the same orders at the same time), and
settlement then releases the expired orders' holds.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from pacioli.matching.orders import AdvanceClock
from pacioli.matching.sequencer import MarketRuntime, Submission

if TYPE_CHECKING:
    from pacioli.matching.service import Exchange


class ExpiryClock:
    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange

    def run_due(self) -> int:
        """Advance the clock of every market with an order due; how many markets."""
        ran = 0
        for symbol in list(self._exchange._runtimes):
            runtime = self._exchange._runtimes.get(symbol)
            if runtime is not None and self._advance_if_due(runtime):
                ran += 1
        return ran

    def _advance_if_due(self, runtime: MarketRuntime) -> bool:
        sequencer = self._exchange._sequencer
        with runtime.lock:
            expiries = runtime.expiries
            while expiries and expiries[0][1] not in runtime.live:
                heapq.heappop(expiries)
            if not expiries or runtime.broken:
                return False
            ts = sequencer.next_ts(runtime)
            if expiries[0][0] > ts:
                return False
            sequencer.commit(runtime, Submission(AdvanceClock(ts)))
            while expiries and expiries[0][0] <= ts:  # the book expired them all
                heapq.heappop(expiries)
            return True
