"""GET /v1/exchange/markets/{symbol}/stream: the book's numbered messages as server-sent events.

Each event's `id` is the message's `sequence` (consecutive per market), so a client
that sees a sequence other than the previous one plus one knows it missed something
and resnapshots. With `?snapshot=l2|l3` the first event is a snapshot taken at the same
instant as the subscription (under the market's lock): the messages that follow are
exactly those after its sequence. A client that falls `queue_max` messages behind is
dropped rather than slowing matching: it gets a `resync` event and the stream ends.
When nothing happens for `heartbeat_s` seconds, a `heartbeat` event says the stream is
alive. Public, like the snapshots. See docs/exchange.md, "Stream".
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from pacioli.api.errors import problem_response
from pacioli.api.routes.exchange_market import (
    L2_DEPTH_DEFAULT,
    L2_DEPTH_MAX,
    ExchangeDep,
)
from pacioli.api.schemas.exchange_market import (
    L2Public,
    L3Public,
    stream_message,
    time_of,
)
from pacioli.matching import L2, L3, Market, OrderBook
from pacioli.matching.feed import Subscription
from pacioli.matching.service import Exchange

HEARTBEAT_S_DEFAULT = 10
STREAMS_MAX_DEFAULT = 256  # per process; each costs the matching thread a queue append
RETRY_AFTER_S = 5

router = APIRouter(prefix="/v1/exchange", tags=["exchange market data"])


class StreamSlots:
    """A bound on the streams open at once in this app (`app.state.exchange_streams`)."""

    def __init__(self, limit: int = STREAMS_MAX_DEFAULT) -> None:
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.open >= self.limit:
                return False
            self.open += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.open -= 1


def stream_slots(request: Request) -> StreamSlots:
    state = request.app.state
    slots = getattr(state, "exchange_streams", None)
    if slots is None:
        slots = state.exchange_streams = StreamSlots()
    return slots


@router.get(
    "/markets/{symbol}/stream",
    summary="The market's numbered book messages as server-sent events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "Events: subscribed, snapshot?, open, match, change, "
                     "done, heartbeat, resync."}},
)
async def stream(
    symbol: str, request: Request, exchange: ExchangeDep,
    snapshot: Literal["none", "l2", "l3"] = "none",
    depth: Annotated[int, Query(ge=1, le=L2_DEPTH_MAX)] = L2_DEPTH_DEFAULT,
    heartbeat_s: Annotated[int, Query(ge=1, le=60)] = HEARTBEAT_S_DEFAULT,
) -> Response:
    market = exchange.market(symbol)
    slots = stream_slots(request)
    if not slots.take():
        return problem_response(
            503, "too_many_streams", "Too many market-data streams are open",
            f"this server serves at most {slots.limit} streams at once; retry later",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    queue_max = getattr(request.app.state, "exchange_stream_queue_max", None)
    try:
        # read waits for the market's lock: off the event loop.
        subscription, first = await anyio.to_thread.run_sync(
            _subscribe, exchange, market, snapshot, depth, queue_max
        )
    except BaseException:
        slots.give_back()
        raise
    return EventStream(
        _events(market, subscription, first, heartbeat_s),
        release=_Release(subscription, slots),
    )


class _Release:
    """Close the subscription and give the slot back, once (however the stream ended)."""

    def __init__(self, subscription: Subscription, slots: StreamSlots) -> None:
        self._subscription = subscription
        self._slots = slots
        self._done = False
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self._subscription.close()
        self._slots.give_back()


class EventStream(StreamingResponse):
    """A `text/event-stream` response that releases its subscription when it ends.

    Released here rather than in the generator: a client that goes before the first
    event never starts the generator, so its `finally` would never run.
    """

    def __init__(self, content: AsyncIterator[str], *, release: _Release) -> None:
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._release = release

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def _subscribe(
    exchange: Exchange, market: Market, snapshot: str, depth: int, queue_max: int | None
) -> tuple[Subscription, dict[str, Any] | None]:
    """A subscription, and the snapshot (or None) taken at the same instant."""
    if snapshot == "none":
        return exchange.subscribe(market.symbol, queue_max=queue_max), None

    def subscribe_and_snapshot(book: OrderBook) -> tuple[Subscription, L2 | L3]:
        # Under the market's lock: no command runs between the snapshot and the
        # subscription, so the stream carries exactly the messages after the snapshot.
        taken = book.l3() if snapshot == "l3" else book.l2(depth)
        return exchange.subscribe(market.symbol, queue_max=queue_max), taken

    subscription, taken = exchange.read(market.symbol, subscribe_and_snapshot)
    public = L3Public.of(market, taken) if snapshot == "l3" else L2Public.of(market, taken)
    return subscription, {"type": f"snapshot_{snapshot}", **public.model_dump(mode="json")}


async def _events(
    market: Market, subscription: Subscription, first: dict[str, Any] | None, heartbeat_s: int,
) -> AsyncIterator[str]:
    """The event stream; ends on `resync` or when the client goes (starlette cancels it)."""
    last_sequence = None if first is None else first["sequence"]
    yield _event("subscribed", {"type": "subscribed", "symbol": market.symbol,
                                "sequence": last_sequence})
    if first is not None:
        yield _event("snapshot", first)
    while True:
        await subscription.wait_async(heartbeat_s)
        if subscription.lagged:
            yield _event("resync", {
                "type": "resync", "symbol": market.symbol, "last_sequence": last_sequence,
                "reason": "the client fell too far behind; take a new snapshot",
            })
            return
        if subscription.closed:
            return
        messages = subscription.drain()
        if not messages:
            yield _event("heartbeat", {"type": "heartbeat", "symbol": market.symbol,
                                       "last_sequence": last_sequence,
                                       "time": _now_iso()})
            continue
        chunk = []
        for message in messages:
            chunk.append(_event(message.type, stream_message(market, message),
                                event_id=message.sequence))
        last_sequence = messages[-1].sequence
        yield "".join(chunk)


def _event(name: str, data: dict[str, Any], *, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _now_iso() -> str:
    return time_of(time.time_ns() // 1000).isoformat().replace("+00:00", "Z")
